"""Random audit samples (抽查): plans, verifiable draws at a checkpoint, double-random reviewers,
findings, closing, and the redraw that re-derives a recorded draw from the log alone.

The audit's events live in the ledger. A draw issues a checkpoint (``CheckpointService.issue``:
its root nobody knew when the commission announced the seed), derives the population from the
case events and warning issues at log positions ≤ the checkpoint's position
(``domain.audit.Population``) and draws with ``domain.sampling.draw``; the population
(ordered case numbers and digest) and the sample (with each case's inclusion probability) are
recorded in one save. ``redraw`` does it all again from the log and compares.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.access import ApiKey, Role, key_id
from domain.audit import EXPORT_FORMAT, Audit, AuditState, Population, draw_id
from domain.case import CASE_TOPICS, EVENT_CLASSES, Case
from domain.clock import Clock
from domain.errors import InvalidInput, NotFound
from domain.merkle import leaf_hash, root
from domain.sampling import assign_reviewers, check_seed, parse_pool, population_digest
from domain.sampling import draw as draw_sample
from domain.warning import CaseWarning
from services.ingest import Principal
from infra.logs import notifications_after

DERIVATION = ("case events and warning issues at ledger positions <= checkpoint.position, in log order, folded by "
              "domain.audit.Population; members admitted by the plan's criteria, ordered by case number")


_STEPS = {cls.TOPIC: cls.STEP for cls in (*EVENT_CLASSES.values(), Case.DeadlinesSettled)}


class _Light:
    """What ``Population`` reads of a case event, straight from its stored state."""

    __slots__ = ("originator_id", "STEP", "case_no", "actor", "data", "derived", "flags", "occurred_at", "hash")

    def __init__(self, originator_id: UUID, step: Any, state: dict[str, Any]) -> None:
        self.originator_id = originator_id
        self.STEP = step
        self.case_no = state.get("case_no")
        self.actor = state["actor"]
        self.data = state["data"]
        self.derived = state["derived"]
        self.flags = state["flags"]
        self.occurred_at = state["occurred_at"]
        self.hash = state["hash"]


class EmptyPopulation(AuditState):
    code = "empty_population"


def _by(p: Principal) -> dict[str, Any]:
    return {"role": p.role.value, "key": p.key}


class AuditService:
    def __init__(self, ledger: Any, checkpoints: Any, access_app: Any, clock: Clock) -> None:
        self.ledger = ledger
        self.checkpoints = checkpoints
        self.access_app = access_app
        self.clock = clock
        self._lock = threading.Lock()
        self._ids: list[UUID] = []
        self._seen: set[UUID] = set()
        self._scanned = 0

    # -- reading ----------------------------------------------------------------------------------

    def load(self, audit_id: str | UUID) -> Audit:
        try:
            aid = audit_id if isinstance(audit_id, UUID) else UUID(str(audit_id))
            audit = self.ledger.repository.get(aid)
        except (ValueError, AggregateNotFoundError):
            raise NotFound(f"no audit {audit_id}", code="unknown_audit") from None
        if not isinstance(audit, Audit):
            raise NotFound(f"no audit {audit_id}", code="unknown_audit")
        return audit

    def audits(self) -> Iterator[Audit]:
        """Every audit, in the order planned. The plans' ids are cached with the log position read
        so far, so each call reads only the log's tail (the dashboard asks every 30 s); the last
        1,000 positions are read again each time, for a transaction that committed a lower id late."""
        with self._lock:
            for n in notifications_after(self.ledger.recorder, self._scanned, [Audit.PlanCreated.TOPIC]):
                if n.originator_id not in self._seen:
                    self._seen.add(n.originator_id)
                    self._ids.append(n.originator_id)
            head = self.ledger.recorder.max_notification_id() or 0
            self._scanned = max(self._scanned, head - 1000)
            ids = list(self._ids)
        for aid in ids:
            yield self.ledger.repository.get(aid)

    def list(self) -> list[dict[str, Any]]:
        return [{"id": str(a.id), "title": a.title, "state": a.state, "planned_at": a.created_on,
                 "n": len(a.draw["sample"]) if a.draw else None,
                 "population": a.population["size"] if a.population else None,
                 "draw_id": a.draw["id"] if a.draw else None} for a in self.audits()]

    def get(self, audit_id: str) -> dict[str, Any]:
        return self.load(audit_id).summary()

    def by_draw(self, draw: str) -> Audit:
        try:
            wanted = UUID(str(draw))
        except ValueError:
            raise NotFound(f"no draw {draw}", code="unknown_draw") from None
        for a in self.audits():
            if draw_id(a.id) == wanted and a.draw is not None:
                return a
        raise NotFound(f"no draw {draw}", code="unknown_draw")

    def mine(self, p: Principal) -> list[dict[str, Any]]:
        """The cases drawn for this reviewer (their key), with whether their finding is in."""
        out = []
        for a in self.audits():
            for case_no, reviewers in sorted(a.assignments.items()):
                if p.key in reviewers:
                    finding = a.findings.get((case_no, p.key))
                    out.append({"audit_id": str(a.id), "title": a.title, "state": a.state, "case_no": case_no,
                                "department": a.cases[case_no]["department"], "item_code": a.cases[case_no]["item_code"],
                                "reviewers": reviewers, "recorded": finding is not None, "finding": finding,
                                "checklist": a.checklist})
        return out

    # -- the population, from the log -----------------------------------------------------------------

    def population_at(self, position: int) -> Population:
        """Fold the case events and warning issues at log positions ≤ ``position``."""
        return self.fold(position)[0]

    def leaves_at(self, position: int) -> tuple[int, bytes]:
        """The tree size and RFC 6962 root over the case events at positions ≤ ``position``."""
        _, size, head = self.fold(position)
        return size, head

    def fold(self, position: int) -> tuple[Population, int, bytes]:
        """One pass over the log up to ``position``: the population facts, and the tree size and
        root over the case events (leaf data: each event's chain hash)."""
        pop = Population()
        leaves: list[bytes] = []
        for n, event in self._events(position):
            if n.topic == CaseWarning.Issued.TOPIC:
                pop.warning_issued(event.case_no)
            else:
                pop.case_event(event)
                leaves.append(leaf_hash(bytes.fromhex(event.hash)))
        return pop, len(leaves), root(leaves)

    def _events(self, position: int) -> Iterator[tuple[Any, Any]]:
        """The case events and warning issues up to ``position``, decoded only as far as the fold
        needs (the stored state's fields, without building the event objects: 2.5x faster)."""
        topics = [*CASE_TOPICS, CaseWarning.Issued.TOPIC]
        mapper = self.ledger.mapper
        light = mapper.cipher is None and mapper.compressor is None
        for n in notifications_after(self.ledger.recorder, 0, topics):
            if n.id > position:
                return
            if not light or n.topic not in _STEPS:
                yield n, mapper.to_domain_event(n)
                continue
            state = mapper.transcoder.decode(n.state)
            yield n, _Light(n.originator_id, _STEPS[n.topic], state)

    # -- acts ---------------------------------------------------------------------------------------

    def plan(self, raw: object, p: Principal) -> dict[str, Any]:
        audit = Audit.plan(raw, _by(p), self.clock.now(), uuid4())
        self.ledger.save(audit)
        return audit.summary()

    def draw(self, audit_id: str, seed: object, p: Principal) -> dict[str, Any]:
        audit = self.load(audit_id)
        if audit.state != "planned":
            raise AuditState(f"audit {audit.id} is {audit.state}: it was drawn already (redraw it to check)",
                             state=audit.state)
        seed = check_seed(seed)
        cp = self.checkpoints.issue()  # its root: the randomness nobody knew when the seed was announced
        members = self.population_at(cp.position).members(audit.criteria_)
        if not members:
            raise EmptyPopulation("the plan's population is empty at this checkpoint: nothing to draw",
                                  checkpoint_size=cp.size)
        n = min(audit.sampling_().size(), len(members))  # a population smaller than the sample: every case
        selection = draw_sample(seed, cp.root, members, n, audit.design_())
        checkpoint = {"size": cp.size, "root": cp.root.hex(), "note": cp.note, "position": cp.position}
        audit.record_draw(checkpoint, members, seed, selection, DERIVATION, _by(p), self.clock.now())
        self._save(audit)
        return audit.summary()

    def assign(self, audit_id: str, pool_raw: object, per_case: object, p: Principal) -> dict[str, Any]:
        audit = self.load(audit_id)
        if audit.state != "drawn":
            raise AuditState(f"audit {audit.id} is {audit.state}: reviewers are assigned once, after the draw",
                             state=audit.state)
        if per_case is None:
            per_case = 2
        if isinstance(per_case, bool) or not isinstance(per_case, int):
            raise InvalidInput("per_case is a whole number (default 2)", code="invalid_field")
        pool = parse_pool(pool_raw)
        for r in pool:
            self._check_reviewer(r.id)
        assert audit.draw is not None and audit.population is not None
        root_bytes = bytes.fromhex(audit.population["checkpoint"]["root"])
        cases = [(c, audit.cases[c]["department"]) for c in audit.draw["sample"]]
        assignments = assign_reviewers(audit.draw["seed"], root_bytes, cases, pool, per_case)
        audit.assign(pool, per_case, assignments, _by(p), self.clock.now())
        self._save(audit)
        return audit.summary()

    def _check_reviewer(self, public_id: str) -> None:
        try:
            key: ApiKey = self.access_app.repository.get(key_id(public_id))
        except AggregateNotFoundError:
            key = None  # type: ignore[assignment]
        if key is None or key.revoked or key.role not in (Role.OFFICER, Role.ADMIN):
            raise InvalidInput(f"reviewer {public_id} is not an officer's key", code="unknown_reviewer",
                               reviewer=public_id)

    def finding(self, audit_id: str, raw: object, p: Principal) -> dict[str, Any]:
        audit = self.load(audit_id)
        out = audit.record_finding(p.key, raw, _by(p), self.clock.now())
        self._save(audit)
        return out

    def close(self, audit_id: str, p: Principal) -> dict[str, Any]:
        audit = self.load(audit_id)
        audit.close(_by(p), self.clock.now())
        self._save(audit)
        return audit.summary()

    def _save(self, audit: Audit) -> None:
        try:
            self.ledger.save(audit)
        except IntegrityError:  # another request moved the audit meanwhile
            raise AuditState(f"audit {audit.id} was changed by another request; reload it") from None

    def export_draw(self, draw: str) -> dict[str, Any]:
        """Everything needed to redo a draw with no database: the seed, the signed checkpoint and
        the verifier key, the design and sampling, the population (re-derived from the log at the
        checkpoint, each case with what the design reads) and the recorded sample."""
        audit = self.by_draw(draw)
        assert audit.population is not None and audit.draw is not None
        cp = audit.population["checkpoint"]
        members = self.population_at(cp["position"]).members(audit.criteria_)
        if population_digest([m.case_no for m in members]) != audit.population["digest"]:
            raise AuditState("the log no longer gives this draw's population: see esup audit redraw")
        return {"format": EXPORT_FORMAT, "audit_id": str(audit.id), "draw_id": audit.draw["id"], "title": audit.title,
                "seed": audit.draw["seed"], "method": audit.draw["method"], "design": audit.design,
                "sampling": audit.sampling, "checkpoint": cp, "verifier_key": self.checkpoints.verifier_key(),
                "population_digest": audit.population["digest"],
                "population": [{"case_no": m.case_no, "department": m.department, "item_code": m.item_code,
                                "item_kind": m.item_kind, "risks": sorted(m.risks)} for m in members],
                "sample": audit.draw["sample"], "probabilities": audit.draw["probabilities"]}

    # -- verification ---------------------------------------------------------------------------------

    def redraw(self, draw: str) -> dict[str, Any]:
        """Re-derive the recorded draw from the log alone: the checkpoint's tree (size and root over
        the case events up to its position), the population, and the sample with its probabilities."""
        audit = self.by_draw(draw)
        assert audit.population is not None and audit.draw is not None
        cp = audit.population["checkpoint"]
        pop, size, head = self.fold(cp["position"])
        members = pop.members(audit.criteria_)
        case_nos = [m.case_no for m in members]
        n = min(audit.sampling_().size(), len(members)) if members else 0
        selection = draw_sample(audit.draw["seed"], bytes.fromhex(cp["root"]), members, n, audit.design_()) if members else None
        sample = list(selection.sample) if selection else []
        probabilities = {c: str(x) for c, x in selection.probabilities.items()} if selection else {}
        recorded_cp = self.checkpoints.at_size(cp["size"])
        checks = {
            "tree_size": size == cp["size"],
            "tree_root": head.hex() == cp["root"],
            "checkpoint_recorded": recorded_cp is not None and recorded_cp.root.hex() == cp["root"],
            "population": population_digest(case_nos) == audit.population["digest"]
            and (not audit.population["case_nos"] or case_nos == audit.population["case_nos"]),  # large: digest only
            "sample": sample == audit.draw["sample"],
            "probabilities": probabilities == audit.draw["probabilities"],
        }
        return {"draw_id": audit.draw["id"], "audit_id": str(audit.id), "matches": all(checks.values()),
                "checks": checks, "seed": audit.draw["seed"], "method": audit.draw["method"],
                "design": audit.draw["design"], "checkpoint": cp, "recomputed_root": head.hex(),
                "recomputed_size": size, "population": {"size": len(case_nos), "digest": population_digest(case_nos)},
                "recorded_sample": audit.draw["sample"], "sample": sample}



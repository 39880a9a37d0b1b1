"""An audit (抽查) of the discipline commission: plan → population fixed at a checkpoint → draw →
reviewers assigned (双随机) → findings per reviewer and case → closed with its statistics.

Every act is an event of the ``Audit`` aggregate in the ledger. The population is a function of
the ledger's log up to the checkpoint's position (``Population``: fed the case events and warning
issues at positions ≤ that position, in log order), so later steps never change who was in it,
and anyone can re-derive it, and the sample (``domain.sampling.draw``), from the log alone.

What the population knows about a case, all from its events (never from a view):
- ``accepted`` / ``concluded``: the business instant of its acceptance / conclusion;
- department, item code and item kind (the item version's terms stored on the case's events);
- risks: ``warnings`` (a card was issued), ``anomalies`` (an event carries a flag other than
  ``calendar_provisional``), ``late_entry`` (flagged 体外循环), ``fees`` (a fee was charged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Iterable, Mapping
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.calendar import CHINA_TZ
from domain.catalogue import NAMESPACE
from domain.errors import Conflict, DomainError, InvalidInput, text_field
from domain.sampling import (TICKET, Design, InvalidSampling, Member, Reviewer, Selection, ht_rate, rate, sample_size,
                             upper_limit)

STATES = ("planned", "drawn", "assigned", "closed")
PERIOD_ON = ("concluded", "accepted")
ONLY = ("warnings", "anomalies", "flagged")  # flagged: warnings or anomalies
DEFAULT_CHECKLIST: tuple[dict[str, str], ...] = (
    {"code": "acceptance", "label": "受理与材料 (acceptance and materials)"},
    {"code": "time_limits", "label": "办理时限 (time limits)"},
    {"code": "fees", "label": "收费 (fees)"},
    {"code": "procedure", "label": "办理程序 (procedure)"},
    {"code": "documents", "label": "文书 (documents)"},
    {"code": "delivery", "label": "送达 (delivery)"},
)
RESULTS = ("conforming", "deviation")
# A population larger than this is recorded by its digest alone (the derivation re-creates the list).
POPULATION_LIST_MAX = 200_000


class AuditState(Conflict):
    code = "audit_state"


class NotAssigned(DomainError):
    code = "not_assigned"
    status = 403


class FindingsIncomplete(Conflict):
    code = "findings_incomplete"


def draw_id(audit_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"audit-draw:{audit_id}")


# -- the plan -------------------------------------------------------------------------------------

def _codes(raw: object, what: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw) or len(raw) > 1000:
        raise InvalidInput(f"{what} must be a list of codes", code="invalid_field")
    return sorted({x.strip() for x in raw})


def _day(raw: object, what: str) -> date:
    if not isinstance(raw, str):
        raise InvalidInput(f"{what} must be a date (YYYY-MM-DD)", code="missing_field" if raw is None else "invalid_field")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{what} must be a date (YYYY-MM-DD)", code="invalid_field") from None


@dataclass(frozen=True)
class Criteria:
    """Who is in the population: concluded (or accepted) between two days (China time,
    inclusive), of some departments, items or item kinds, optionally only cases with warnings,
    anomalies or either."""

    start: date
    end: date
    on: str = "concluded"
    departments: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    item_kinds: tuple[str, ...] = ()
    only: str | None = None

    @classmethod
    def parse(cls, raw: object) -> Criteria:
        if not isinstance(raw, dict):
            raise InvalidInput("population must be an object", code="missing_field" if raw is None else "invalid_field")
        unknown = set(raw) - {"from", "to", "on", "departments", "items", "item_kinds", "only"}
        if unknown:
            raise InvalidInput(f"unknown population fields: {', '.join(sorted(unknown))}", code="unknown_field")
        start, end = _day(raw.get("from"), "population.from"), _day(raw.get("to"), "population.to")
        if end < start:
            raise InvalidInput("population.to is before population.from", code="invalid_field")
        on = raw.get("on", "concluded")
        if on not in PERIOD_ON:
            raise InvalidInput("population.on is concluded or accepted", code="invalid_field")
        only = raw.get("only")
        if only is not None and only not in ONLY:
            raise InvalidInput(f"population.only is one of {', '.join(ONLY)}", code="invalid_field")
        return cls(start, end, on, tuple(_codes(raw.get("departments"), "population.departments")),
                   tuple(_codes(raw.get("items"), "population.items")),
                   tuple(_codes(raw.get("item_kinds"), "population.item_kinds")), only)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "on": self.on,
                "departments": list(self.departments), "items": list(self.items), "item_kinds": list(self.item_kinds),
                "only": self.only}

    def admits(self, facts: CaseFacts) -> bool:
        instant = facts.concluded_at if self.on == "concluded" else facts.accepted_at
        if instant is None or not self.start <= instant.astimezone(CHINA_TZ).date() <= self.end:
            return False
        if self.departments and facts.department not in self.departments:
            return False
        if self.items and facts.item_code not in self.items:
            return False
        if self.item_kinds and facts.item_kind not in self.item_kinds:
            return False
        risks = facts.risks()
        if self.only == "warnings" and "warnings" not in risks:
            return False
        if self.only == "anomalies" and "anomalies" not in risks:
            return False
        if self.only == "flagged" and not {"warnings", "anomalies"} & risks:
            return False
        return True


@dataclass(frozen=True)
class Sampling:
    """The sample size: attribute sampling (confidence, tolerable and expected rates) or a fixed n
    (the confidence and tolerable rate then still judge the result)."""

    confidence: Fraction
    tolerable: Fraction
    expected: Fraction
    fixed: int | None = None

    @classmethod
    def parse(cls, raw: object) -> Sampling:
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise InvalidSampling("sampling must be an object")
        unknown = set(raw) - {"confidence", "tolerable", "expected", "n"}
        if unknown:
            raise InvalidSampling(f"unknown sampling fields: {', '.join(sorted(unknown))}")
        confidence = rate(raw.get("confidence", "0.95"), "confidence")
        tolerable = rate(raw.get("tolerable", "0.05"), "tolerable")
        expected = rate(raw.get("expected", 0), "expected", allow_zero=True)
        fixed = raw.get("n")
        if fixed is not None and (isinstance(fixed, bool) or not isinstance(fixed, int) or not 1 <= fixed <= 20_000):
            raise InvalidSampling("n is a whole number from 1 to 20000")
        out = cls(confidence, tolerable, expected, fixed)
        if fixed is None:
            out.size()  # refuse what cannot be reached now, not at the draw
        return out

    def size(self) -> int:
        return self.fixed if self.fixed is not None else sample_size(self.confidence, self.tolerable, self.expected)

    def as_dict(self) -> dict[str, Any]:
        return {"confidence": str(self.confidence), "tolerable": str(self.tolerable), "expected": str(self.expected),
                "n": self.fixed, "size": self.size()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sampling:
        return cls(Fraction(d["confidence"]), Fraction(d["tolerable"]), Fraction(d["expected"]), d.get("n"))


def parse_checklist(raw: object) -> list[dict[str, str]]:
    if raw is None:
        return [dict(p) for p in DEFAULT_CHECKLIST]
    if not isinstance(raw, list) or not raw or len(raw) > 50:
        raise InvalidInput("checklist is a list of 1 to 50 points", code="invalid_field")
    out = []
    for p in raw:
        if isinstance(p, str):
            p = {"code": p, "label": p}
        if not isinstance(p, dict) or not isinstance(p.get("code"), str) or not p["code"].strip():
            raise InvalidInput("each checklist point has a code (and a label)", code="invalid_field")
        label = p.get("label", p["code"])
        if not isinstance(label, str):
            raise InvalidInput("a checklist point's label is a string", code="invalid_field")
        out.append({"code": p["code"].strip(), "label": label})
    if len({p["code"] for p in out}) != len(out):
        raise InvalidInput("a checklist point appears twice", code="invalid_field")
    return out


# -- the population, from the log ---------------------------------------------------------------

@dataclass
class CaseFacts:
    case_no: str
    department: str = ""
    item_code: str = ""
    item_kind: str = ""
    accepted_at: datetime | None = None
    concluded_at: datetime | None = None
    flags: set[str] = field(default_factory=set)
    fees: bool = False
    warnings: bool = False

    def risks(self) -> frozenset[str]:
        out = set()
        if self.warnings:
            out.add("warnings")
        if self.flags - {"calendar_provisional"}:
            out.add("anomalies")
        if "late_entry" in self.flags:
            out.add("late_entry")
        if self.fees:
            out.add("fees")
        return frozenset(out)

    def member(self) -> Member:
        return Member(self.case_no, self.department, self.item_code, self.item_kind, self.risks())


class Population:
    """Folds the log (case events and warning issues, in log order) into what the plans need."""

    def __init__(self) -> None:
        self.cases: dict[str, CaseFacts] = {}
        self._by_id: dict[UUID, str] = {}
        self.leaves = 0  # case events seen: the tree size they make

    def case_event(self, event: Any) -> None:
        self.leaves += 1
        step = event.STEP.value
        if step == "submitted":
            facts = CaseFacts(event.case_no, event.actor.get("department", ""), event.data.get("item_code", ""))
            self.cases[event.case_no] = facts
            self._by_id[event.originator_id] = event.case_no
        else:
            case_no = self._by_id.get(event.originator_id)
            if case_no is None:  # pragma: no cover - the log always begins a case with its submission
                return
            facts = self.cases[case_no]
        terms = event.derived.get("terms") if isinstance(event.derived, dict) else None
        if terms:
            facts.item_kind = terms.get("kind", facts.item_kind)
            facts.item_code = terms.get("code", facts.item_code)
        if step == "accepted":
            facts.accepted_at = event.occurred_at
        elif step == "concluded":
            facts.concluded_at = event.occurred_at
        elif step == "fee_charged":
            facts.fees = True
        facts.flags |= {f.get("code", "") for f in event.flags}

    def warning_issued(self, case_no: str) -> None:
        if case_no in self.cases:
            self.cases[case_no].warnings = True

    def members(self, criteria: Criteria) -> list[Member]:
        """The population in its canonical order: by case number."""
        return [f.member() for _, f in sorted(self.cases.items()) if criteria.admits(f)]


# -- the aggregate ------------------------------------------------------------------------------

def _text(raw: object, what: str, limit: int = 200, required: bool = True) -> str | None:
    return text_field(raw, what, limit, required)


class Audit(Aggregate):
    TOPIC = "esup.audit:Audit"

    class Event(Aggregate.Event):
        TOPIC = "esup.audit:Audit.Event"
        by: dict[str, Any]

    class PlanCreated(Aggregate.Created, Event):
        TOPIC = "esup.audit:Audit.PlanCreated"
        title: str
        criteria: dict[str, Any]
        sampling: dict[str, Any]
        design: dict[str, Any]
        checklist: list[dict[str, str]]

    Created = PlanCreated

    class PopulationFixed(Event):
        """The population at a checkpoint: who was in it, never changed by what came later."""

        TOPIC = "esup.audit:Audit.PopulationFixed"
        checkpoint: dict[str, Any]  # size, root (hex), note, position
        size: int
        digest: str  # SHA-256 over the ordered case numbers, one a line
        case_nos: list[str]
        derivation: str

        def apply(self, a: Audit) -> None:
            a.population = {"checkpoint": dict(self.checkpoint), "size": self.size, "digest": self.digest,
                            "case_nos": list(self.case_nos), "derivation": self.derivation}

    class Drawn(Event):
        TOPIC = "esup.audit:Audit.Drawn"
        draw_id: str
        seed: str
        method: str
        design: dict[str, Any]
        n: int
        sample: list[str]
        probabilities: dict[str, str]  # exact fractions
        probability_total: str  # Σ π over the whole population (= n)
        strata: list[dict[str, Any]]
        cases: list[dict[str, Any]]  # the drawn cases: department, item, kind, risks

        def apply(self, a: Audit) -> None:
            a.state = "drawn"
            a.draw = {"id": self.draw_id, "seed": self.seed, "method": self.method, "design": dict(self.design),
                      "n": self.n, "sample": list(self.sample), "probabilities": dict(self.probabilities),
                      "probability_total": self.probability_total, "strata": [dict(s) for s in self.strata], "drawn_at": self.timestamp}
            a.cases = {c["case_no"]: dict(c) for c in self.cases}

    class ReviewersAssigned(Event):
        TOPIC = "esup.audit:Audit.ReviewersAssigned"
        pool: list[dict[str, Any]]
        per_case: int
        assignments: dict[str, list[str]]

        def apply(self, a: Audit) -> None:
            a.state = "assigned"
            a.pool = [dict(r) for r in self.pool]
            a.per_case = self.per_case
            a.assignments = {k: list(v) for k, v in self.assignments.items()}

    class FindingRecorded(Event):
        TOPIC = "esup.audit:Audit.FindingRecorded"
        case_no: str
        reviewer: str
        points: dict[str, dict[str, Any]]  # checklist code -> {"result": conforming|deviation, "note"}
        note: str | None

        def apply(self, a: Audit) -> None:
            a.findings[(self.case_no, self.reviewer)] = {
                "case_no": self.case_no, "reviewer": self.reviewer, "points": {k: dict(v) for k, v in self.points.items()},
                "note": self.note, "recorded_at": self.timestamp}

    class Closed(Event):
        TOPIC = "esup.audit:Audit.Closed"
        results: dict[str, Any]

        def apply(self, a: Audit) -> None:
            a.state = "closed"
            a.results = dict(self.results)
            a.closed_at = self.timestamp

    def __init__(self, title: str, criteria: dict[str, Any], sampling: dict[str, Any], design: dict[str, Any],
                 checklist: list[dict[str, str]], by: dict[str, Any]) -> None:
        self.title = title
        self.criteria = dict(criteria)
        self.sampling = dict(sampling)
        self.design = dict(design)
        self.checklist = [dict(p) for p in checklist]
        self.planned_by = dict(by)
        self.state = "planned"
        self.population: dict[str, Any] | None = None
        self.draw: dict[str, Any] | None = None
        self.cases: dict[str, dict[str, Any]] = {}
        self.pool: list[dict[str, Any]] = []
        self.per_case = 0
        self.assignments: dict[str, list[str]] = {}
        self.findings: dict[tuple[str, str], dict[str, Any]] = {}
        self.results: dict[str, Any] | None = None
        self.closed_at: datetime | None = None

    # -- acts ---------------------------------------------------------------------------------------

    @classmethod
    def plan(cls, raw: object, by: dict[str, Any], at: datetime, id: UUID) -> Audit:
        if not isinstance(raw, dict):
            raise InvalidInput("send a plan as a JSON object", code="invalid_body")
        unknown = set(raw) - {"title", "population", "sampling", "design", "checklist"}
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
        title = _text(raw.get("title"), "title")
        criteria = Criteria.parse(raw.get("population"))
        sampling = Sampling.parse(raw.get("sampling"))
        design = Design.parse(raw.get("design"))
        checklist = parse_checklist(raw.get("checklist"))
        return cls._create(cls.PlanCreated, id=id, title=title, criteria=criteria.as_dict(), sampling=sampling.as_dict(),
                           design=design.as_dict(), checklist=checklist, by=by, timestamp=at)

    @property
    def criteria_(self) -> Criteria:
        return Criteria.parse(self.criteria)

    def design_(self) -> Design:
        return Design.parse(self.design)

    def sampling_(self) -> Sampling:
        return Sampling.from_dict(self.sampling)

    def _state(self, *allowed: str) -> None:
        if self.state not in allowed:
            raise AuditState(f"audit {self.id} is {self.state}; this needs it {' or '.join(allowed)}",
                             state=self.state)

    def record_draw(self, checkpoint: dict[str, Any], members: list[Member], seed: str, selection: Selection,
                    derivation: str, by: dict[str, Any], at: datetime) -> None:
        self._state("planned")
        from domain.sampling import population_digest

        case_nos = [m.case_no for m in members]
        self.trigger_event(self.PopulationFixed, checkpoint=checkpoint, size=len(case_nos),
                           digest=population_digest(case_nos),
                           case_nos=case_nos if len(case_nos) <= POPULATION_LIST_MAX else [],
                           derivation=derivation, by=by, timestamp=at)
        index = {m.case_no: m for m in members}
        cases = [{"case_no": c, "department": index[c].department, "item_code": index[c].item_code,
                  "item_kind": index[c].item_kind, "risks": sorted(index[c].risks),
                  "probability": str(selection.probabilities[c])} for c in selection.sample]
        self.trigger_event(self.Drawn, draw_id=str(draw_id(self.id)), seed=seed, method=TICKET,
                           design=self.design, n=len(selection.sample), sample=list(selection.sample),
                           probabilities={c: str(p) for c, p in selection.probabilities.items()},
                           probability_total=str(selection.total),
                           strata=[dict(s) for s in selection.strata], cases=cases, by=by, timestamp=at)

    def assign(self, pool: list[Reviewer], per_case: int, assignments: dict[str, list[str]], by: dict[str, Any],
               at: datetime) -> None:
        self._state("drawn")
        self.trigger_event(self.ReviewersAssigned, pool=[r.as_dict() for r in pool], per_case=per_case,
                           assignments=assignments, by=by, timestamp=at)

    def record_finding(self, reviewer: str, raw: object, by: dict[str, Any], at: datetime) -> dict[str, Any]:
        self._state("assigned")
        if not isinstance(raw, dict):
            raise InvalidInput("send a finding as a JSON object", code="invalid_body")
        unknown = set(raw) - {"case_no", "points", "note"}
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
        case_no = _text(raw.get("case_no"), "case_no", 50)
        if case_no not in self.assignments:
            raise InvalidInput(f"case {case_no} is not in this audit's sample", code="not_in_sample", case_no=case_no)
        if reviewer not in self.assignments[case_no]:
            raise NotAssigned(f"case {case_no} is not assigned to this reviewer", case_no=case_no)
        points = raw.get("points")
        codes = [p["code"] for p in self.checklist]
        if not isinstance(points, dict):
            raise InvalidInput("points is an object: checklist code -> {result, note}",
                               code="missing_field" if points is None else "invalid_field")
        missing = [c for c in codes if c not in points]
        if missing:
            raise InvalidInput(f"every checklist point needs a result: {', '.join(missing)}", code="missing_field",
                               missing=[f"points.{c}" for c in missing])
        extra = sorted(set(points) - set(codes))
        if extra:
            raise InvalidInput(f"not on this audit's checklist: {', '.join(extra)}", code="unknown_field")
        clean: dict[str, dict[str, Any]] = {}
        for c in codes:
            p = points[c]
            if isinstance(p, str):
                p = {"result": p}
            if not isinstance(p, dict) or p.get("result") not in RESULTS:
                raise InvalidInput(f"points.{c}.result is conforming or deviation", code="invalid_field")
            note = _text(p.get("note"), f"points.{c}.note", 2000, required=p["result"] == "deviation")
            clean[c] = {"result": p["result"], "note": note}
        note = _text(raw.get("note"), "note", 2000, required=False)
        self.trigger_event(self.FindingRecorded, case_no=case_no, reviewer=reviewer, points=clean, note=note, by=by,
                           timestamp=at)
        return self.findings[(case_no, reviewer)]

    def close(self, by: dict[str, Any], at: datetime) -> dict[str, Any]:
        self._state("assigned")
        missing = [{"case_no": c, "reviewer": r} for c, rs in sorted(self.assignments.items()) for r in rs
                   if (c, r) not in self.findings]
        if missing:
            raise FindingsIncomplete(f"{len(missing)} finding(s) still to record", missing=missing)
        self.trigger_event(self.Closed, results=self.evaluate(), by=by, timestamp=at)
        assert self.results is not None
        return self.results

    # -- evaluation ---------------------------------------------------------------------------------

    def deviating(self) -> dict[str, bool]:
        """A case deviates when any of its reviewers found any point deviating."""
        assert self.draw is not None
        out = {c: False for c in self.draw["sample"]}
        for (c, _), f in self.findings.items():
            if any(p["result"] == "deviation" for p in f["points"].values()):
                out[c] = True
        return out

    def evaluate(self) -> dict[str, Any]:
        assert self.draw is not None and self.population is not None
        sampling = self.sampling_()
        dev = self.deviating()
        n, d = len(dev), sum(dev.values())
        upper = upper_limit(d, n, sampling.confidence)
        probs = {c: Fraction(p) for c, p in self.draw["probabilities"].items()}
        estimate = ht_rate(dev, probs, self.population["size"])
        key = self.design.get("stratify_by") or "department"
        strata: dict[str, dict[str, Any]] = {}
        for c, y in dev.items():
            k = self.cases[c]["department" if key == "department" else "item_kind"]
            s = strata.setdefault(k, {"key": k, "n": 0, "deviations": 0})
            s["n"] += 1
            s["deviations"] += int(y)
        for s in self.draw["strata"]:
            strata.setdefault(s["key"], {"key": s["key"], "n": 0, "deviations": 0})["population"] = s["population"]
        for s in strata.values():
            s["rate"] = s["deviations"] / s["n"] if s["n"] else None
        points = {p["code"]: 0 for p in self.checklist}
        for f in self.findings.values():
            for code, p in f["points"].items():
                points[code] += p["result"] == "deviation"
        return {
            "n": n, "deviations": d, "rate": d / n, "confidence": float(sampling.confidence),
            "tolerable": float(sampling.tolerable), "upper_limit": upper,
            "exceeds_tolerable": upper > float(sampling.tolerable),
            "weighted_estimate": float(estimate), "weighted_estimate_exact": str(estimate),
            "population": self.population["size"], "strata_by": key,
            "strata": [strata[k] for k in sorted(strata)], "points": points,
            "deviating_cases": sorted(c for c, y in dev.items() if y),
        }

    def summary(self) -> dict[str, Any]:
        return {"id": str(self.id), "title": self.title, "state": self.state, "planned_at": self.created_on,
                "planned_by": self.planned_by, "population_criteria": self.criteria, "sampling": self.sampling,
                "design": self.design, "checklist": self.checklist,
                "population": None if self.population is None else {
                    k: v for k, v in self.population.items() if k != "case_nos"},
                "draw": self.draw, "cases": [self.cases[c] for c in (self.draw or {}).get("sample", [])],
                "pool": self.pool, "per_case": self.per_case, "assignments": self.assignments,
                "findings": [self.findings[k] for k in sorted(self.findings)], "results": self.results,
                "closed_at": self.closed_at}


AUDIT_TOPICS = (Audit.PlanCreated.TOPIC, Audit.PopulationFixed.TOPIC, Audit.Drawn.TOPIC, Audit.ReviewersAssigned.TOPIC,
                Audit.FindingRecorded.TOPIC, Audit.Closed.TOPIC)


def members_from(population: Population, criteria: Criteria) -> list[Member]:
    return population.members(criteria)


def feed(population: Population, events: Iterable[tuple[str, Any]]) -> Population:
    """Feed ``("case", event)`` and ``("warning", case_no)`` items in log order."""
    for kind, item in events:
        if kind == "case":
            population.case_event(item)
        else:
            population.warning_issued(item)
    return population


# -- a draw, exported and checked with no database -------------------------------------------------

EXPORT_FORMAT = "esup-audit-draw/1"


def verify_draw_export(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Check an exported draw offline: the checkpoint note verifies under the exported key and
    names the recorded size and root; the exported population has the recorded digest; and the
    draw, redone from the seed, the root, the population and the design, gives the recorded
    sample and inclusion probabilities exactly."""
    from domain import note
    from domain.sampling import draw as draw_sample, population_digest

    if doc.get("format") != EXPORT_FORMAT:
        raise InvalidInput(f"not an {EXPORT_FORMAT} document", code="invalid_export")
    cp = doc["checkpoint"]
    checks: dict[str, bool] = {}
    try:
        body = note.verify_checkpoint(cp["note"], note.Verifier.parse(doc["verifier_key"]))
        checks["signature"] = True
        checks["checkpoint"] = body.size == cp["size"] and body.root.hex() == cp["root"]
    except (note.NoteError, ValueError, KeyError):
        checks["signature"] = checks["checkpoint"] = False
    members = [Member(m["case_no"], m["department"], m.get("item_code", ""), m.get("item_kind", ""),
                      frozenset(m.get("risks", []))) for m in doc["population"]]
    checks["population"] = population_digest([m.case_no for m in members]) == doc["population_digest"]
    n = min(Sampling.from_dict(doc["sampling"]).size(), len(members))
    selection = draw_sample(doc["seed"], bytes.fromhex(cp["root"]), members, n, Design.parse(doc["design"]))
    checks["sample"] = list(selection.sample) == list(doc["sample"])
    checks["probabilities"] = {c: str(p) for c, p in selection.probabilities.items()} == dict(doc["probabilities"])
    return {"draw_id": doc.get("draw_id"), "matches": all(checks.values()), "checks": checks,
            "sample": list(selection.sample)}

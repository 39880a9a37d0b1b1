"""Ingesting steps: parse, authorise, apply to cases, save the batch in one transaction.

A batch is all or nothing: if any step is refused, nothing of the batch is stored and every
refusal is reported (and recorded, so refusals can be counted per source). A repeated source
event id returns the original outcome and stores nothing new.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.access import SYSTEM, Forbidden, Principal, Role  # noqa: F401  (re-exported: who is calling)
from domain.canonical import _normalise, canonical_bytes
from domain.case import Case, CaseRefused, IngestPolicy, case_id, idempotency_key
from domain.clock import Clock
from domain.errors import DomainError, InvalidInput, NotFound
from domain.ingest import ProvisionalMark, Refusal, SourceEvent, source_event_id
from domain.organisation import UnitKind
from domain.steps import ACCEPTED, SUBMITTED, Step, StepReport
from infra.pii import Sealer
from infra.refusal_store import RefusalStore
from services.apps import Ledger
from infra.logs import notifications_after
from services.reference import ReferenceService


@dataclass
class StepError:
    index: int
    error: DomainError
    report: StepReport | None = None
    raw_event_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.report.event_id if self.report else self.raw_event_id,
            "code": self.error.code,
            "status": self.error.status,
            "detail": self.error.detail,
            **self.error.public_context(),
        }


class BatchRefused(DomainError):
    """Some steps of a request were refused; nothing of it was stored."""

    def __init__(self, errors: list[StepError], batch: bool = True) -> None:
        first = errors[0].error
        statuses = {e.error.status for e in errors}
        single = len(errors) == 1 and not batch
        super().__init__(
            first.detail if single else f"{len(errors)} of the batch's steps refused; nothing was stored",
            code=first.code if single else "batch_refused",
            **(first.context if single else {}),
        )
        self.status = statuses.pop() if len(statuses) == 1 else 422
        self.errors = errors
        if single:  # one step: its own evidence (e.g. event_id_reused's original and new) at the top
            self.context = dict(first.context)


@dataclass
class Outcome:
    status: str  # "created" or "duplicate"
    event: Case.Event
    case_no: str

    def as_dict(self) -> dict[str, Any]:
        e = self.event
        out = {
            "status": self.status,
            "event_id": e.source_event_id,
            "case_no": self.case_no,
            "step": e.STEP.value,
            "version": e.originator_version,
            "recorded_at": e.timestamp,
            "hash": e.hash,
            "flags": e.flags,
        }
        for key in ("promised_due_at", "legal_due_at", "on_time"):
            if key in e.derived:
                out[key] = e.derived[key]
        return out


@dataclass
class _Work:
    cases: dict[str, Case | None] = field(default_factory=dict)
    keys: list[Any] = field(default_factory=list)  # SourceEvent.Admitted records and ProvisionalMarks
    outcomes: list[Outcome | None] = field(default_factory=list)
    errors: list[StepError] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # idempotency key -> index in this batch
    departments: dict[str, bool] = field(default_factory=dict)  # department -> known (this batch)
    calendars: dict[tuple[str, str | None], Any] = field(default_factory=dict)  # (department, window) -> calendar


class IngestService:
    def __init__(
        self,
        ledger: Ledger,
        reference: ReferenceService,
        clock: Clock,
        sealer: Sealer,
        policy: IngestPolicy = IngestPolicy(),
        max_batch: int = 1000,
        refusal_sample: int = 100,
        case_cache_size: int = 20000,
    ) -> None:
        self.ledger = ledger
        self.reference = reference
        self.clock = clock
        self.sealer = sealer
        self.policy = policy
        self.max_batch = max_batch
        self._refusal_lock = threading.Lock()
        # Refusals are counted and sampled beside the ledger, not stored one event each.
        self.refusals = RefusalStore(ledger.recorder, refusal_sample)
        self._legacy_counts: dict[str, dict[str, int]] | None = None
        # Other aggregates a batch's new case events move, saved in the same transaction (e.g. a
        # parallel-approval bundle whose part concluded): each takes the changed cases (with
        # their pending events) and returns the aggregates to save beside them.
        self.companions: list[Callable[[list[Case]], list[Any]]] = []
        # Cases as of their last save by this service (most recently used last). A batch takes
        # the ones it needs out, brings them up to the store's newest version in its one load
        # query (another writer may have moved them), and puts them back only once saved: a
        # refused or failed batch leaves nothing half-applied behind.
        self._cases: OrderedDict[str, Case] = OrderedDict()
        self._cases_lock = threading.Lock()
        self.case_cache_size = case_cache_size

    def report(self, raws: list[Any], principal: Principal = SYSTEM, batch: bool = True) -> list[Outcome]:
        """Apply a batch of steps. ``batch=False``: one step, refused with its own code."""
        if not isinstance(raws, list):
            raise InvalidInput("a batch is a JSON array of steps", code="invalid_body")
        if not raws:
            raise InvalidInput("a batch needs at least one step", code="empty_batch")
        if len(raws) > self.max_batch:
            raise InvalidInput(f"a batch holds at most {self.max_batch} steps (got {len(raws)})", code="batch_too_large")
        reports: list[StepReport | None] = []
        errors: list[StepError] = []
        for i, raw in enumerate(raws):
            try:
                report = StepReport.parse(raw)
                if not principal.may_report_for(report.actor.department):
                    raise Forbidden(f"this key may not report for department {report.actor.department}", code="forbidden_department")
                reports.append(report)
            except DomainError as exc:
                raw_id = raw.get("event_id") if isinstance(raw, dict) and isinstance(raw.get("event_id"), str) else None
                errors.append(StepError(i, exc, raw_event_id=raw_id))
                reports.append(None)
        if errors:
            self._refuse(errors, principal, batch)
        for attempt in range(5):
            work = self._apply(reports, principal)  # type: ignore[arg-type]
            if work.errors:
                self._refuse(work.errors, principal, batch)
            changed = [c for c in work.cases.values() if c is not None]
            extra = [agg for companion in self.companions for agg in companion(changed)]
            try:
                self._save(work, extra)
            except IntegrityError:
                # A racing writer got there first (same case, or the same source event id):
                # reload and decide again; a true duplicate then answers as one.
                reused = [k for k in work.keys if isinstance(k, SourceEvent.Admitted) and self._stored_elsewhere(k)]
                if reused:
                    errs = []
                    for k in reused:
                        i, report = next((i, r) for i, r in enumerate(reports)
                                         if r and r.event_id == k.event_id and r.actor.department == k.department)
                        original = self._stored_key(k.originator_id)
                        stored = self._stored_event(self.ledger.repository.get(case_id(original.case_no)), original.case_version)
                        shown = self._stored_content(original.case_no, stored, shown=True)
                        errs.append(StepError(i, _reused(report, _differences(shown, _content(report)) or ["case_no"], shown, stored), report))
                    self._refuse(errs, principal, batch)
                continue
            self._keep(work)
            return [o for o in work.outcomes if o is not None]
        raise DomainError("too much contention on these cases; retry", code="contention")  # pragma: no cover

    def _apply(self, reports: list[StepReport], principal: Principal) -> _Work:
        work = _Work()
        recorded_at = self.clock.now()
        self.reference.refresh()  # once per batch: reference data is read as of the batch's start
        work.cases.update(self._load_many(list(dict.fromkeys(r.case_no for r in reports))))
        for i, report in enumerate(reports):
            key = idempotency_key(report.actor.department, report.event_id)
            if key in work.seen:
                first = reports[work.seen[key]]
                differs = _differences(_content(first), _content(report))
                if differs:  # one id, two different steps in one batch: which one is meant?
                    work.errors.append(StepError(i, _reused(report, differs, _content(first, shown=True), None), report))
                    work.outcomes.append(None)
                    continue
                earlier = work.outcomes[work.seen[key]]
                work.outcomes.append(Outcome("duplicate", earlier.event, earlier.case_no) if earlier else None)
                continue
            work.seen[key] = i
            try:
                work.outcomes.append(self._apply_one(work, report, principal, key, recorded_at))
            except DomainError as exc:
                work.errors.append(StepError(i, exc, report))
                work.outcomes.append(None)
        return work

    def _apply_one(self, work: _Work, report: StepReport, principal: Principal, key: str, recorded_at) -> Outcome:
        if report.case_no not in work.cases:
            work.cases[report.case_no] = self._load(report.case_no)
        case = work.cases[report.case_no]
        if case is not None and key in case.source_event_ids:
            stored = self._stored_event(case, case.source_event_ids[key])
            differs = _differences(self._stored_content(case.case_no, stored), _content(report))
            if differs:  # same id, other content: an integrator's id bug must not lose data silently
                raise _reused(report, differs, self._stored_content(case.case_no, stored, shown=True), stored)
            return Outcome("duplicate", stored, case.case_no)
        if case is not None and not principal.may_read(case.department):
            # Answered exactly as if the case did not exist (as GET does): a department key must
            # not learn which case numbers exist elsewhere. A ``submitted`` on a number in use is
            # refused as for any number in use: case numbers are one namespace.
            if report.step is SUBMITTED:
                raise CaseRefused(f"case {case.case_no} was already submitted", code="case_exists")
            raise NotFound(f"case {report.case_no} is unknown: its first step must be submitted", code="unknown_case")
        ref = self.reference
        known = work.departments.get(report.actor.department)
        if known is None:
            known = work.departments[report.actor.department] = (
                ref.unit(UnitKind.DEPARTMENT, report.actor.department, refresh=False) is not None)
        if not known:
            raise InvalidInput(f"unknown department {report.actor.department}", code="unknown_department")
        if case is None:
            if report.step is not SUBMITTED:
                raise NotFound(f"case {report.case_no} is unknown: its first step must be submitted", code="unknown_case")
            item = ref.item(report.item_code or "", refresh=False)
            if item is None:
                raise InvalidInput(f"unknown item {report.item_code}", code="unknown_item")
            sealed = self.sealer.seal(report.applicant) if report.applicant else None
            case = Case.submit(
                report, recorded_at=recorded_at, terms=item.version_at(report.occurred_at),
                sealed_applicant=sealed, policy=self.policy,
            )
            work.cases[report.case_no] = case
            event = case.pending_events[-1]
        else:
            terms = None
            if report.step is ACCEPTED:
                item = ref.item(case.item_code, refresh=False)
                terms = item.version_at(report.occurred_at) if item else None
            where = (case.department, case.window)
            calendar = work.calendars.get(where)
            if calendar is None:  # reference data is read as of the batch's start: once per place a batch
                calendar = work.calendars[where] = ref.calendar(ref.center_of(*where, refresh=False), refresh=False)
            marked = set(case.provisional_ever) if case.provisional_ever else _NONE
            event = case.record(report, recorded_at=recorded_at, calendar=calendar, terms=terms, policy=self.policy)
            # Deadlines leaning on an unpublished year: mark the case (once per year) for settlement.
            if len(case.provisional_ever) != len(marked):  # the set only grows
                work.keys.extend(ProvisionalMark.mark(case.case_no, y, recorded_at) for y in sorted(case.provisional_ever - marked))
        work.keys.append(SourceEvent.admission(report.actor.department, report.event_id, case.case_no, event.originator_version, recorded_at))
        return Outcome("created", event, case.case_no)  # type: ignore[arg-type]

    def _save(self, work: _Work, extra: Sequence[Any] = ()) -> None:
        """The batch's new events in one transaction: the cases' pending events, then the source
        event records and marks, then the companions' aggregates (the library's ``save`` does the
        same, after a runtime Protocol check per object that cost more than the rest of its
        bookkeeping)."""
        events: list[Any] = []
        for case in work.cases.values():
            if case is not None:
                events.extend(case.collect_events())
        for key in work.keys:
            if isinstance(key, SourceEvent.Admitted):
                events.append(key)
            else:
                events.extend(key.collect_events())
        for agg in extra:
            events.extend(agg.collect_events())
        # What ``events.put`` does, without the Recording and Notification objects it builds for
        # every event and that nothing here reads.
        store = self.ledger.events
        store.recorder.insert_events(list(map(store.mapper.to_stored_event, events)))

    def _load_many(self, case_nos: list[str]) -> dict[str, Case | None]:
        """The batch's cases in one query: each cached one brought up to the store's newest
        version (its cached version must still be there: else it is loaded afresh), the others
        replayed from their events. None for a case that does not exist."""
        with self._cases_lock:
            taken = {no: self._cases.pop(no) for no in case_nos if no in self._cases}
        ids = {no: case_id(no) for no in case_nos}
        select = getattr(self.ledger.recorder, "select_events_from", None)
        if select is None:  # another recorder: one query per case
            return {no: self._load(no) for no in case_nos}
        rows = select([(ids[no], taken[no].version if no in taken else 0) for no in case_nos])
        by_id: dict[Any, list[Any]] = {}
        for row in rows:
            by_id.setdefault(row.originator_id, []).append(row)
        out: dict[str, Case | None] = {}
        to_event = self.ledger.mapper.to_domain_event
        again = []
        for no in case_nos:
            stored = by_id.get(ids[no], [])
            case = taken.get(no)
            if case is not None:
                if not stored or stored[0].originator_version != case.version:
                    again.append(no)  # the version it was cached at is gone (a damaged store): no shortcut
                    continue
                stored = stored[1:]
            for row in stored:
                case = to_event(row).mutate(case)  # type: ignore[attr-defined]
            out[no] = case
        if again:
            rows = select([(ids[no], 0) for no in again])
            for no in again:
                case = None
                for row in rows:
                    if row.originator_id == ids[no]:
                        case = to_event(row).mutate(case)  # type: ignore[attr-defined]
                out[no] = case
        return out

    def _keep(self, work: _Work) -> None:
        """The batch is stored: its cases, as saved, become the cached ones."""
        with self._cases_lock:
            cache = self._cases
            for no, case in work.cases.items():
                if case is None:
                    continue
                cached = cache.get(no)
                if cached is None or cached.version <= case.version:
                    cache[no] = case
                    cache.move_to_end(no)
            while len(cache) > self.case_cache_size:
                cache.popitem(last=False)

    def _load(self, case_no: str) -> Case | None:
        try:
            return self.ledger.repository.get(case_id(case_no))
        except AggregateNotFoundError:
            return None

    def _stored_event(self, case: Case, version: int) -> Case.Event:
        for e in case.pending_events:
            if e.originator_version == version:
                return e  # type: ignore[return-value]
        return next(iter(self.ledger.events.get(case.id, gt=version - 1, lte=version)))  # type: ignore[return-value]

    def _stored_content(self, case_no: str, e: Case.Event, shown: bool = False) -> dict[str, Any]:
        """What the source said in a stored step, in the shape of ``_content``. The applicant is
        unsealed to compare (``shown``: left out, personal data never goes into an error)."""
        data = dict(e.data)
        sealed = data.pop("applicant", None)
        item_code = data.pop("item_code", None) if e.STEP is Step.SUBMITTED else None
        out = {"case_no": case_no, "step": e.STEP.value, "occurred_at": e.occurred_at, **e.actor,
               "item_code": item_code, "data": data}
        if shown:
            out.update(event_id=e.source_event_id, version=e.originator_version, recorded_at=e.timestamp)
        elif sealed is not None:
            try:
                out["applicant"] = self.sealer.open(sealed)
            except Exception:  # damaged personal data cannot be compared; the chain check reports it
                out["applicant"] = None
        return out

    def _stored_key(self, key_id: Any) -> SourceEvent:
        return self.ledger.repository.get(key_id)

    def _stored_elsewhere(self, key: SourceEvent.Admitted) -> bool:
        try:
            stored = self._stored_key(key.originator_id)
        except AggregateNotFoundError:
            return False
        return stored.case_no != key.case_no

    def _refuse(self, errors: list[StepError], principal: Principal, batch: bool) -> None:
        now = self.clock.now()
        records = []
        for e in errors:
            source = e.report.actor.department if e.report else (sorted(principal.departments)[0] if principal.departments else principal.key)
            records.append({
                "source": source, "event_id": e.report.event_id if e.report else e.raw_event_id,
                "case_no": e.report.case_no if e.report else None, "step": e.report.step.value if e.report else None,
                "code": e.error.code, "detail": e.error.detail, "at": now,
            })
        with self._refusal_lock:
            self.refusals.record(records)
        raise BatchRefused(errors, batch)

    def refusal_counts(self) -> dict[str, dict[str, int]]:
        """Refusals per source and code: the counters, plus the refusals older versions stored
        one record each in the ledger (read once: no new ones are written)."""
        if self._legacy_counts is None:
            legacy: dict[str, dict[str, int]] = {}
            for n in notifications_after(self.ledger.recorder, 0, [Refusal.Recorded.TOPIC]):
                e = self.ledger.mapper.to_domain_event(n)
                by_code = legacy.setdefault(e.source, {})
                by_code[e.code] = by_code.get(e.code, 0) + 1
            self._legacy_counts = legacy
        counts = {source: dict(codes) for source, codes in self._legacy_counts.items()}
        for source, codes in self.refusals.counts().items():
            mine = counts.setdefault(source, {})
            for code, n in codes.items():
                mine[code] = mine.get(code, 0) + n
        return counts

    def recent_refusals(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The last refusals of each source (at most the configured sample), newest first."""
        return self.refusals.recent(limit)


_NONE: frozenset[int] = frozenset()

# What identifies a step's content: everything the source said (not when we recorded it).
_CONTENT_KEYS = ("case_no", "step", "occurred_at", "department", "window", "staff", "item_code", "data", "applicant")


def _content(report: StepReport, shown: bool = False) -> dict[str, Any]:
    out = {"case_no": report.case_no, "step": report.step.value, "occurred_at": report.occurred_at,
           **report.actor.as_dict(), "item_code": report.item_code if report.step is Step.SUBMITTED else None,
           "data": dict(report.data)}
    if shown:
        out["event_id"] = report.event_id
    elif report.applicant is not None:
        out["applicant"] = report.applicant
    return out


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The content fields in which two reports of one event id differ (canonical comparison:
    instants by their UTC value, data as JSON)."""
    out = []
    for key in _CONTENT_KEYS:
        if key == "applicant":
            x, y = a.get(key, _ABSENT), b.get(key, _ABSENT)
            if x is None:  # the stored personal data cannot be read: not judged here
                continue
            if x != y:
                out.append(key)
        elif canonical_bytes(a.get(key)) != canonical_bytes(b.get(key)):
            out.append(key)
    return out


_ABSENT = object()


def _reused(report: StepReport, differs: list[str], original: dict[str, Any], stored: Case.Event | None) -> CaseRefused:
    where = f"case {original['case_no']} v{stored.originator_version}" if stored is not None else "this batch"
    return CaseRefused(
        f"event id {report.event_id} was already used for another step ({where}); it differs in "
        f"{', '.join(differs)}. Nothing was stored: send the new step with a new event id",
        code="event_id_reused", differs=differs,
        original=_normalise({k: v for k, v in original.items() if k != "applicant"}),
        new=_normalise(_content(report, shown=True)),
    )

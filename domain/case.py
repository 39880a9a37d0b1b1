"""The case (办件): every step is an immutable event, chained by SHA-256 per case.

A step either applies (and is stored, with any irregularities flagged on it so supervision
sees them) or is refused with a stable code. Deadlines are decided when a step moves them
(acceptance, resumption, extension) using the working calendar in force, and stored on that
event, so replay never depends on a calendar that may since have changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.canonical import GENESIS_HASH, chain_hash
from domain.catalogue import ItemVersion, esup_id
from domain.errors import Conflict, DomainError, InvalidInput
from domain.limits import Limit, Unit
from domain.steps import (
    ACCEPTED, AFTER_CLOSE, CONCLUDED, DELIVERED, EARLIEST, EXTENDED, FEE_CHARGED, FUTURE_TOLERANCE, RATED, REFUSED, RESUMED,
    REVIEWED, STEP_ZH, SUBMITTED, SUSPENDED, TERMINAL, Step, StepReport, status_after,
)


class Calendar(Protocol):
    def deadline_for(self, start: datetime, amount: int | Fraction, unit: Unit) -> datetime: ...

    def elapsed(self, a: datetime, b: datetime, unit: Unit) -> int | Fraction: ...

    def unpublished_years(self, first: date | datetime, last: date | datetime) -> tuple[int, ...]: ...


class CaseAct(str, Enum):
    """Acts the ledger records on a case that no source reports (not accepted as steps)."""

    DEADLINES_SETTLED = "deadlines_settled"  # provisional deadlines recomputed on a published year


@dataclass(frozen=True)
class IngestPolicy:
    """Thresholds for what is flagged as irregular (never refused)."""

    # Steps keyed in long after they happened are a sign of work outside the system (体外循环).
    late_entry_after: timedelta = timedelta(hours=24)


DEFAULT_POLICY = IngestPolicy()

# Main stages of the handling flow, in order; used to spot skipped and out-of-order steps.
STAGE = {
    Step.SUBMITTED: 0,
    Step.SUPPLEMENT_REQUESTED: 0,
    Step.SUPPLEMENT_RECEIVED: 0,
    Step.ACCEPTED: 1,
    Step.UNDERTAKEN: 2,
    Step.REVIEWED: 3,
    Step.DECIDED: 4,
    Step.CONCLUDED: 5,
}
NEEDS_ACCEPTANCE = frozenset({Step.UNDERTAKEN, Step.REVIEWED, Step.DECIDED, Step.CONCLUDED, Step.SUSPENDED, Step.EXTENDED})
_UNDERTAKEN_VALUE, _DECIDED_VALUE = Step.UNDERTAKEN.value, Step.DECIDED.value


def idempotency_key(department: str, event_id: str) -> str:
    """Source event ids are unique per reporting department."""
    return f"{department}\x1f{event_id}"


@lru_cache(maxsize=1 << 16)  # a case's id is needed at each of its steps; uuid5 is a SHA-1
def case_id(case_no: str) -> UUID:
    return esup_id(f"case:{case_no}")


class CaseRefused(DomainError):
    """A step that cannot be applied to the case as it stands."""

    status = 409


_ZERO = Fraction(0)  # Fractions are immutable: one zero serves every case (building one is slow)


def _frac(value: str | int | Fraction | None) -> Fraction:
    return Fraction(value) if value is not None else _ZERO


@dataclass
class Suspension:
    procedure: str
    started_at: datetime
    ended_at: datetime | None = None


class Case(Aggregate):
    TOPIC = "esup.case:Case"

    class Event(Aggregate.Event):
        """Every case step: who, when it happened, what, what the system derived, flags, chain."""

        TOPIC = "esup.case:Case.Event"
        source_event_id: str
        occurred_at: datetime
        actor: dict[str, Any]
        data: dict[str, Any]
        derived: dict[str, Any]
        flags: list[dict[str, Any]]
        prev_hash: str
        hash: str

        STEP: ClassVar[Step]

        def apply(self, case: Case) -> None:
            case._apply(self)  # what every step changes (chain, flags, deadlines, status) ...
            self.change(case)  # ... and what this step changes

        def change(self, case: Case) -> None:
            """This step's own effect on the case (none: a delivery changes only the history)."""

        def hash_body(self, case_no: str) -> dict[str, Any]:
            return _hash_body(case_no, self.originator_version, self.STEP, self.timestamp, vars(self))

        # Typed reads of what every step carries. The stored form (``actor``, ``data``,
        # ``derived``) is what the chain hashes, so it stays as it is; these name its parts.

        @property
        def department(self) -> str:
            return self.actor["department"]

        @property
        def window(self) -> str | None:
            return self.actor.get("window")

        @property
        def staff(self) -> str | None:
            return self.actor.get("staff")

        @property
        def terms(self) -> dict[str, Any] | None:
            """The catalogue terms the step applied (submitted, accepted), as stored."""
            return self.derived.get("terms")

        @property
        def promised_due_at(self) -> datetime | None:
            """The promised deadline this step set or moved (None: it set none)."""
            return self.derived.get("promised_due_at")

        @property
        def legal_due_at(self) -> datetime | None:
            return self.derived.get("legal_due_at")

    class Submitted(Aggregate.Created, Event):
        TOPIC = "esup.case:Case.Submitted"
        STEP = Step.SUBMITTED
        case_no: str

        @property
        def item_code(self) -> str:
            return self.data["item_code"]

        def change(self, case: Case) -> None:
            case.item_code = self.data["item_code"]
            case.department = self.actor["department"]
            case.window = self.actor.get("window")
            case.applicant = self.data.get("applicant")
            case.applicant_kind = self.data.get("applicant_kind")
            case.submitted_at = self.occurred_at

        @property
        def applicant(self) -> str | None:
            """The applicant's personal data, sealed (opaque here)."""
            return self.data.get("applicant")

    Created = Submitted  # so the library does not define an untopicked Created

    class SupplementRequested(Event):
        TOPIC = "esup.case:Case.SupplementRequested"
        STEP = Step.SUPPLEMENT_REQUESTED

        def change(self, case: Case) -> None:
            case.supplements += 1

    class SupplementReceived(Event):
        TOPIC = "esup.case:Case.SupplementReceived"
        STEP = Step.SUPPLEMENT_RECEIVED

    class Accepted(Event):
        TOPIC = "esup.case:Case.Accepted"
        STEP = Step.ACCEPTED

        def change(self, case: Case) -> None:
            case.accepted_at = self.occurred_at

    class Refused(Event):
        TOPIC = "esup.case:Case.Refused"
        STEP = Step.REFUSED

        @property
        def reason(self) -> str | None:
            return self.data.get("reason")

        def change(self, case: Case) -> None:
            case.closed_at = self.occurred_at

    class Undertaken(Event):
        TOPIC = "esup.case:Case.Undertaken"
        STEP = Step.UNDERTAKEN

    class Reviewed(Event):
        TOPIC = "esup.case:Case.Reviewed"
        STEP = Step.REVIEWED

    class Decided(Event):
        TOPIC = "esup.case:Case.Decided"
        STEP = Step.DECIDED

        @property
        def granted(self) -> bool:
            return self.data["granted"]

        def change(self, case: Case) -> None:
            case.granted = self.granted

    class Concluded(Event):
        TOPIC = "esup.case:Case.Concluded"
        STEP = Step.CONCLUDED

        @property
        def result(self) -> str | None:
            return self.data.get("result")

        @property
        def on_time(self) -> bool | None:
            """Concluded by the promised deadline (None: no deadline was set)."""
            return self.derived.get("on_time")

        @property
        def within_legal(self) -> bool | None:
            return self.derived.get("within_legal")

        def change(self, case: Case) -> None:
            case.closed_at = case.concluded_at = self.occurred_at
            case.result = self.result
            case.on_time = self.on_time
            case.within_legal = self.within_legal
            if case.suspended:  # concluded inside a special procedure: it ends here
                case.suspensions[-1].ended_at = self.occurred_at

    class Delivered(Event):
        TOPIC = "esup.case:Case.Delivered"
        STEP = Step.DELIVERED

    class Suspended(Event):
        TOPIC = "esup.case:Case.Suspended"
        STEP = Step.SUSPENDED

        @property
        def procedure(self) -> str:
            """The special procedure (特别程序) that stops the clock."""
            return self.data["procedure"]

        def change(self, case: Case) -> None:
            case.suspensions.append(Suspension(self.procedure, self.occurred_at))

    class Resumed(Event):
        TOPIC = "esup.case:Case.Resumed"
        STEP = Step.RESUMED

        def change(self, case: Case) -> None:
            case.suspensions[-1].ended_at = self.occurred_at

    class Extended(Event):
        TOPIC = "esup.case:Case.Extended"
        STEP = Step.EXTENDED

        @property
        def value(self) -> int:
            return self.data["value"]

        @property
        def unit(self) -> str:
            return self.data["unit"]

        def change(self, case: Case) -> None:
            case.extensions += 1

    class FeeCharged(Event):
        TOPIC = "esup.case:Case.FeeCharged"
        STEP = Step.FEE_CHARGED

        @property
        def amount(self) -> str:
            return self.data["amount"]

        def change(self, case: Case) -> None:
            case.fees += 1
            case.fee_total = f"{float(_frac(case.fee_total) + Fraction(self.amount)):.2f}"

    class Withdrawn(Event):
        TOPIC = "esup.case:Case.Withdrawn"
        STEP = Step.WITHDRAWN

        def change(self, case: Case) -> None:
            case.closed_at = self.occurred_at

    class Rated(Event):
        TOPIC = "esup.case:Case.Rated"
        STEP = Step.RATED

        @property
        def score(self) -> int:
            return self.data["score"]

        def change(self, case: Case) -> None:
            case.score = self.score

    class DeadlinesSettled(Event):
        """Deadlines computed on assumed weekdays (``calendar_provisional``), recomputed once the
        year's schedule was published. Chained like every step; ``derived`` holds the new
        deadlines (and on_time for a concluded case), ``data`` the years and the old deadlines."""

        TOPIC = "esup.case:Case.DeadlinesSettled"
        STEP = CaseAct.DEADLINES_SETTLED

        def change(self, case: Case) -> None:
            if "on_time" in self.derived:
                case.on_time = self.derived["on_time"]
                case.within_legal = self.derived["within_legal"]

    # -- state ---------------------------------------------------------------------------

    def __init__(self, case_no: str) -> None:
        self.case_no = case_no
        self.status = Step.SUBMITTED.value
        self.item_code: str = ""
        self.department: str = ""
        self.window: str | None = None
        self.applicant: str | None = None  # sealed personal data (opaque here)
        self.applicant_kind: str | None = None
        self.submitted_at: datetime | None = None
        self.accepted_at: datetime | None = None
        self.concluded_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.terms: ItemVersion | None = None  # item version in force at acceptance (or submission)
        self.promised_due_at: datetime | None = None
        self.legal_due_at: datetime | None = None
        self.promised_extra = _ZERO  # units added by suspensions and extensions
        self.legal_extra = _ZERO
        self.suspensions: list[Suspension] = []
        self.extensions = 0
        self.granted: bool | None = None
        self.result: str | None = None
        self.on_time: bool | None = None
        self.within_legal: bool | None = None
        self.fees = 0
        self.fee_total = "0.00"
        self.score: int | None = None
        self.supplements = 0
        self.stage = 0
        self.steps_seen: set[str] = set()
        self.last_occurred_at: datetime | None = None
        self.last_hash = GENESIS_HASH
        self.flags: list[dict[str, Any]] = []
        self.source_event_ids: dict[str, int] = {}
        # Years the current deadlines were computed without (assumed weekdays), and every year
        # ever so flagged (each gets one settlement marker).
        self.provisional_years: tuple[int, ...] = ()
        self.provisional_ever: set[int] = set()
        self.extended_promised = _ZERO  # units added by extensions alone (not suspensions)
        self.extended_legal = _ZERO

    @staticmethod
    def create_id(case_no: str) -> UUID:
        return case_id(case_no)

    @property
    def suspended(self) -> bool:
        return bool(self.suspensions) and self.suspensions[-1].ended_at is None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def _apply(self, e: Case.Event) -> None:
        """What every step changes: chain, flags, stage, terms, deadlines, status. The step's
        own effect is its event's ``change``."""
        step = e.STEP
        d = e.derived
        self.steps_seen.add(step._value_)  # _value_: .value is a Python-level property
        if isinstance(step, Step):  # acts of the ledger carry no source's event id
            self.source_event_ids[idempotency_key(e.actor["department"], e.source_event_id)] = e.originator_version
        if step in STAGE:
            self.stage = max(self.stage, STAGE[step])
        if isinstance(step, Step) and (self.last_occurred_at is None or e.occurred_at > self.last_occurred_at):
            self.last_occurred_at = e.occurred_at  # business time of the steps, not of the ledger's acts
        for f in e.flags:
            self.flags.append({**f, "version": e.originator_version, "step": step._value_})
        self.last_hash = e.hash
        if "terms" in d:
            self.terms = _terms_of(d["terms"])
        for key in ("promised_due_at", "legal_due_at"):
            if key in d:
                setattr(self, key, d[key])
        if "promised_extra" in d:
            if step is EXTENDED:
                self.extended_promised += _frac(d["promised_extra"]) - self.promised_extra
                self.extended_legal += _frac(d["legal_extra"]) - self.legal_extra
            self.promised_extra = _frac(d["promised_extra"])
            self.legal_extra = _frac(d["legal_extra"])
        if "promised_due_at" in d:  # every step that decides deadlines says whether they are provisional
            self.provisional_years = tuple(d.get("provisional_years", ()))
            self.provisional_ever.update(self.provisional_years)
        if isinstance(step, Step):
            self.status = status_after(self.status, step)

    # -- commands --------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        report: StepReport,
        *,
        recorded_at: datetime,
        terms: ItemVersion,
        sealed_applicant: str | None = None,
        policy: IngestPolicy = DEFAULT_POLICY,
    ) -> Case:
        if report.step is not SUBMITTED:
            raise CaseRefused(f"case {report.case_no} is unknown: its first step must be submitted", code="unknown_case")
        _check_times(report, recorded_at, None)
        data = dict(report.data)
        data["item_code"] = report.item_code
        if sealed_applicant is not None:
            data["applicant"] = sealed_applicant
        flags = _common_flags(report, recorded_at, policy, None)
        if not terms.in_force_on(report.occurred_at.date()):
            flags.append(_flag("item_not_in_force", f"事项 {terms.code} 在 {report.occurred_at.date()} 不在有效期内 "
                                                        f"(item {terms.code} is not in force on {report.occurred_at.date()})"))
        if terms.department != report.actor.department:
            flags.append(_flag("department_mismatch", f"事项 {terms.code} 属于部门 {terms.department} "
                                                          f"(item {terms.code} belongs to department {terms.department})"))
        fields = dict(
            source_event_id=report.event_id,
            occurred_at=report.occurred_at,
            actor=report.actor.as_dict(),
            data=data,
            derived={"terms": terms.as_dict()},
            flags=flags,
        )
        digest = chain_hash(GENESIS_HASH, _hash_body(report.case_no, 1, SUBMITTED, recorded_at, fields))
        if cls is not Case:  # pragma: no cover - a subclass: the library's way
            return cls._create(
                cls.Submitted, case_no=report.case_no, timestamp=recorded_at, prev_hash=GENESIS_HASH, hash=digest, **fields
            )
        # What ``_create`` does for this class, with the event's fields set as its dataclass
        # __init__ sets them (the same names in the same order: checked below EVENT_CLASSES), as
        # ``record`` does; tests/unit/test_fast_events.py compares with the library's event.
        event = object.__new__(Case.Submitted)
        event.__dict__.update(
            originator_id=case_id(report.case_no), originator_version=1, timestamp=recorded_at,
            originator_topic=Case.TOPIC, **fields, prev_hash=GENESIS_HASH, hash=digest, case_no=report.case_no,
        )
        case: Case = event.mutate(None)  # type: ignore[assignment]
        case._pending_events.append(event)
        return case

    def record(
        self,
        report: StepReport,
        *,
        recorded_at: datetime,
        calendar: Calendar,
        terms: ItemVersion | None = None,
        policy: IngestPolicy = DEFAULT_POLICY,
    ) -> Case.Event:
        """Apply one step (not ``submitted``). ``terms``: the item version in force at the step."""
        step = report.step
        if step is SUBMITTED:
            raise CaseRefused(f"case {self.case_no} was already submitted", code="case_exists")
        if idempotency_key(report.actor.department, report.event_id) in self.source_event_ids:
            raise Conflict("this event id was already recorded on this case", code="duplicate_event")
        if self.closed and step not in AFTER_CLOSE:
            raise CaseRefused(
                f"case {self.case_no} is closed ({self.status}); no {step.value} step can follow", code="case_closed"
            )
        if step is RESUMED and not self.suspended:
            raise CaseRefused(f"case {self.case_no} is not suspended", code="not_suspended")
        if step is SUSPENDED and self.suspended:
            raise CaseRefused(f"case {self.case_no} is already suspended", code="already_suspended")
        if step is ACCEPTED and self.accepted_at is not None:
            raise CaseRefused(f"case {self.case_no} was already accepted", code="already_accepted")
        if step is RATED and self.score is not None:
            raise CaseRefused(f"case {self.case_no} was already rated", code="already_rated")
        if report.item_code is not None and report.item_code != self.item_code:
            raise InvalidInput(f"case {self.case_no} is for item {self.item_code}, not {report.item_code}", code="item_mismatch")
        _check_times(report, recorded_at, self.submitted_at)

        flags = _common_flags(report, recorded_at, policy, self.last_occurred_at)
        flags.extend(self._flow_flags(step, report))
        data = dict(report.data)
        derived: dict[str, Any] = {}
        at = report.occurred_at

        if step is ACCEPTED:
            terms = terms or self.terms
            assert terms is not None
            if not terms.in_force_on(at.date()):
                flags.append(_flag("item_not_in_force", f"事项 {terms.code} 在 {at.date()} 不在有效期内 "
                                                            f"(item {terms.code} is not in force on {at.date()})"))
            derived["terms"] = terms.as_dict()
            derived["promised_due_at"] = calendar.deadline_for(at, terms.promised_limit.value, terms.promised_limit.unit)
            derived["legal_due_at"] = calendar.deadline_for(at, terms.legal_limit.value, terms.legal_limit.unit)
        elif step is REFUSED and "reason" not in data:
            flags.append(_flag("no_reason", "不予受理未说明理由 (refused without a reason)"))
        elif step is RESUMED and self.accepted_at is not None:
            derived.update(self._moved_deadlines(calendar, self._suspended_amounts(calendar, at)))
        elif step is EXTENDED and self.accepted_at is not None:
            ext = Limit(data["value"], Unit(data["unit"]))
            assert self.terms is not None
            matched = {
                "promised": self.terms.promised_limit.unit == ext.unit,
                "legal": self.terms.legal_limit.unit == ext.unit,
            }
            if not any(matched.values()):
                raise InvalidInput(
                    f"extension in {ext.unit.value} but the item's limits count "
                    f"{self.terms.promised_limit.unit.value}/{self.terms.legal_limit.unit.value}",
                    code="extension_unit_mismatch",
                )
            derived.update(
                self._moved_deadlines(calendar, (ext.value if matched["promised"] else 0, ext.value if matched["legal"] else 0))
            )
        elif step is CONCLUDED and self.accepted_at is not None:
            promised_due, legal_due = self.promised_due_at, self.legal_due_at
            if self.suspended:  # concluded inside a special procedure: its time up to now is not counted
                moved = self._moved_deadlines(calendar, self._suspended_amounts(calendar, at))
                derived.update(moved)
                promised_due, legal_due = moved["promised_due_at"], moved["legal_due_at"]
                flags.append(_flag("concluded_while_suspended", "特别程序期间办结 (concluded while a special procedure was open)"))
            derived["on_time"] = promised_due is not None and at <= promised_due
            derived["within_legal"] = legal_due is not None and at <= legal_due
        elif step is FEE_CHARGED:
            terms = self.terms
            if terms is not None:
                amount = Decimal(data["amount"])
                if terms.fee == 0 and amount > 0:
                    flags.append(_flag("fee_on_free_item", f"免费事项收费 {amount} 元 (charged {amount} yuan on a free item)",
                                            standard="0.00"))
                elif amount > terms.fee:
                    flags.append(_flag("fee_above_standard", f"收费 {amount} 元，高于标准 {terms.fee} 元 "
                                                              f"(charged {amount} yuan above the standard {terms.fee})",
                                            standard=str(terms.fee)))

        if "promised_due_at" in derived:
            start = at if step is ACCEPTED else self.accepted_at
            assert start is not None
            years = calendar.unpublished_years(start, max(derived["promised_due_at"], derived["legal_due_at"], at))
            if years:
                derived["provisional_years"] = list(years)
                flags.append(_provisional_flag(years))
        elif "on_time" in derived and self.provisional_years:
            # Judged against deadlines that are still provisional: settled with them later.
            derived["provisional_years"] = list(self.provisional_years)
            flags.append(_provisional_flag(self.provisional_years, "on_time judged against a provisional deadline: "))

        fields = dict(
            source_event_id=report.event_id, occurred_at=at, actor=report.actor.as_dict(),
            data=data, derived=derived, flags=flags,
        )
        digest = chain_hash(self.last_hash, _hash_body(self.case_no, self.version + 1, step, recorded_at, fields))
        # What ``trigger_event`` does, with the event's fields set as its dataclass __init__ sets
        # them (the same names in the same order: checked below EVENT_CLASSES) but without one
        # frozen-field setter per field, a fifth of recording a step.
        event = object.__new__(EVENT_CLASSES[step])
        event.__dict__.update(
            originator_id=self.id, originator_version=self.version + 1, timestamp=recorded_at, **fields,
            prev_hash=self.last_hash, hash=digest,
        )
        event.mutate(self)
        self._pending_events.append(event)
        return event

    def settle_deadlines(self, *, recorded_at: datetime, calendar: Calendar) -> Case.Event | None:
        """Recompute provisional deadlines with ``calendar`` (where a missing year is now
        published): the limits plus extensions plus suspended time, each suspension measured
        again. Nothing (None) if the case has no provisional deadline or none of its years is
        published yet."""
        if not self.provisional_years or self.accepted_at is None or self.terms is None:
            return None
        if all(calendar.unpublished_years(date(y, 1, 1), date(y, 1, 1)) for y in self.provisional_years):
            return None
        promised_extra, legal_extra = self.extended_promised, self.extended_legal
        p, l = self.terms.promised_limit, self.terms.legal_limit
        for s in self.suspensions:
            if s.ended_at is None:
                continue  # an open special procedure is counted when it ends
            start = max(s.started_at, self.accepted_at)
            promised_extra += Fraction(calendar.elapsed(start, s.ended_at, p.unit))
            legal_extra += Fraction(calendar.elapsed(start, s.ended_at, l.unit))
        derived: dict[str, Any] = {
            "promised_extra": str(promised_extra),
            "legal_extra": str(legal_extra),
            "promised_due_at": calendar.deadline_for(self.accepted_at, p.value + promised_extra, p.unit),
            "legal_due_at": calendar.deadline_for(self.accepted_at, l.value + legal_extra, l.unit),
        }
        flags: list[dict[str, Any]] = []
        years = calendar.unpublished_years(
            self.accepted_at, max(derived["promised_due_at"], derived["legal_due_at"], self.concluded_at or self.accepted_at)
        )
        if years:
            derived["provisional_years"] = list(years)
            flags.append(_provisional_flag(years))
        if self.concluded_at is not None:
            derived["on_time"] = self.concluded_at <= derived["promised_due_at"]
            derived["within_legal"] = self.concluded_at <= derived["legal_due_at"]
        settled = sorted(set(self.provisional_years) - set(years))
        data = {
            "years": settled,
            "previous": {"promised_due_at": self.promised_due_at, "legal_due_at": self.legal_due_at,
                         **({"on_time": self.on_time} if self.concluded_at is not None else {})},
        }
        fields = dict(
            source_event_id="calendar:" + ",".join(str(y) for y in settled), occurred_at=recorded_at,
            actor={"department": self.department, "window": None, "staff": None, "system": "working_calendar"},
            data=data, derived=derived, flags=flags,
        )
        step = CaseAct.DEADLINES_SETTLED
        digest = chain_hash(self.last_hash, _hash_body(self.case_no, self.version + 1, step, recorded_at, fields))  # type: ignore[arg-type]
        self.trigger_event(Case.DeadlinesSettled, timestamp=recorded_at, prev_hash=self.last_hash, hash=digest, **fields)
        return self.pending_events[-1]  # type: ignore[return-value]

    # -- rules -------------------------------------------------------------------------------

    def _flow_flags(self, step: Step, report: StepReport) -> list[dict[str, Any]]:
        flags = []
        if step in NEEDS_ACCEPTANCE and self.accepted_at is None:
            flags.append(_flag("skipped_step", f"未受理即{STEP_ZH[step]} ({step.value} before the case was accepted)",
                               missing="accepted"))
        if step is REVIEWED and _UNDERTAKEN_VALUE not in self.steps_seen:
            flags.append(_flag("skipped_step", "未承办即审核 (reviewed without undertaking)", missing="undertaken"))
        if (
            step is CONCLUDED
            and report.data.get("result") in ("issued", "completed")
            and _DECIDED_VALUE not in self.steps_seen
            and not (self.terms and self.terms.on_the_spot)
        ):
            flags.append(_flag("skipped_step", "未经批准/决定即办结 (concluded without a decision)", missing="decided"))
        if step in STAGE and STAGE[step] < self.stage:
            flags.append(_flag("out_of_order", f"{STEP_ZH[step]}出现在后续环节之后 ({step.value} after a later stage of the flow)"))
        if step is DELIVERED and self.granted is None and self.result not in ("issued", "completed"):
            flags.append(_flag("skipped_step", "未经决定即送达 (delivered before a decision)", missing="decided"))
        return flags

    def _suspended_amounts(self, calendar: Calendar, until: datetime) -> tuple[Fraction | int, Fraction | int]:
        assert self.terms is not None
        start = self.suspensions[-1].started_at
        if self.accepted_at is not None and start < self.accepted_at:
            start = self.accepted_at
        return (
            calendar.elapsed(start, until, self.terms.promised_limit.unit),
            calendar.elapsed(start, until, self.terms.legal_limit.unit),
        )

    def _moved_deadlines(self, calendar: Calendar, extra: tuple[Fraction | int, Fraction | int]) -> dict[str, Any]:
        assert self.terms is not None and self.accepted_at is not None
        promised_extra = self.promised_extra + Fraction(extra[0])
        legal_extra = self.legal_extra + Fraction(extra[1])
        p, l = self.terms.promised_limit, self.terms.legal_limit
        return {
            "promised_extra": str(promised_extra),
            "legal_extra": str(legal_extra),
            "promised_due_at": calendar.deadline_for(self.accepted_at, p.value + promised_extra, p.unit),
            "legal_due_at": calendar.deadline_for(self.accepted_at, l.value + legal_extra, l.unit),
        }

    # -- reading -----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "case_no": self.case_no,
            "item_code": self.item_code,
            "item_version": self.terms.version if self.terms else None,
            "department": self.department,
            "window": self.window,
            "status": self.status,
            "suspended": self.suspended,
            "version": self.version,
            "submitted_at": self.submitted_at,
            "accepted_at": self.accepted_at,
            "promised_due_at": self.promised_due_at,
            "legal_due_at": self.legal_due_at,
            "concluded_at": self.concluded_at,
            "closed_at": self.closed_at,
            "result": self.result,
            "granted": self.granted,
            "on_time": self.on_time,
            "within_legal": self.within_legal,
            "suspensions": [
                {"procedure": s.procedure, "started_at": s.started_at, "ended_at": s.ended_at} for s in self.suspensions
            ],
            "extensions": self.extensions,
            "supplements": self.supplements,
            "fees": {"count": self.fees, "total": self.fee_total},
            "score": self.score,
            "irregularities": list(self.flags),
            "calendar_provisional": list(self.provisional_years),
            "last_hash": self.last_hash,
        }


EVENT_CLASSES: dict[Step, type[Case.Event]] = {
    cls.STEP: cls  # type: ignore[misc]
    for cls in vars(Case).values()
    if isinstance(cls, type) and issubclass(cls, Case.Event) and isinstance(getattr(cls, "STEP", None), Step)
}
# ``record`` fills its events' fields in this order, the order their dataclasses declare them.
_RECORDED_FIELDS = ("originator_id", "originator_version", "timestamp", "source_event_id", "occurred_at", "actor",
                    "data", "derived", "flags", "prev_hash", "hash")
assert all(tuple(f.name for f in dataclasses.fields(cls)) == _RECORDED_FIELDS
           for cls in EVENT_CLASSES.values() if cls is not Case.Submitted), "Case.Event fields changed: see record()"
# ``submit`` fills its event's in this order.
assert tuple(f.name for f in dataclasses.fields(Case.Submitted)) == (
    _RECORDED_FIELDS[:3] + ("originator_topic",) + _RECORDED_FIELDS[3:] + ("case_no",)), "see Case.submit()"
# The ledger's own acts on cases (not steps: the step views do not subscribe to them).
ACT_TOPICS = (Case.DeadlinesSettled.TOPIC,)
# The one definition of the case-event topic sets every view and service subscribes with.
STEP_TOPICS: tuple[str, ...] = tuple(sorted(cls.TOPIC for cls in EVENT_CLASSES.values()))  # case steps only
CASE_TOPICS: tuple[str, ...] = STEP_TOPICS + ACT_TOPICS  # steps and the ledger's acts on cases


# What each event's hash covers besides the chain position (case, version, step, recording time).
HASHED_FIELDS = ("source_event_id", "occurred_at", "actor", "data", "derived", "flags")


def _hash_body(case_no: str, version: int, step: Step, recorded_at: datetime, fields: dict[str, Any]) -> dict[str, Any]:
    """The one definition of what is hashed: used when an event is made and when it is verified."""
    # HASHED_FIELDS spelt out (a dict display, not a comprehension over them: made at every step).
    return {"case_no": case_no, "version": version, "step": step._value_, "recorded_at": recorded_at,
            "source_event_id": fields["source_event_id"], "occurred_at": fields["occurred_at"], "actor": fields["actor"],
            "data": fields["data"], "derived": fields["derived"], "flags": fields["flags"]}


assert tuple(_hash_body("", 0, Step.SUBMITTED, None, dict.fromkeys(HASHED_FIELDS)))[4:] == HASHED_FIELDS  # type: ignore[arg-type]


_TERMS: dict[tuple[Any, ...], ItemVersion] = {}


def _terms_of(d: dict[str, Any]) -> ItemVersion:
    """``ItemVersion.from_dict(d)``, shared between the cases of one item version (submission and
    acceptance each carry their terms; building them was a tenth of applying a step). Only
    values of the exact types the stored terms have are keyed (equal keys, then, are the same
    values, an instant the same instant in the same named fixed offset); anything else is built."""
    try:
        ll, pl, ef = d["legal_limit"], d["promised_limit"], d.get("effective_from")
        key = (d["code"], d["name"], d["department"], d["kind"], ll["unit"], pl["unit"], d["fee"],
               ll["value"], pl["value"], d.get("version", 1), d["on_the_spot"], d.get("valid_from"), d.get("valid_to"), ef)
    except (KeyError, TypeError):
        return ItemVersion.from_dict(d)  # built (or refused) as ever
    if ef is not None:
        if type(ef) is not datetime or type(ef.tzinfo) is not timezone:
            return ItemVersion.from_dict(d)
        key += (ef.utcoffset(), ef.tzname())
    if set(map(type, key[:7])) != _STR or set(map(type, key[7:10])) != _INT or type(key[10]) is not bool or not (
            key[11] is None or type(key[11]) is str) or not (key[12] is None or type(key[12]) is str):
        return ItemVersion.from_dict(d)
    terms = _TERMS.get(key)
    if terms is None:
        if len(_TERMS) >= 4096:
            _TERMS.clear()
        terms = _TERMS[key] = ItemVersion.from_dict(d)
    return terms


_STR, _INT = {str}, {int}


def _flag(code: str, detail: str, **evidence: Any) -> dict[str, Any]:
    """A flag's detail reads Chinese first, English after in brackets; its evidence is numbers."""
    return {"code": code, "detail": detail, **evidence}


def _provisional_flag(years: tuple[int, ...] | list[int], lead: str = "") -> dict[str, Any]:
    listed = ", ".join(str(y) for y in years)
    return _flag(
        "calendar_provisional",
        f"{lead}{listed}年工作日历尚未发布，期限暂按周一至周五计算 (no published {listed} schedule: "
        "deadline computed on weekdays, settled when the year is published)",
        years=list(years),
    )


def _spans(seconds: int) -> tuple[str, str]:
    """A lag of ``seconds`` as an officer reads it, in Chinese and in English (a late entry's
    flag reads both, and most steps of a backlog are late): days alone from ten days on (or on
    a whole day), else days and hours, else hours and minutes; never seconds."""
    seconds = max(seconds, 0)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days >= 10 or (days and not hours):
        return f"{days} 天", f"{days} days"
    if days:
        return f"{days} 天 {hours} 小时", f"{days} days {hours} hours"
    if hours:
        return f"{hours} 小时 {minutes} 分钟", f"{hours} hours {minutes} minutes"
    return f"{minutes} 分钟", f"{minutes} minutes"


def _span_zh(span: timedelta) -> str:
    """ "6640 天", "2 天 3 小时", "5 小时 12 分钟"."""
    return _spans(int(span.total_seconds()))[0]


def _span_en(span: timedelta) -> str:
    return _spans(int(span.total_seconds()))[1]


def _check_times(report: StepReport, recorded_at: datetime, submitted_at: datetime | None) -> None:
    at = report.occurred_at
    if at < EARLIEST:
        raise InvalidInput(f"occurred_at {at.isoformat()} is before 1990: a wrongly keyed date?", code="implausible_timestamp")
    if at > recorded_at + FUTURE_TOLERANCE:
        raise InvalidInput(
            f"occurred_at {at.isoformat()} is in the future (now {recorded_at.isoformat()})", code="future_timestamp"
        )
    if submitted_at is not None and at < submitted_at:
        raise CaseRefused(
            f"{report.step.value} at {at.isoformat()} happened before the case was received ({submitted_at.isoformat()})",
            code="before_submission",
        )


def _common_flags(
    report: StepReport, recorded_at: datetime, policy: IngestPolicy, last_occurred_at: datetime | None
) -> list[dict[str, Any]]:
    flags = []
    lag = recorded_at - report.occurred_at
    if lag > policy.late_entry_after:
        seconds = int(lag.total_seconds())
        zh, en = _spans(seconds)
        flags.append(_flag("late_entry", f"录入滞后 {zh}，疑似体外循环 (recorded {en} after it happened)", lag_seconds=seconds))
    if last_occurred_at is not None and report.occurred_at < last_occurred_at:
        flags.append(
            _flag("time_backwards", "业务时间早于上一环节 (happened before the previous step)",
                  previous_occurred_at=last_occurred_at.isoformat())
        )
    return flags


def verify_chain(case_no: str, events: list[Case.Event]) -> int | None:
    """Recompute every hash; the version of the first event that does not verify, or None."""
    prev = GENESIS_HASH
    for e in events:
        if e.prev_hash != prev or chain_hash(prev, e.hash_body(case_no)) != e.hash:
            return e.originator_version
        prev = e.hash
    return None


def replay(events: list[Case.Event]) -> Case | None:
    """State from a subset of a case's events in version order (e.g. those that had happened
    by a business-time instant). Skips the library's contiguity check on purpose."""
    case: Case | None = None
    for e in events:
        if case is None:
            case = e.mutate(None)  # type: ignore[assignment]
        else:
            e.apply(case)
            case.version = e.originator_version
            case.modified_on = e.timestamp
    return case

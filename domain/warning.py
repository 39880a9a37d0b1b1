"""A warning (预警纠错) is an official act: issued to the responsible department, answered by it
(纠错 explanation), escalated by an officer (督办, with its own deadline), closed. Every act is an
event in the ledger.

A warning issued on what the ledger knew is **withdrawn** (撤销) by the system when a step keyed
in later shows its threshold was never reached: the case was concluded, refused, withdrawn or
suspended, by business time, no later than the threshold instant. The withdrawal carries that
step as evidence; the card leaves the open board and stays in the warning's history.

The id is derived from the case number and the rule (``yellow``, ``red``, ``severe`` or
``step:<name>``), so a case gets each warning once however often the scheduler looks: a second
issue of the same warning collides in the store.

``PolicyOverride`` is reference data: a center's or an item's partial warning policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE
from domain.errors import Conflict, InvalidInput, text_field

STATUSES = ("issued", "answered", "escalated", "closed", "withdrawn")
OPEN_STATUSES = ("issued", "answered", "escalated")


def warning_id(case_no: str, rule: str, generation: int = 0) -> UUID:
    """Generation 0 is a case's first card for the rule; a card withdrawn (say, a suspension keyed
    in late stopped the clock before its threshold) lets the rule be earned again, as the next."""
    return uuid5(NAMESPACE, f"warning:{case_no}:{rule}" + (f":{generation}" if generation else ""))


def reached(threshold_at: datetime, clock_stopped_at: datetime) -> bool:
    """A threshold is reached only if the case's clock was still running after it: a conclusion
    exactly at the promised deadline is on time, so it earns no red card."""
    return clock_stopped_at > threshold_at


def _text(raw: object, what: str, limit: int = 2000, required: bool = True) -> str | None:
    return text_field(raw, what, limit, required)


class WarningClosed(Conflict):
    code = "warning_closed"


class WarningWithdrawn(Conflict):
    code = "warning_withdrawn"


class CaseWarning(Aggregate):
    TOPIC = "esup.warning:CaseWarning"

    class Event(Aggregate.Event):
        TOPIC = "esup.warning:CaseWarning.Event"
        by: dict[str, Any]  # who acted: {"role": ..., "key": ...}; the scheduler is {"role": "system"}

    class Issued(Aggregate.Created, Event):
        TOPIC = "esup.warning:CaseWarning.Issued"
        case_no: str
        case_id: str
        case_version: int
        department: str  # the responsible department: the case's
        item_code: str
        level: str
        rule: str
        threshold_at: datetime
        promised_due_at: datetime | None
        legal_due_at: datetime | None
        basis: str  # the rule in words, e.g. "80% of the promised 5 working_days used"
        generation: int = 0

    Created = Issued  # so the library does not define an untopicked Created

    class Answered(Event):
        TOPIC = "esup.warning:CaseWarning.Answered"
        explanation: str

        def apply(self, w: CaseWarning) -> None:
            w.status = "answered"
            w.explanation = self.explanation
            w.answered_at = self.timestamp

    class Escalated(Event):
        TOPIC = "esup.warning:CaseWarning.Escalated"
        note: str | None
        due_at: datetime

        def apply(self, w: CaseWarning) -> None:
            w.status = "escalated"
            w.escalated_at = self.timestamp
            w.escalation_due_at = self.due_at
            w.escalations += 1

    class Closed(Event):
        TOPIC = "esup.warning:CaseWarning.Closed"
        note: str | None

        def apply(self, w: CaseWarning) -> None:
            w.status = "closed"
            w.closed_at = self.timestamp
            w.close_note = self.note

    class Withdrawn(Event):
        """The threshold was never reached: ``evidence`` is the step that shows it."""

        TOPIC = "esup.warning:CaseWarning.Withdrawn"
        case_id: str
        rule: str
        reason: str
        evidence: dict[str, Any]

        def apply(self, w: CaseWarning) -> None:
            w.status = "withdrawn"
            w.withdrawn_at = self.timestamp
            w.withdrawal = {"reason": self.reason, "evidence": dict(self.evidence)}

    def __init__(self, case_no: str, case_id: str, case_version: int, department: str, item_code: str, level: str,
                 rule: str, threshold_at: datetime, promised_due_at: datetime | None, legal_due_at: datetime | None,
                 basis: str, by: dict[str, Any], generation: int = 0) -> None:
        self.case_no = case_no
        self.case_id = case_id
        self.department = department
        self.item_code = item_code
        self.level = level
        self.rule = rule
        self.threshold_at = threshold_at
        self.promised_due_at = promised_due_at
        self.legal_due_at = legal_due_at
        self.basis = basis
        self.status = "issued"
        self.explanation: str | None = None
        self.answered_at: datetime | None = None
        self.escalated_at: datetime | None = None
        self.escalation_due_at: datetime | None = None
        self.escalations = 0
        self.closed_at: datetime | None = None
        self.close_note: str | None = None
        self.generation = generation
        self.withdrawn_at: datetime | None = None
        self.withdrawal: dict[str, Any] | None = None

    @staticmethod
    def create_id(case_no: str, rule: str, generation: int = 0, **_: Any) -> UUID:
        return warning_id(case_no, rule, generation)

    @property
    def issued_at(self) -> datetime:
        return self.created_on

    # -- acts ------------------------------------------------------------------------------

    @classmethod
    def issue(cls, *, case_no: str, case_id: str, case_version: int, department: str, item_code: str, level: str,
              rule: str, threshold_at: datetime, promised_due_at: datetime | None, legal_due_at: datetime | None,
              basis: str, at: datetime, generation: int = 0) -> CaseWarning:
        return cls._create(
            cls.Issued, case_no=case_no, case_id=case_id, case_version=case_version, department=department,
            item_code=item_code, level=level, rule=rule, threshold_at=threshold_at, promised_due_at=promised_due_at,
            legal_due_at=legal_due_at, basis=basis, by={"role": "system"}, timestamp=at, generation=generation,
        )

    def _open(self) -> None:
        if self.status == "closed":
            raise WarningClosed(f"warning {self.id} was closed at {self.closed_at.isoformat() if self.closed_at else '?'}")
        if self.status == "withdrawn":
            raise WarningWithdrawn(f"warning {self.id} was withdrawn: its threshold was never reached")

    def withdraw(self, reason: str, evidence: dict[str, Any], at: datetime) -> bool:
        """Withdraw an open card; a closed or withdrawn one is left as it is (returns False)."""
        if self.status in ("closed", "withdrawn"):
            return False
        self.trigger_event(self.Withdrawn, case_id=self.case_id, rule=self.rule, reason=reason, evidence=evidence,
                           by={"role": "system"}, timestamp=at)
        return True

    def answer(self, explanation: object, by: dict[str, Any], at: datetime) -> None:
        self._open()
        text = _text(explanation, "explanation")
        self.trigger_event(self.Answered, explanation=text, by=by, timestamp=at)

    def escalate(self, due_at: datetime, note: object, by: dict[str, Any], at: datetime) -> None:
        self._open()
        if due_at <= at:
            raise InvalidInput("an escalation's deadline must be in the future", code="invalid_field")
        self.trigger_event(self.Escalated, due_at=due_at, note=_text(note, "note", required=False), by=by, timestamp=at)

    def close(self, note: object, by: dict[str, Any], at: datetime) -> None:
        self._open()
        self.trigger_event(self.Closed, note=_text(note, "note", required=False), by=by, timestamp=at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "case_no": self.case_no,
            "department": self.department,
            "item_code": self.item_code,
            "level": self.level,
            "rule": self.rule,
            "basis": self.basis,
            "status": self.status,
            "threshold_at": self.threshold_at,
            "issued_at": self.issued_at,
            "promised_due_at": self.promised_due_at,
            "legal_due_at": self.legal_due_at,
            "answered_at": self.answered_at,
            "explanation": self.explanation,
            "escalated_at": self.escalated_at,
            "escalation_due_at": self.escalation_due_at,
            "closed_at": self.closed_at,
            "withdrawn_at": self.withdrawn_at,
            "withdrawal": self.withdrawal,
        }


WARNING_TOPICS = (
    CaseWarning.Issued.TOPIC, CaseWarning.Answered.TOPIC, CaseWarning.Escalated.TOPIC, CaseWarning.Closed.TOPIC,
    CaseWarning.Withdrawn.TOPIC,
)


def policy_override_id(scope: str, code: str) -> UUID:
    return uuid5(NAMESPACE, f"warning-policy:{scope}:{code}")


class PolicyOverride(Aggregate):
    """A center's or an item's partial warning policy (validated by ``WarningPolicy.check_partial``)."""

    TOPIC = "esup.warning:PolicyOverride"

    class Event(Aggregate.Event):
        TOPIC = "esup.warning:PolicyOverride.Event"

    class Set(Aggregate.Created, Event):
        TOPIC = "esup.warning:PolicyOverride.Set"
        scope: str
        code: str
        policy: dict[str, Any]

    Created = Set

    class Changed(Event):
        TOPIC = "esup.warning:PolicyOverride.Changed"
        policy: dict[str, Any]

        def apply(self, agg: PolicyOverride) -> None:
            agg.policy = dict(self.policy)

    def __init__(self, scope: str, code: str, policy: dict[str, Any]) -> None:
        if scope not in ("center", "item"):
            raise InvalidInput("a policy override is per center or per item", code="invalid_policy")
        self.scope = scope
        self.code = code
        self.policy = dict(policy)

    @staticmethod
    def create_id(scope: str, code: str, **_: Any) -> UUID:
        return policy_override_id(scope, code)

    @classmethod
    def set(cls, scope: str, code: str, policy: dict[str, Any], at: datetime) -> PolicyOverride:
        return cls._create(cls.Set, scope=scope, code=code, policy=policy, timestamp=at)

    def change(self, policy: dict[str, Any], at: datetime) -> bool:
        if policy == self.policy:
            return False
        self.trigger_event(self.Changed, policy=policy, timestamp=at)
        return True


POLICY_TOPICS = (PolicyOverride.Set.TOPIC, PolicyOverride.Changed.TOPIC)

"""A complaint (投诉) against a window, a staff member or a department, and its handling.

The center's complaint desk (政务服务处, "负责受理和调查处理服务对象对政务服务大厅的各类投诉") receives a
complaint by phone, letter, online or in person; decides whether to accept it (受理 / 不予受理,
with the reason); assigns it to an investigator (交办); records the findings (调查); and
concludes it (办结): substantiated (属实) or not, with the action taken. Every act is an event.

Each open stage has its time limit, counted by the working calendar from the instant the stage
began (the day it began is not counted, the deadline is the end of the Nth working day, 调休
make-up days count). The deadline is decided when the stage begins and stored on its event, so
replay never depends on a calendar or a configuration that changed later. The defaults
(``DEFAULT_COMPLAINT_LIMITS``) follow what service centers' complaint rules (投诉处理办法)
commonly set: decide on acceptance within 1 working day of receipt, conclude within 10 working
days of acceptance, here split as 1 to assign, 5 to investigate and 3 to conclude (9 in all);
all well within the 信访条例 (2005) outer bounds (15 days to decide acceptance, art. 22; 60 days
to handle, art. 33). ``ESUP_COMPLAINT_LIMITS`` overrides them (see services/oversight.py).

A stage still open after its deadline earns one warning (``Warned``, recorded by the system);
``late_stage`` is the rule. The complainant's personal data arrives here already sealed
(AES-GCM, infra/pii.py), as an applicant's does: the aggregate never sees it in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.calendar import WorkingCalendar
from domain.catalogue import NAMESPACE
from domain.errors import Conflict, InvalidInput
from domain.limits import Limit, Unit

CHANNELS = ("phone", "letter", "online", "in_person")
CHANNEL_ZH = {"phone": "电话", "letter": "信函", "online": "网上", "in_person": "现场"}
STATUSES = ("received", "accepted", "not_accepted", "assigned", "investigated", "concluded")
STATUS_ZH = {"received": "已收到", "accepted": "已受理", "not_accepted": "不予受理", "assigned": "已交办",
             "investigated": "已调查", "concluded": "已办结"}
CLOSED = ("not_accepted", "concluded")
# The stage an open complaint is in, named by the act that ends it, and its Chinese name.
STAGE_OF = {"received": "accept", "accepted": "assign", "assigned": "investigate", "investigated": "conclude"}
STAGE_ZH = {"accept": "受理", "assign": "交办", "investigate": "调查", "conclude": "办结"}
MAX_TEXT = 4000


def complaint_id(complaint_no: str) -> UUID:
    return uuid5(NAMESPACE, f"complaint:{complaint_no}")


@dataclass(frozen=True)
class ComplaintLimits:
    """Each stage's time limit, counted from the instant the stage began."""

    accept: Limit = Limit(1, Unit.WORKING_DAYS)
    assign: Limit = Limit(1, Unit.WORKING_DAYS)
    investigate: Limit = Limit(5, Unit.WORKING_DAYS)
    conclude: Limit = Limit(3, Unit.WORKING_DAYS)

    @classmethod
    def parse(cls, raw: object) -> ComplaintLimits:
        if not isinstance(raw, dict):
            raise InvalidInput('complaint limits are {"accept": {"value": 1, "unit": "working_days"}, ...}',
                               code="invalid_limit")
        unknown = sorted(set(raw) - set(STAGE_ZH))
        if unknown:
            raise InvalidInput(f"unknown complaint stages: {', '.join(unknown)}", code="invalid_limit")
        return cls(**{k: Limit.parse(v) for k, v in raw.items()})

    def of(self, stage: str) -> Limit:
        return getattr(self, stage)

    def as_dict(self) -> dict[str, Any]:
        return {s: self.of(s).as_dict() for s in STAGE_ZH}


DEFAULT_COMPLAINT_LIMITS = ComplaintLimits()


def text(raw: object, what: str, limit: int = MAX_TEXT, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{what} must be a non-empty string", code="missing_field" if raw is None else "invalid_field",
                           missing=[what] if raw is None else [])
    if len(raw) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters", code="invalid_field")
    return raw.strip()


def code(raw: object, what: str, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 50:
        raise InvalidInput(f"{what} must be a code of 1 to 50 characters",
                           code="missing_field" if raw is None else "invalid_field", missing=[what] if raw is None else [])
    return raw.strip()


class ComplaintClosed(Conflict):
    code = "complaint_closed"


class ComplaintOutOfOrder(Conflict):
    code = "complaint_out_of_order"


class Complaint(Aggregate):
    TOPIC = "esup.complaint:Complaint"

    class Event(Aggregate.Event):
        TOPIC = "esup.complaint:Complaint.Event"
        by: dict[str, Any]  # who acted: {"role": ..., "key": ...}; the system is {"role": "system"}

    class Received(Aggregate.Created, Event):
        TOPIC = "esup.complaint:Complaint.Received"
        complaint_no: str
        channel: str
        department: str
        window: str | None
        staff: str | None
        case_no: str | None
        summary: str
        complainant: str | None  # sealed personal data (infra/pii.py), never in the clear
        received_at: datetime  # business time: when the desk got it (a letter may be registered later)
        due_at: datetime  # decide on acceptance by then
        limits: dict[str, Any]  # the limits in force when it was received (ComplaintLimits.as_dict)

    Created = Received

    class Accepted(Event):
        TOPIC = "esup.complaint:Complaint.Accepted"
        note: str | None
        due_at: datetime  # assign by then

        def apply(self, c: Complaint) -> None:
            c._stage_done("accept", self.timestamp)
            c.status = "accepted"
            c.accepted_at = self.timestamp
            c._stage_open("assign", self.timestamp, self.due_at)

    class NotAccepted(Event):
        TOPIC = "esup.complaint:Complaint.NotAccepted"
        reason: str

        def apply(self, c: Complaint) -> None:
            c._stage_done("accept", self.timestamp)
            c.status = "not_accepted"
            c.reason = self.reason
            c.closed_at = self.timestamp

    class Assigned(Event):
        TOPIC = "esup.complaint:Complaint.Assigned"
        assignee: str
        due_at: datetime  # findings by then

        def apply(self, c: Complaint) -> None:
            c._stage_done("assign", self.timestamp)
            c.status = "assigned"
            c.assignee = self.assignee
            c._stage_open("investigate", self.timestamp, self.due_at)

    class Investigated(Event):
        TOPIC = "esup.complaint:Complaint.Investigated"
        findings: str
        due_at: datetime  # concluded by then

        def apply(self, c: Complaint) -> None:
            c._stage_done("investigate", self.timestamp)
            c.status = "investigated"
            c.findings = self.findings
            c._stage_open("conclude", self.timestamp, self.due_at)

    class Concluded(Event):
        TOPIC = "esup.complaint:Complaint.Concluded"
        substantiated: bool
        action: str | None  # the action taken (required when substantiated)

        def apply(self, c: Complaint) -> None:
            c._stage_done("conclude", self.timestamp)
            c.status = "concluded"
            c.substantiated = self.substantiated
            c.action = self.action
            c.closed_at = self.timestamp

    class Warned(Event):
        """A stage ran past its deadline (预警): recorded once per stage by the system."""

        TOPIC = "esup.complaint:Complaint.Warned"
        stage: str
        due_at: datetime

        def apply(self, c: Complaint) -> None:
            c.stages[self.stage]["warned_at"] = self.timestamp

    def __init__(self, complaint_no: str, channel: str, department: str, window: str | None, staff: str | None,
                 case_no: str | None, summary: str, complainant: str | None, received_at: datetime, due_at: datetime,
                 limits: dict[str, Any], by: dict[str, Any]) -> None:
        self.complaint_no = complaint_no
        self.channel = channel
        self.department = department
        self.window = window
        self.staff = staff
        self.case_no = case_no
        self.summary = summary
        self.complainant = complainant
        self.received_at = received_at
        self.limits = dict(limits)
        self.status = "received"
        self.accepted_at: datetime | None = None
        self.assignee: str | None = None
        self.findings: str | None = None
        self.substantiated: bool | None = None
        self.action: str | None = None
        self.reason: str | None = None
        self.closed_at: datetime | None = None
        self.stages: dict[str, dict[str, Any]] = {}
        self._stage_open("accept", received_at, due_at)

    @staticmethod
    def create_id(complaint_no: str, **_: Any) -> UUID:
        return complaint_id(complaint_no)

    # -- stages ----------------------------------------------------------------------------

    def _stage_open(self, stage: str, started_at: datetime, due_at: datetime) -> None:
        self.stages[stage] = {"stage": stage, "started_at": started_at, "due_at": due_at, "done_at": None,
                              "late": None, "warned_at": None}

    def _stage_done(self, stage: str, at: datetime) -> None:
        s = self.stages[stage]
        s["done_at"] = at
        s["late"] = at > s["due_at"]

    @property
    def stage(self) -> str | None:
        """The open stage (named by the act that ends it), None once closed."""
        return STAGE_OF.get(self.status)

    @property
    def due_at(self) -> datetime | None:
        return self.stages[self.stage]["due_at"] if self.stage else None

    # -- acts ------------------------------------------------------------------------------

    @classmethod
    def receive(cls, *, complaint_no: object, channel: object, department: object, window: object = None,
                staff: object = None, case_no: object = None, summary: object, complainant: str | None,
                received_at: datetime, at: datetime, by: dict[str, Any], calendar: WorkingCalendar,
                limits: ComplaintLimits = DEFAULT_COMPLAINT_LIMITS) -> Complaint:
        no = code(complaint_no, "complaint_no")
        if channel not in CHANNELS:
            raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}",
                               code="missing_field" if channel is None else "invalid_field",
                               missing=["channel"] if channel is None else [])
        if received_at > at:
            raise InvalidInput("received_at is in the future", code="future_timestamp")
        return cls._create(
            cls.Received, complaint_no=no, channel=channel, department=code(department, "department"),
            window=code(window, "window", required=False), staff=code(staff, "staff", required=False),
            case_no=code(case_no, "case_no", required=False), summary=text(summary, "summary"),
            complainant=complainant, received_at=received_at,
            due_at=calendar.deadline(received_at, limits.accept), limits=limits.as_dict(), by=by, timestamp=at,
        )

    def _limit(self, stage: str) -> Limit:
        return Limit.parse(self.limits[stage])

    def _expect(self, act: str, *statuses: str) -> None:
        if self.status in CLOSED:
            raise ComplaintClosed(f"complaint {self.complaint_no} is {self.status} ({STATUS_ZH[self.status]}): "
                                  f"it cannot be {act}", state=self.status)
        if self.status not in statuses:
            raise ComplaintOutOfOrder(
                f"complaint {self.complaint_no} is {self.status} ({STATUS_ZH[self.status]}); it can be {act} only when "
                f"{' or '.join(statuses)}", state=self.status, expected=list(statuses))

    def accept(self, note: object, by: dict[str, Any], at: datetime, calendar: WorkingCalendar) -> None:
        self._expect("accepted", "received")
        self.trigger_event(self.Accepted, note=text(note, "note", required=False),
                           due_at=calendar.deadline(at, self._limit("assign")), by=by, timestamp=at)

    def refuse(self, reason: object, by: dict[str, Any], at: datetime) -> None:
        """不予受理 (e.g. outside the center's remit, anonymous with nothing to check): a reason is required."""
        self._expect("not accepted", "received")
        self.trigger_event(self.NotAccepted, reason=text(reason, "reason"), by=by, timestamp=at)

    def assign(self, assignee: object, by: dict[str, Any], at: datetime, calendar: WorkingCalendar) -> None:
        self._expect("assigned", "accepted")
        self.trigger_event(self.Assigned, assignee=text(assignee, "assignee", limit=200),
                           due_at=calendar.deadline(at, self._limit("investigate")), by=by, timestamp=at)

    def investigate(self, findings: object, by: dict[str, Any], at: datetime, calendar: WorkingCalendar) -> None:
        self._expect("investigated", "assigned")
        self.trigger_event(self.Investigated, findings=text(findings, "findings"),
                           due_at=calendar.deadline(at, self._limit("conclude")), by=by, timestamp=at)

    def conclude(self, substantiated: object, action: object, by: dict[str, Any], at: datetime) -> None:
        self._expect("concluded", "investigated")
        if not isinstance(substantiated, bool):
            raise InvalidInput("substantiated must be true or false", code="missing_field" if substantiated is None
                               else "invalid_field", missing=["substantiated"] if substantiated is None else [])
        # A substantiated complaint says what was done about it (整改, 批评教育, 调离窗口 ...).
        self.trigger_event(self.Concluded, substantiated=substantiated,
                           action=text(action, "action", required=substantiated), by=by, timestamp=at)

    def warn_if_late(self, now: datetime) -> bool:
        """Record the warning the open stage has earned by ``now``, if any (see ``late_stage``)."""
        late = late_stage(self, now)
        if late is None:
            return False
        self.trigger_event(self.Warned, stage=late[0], due_at=late[1], by={"role": "system"}, timestamp=now)
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "complaint_no": self.complaint_no, "channel": self.channel,
            "channel_label": CHANNEL_ZH[self.channel], "department": self.department, "window": self.window,
            "staff": self.staff, "case_no": self.case_no, "summary": self.summary, "status": self.status,
            "status_label": STATUS_ZH[self.status], "stage": self.stage, "due_at": self.due_at,
            "received_at": self.received_at, "accepted_at": self.accepted_at, "assignee": self.assignee,
            "findings": self.findings, "substantiated": self.substantiated, "action": self.action,
            "reason": self.reason, "closed_at": self.closed_at,
            "stages": [dict(s, stage_label=STAGE_ZH[s["stage"]]) for s in self.stages.values()],
            "limits": self.limits, "version": self.version,
        }


def late_stage(c: Complaint, now: datetime) -> tuple[str, datetime] | None:
    """The open stage whose deadline ``now`` has passed and that was not yet warned for, with its
    deadline; None if there is none (closed, in time, or already warned)."""
    stage = c.stage
    if stage is None:
        return None
    s = c.stages[stage]
    if s["warned_at"] is not None or now <= s["due_at"]:
        return None
    return stage, s["due_at"]


COMPLAINT_TOPICS = (
    Complaint.Received.TOPIC, Complaint.Accepted.TOPIC, Complaint.NotAccepted.TOPIC, Complaint.Assigned.TOPIC,
    Complaint.Investigated.TOPIC, Complaint.Concluded.TOPIC, Complaint.Warned.TOPIC,
)

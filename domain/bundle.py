"""A parallel-approval bundle (并联审批件): one application in a channel, fanned out to several
departments whose parts are ordinary cases (by case number), handled at the same time.

Lifecycle, every act an event with its own typed fields and stable topic:

* ``Submitted``: the application at the channel window, with its parts and the channel's terms
  in force (its own promised and legal limits).
* ``Accepted``: the bundle's clock starts; its promised and legal deadlines are decided here,
  on the channel center's working calendar (working days across 调休, or office hours), and
  stored, so replay never depends on a calendar that changed later.
* ``PartClosed``: one part case concluded (or was refused or withdrawn), with whether the part
  was on time by its own item's promise, and that item's promised limit (for the serial sum).
* ``Concluded``: recorded with the last part's closing, at its business time: on time only if
  no part was late **and** the bundle's own promised deadline had not passed (a part may be in
  time while the bundle is late). The time used (office hours, working days) is stored too.

Refused: a bundle number in use (``bundle_exists``), fewer than 2 parts or a part twice
(``invalid_parts``), accepting twice (``already_accepted``), before submission
(``before_submission``), after conclusion (``bundle_closed``), a part that is not one
(``not_a_part``), a part closed twice (``part_closed``).

``read_part_step`` is the one place that reads a case event's fields for bundles (the ingest
companion and the bundle view both use it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.calendar import WorkingCalendar
from domain.catalogue import _code, esup_id
from domain.channel import ChannelTerms
from domain.errors import CalendarUnknown, Conflict, InvalidInput, NotFound
from domain.limits import Limit, Unit
from domain.thresholds import DEFAULT_WARNING_POLICY, CaseClock, Threshold, WarningPolicy, plan

CLOSING_STEPS = ("concluded", "refused", "withdrawn")


def bundle_id(bundle_no: str) -> UUID:
    return esup_id(f"bundle:{bundle_no}")


def membership_id(case_no: str) -> UUID:
    return esup_id(f"bundle-part:{case_no}")


class BundleRefused(Conflict):
    code = "bundle_refused"


def _bundle_no(raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 50:
        raise InvalidInput("bundle_no must be a string of 1 to 50 characters", code="invalid_case_no")
    return _code(raw, "bundle_no")


def _num(value: Fraction | int | float) -> float:
    return round(float(value), 4)


@dataclass(frozen=True)
class PartStep:
    """What a bundle needs of one step of a part case."""

    case_no: str
    step: str
    version: int
    occurred_at: datetime
    department: str | None
    item_code: str | None
    promised_due_at: datetime | None
    on_time: bool | None


def read_part_step(event: Any, case_no: str | None = None) -> PartStep | None:
    """The one adapter from a case event to what bundles use (the lead's typed case events
    change only this function). Only a case's first event names its case number: the caller
    gives it for the others. ``None`` for an event that is not a step."""
    step = getattr(event, "STEP", None)
    if step is None:
        return None
    derived = getattr(event, "derived", {}) or {}
    actor = getattr(event, "actor", {}) or {}
    data = getattr(event, "data", {}) or {}
    return PartStep(
        case_no=getattr(event, "case_no", None) or case_no, step=step.value, version=event.originator_version, occurred_at=event.occurred_at,
        department=actor.get("department"), item_code=data.get("item_code") if step.value == "submitted" else None,
        promised_due_at=derived.get("promised_due_at"), on_time=derived.get("on_time"),
    )


class Bundle(Aggregate):
    TOPIC = "esup.bundle:Bundle"

    class Event(Aggregate.Event):
        TOPIC = "esup.bundle:Bundle.Event"

    class Submitted(Aggregate.Created, Event):
        TOPIC = "esup.bundle:Bundle.Submitted"
        bundle_no: str
        channel: dict[str, Any]  # the channel's terms in force
        parts: list[str]
        occurred_at: datetime
        source_event_id: str
        actor: dict[str, Any]
        enterprise: str | None = None  # the applicant enterprise's code (not personal data)
        project: str | None = None  # the construction project's code

    Created = Submitted

    class Accepted(Event):
        TOPIC = "esup.bundle:Bundle.Accepted"
        occurred_at: datetime
        source_event_id: str
        actor: dict[str, Any]
        promised_due_at: datetime
        legal_due_at: datetime

        def apply(self, b: Bundle) -> None:
            b.status = "accepted"
            b.accepted_at = self.occurred_at
            b.promised_due_at = self.promised_due_at
            b.legal_due_at = self.legal_due_at
            b.source_event_ids[self.source_event_id] = self.originator_version

    class PartClosed(Event):
        TOPIC = "esup.bundle:Bundle.PartClosed"
        case_no: str
        step: str  # concluded, refused or withdrawn
        occurred_at: datetime
        on_time: bool | None  # by the part's own promise
        part_version: int
        part_promised: dict[str, Any] | None  # the part item's promised limit

        def apply(self, b: Bundle) -> None:
            b.closed_parts[self.case_no] = {"step": self.step, "occurred_at": self.occurred_at,
                                            "on_time": self.on_time, "promised": self.part_promised}

    class Concluded(Event):
        TOPIC = "esup.bundle:Bundle.Concluded"
        occurred_at: datetime
        on_time: bool | None  # None: never accepted (no deadline to judge by)
        within_legal: bool | None
        late_parts: list[str]
        over_limit: bool  # the bundle's own promised deadline passed
        used_hours: float | None  # office hours from acceptance
        used_working_days: float | None
        serial_working_days: float  # the parts' promised limits one after another

        def apply(self, b: Bundle) -> None:
            b.status = "concluded"
            b.concluded_at = self.occurred_at
            b.on_time = self.on_time
            b.within_legal = self.within_legal

    def __init__(self, bundle_no: str, channel: dict[str, Any], parts: list[str], occurred_at: datetime,
                 source_event_id: str, actor: dict[str, Any], enterprise: str | None = None,
                 project: str | None = None) -> None:
        self.bundle_no = bundle_no
        self.channel = ChannelTerms.from_dict(channel)
        self.parts = list(parts)
        self.submitted_at = occurred_at
        self.actor = dict(actor)
        self.enterprise = enterprise
        self.project = project
        self.status = "submitted"
        self.accepted_at: datetime | None = None
        self.promised_due_at: datetime | None = None
        self.legal_due_at: datetime | None = None
        self.concluded_at: datetime | None = None
        self.on_time: bool | None = None
        self.within_legal: bool | None = None
        self.closed_parts: dict[str, dict[str, Any]] = {}
        self.source_event_ids: dict[str, int] = {source_event_id: 1}

    @staticmethod
    def create_id(bundle_no: str, **_: Any) -> UUID:
        return bundle_id(bundle_no)

    # -- commands ------------------------------------------------------------------------------

    @classmethod
    def submit(cls, *, bundle_no: str, channel: ChannelTerms, parts: list[Any], occurred_at: datetime,
               recorded_at: datetime, event_id: str, actor: dict[str, Any], enterprise: str | None = None,
               project: str | None = None) -> Bundle:
        bundle_no = _bundle_no(bundle_no)
        if not isinstance(parts, list) or len(parts) < 2 or len(parts) > 200:
            raise InvalidInput("a bundle has 2 to 200 parts (their case numbers)", code="invalid_parts")
        codes = [_bundle_no(p) for p in parts]
        if len(set(codes)) != len(codes) or bundle_no in codes:
            raise InvalidInput("a part is listed twice, or is the bundle's own number", code="invalid_parts")
        if occurred_at > recorded_at:
            raise InvalidInput("occurred_at is in the future", code="future_timestamp")
        return cls._create(cls.Submitted, bundle_no=bundle_no, channel=channel.as_dict(), parts=codes,
                           occurred_at=occurred_at, source_event_id=_code(event_id, "event_id"), actor=dict(actor),
                           enterprise=enterprise, project=project, timestamp=recorded_at)

    def accept(self, *, occurred_at: datetime, recorded_at: datetime, event_id: str, actor: dict[str, Any],
               calendar: WorkingCalendar) -> Accepted:
        if self.status == "concluded":
            raise BundleRefused(f"bundle {self.bundle_no} is concluded", code="bundle_closed")
        if self.accepted_at is not None:
            raise BundleRefused(f"bundle {self.bundle_no} was accepted at {self.accepted_at.isoformat()}",
                                code="already_accepted")
        if occurred_at < self.submitted_at:
            raise InvalidInput("a bundle cannot be accepted before it was submitted", code="before_submission")
        if occurred_at > recorded_at:
            raise InvalidInput("occurred_at is in the future", code="future_timestamp")
        promised = calendar.deadline(occurred_at, self.channel.promised_limit)
        legal = calendar.deadline(occurred_at, self.channel.legal_limit)
        self.trigger_event(self.Accepted, occurred_at=occurred_at, source_event_id=_code(event_id, "event_id"),
                           actor=dict(actor), promised_due_at=promised, legal_due_at=legal, timestamp=recorded_at)
        return self.pending_events[-1]  # type: ignore[return-value]

    def close_part(self, part: PartStep, *, promised: Limit | None, recorded_at: datetime,
                   calendar: WorkingCalendar) -> list[Event]:
        """A part case closed; the last one concludes the bundle (in the same save)."""
        if part.case_no not in self.parts:
            raise NotFound(f"{part.case_no} is not a part of bundle {self.bundle_no}", code="not_a_part")
        if part.case_no in self.closed_parts:
            raise BundleRefused(f"part {part.case_no} of bundle {self.bundle_no} is already closed", code="part_closed")
        if part.step not in CLOSING_STEPS:
            raise InvalidInput(f"{part.step} does not close a part", code="invalid_field")
        before = len(self.pending_events)
        self.trigger_event(self.PartClosed, case_no=part.case_no, step=part.step, occurred_at=part.occurred_at,
                           on_time=part.on_time if part.step == "concluded" else None, part_version=part.version,
                           part_promised=promised.as_dict() if promised else None, timestamp=recorded_at)
        if len(self.closed_parts) == len(self.parts):
            self._conclude(recorded_at, calendar)
        return list(self.pending_events[before:])  # type: ignore[arg-type]

    def _conclude(self, recorded_at: datetime, calendar: WorkingCalendar) -> None:
        at = max(p["occurred_at"] for p in self.closed_parts.values())
        late_parts = sorted(n for n, p in self.closed_parts.items() if p["step"] == "concluded" and p["on_time"] is False)
        over = self.promised_due_at is not None and at > self.promised_due_at
        on_time = None if self.promised_due_at is None else (not late_parts and not over)
        within_legal = None if self.legal_due_at is None else at <= self.legal_due_at
        used_h = used_d = None
        if self.accepted_at is not None:
            try:
                used_h = _num(calendar.elapsed(self.accepted_at, at, Unit.WORKING_HOURS))
                used_d = _num(calendar.elapsed(self.accepted_at, at, Unit.WORKING_DAYS))
            except CalendarUnknown:  # a year with no schedule: the time used is not known here
                pass
        serial = sum(Fraction(p["promised"]["value"]) for p in self.closed_parts.values()
                     if p["promised"] and p["promised"]["unit"] == Unit.WORKING_DAYS.value)
        self.trigger_event(self.Concluded, occurred_at=at, on_time=on_time, within_legal=within_legal,
                           late_parts=late_parts, over_limit=over, used_hours=used_h, used_working_days=used_d,
                           serial_working_days=_num(serial), timestamp=recorded_at)

    # -- reading ------------------------------------------------------------------------------

    @property
    def late_parts(self) -> list[str]:
        return sorted(n for n, p in self.closed_parts.items() if p["step"] == "concluded" and p["on_time"] is False)

    def late(self, now: datetime, open_parts_past_due: tuple[str, ...] | list[str] = ()) -> bool:
        """Late if any part is late (concluded late, or open past its own promise now), or the
        bundle's own promised deadline passed before it concluded (or by ``now``)."""
        if self.late_parts or list(open_parts_past_due):
            return True
        if self.promised_due_at is None:
            return False
        end = self.concluded_at if self.concluded_at is not None else now
        return end > self.promised_due_at

    def summary(self) -> dict[str, Any]:
        return {
            "bundle_no": self.bundle_no, "channel": self.channel.code, "channel_name": self.channel.name,
            "channel_version": self.channel.version, "status": self.status, "version": self.version,
            "department": self.actor.get("department"), "window": self.actor.get("window"),
            "enterprise": self.enterprise, "project": self.project,
            "promised_limit": self.channel.promised_limit.as_dict(), "legal_limit": self.channel.legal_limit.as_dict(),
            "submitted_at": self.submitted_at, "accepted_at": self.accepted_at,
            "promised_due_at": self.promised_due_at, "legal_due_at": self.legal_due_at,
            "concluded_at": self.concluded_at, "on_time": self.on_time, "within_legal": self.within_legal,
            "late_parts": self.late_parts,
        }


class PartOf(Aggregate):
    """A part case's membership: one bundle per case (the index the ingest companion reads)."""

    TOPIC = "esup.bundle:PartOf"

    class Event(Aggregate.Event):
        TOPIC = "esup.bundle:PartOf.Event"

    class Registered(Aggregate.Created, Event):
        TOPIC = "esup.bundle:PartOf.Registered"
        case_no: str
        bundle_no: str

    Created = Registered

    def __init__(self, case_no: str, bundle_no: str) -> None:
        self.case_no = case_no
        self.bundle_no = bundle_no

    @staticmethod
    def create_id(case_no: str, **_: Any) -> UUID:
        return membership_id(case_no)

    @classmethod
    def register(cls, case_no: str, bundle_no: str, at: datetime) -> PartOf:
        return cls._create(cls.Registered, case_no=case_no, bundle_no=bundle_no, timestamp=at)


BUNDLE_TOPICS = (Bundle.Submitted.TOPIC, Bundle.Accepted.TOPIC, Bundle.PartClosed.TOPIC, Bundle.Concluded.TOPIC)


def bundle_thresholds(accepted_at: datetime | None, promised: Limit, legal: Limit, promised_due_at: datetime | None,
                      legal_due_at: datetime | None, calendar: WorkingCalendar,
                      policy: WarningPolicy = DEFAULT_WARNING_POLICY) -> list[Threshold]:
    """The bundle's own yellow / red / severe instants, by the case rule (domain/thresholds.py)
    applied to the bundle's clock: yellow when most of its promised time is used, red when its
    promised deadline passes, severe at the legal one."""
    policy = replace(policy, steps=())  # a bundle has no steps of its own
    return plan(CaseClock(accepted_at, promised, legal, promised_due_at, legal_due_at),
                policy, calendar)


def reached_levels(thresholds: list[Threshold], concluded_at: datetime | None, now: datetime) -> list[Threshold]:
    """The thresholds the bundle's clock passed: by ``now`` if open, by its conclusion if closed
    (a conclusion exactly at the deadline is on time)."""
    end = concluded_at if concluded_at is not None else now
    return [t for t in thresholds if end > t.at]

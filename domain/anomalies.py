"""Anomaly rules (异常监测): a case's events in, decisions out. Pure: no tables, no clock.

The rules keep a small per-case state (:class:`CaseState`) and answer each event with
decisions the anomaly view applies to its tables:

* :class:`Raise` an anomaly (or add evidence to the one the case has for that rule);
* :class:`Arm` a timer (a limit that must be met: it raises its anomaly when its due instant
  passes with nothing done), :class:`Disarm` it, :class:`Amend` what an armed timer will say;
* :class:`Clear` an anomaly a timer raised on what the ledger then held, when a step keyed in
  later shows it happened in time; :class:`Annotate` a timer's anomaly with a later step.

Which anomalies exist and what they mean is :data:`RULES`; the thresholds are
:class:`AnomalyPolicy`. Instants in the state are integer microseconds since the epoch (exact,
and the view stores them as they are).

Where anomalies come from:

- The flags the domain put on each event (late_entry, time_backwards, skipped_step, ...): one
  rule each, same code.
- Patterns over a case's events: many steps keyed in together (bulk_entry, 体外循环), frequent
  special procedures (suspension_frequent), steps that name no staff member (missing_actor),
  concluded past the promise (concluded_past_promise).
- Time limits (timers): not accepted or refused within 5 working days of receipt
  (acceptance_overdue), an on-the-spot item not concluded the day it was accepted
  (on_the_spot_overdue), a special procedure open too long (suspension_long), the legal limit
  passed (legal_limit_exceeded). A later event dated after the due instant breaches the timer;
  so does time passing with nothing recorded (:func:`swept`, run by the view on the log's clock
  and on the wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time as clock_time, timedelta, timezone
from typing import Any, Callable, Union

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.errors import CalendarUnknown
from domain.limits import Unit
from domain.steps import STEP_ZH, Step

TYPES = {
    "time": "时效",
    "procedure": "流程",
    "content": "内容",
    "discretion": "裁量",
    "risk": "风险防控",
    "escalation": "督办",
}


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    label: str  # 中文
    description: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("acceptance_overdue", "time", "收件后5个工作日内未受理或不予受理",
         "neither accepted nor refused (nor a supplement notice sent) within 5 working days of receipt"),
    Rule("on_the_spot_overdue", "time", "即办件未当场办结", "an on-the-spot item (即办件) not concluded the day it was accepted"),
    Rule("concluded_past_promise", "time", "超承诺时限办结", "concluded after the promised deadline"),
    Rule("legal_limit_exceeded", "escalation", "超法定时限", "the legal time limit passed: needs 督办"),
    Rule("skipped_step", "procedure", "跳过环节", "a step of the flow was skipped"),
    Rule("out_of_order", "procedure", "环节顺序颠倒", "a step came after a later stage of the flow"),
    Rule("time_backwards", "procedure", "时间倒流", "a step happened before the previous one"),
    Rule("concluded_while_suspended", "procedure", "特别程序中办结", "concluded while a special procedure was open"),
    Rule("no_reason", "content", "不予受理未说明理由", "refused (不予受理) without a reason"),
    Rule("item_not_in_force", "content", "事项不在有效期", "the item was not in force on the day"),
    Rule("department_mismatch", "content", "非本部门事项", "the item belongs to another department"),
    Rule("missing_actor", "content", "未登记经办人", "an acceptance, refusal, decision or conclusion names no staff member"),
    Rule("fee_above_standard", "discretion", "超标准收费", "a fee above the item's standard"),
    Rule("fee_on_free_item", "discretion", "免费事项收费", "a fee charged on a free item"),
    Rule("late_entry", "risk", "事后补录 (体外循环)", "a step recorded long after it happened"),
    Rule("bulk_entry", "risk", "集中录入 (体外循环)", "many steps of a case keyed in together, though they span days"),
    Rule("suspension_frequent", "risk", "频繁启动特别程序", "special procedures started again and again on one case"),
    Rule("suspension_long", "risk", "特别程序时间过长", "a special procedure open for too long"),
    Rule("warning_withdrawn", "risk", "补录撤销预警 (疑似倒签)",
         "a step keyed in after a warning was issued, dated before its threshold, withdrew the warning"),
]}
UNKNOWN_FLAG_TYPE = "procedure"  # a flag the domain adds later, before it is classified here
# Flags that say something about our reference data, not about the department's work.
NOT_IRREGULAR = frozenset({"calendar_provisional"})
DECIDING = frozenset({Step.ACCEPTED, Step.REFUSED, Step.DECIDED, Step.CONCLUDED})  # someone must answer for these
TIMER_RULES = ("acceptance_overdue", "on_the_spot_overdue", "suspension_long", "legal_limit_exceeded")
_LEVEL_ZH = {"yellow": "黄牌", "red": "红牌", "severe": "严重超期"}


def rule_for(code: str) -> Rule:
    return RULES.get(code) or Rule(code, UNKNOWN_FLAG_TYPE, code, code)


@dataclass(frozen=True)
class AnomalyPolicy:
    """Thresholds (configuration: ``infra.settings.anomaly_policy`` reads them; README "Anomalies")."""

    accept_within_working_days: int = 5  # law: a decision or a supplement notice within 5 working days
    bulk_min_steps: int = 4  # 体外循环: at least this many steps of one case ...
    bulk_window: timedelta = timedelta(seconds=60)  # ... recorded within this span ...
    bulk_min_span: timedelta = timedelta(days=1)  # ... whose business times span at least this
    suspensions_frequent: int = 3  # this many special procedures on one case
    suspension_long: timedelta = timedelta(days=30)  # one special procedure open longer (calendar time)


# -- instants ------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
SECOND = 1_000_000


def to_us(value: datetime) -> int:
    """Exact microseconds since the epoch."""
    return (value - _EPOCH) // _US


def from_us(value: int, tz: Any = timezone.utc) -> datetime:
    return (_EPOCH + timedelta(microseconds=int(value))).astimezone(tz)


# -- decisions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raise:
    """Raise the (case, rule) anomaly, or add this evidence to it and reopen it."""

    rule: str
    reason: str
    evidence: list[dict[str, Any]]
    occurred: int  # µs: when it happened (a timer's: its due instant)
    details: dict[str, Any] = field(default_factory=dict)
    by: str = "event"  # event | sweep
    armed: int | None = None  # a timer's: the case version that armed it (one entry in ``breaches``)


@dataclass(frozen=True)
class Arm:
    rule: str
    due: int | None  # µs; None: paused (the clock stopped)
    armed: int
    reason: str
    evidence: list[dict[str, Any]]


@dataclass(frozen=True)
class Disarm:
    rule: str


@dataclass(frozen=True)
class Amend:
    """An armed timer's reason and evidence changed (it has not fired)."""

    rule: str
    reason: str
    evidence: list[dict[str, Any]]


@dataclass(frozen=True)
class Clear:
    """The timer armed at ``armed`` raised its anomaly on what the ledger then held; this step
    shows it happened in time: mark it cleared (only if it is open and was raised by that timer)."""

    rule: str
    armed: int
    evidence: dict[str, Any]
    by_version: int


@dataclass(frozen=True)
class Annotate:
    """Add a step to the evidence of the anomaly the timer armed at ``armed`` raised (if it did)."""

    rule: str
    armed: int
    evidence: dict[str, Any]
    reason: str | None = None


Decision = Union[Raise, Arm, Disarm, Amend, Clear, Annotate]


# -- per-case state --------------------------------------------------------------------------------


@dataclass
class Timer:
    due: int | None
    armed: int
    reason: str
    evidence: list[dict[str, Any]]
    breached: bool = False
    calendar: str | None = None  # a note when the due instant had to be estimated


@dataclass
class CaseState:
    """What the rules remember of one case between its events."""

    case_no: str
    department: str
    window: str | None
    item_code: str | None
    spot: bool
    accepted: bool = False
    suspended: dict[str, Any] | None = None  # evidence of the open special procedure
    suspensions: list[dict[str, Any]] = field(default_factory=list)
    last: tuple[int, dict[str, Any]] | None = None  # (occurred µs, evidence) of the latest-dated step
    recent: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (recorded, occurred, evidence)
    timers: dict[str, Timer] = field(default_factory=dict)

    @property
    def dims(self) -> tuple[str, str, str | None, str | None]:
        return self.case_no, self.department, self.window, self.item_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_no": self.case_no, "department": self.department, "window": self.window, "item_code": self.item_code,
            "spot": self.spot, "accepted": self.accepted, "suspended": self.suspended, "suspensions": self.suspensions,
            "last": list(self.last) if self.last else None, "recent": [list(r) for r in self.recent],
            "timers": {k: [t.due, t.armed, t.reason, t.evidence, t.breached, t.calendar] for k, t in self.timers.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseState:
        return cls(
            d["case_no"], d["department"], d["window"], d["item_code"], d["spot"], d["accepted"], d["suspended"],
            d["suspensions"], tuple(d["last"]) if d["last"] else None, [tuple(r) for r in d["recent"]],  # type: ignore[arg-type]
            {k: Timer(*t) for k, t in d["timers"].items()},
        )


def evidence_of(event: Any, **extra: Any) -> dict[str, Any]:
    """The evidence entry naming one case event."""
    return {
        "version": event.originator_version,
        "step": event.STEP.value,
        "source_event_id": event.source_event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.timestamp.isoformat(),
        **extra,
    }


def working_days_deadline(cal: WorkingCalendar, start: datetime, days: int) -> tuple[datetime, str | None]:
    """End of the ``days``-th working day after ``start``'s date, and a note if it had to be
    estimated (a year with no published schedule: weekdays only; the step itself is already
    stored, so it is never refused here)."""
    try:
        return cal.deadline_for(start, days, Unit.WORKING_DAYS), None
    except CalendarUnknown:
        d = start.astimezone(cal.tz).date()
        left = days
        while left:
            d += timedelta(days=1)
            if d.weekday() < 5:
                left -= 1
        end = datetime.combine(d + timedelta(days=1), clock_time.min, tzinfo=cal.tz)
        return end, f"estimated on weekdays: no working calendar for {d.year}"


def started(event: Any) -> CaseState:
    """The state of a case its ``submitted`` event opens."""
    return CaseState(event.case_no, event.department, event.window, event.item_code, bool(event.terms["on_the_spot"]))


# -- the rules -------------------------------------------------------------------------------------


class CaseRules:
    """The anomaly rules for one event of one case. ``calendar`` is the case's working calendar
    (its center's schedules and office hours)."""

    def __init__(self, policy: AnomalyPolicy, state: CaseState, event: Any, calendar: Callable[[], WorkingCalendar]) -> None:
        self.policy = policy
        self.st = state
        self.event = event
        self._calendar = calendar
        self.out: list[Decision] = []
        self.ev = evidence_of(event)
        self.at = to_us(event.occurred_at)
        self.breached_now: set[str] = set()

    def anomaly(self, rule: str, reason: str, evidence: list[dict[str, Any]], occurred: int | None = None,
                **details: Any) -> None:
        self.out.append(Raise(rule, reason, evidence, self.at if occurred is None else occurred, details))

    def run(self) -> list[Decision]:
        e, st = self.event, self.st
        step: Step = e.STEP
        previous_last = st.last
        self.flags(previous_last)
        self.bulk()
        if st.last is None or self.at > st.last[0]:
            st.last = (self.at, self.ev)
        if step in DECIDING and not e.staff:
            self.anomaly("missing_actor", f"{step.value} names no staff member (经办人)", [self.ev])
        self.overdue_timers()
        handler = _HANDLERS.get(step)
        if handler is not None:
            handler(self)
        return self.out

    def flags(self, previous_last: tuple[int, dict[str, Any]] | None) -> None:
        for f in self.event.flags:
            code = f["code"]
            if code in NOT_IRREGULAR:
                continue
            extra = {k: v for k, v in f.items() if k not in ("code", "detail")}
            evidence = [{**self.ev, "detail": f["detail"], **extra}]
            if code == "time_backwards" and previous_last is not None:
                evidence.append({**previous_last[1], "role": "previous"})
            self.anomaly(code, f["detail"], evidence)

    def bulk(self) -> None:
        p = self.policy
        window = p.bulk_window.total_seconds()
        recorded = to_us(self.event.timestamp)
        recent = [r for r in self.st.recent if r[0] >= recorded - int(window * SECOND)]
        recent.append((recorded, self.at, self.ev))
        self.st.recent = recent[-50:]
        if len(recent) < p.bulk_min_steps:
            return
        span = (max(r[1] for r in recent) - min(r[1] for r in recent)) / SECOND
        if span >= p.bulk_min_span.total_seconds():
            self.anomaly(
                "bulk_entry",
                f"{len(recent)} steps recorded within {int(window)} s, though they happened over "
                f"{span / 86400:.1f} days (体外循环?)",
                [r[2] for r in recent], occurred=recent[0][1],
            )

    # -- timers --------------------------------------------------------------------------------

    def arm(self, rule: str, due: int | None, reason: str, evidence: list[dict[str, Any]], calendar: str | None = None) -> None:
        timer = Timer(due, self.event.originator_version, reason, evidence, calendar=calendar)
        self.st.timers[rule] = timer
        self.out.append(Arm(rule, due, timer.armed, reason, evidence))

    def move(self, rule: str, due: int | None) -> None:
        """A step moved (or paused: None) an armed timer's due instant."""
        timer = self.st.timers.get(rule)
        if timer is None or timer.breached:
            return
        old = timer.due
        timer.due = due
        if old is not None and self.at <= old:
            # Moved by a step that happened in time: an anomaly raised meanwhile on what was
            # then known is cleared (if the new due passes too, it is raised again).
            self.out.append(Clear(rule, timer.armed, {**self.ev, "role": "settled_in_time"}, self.event.originator_version))
        self.out.append(Arm(rule, due, timer.armed, timer.reason, timer.evidence))

    def overdue_timers(self) -> None:
        """This event happened after an armed timer's due instant: it shows the limit passed."""
        for rule, timer in list(self.st.timers.items()):
            if timer.breached or timer.due is None or self.at <= timer.due:
                continue
            self.breach(rule, timer)

    def breach(self, rule: str, timer: Timer) -> None:
        timer.breached = True
        self.breached_now.add(rule)
        self.out.append(Disarm(rule))
        self.out.append(Raise(rule, timer.reason, [*timer.evidence, {**self.ev, "role": "after_due"}], timer.due or self.at,
                              {"due_at": from_us(timer.due, CHINA_TZ).isoformat() if timer.due is not None else None},
                              armed=timer.armed))

    def settle(self, rule: str) -> None:
        """The step this timer waited for: in time, or (already breached) late."""
        timer = self.st.timers.pop(rule, None)
        if timer is None:
            return
        self.out.append(Disarm(rule))
        if timer.due is not None and self.at <= timer.due:
            # In time. If an anomaly was raised meanwhile on what the ledger then held (a sweep,
            # or a later-dated step keyed in first), this step, keyed in late, clears it.
            self.out.append(Clear(rule, timer.armed, {**self.ev, "role": "settled_in_time"}, self.event.originator_version))
        elif rule not in self.breached_now:
            self.out.append(Annotate(rule, timer.armed, {**self.ev, "role": "settled_late"}))

    def acceptance_timer(self, start: datetime, evidence: list[dict[str, Any]]) -> None:
        days = self.policy.accept_within_working_days
        due, note = working_days_deadline(self._calendar(), start, days)
        reason = (f"neither accepted nor refused within {days} working days of receipt "
                  f"(收件后{days}个工作日内未受理): due {due.isoformat()}")
        self.arm("acceptance_overdue", to_us(due), reason, evidence, calendar=note)

    # -- per step ------------------------------------------------------------------------------

    def on_submitted(self) -> None:
        self.acceptance_timer(self.event.occurred_at, [{**self.ev, "role": "received"}])

    def on_supplement_requested(self) -> None:
        self.settle("acceptance_overdue")  # the one-time notice stops the 5-day clock

    def on_supplement_received(self) -> None:
        if not self.st.accepted:
            self.acceptance_timer(self.event.occurred_at, [{**self.ev, "role": "received"}])

    def on_accepted(self) -> None:
        e, st = self.event, self.st
        st.accepted = True
        self.settle("acceptance_overdue")
        if e.terms is not None:
            st.spot = bool(e.terms["on_the_spot"])
        if st.spot:
            local = e.occurred_at.astimezone(self._calendar().tz)
            end = datetime.combine(local.date() + timedelta(days=1), clock_time.min, tzinfo=local.tzinfo)
            self.arm("on_the_spot_overdue", to_us(end),
                     f"on-the-spot item (即办件) not concluded on the day it was accepted ({local.date()})",
                     [{**self.ev, "role": "accepted"}])
        legal = e.legal_due_at
        if legal is not None:
            self.arm("legal_limit_exceeded", to_us(legal), f"the legal time limit (法定时限) passed: due {legal.isoformat()}",
                     [{**self.ev, "role": "accepted"}])

    def on_refused(self) -> None:
        self.settle("acceptance_overdue")
        self.close()

    def on_withdrawn(self) -> None:
        self.close()

    def on_suspended(self) -> None:
        st, p = self.st, self.policy
        st.suspensions.append(self.ev)
        st.suspended = self.ev
        if len(st.suspensions) >= p.suspensions_frequent:
            self.anomaly("suspension_frequent", f"{len(st.suspensions)} special procedures (特别程序) on one case",
                         [{**s, "role": "suspension"} for s in st.suspensions])
        self.arm("suspension_long", self.at + int(p.suspension_long.total_seconds() * SECOND),
                 f"a special procedure (特别程序) open longer than {p.suspension_long.days} days",
                 [{**self.ev, "role": "suspended"}])
        self.move("legal_limit_exceeded", None)  # the clock stops

    def on_resumed(self) -> None:
        self.st.suspended = None
        self.settle("suspension_long")
        legal = self.event.legal_due_at
        if legal is not None:
            self.move("legal_limit_exceeded", to_us(legal))

    def on_extended(self) -> None:
        spot = self.st.timers.get("on_the_spot_overdue")
        if spot is not None:  # an approved extension does not make an on-the-spot item on the spot
            ev = {**self.ev, "role": "extended"}
            spot.evidence = [*spot.evidence, ev]
            spot.reason += "; an extension (延期) was approved"
            if spot.breached:
                self.out.append(Annotate("on_the_spot_overdue", spot.armed, ev, spot.reason))
            else:
                self.out.append(Amend("on_the_spot_overdue", spot.reason, spot.evidence))
        legal = self.event.legal_due_at
        if legal is not None and self.st.suspended is None:
            self.move("legal_limit_exceeded", to_us(legal))

    def on_concluded(self) -> None:
        e, st = self.event, self.st
        if e.on_time is False:
            self.anomaly("concluded_past_promise", "concluded after the promised deadline (超承诺时限)", [self.ev])
        self.settle("on_the_spot_overdue")
        if e.within_legal is False:
            timer = st.timers.get("legal_limit_exceeded")
            if timer is not None and not timer.breached:
                self.breach("legal_limit_exceeded", timer)
        self.close()

    def close(self) -> None:
        """A terminal step: nothing is awaited any more."""
        self.st.suspended = None
        for rule in list(self.st.timers):
            self.settle(rule)


# Each step's own rule (``CaseRules.on_<step>``), looked up once rather than by name per event.
_HANDLERS: dict[Step, Callable[[CaseRules], None]] = {
    s: getattr(CaseRules, f"on_{s.value}") for s in Step if hasattr(CaseRules, f"on_{s.value}")}


def apply(policy: AnomalyPolicy, state: CaseState, event: Any, calendar: Callable[[], WorkingCalendar]) -> list[Decision]:
    """One case step: the state moves, and these are the decisions (in order)."""
    return CaseRules(policy, state, event, calendar).run()


def swept(rule: str, due: int, armed: int, reason: str, evidence: list[dict[str, Any]], now: int) -> Raise:
    """A timer whose due instant passed with nothing recorded (as of ``now``): its anomaly."""
    return Raise(rule, reason, evidence, due, {"due_at": from_us(due, CHINA_TZ).isoformat(),
                                               "as_of": from_us(now, CHINA_TZ).isoformat()},
                 by="sweep", armed=armed)


def card_withdrawn(event: Any) -> Raise:
    """Backdating a step to escape a card is seen, not rewarded: the step that withdrew the card
    (``CaseWarning.Withdrawn``) is an anomaly naming the card."""
    ev = event.evidence
    wid = str(event.originator_id)
    evidence = [{
        "version": ev.get("version"), "step": ev.get("step"), "source_event_id": ev.get("source_event_id"),
        "occurred_at": ev.get("occurred_at"), "recorded_at": ev.get("recorded_at"),
        "role": "withdrew", "detail": wid, "warning_id": wid, "level": ev.get("level"), "threshold_at": ev.get("threshold_at"),
    }]
    recorded = datetime.fromisoformat(ev["recorded_at"]) if ev.get("recorded_at") else event.timestamp
    occurred = datetime.fromisoformat(ev["occurred_at"]) if ev.get("occurred_at") else recorded
    lag_days = (recorded - occurred).total_seconds() / 86400
    try:
        step_zh = STEP_ZH[Step(ev.get("step"))]
    except (KeyError, ValueError):
        step_zh = str(ev.get("step"))
    return Raise("warning_withdrawn", f"补录{step_zh}（滞后 {lag_days:.0f} 天）使已发出的{_LEVEL_ZH.get(ev.get('level'), '')}预警撤销",
                 evidence, to_us(occurred), {"warnings": [wid]})

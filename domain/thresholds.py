"""Warning thresholds (预警阈值): when a case turns yellow, red or severe, as instants.

A warning policy is configuration (cities differ). Its parts, with the defaults:

* ``yellow`` (黄牌, a prompt): ``{"share": 0.8}`` — when 80% of the promised time has been used;
  or ``{"before": 1}`` — when 1 unit (of the promised limit's unit) of it is left; ``null``: off.
* ``red`` (红牌): ``true`` — when the promised deadline passes.
* ``severe`` (超法定时限): ``true`` — when the legal deadline passes.
* ``steps`` (环节时限): ``{}`` — optional per-step limits, e.g. ``{"undertaken": {"value": 1,
  "unit": "working_days"}}``: 承办 within 1 working day of 受理; a step is measured from the
  previous main step (accepted → undertaken → reviewed → decided → concluded); overrunning it
  gives a yellow warning whose rule is ``step:<name>``.
* ``escalation`` (督办时限): ``{"value": 3, "unit": "working_days"}`` — the default deadline an
  officer's escalation gives the department.

How "80% of the promised time" becomes an instant (the rule written down, law-sensible):

* The promised time is the promised limit plus approved extensions (延期), in the limit's unit.
  Time in a special procedure (特别程序) is not counted, so it is not part of the budget either:
  the stored deadline already moved by it.
* Used time is measured in **office time**, backwards from the stored promised deadline: yellow at
  ``share`` means "the remaining counted time until the deadline is ``(1 - share) x budget``".
  Measuring backwards from the deadline makes suspensions and extensions move the threshold
  exactly as they moved the deadline.
* Working hours count the office sessions (as the deadline does). Working days count each working
  day as one unit spread over that day's office sessions, the day of acceptance not counted (the
  law's rule). So 80% of 5 working days leaves 1 working day: yellow at the close of office of the
  4th working day (e.g. 17:00), the department keeps its whole last day; 90% of 5 leaves half a
  day: yellow half-way through the 5th day's office time (13:30 with 09:00-12:00, 13:00-17:00).
  A share never fires at a moment of no office time it could reach earlier: the first instant the
  share is reached is a session's end.
* Calendar days count 24-hour days back from the deadline.
* Red and severe are the deadlines themselves (the exclusive end of the last day: the case is
  overdue from that instant).
* No threshold is earlier than the acceptance or the last resumption: a stopped clock does not
  warn, and a case resumed with little time left is warned at once. A yellow that would fall at
  or before acceptance (e.g. an on-the-spot item, or ``before`` >= the whole budget) is dropped.

The domain is pure: the calendar and the policy are handed in, the clock is never read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from fractions import Fraction
from typing import Any

from domain.calendar import WorkingCalendar
from domain.errors import CalendarUnknown, InvalidInput
from domain.limits import Limit, Unit

__all__ = [
    "DEFAULT_WARNING_POLICY",
    "CaseClock",
    "Level",
    "NEXT_STEP",
    "PolicyBook",
    "Threshold",
    "WarningPolicy",
    "instant_before",
    "plan",
    "stage_extra",
]


class Level(str, Enum):
    YELLOW = "yellow"  # 黄牌: nearing the promised limit (or a step overran its limit)
    RED = "red"  # 红牌: past the promised limit
    SEVERE = "severe"  # past the legal limit


# The main flow: each step is measured from the previous one (环节时限).
NEXT_STEP = {"accepted": "undertaken", "undertaken": "reviewed", "reviewed": "decided", "decided": "concluded"}
STEP_NAMES = frozenset(NEXT_STEP.values())

_MICRO = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)


def _share(raw: object) -> Fraction:
    """0.8, "0.8", "80%" or "4/5" -> Fraction(4, 5); strictly between 0 and 1."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InvalidInput(f"yellow share must be a number between 0 and 1, got {raw!r}", code="invalid_policy")
    try:
        if isinstance(raw, str) and raw.strip().endswith("%"):
            value = Fraction(raw.strip()[:-1]) / 100
        else:
            value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        raise InvalidInput(f"yellow share must be a number between 0 and 1, got {raw!r}", code="invalid_policy") from None
    if not 0 < value < 1:
        raise InvalidInput(f"yellow share must be strictly between 0 and 1, got {raw!r}", code="invalid_policy")
    return value


def _amount(raw: object, what: str) -> Fraction:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise InvalidInput(f"{what} must be a positive number, got {raw!r}", code="invalid_policy")
    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        raise InvalidInput(f"{what} must be a positive number, got {raw!r}", code="invalid_policy") from None
    if value <= 0 or value > 3650:
        raise InvalidInput(f"{what} must be positive (and at most 3650), got {raw!r}", code="invalid_policy")
    return value


def _limit(raw: object, what: str) -> Limit:
    try:
        return Limit.parse(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.detail}", code="invalid_policy") from None


@dataclass(frozen=True)
class WarningPolicy:
    """One effective policy. ``yellow_share`` and ``yellow_before`` are exclusive (or both None)."""

    yellow_share: Fraction | None = Fraction(4, 5)
    yellow_before: Fraction | None = None
    red: bool = True
    severe: bool = True
    steps: tuple[tuple[str, Limit], ...] = ()
    escalation: Limit = Limit(3, Unit.WORKING_DAYS)

    KEYS = ("yellow", "red", "severe", "steps", "escalation")

    def __post_init__(self) -> None:
        if self.yellow_share is not None and self.yellow_before is not None:
            raise InvalidInput("yellow is either a share or a number of units before", code="invalid_policy")

    def step_limit(self, step: str) -> Limit | None:
        for name, limit in self.steps:
            if name == step:
                return limit
        return None

    def as_dict(self) -> dict[str, Any]:
        if self.yellow_share is not None:
            yellow: dict[str, Any] | None = {"share": _num(self.yellow_share)}
        elif self.yellow_before is not None:
            yellow = {"before": _num(self.yellow_before)}
        else:
            yellow = None
        return {
            "yellow": yellow,
            "red": self.red,
            "severe": self.severe,
            "steps": {name: limit.as_dict() for name, limit in self.steps},
            "escalation": self.escalation.as_dict(),
        }

    @staticmethod
    def check_partial(raw: object) -> dict[str, Any]:
        """Validate an override (any subset of the keys); returns it normalised."""
        if not isinstance(raw, Mapping):
            raise InvalidInput('a warning policy is a JSON object, e.g. {"yellow": {"share": 0.9}}', code="invalid_policy")
        unknown = set(raw) - set(WarningPolicy.KEYS)
        if unknown:
            raise InvalidInput(f"unknown warning policy keys: {', '.join(sorted(map(str, unknown)))}", code="invalid_policy")
        return WarningPolicy.parse(raw, DEFAULT_WARNING_POLICY).as_dict_of(raw)

    def as_dict_of(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        full = self.as_dict()
        return {k: full[k] for k in raw}

    @classmethod
    def parse(cls, raw: object, base: WarningPolicy | None = None) -> WarningPolicy:
        """``raw`` over ``base`` (the defaults if None): keys not given are inherited."""
        base = base or DEFAULT_WARNING_POLICY
        if not isinstance(raw, Mapping):
            raise InvalidInput('a warning policy is a JSON object, e.g. {"yellow": {"share": 0.9}}', code="invalid_policy")
        unknown = set(raw) - set(cls.KEYS)
        if unknown:
            raise InvalidInput(f"unknown warning policy keys: {', '.join(sorted(map(str, unknown)))}", code="invalid_policy")
        share, before = base.yellow_share, base.yellow_before
        if "yellow" in raw:
            y = raw["yellow"]
            if y is None or y is False:
                share = before = None
            elif isinstance(y, Mapping) and set(y) == {"share"}:
                share, before = _share(y["share"]), None
            elif isinstance(y, Mapping) and set(y) == {"before"}:
                share, before = None, _amount(y["before"], "yellow before")
            else:
                raise InvalidInput('yellow is {"share": 0.8}, {"before": 1} or null', code="invalid_policy")
        flags = {}
        for key in ("red", "severe"):
            value = raw.get(key, getattr(base, key))
            if not isinstance(value, bool):
                raise InvalidInput(f"{key} must be true or false", code="invalid_policy")
            flags[key] = value
        steps = base.steps
        if "steps" in raw:
            s = raw["steps"]
            if s is None:
                s = {}
            if not isinstance(s, Mapping):
                raise InvalidInput('steps is {"undertaken": {"value": 1, "unit": "working_days"}, ...}', code="invalid_policy")
            bad = set(s) - STEP_NAMES
            if bad:
                raise InvalidInput(
                    f"step limits are for {', '.join(sorted(STEP_NAMES))}; not {', '.join(sorted(map(str, bad)))}",
                    code="invalid_policy",
                )
            parsed = []
            for name in ("undertaken", "reviewed", "decided", "concluded"):
                if s.get(name) is not None:
                    limit = _limit(s[name], f"step limit {name}")
                    if limit.value == 0:
                        raise InvalidInput(f"step limit {name} must be positive", code="invalid_policy")
                    parsed.append((name, limit))
            steps = tuple(parsed)
        escalation = base.escalation
        if "escalation" in raw:
            escalation = _limit(raw["escalation"], "escalation")
            if escalation.value == 0:
                raise InvalidInput("escalation must give the department some time", code="invalid_policy")
        return cls(share, before, flags["red"], flags["severe"], steps, escalation)


def _num(value: Fraction) -> int | float | str:
    if value.denominator == 1:
        return int(value)
    as_float = float(value)
    return as_float if Fraction(str(as_float)) == value else str(value)


DEFAULT_WARNING_POLICY = WarningPolicy()


@dataclass(frozen=True)
class PolicyBook:
    """The default policy and partial overrides per center and per item.

    Precedence, key by key: default, then the center's override, then the item's override (the
    item is the more specific: its limits are what the policy measures).
    """

    default: WarningPolicy = DEFAULT_WARNING_POLICY
    centers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    items: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def policy_for(self, center: str | None, item_code: str | None) -> WarningPolicy:
        policy = self.default
        if center and center in self.centers:
            policy = WarningPolicy.parse(self.centers[center], policy)
        if item_code and item_code in self.items:
            policy = WarningPolicy.parse(self.items[item_code], policy)
        return policy

    @classmethod
    def parse(cls, raw: object) -> PolicyBook:
        """``{"yellow": ...}`` (a default policy) or ``{"default": {...}, "centers": {code: {...}},
        "items": {code: {...}}}``."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("a warning policy book is a JSON object", code="invalid_policy")
        if set(raw) & {"default", "centers", "items"}:
            unknown = set(raw) - {"default", "centers", "items"}
            if unknown:
                raise InvalidInput(f"unknown policy book keys: {', '.join(sorted(unknown))}", code="invalid_policy")
            default = WarningPolicy.parse(raw.get("default") or {})
            scopes: dict[str, dict[str, Any]] = {}
            for scope in ("centers", "items"):
                section = raw.get(scope) or {}
                if not isinstance(section, Mapping):
                    raise InvalidInput(f"{scope} maps codes to policies", code="invalid_policy")
                scopes[scope] = {str(code): WarningPolicy.check_partial(p) for code, p in section.items()}
            return cls(default, scopes["centers"], scopes["items"])
        return cls(WarningPolicy.parse(raw))

    def with_override(self, scope: str, code: str, partial: Mapping[str, Any]) -> PolicyBook:
        if scope == "center":
            return PolicyBook(self.default, {**self.centers, code: dict(partial)}, self.items)
        if scope == "item":
            return PolicyBook(self.default, self.centers, {**self.items, code: dict(partial)})
        raise InvalidInput("a policy override is per center or per item", code="invalid_policy")


@dataclass(frozen=True)
class Threshold:
    rule: str  # "yellow", "red", "severe" or "step:<name>": with the case, identifies the warning
    level: Level
    at: datetime
    basis: str = ""  # the rule in words, recorded on the warning


@dataclass(frozen=True)
class CaseClock:
    """What the thresholds of a case depend on (all instants tz-aware)."""

    accepted_at: datetime | None
    promised: Limit | None
    legal: Limit | None
    promised_due_at: datetime | None
    legal_due_at: datetime | None
    promised_extension: Fraction = Fraction(0)  # approved extensions, in the promised limit's unit
    suspended: bool = False
    resumed_at: datetime | None = None  # the last resumption
    closed: bool = False
    stage: str | None = None  # the last main step reached (accepted, undertaken, ...)
    stage_at: datetime | None = None
    stage_extra: Fraction = Fraction(0)  # time suspended since the stage began, in the step limit's unit
    issued: frozenset[str] = frozenset()  # rules already warned


def plan(c: CaseClock, policy: WarningPolicy, calendar: WorkingCalendar) -> list[Threshold]:
    """The pending thresholds of a case, earliest first. None while suspended, closed, or not
    accepted; rules already issued are left out (a warning is issued once)."""
    if c.closed or c.suspended or c.accepted_at is None or c.promised is None or c.promised_due_at is None:
        return []
    floor = c.accepted_at if c.resumed_at is None or c.resumed_at < c.accepted_at else c.resumed_at
    out: list[Threshold] = []
    if policy.yellow_share is not None or policy.yellow_before is not None:
        budget = Fraction(c.promised.value) + c.promised_extension
        left = (1 - policy.yellow_share) * budget if policy.yellow_share is not None else policy.yellow_before
        assert left is not None
        at = instant_before(calendar, c.promised_due_at, left, c.promised.unit, not_before=c.accepted_at)
        if at is not None and c.accepted_at < at < c.promised_due_at:
            unit = c.promised.unit.value
            basis = (
                f"{_num(policy.yellow_share * 100)}% of the promised {_num(budget)} {unit} used"
                if policy.yellow_share is not None
                else f"{_num(left)} {unit} before the promised deadline"
            )
            out.append(Threshold("yellow", Level.YELLOW, max(at, floor), basis))
    if policy.red:
        out.append(Threshold("red", Level.RED, max(c.promised_due_at, floor), "promised deadline passed"))
    if policy.severe and c.legal_due_at is not None:
        out.append(Threshold("severe", Level.SEVERE, max(c.legal_due_at, floor), "legal deadline passed"))
    if c.stage in NEXT_STEP and c.stage_at is not None:
        nxt = NEXT_STEP[c.stage]
        limit = policy.step_limit(nxt)
        if limit is not None:
            extra = c.stage_extra if limit.unit is Unit.WORKING_HOURS else Fraction(math.floor(c.stage_extra))
            try:
                at = calendar.deadline_for(c.stage_at, limit.value + extra, limit.unit)
            except CalendarUnknown:  # the step's limit runs into a year not yet published: no step warning
                at = None
            if at is not None:
                basis = f"{nxt} within {limit.value} {limit.unit.value} of {c.stage}"
                out.append(Threshold(f"step:{nxt}", Level.YELLOW, max(at, floor), basis))
    return sorted((t for t in out if t.rule not in c.issued), key=lambda t: (t.at, t.rule))


def stage_extra(calendar: WorkingCalendar, policy: WarningPolicy, stage: str | None, stage_at: datetime | None,
                suspended_at: datetime, resumed_at: datetime) -> Fraction:
    """Suspended time to add to the current step's limit on resumption (in that limit's unit)."""
    if stage not in NEXT_STEP or stage_at is None:
        return Fraction(0)
    limit = policy.step_limit(NEXT_STEP[stage])
    if limit is None:
        return Fraction(0)
    return Fraction(calendar.elapsed(max(suspended_at, stage_at), resumed_at, limit.unit))


# -- counting time backwards ---------------------------------------------------------------


def _sessions(calendar: WorkingCalendar, d: date) -> list[tuple[datetime, datetime]]:
    tz = calendar.tz
    return [
        (datetime.combine(d, s.start, tzinfo=tz), datetime.combine(d, s.end, tzinfo=tz))
        for s in calendar.office_hours.sessions_on(d)
    ]


def instant_before(calendar: WorkingCalendar, end: datetime, amount: Fraction | int, unit: Unit,
                   not_before: datetime | None = None) -> datetime | None:
    """The earliest instant from which only ``amount`` of counted time is left until ``end``.

    Working hours: office time. Working days: each working day is one unit over its office
    sessions. Calendar days: 24-hour days. ``None`` if that would be at or before ``not_before``.
    """
    amount = Fraction(amount)
    if amount < 0:
        raise InvalidInput("an amount of time cannot be negative", code="invalid_amount")
    if amount == 0:
        return end
    if unit is Unit.CALENDAR_DAYS:
        at = end - timedelta(microseconds=math.floor(amount * 86_400_000_000))
        return None if not_before is not None and at <= not_before else at
    # The answer without ``not_before``, once found, is the answer with it unless at or before
    # it (then None): the walk back is the same up to there. Only answers found are kept (a walk
    # cut short by ``not_before`` may have stopped before a year with no schedule).
    memo = getattr(calendar, "memo", None)
    key = ("instant_before", end, amount, unit)
    if memo is not None:
        found = memo.get(key)
        if found is not None:
            return None if not_before is not None and found <= not_before else found
    at = _instant_before(calendar, end, amount, unit, not_before)
    if at is not None and memo is not None:
        memo[key] = at
    return at


def _instant_before(calendar: WorkingCalendar, end: datetime, amount: Fraction, unit: Unit,
                    not_before: datetime | None) -> datetime | None:
    local = end.astimezone(calendar.tz)
    stop = not_before.astimezone(calendar.tz) if not_before is not None else None
    remaining = amount
    d = local.date()
    cursor = local
    while True:
        if stop is not None and cursor <= stop:
            return None
        if calendar.is_working_day(d):
            sessions = _sessions(calendar, d)
            unit_us = (
                sum((e - s) // _MICRO for s, e in sessions) if unit is Unit.WORKING_DAYS else 3600 * 1_000_000
            )
            for s_start, s_end in reversed(sessions):
                if s_start >= cursor:
                    continue
                hi = min(s_end, cursor)
                available = (hi - s_start) // _MICRO
                need = remaining * unit_us
                if need < available:
                    at = hi - timedelta(microseconds=math.floor(need))
                    return None if stop is not None and at <= stop else at
                # Used up exactly at this session's start: walk on with nothing left, so the answer
                # is the end of the previous stretch of office time (the first instant it is reached).
                remaining -= Fraction(available, unit_us)
        d -= _ONE_DAY
        cursor = datetime.combine(d + _ONE_DAY, time(0), tzinfo=calendar.tz)

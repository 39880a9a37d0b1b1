"""The working calendar (工作日历): which days are worked, office hours, and deadlines.

Rules (China's Administrative Licensing Law art. 82; Civil Code art. 201-203):

* A day is a working day iff it is a make-up working day (调休, a Saturday or Sunday
  the State Council's annual notice declares worked) or it is Monday to Friday and not
  a holiday. Weekend dates listed as holidays change nothing.
* The day of acceptance is not counted. A limit of N working days ends at the END of the
  N-th working day after the (local) day of acceptance, returned as the exclusive instant:
  local midnight starting the following day.
* N calendar days end at the end of the local date ``start + N``; if that last day is not
  a working day the limit ends at the end of the next working day (Civil Code art. 203).
* N working hours are N hours of office time (the sessions of each working day), counted
  from ``start`` or from the next session start if ``start`` is outside office time.
* A limit of 0 (即办) ends at the end of the day of acceptance (days) or at ``start``
  itself (hours).
* A date in a year without a published schedule is never guessed: ``CalendarUnknown``,
  unless the calendar is *provisional* (``provisional()``): then such a year counts Monday
  to Friday as working days, with no holidays, and ``unpublished_years`` says which years a
  result leaned on, so the caller can flag it ``calendar_provisional`` and settle it once the
  year is published. A fact (a case accepted in December) is then never refused for want of
  next year's State Council notice.

The domain is pure: schedules are handed in (see ``infra.calendar_source``), the wall
clock is never read, and every datetime must be tz-aware.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain.errors import CalendarUnknown, InvalidInput
from domain.limits import Limit, Unit

__all__ = [
    "CHINA_TZ",
    "DEFAULT_OFFICE_HOURS",
    "DEFAULT_SUMMER_SESSIONS",
    "DEFAULT_WINTER_SESSIONS",
    "OfficeHours",
    "Session",
    "WorkingCalendar",
    "YearSchedule",
]

# China has used UTC+8 everywhere, without daylight saving, since 1991.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

_ONE_DAY = timedelta(days=1)
_MICRO = timedelta(microseconds=1)
_MEMO_SIZE = 100_000  # answers a calendar keeps (``WorkingCalendar.memo``), all dropped beyond


def _check_date(value: object, year: int, what: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput(f"{what} must be dates, got {value!r}", code="invalid_schedule")
    if value.year != year:
        raise InvalidInput(
            f"{what} date {value.isoformat()} does not belong to the {year} schedule",
            code="invalid_schedule",
            year=year,
        )
    return value


def _parse_iso_dates(raw: object, what: str) -> list[date]:
    if not isinstance(raw, (list, tuple)):
        raise InvalidInput(f"{what} must be a list of ISO dates", code="invalid_schedule")
    out = []
    for item in raw:
        if not isinstance(item, str):
            raise InvalidInput(f"{what} must be ISO dates (YYYY-MM-DD), got {item!r}", code="invalid_schedule")
        try:
            out.append(date.fromisoformat(item))
        except ValueError:
            raise InvalidInput(
                f"{what} must be ISO dates (YYYY-MM-DD), got {item!r}", code="invalid_schedule"
            ) from None
    return out


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule (the State Council's annual notice on public holidays).

    ``holidays``: days off, including weekdays moved off by 调休 (weekend dates may be
    listed too; they change nothing). ``workdays``: make-up working days (调休), normally
    Saturdays or Sundays (a weekday listed here is simply a working day).
    Every date belongs to ``year`` and none is in both sets.
    """

    year: int
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not 1 <= self.year <= 9998:
            raise InvalidInput(f"invalid schedule year {self.year!r}", code="invalid_schedule")
        # Accept any iterable of dates; store frozensets.
        try:
            holidays = frozenset(self.holidays)
            workdays = frozenset(self.workdays)
        except TypeError:
            raise InvalidInput("holidays and workdays must be collections of dates", code="invalid_schedule") from None
        for d in holidays:
            _check_date(d, self.year, "holiday")
        for d in workdays:
            _check_date(d, self.year, "make-up workday")
        both = holidays & workdays
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise InvalidInput(
                f"dates both holiday and make-up workday in {self.year}: {listed}",
                code="invalid_schedule",
                year=self.year,
            )
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)

    def as_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.workdays)],
        }

    @classmethod
    def from_dict(cls, raw: object) -> YearSchedule:
        if not isinstance(raw, Mapping):
            raise InvalidInput(
                'a schedule is {"year": 2027, "holidays": ["2027-01-01", ...], "workdays": [...]}',
                code="invalid_schedule",
            )
        return cls(
            raw.get("year"),  # type: ignore[arg-type]
            frozenset(_parse_iso_dates(raw.get("holidays", []), "holidays")),
            frozenset(_parse_iso_dates(raw.get("workdays", []), "workdays")),
        )


def _fmt_time(t: time) -> str:
    return t.isoformat(timespec="minutes" if t.second == 0 and t.microsecond == 0 else "auto")


def _parse_time(raw: object) -> time:
    if not isinstance(raw, str):
        raise InvalidInput(f"office hours are HH:MM strings, got {raw!r}", code="invalid_office_hours")
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"office hours are HH:MM strings, got {raw!r}", code="invalid_office_hours") from None


@dataclass(frozen=True)
class Session:
    """One office session of a day (e.g. the morning 09:00-12:00), local wall-clock times."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for t in (self.start, self.end):
            if not isinstance(t, time) or t.tzinfo is not None:
                raise InvalidInput(
                    f"session times must be naive local times, got {t!r}", code="invalid_office_hours"
                )
        if not self.start < self.end:
            raise InvalidInput(
                f"session must start before it ends: {_fmt_time(self.start)}-{_fmt_time(self.end)}",
                code="invalid_office_hours",
            )

    def as_list(self) -> list[str]:
        return [_fmt_time(self.start), _fmt_time(self.end)]


DEFAULT_WINTER_SESSIONS = (Session(time(9, 0), time(12, 0)), Session(time(13, 0), time(17, 0)))
DEFAULT_SUMMER_SESSIONS = (Session(time(9, 0), time(12, 0)), Session(time(13, 30), time(17, 30)))


def _check_sessions(sessions: object, what: str) -> tuple[Session, ...]:
    try:
        out = tuple(sessions)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInput(f"{what} sessions must be a sequence of sessions", code="invalid_office_hours") from None
    if not out:
        raise InvalidInput(f"{what} needs at least one session", code="invalid_office_hours")
    for s in out:
        if not isinstance(s, Session):
            raise InvalidInput(f"{what} sessions must be Session values, got {s!r}", code="invalid_office_hours")
    for prev, nxt in zip(out, out[1:]):
        if not prev.end <= nxt.start:
            raise InvalidInput(
                f"{what} sessions must be in order and not overlap: "
                f"{_fmt_time(prev.start)}-{_fmt_time(prev.end)} then {_fmt_time(nxt.start)}-{_fmt_time(nxt.end)}",
                code="invalid_office_hours",
            )
    return out


def _check_month_day(value: object, what: str) -> tuple[int, int]:
    try:
        month, day = value  # type: ignore[misc]
        date(2000, month, day)  # a leap year: 29 Feb is allowed
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be (month, day), got {value!r}", code="invalid_office_hours") from None
    return (month, day)


@dataclass(frozen=True)
class OfficeHours:
    """A service center's office sessions: summer hours from 1 May to 30 Sep, winter otherwise.

    Default: winter 09:00-12:00 and 13:00-17:00, summer 09:00-12:00 and 13:30-17:30 (a longer
    lunch break in summer, as many Chinese centers keep). A center with the same hours all
    year passes the same sessions for both. ``summer_start`` and ``summer_end`` are
    inclusive (month, day) pairs.
    """

    winter: tuple[Session, ...] = DEFAULT_WINTER_SESSIONS
    summer: tuple[Session, ...] = DEFAULT_SUMMER_SESSIONS
    summer_start: tuple[int, int] = (5, 1)
    summer_end: tuple[int, int] = (9, 30)

    def __post_init__(self) -> None:
        object.__setattr__(self, "winter", _check_sessions(self.winter, "winter"))
        object.__setattr__(self, "summer", _check_sessions(self.summer, "summer"))
        object.__setattr__(self, "summer_start", _check_month_day(self.summer_start, "summer_start"))
        object.__setattr__(self, "summer_end", _check_month_day(self.summer_end, "summer_end"))

    def is_summer(self, d: date) -> bool:
        md = (d.month, d.day)
        if self.summer_start <= self.summer_end:
            return self.summer_start <= md <= self.summer_end
        return md >= self.summer_start or md <= self.summer_end  # a period across New Year

    def sessions_on(self, d: date) -> tuple[Session, ...]:
        """The sessions the office keeps on ``d`` if it is a working day (the calendar decides that)."""
        return self.summer if self.is_summer(d) else self.winter

    def as_dict(self) -> dict[str, Any]:
        return {
            "winter": [s.as_list() for s in self.winter],
            "summer": [s.as_list() for s in self.summer],
            "summer_start": "%02d-%02d" % self.summer_start,
            "summer_end": "%02d-%02d" % self.summer_end,
        }

    @classmethod
    def from_dict(cls, raw: object) -> OfficeHours:
        if not isinstance(raw, Mapping):
            raise InvalidInput(
                'office hours are {"winter": [["09:00", "12:00"], ...], "summer": [...], '
                '"summer_start": "05-01", "summer_end": "09-30"}',
                code="invalid_office_hours",
            )

        def sessions(key: str) -> tuple[Session, ...]:
            items = raw.get(key)
            if not isinstance(items, (list, tuple)):
                raise InvalidInput(f"{key} must be a list of [start, end] pairs", code="invalid_office_hours")
            out = []
            for pair in items:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise InvalidInput(f"{key} sessions are [start, end] pairs, got {pair!r}", code="invalid_office_hours")
                out.append(Session(_parse_time(pair[0]), _parse_time(pair[1])))
            return tuple(out)

        def month_day(key: str, default: str) -> tuple[int, int]:
            text = raw.get(key, default)
            try:
                m, d = str(text).split("-")
                return (int(m), int(d))
            except ValueError:
                raise InvalidInput(f"{key} must be MM-DD, got {text!r}", code="invalid_office_hours") from None

        return cls(
            winter=sessions("winter"),
            summer=sessions("summer"),
            summer_start=month_day("summer_start", "05-01"),
            summer_end=month_day("summer_end", "09-30"),
        )


DEFAULT_OFFICE_HOURS = OfficeHours()


def _as_amount(amount: object, unit: Unit) -> Fraction:
    if isinstance(amount, bool) or not isinstance(amount, (int, Fraction, Decimal)):
        raise InvalidInput(
            f"an amount of time must be an int, Fraction or Decimal, got {amount!r}", code="invalid_amount"
        )
    value = Fraction(amount)
    if value < 0:
        raise InvalidInput(f"an amount of time cannot be negative: {amount}", code="invalid_amount")
    if unit is not Unit.WORKING_HOURS and value.denominator != 1:
        raise InvalidInput(f"{unit.value} must be a whole number, got {amount}", code="invalid_amount")
    return value


class WorkingCalendar:
    """Working days, office hours and time limits for a set of published year schedules.

    Immutable: ``with_schedule`` returns a new calendar. Per year it keeps the sorted
    ordinals of the working days, so the n-th working day after a date is found by
    bisection, not by walking the days.
    """

    def __init__(
        self,
        schedules: Mapping[int, YearSchedule],
        office_hours: OfficeHours = DEFAULT_OFFICE_HOURS,
        tz: tzinfo = CHINA_TZ,
        provisional: bool = False,
    ) -> None:
        if not isinstance(office_hours, OfficeHours):
            raise InvalidInput("office_hours must be an OfficeHours", code="invalid_office_hours")
        if not isinstance(tz, tzinfo):
            raise InvalidInput("tz must be a tzinfo", code="invalid_timezone")
        checked: dict[int, YearSchedule] = {}
        for year, schedule in schedules.items():
            if not isinstance(schedule, YearSchedule) or schedule.year != year:
                raise InvalidInput(
                    f"schedule for {year} must be a YearSchedule of that year", code="invalid_schedule"
                )
            checked[year] = schedule
        self._schedules = checked
        self._office_hours = office_hours
        self._tz = tz
        self._provisional = bool(provisional)
        self._working: dict[int, tuple[int, ...]] = {}
        self._memo: dict[Any, Any] = {}

    # -- the calendar itself ---------------------------------------------------------

    @property
    def years(self) -> tuple[int, ...]:
        """The years with a schedule, ascending."""
        return tuple(sorted(self._schedules))

    @property
    def memo(self) -> dict[Any, Any]:
        """Results of pure functions of this calendar, by their arguments: it never changes, so
        an answer worked out once holds. A replay asks the same questions of it again and again
        (cases due at the same day's end, say); whoever stores here keys by its own name first."""
        if len(self._memo) > _MEMO_SIZE:
            self._memo.clear()
        return self._memo

    @property
    def office_hours(self) -> OfficeHours:
        return self._office_hours

    @property
    def tz(self) -> tzinfo:
        return self._tz

    @property
    def is_provisional(self) -> bool:
        """Whether unpublished years are assumed (weekdays, no holidays) instead of refused."""
        return self._provisional

    def provisional(self) -> WorkingCalendar:
        """The same calendar, assuming Monday-Friday working days in unpublished years."""
        if self._provisional:
            return self
        new = WorkingCalendar(self._schedules, self._office_hours, self._tz, provisional=True)
        new._working = dict(self._working)
        return new

    def unpublished_years(self, first: date, last: date) -> tuple[int, ...]:
        """The years from ``first`` to ``last`` (dates or instants, local) with no schedule."""
        lo = self._local(first, "first").date() if isinstance(first, datetime) else first
        hi = self._local(last, "last").date() if isinstance(last, datetime) else last
        if hi < lo:
            lo, hi = hi, lo
        return tuple(y for y in range(lo.year, hi.year + 1) if y not in self._schedules)

    def schedule(self, year: int) -> YearSchedule:
        """The published schedule of ``year`` (never an assumed one)."""
        try:
            return self._schedules[year]
        except KeyError:
            raise self._unknown(year) from None

    def _effective(self, year: int) -> YearSchedule:
        found = self._schedules.get(year)
        if found is not None:
            return found
        if self._provisional and 1 <= year <= 9998:
            return YearSchedule(year)  # assumed: Monday to Friday, no holidays
        raise self._unknown(year)

    def with_schedule(self, schedule: YearSchedule) -> WorkingCalendar:
        """A new calendar where ``schedule`` replaces (or adds) its year."""
        if not isinstance(schedule, YearSchedule):
            raise InvalidInput("with_schedule needs a YearSchedule", code="invalid_schedule")
        schedules = dict(self._schedules)
        schedules[schedule.year] = schedule
        new = WorkingCalendar(schedules, self._office_hours, self._tz, provisional=self._provisional)
        new._working = {y: w for y, w in self._working.items() if y != schedule.year and y in self._schedules}
        return new

    def __repr__(self) -> str:
        ys = self.years
        span = f"{ys[0]}..{ys[-1]}" if ys else "none"
        mode = " provisional" if self._provisional else ""
        return f"<WorkingCalendar years={span} ({len(ys)}) tz={self._tz}{mode}>"

    def _unknown(self, year: int) -> CalendarUnknown:
        return CalendarUnknown(
            f"no working calendar for {year}: publish the {year} schedule "
            f"(the State Council's notice on {year} public holidays) and resend",
            year=year,
        )

    def _working_ordinals(self, year: int) -> tuple[int, ...]:
        cached = self._working.get(year)
        if cached is not None:
            return cached
        schedule = self._effective(year)
        holidays = {d.toordinal() for d in schedule.holidays}
        workdays = {d.toordinal() for d in schedule.workdays}
        first = date(year, 1, 1).toordinal()
        last = date(year, 12, 31).toordinal()
        # date.fromordinal(1) is a Monday, so (ordinal - 1) % 7 is the weekday (Monday = 0).
        days = tuple(
            o
            for o in range(first, last + 1)
            if o in workdays or ((o - 1) % 7 < 5 and o not in holidays)
        )
        self._working[year] = days
        return days

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            raise InvalidInput("is_working_day takes a date, not a datetime", code="invalid_date")
        schedule = self._effective(d.year)
        if d in schedule.workdays:
            return True
        return d.weekday() < 5 and d not in schedule.holidays

    def working_days_after(self, d: date, n: int) -> date:
        """The n-th working day strictly after ``d`` (n >= 1); ``d`` itself for n = 0."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidInput(f"a number of working days must be a non-negative int, got {n!r}", code="invalid_amount")
        if n == 0:
            return d
        year = d.year
        days = self._working_ordinals(year)
        i = bisect_right(days, d.toordinal())
        remaining = n
        while True:
            available = len(days) - i
            if remaining <= available:
                return date.fromordinal(days[i + remaining - 1])
            remaining -= available
            year += 1
            days = self._working_ordinals(year)
            i = 0

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.working_days_after(d, 1)

    def working_days_between(self, first: date, last: date) -> Iterator[date]:
        """The working days w with ``first <= w <= last``, in order."""
        if last < first:
            return
        lo_o, hi_o = first.toordinal(), last.toordinal()
        for year in range(first.year, last.year + 1):
            days = self._working_ordinals(year)
            lo = bisect_left(days, lo_o) if year == first.year else 0
            hi = bisect_right(days, hi_o) if year == last.year else len(days)
            for o in days[lo:hi]:
                yield date.fromordinal(o)

    def count_working_days(self, after: date, through: date) -> int:
        """The number of working days w with ``after < w <= through`` (0 if through <= after)."""
        if through <= after:
            return 0
        first = after + _ONE_DAY
        count = 0
        for year in range(first.year, through.year + 1):
            days = self._working_ordinals(year)
            lo = bisect_left(days, first.toordinal()) if year == first.year else 0
            hi = bisect_right(days, through.toordinal()) if year == through.year else len(days)
            count += hi - lo
        return count

    # -- deadlines -------------------------------------------------------------------

    def _local(self, instant: datetime, what: str = "start") -> datetime:
        if not isinstance(instant, datetime):
            raise InvalidInput(f"{what} must be a datetime, got {instant!r}", code="invalid_datetime")
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise InvalidInput(
                f"{what} {instant.isoformat()} has no time zone: send an offset, e.g. +08:00",
                code="naive_datetime",
            )
        return instant.astimezone(self._tz)

    def _end_of(self, d: date) -> datetime:
        """The exclusive end of local day ``d``: local midnight starting the next day."""
        return datetime.combine(d + _ONE_DAY, time(0), tzinfo=self._tz)

    def _intervals(self, d: date) -> list[tuple[datetime, datetime]]:
        """Office time of local day ``d`` as tz-aware intervals (empty on a day off)."""
        if not self.is_working_day(d):
            return []
        return [
            (datetime.combine(d, s.start, tzinfo=self._tz), datetime.combine(d, s.end, tzinfo=self._tz))
            for s in self._office_hours.sessions_on(d)
        ]

    def deadline(self, start: datetime, limit: Limit) -> datetime:
        """The instant ``limit`` ends for a case accepted at ``start`` (see module rules)."""
        if not isinstance(limit, Limit):
            raise InvalidInput("deadline needs a Limit", code="invalid_limit")
        return self.deadline_for(start, limit.value, limit.unit)

    def deadline_for(self, start: datetime, amount: int | Fraction | Decimal, unit: Unit) -> datetime:
        """Like ``deadline`` for an amount that may include suspended time and extensions.

        Working hours may be fractional; day amounts must be whole. The result is tz-aware,
        in the calendar's zone; a day-based deadline is the exclusive end of its last day.
        """
        local = self._local(start)
        if not isinstance(unit, Unit):
            raise InvalidInput(f"unknown unit {unit!r}", code="invalid_limit")
        value = _as_amount(amount, unit)
        if unit is Unit.WORKING_DAYS:
            return self._end_of(self.working_days_after(local.date(), int(value)))
        if unit is Unit.CALENDAR_DAYS:
            if value == 0:
                return self._end_of(local.date())
            last = local.date() + timedelta(days=int(value))
            if not self.is_working_day(last):
                last = self.next_working_day(last)
            return self._end_of(last)
        return self._working_hours_end(local, value)

    instant_after = deadline_for

    def _working_hours_end(self, local: datetime, hours: Fraction) -> datetime:
        if hours == 0:
            return local
        remaining = hours * 3600 * 1_000_000  # microseconds, exact
        d = local.date()
        cursor = local
        if not self.is_working_day(d):
            d = self.next_working_day(d)
            cursor = datetime.combine(d, time(0), tzinfo=self._tz)
        while True:
            for s_start, s_end in self._intervals(d):
                if cursor >= s_end:
                    continue
                begin = max(cursor, s_start)
                available = (s_end - begin) // _MICRO
                if remaining <= available:
                    return begin + timedelta(microseconds=math.ceil(remaining))
                remaining -= available
            d = self.next_working_day(d)
            cursor = datetime.combine(d, time(0), tzinfo=self._tz)

    # -- elapsed time ----------------------------------------------------------------

    def elapsed(self, a: datetime, b: datetime, unit: Unit) -> int | Fraction:
        """Time from ``a`` to ``b`` in ``unit`` (0 if b <= a).

        WORKING_DAYS: working days w with local date of a < w <= local date of b.
        CALENDAR_DAYS: local calendar days from a's date to b's date.
        WORKING_HOURS: office time between a and b, in hours (an exact Fraction).
        This is what a suspension (特别程序) adds to a case's budget, and how much of a
        limit has been used.
        """
        if not (isinstance(unit, Unit) and isinstance(a, datetime) and isinstance(b, datetime)):
            return self._elapsed(a, b, unit)  # which says what is wrong
        key = ("elapsed", a, b, unit)
        found = self._memo.get(key)  # datetimes equal as instants: the answer depends on no more
        if found is None:
            found = self.memo[key] = self._elapsed(a, b, unit)
        return found

    def _elapsed(self, a: datetime, b: datetime, unit: Unit) -> int | Fraction:
        la = self._local(a, "a")
        lb = self._local(b, "b")
        if not isinstance(unit, Unit):
            raise InvalidInput(f"unknown unit {unit!r}", code="invalid_limit")
        if lb <= la:
            return 0 if unit is not Unit.WORKING_HOURS else Fraction(0)
        if unit is Unit.WORKING_DAYS:
            return self.count_working_days(la.date(), lb.date())
        if unit is Unit.CALENDAR_DAYS:
            return max(0, (lb.date() - la.date()).days)
        micro = 0
        for d in self.working_days_between(la.date(), lb.date()):
            for s_start, s_end in self._intervals(d):
                lo = max(s_start, la)
                hi = min(s_end, lb)
                if hi > lo:
                    micro += (hi - lo) // _MICRO
        return Fraction(micro, 3600 * 1_000_000)

    def office_seconds(self, d: date) -> int:
        """Seconds of office time on local day ``d`` (0 on a day off)."""
        return sum(int((e - s).total_seconds()) for s, e in self._intervals(d))


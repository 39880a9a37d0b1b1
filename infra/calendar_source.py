"""Where the working calendar's year schedules come from.

The base is the ``chinesecalendar`` package (the State Council's annual notices on public
holidays, 2004 onwards; the installed 1.11.0 carries up to 2026). A year published at run
time (each winter the next year's notice appears) overrides the package's year, or adds a
year the package does not have, without a release.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, tzinfo
from functools import lru_cache

from domain.calendar import CHINA_TZ, DEFAULT_OFFICE_HOURS, OfficeHours, WorkingCalendar, YearSchedule


@lru_cache(maxsize=1)
def _package_schedules() -> tuple[YearSchedule, ...]:
    from chinese_calendar import constants  # the only place the package is imported

    holidays: dict[int, set[date]] = {}
    workdays: dict[int, set[date]] = {}
    for d in constants.holidays:
        holidays.setdefault(d.year, set()).add(d)
    for d in constants.workdays:
        workdays.setdefault(d.year, set()).add(d)
    years = sorted(set(holidays) | set(workdays))
    # Holidays falling on a weekend are kept as the package lists them: they change nothing,
    # a day is worked iff it is a make-up day or a weekday that is not a holiday.
    return tuple(
        YearSchedule(year, frozenset(holidays.get(year, ())), frozenset(workdays.get(year, ())))
        for year in years
    )


def schedules_from_chinesecalendar() -> dict[int, YearSchedule]:
    """One schedule per year the installed ``chinesecalendar`` covers."""
    return {s.year: s for s in _package_schedules()}


def default_calendar(
    published: Iterable[YearSchedule] = (),
    office_hours: OfficeHours = DEFAULT_OFFICE_HOURS,
    tz: tzinfo = CHINA_TZ,
) -> WorkingCalendar:
    """The package's years, overridden by ``published`` ones (in order: a later one wins)."""
    schedules = schedules_from_chinesecalendar()
    for schedule in published:
        if not isinstance(schedule, YearSchedule):
            raise TypeError(f"published schedules must be YearSchedule values, got {schedule!r}")
        schedules[schedule.year] = schedule
    return WorkingCalendar(schedules, office_hours, tz)

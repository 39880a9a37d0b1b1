"""Which working calendar a view uses for a case.

Views that count working days or hours (the anomaly view's "accepted within 5 working days",
the performance view's time actually used) ask this for the calendar of a case. Bound to the
reference service (``bind``), it answers what ingest uses: the published year schedules over
the packaged ones, and the office hours of the center of the case's window (else department).
Unbound (a view built before anything bound it, e.g. by ``esup rebuild``), it answers the
packaged ``chinesecalendar`` schedules with the default office hours: the same for any
2004-2026 working-day figure, different only for years published at run time and for centers
with their own office hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.errors import CalendarUnknown
from domain.limits import Unit


class Calendars:
    def __init__(self, reference: Any = None) -> None:
        self.reference = reference
        self._packaged: WorkingCalendar | None = None

    def bind(self, reference: Any) -> None:
        self.reference = reference

    def for_case(self, department: str | None, window: str | None) -> WorkingCalendar:
        if self.reference is not None:
            return self.reference.calendar(self.reference.center_of(department or "", window))
        if self._packaged is None:
            from infra.calendar_source import default_calendar

            self._packaged = default_calendar()
        return self._packaged

    def working_days_deadline(self, cal: WorkingCalendar, start: datetime, days: int) -> tuple[datetime, str | None]:
        """End of the ``days``-th working day after ``start``'s date, and a note if it had to be
        estimated (a year with no published schedule: weekdays only, never refused here since
        the step itself was already stored)."""
        try:
            return cal.deadline_for(start, days, Unit.WORKING_DAYS), None
        except CalendarUnknown:
            d = start.astimezone(cal.tz).date()
            left = days
            while left:
                d += timedelta(days=1)
                if d.weekday() < 5:
                    left -= 1
            end = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=cal.tz)
            return end, f"estimated on weekdays: no working calendar for {d.year}"


def local_day(instant: datetime | None) -> str | None:
    """The instant's date in China (the service centers' zone), ISO."""
    return instant.astimezone(CHINA_TZ).date().isoformat() if instant is not None else None

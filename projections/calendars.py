"""Which working calendar a view uses for a case.

Views that count working days or hours (the anomaly view's "accepted within 5 working days",
the performance view's time actually used) ask this for the calendar of a case: what ingest
uses, i.e. the published year schedules over the packaged ones, with the office hours of the
center of the case's window (else department). ``sync`` brings the reference data up to date
once per batch; within the batch the answers are cached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.calendar import CHINA_TZ, WorkingCalendar


class Calendars:
    def __init__(self, reference: Any) -> None:
        self.reference = reference
        self._cache: dict[tuple[str | None, str | None], WorkingCalendar] = {}

    def sync(self) -> None:
        """Once per batch: the reference log may have moved (a year published, hours changed)."""
        self.reference.refresh()
        self._cache = {}

    def for_case(self, department: str | None, window: str | None) -> WorkingCalendar:
        key = (department, window)
        cal = self._cache.get(key)
        if cal is None:
            ref = self.reference
            cal = ref.calendar(ref.center_of(department or "", window, refresh=False), refresh=False)
            self._cache[key] = cal
        return cal


def local_day(instant: datetime | None) -> str | None:
    """The instant's date in China (the service centers' zone), ISO."""
    return instant.astimezone(CHINA_TZ).date().isoformat() if instant is not None else None

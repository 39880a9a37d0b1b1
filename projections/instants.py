"""The one way views hold an instant: exact integer microseconds since the Unix epoch (UTC).

Integers sort and compare the same on SQLite and PostgreSQL, index well and lose nothing (a
float of seconds rounds microseconds away after 2^53); ``from_us`` gives the instant back in
China time, the zone officers read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from domain.calendar import CHINA_TZ

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def us(value: datetime | None) -> int | None:
    """Exact microseconds since the epoch."""
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int | None, tz: Any = CHINA_TZ) -> datetime | None:
    if value is None:
        return None
    return (_EPOCH + timedelta(microseconds=int(value))).astimezone(tz)

"""The one way views hold an instant: exact integer microseconds since the Unix epoch (UTC);
and an amount of time: the text of an exact fraction.

Integers sort and compare the same on SQLite and PostgreSQL, index well and lose nothing (a
float of seconds rounds microseconds away after 2^53); ``from_us`` gives the instant back in
China time, the zone officers read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from domain.calendar import CHINA_TZ

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)  # built once: a fresh timedelta per call was two thirds of the cost


def us(value: datetime | None) -> int | None:
    """Exact microseconds since the epoch."""
    if value is None:
        return None
    return (value - _EPOCH) // _US


def from_us(value: int | None, tz: Any = CHINA_TZ) -> datetime | None:
    if value is None:
        return None
    # The same instant as (epoch + value µs).astimezone(tz), a third of the time: whole seconds
    # are exact in fromtimestamp, and the microseconds are put back as they were.
    seconds, micro = divmod(int(value), 1_000_000)
    return datetime.fromtimestamp(seconds, tz).replace(microsecond=micro)


_FRACTIONS: dict[str, Fraction] = {}


def fraction(text: str) -> Fraction:
    """An amount of time a view keeps as the text of an exact fraction (``"0"``, ``"3/2"``):
    parsed once per distinct text (a batch repeats a few, ``"0"`` most), Fractions being
    immutable."""
    found = _FRACTIONS.get(text)
    if found is None:
        if len(_FRACTIONS) > 4096:
            _FRACTIONS.clear()
        found = _FRACTIONS[text] = Fraction(text)
    return found

"""The clock is injected: the domain never reads the wall clock itself."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, tz-aware (UTC)."""


class ManualClock:
    """A clock for tests and replays: it moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a tz-aware instant")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

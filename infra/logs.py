"""Reading a notification log page by page: the one loop every full read uses."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from eventsourcing.persistence import Notification


def notifications_after(recorder: Any, start: int = 0, topics: Sequence[str] = (), page: int = 1000) -> Iterator[Notification]:
    """Every notification after ``start`` (ids may have gaps: always "greater than"), in order."""
    while True:
        batch = recorder.select_notifications(start=start, limit=page, topics=list(topics), inclusive_of_start=False)
        if not batch:
            return
        yield from batch
        start = batch[-1].id

"""Run-time publication of a year's working schedule (节假日安排), as an event.

The State Council publishes each winter; a published year overrides the packaged data, and a
new year becomes usable without a release.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE


def schedule_id(year: int) -> UUID:
    return uuid5(NAMESPACE, f"calendar:{year}")


class PublishedYear(Aggregate):
    TOPIC = "esup.calendar:PublishedYear"

    class Event(Aggregate.Event):
        pass

    class Published(Aggregate.Created, Event):
        TOPIC = "esup.calendar:PublishedYear.Published"
        year: int
        schedule: dict[str, Any]

    class Republished(Event):
        TOPIC = "esup.calendar:PublishedYear.Republished"
        schedule: dict[str, Any]

        def apply(self, agg: PublishedYear) -> None:
            agg.schedule = dict(self.schedule)

    Created = Published

    def __init__(self, year: int, schedule: dict[str, Any]) -> None:
        self.year = year
        self.schedule = dict(schedule)

    @staticmethod
    def create_id(year: int) -> UUID:
        return schedule_id(year)

    @classmethod
    def publish(cls, year: int, schedule: dict[str, Any], at: datetime) -> PublishedYear:
        return cls._create(cls.Published, year=year, schedule=schedule, timestamp=at)

    def republish(self, schedule: dict[str, Any], at: datetime) -> bool:
        if schedule == self.schedule:
            return False
        self.trigger_event(self.Republished, schedule=schedule, timestamp=at)
        return True

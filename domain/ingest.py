"""Bookkeeping of what sources reported: idempotency keys and refusals.

``SourceEvent`` is a tiny aggregate per (department, source event id), saved in the same
transaction as the step it admitted: a second copy of the step finds it and gets the original
outcome back, and two racing copies cannot both be stored (the store's uniqueness decides).
``Refusal`` records every step we refused, so refusals can be counted per source.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.catalogue import esup_id


def source_event_id(department: str, event_id: str) -> UUID:
    return esup_id(f"source-event:{department}\x1f{event_id}")


class SourceEvent(Aggregate):
    TOPIC = "esup.ingest:SourceEvent"

    class Event(Aggregate.Event):
        pass

    class Admitted(Aggregate.Created, Event):
        TOPIC = "esup.ingest:SourceEvent.Admitted"
        department: str
        event_id: str
        case_no: str
        case_version: int

    Created = Admitted

    def __init__(self, department: str, event_id: str, case_no: str, case_version: int) -> None:
        self.department = department
        self.event_id = event_id
        self.case_no = case_no
        self.case_version = case_version

    @staticmethod
    def create_id(department: str, event_id: str) -> UUID:
        return source_event_id(department, event_id)

    @classmethod
    def admit(cls, department: str, event_id: str, case_no: str, case_version: int, at: datetime) -> SourceEvent:
        return cls._create(
            cls.Admitted, department=department, event_id=event_id, case_no=case_no, case_version=case_version, timestamp=at
        )

    @classmethod
    def admission(cls, department: str, event_id: str, case_no: str, case_version: int, at: datetime) -> SourceEvent.Admitted:
        """The one event ``admit`` makes, without making the aggregate (ingest stores one per step
        and never reads it back in that request): the same fields, the same stored state."""
        # Filled as the dataclass's __init__ would fill it (same fields, same order), without its
        # frozen-field setters (a third of this record's cost); tests/unit/test_case.py compares.
        event = object.__new__(cls.Admitted)
        event.__dict__.update(
            originator_id=source_event_id(department, event_id), originator_version=1, timestamp=at,
            originator_topic=cls.TOPIC, department=department, event_id=event_id, case_no=case_no,
            case_version=case_version,
        )
        return event


class Refusal(Aggregate):
    TOPIC = "esup.ingest:Refusal"

    class Event(Aggregate.Event):
        pass

    class Recorded(Aggregate.Created, Event):
        TOPIC = "esup.ingest:Refusal.Recorded"
        source: str
        event_id: str | None
        case_no: str | None
        step: str | None
        code: str
        detail: str

    Created = Recorded

    def __init__(self, source: str, event_id: str | None, case_no: str | None, step: str | None, code: str, detail: str) -> None:
        self.source = source
        self.code = code

    @staticmethod
    def create_id() -> UUID:
        return uuid4()

    @classmethod
    def record(cls, source: str, event_id: str | None, case_no: str | None, step: str | None, code: str, detail: str, at: datetime) -> Refusal:
        return cls._create(
            cls.Recorded, source=source, event_id=event_id, case_no=case_no, step=step, code=code,
            detail=detail[:500], timestamp=at,
        )


def provisional_mark_id(case_no: str, year: int) -> UUID:
    return esup_id(f"provisional:{case_no}\x1f{year}")


class ProvisionalMark(Aggregate):
    """A case whose deadlines were computed on assumed weekdays because ``year`` had no
    published schedule. Saved with the step that made them provisional (once per case and
    year), so publishing the year finds the cases to settle without reading every case."""

    TOPIC = "esup.ingest:ProvisionalMark"

    class Event(Aggregate.Event):
        pass

    class Marked(Aggregate.Created, Event):
        TOPIC = "esup.ingest:ProvisionalMark.Marked"
        case_no: str
        year: int

    Created = Marked

    def __init__(self, case_no: str, year: int) -> None:
        self.case_no = case_no
        self.year = year

    @staticmethod
    def create_id(case_no: str, year: int) -> UUID:
        return provisional_mark_id(case_no, year)

    @classmethod
    def mark(cls, case_no: str, year: int, at: datetime) -> ProvisionalMark:
        return cls._create(cls.Marked, case_no=case_no, year=year, timestamp=at)

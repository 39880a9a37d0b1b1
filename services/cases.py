"""Reading cases: current state, state as of any instant, full history, chain verification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.case import Case, case_id, replay, verify_chain
from domain.errors import InvalidInput, NotFound
from services.apps import Ledger


class CaseQueries:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def events(self, case_no: str) -> list[Case.Event]:
        events = list(self.ledger.events.get(case_id(case_no)))
        if not events:
            raise NotFound(f"no case {case_no}", code="unknown_case")
        return events  # type: ignore[return-value]

    def current(self, case_no: str) -> Case:
        try:
            return self.ledger.repository.get(case_id(case_no))
        except AggregateNotFoundError:
            raise NotFound(f"no case {case_no}", code="unknown_case") from None

    def as_of(self, case_no: str, instant: datetime, by: str = "recorded") -> Case:
        """The case as the system knew it at ``instant`` (``recorded``), or as things had
        happened by then according to the sources (``occurred``, business time)."""
        case = replay(self.events_as_of(case_no, instant, by))
        if case is None:
            raise NotFound(f"case {case_no} did not exist yet at {instant.isoformat()}", code="not_yet")
        return case

    def events_as_of(self, case_no: str, instant: datetime, by: str = "recorded") -> list[Case.Event]:
        """The case's events recorded (``recorded``) or happened (``occurred``) by ``instant``."""
        if by not in ("recorded", "occurred"):
            raise InvalidInput("by must be recorded or occurred", code="invalid_query")
        if by == "recorded":
            return [e for e in self.events(case_no) if e.timestamp <= instant]
        return [e for e in self.events(case_no) if e.occurred_at <= instant]

    def verify(self, case_no: str) -> dict[str, Any]:
        events = self.events(case_no)
        bad = verify_chain(case_no, events)
        return {"case_no": case_no, "events": len(events), "verified": bad is None, "first_bad_version": bad,
                "head": events[-1].hash}

"""Reading cases: current state, state as of any instant, full history, chain verification.

A damaged store (a row changed or deleted behind the ledger's back) is answered, never
crashed on: the state of such a case is refused with ``integrity_violation`` (naming the case
and the version), while its history shows every row that can still be read, marks the rest,
and ``verify`` reports where the chain breaks. Other cases are not affected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.case import Case, case_id, replay, verify_chain
from domain.errors import DomainError, InvalidInput, NotFound
from services.apps import Ledger

log = logging.getLogger("esup.integrity")


class IntegrityViolation(DomainError):
    """The store holds something the ledger did not write (a changed or missing row).

    500: the server cannot answer this correctly and a retry will not help; the operator must
    restore the case's rows from a backup or the province's copy (see README)."""

    code = "integrity_violation"
    status = 500


@dataclass
class Row:
    """One stored version of a case: its event, or why it cannot be read."""

    version: int
    event: Case.Event | None = None
    problem: str | None = None  # "missing" (a gap in the versions) or "unreadable: ..."


@dataclass
class Owner:
    case_no: str
    department: str | None  # None when the case's first row cannot be read


class CaseQueries:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # -- tolerant reading ------------------------------------------------------------------

    def rows(self, case_no: str) -> list[Row]:
        """Every version from 1 to the last stored, each decoded on its own: a damaged row
        is marked, a missing version is marked, the rest are there."""
        stored = self.ledger.recorder.select_events(case_id(case_no))
        if not stored:
            raise NotFound(f"no case {case_no}", code="unknown_case")
        out: list[Row] = []
        expected = 1
        for s in stored:
            while expected < s.originator_version:
                out.append(Row(expected, problem="missing"))
                expected += 1
            try:
                out.append(Row(s.originator_version, self.ledger.mapper.to_domain_event(s)))  # type: ignore[arg-type]
            except Exception as exc:  # any decoding failure is damage, reported per row
                out.append(Row(s.originator_version, problem=f"unreadable: {type(exc).__name__}"))
            expected = s.originator_version + 1
        return out

    def owner(self, case_no: str) -> Owner:
        """The case's department, from its first row (for access checks on a damaged case)."""
        stored = self.ledger.recorder.select_events(case_id(case_no), limit=1)
        if not stored:
            raise NotFound(f"no case {case_no}", code="unknown_case")
        try:
            first = self.ledger.mapper.to_domain_event(stored[0])
        except Exception:  # unreadable: nobody can be shown to own it
            return Owner(case_no, None)
        return Owner(case_no, first.actor.get("department") if first.originator_version == 1 else None)

    def _violation(self, case_no: str, rows: list[Row] | None = None) -> IntegrityViolation:
        rows = rows if rows is not None else self.rows(case_no)
        bad = next((r for r in rows if r.problem), None)
        version = bad.version if bad else None
        problem = bad.problem if bad else "does not replay"
        log.error("integrity violation: case %s version %s: %s", case_no, version, problem)
        return IntegrityViolation(
            f"case {case_no} is damaged in the store at version {version} ({problem}); its history and "
            f"/verify show what is left. Restore its rows from a backup",
            case_no=case_no, version=version if version is not None else 0, problem=problem,
        )

    # -- strict reading ------------------------------------------------------------------------

    def events(self, case_no: str) -> list[Case.Event]:
        rows = self.rows(case_no)
        if any(r.problem for r in rows):
            raise self._violation(case_no, rows)
        return [r.event for r in rows]  # type: ignore[misc]

    def current(self, case_no: str) -> Case:
        try:
            return self.ledger.repository.get(case_id(case_no))
        except AggregateNotFoundError:
            raise NotFound(f"no case {case_no}", code="unknown_case") from None
        except Exception:  # a gap (OriginatorVersionError) or an undecodable row
            raise self._violation(case_no) from None

    def find(self, case_no: str) -> Case | None:
        """The case, or None when there is none (or it cannot be read: ``current`` says why)."""
        try:
            return self.current(case_no)
        except DomainError:
            return None

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
        """Recompute the chain over what is stored; a missing or unreadable row breaks it there."""
        rows = self.rows(case_no)
        events = [r.event for r in rows if r.event is not None]
        damaged = [{"version": r.version, "problem": r.problem} for r in rows if r.problem]
        bad = verify_chain(case_no, events)  # type: ignore[arg-type]
        if damaged and (bad is None or damaged[0]["version"] < bad):
            bad = damaged[0]["version"]
        out = {"case_no": case_no, "events": len(events), "verified": bad is None, "first_bad_version": bad,
               "head": events[-1].hash if events else None}
        if damaged:
            out["damaged"] = damaged
        if bad is not None:
            log.error("hash chain of case %s broken at version %s", case_no, bad)
        return out

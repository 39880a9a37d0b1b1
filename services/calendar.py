"""Publishing a year's working schedule, settling the deadlines that waited for it, and saying
in time when next year's schedule is still missing.

A step whose deadline falls in a year with no schedule is stored with a provisional deadline
(weekdays, no holidays; flagged ``calendar_provisional``) and a ``ProvisionalMark`` per
(case, year). Publishing the year reads those marks and records, on each case still
provisional, a ``DeadlinesSettled`` event with the deadlines the real calendar gives; the
warning thresholds replan from it like from any step that moves deadlines.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.calendar import CHINA_TZ, YearSchedule
from domain.case import Case, case_id
from domain.clock import Clock
from domain.ingest import ProvisionalMark
from services.apps import Ledger
from infra.logs import notifications_after
from services.reference import ReferenceService

# From this day of a year on, next year's schedule is expected (the State Council's notice
# usually appears in November or December).
WARN_FROM = (11, 1)


def schedule_outlook(known_years: list[int] | set[int], today: date) -> dict[str, Any]:
    """Whether the years that deadlines computed today may reach have a schedule: this year,
    and from 1 November next year too. ``missing_years`` empty means all is well."""
    needed = [today.year] + ([today.year + 1] if (today.month, today.day) >= WARN_FROM else [])
    known = set(known_years)
    missing = [y for y in needed if y not in known]
    out: dict[str, Any] = {
        "status": "missing" if missing else "ok",
        "today": today.isoformat(),
        "first_year": min(known) if known else None,
        "last_year": max(known) if known else None,
        "missing_years": missing,
    }
    if missing:
        listed = "、".join(str(y) for y in missing)
        out["message"] = (
            f"{listed}年节假日安排尚未发布：落在{listed}年的期限暂按周一至周五计算（calendar_provisional），"
            f"发布后自动重算。The {', '.join(map(str, missing))} working schedule is not published: deadlines "
            f"falling in it are provisional (weekdays) until PUT /api/v1/calendar/{missing[0]}."
        )
    return out


class CalendarService:
    def __init__(self, ledger: Ledger, reference: ReferenceService, clock: Clock) -> None:
        self.ledger = ledger
        self.reference = reference
        self.clock = clock

    def publish(self, year: int, body: Any) -> tuple[YearSchedule, bool, bool, int]:
        """Publish (or republish) ``year``, then settle the cases waiting for it. Settling runs
        on every PUT, changed or not, so a PUT repeated after a crash finishes the work."""
        schedule, created, changed = self.reference.publish_year(year, body)
        return schedule, created, changed, self.settle(year)

    def marks(self, year: int | None = None) -> list[tuple[str, int]]:
        """(case_no, year) of every provisional mark (of ``year``), in log order."""
        out = []
        for n in notifications_after(self.ledger.recorder, 0, [ProvisionalMark.Marked.TOPIC]):
            e = self.ledger.mapper.to_domain_event(n)
            if year is None or e.year == year:
                out.append((e.case_no, e.year))
        return out

    def settle(self, year: int | None = None) -> int:
        """Record ``DeadlinesSettled`` on every case provisional for ``year`` (every published
        year if None) whose deadlines the calendar can now decide; returns how many."""
        known = set(self.reference.known_years())
        settled = 0
        done: set[str] = set()
        for case_no, y in self.marks(year):
            if y not in known or case_no in done:
                continue
            done.add(case_no)
            settled += self._settle_case(case_no)
        return settled

    def _settle_case(self, case_no: str) -> int:
        for _ in range(5):
            try:
                case: Case = self.ledger.repository.get(case_id(case_no))
            except AggregateNotFoundError:
                return 0
            center = self.reference.center_of(case.department, case.window)
            marked = set(case.provisional_ever)
            now = self.clock.now()
            event = case.settle_deadlines(recorded_at=now, calendar=self.reference.calendar(center))
            if event is None:
                return 0
            # The real holidays may push a deadline into a year still unpublished: mark it too.
            marks = [ProvisionalMark.mark(case.case_no, y, now) for y in sorted(case.provisional_ever - marked)]
            try:
                self.ledger.save(case, *marks)
                return 1
            except IntegrityError:  # a step was stored meanwhile: decide again on the new state
                continue
        return 0  # pragma: no cover - contention; the next PUT settles it

    def status(self) -> dict[str, Any]:
        today = self.clock.now().astimezone(CHINA_TZ).date()
        return schedule_outlook(self.reference.known_years(), today)

    def pending(self) -> dict[int, int]:
        """Cases per unpublished year still waiting for it (from the marks)."""
        known = set(self.reference.known_years())
        out: dict[int, int] = {}
        for _, y in self.marks():
            if y not in known:
                out[y] = out.get(y, 0) + 1
        return out

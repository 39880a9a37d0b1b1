"""The staff assessment's facts (年终考核): one row per fact, each naming the event behind it.

The rules are in domain/assessment.py (``AssessmentFold``); this view keeps the fold's memory
(which staff member handled a case, a card's staff and year, a complaint's staff) and its facts
in its own tables. Only this module reads or writes them; others call ``figures`` (counts per
staff member for a year) and ``facts`` (the rows behind them).

The scores counted as satisfied come from the constructor (the assessment policy's
``satisfied_scores``, see infra/assessment_policy.py); after changing them, ``esup rebuild
assessment`` recounts.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from domain.assessment import FIGURES, AssessmentFold, Fact, case_step, counts
from domain.case import CASE_TOPICS
from domain.complaint import Complaint
from domain.warning import WARNING_TOPICS, CaseWarning
from projections.case_board import KEEP
from projections.runner import View
from projections.store import Cursor
from projections.tables import Keyed, write_rows

VIEW = "assessment"
FACT_COLUMNS = ("subject", "kind", "staff", "year", "case_no", "event_ref", "position")


class _SqlPort:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def case(self, case_id: str) -> tuple[str, str | None] | None:
        row = self.cur.execute("SELECT case_no, staff FROM assess_cases WHERE case_id = ?", (case_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_case(self, case_id: str, case_no: str, staff: str | None) -> None:
        self.cur.execute("INSERT INTO assess_cases (case_id, case_no, staff) VALUES (?, ?, ?) ON CONFLICT (case_id)"
                         " DO UPDATE SET staff = excluded.staff", (case_id, case_no, staff))

    def card(self, warning_id: str) -> tuple[str, int, str] | None:
        row = self.cur.execute("SELECT staff, year, case_no FROM assess_cards WHERE warning_id = ?",
                               (warning_id,)).fetchone()
        return (row[0], int(row[1]), row[2]) if row else None

    def set_card(self, warning_id: str, staff: str, year: int, case_no: str) -> None:
        self.cur.execute("INSERT INTO assess_cards (warning_id, staff, year, case_no) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (warning_id) DO NOTHING", (warning_id, staff, year, case_no))

    def complaint(self, complaint_id: str) -> tuple[str, str] | None:
        row = self.cur.execute("SELECT complaint_no, staff FROM assess_complaints WHERE complaint_id = ?",
                               (complaint_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_complaint(self, complaint_id: str, complaint_no: str, staff: str) -> None:
        self.cur.execute("INSERT INTO assess_complaints (complaint_id, complaint_no, staff) VALUES (?, ?, ?)"
                         " ON CONFLICT (complaint_id) DO NOTHING", (complaint_id, complaint_no, staff))

    def add(self, fact: Fact) -> None:
        self.cur.execute(
            "INSERT INTO assess_facts (subject, kind, staff, year, case_no, event_ref, position) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (subject, kind) DO UPDATE SET staff = excluded.staff, year = excluded.year,"
            " case_no = excluded.case_no, event_ref = excluded.event_ref, position = excluded.position",
            (fact.subject, fact.kind, fact.staff, fact.year, fact.case_no, fact.event_ref, fact.position))

    def remove(self, subject: str, kinds: Iterable[str] | None = None) -> list[Fact]:
        wanted = list(FIGURES if kinds is None else kinds)
        marks = ", ".join("?" for _ in wanted)
        found = [Fact(*r) for r in self.cur.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM assess_facts WHERE subject = ? AND kind IN ({marks})",
            (subject, *wanted)).fetchall()]
        if found:
            self.cur.execute(f"DELETE FROM assess_facts WHERE subject = ? AND kind IN ({marks})", (subject, *wanted))
        return found


_FACT_CONFLICT = (" ON CONFLICT (subject, kind) DO UPDATE SET staff = excluded.staff, year = excluded.year,"
                  " case_no = excluded.case_no, event_ref = excluded.event_ref, position = excluded.position")


class _BatchPort(_SqlPort):
    """The port for a batch: the batch's cases read in one query (and kept between batches), and
    the facts it adds written with one ``executemany`` at the end (a later fact of the same
    subject and kind replacing an earlier one, as the upserts one by one did). The rare reads
    of facts (``remove``) write what is pending first; cards and complaints go straight to SQL."""

    def __init__(self, cases: Keyed) -> None:
        self.cases = cases
        self.facts: dict[tuple[str, str], Fact] = {}
        self._types: dict[str, tuple[str, ...]] = {}

    def case(self, case_id: str) -> tuple[str, str | None] | None:
        row = self.cases.get(case_id)
        return (row["case_no"], row["staff"]) if row is not None else None

    def set_case(self, case_id: str, case_no: str, staff: str | None) -> None:
        row = self.cases.get(case_id)
        if row is None:
            self.cases.put({"case_id": case_id, "case_no": case_no, "staff": staff})
        else:  # ON CONFLICT (case_id) DO UPDATE SET staff: the case number stays
            row["staff"] = staff
            self.cases.touch(case_id)

    def add(self, fact: Fact) -> None:
        self.facts[(fact.subject, fact.kind)] = fact

    def remove(self, subject: str, kinds: Iterable[str] | None = None) -> list[Fact]:
        self.write(self.cur)
        return super().remove(subject, kinds)

    def write(self, cur: Cursor) -> None:
        if self.facts:
            write_rows(cur, "assess_facts", FACT_COLUMNS, [(f.subject, f.kind, f.staff, f.year, f.case_no, f.event_ref,
                                                            f.position) for f in self.facts.values()],
                       _FACT_CONFLICT, self._types)
            self.facts = {}


class AssessmentView(View):
    name = VIEW
    version = 1
    tables = ("assess_cases", "assess_cards", "assess_complaints", "assess_facts")
    topics = CASE_TOPICS + WARNING_TOPICS + (Complaint.Received.TOPIC, Complaint.Concluded.TOPIC)

    def __init__(self, satisfied_scores: Iterable[int] = (1, 2, 3)) -> None:
        self.satisfied_scores = tuple(satisfied_scores)
        self.cases = Keyed("assess_cases", ("case_id", "case_no", "staff"), keep=KEEP)
        self._port = _BatchPort(self.cases)
        self._fold = AssessmentFold(self._port, self.satisfied_scores)

    def create(self, cur: Cursor) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS assess_cases (case_id TEXT PRIMARY KEY, case_no TEXT NOT NULL,"
                    " staff TEXT)")
        cur.execute("CREATE TABLE IF NOT EXISTS assess_cards (warning_id TEXT PRIMARY KEY, staff TEXT NOT NULL,"
                    " year INTEGER NOT NULL, case_no TEXT NOT NULL)")
        cur.execute("CREATE TABLE IF NOT EXISTS assess_complaints (complaint_id TEXT PRIMARY KEY,"
                    " complaint_no TEXT NOT NULL, staff TEXT NOT NULL)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS assess_facts (
                subject TEXT NOT NULL,
                kind TEXT NOT NULL,
                staff TEXT NOT NULL,
                year INTEGER NOT NULL,
                case_no TEXT,
                event_ref TEXT NOT NULL,
                position BIGINT NOT NULL,
                PRIMARY KEY (subject, kind)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS assess_facts_year ON assess_facts (year, staff)")

    # -- a batch ----------------------------------------------------------------------------------

    def forget(self) -> None:
        self.cases.clear()
        self._port.facts = {}

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        self.cases.begin_batch()
        self._port.cur = cur
        self._port.facts = {}
        self.cases.load(cur, {str(e.originator_id) if hasattr(e, "STEP") else e.case_id
                              for e in events if hasattr(e, "STEP") or isinstance(e, CaseWarning.Issued)})

    def apply(self, event: Any, notification_id: int) -> None:
        apply(self._fold, event, notification_id)

    def flush(self, cur: Cursor) -> None:
        self.cases.flush(cur)
        self._port.write(cur)

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        self.begin(cur, [event])
        self.apply(event, notification_id)
        self.flush(cur)


def apply(fold: AssessmentFold, event: Any, position: int) -> None:
    """One event of the log into the fold (the view and a full recomputation share this)."""
    if hasattr(event, "STEP"):
        if counts(event):
            fold.case_event(case_step(event), position)
    elif isinstance(event, CaseWarning.Issued):
        fold.card_issued(str(event.originator_id), event.case_id, event.level, event.threshold_at, position)
    elif isinstance(event, CaseWarning.Answered):
        fold.card_act(str(event.originator_id), "answered", position)
    elif isinstance(event, CaseWarning.Escalated):
        fold.card_act(str(event.originator_id), "escalated", position)
    elif isinstance(event, CaseWarning.Withdrawn):
        fold.card_act(str(event.originator_id), "withdrawn", position)
    elif isinstance(event, Complaint.Received):
        fold.complaint_received(str(event.originator_id), event.complaint_no, event.staff)
    elif isinstance(event, Complaint.Concluded):
        fold.complaint_concluded(str(event.originator_id), event.substantiated, event.timestamp, position)


TOPICS = AssessmentView.topics


def figures(cur: Cursor, year: int) -> dict[str, dict[str, int]]:
    """Per staff member, the count of each figure in ``year``."""
    out: dict[str, dict[str, int]] = {}
    for staff, kind, n in cur.execute("SELECT staff, kind, COUNT(*) FROM assess_facts WHERE year = ?"
                                      " GROUP BY staff, kind", (year,)).fetchall():
        out.setdefault(staff, {k: 0 for k in FIGURES})[kind] = int(n)
    return out


def facts(cur: Cursor, year: int, staff: str | None = None, kind: str | None = None) -> list[Fact]:
    where, params = ["year = ?"], [year]
    if staff is not None:
        where.append("staff = ?")
        params.append(staff)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    return [Fact(*r) for r in cur.execute(
        f"SELECT {', '.join(FACT_COLUMNS)} FROM assess_facts WHERE {' AND '.join(where)}"
        " ORDER BY staff, kind, position, subject", params).fetchall()]

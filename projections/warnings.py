"""Warning views: the pending thresholds of every open case (a priority queue by instant), and the
warning board with each warning's status history (so the board can be shown as of any instant).

``warning_thresholds`` is what the scheduler reads: one row per pending (case, rule) with its
instant, indexed on the instant, so the next due thresholds are an index range scan, never a scan
of the open cases. Rows are replanned when a step moves them (acceptance, suspension, resumption,
extension, a main step for step limits), deleted when the case closes, and deleted when the
warning is issued (the ``Issued`` event is in the same log, so a rebuild never re-issues).
``warning_cases`` keeps, per open case, what the thresholds depend on.

Instants are BIGINT microseconds since the epoch (UTC): exact, and ordered the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import datetime
from fractions import Fraction
from typing import Any, Protocol, Sequence

import orjson

from domain.calendar import WorkingCalendar
from domain.case import CASE_TOPICS, EVENT_CLASSES, STAGE
from domain.errors import DomainError
from domain.limits import Limit, Unit
from domain.steps import Step, TERMINAL
from domain.thresholds import CaseClock, PolicyBook, WarningPolicy, plan, stage_extra
from domain.warning import OPEN_STATUSES, STATUSES, WARNING_TOPICS, CaseWarning
from projections.instants import fraction, from_us, us  # noqa: F401  (re-exported for the board's readers)
from projections.runner import View
from projections.store import Cursor
from projections.case_board import KEEP
from projections.tables import Grouped, Keyed

log = logging.getLogger("esup.warnings")

THRESHOLDS_VIEW = "warning_thresholds"
# Steps that never move a case's thresholds (no deadline, clock or stage change).
_STAGE_ONLY = frozenset({"stage", "stage_at", "stage_extra"})  # changes that only step limits see
_NEVER_MOVE = frozenset({Step.SUPPLEMENT_REQUESTED, Step.SUPPLEMENT_RECEIVED, Step.FEE_CHARGED, Step.DELIVERED, Step.RATED})
BOARD_VIEW = "warning_board"
# Case steps, and the ledger's acts on cases (DeadlinesSettled moves deadlines like a step: replan).

class Planner(Protocol):
    """What computing thresholds needs from reference data (see ``services.warnings``)."""

    def sync(self) -> None: ...

    def center_of(self, department: str, window: str | None) -> str | None: ...

    def calendar(self, center: str | None) -> WorkingCalendar: ...

    def policy_for(self, center: str | None, item_code: str | None) -> WarningPolicy: ...


class StaticPlanner:
    """The packaged calendar and one policy book (for tools and tests without reference data)."""

    def __init__(self, book: PolicyBook | None = None, calendar: WorkingCalendar | None = None) -> None:
        from infra.calendar_source import default_calendar

        self.book = book or PolicyBook()
        self._calendar = calendar or default_calendar()

    def sync(self) -> None:
        pass

    def center_of(self, department: str, window: str | None) -> str | None:
        return None

    def calendar(self, center: str | None) -> WorkingCalendar:
        return self._calendar

    def policy_for(self, center: str | None, item_code: str | None) -> WarningPolicy:
        return self.book.policy_for(center, item_code)


CASE_COLUMNS = (
    "case_id", "case_no", "department", "window_code", "item_code", "center", "accepted_at", "p_value", "p_unit",
    "l_value", "l_unit", "p_ext", "promised_due_at", "legal_due_at", "suspended_at", "resumed_at", "stage", "stage_at",
    "stage_extra", "issued", "version", "withdrawn",
)
THRESHOLD_COLUMNS = (
    "case_id", "rule", "level", "due_at", "case_version", "case_no", "department", "item_code", "promised_due_at",
    "legal_due_at", "basis", "generation",
)
EARNED_COLUMNS = ("case_id", "rule", "level", "threshold_at", "until_at", "case_no", "department", "item_code",
                  "promised_due_at", "legal_due_at", "basis")


def _rules(text: str) -> list[str]:
    return [r for r in text.split(",") if r]


def generation_of(row: dict[str, Any], rule: str) -> int:
    """How many of the case's cards for ``rule`` were withdrawn: the next one is that generation."""
    return _rules(row.get("withdrawn") or "").count(rule)


def clock_of(row: dict[str, Any]) -> CaseClock:
    """A case's timing facts from its ``warning_cases`` row."""
    return CaseClock(
        accepted_at=from_us(row["accepted_at"]),
        promised=Limit(row["p_value"], Unit(row["p_unit"])) if row["p_unit"] else None,
        legal=Limit(row["l_value"], Unit(row["l_unit"])) if row["l_unit"] else None,
        promised_due_at=from_us(row["promised_due_at"]),
        legal_due_at=from_us(row["legal_due_at"]),
        promised_extension=fraction(row["p_ext"]),
        suspended=row["suspended_at"] is not None,
        resumed_at=from_us(row["resumed_at"]),
        stage=row["stage"],
        stage_at=from_us(row["stage_at"]),
        stage_extra=fraction(row["stage_extra"]),
        issued=frozenset(r for r in row["issued"].split(",") if r),
    )


class WarningThresholds(View):
    name = THRESHOLDS_VIEW
    # 2: withdrawn cards (warning_cases.withdrawn, warning_thresholds.generation); 3: warning_earned
    version = 3
    tables = ("warning_thresholds", "warning_cases", "warning_earned")
    topics = CASE_TOPICS + (CaseWarning.Issued.TOPIC, CaseWarning.Withdrawn.TOPIC)

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.cases = Keyed("warning_cases", CASE_COLUMNS, keep=KEEP)
        # Not kept between batches: the scheduler deletes the thresholds it handled.
        self.thresholds = Grouped("warning_thresholds", THRESHOLD_COLUMNS)
        self._earned_rows: list[tuple[Any, ...]] = []

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_cases (
                case_id TEXT PRIMARY KEY,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                window_code TEXT,
                item_code TEXT NOT NULL,
                center TEXT,
                accepted_at BIGINT,
                p_value INTEGER,
                p_unit TEXT,
                l_value INTEGER,
                l_unit TEXT,
                p_ext TEXT NOT NULL DEFAULT '0',
                promised_due_at BIGINT,
                legal_due_at BIGINT,
                suspended_at BIGINT,
                resumed_at BIGINT,
                stage TEXT,
                stage_at BIGINT,
                stage_extra TEXT NOT NULL DEFAULT '0',
                issued TEXT NOT NULL DEFAULT '',
                version INTEGER NOT NULL,
                withdrawn TEXT NOT NULL DEFAULT ''
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS warning_cases_scope ON warning_cases (center, item_code)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_thresholds (
                case_id TEXT NOT NULL,
                rule TEXT NOT NULL,
                level TEXT NOT NULL,
                due_at BIGINT NOT NULL,
                case_version INTEGER NOT NULL,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                item_code TEXT NOT NULL,
                promised_due_at BIGINT,
                legal_due_at BIGINT,
                basis TEXT NOT NULL,
                generation INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (case_id, rule)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS warning_thresholds_due ON warning_thresholds (due_at)")
        # Cards a case's timeline earned by business time that were never issued, because the
        # step that stopped its clock (after the threshold) was keyed in before the scheduler
        # looked: a back-filled case, a batch. The board by business time shows them.
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_earned (
                case_id TEXT NOT NULL,
                rule TEXT NOT NULL,
                level TEXT NOT NULL,
                threshold_at BIGINT NOT NULL,
                until_at BIGINT NOT NULL,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                item_code TEXT NOT NULL,
                promised_due_at BIGINT,
                legal_due_at BIGINT,
                basis TEXT NOT NULL,
                PRIMARY KEY (case_id, rule, threshold_at)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS warning_earned_time ON warning_earned (threshold_at)")

    # -- a batch ----------------------------------------------------------------------------------

    def forget(self) -> None:
        self.cases.clear()
        self.thresholds.clear()

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        self.cases.begin_batch()
        self.thresholds.begin_batch()
        self._earned_rows = []
        self.planner.sync()
        ids = {e.case_id if isinstance(e, CaseWarning.Event) else str(e.originator_id) for e in events}
        self.cases.load(cur, ids)
        self.thresholds.load(cur, ids)

    def flush(self, cur: Cursor) -> None:
        self.cases.flush(cur)
        self.thresholds.flush(cur)
        cur.executemany(
            f"INSERT INTO warning_earned ({', '.join(EARNED_COLUMNS)}) VALUES ({', '.join('?' * len(EARNED_COLUMNS))})"
            " ON CONFLICT (case_id, rule, threshold_at) DO NOTHING", self._earned_rows)
        self._earned_rows = []

    def apply(self, event: Any, notification_id: int) -> None:
        if isinstance(event, CaseWarning.Issued):
            row = self.cases.get(event.case_id)
            if row is not None:
                row["issued"] = ",".join(sorted({*_rules(row["issued"]), event.rule}))
                self.cases.touch(event.case_id)
            self.thresholds.remove(event.case_id, event.rule)
            return
        if isinstance(event, CaseWarning.Withdrawn):
            self._withdrawn(event)
            return
        step: Step = event.STEP
        case_id = str(event.originator_id)
        row = self.cases.get(case_id)
        if step is Step.SUBMITTED:
            if row is not None:
                raise ValueError(f"case {event.case_no} is already in the warning thresholds (submitted again?)")
            center = self.planner.center_of(event.actor["department"], event.actor.get("window"))
            self.cases.put({
                "case_id": case_id, "case_no": event.case_no, "department": event.actor["department"],
                "window_code": event.actor.get("window"), "item_code": event.data["item_code"], "center": center,
                "p_ext": "0", "stage_extra": "0", "issued": "", "version": event.originator_version, "withdrawn": "",
            })
            return
        if row is None:  # closed already, or unknown
            return
        if step in TERMINAL or step is Step.SUSPENDED:
            self._earned(case_id, event.occurred_at)
        if step in TERMINAL:
            self.thresholds.clear_group(case_id)
            self.cases.delete(case_id)
            return
        row["version"] = event.originator_version
        self.cases.touch(case_id)
        if step in _NEVER_MOVE:  # the pending thresholds now stand for this version
            self._restamp(case_id, row["version"])
            return
        d = event.derived
        at = us(event.occurred_at)
        changes: dict[str, Any] = {}
        if "promised_due_at" in d:
            changes["promised_due_at"] = us(d["promised_due_at"])
            changes["legal_due_at"] = us(d["legal_due_at"])
        if step is Step.ACCEPTED:
            terms = d["terms"]
            changes.update(
                accepted_at=at, p_value=terms["promised_limit"]["value"], p_unit=terms["promised_limit"]["unit"],
                l_value=terms["legal_limit"]["value"], l_unit=terms["legal_limit"]["unit"], stage="accepted",
                stage_at=at, stage_extra="0",
            )
        elif step is Step.SUSPENDED:
            changes["suspended_at"] = at
        elif step is Step.RESUMED:
            changes.update(suspended_at=None, resumed_at=at)
            if row["suspended_at"] is not None and row["stage_at"] is not None:
                center = row["center"]
                try:
                    extra = stage_extra(
                        self.planner.calendar(center), self.planner.policy_for(center, row["item_code"]), row["stage"],
                        from_us(row["stage_at"]), from_us(row["suspended_at"]), event.occurred_at,  # type: ignore[arg-type]
                    )
                except DomainError:
                    extra = Fraction(0)
                changes["stage_extra"] = str(fraction(row["stage_extra"]) + extra)
        elif step is Step.EXTENDED and row["p_unit"] == event.data.get("unit") and "promised_due_at" in d:
            changes["p_ext"] = str(fraction(row["p_ext"]) + Fraction(event.data["value"]))
        elif step in (Step.UNDERTAKEN, Step.REVIEWED, Step.DECIDED) and row["stage"] is not None:
            if STAGE[step] > STAGE[Step(row["stage"])]:
                changes.update(stage=step.value, stage_at=at, stage_extra="0")
        timing = bool(changes)
        if timing and changes.keys() <= _STAGE_ONLY and not self.planner.policy_for(row["center"], row["item_code"]).steps:
            timing = False  # a main step only matters to step limits
        row.update(changes)
        if timing:
            self.replan(row)
        else:  # nothing moved: the pending thresholds now stand for this version
            self._restamp(case_id, row["version"])

    def _restamp(self, case_id: str, version: int) -> None:
        rows = self.thresholds.rows(case_id)
        if rows:
            for t in rows.values():
                t["case_version"] = version
            self.thresholds.touch(case_id)

    def _earned(self, case_id: str, stopped: datetime) -> None:
        """The clock stops: pending thresholds it ran past by business time were earned."""
        until = us(stopped)
        for t in self.thresholds.rows(case_id).values():
            if t["due_at"] < until:  # type: ignore[operator]
                self._earned_rows.append((case_id, t["rule"], t["level"], t["due_at"], until, t["case_no"],
                                          t["department"], t["item_code"], t["promised_due_at"], t["legal_due_at"],
                                          t["basis"]))

    def _withdrawn(self, event: Any) -> None:
        """A card withdrawn: its rule may be earned again (by the next generation's card)."""
        rule = event.rule
        row = self.cases.get(event.case_id)
        if row is None:  # the case is closed: nothing more to plan
            return
        row["issued"] = ",".join(r for r in _rules(row["issued"]) if r != rule)
        row["withdrawn"] = ",".join([*_rules(row["withdrawn"]), rule])
        self.cases.touch(event.case_id)
        if row["accepted_at"] is not None and row["suspended_at"] is None:
            self.replan(row)

    # -- helpers --------------------------------------------------------------------------------

    def replan_scope(self, cur: Cursor, center: str | None = None, item: str | None = None) -> int:
        """Recompute the pending thresholds of the open, accepted cases of a center or an item
        (a policy changed). Call with the view's position held (the runner's lock)."""
        where, params = ["accepted_at IS NOT NULL"], []
        if center is not None:
            where.append("center = ?")
            params.append(center)
        if item is not None:
            where.append("item_code = ?")
            params.append(item)
        ids = [r[0] for r in cur.execute(f"SELECT case_id FROM warning_cases WHERE {' AND '.join(where)}", params).fetchall()]
        self.begin(cur, [])
        self.cases.load(cur, ids)
        self.thresholds.load(cur, ids)
        for case_id in ids:
            self.replan(self.cases.get(case_id))  # type: ignore[arg-type]
        self.flush(cur)
        return len(ids)

    def replan(self, row: dict[str, Any]) -> int:
        """Replace the case's pending thresholds by those its current state and policy give."""
        case_id = row["case_id"]
        self.thresholds.clear_group(case_id)
        center = row["center"]
        try:
            thresholds = plan(clock_of(row), self.planner.policy_for(center, row["item_code"]), self.planner.calendar(center))
        except DomainError:  # never stop the projection; the case keeps no pending threshold
            log.exception("cannot plan the warning thresholds of case %s", row["case_no"])
            thresholds = []
        for t in thresholds:
            self.thresholds.put({
                "case_id": case_id, "rule": t.rule, "level": t.level.value, "due_at": us(t.at),
                "case_version": row["version"], "case_no": row["case_no"], "department": row["department"],
                "item_code": row["item_code"], "promised_due_at": row["promised_due_at"],
                "legal_due_at": row["legal_due_at"], "basis": t.basis, "generation": generation_of(row, t.rule),
            })
        self.thresholds.touch(case_id)
        return len(thresholds)


# -- what the scheduler reads (the pending thresholds, by instant) -------------------------------------

DUE_COLUMNS = ("case_id", "rule", "level", "due_at", "case_version", "case_no", "department", "item_code",
               "promised_due_at", "legal_due_at", "basis", "generation")


def next_due(cur: Cursor) -> int | None:
    """The earliest pending threshold instant (µs; the index's first entry)."""
    row = cur.execute("SELECT MIN(due_at) FROM warning_thresholds").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def due(cur: Cursor, now: int, limit: int = 100, after: tuple[int, str, str] | None = None) -> list[dict[str, Any]]:
    """Thresholds at or before ``now`` (µs), earliest first (keyset-paged after ``after``)."""
    sql = f"SELECT {', '.join(DUE_COLUMNS)} FROM warning_thresholds WHERE due_at <= ?"
    params: list[Any] = [now]
    if after is not None:
        sql += " AND due_at >= ? AND (due_at > ? OR case_id > ? OR (case_id = ? AND rule > ?))"
        params += [after[0], after[0], after[1], after[1], after[2]]
        # (the OR above is only reached with due_at = after[0], given due_at >= after[0])
    sql += " ORDER BY due_at, case_id, rule LIMIT ?"
    params.append(limit)
    return [dict(zip(DUE_COLUMNS, r)) for r in cur.execute(sql, params).fetchall()]


def forget(store: Any, cur: Cursor, rows: Sequence[dict[str, Any]]) -> None:
    """Drop thresholds the scheduler handled (unless replanned meanwhile: the version guards
    that). The view's position is held, so no batch of the view interleaves (it rewrites a
    case's thresholds whole)."""
    store.lock_position(cur, THRESHOLDS_VIEW)
    cur.executemany("DELETE FROM warning_thresholds WHERE case_id = ? AND rule = ? AND case_version = ?",
                    [(r["case_id"], r["rule"], r["case_version"]) for r in rows])


# Steps that stop a case's clock: a card whose threshold is not before such a step (by business
# time) was never earned, whenever the step was keyed in.
CLOCK_STOPS = (Step.CONCLUDED, Step.REFUSED, Step.WITHDRAWN, Step.SUSPENDED)
CLOCK_STOP_TOPICS = tuple(EVENT_CLASSES[s].TOPIC for s in CLOCK_STOPS)


class WarningBoard(View):
    """One row per warning (its current state) and one per status it went through, with the
    interval it held (``from_at`` inclusive, ``to_at`` exclusive): the board as of any instant.

    It also reads the steps that stop a case's clock: an open card whose threshold such a step
    shows was never reached goes into ``warning_withdrawals``, from which the scheduler records
    the withdrawal in the ledger (a view never writes the ledger)."""

    name = BOARD_VIEW
    version = 2  # 2: withdrawals (warning_withdrawals, warning_board.withdrawn_at, case_id index)
    tables = ("warning_board", "warning_status", "warning_withdrawals")
    topics = WARNING_TOPICS + CLOCK_STOP_TOPICS

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_board (
                warning_id TEXT PRIMARY KEY,
                case_id TEXT NOT NULL,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                item_code TEXT NOT NULL,
                level TEXT NOT NULL,
                rule TEXT NOT NULL,
                basis TEXT NOT NULL,
                status TEXT NOT NULL,
                threshold_at BIGINT NOT NULL,
                issued_at BIGINT NOT NULL,
                promised_due_at BIGINT,
                legal_due_at BIGINT,
                answered_at BIGINT,
                explanation TEXT,
                escalated_at BIGINT,
                escalation_due_at BIGINT,
                closed_at BIGINT,
                withdrawn_at BIGINT,
                version INTEGER NOT NULL,
                position BIGINT NOT NULL
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS warning_board_case_id ON warning_board (case_id)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_withdrawals (
                warning_id TEXT PRIMARY KEY,
                case_id TEXT NOT NULL,
                evidence TEXT NOT NULL,
                position BIGINT NOT NULL
            )"""
        )
        # The board is read in threshold order: walking these indexes stops after ``limit`` rows.
        cur.execute("CREATE INDEX IF NOT EXISTS warning_board_time ON warning_board (threshold_at, warning_id)")
        cur.execute("DROP INDEX IF EXISTS warning_board_open")  # superseded by warning_board_time
        cur.execute("CREATE INDEX IF NOT EXISTS warning_board_dept ON warning_board (department, threshold_at)")
        cur.execute("CREATE INDEX IF NOT EXISTS warning_board_case ON warning_board (case_no)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS warning_status (
                warning_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                status TEXT NOT NULL,
                from_at BIGINT NOT NULL,
                to_at BIGINT,
                PRIMARY KEY (warning_id, version)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS warning_status_from ON warning_status (from_at)")

    def __init__(self) -> None:
        # Cases that have (or had) a card: most cases never do, so most clock stops need no
        # query. Loaded from the table when first needed; a superset is harmless. The runner
        # makes the view forget it whenever another process (or a rebuild) moved the view.
        self._carded: set[str] | None = None
        self.board = Keyed("warning_board", BOARD_TABLE_COLUMNS, key="warning_id")
        self.status = Grouped("warning_status", ("warning_id", "version", "status", "from_at", "to_at"),
                              group="warning_id", sub="version")
        self.withdrawals = Keyed("warning_withdrawals", ("warning_id", "case_id", "evidence", "position"), key="warning_id")
        self._by_case: dict[str, set[str]] = {}

    def forget(self) -> None:
        self._carded = None

    def _cases_with_cards(self, cur: Cursor) -> set[str]:
        if self._carded is None:
            self._carded = {r[0] for r in cur.execute("SELECT DISTINCT case_id FROM warning_board").fetchall()}
        return self._carded

    # -- a batch ----------------------------------------------------------------------------------

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        for table in (self.board, self.status, self.withdrawals):
            table.clear()
        carded = self._cases_with_cards(cur)
        wids = {str(e.originator_id) for e in events if not hasattr(e, "STEP")}
        cases = {str(e.originator_id) for e in events if hasattr(e, "STEP")} & carded
        self.board.load(cur, wids)
        self.board.load(cur, cases, by="case_id")
        self.status.load(cur, wids)
        self._by_case = {}
        for wid, row in self.board.rows.items():
            if row is not None:
                self._by_case.setdefault(row["case_id"], set()).add(wid)

    def flush(self, cur: Cursor) -> None:
        self.board.flush(cur)
        self.status.flush(cur)
        self.withdrawals.flush(cur)

    def apply(self, event: Any, notification_id: int) -> None:
        if hasattr(event, "STEP"):
            self._clock_stopped(event, notification_id)
            return
        wid = str(event.originator_id)
        at = us(event.timestamp)
        version = event.originator_version
        if isinstance(event, CaseWarning.Issued):
            if self.board.get(wid) is not None:
                raise ValueError(f"warning {wid} is already on the board (issued twice?)")
            self.board.put({
                "warning_id": wid, "case_id": event.case_id, "case_no": event.case_no, "department": event.department,
                "item_code": event.item_code, "level": event.level, "rule": event.rule, "basis": event.basis,
                "status": "issued", "threshold_at": us(event.threshold_at), "issued_at": at,
                "promised_due_at": us(event.promised_due_at), "legal_due_at": us(event.legal_due_at),
                "version": version, "position": notification_id,
            })
            self.status.put({"warning_id": wid, "version": version, "status": "issued", "from_at": at, "to_at": None})
            self._by_case.setdefault(event.case_id, set()).add(wid)
            if self._carded is not None:
                self._carded.add(event.case_id)
            return
        row = self.board.get(wid)
        if row is None:
            return
        sets: dict[str, Any] = {"version": version, "position": notification_id}
        if isinstance(event, CaseWarning.Answered):
            status = "answered"
            sets.update(answered_at=at, explanation=event.explanation)
        elif isinstance(event, CaseWarning.Escalated):
            status = "escalated"
            sets.update(escalated_at=at, escalation_due_at=us(event.due_at))
        elif isinstance(event, CaseWarning.Closed):
            status = "closed"
            sets["closed_at"] = at
            self.withdrawals.delete(wid)  # a closed card stays closed
        elif isinstance(event, CaseWarning.Withdrawn):
            status = "withdrawn"
            sets["withdrawn_at"] = at
            self.withdrawals.delete(wid)
        else:  # pragma: no cover - topics filter the rest
            return
        row.update(sets, status=status)
        self.board.touch(wid)
        for s in self.status.rows(wid).values():
            if s["to_at"] is None:
                s["to_at"] = at
        self.status.put({"warning_id": wid, "version": version, "status": status, "from_at": at, "to_at": None})

    def _clock_stopped(self, event: Any, notification_id: int) -> None:
        case_id = str(event.originator_id)
        wids = self._by_case.get(case_id)
        if not wids:
            return
        stopped = us(event.occurred_at)
        for wid in sorted(wids):
            row = self.board.get(wid)
            if row is None or row["status"] not in OPEN_STATUSES or row["threshold_at"] < stopped:  # type: ignore[operator]
                continue
            evidence = {
                "case_id": case_id, "level": row["level"], "rule": row["rule"],
                "threshold_at": from_us(row["threshold_at"]).isoformat(),  # type: ignore[union-attr]
                "version": event.originator_version, "step": event.STEP.value,
                "source_event_id": event.source_event_id, "occurred_at": event.occurred_at.isoformat(),
                "recorded_at": event.timestamp.isoformat(), "position": notification_id,
                "flags": [f.get("code") if isinstance(f, dict) else f for f in event.flags],
            }
            self.withdrawals.put({"warning_id": wid, "case_id": case_id, "evidence": orjson.dumps(evidence).decode(),
                                  "position": notification_id})


def pending_withdrawals(cur: Cursor, limit: int = 500) -> list[tuple[str, dict[str, Any]]]:
    """Cards a later step showed were never earned, not yet withdrawn in the ledger."""
    rows = cur.execute("SELECT warning_id, evidence FROM warning_withdrawals ORDER BY position, warning_id LIMIT ?",
                       (limit,)).fetchall()
    return [(wid, orjson.loads(ev)) for wid, ev in rows]


# -- reading the board ---------------------------------------------------------------------------

BOARD_TABLE_COLUMNS = (
    "warning_id", "case_id", "case_no", "department", "item_code", "level", "rule", "basis", "status", "threshold_at",
    "issued_at", "promised_due_at", "legal_due_at", "answered_at", "explanation", "escalated_at", "escalation_due_at",
    "closed_at", "withdrawn_at", "version", "position",
)
BOARD_COLUMNS = (
    "warning_id", "case_no", "department", "item_code", "level", "rule", "basis", "status", "threshold_at", "issued_at",
    "promised_due_at", "legal_due_at", "answered_at", "explanation", "escalated_at", "escalation_due_at", "closed_at",
    "withdrawn_at",
)
_INSTANTS = ("threshold_at", "issued_at", "promised_due_at", "legal_due_at", "answered_at", "escalated_at",
             "escalation_due_at", "closed_at", "withdrawn_at")
_ACT_FIELDS = {"answered_at": ("explanation",), "escalated_at": ("escalation_due_at",), "closed_at": (),
               "withdrawn_at": ()}


def board(
    cur: Cursor,
    *,
    as_of: datetime | None = None,
    level: str | None = None,
    departments: Sequence[str] | None = None,
    statuses: Sequence[str] = OPEN_STATUSES,
    case_no: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The board now, or as it stood at ``as_of`` (warnings issued by then, with the status they
    had then; later acts are not shown). Ordered by threshold instant."""
    where: list[str] = []
    params: list[Any] = []
    cols = ", ".join(f"b.{c}" for c in BOARD_COLUMNS)
    if as_of is None:
        sql = f"SELECT {cols} FROM warning_board b"
        status_col = "b.status"
    else:
        # Walk the board in threshold order up to as_of (a warning is never issued before its
        # threshold) and join, by primary key, the status interval that held at as_of (the first
        # begins at the issue, so a warning issued later has none).
        t = us(as_of)
        sql = (f"SELECT {cols}, s.status FROM warning_board b JOIN warning_status s ON s.warning_id = b.warning_id"
               " AND s.from_at <= ? AND (s.to_at IS NULL OR s.to_at > ?)")
        params += [t, t]
        status_col = "s.status"
        where.append("b.threshold_at <= ?")
        params.append(t)
    if statuses and set(statuses) != set(STATUSES):
        where.append(f"{status_col} IN ({', '.join('?' * len(statuses))})")
        params += list(statuses)
    if level:
        where.append("b.level = ?")
        params.append(level)
    if departments is not None:
        if not departments:
            return []
        where.append(f"b.department IN ({', '.join('?' * len(departments))})")
        params += list(departments)
    if case_no:
        where.append("b.case_no = ?")
        params.append(case_no)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY b.threshold_at, b.warning_id LIMIT ? OFFSET ?"
    params += [limit, offset]
    out = []
    for found in cur.execute(sql, params).fetchall():
        row = dict(zip(BOARD_COLUMNS, found))
        if as_of is not None:
            row["status"] = found[len(BOARD_COLUMNS)]
            t = us(as_of)
            for key, related in _ACT_FIELDS.items():  # acts after as_of were not known then
                if row[key] is not None and row[key] > t:
                    row[key] = None
                    for r in related:
                        row[r] = None
        out.append(shape(row))
    return out


def board_by_occurred(
    cur: Cursor,
    *,
    as_of: datetime,
    level: str | None = None,
    departments: Sequence[str] | None = None,
    statuses: Sequence[str] = (*OPEN_STATUSES, "earned"),
    case_no: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The board by business time: the cards the cases' timelines had earned by ``as_of`` (their
    threshold passed while the clock ran), with the status they had then. Issued cards keep the
    acts done by then (a card earned in 2008 and issued when the case was keyed in later is
    ``issued`` as of 2008); withdrawn cards were never earned and never show; a card earned by a
    case whose stopping step was keyed in before any card could be issued is ``earned``."""
    t = us(as_of)
    if departments is not None and not departments:
        return []
    common: list[str] = []
    params: list[Any] = []
    if level:
        common.append("level = ?")
        params.append(level)
    if departments is not None:
        common.append(f"department IN ({', '.join('?' * len(departments))})")
        params += list(departments)
    if case_no:
        common.append("case_no = ?")
        params.append(case_no)
    extra = "".join(f" AND b.{c}" for c in common)
    extra_e = "".join(f" AND e.{c}" for c in common)
    cols = ", ".join(f"b.{c}" for c in BOARD_COLUMNS if c != "status")
    ecols = ", ".join(
        {"warning_id": "NULL", "issued_at": "NULL", "answered_at": "NULL", "explanation": "NULL",
         "escalated_at": "NULL", "escalation_due_at": "NULL", "closed_at": "NULL", "withdrawn_at": "NULL"}.get(
            c, f"e.{c}") for c in BOARD_COLUMNS if c != "status")
    sql = (
        f"SELECT * FROM (SELECT {cols}, COALESCE(s.status, 'issued') AS st, NULL AS until_at FROM warning_board b"
        " LEFT JOIN warning_status s ON s.warning_id = b.warning_id AND s.from_at <= ? AND (s.to_at IS NULL OR s.to_at > ?)"
        f" WHERE b.threshold_at <= ? AND b.status <> 'withdrawn'{extra}"
        f" UNION ALL SELECT {ecols}, 'earned' AS st, e.until_at FROM warning_earned e WHERE e.threshold_at <= ?{extra_e}"
        f") u WHERE st IN ({', '.join('?' * len(statuses))}) ORDER BY threshold_at, case_no, rule LIMIT ? OFFSET ?"
    )
    names = [c for c in BOARD_COLUMNS if c != "status"]
    out = []
    for found in cur.execute(sql, [t, t, t, *params, t, *params, *statuses, limit, offset]).fetchall():
        row = dict(zip(names, found))
        row["status"] = found[len(names)]
        until = found[len(names) + 1]
        for key, related in _ACT_FIELDS.items():  # acts after as_of were not known then
            if row[key] is not None and row[key] > t:
                row[key] = None
                for r in related:
                    row[r] = None
        shaped = shape(row)
        if row["status"] == "earned":
            shaped["id"] = None
            shaped["clock_stopped_at"] = from_us(until)
        out.append(shaped)
    return out


def shape(row: dict[str, Any]) -> dict[str, Any]:
    out = {"id": row.pop("warning_id"), **row}
    for key in _INSTANTS:
        out[key] = from_us(out[key])
    return out

"""The anomaly view (异常), each anomaly with the events that prove it.

The rules are in ``domain.anomalies``; this view keeps their per-case state and applies their
decisions to its tables, a batch of the log at a time:

* ``anomalies``: one row per (case, rule): a rule id, its type in the deployed taxonomy (时效
  time, 流程 procedure, 内容 content, 裁量 discretion, 风险防控 risk, 督办 escalation), a short
  reason, a status (open, cleared) and the evidence: every event that shows it (version, step,
  source event id, occurred and recorded instants, the flag's own evidence), in a JSON list. A
  case that breaks one rule several times keeps one row whose evidence grows.
* ``anomaly_cases``: the rules' state of each case (JSON).
* ``anomaly_pending``: armed timers with their due instants (indexed). A timer fires when a later
  event shows the limit passed, or when time passes with nothing happening: ``sweep(now)`` turns
  every pending row due before ``now`` into an anomaly, in one transaction, idempotently. The
  view also sweeps by the log's own clock: when an event recorded at T arrives, nothing was
  recorded between the previous instant and T, so everything due before T has passed; a replay
  therefore finds the same anomalies whenever it runs.
* ``anomaly_clock``: the latest recorded instant processed (the log's clock).

A timer anomaly raised on what the ledger knew (nothing recorded by the due instant) is marked
``cleared`` when a step keyed in later shows it happened in time; the late step is itself a
``late_entry`` anomaly. Wrongly keyed dates are what most false red cards are.

Instants, in these tables and in the rules' state, are integer microseconds since the epoch.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, Iterable, Sequence

from domain import anomalies as rules
from domain.anomalies import (  # noqa: F401  (the rule catalogue, read through this view's module)
    RULES, TIMER_RULES, TYPES, AnomalyPolicy, Annotate, Amend, Arm, CaseState, Clear, Disarm, Raise, Rule, rule_for,
)
from domain.calendar import CHINA_TZ
from domain.case import STEP_TOPICS
from domain.warning import CaseWarning
from projections.calendars import Calendars
from projections.case_board import KEEP
from projections.instants import from_us, us
from projections.runner import View
from projections.store import Cursor, ViewStore
from projections.tables import Grouped, Keyed

CASE_TOPICS = STEP_TOPICS  # case steps only
ANOMALY_COLUMNS = ("case_id", "rule", "case_no", "department", "window_code", "item_code", "type", "reason", "status",
                   "occurred_at", "detected_at", "detected_by", "evidence", "details", "log_position")
PENDING_COLUMNS = ("case_id", "rule", "due_at", "armed_version", "case_no", "department", "window_code", "item_code",
                   "reason", "evidence")


def iso(t: int | None) -> str | None:
    """An instant (µs) as ISO 8601 in China time."""
    return from_us(t, CHINA_TZ).isoformat() if t is not None else None  # type: ignore[union-attr]


class AnomalyView(View):
    name = "anomalies"
    version = 3  # 2: the rules' state in domain.anomalies.CaseState form; 3: instants in µs (BIGINT)
    topics = CASE_TOPICS + (CaseWarning.Withdrawn.TOPIC,)
    tables = ("anomalies", "anomaly_cases", "anomaly_pending", "anomaly_clock")

    def __init__(self, store: ViewStore, calendars: Calendars, policy: AnomalyPolicy | None = None) -> None:
        self.store = store  # where a wall-clock ``sweep`` writes
        self.calendars = calendars
        self.policy = policy or AnomalyPolicy()
        self.anomalies = Grouped("anomalies", ANOMALY_COLUMNS, json=("evidence", "details"), keep=KEEP)
        self.pending = Grouped("anomaly_pending", PENDING_COLUMNS, json=("evidence",), keep=KEEP)
        self.cases = Keyed("anomaly_cases", ("case_id", "state"), json=("state",), keep=KEEP)
        self._states: dict[str, CaseState] = {}  # the rules' state of the cases in memory, decoded

    def forget(self) -> None:
        for table in (self.anomalies, self.pending, self.cases):
            table.clear()
        self._states = {}

    # -- schema ---------------------------------------------------------------------------

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS anomalies (
                case_id TEXT NOT NULL,
                rule TEXT NOT NULL,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                window_code TEXT,
                item_code TEXT,
                type TEXT NOT NULL,
                reason TEXT NOT NULL,
                status TEXT NOT NULL,
                occurred_at BIGINT NOT NULL,
                detected_at BIGINT NOT NULL,
                detected_by TEXT NOT NULL,
                evidence TEXT NOT NULL,
                details TEXT NOT NULL,
                log_position BIGINT NOT NULL,
                PRIMARY KEY (case_id, rule)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS anomalies_position ON anomalies (log_position)")
        cur.execute("CREATE INDEX IF NOT EXISTS anomalies_dept ON anomalies (department, occurred_at)")
        cur.execute("CREATE INDEX IF NOT EXISTS anomalies_type ON anomalies (type, occurred_at)")
        cur.execute("CREATE INDEX IF NOT EXISTS anomalies_when ON anomalies (occurred_at)")
        cur.execute("CREATE INDEX IF NOT EXISTS anomalies_case ON anomalies (case_no)")
        cur.execute("CREATE TABLE IF NOT EXISTS anomaly_cases (case_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS anomaly_pending (
                case_id TEXT NOT NULL,
                rule TEXT NOT NULL,
                due_at BIGINT,
                armed_version INTEGER NOT NULL,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                window_code TEXT,
                item_code TEXT,
                reason TEXT NOT NULL,
                evidence TEXT NOT NULL,
                PRIMARY KEY (case_id, rule)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS anomaly_pending_due ON anomaly_pending (due_at)")
        cur.execute("CREATE TABLE IF NOT EXISTS anomaly_clock (clock_key TEXT PRIMARY KEY, instant BIGINT NOT NULL)")

    def monitor_rows(self, cur: Cursor, after: int, upto: int) -> list[dict[str, Any]]:
        """Anomalies raised or changed at log positions in (after, upto], shaped for the live
        monitor's feed (``services.monitor``). A wall-clock sweep places its rows just after the
        position the view had read when it ran, so a feed already there still gets them, with
        the next record of the log."""
        rows = cur.execute(
            "SELECT case_no, rule, type, department, window_code, item_code, status, reason, occurred_at, detected_at,"
            " log_position FROM anomalies WHERE log_position > ? AND log_position <= ? ORDER BY log_position",
            (after, upto),
        ).fetchall()
        return [
            {"anomaly_id": f"{case_no}:{rule}", "case_no": case_no, "rule": rule, "type": type_,
             "department": dept, "window": window, "item_code": item, "status": status, "reason": reason,
             "occurred_at": iso(occurred), "detected_at": iso(detected), "position": position}
            for case_no, rule, type_, dept, window, item, status, reason, occurred, detected, position in rows
        ]

    # -- a batch ----------------------------------------------------------------------------

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        self._cur = cur
        # The three tables hold the same cases: kept between batches, or all dropped together.
        if any([table.begin_batch() for table in (self.anomalies, self.pending, self.cases)]):
            self.forget()
        self._dirty_states: set[str] = set()
        self.calendars.sync()
        ids = {e.case_id if isinstance(e, CaseWarning.Withdrawn) else str(e.originator_id) for e in events}
        self._load(cur, ids)
        row = cur.execute("SELECT instant FROM anomaly_clock WHERE clock_key = 'log'").fetchone()
        self._log_now = int(row[0]) if row else -(2 ** 62)
        self._clock_moved = False
        # Pending timers: those of the loaded cases in memory (a heap by due instant), the rest
        # in the table, of which only the earliest due instant is known (a lower bound).
        self._heap: list[tuple[int, str, str]] = [
            (r["due_at"], cid, rule) for cid in ids for rule, r in self.pending.rows(cid).items() if r["due_at"] is not None]
        heapq.heapify(self._heap)
        row = cur.execute("SELECT MIN(due_at) FROM anomaly_pending").fetchone()
        self._table_due = int(row[0]) if row and row[0] is not None else None

    def _load(self, cur: Cursor, ids: Iterable[str]) -> None:
        ids = [i for i in ids if not self.pending.loaded(i)]
        if not ids:
            return
        self.cases.load(cur, ids)
        self.anomalies.load(cur, ids)
        self.pending.load(cur, ids)

    def flush(self, cur: Cursor) -> None:
        for cid in self._dirty_states:
            self.cases.put({"case_id": cid, "state": self._states[cid].to_dict()})
        self.cases.flush(cur)
        self.anomalies.flush(cur)
        self.pending.flush(cur)
        if self._clock_moved:
            cur.execute("INSERT INTO anomaly_clock (clock_key, instant) VALUES ('log', ?)"
                        " ON CONFLICT (clock_key) DO UPDATE SET instant = excluded.instant", (self._log_now,))

    def apply(self, event: Any, notification_id: int) -> None:
        if isinstance(event, CaseWarning.Withdrawn):
            st = self._state(event.case_id)
            if st is not None:
                self._decide(event.case_id, st, [rules.card_withdrawn(event)], us(event.timestamp), notification_id)
            return
        recorded = us(event.timestamp)
        self._tick(recorded, notification_id)
        case_id = str(event.originator_id)
        st = self._state(case_id)
        if event.STEP.value == "submitted":
            if st is not None:
                raise ValueError(f"case {event.case_no} is already in the anomaly view (submitted again?)")
            st = rules.started(event)
            self._states[case_id] = st
        elif st is None:
            return
        decisions = rules.apply(self.policy, st, event, lambda: self.calendars.for_case(st.department, st.window))
        self._dirty_states.add(case_id)
        self._decide(case_id, st, decisions, recorded, notification_id)

    def _state(self, case_id: str) -> CaseState | None:
        st = self._states.get(case_id)
        if st is None:
            row = self.cases.get(case_id)
            if row is None:
                return None
            st = self._states[case_id] = CaseState.from_dict(row["state"])
        return st

    # -- decisions onto the tables ----------------------------------------------------------------

    def _decide(self, case_id: str, st: CaseState, decisions: Iterable[Any], detected: int, position: int) -> None:
        for d in decisions:
            if isinstance(d, Raise):
                self._raise(case_id, st.dims, d, detected, position)
            elif isinstance(d, Arm):
                due = d.due
                self.pending.put({"case_id": case_id, "rule": d.rule, "due_at": due, "armed_version": d.armed,
                                  "case_no": st.case_no, "department": st.department, "window_code": st.window,
                                  "item_code": st.item_code, "reason": d.reason, "evidence": d.evidence})
                if due is not None:
                    heapq.heappush(self._heap, (due, case_id, d.rule))
            elif isinstance(d, Disarm):
                self.pending.remove(case_id, d.rule)
            elif isinstance(d, Amend):
                row = self.pending.rows(case_id).get(d.rule)
                if row is not None:
                    self.pending.put({**row, "reason": d.reason, "evidence": d.evidence})
            elif isinstance(d, Clear):
                self._clear(case_id, d, position)
            elif isinstance(d, Annotate):
                self._annotate(case_id, d)

    def _raise(self, case_id: str, dims: tuple[str, str, str | None, str | None], d: Raise, detected: int,
               position: int) -> None:
        """Insert the (case, rule) anomaly, or add this evidence to it (and reopen it). ``position``:
        the log position that revealed it (for a wall-clock sweep, just after what the view had read)."""
        row = self.anomalies.rows(case_id).get(d.rule)
        details = dict(d.details)
        if d.armed is not None:
            details["armed_version"] = d.armed
        if row is None:
            case_no, dept, window, item = dims
            self.anomalies.put({
                "case_id": case_id, "rule": d.rule, "case_no": case_no, "department": dept, "window_code": window,
                "item_code": item, "type": rule_for(d.rule).type, "reason": d.reason, "status": "open",
                "occurred_at": d.occurred, "detected_at": detected, "detected_by": d.by, "evidence": d.evidence,
                "details": {**details, "breaches": [d.armed] if d.armed is not None else []}, "log_position": position,
            })
            return
        old = dict(row["details"])
        if d.armed is not None:
            old["breaches"] = [*old.get("breaches", []), d.armed]
        for k, v in details.items():
            if k == "armed_version":
                continue
            if isinstance(v, list) and isinstance(old.get(k), list):  # e.g. every card withdrawn
                old[k] = old[k] + [x for x in v if x not in old[k]]
            else:
                old[k] = v
        self.anomalies.put({**row, "evidence": _merge(row["evidence"], d.evidence), "details": old, "status": "open",
                            "log_position": position})

    def _raised_by(self, case_id: str, rule: str, armed: int) -> dict[str, Any] | None:
        """The anomaly the timer armed at ``armed`` raised, if it is the latest breach."""
        row = self.anomalies.rows(case_id).get(rule)
        if row is None or (row["details"].get("breaches") or [None])[-1] != armed:
            return None
        return row

    def _clear(self, case_id: str, d: Clear, position: int) -> None:
        row = self._raised_by(case_id, d.rule, d.armed)
        if row is None or row["status"] != "open":
            return
        details = {**row["details"], "cleared": {"by_version": d.by_version,
                                                 "note": "happened in time, recorded later: see the late_entry anomaly"}}
        self.anomalies.put({**row, "status": "cleared", "evidence": _merge(row["evidence"], [d.evidence]),
                            "details": details, "log_position": position})

    def _annotate(self, case_id: str, d: Annotate) -> None:
        row = self._raised_by(case_id, d.rule, d.armed)
        if row is None:
            return
        self.anomalies.put({**row, "evidence": _merge(row["evidence"], [d.evidence]),
                            **({"reason": d.reason} if d.reason is not None else {})})

    # -- the clocks -----------------------------------------------------------------------------

    def _tick(self, recorded: int, position: int) -> None:
        """The log's clock moved to ``recorded``: timers due before it have passed."""
        if recorded <= self._log_now:
            return
        self._sweep(recorded, position)
        self._log_now = recorded
        self._clock_moved = True

    def _sweep(self, now: int, position: int) -> int:
        if self._table_due is not None and self._table_due < now:
            found = self._cur.execute(
                "SELECT DISTINCT case_id FROM anomaly_pending WHERE due_at IS NOT NULL AND due_at < ?", (now,)).fetchall()
            due_cases = [r[0] for r in found]
            self._load(self._cur, due_cases)  # those not in memory yet
            for cid in due_cases:  # in memory or just read: their timers go on the heap (checked when popped)
                for rule, r in self.pending.rows(cid).items():
                    if r["due_at"] is not None:
                        heapq.heappush(self._heap, (r["due_at"], cid, rule))
            row = self._cur.execute("SELECT MIN(due_at) FROM anomaly_pending WHERE due_at >= ?", (now,)).fetchone()
            self._table_due = int(row[0]) if row and row[0] is not None else None
        n = 0
        while self._heap and self._heap[0][0] < now:
            due, cid, rule = heapq.heappop(self._heap)
            row = self.pending.rows(cid).get(rule)
            if row is None or row["due_at"] != due:
                continue  # settled, moved or already swept since it was pushed
            self.pending.remove(cid, rule)
            st = (row["case_no"], row["department"], row["window_code"], row["item_code"])
            self._raise(cid, st, rules.swept(rule, due, row["armed_version"], row["reason"], row["evidence"], now),
                        now, position)
            n += 1
        return n

    def sweep(self, now: datetime, store: ViewStore | None = None) -> int:
        """Raise every timer anomaly due before ``now`` that no event has settled; returns how
        many. One transaction, holding the view's position (no batch runs meanwhile); running it
        again (or concurrently) raises nothing twice. Call it after the view has caught up
        (``sweep_now`` does), or a step already logged but not yet processed may be flagged and
        then cleared."""
        store = store or self.store
        with store.transaction() as cur:
            position = store.lock_position(cur, self.name)
            self.begin(cur, [])
            n = self._sweep(us(now), position + 1)
            self.flush(cur)
        return n


def query(cur: Cursor, clause: str, params: Sequence[Any], columns: Sequence[str], limit: int,
          offset: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Counts by type and a page of rows (``columns``) of the anomalies matching ``clause``,
    ordered by when they occurred."""
    counts = dict(cur.execute(f"SELECT type, COUNT(*) FROM anomalies WHERE {clause} GROUP BY type", params).fetchall())
    rows = cur.execute(
        f"SELECT {', '.join(columns)} FROM anomalies WHERE {clause} ORDER BY occurred_at, case_no, rule LIMIT ? OFFSET ?",
        [*params, limit, offset]).fetchall()
    return counts, [dict(zip(columns, r)) for r in rows]


def _merge(old: list[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {(e.get("version"), e.get("role"), e.get("detail")) for e in old}
    out = list(old)
    for e in new:
        key = (e.get("version"), e.get("role"), e.get("detail"))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def sweep_now(esup: Any, now: datetime | None = None) -> int:
    """Catch the anomaly view up, then sweep at ``now`` (default: the system's clock)."""
    view: AnomalyView = esup.runner.view(AnomalyView.name)  # type: ignore[assignment]
    esup.runner.catch_up([AnomalyView.name])
    return view.sweep(now or esup.clock.now())

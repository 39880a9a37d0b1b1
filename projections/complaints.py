"""The complaint board (投诉): one row per complaint, its current stage and deadline.

Only this module reads or writes ``complaint_board``; others call its query functions: the
board itself (``rows``), the open complaints whose stage deadline has passed unwarned
(``overdue``, for the warning sweep), and counts by the performance groupings (``counts``, for
投诉率 in the metrics). Instants are integer epoch microseconds (projections/instants.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from domain.complaint import COMPLAINT_TOPICS, STAGE_OF, Complaint
from projections.instants import from_us, us
from projections.calendars import local_day
from projections.runner import View
from projections.store import Cursor

VIEW = "complaints"
COLUMNS = ("complaint_id", "complaint_no", "channel", "department", "window_code", "staff_code", "case_no", "status",
           "stage", "due_at", "warned_stage", "warnings", "received_at", "received_day", "closed_at", "closed_day",
           "substantiated", "late_stages", "version")
# The groupings the metrics use (services/metrics.py GROUP_COLUMNS) and this table's columns for them.
GROUP_COLUMNS = {"department": ("department",), "window": ("window_code",), "staff": ("staff_code",),
                 "item": ("item_code",), "hall": ("window_code", "department"), "center": ("window_code", "department"),
                 "day": ("received_day",)}


class ComplaintBoard(View):
    name = VIEW
    version = 1
    tables = ("complaint_board",)
    topics = COMPLAINT_TOPICS

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS complaint_board (
                complaint_id TEXT PRIMARY KEY,
                complaint_no TEXT NOT NULL UNIQUE,
                channel TEXT NOT NULL,
                department TEXT NOT NULL,
                window_code TEXT,
                staff_code TEXT,
                case_no TEXT,
                item_code TEXT,
                status TEXT NOT NULL,
                stage TEXT,
                due_at BIGINT,
                warned_stage TEXT,
                warnings INTEGER NOT NULL DEFAULT 0,
                received_at BIGINT NOT NULL,
                received_day TEXT NOT NULL,
                closed_at BIGINT,
                closed_day TEXT,
                substantiated INTEGER,
                late_stages INTEGER NOT NULL DEFAULT 0,
                version INTEGER NOT NULL,
                position BIGINT NOT NULL
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS complaint_board_due ON complaint_board (due_at)")
        cur.execute("CREATE INDEX IF NOT EXISTS complaint_board_dept ON complaint_board (department, received_day)")
        cur.execute("CREATE INDEX IF NOT EXISTS complaint_board_day ON complaint_board (received_day)")

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        cid = str(event.originator_id)
        at = event.timestamp
        if isinstance(event, Complaint.Received):
            cur.execute(
                "INSERT INTO complaint_board (complaint_id, complaint_no, channel, department, window_code, staff_code,"
                " case_no, status, stage, due_at, received_at, received_day, version, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'received', 'accept', ?, ?, ?, ?, ?)",
                (cid, event.complaint_no, event.channel, event.department, event.window, event.staff, event.case_no,
                 us(event.due_at), us(event.received_at), local_day(event.received_at), event.originator_version,
                 notification_id))
            return
        sets: dict[str, Any] = {"version": event.originator_version, "position": notification_id}
        late = "late_stages + CASE WHEN due_at < ? THEN 1 ELSE 0 END"
        if isinstance(event, Complaint.Warned):
            cur.execute("UPDATE complaint_board SET warned_stage = ?, warnings = warnings + 1, version = ?, position = ?"
                        " WHERE complaint_id = ?", (event.stage, event.originator_version, notification_id, cid))
            return
        if isinstance(event, (Complaint.Accepted, Complaint.Assigned, Complaint.Investigated)):
            status = {Complaint.Accepted: "accepted", Complaint.Assigned: "assigned",
                      Complaint.Investigated: "investigated"}[type(event)]
            sets.update(status=status, stage=STAGE_OF[status], due_at=us(event.due_at))
        elif isinstance(event, Complaint.NotAccepted):
            sets.update(status="not_accepted", stage=None, due_at=None, closed_at=us(at), closed_day=local_day(at))
        elif isinstance(event, Complaint.Concluded):
            sets.update(status="concluded", stage=None, due_at=None, closed_at=us(at), closed_day=local_day(at),
                        substantiated=1 if event.substantiated else 0)
        else:  # pragma: no cover - the topics filter the rest
            return
        assignments = ", ".join(f"{k} = ?" for k in sets)
        cur.execute(f"UPDATE complaint_board SET late_stages = {late}, {assignments} WHERE complaint_id = ?",
                    (us(at), *sets.values(), cid))


def _row(r: Iterable[Any]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, r))
    for k in ("due_at", "received_at", "closed_at"):
        d[k] = from_us(d[k])
    d["window"] = d.pop("window_code")
    d["staff"] = d.pop("staff_code")
    d["id"] = d.pop("complaint_id")
    d["substantiated"] = None if d["substantiated"] is None else bool(d["substantiated"])
    return d


def rows(cur: Cursor, *, departments: list[str] | None = None, statuses: list[str] | None = None,
         late_at: datetime | None = None, staff: str | None = None, limit: int = 100,
         offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page), newest received first. ``late_at``: only those open past their stage's
    deadline at that instant."""
    where, params = ["1 = 1"], []
    if departments is not None:
        if not departments:
            return 0, []
        where.append(f"department IN ({', '.join('?' for _ in departments)})")
        params += departments
    if statuses:
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params += statuses
    if staff is not None:
        where.append("staff_code = ?")
        params.append(staff)
    if late_at is not None:
        where.append("due_at IS NOT NULL AND due_at < ?")
        params.append(us(late_at))
    clause = " AND ".join(where)
    total = cur.execute(f"SELECT COUNT(*) FROM complaint_board WHERE {clause}", params).fetchone()[0]
    found = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM complaint_board WHERE {clause}"
                        " ORDER BY received_at DESC, complaint_no LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    return int(total), [_row(r) for r in found]


def overdue(cur: Cursor, now: datetime, limit: int = 1000) -> list[str]:
    """Ids of open complaints past their stage's deadline and not yet warned for that stage."""
    return [r[0] for r in cur.execute(
        "SELECT complaint_id FROM complaint_board WHERE due_at IS NOT NULL AND due_at < ?"
        " AND (warned_stage IS NULL OR warned_stage <> stage) ORDER BY due_at LIMIT ?", (us(now), limit)).fetchall()]


def counts(cur: Cursor, group_by: str, day_from: str, day_to: str,
           departments: frozenset[str] | None = None) -> dict[tuple[Any, ...], dict[str, int]]:
    """Complaints received in the period (not counting those not accepted: 不予受理), and how many
    were substantiated, grouped like the performance view's rows."""
    keys = GROUP_COLUMNS[group_by]
    where, params = ["received_day >= ?", "received_day <= ?", "status <> 'not_accepted'"], [day_from, day_to]
    if departments is not None:
        if not departments:
            return {}
        where.append(f"department IN ({', '.join('?' for _ in departments)})")
        params += sorted(departments)
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in cur.execute(
            f"SELECT {', '.join(keys)}, COUNT(*), SUM(CASE WHEN substantiated = 1 THEN 1 ELSE 0 END)"
            f" FROM complaint_board WHERE {' AND '.join(where)} GROUP BY {', '.join(keys)}", params).fetchall():
        out[tuple(row[:len(keys)])] = {"complaints": int(row[len(keys)]), "complaints_substantiated": int(row[-1] or 0)}
    return out


def summary(cur: Cursor, day_from: str, day_to: str, now: datetime) -> dict[str, Any]:
    """The dashboard's and the demo's figures for a period (by the day received)."""
    by_status = dict(cur.execute("SELECT status, COUNT(*) FROM complaint_board WHERE received_day >= ? AND"
                                 " received_day <= ? GROUP BY status", (day_from, day_to)).fetchall())
    channels = dict(cur.execute("SELECT channel, COUNT(*) FROM complaint_board WHERE received_day >= ? AND"
                                " received_day <= ? GROUP BY channel", (day_from, day_to)).fetchall())
    substantiated, warned, late = cur.execute(
        "SELECT SUM(CASE WHEN substantiated = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN warnings > 0 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN due_at IS NOT NULL AND due_at < ? THEN 1 ELSE 0 END) FROM complaint_board"
        " WHERE received_day >= ? AND received_day <= ?", (us(now), day_from, day_to)).fetchone()
    return {"received": int(sum(by_status.values())), "by_status": {k: int(v) for k, v in by_status.items()},
            "by_channel": {k: int(v) for k, v in channels.items()}, "substantiated": int(substantiated or 0),
            "warned": int(warned or 0), "late_now": int(late or 0)}

"""The notice board (督察意见 → 整改): one row per notice and one per problem it lists.

Only this module reads or writes ``notice_board`` and ``notice_problems``; others call its query
functions: ``notices`` (the board), ``overdue`` (notices with a problem open past its deadline
and not yet warned for it, for the warning sweep) and ``summary`` (the dashboard's and the
demo's counts). Instants are integer epoch microseconds (projections/instants.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.notice import NOTICE_TOPICS, SupervisionNotice
from projections.instants import from_us, us
from projections.calendars import local_day
from projections.runner import View
from projections.store import Cursor

VIEW = "notices"
NOTICE_COLUMNS = ("notice_id", "notice_no", "department", "title", "status", "issued_at", "closed_at", "problems",
                  "closed_problems", "round", "inspector", "inspected", "version")
PROBLEM_COLUMNS = ("notice_no", "problem_no", "source", "ref", "status", "due_at", "reported_at", "closed_at",
                   "returns", "warnings")


class NoticeBoard(View):
    name = VIEW
    version = 1
    tables = ("notice_board", "notice_problems")
    topics = NOTICE_TOPICS

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS notice_board (
                notice_id TEXT PRIMARY KEY,
                notice_no TEXT NOT NULL UNIQUE,
                department TEXT NOT NULL,
                title TEXT NOT NULL,
                status TEXT NOT NULL,
                issued_at BIGINT NOT NULL,
                issued_day TEXT NOT NULL,
                closed_at BIGINT,
                problems INTEGER NOT NULL,
                closed_problems INTEGER NOT NULL DEFAULT 0,
                round TEXT,
                inspector TEXT,
                inspected TEXT,
                version INTEGER NOT NULL,
                position BIGINT NOT NULL
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS notice_board_day ON notice_board (issued_day)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS notice_problems (
                notice_id TEXT NOT NULL,
                problem_no INTEGER NOT NULL,
                notice_no TEXT NOT NULL,
                department TEXT NOT NULL,
                source TEXT NOT NULL,
                ref TEXT,
                status TEXT NOT NULL,
                due_at BIGINT NOT NULL,
                warned_due BIGINT,
                warnings INTEGER NOT NULL DEFAULT 0,
                reported_at BIGINT,
                closed_at BIGINT,
                closed_day TEXT,
                returns INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (notice_id, problem_no)
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS notice_problems_due ON notice_problems (status, due_at)")

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        nid = str(event.originator_id)
        at = us(event.timestamp)
        if isinstance(event, SupervisionNotice.Issued):
            insp = event.inspection or {}
            cur.execute(
                "INSERT INTO notice_board (notice_id, notice_no, department, title, status, issued_at, issued_day,"
                " problems, round, inspector, inspected, version, position) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?)",
                (nid, event.notice_no, event.department, event.title, at, local_day(event.timestamp),
                 len(event.problems), insp.get("round"), insp.get("inspector"), insp.get("inspected"),
                 event.originator_version, notification_id))
            cur.executemany(
                "INSERT INTO notice_problems (notice_id, problem_no, notice_no, department, source, ref, status, due_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                [(nid, p["no"], event.notice_no, event.department, p["source"], p.get("ref"), us(p["due_at"]))
                 for p in event.problems])
            return
        key = (nid, event.problem_no)
        if isinstance(event, SupervisionNotice.Reported):
            cur.execute("UPDATE notice_problems SET status = 'reported', reported_at = ? WHERE notice_id = ? AND problem_no = ?",
                        (at, *key))
        elif isinstance(event, SupervisionNotice.Verified):
            cur.execute("UPDATE notice_problems SET status = 'closed', closed_at = ?, closed_day = ?"
                        " WHERE notice_id = ? AND problem_no = ?", (at, local_day(event.timestamp), *key))
            cur.execute("UPDATE notice_board SET closed_problems = closed_problems + 1 WHERE notice_id = ?", (nid,))
            cur.execute("UPDATE notice_board SET status = 'closed', closed_at = ? WHERE notice_id = ?"
                        " AND closed_problems = problems", (at, nid))
        elif isinstance(event, SupervisionNotice.SentBack):
            cur.execute("UPDATE notice_problems SET status = 'open', due_at = ?, returns = returns + 1"
                        " WHERE notice_id = ? AND problem_no = ?", (us(event.due_at), *key))
        elif isinstance(event, SupervisionNotice.Warned):
            cur.execute("UPDATE notice_problems SET warned_due = ?, warnings = warnings + 1"
                        " WHERE notice_id = ? AND problem_no = ?", (us(event.due_at), *key))
        cur.execute("UPDATE notice_board SET version = ?, position = ? WHERE notice_id = ?",
                    (event.originator_version, notification_id, nid))


def notices(cur: Cursor, *, departments: list[str] | None = None, status: str | None = None,
            round: str | None = None, now: datetime | None = None, limit: int = 100,
            offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page) newest first, each with its problems and, given ``now``, which are late."""
    where, params = ["1 = 1"], []
    if departments is not None:
        if not departments:
            return 0, []
        where.append(f"department IN ({', '.join('?' for _ in departments)})")
        params += departments
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if round is not None:
        where.append("round = ?")
        params.append(round)
    clause = " AND ".join(where)
    total = cur.execute(f"SELECT COUNT(*) FROM notice_board WHERE {clause}", params).fetchone()[0]
    found = [dict(zip(NOTICE_COLUMNS, r)) for r in cur.execute(
        f"SELECT {', '.join(NOTICE_COLUMNS)} FROM notice_board WHERE {clause} ORDER BY issued_at DESC, notice_no"
        " LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()]
    ids = [n["notice_id"] for n in found]
    problems: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for r in cur.execute(f"SELECT notice_id, {', '.join(PROBLEM_COLUMNS)} FROM notice_problems WHERE notice_id IN"
                             f" ({', '.join('?' for _ in ids)}) ORDER BY problem_no", ids).fetchall():
            p = dict(zip(PROBLEM_COLUMNS, r[1:]))
            p["late"] = now is not None and p["status"] == "open" and p["due_at"] < us(now)
            for k in ("due_at", "reported_at", "closed_at"):
                p[k] = from_us(p[k])
            problems.setdefault(r[0], []).append(p)
    out = []
    for n in found:
        n["id"] = n.pop("notice_id")
        n["issued_at"], n["closed_at"] = from_us(n["issued_at"]), from_us(n["closed_at"])
        n["problem_list"] = problems.get(n["id"], [])
        n["late_problems"] = sum(1 for p in n["problem_list"] if p["late"])
        out.append(n)
    return int(total), out


def overdue(cur: Cursor, now: datetime, limit: int = 1000) -> list[str]:
    """Ids of notices with a problem open past its deadline and not yet warned for that deadline."""
    return [r[0] for r in cur.execute(
        "SELECT DISTINCT notice_id FROM notice_problems WHERE status = 'open' AND due_at < ?"
        " AND (warned_due IS NULL OR warned_due <> due_at) LIMIT ?", (us(now), limit)).fetchall()]


def summary(cur: Cursor, day_from: str, day_to: str, now: datetime) -> dict[str, Any]:
    """Notices issued in the period (by the day issued) and their problems: rectified (verified and
    closed), awaiting verification, open, late now; and the mutual-inspection rounds."""
    issued, closed, problems = cur.execute(
        "SELECT COUNT(*), SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END), SUM(problems) FROM notice_board"
        " WHERE issued_day >= ? AND issued_day <= ?", (day_from, day_to)).fetchone()
    by = dict(cur.execute(
        "SELECT p.status, COUNT(*) FROM notice_problems p JOIN notice_board n ON n.notice_id = p.notice_id"
        " WHERE n.issued_day >= ? AND n.issued_day <= ? GROUP BY p.status", (day_from, day_to)).fetchall())
    sources = dict(cur.execute(
        "SELECT p.source, COUNT(*) FROM notice_problems p JOIN notice_board n ON n.notice_id = p.notice_id"
        " WHERE n.issued_day >= ? AND n.issued_day <= ? GROUP BY p.source", (day_from, day_to)).fetchall())
    late, warned = cur.execute(
        "SELECT SUM(CASE WHEN p.status = 'open' AND p.due_at < ? THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN p.warnings > 0 THEN 1 ELSE 0 END) FROM notice_problems p JOIN notice_board n"
        " ON n.notice_id = p.notice_id WHERE n.issued_day >= ? AND n.issued_day <= ?",
        (us(now), day_from, day_to)).fetchone()
    rounds = cur.execute("SELECT COUNT(DISTINCT round) FROM notice_board WHERE round IS NOT NULL AND issued_day >= ?"
                         " AND issued_day <= ?", (day_from, day_to)).fetchone()[0]
    return {"notices": int(issued or 0), "closed_notices": int(closed or 0), "problems": int(problems or 0),
            "rectified": int(by.get("closed", 0)), "reported": int(by.get("reported", 0)),
            "open": int(by.get("open", 0)), "late_now": int(late or 0), "warned": int(warned or 0),
            "by_source": {k: int(v) for k, v in sources.items()}, "inspection_rounds": int(rounds or 0)}

"""The bundle view (并联审批): one row per bundle and one per part, from the bundles' own events
and the part cases' steps (``domain.case.STEP_TOPICS``).

A part's row follows its case's steps (status, promised deadline, closing, on time). A part case
may have been reported before its bundle was submitted: at ``Submitted`` the view reads the part
case's state as it stands (``load_case``, a constructor dependency) and records the case version
it read; steps at or below that version are then not applied again, so the row never goes back
and a replay from the start ends where live following does.

Warnings and anomalies of bundles are rules over these rows, evaluated when asked (``alerts``,
``anomalies``): a bundle turns yellow when most of its own promised time is used, red when its
promised deadline passes, severe at its legal one, however its parts stand; a part open past its
own promise or concluded late makes the bundle late too. Instants are integer microseconds
(``projections/instants.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Sequence

from domain.bundle import BUNDLE_TOPICS, Bundle, bundle_thresholds, read_part_step
from domain.calendar import WorkingCalendar
from domain.case import STEP_TOPICS, case_id
from domain.channel import ChannelTerms
from domain.errors import CalendarUnknown
from domain.limits import Limit, Unit
from projections.calendars import local_day
from projections.instants import from_us, us
from projections.runner import View
from projections.store import Cursor

BOARD_COLUMNS = ("bundle_no", "channel", "channel_name", "department", "center", "status", "parts_total",
                 "parts_closed", "late_parts", "submitted_at", "accepted_at", "promised_due_at", "legal_due_at",
                 "yellow_at", "concluded_at", "on_time", "within_legal", "over_limit", "used_hours",
                 "used_working_days", "serial_working_days", "enterprise", "project", "submitted_day", "concluded_day")
PART_COLUMNS = ("case_no", "bundle_no", "department", "item_code", "status", "version", "promised_due_at",
                "closed_at", "on_time")
INSTANTS = {"submitted_at", "accepted_at", "promised_due_at", "legal_due_at", "yellow_at", "concluded_at", "closed_at"}
BOOLS = {"on_time", "within_legal", "over_limit"}


def _packaged_calendar(center: str | None) -> WorkingCalendar:
    from infra.calendar_source import default_calendar

    return default_calendar()


class BundleView(View):
    name = "bundles"
    version = 1
    tables = ("bundle_board", "bundle_parts")
    topics = BUNDLE_TOPICS + STEP_TOPICS

    def __init__(self, load_case: Callable[[str], Any] | None = None,
                 calendar_for: Callable[[str | None], WorkingCalendar] | None = None) -> None:
        self.load_case = load_case or (lambda case_no: None)
        self.calendar_for = calendar_for or _packaged_calendar
        self._parts: set[str] | None = None  # the part cases' ids (most steps are of no bundle's part)

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS bundle_board (
                bundle_no TEXT PRIMARY KEY,
                bundle_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                promised_value INTEGER NOT NULL,
                promised_unit TEXT NOT NULL,
                legal_value INTEGER NOT NULL,
                legal_unit TEXT NOT NULL,
                channel_name TEXT NOT NULL,
                department TEXT NOT NULL,
                center TEXT,
                status TEXT NOT NULL,
                parts_total INTEGER NOT NULL,
                parts_closed INTEGER NOT NULL DEFAULT 0,
                late_parts INTEGER NOT NULL DEFAULT 0,
                submitted_at BIGINT NOT NULL,
                accepted_at BIGINT,
                promised_due_at BIGINT,
                legal_due_at BIGINT,
                yellow_at BIGINT,
                concluded_at BIGINT,
                on_time INTEGER,
                within_legal INTEGER,
                over_limit INTEGER,
                used_hours DOUBLE PRECISION,
                used_working_days DOUBLE PRECISION,
                serial_working_days DOUBLE PRECISION,
                enterprise TEXT,
                project TEXT,
                submitted_day TEXT NOT NULL,
                concluded_day TEXT,
                position BIGINT NOT NULL
            )"""
        )
        cur.execute("CREATE UNIQUE INDEX IF NOT EXISTS bundle_board_id ON bundle_board (bundle_id)")
        cur.execute("CREATE INDEX IF NOT EXISTS bundle_board_channel ON bundle_board (channel, submitted_day)")
        cur.execute("CREATE INDEX IF NOT EXISTS bundle_board_open ON bundle_board (status, promised_due_at)")
        cur.execute(
            """CREATE TABLE IF NOT EXISTS bundle_parts (
                case_id TEXT PRIMARY KEY,
                case_no TEXT NOT NULL,
                bundle_no TEXT NOT NULL,
                department TEXT,
                item_code TEXT,
                status TEXT NOT NULL,
                version INTEGER NOT NULL DEFAULT 0,
                promised_due_at BIGINT,
                closed_at BIGINT,
                on_time INTEGER
            )"""
        )
        cur.execute("CREATE INDEX IF NOT EXISTS bundle_parts_bundle ON bundle_parts (bundle_no)")

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        if isinstance(event, Bundle.Event):
            self._bundle(cur, event, notification_id)
            return
        case_key = str(event.originator_id)
        if self._parts is None:
            self._parts = {r[0] for r in cur.execute("SELECT case_id FROM bundle_parts").fetchall()}
        if case_key not in self._parts:
            return
        row = cur.execute("SELECT version FROM bundle_parts WHERE case_id = ?", (case_key,)).fetchone()
        if row is None or event.originator_version <= row[0]:
            return  # not a part of any bundle, or already read from the case itself
        part = read_part_step(event, None)
        if part is None:
            return
        sets: dict[str, Any] = {"version": part.version, "status": part.step}
        if part.step == "submitted":
            sets.update(department=part.department, item_code=part.item_code)
        if part.step in ("undertaken", "reviewed", "decided", "delivered", "rated", "fee_charged", "suspended",
                         "resumed", "extended", "supplement_received"):
            sets.pop("status")  # the part's stage, as the case board keeps it: these do not close or open it
            if part.step == "supplement_received":
                sets["status"] = "supplemented"
        if part.promised_due_at is not None:
            sets["promised_due_at"] = us(part.promised_due_at)
        if part.step in ("concluded", "refused", "withdrawn"):
            sets["closed_at"] = us(part.occurred_at)
            if part.step == "concluded" and part.on_time is not None:
                sets["on_time"] = int(part.on_time)
        assignments = ", ".join(f"{k} = ?" for k in sets)
        cur.execute(f"UPDATE bundle_parts SET {assignments} WHERE case_id = ?", (*sets.values(), case_key))

    def _bundle(self, cur: Cursor, e: Any, position: int) -> None:
        if isinstance(e, Bundle.Submitted):
            terms = ChannelTerms.from_dict(e.channel)
            cur.execute(
                "INSERT INTO bundle_board (bundle_no, bundle_id, channel, promised_value, promised_unit, legal_value,"
                " legal_unit, channel_name, department, center, status, parts_total, submitted_at, enterprise, project,"
                " submitted_day, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?, ?, ?, ?, ?)",
                (e.bundle_no, str(e.originator_id), terms.code, terms.promised_limit.value, terms.promised_limit.unit.value,
                 terms.legal_limit.value, terms.legal_limit.unit.value, terms.name, terms.department, terms.center, len(e.parts), us(e.occurred_at),
                 e.enterprise, e.project, local_day(e.occurred_at), position),
            )
            if self._parts is None:
                self._parts = {r[0] for r in cur.execute("SELECT case_id FROM bundle_parts").fetchall()}
            for case_no in e.parts:
                self._parts.add(str(case_id(case_no)))
                cur.execute("DELETE FROM bundle_parts WHERE case_id = ?", (str(case_id(case_no)),))
                cur.execute(
                    "INSERT INTO bundle_parts (case_id, case_no, bundle_no, department, item_code, status, version,"
                    " promised_due_at, closed_at, on_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(case_id(case_no)), case_no, e.bundle_no, *self._snapshot(case_no)),
                )
            return
        row = cur.execute("SELECT bundle_no, center, promised_value, promised_unit, legal_value, legal_unit"
                          " FROM bundle_board WHERE bundle_id = ?", (str(e.originator_id),)).fetchone()
        if row is None:
            return
        no = row[0]
        if isinstance(e, Bundle.Accepted):
            yellow = None
            promised, legal = Limit(row[2], Unit(row[3])), Limit(row[4], Unit(row[5]))
            try:
                ts = bundle_thresholds(e.occurred_at, promised, legal, e.promised_due_at, e.legal_due_at,
                                       self.calendar_for(row[1]))
                yellow = next((t.at for t in ts if t.rule == "yellow"), None)
            except CalendarUnknown:
                pass
            cur.execute("UPDATE bundle_board SET status = 'accepted', accepted_at = ?, promised_due_at = ?,"
                        " legal_due_at = ?, yellow_at = ?, position = ? WHERE bundle_no = ?",
                        (us(e.occurred_at), us(e.promised_due_at), us(e.legal_due_at), us(yellow), position, no))
        elif isinstance(e, Bundle.PartClosed):
            cur.execute("UPDATE bundle_board SET parts_closed = parts_closed + 1, late_parts = late_parts + ?,"
                        " position = ? WHERE bundle_no = ?", (int(e.on_time is False), position, no))
        elif isinstance(e, Bundle.Concluded):
            cur.execute(
                "UPDATE bundle_board SET status = 'concluded', concluded_at = ?, on_time = ?, within_legal = ?,"
                " over_limit = ?, used_hours = ?, used_working_days = ?, serial_working_days = ?, concluded_day = ?,"
                " position = ? WHERE bundle_no = ?",
                (us(e.occurred_at), None if e.on_time is None else int(e.on_time),
                 None if e.within_legal is None else int(e.within_legal), int(e.over_limit), e.used_hours,
                 e.used_working_days, e.serial_working_days, local_day(e.occurred_at), position, no))

    def _snapshot(self, case_no: str) -> tuple[Any, ...]:
        """The part case's state as it stands now (it may have been reported before the bundle)."""
        case = self.load_case(case_no)
        if case is None:
            return (None, None, "not_reported", 0, None, None, None)
        return (case.department or None, case.item_code or None, case.status, case.version,
                us(case.promised_due_at), us(case.closed_at), None if case.on_time is None else int(case.on_time))

    def forget(self) -> None:
        self._parts = None


# -- queries (the only readers of this view's tables) ------------------------------------------


def _row(cols: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in zip(cols, values):
        if k in INSTANTS:
            v = from_us(v)
        elif k in BOOLS and v is not None:
            v = bool(v)
        out[k] = v
    return out


def parts_of(cur: Cursor, bundle_nos: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in bundle_nos}
    if not bundle_nos:
        return out
    marks = ", ".join("?" for _ in bundle_nos)
    for r in cur.execute(f"SELECT {', '.join(PART_COLUMNS)} FROM bundle_parts WHERE bundle_no IN ({marks})"
                         " ORDER BY bundle_no, case_no", tuple(bundle_nos)).fetchall():
        row = _row(PART_COLUMNS, r)
        row.pop("version")
        out[row.pop("bundle_no")].append(row)
    return out


def list_bundles(cur: Cursor, *, now: datetime, channel: str | None = None, status: str | None = None,
                 late: bool | None = None, departments: Sequence[str] | None = None, limit: int = 100,
                 offset: int = 0, bundle_no: str | None = None) -> list[dict[str, Any]]:
    """Bundles, newest first, each with its parts and whether it is late now. Department keys
    (``departments``) see the bundles of their channels or with a part of theirs."""
    where, params = [], []
    if bundle_no:
        where.append("b.bundle_no = ?")
        params.append(bundle_no)
    if channel:
        where.append("b.channel = ?")
        params.append(channel)
    if status == "open":
        where.append("b.status <> 'concluded'")
    elif status:
        where.append("b.status = ?")
        params.append(status)
    if departments is not None:
        marks = ", ".join("?" for _ in departments) or "NULL"
        where.append(f"(b.department IN ({marks}) OR EXISTS (SELECT 1 FROM bundle_parts p WHERE p.bundle_no ="
                     f" b.bundle_no AND p.department IN ({marks})))")
        params += [*departments, *departments]
    if late is not None:
        n = us(now)
        cond = ("(b.late_parts > 0 OR (b.promised_due_at IS NOT NULL AND COALESCE(b.concluded_at, ?) > b.promised_due_at)"
                " OR EXISTS (SELECT 1 FROM bundle_parts p WHERE p.bundle_no = b.bundle_no AND p.closed_at IS NULL"
                " AND p.promised_due_at IS NOT NULL AND p.promised_due_at < ?))")
        where.append(cond if late else f"NOT {cond}")
        params += [n, n]
    sql = f"SELECT {', '.join('b.' + c for c in BOARD_COLUMNS)} FROM bundle_board b"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY b.submitted_at DESC, b.bundle_no LIMIT ? OFFSET ?"
    rows = [_row(BOARD_COLUMNS, r) for r in cur.execute(sql, (*params, int(limit), int(offset))).fetchall()]
    parts = parts_of(cur, [r["bundle_no"] for r in rows])
    for r in rows:
        r["parts"] = parts[r["bundle_no"]]
        r.update(_judge(r, now))
    return rows


def _judge(r: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The bundle's state now: its level (yellow / red / severe by its own limit) and lateness."""
    end = r["concluded_at"] or now
    level = None
    for key, name in (("yellow_at", "yellow"), ("promised_due_at", "red"), ("legal_due_at", "severe")):
        if r[key] is not None and end > r[key]:
            level = name
    overdue_parts = [p["case_no"] for p in r["parts"] if p["on_time"] is False
                     or (p["closed_at"] is None and p["promised_due_at"] is not None and now > p["promised_due_at"])]
    late = bool(r["late_parts"]) or bool(overdue_parts) or (r["promised_due_at"] is not None and end > r["promised_due_at"])
    return {"level": level, "late": late, "late_parts_now": overdue_parts}


def alerts(cur: Cursor, now: datetime, departments: Sequence[str] | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Warnings of bundles and of their parts, as they stand at ``now``: a bundle's own yellow /
    red / severe (its clock passed the threshold; concluded ones by their conclusion), and each
    part open past its own promise or concluded late (``part_late``)."""
    out = []
    for r in list_bundles(cur, now=now, late=None, departments=departments, limit=limit):
        if r["level"] and (r["status"] != "concluded" or r["level"] in ("red", "severe")):
            at = {"yellow": r["yellow_at"], "red": r["promised_due_at"], "severe": r["legal_due_at"]}[r["level"]]
            out.append({"bundle_no": r["bundle_no"], "channel": r["channel"], "case_no": None, "level": r["level"],
                        "rule": f"bundle:{r['level']}", "threshold_at": at, "department": r["department"]})
        for case_no in r["late_parts_now"]:
            part = next(p for p in r["parts"] if p["case_no"] == case_no)
            out.append({"bundle_no": r["bundle_no"], "channel": r["channel"], "case_no": case_no, "level": "red",
                        "rule": "bundle:part_late", "threshold_at": part["promised_due_at"],
                        "department": part["department"]})
    return sorted(out, key=lambda a: (a["threshold_at"] is None, a["threshold_at"] or now))


ANOMALY_RULES = {
    "bundle_part_late": ("时效", "并联审批件的子件超时 (a part concluded after its own promise: the bundle is late)"),
    "bundle_over_limit": ("时效", "并联审批件超出通道承诺时限 (the bundle passed its own promise, though each part may be in time)"),
    "bundle_legal_exceeded": ("督办", "并联审批件超出法定时限 (the bundle passed its legal limit)"),
}


def anomalies(cur: Cursor, now: datetime, departments: Sequence[str] | None = None,
              bundle_no: str | None = None) -> list[dict[str, Any]]:
    """The bundle anomalies, each with its evidence (the late parts, the deadline and when the
    bundle concluded or that it is still open)."""
    out = []
    for r in list_bundles(cur, now=now, late=True, departments=departments, limit=10_000, bundle_no=bundle_no):
        end = r["concluded_at"] or now
        evidence = {"promised_due_at": r["promised_due_at"], "legal_due_at": r["legal_due_at"],
                    "concluded_at": r["concluded_at"], "parts": len(r["parts"])}
        if r["late_parts_now"]:
            out.append({"bundle_no": r["bundle_no"], "rule": "bundle_part_late", "type": ANOMALY_RULES["bundle_part_late"][0],
                        "reason": ANOMALY_RULES["bundle_part_late"][1], "evidence": {**evidence, "late_parts": r["late_parts_now"]}})
        if r["promised_due_at"] is not None and end > r["promised_due_at"]:
            out.append({"bundle_no": r["bundle_no"], "rule": "bundle_over_limit", "type": ANOMALY_RULES["bundle_over_limit"][0],
                        "reason": ANOMALY_RULES["bundle_over_limit"][1], "evidence": evidence})
        if r["legal_due_at"] is not None and end > r["legal_due_at"]:
            out.append({"bundle_no": r["bundle_no"], "rule": "bundle_legal_exceeded",
                        "type": ANOMALY_RULES["bundle_legal_exceeded"][0], "reason": ANOMALY_RULES["bundle_legal_exceeded"][1],
                        "evidence": evidence})
    return out


def channel_metrics(cur: Cursor, day_from: str | None = None, day_to: str | None = None) -> list[dict[str, Any]]:
    """Per channel: volume (bundles submitted in the period), parts (items handled), distinct
    enterprises and projects, concluded, on-time rate, average time used (office hours and
    working days, from acceptance to the last part), and working days saved: for each concluded
    bundle, the serial sum of its parts' promised working days less the working days it used."""
    where, params = [], []
    if day_from:
        where.append("submitted_day >= ?")
        params.append(day_from)
    if day_to:
        where.append("submitted_day <= ?")
        params.append(day_to)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = cur.execute(
        "SELECT channel, MAX(channel_name), COUNT(*), SUM(parts_total), COUNT(DISTINCT enterprise), COUNT(DISTINCT project),"
        " SUM(CASE WHEN status = 'concluded' THEN 1 ELSE 0 END), SUM(CASE WHEN on_time = 1 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN on_time IS NOT NULL THEN 1 ELSE 0 END), AVG(used_hours), AVG(used_working_days),"
        " SUM(CASE WHEN status = 'concluded' AND used_working_days IS NOT NULL"
        "      THEN serial_working_days - used_working_days ELSE 0 END),"
        " SUM(CASE WHEN status = 'concluded' THEN serial_working_days ELSE 0 END),"
        " MAX(promised_value), MAX(promised_unit)"
        f" FROM bundle_board{clause} GROUP BY channel ORDER BY channel", tuple(params)).fetchall()
    out = []
    for (ch, name, volume, parts, ents, projects, concluded, on_time, judged, avg_h, avg_d, saved, serial,
         p_value, p_unit) in rows:
        out.append({
            "channel": ch, "name": name, "volume": volume, "parts": parts or 0, "enterprises": ents, "projects": projects,
            "concluded": concluded, "on_time_rate": round(100.0 * on_time / judged, 1) if judged else None,
            "average_hours": round(avg_h, 2) if avg_h is not None else None,
            "average_working_days": round(avg_d, 2) if avg_d is not None else None,
            "working_days_saved": round(saved or 0, 1), "serial_working_days": round(serial or 0, 1),
            "promised_limit": {"value": p_value, "unit": p_unit},
        })
    return out

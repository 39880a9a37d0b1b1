"""Performance (绩效): one fact row per case, from which every DOMAIN.md formula is summed.

A row holds the case's dimensions (department, window, staff, item and its catalogue terms),
the local dates that place it in a period (received, closed, rated), and what is known of its
outcome: on time, within the legal limit, concluded the day it was accepted (当场办结), early,
the time it actually used net of special procedures, its rating. Every figure is then a sum
over rows (``services/metrics.py``), so any grouping (center, hall, department, window,
staff, item, day) and any period work, and halls and centers follow the organisation (window
→ hall → center) at query time.

Which day a case counts on: volume (办件量) and the promised speed-up on the day it was
received; completion figures on the day it was closed; satisfaction on the day it was rated.
Staff is who accepted the case (受理人), else who received it. Instants are epoch seconds,
days are ISO dates in China time.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

from domain.calendar import CHINA_TZ
from domain.catalogue import ItemVersion
from domain.errors import CalendarUnknown
from domain.limits import Unit
from projections.anomalies import CASE_TOPICS
from projections.calendars import Calendars, local_day
from projections.case_board import epoch
from projections.runner import View
from projections.store import Cursor


class PerformanceView(View):
    name = "performance"
    topics = CASE_TOPICS
    tables = ("perf_cases",)

    def __init__(self, calendars: Calendars | None = None) -> None:
        self.calendars = calendars or Calendars()

    def bind(self, store: Any = None, reference: Any = None) -> None:
        if reference is not None:
            self.calendars.bind(reference)

    def create(self, cur: Cursor) -> None:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS perf_cases (
                case_id TEXT PRIMARY KEY,
                case_no TEXT NOT NULL,
                department TEXT NOT NULL,
                window_code TEXT,
                staff_code TEXT,
                item_code TEXT NOT NULL,
                item_version INTEGER,
                on_the_spot INTEGER NOT NULL,
                legal_value INTEGER NOT NULL,
                legal_unit TEXT NOT NULL,
                promised_value INTEGER NOT NULL,
                promised_unit TEXT NOT NULL,
                speed_promised DOUBLE PRECISION,
                submitted_at DOUBLE PRECISION NOT NULL,
                submitted_day TEXT NOT NULL,
                accepted_at DOUBLE PRECISION,
                accepted_day TEXT,
                closed_step TEXT,
                closed_at DOUBLE PRECISION,
                closed_day TEXT,
                on_time INTEGER,
                within_legal INTEGER,
                same_day INTEGER,
                early INTEGER,
                handling_seconds DOUBLE PRECISION,
                used_legal DOUBLE PRECISION,
                used_promised DOUBLE PRECISION,
                speed_actual DOUBLE PRECISION,
                promised_extra TEXT NOT NULL DEFAULT '0',
                legal_extra TEXT NOT NULL DEFAULT '0',
                suspended_promised TEXT NOT NULL DEFAULT '0',
                suspended_legal TEXT NOT NULL DEFAULT '0',
                suspensions INTEGER NOT NULL DEFAULT 0,
                extensions INTEGER NOT NULL DEFAULT 0,
                score INTEGER,
                rated_day TEXT
            )"""
        )
        for col in ("submitted_day", "closed_day", "rated_day"):
            cur.execute(f"CREATE INDEX IF NOT EXISTS perf_cases_{col} ON perf_cases ({col})")
        cur.execute("CREATE INDEX IF NOT EXISTS perf_cases_dept ON perf_cases (department, submitted_day)")

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        if not hasattr(event, "STEP"):
            return
        step = event.STEP.value
        case_id = str(event.originator_id)
        d = event.derived
        if step == "submitted":
            terms = d["terms"]
            cur.execute(
                "INSERT INTO perf_cases (case_id, case_no, department, window_code, staff_code, item_code, item_version,"
                " on_the_spot, legal_value, legal_unit, promised_value, promised_unit, speed_promised, submitted_at,"
                " submitted_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (case_id, event.case_no, event.actor["department"], event.actor.get("window"), event.actor.get("staff"),
                 event.data["item_code"], *_terms(terms), epoch(event.occurred_at), local_day(event.occurred_at)),
            )
            return
        if step == "accepted":
            sets: dict[str, Any] = {"accepted_at": epoch(event.occurred_at), "accepted_day": local_day(event.occurred_at)}
            if "terms" in d:
                sets.update(zip(("item_version", "on_the_spot", "legal_value", "legal_unit", "promised_value",
                                 "promised_unit", "speed_promised"), _terms(d["terms"])))
            if event.actor.get("staff"):
                sets["staff_code"] = event.actor["staff"]
            self._update(cur, case_id, sets)
        elif step == "suspended":
            cur.execute("UPDATE perf_cases SET suspensions = suspensions + 1 WHERE case_id = ?", (case_id,))
        elif step in ("resumed", "extended"):
            if "promised_extra" in d:
                self._extras(cur, case_id, d, suspension=step == "resumed")
            if step == "extended":
                cur.execute("UPDATE perf_cases SET extensions = extensions + 1 WHERE case_id = ?", (case_id,))
        elif step == "concluded":
            if "promised_extra" in d:  # concluded inside a special procedure: its time is not counted
                self._extras(cur, case_id, d, suspension=True)
            self._concluded(cur, case_id, event)
        elif step in ("refused", "withdrawn"):
            self._update(cur, case_id, {"closed_step": step, "closed_at": epoch(event.occurred_at),
                                        "closed_day": local_day(event.occurred_at)})
        elif step == "rated":
            self._update(cur, case_id, {"score": event.data["score"], "rated_day": local_day(event.occurred_at)})

    @staticmethod
    def _update(cur: Cursor, case_id: str, sets: dict[str, Any]) -> None:
        assignments = ", ".join(f"{k} = ?" for k in sets)
        cur.execute(f"UPDATE perf_cases SET {assignments} WHERE case_id = ?", (*sets.values(), case_id))

    def _extras(self, cur: Cursor, case_id: str, d: dict[str, Any], suspension: bool) -> None:
        """The domain's cumulative extras (suspensions and extensions, in each limit's unit):
        a change at a resumption is the special procedure's time; at an extension, not."""
        row = cur.execute(
            "SELECT promised_extra, legal_extra, suspended_promised, suspended_legal FROM perf_cases WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        if row is None:
            return
        new_p, new_l = Fraction(d["promised_extra"]), Fraction(d["legal_extra"])
        sus_p, sus_l = Fraction(row[2]), Fraction(row[3])
        if suspension:
            sus_p += new_p - Fraction(row[0])
            sus_l += new_l - Fraction(row[1])
        self._update(cur, case_id, {"promised_extra": str(new_p), "legal_extra": str(new_l),
                                    "suspended_promised": str(sus_p), "suspended_legal": str(sus_l)})

    def _concluded(self, cur: Cursor, case_id: str, event: Any) -> None:
        row = cur.execute(
            "SELECT department, window_code, on_the_spot, legal_value, legal_unit, promised_value, promised_unit,"
            " accepted_at, accepted_day, suspended_promised, suspended_legal FROM perf_cases WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        if row is None:
            return
        dept, window, spot, legal_v, legal_u, prom_v, prom_u, accepted_at, accepted_day, sus_p, sus_l = row
        at = event.occurred_at
        d = event.derived
        sets: dict[str, Any] = {
            "closed_step": "concluded", "closed_at": epoch(at), "closed_day": local_day(at),
            "on_time": None if d.get("on_time") is None else int(d["on_time"]),
            "within_legal": None if d.get("within_legal") is None else int(d["within_legal"]),
            "same_day": int(bool(spot) and accepted_day is not None and accepted_day == local_day(at)),
        }
        if accepted_at is not None:
            accepted = datetime.fromtimestamp(accepted_at, CHINA_TZ)
            sets["handling_seconds"] = max(0.0, at.timestamp() - accepted_at)
            cal = self.calendars.for_case(dept, window)
            try:
                used_l = max(Fraction(0), Fraction(cal.elapsed(accepted, at, Unit(legal_u))) - Fraction(sus_l))
                used_p = max(Fraction(0), Fraction(cal.elapsed(accepted, at, Unit(prom_u))) - Fraction(sus_p))
            except CalendarUnknown:
                used_l = used_p = None
            if used_l is not None and used_p is not None:
                sets["used_legal"] = float(used_l)
                sets["used_promised"] = float(used_p)
                if legal_v:
                    sets["speed_actual"] = float((legal_v - used_l) / legal_v)
                sets["early"] = int(bool(d.get("on_time")) and prom_v > 0 and used_p < prom_v)
        self._update(cur, case_id, sets)


def _terms(terms: dict[str, Any]) -> tuple[Any, ...]:
    v = ItemVersion.from_dict(terms)
    speed = v.speed_up
    return (v.version, int(v.on_the_spot), v.legal_limit.value, v.legal_limit.unit.value, v.promised_limit.value,
            v.promised_limit.unit.value, float(speed) if speed is not None else None)

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
Staff is who accepted the case (受理人), else who received it. Instants are µs since the epoch,
days are ISO dates in China time.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from domain.catalogue import ItemVersion
from domain.errors import CalendarUnknown
from domain.limits import Unit
from domain.case import STEP_TOPICS
from projections.calendars import Calendars, local_day
from projections.instants import fraction, from_us, us
from projections.runner import View
from projections.store import Cursor
from projections.case_board import KEEP
from projections.tables import Keyed

COLUMNS = ("case_id", "case_no", "department", "window_code", "staff_code", "item_code", "item_version", "on_the_spot",
           "legal_value", "legal_unit", "promised_value", "promised_unit", "speed_promised", "submitted_at",
           "submitted_day", "accepted_at", "accepted_day", "closed_step", "closed_at", "closed_day", "on_time",
           "within_legal", "same_day", "early", "handling_seconds", "used_legal", "used_promised", "speed_actual",
           "promised_extra", "legal_extra", "suspended_promised", "suspended_legal", "suspensions", "extensions",
           "score", "rated_day")
TERM_COLUMNS = ("item_version", "on_the_spot", "legal_value", "legal_unit", "promised_value", "promised_unit",
                "speed_promised")


class PerformanceView(View):
    name = "performance"
    version = 2  # 2: instants in microseconds (BIGINT)
    topics = STEP_TOPICS
    tables = ("perf_cases",)

    def __init__(self, calendars: Calendars) -> None:
        self.calendars = calendars
        self.rows = Keyed("perf_cases", COLUMNS, keep=KEEP)

    def forget(self) -> None:
        self.rows.clear()

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
                submitted_at BIGINT NOT NULL,
                submitted_day TEXT NOT NULL,
                accepted_at BIGINT,
                accepted_day TEXT,
                closed_step TEXT,
                closed_at BIGINT,
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

    # -- a batch ----------------------------------------------------------------------------------

    def begin(self, cur: Cursor, events: Sequence[Any]) -> None:
        self.rows.begin_batch()
        self.calendars.sync()
        self.rows.load(cur, {str(e.originator_id) for e in events})

    def flush(self, cur: Cursor) -> None:
        self.rows.flush(cur)

    def apply(self, event: Any, notification_id: int) -> None:
        step = event.STEP.value
        case_id = str(event.originator_id)
        row = self.rows.get(case_id)
        d = event.derived
        if step == "submitted":
            if row is not None:
                raise ValueError(f"case {event.case_no} is already in the performance view (submitted again?)")
            self.rows.put({
                "case_id": case_id, "case_no": event.case_no, "department": event.department,
                "window_code": event.window, "staff_code": event.staff,
                "item_code": event.item_code, **dict(zip(TERM_COLUMNS, _terms(event.terms))),
                "submitted_at": us(event.occurred_at), "submitted_day": local_day(event.occurred_at),
                "promised_extra": "0", "legal_extra": "0", "suspended_promised": "0", "suspended_legal": "0",
                "suspensions": 0, "extensions": 0,
            })
            return
        if row is None:
            return
        if step == "accepted":
            row.update(accepted_at=us(event.occurred_at), accepted_day=local_day(event.occurred_at))
            if event.terms is not None:
                row.update(zip(TERM_COLUMNS, _terms(event.terms)))
            if event.staff:
                row["staff_code"] = event.staff
        elif step == "suspended":
            row["suspensions"] += 1
        elif step in ("resumed", "extended"):
            if "promised_extra" in d:
                self._extras(row, d, suspension=step == "resumed")
            if step == "extended":
                row["extensions"] += 1
        elif step == "concluded":
            if "promised_extra" in d:  # concluded inside a special procedure: its time is not counted
                self._extras(row, d, suspension=True)
            self._concluded(row, event)
        elif step in ("refused", "withdrawn"):
            row.update(closed_step=step, closed_at=us(event.occurred_at), closed_day=local_day(event.occurred_at))
        elif step == "rated":
            row.update(score=event.score, rated_day=local_day(event.occurred_at))
        else:
            return
        self.rows.touch(case_id)

    @staticmethod
    def _extras(row: dict[str, Any], d: dict[str, Any], suspension: bool) -> None:
        """The domain's cumulative extras (suspensions and extensions, in each limit's unit):
        a change at a resumption is the special procedure's time; at an extension, not."""
        new_p, new_l = Fraction(d["promised_extra"]), Fraction(d["legal_extra"])
        sus_p, sus_l = fraction(row["suspended_promised"]), fraction(row["suspended_legal"])
        if suspension:
            sus_p += new_p - fraction(row["promised_extra"])
            sus_l += new_l - fraction(row["legal_extra"])
        row.update(promised_extra=str(new_p), legal_extra=str(new_l), suspended_promised=str(sus_p),
                   suspended_legal=str(sus_l))

    def _concluded(self, row: dict[str, Any], event: Any) -> None:
        at = event.occurred_at
        accepted_at, accepted_day = row["accepted_at"], row["accepted_day"]
        row.update(
            closed_step="concluded", closed_at=us(at), closed_day=local_day(at),
            on_time=None if event.on_time is None else int(event.on_time),
            within_legal=None if event.within_legal is None else int(event.within_legal),
            same_day=int(bool(row["on_the_spot"]) and accepted_day is not None and accepted_day == local_day(at)),
        )
        if accepted_at is None:
            return
        accepted = from_us(accepted_at)
        row["handling_seconds"] = max(0.0, (us(at) - accepted_at) / 1e6)
        cal = self.calendars.for_case(row["department"], row["window_code"])
        legal_v, prom_v = row["legal_value"], row["promised_value"]
        try:
            used_l = max(Fraction(0), Fraction(cal.elapsed(accepted, at, Unit(row["legal_unit"]))) - fraction(row["suspended_legal"]))
            used_p = max(Fraction(0), Fraction(cal.elapsed(accepted, at, Unit(row["promised_unit"]))) - fraction(row["suspended_promised"]))
        except CalendarUnknown:
            return
        row["used_legal"] = float(used_l)
        row["used_promised"] = float(used_p)
        if legal_v:
            row["speed_actual"] = float((legal_v - used_l) / legal_v)
        row["early"] = int(bool(event.on_time) and prom_v > 0 and used_p < prom_v)


def sums(cur: Cursor, select: str, where: str, params: Sequence[Any], keys: Sequence[str]) -> list[Any]:
    """Sums over the fact rows (``select``: the group keys, then the sums) grouped by ``keys``."""
    return cur.execute(f"SELECT {select} FROM perf_cases WHERE {where} GROUP BY {', '.join(keys)}", params).fetchall()


_TERMS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _terms(terms: dict[str, Any]) -> tuple[Any, ...]:
    """The catalogue terms' columns; an item version's terms never change, so each is worked
    out once (keyed by what the columns depend on)."""
    legal, promised = terms["legal_limit"], terms["promised_limit"]
    key = (terms.get("version", 1), terms["on_the_spot"], legal["value"], legal["unit"], promised["value"], promised["unit"])
    found = _TERMS.get(key)
    if found is None:
        v = ItemVersion.from_dict(terms)
        speed = v.speed_up
        found = (v.version, int(v.on_the_spot), v.legal_limit.value, v.legal_limit.unit.value, v.promised_limit.value,
                 v.promised_limit.unit.value, float(speed) if speed is not None else None)
        if len(_TERMS) < 100_000:
            _TERMS[key] = found
    return found

"""Performance figures (绩效) for any grouping and period, summed from the performance view.

Formulas (DOMAIN.md), each a ratio of sums so groups and periods add up:

- 办件量 volume: cases received in the period.
- 按时办结率 on-time rate: concluded no later than the promised deadline / concluded.
- 超时件 overdue: concluded after the promised deadline (open cases past it are the warnings'
  business, not counted here).
- 当场办结率 on-the-spot completion: on-the-spot items (即办件) concluded the day they were
  accepted / on-the-spot items concluded.
- 即办件比例 on-the-spot share: on-the-spot items / items in the catalogue in force on the last
  day of the period (for a department, window or staff member: their department's items; for a
  hall: the items of departments with a window in it; for a day: the catalogue that day).
- 承诺提速率 promised speed-up: mean over cases received of (legal - promised) / legal, where
  both limits count the same unit (``catalogue_promised_speed_up`` is the same over items).
- 办理提速率 actual speed-up: mean over cases concluded of (legal - used) / legal, ``used`` being
  the time from acceptance to conclusion in the legal limit's unit, net of special procedures.
- 提前办结率 early completion: concluded in less than the promised limit (net of special
  procedures; never for a limit of 0) / concluded.
- average handling time: hours from acceptance to conclusion (wall clock), and working days
  used (items whose legal limit counts working days); working days saved: sum of legal - used.
- 满意率 satisfaction: ratings counted as satisfied / ratings. Scores are 1 非常满意 … 5 非常不满意;
  which count is configuration (``ESUP_SATISFIED_SCORES``, default ``1,2,3``: 基本满意 counts;
  per request ``satisfied=1,2``).
- 评议率 rating rate: ratings / concluded in the period.
- 投诉率 complaint rate: complaints received in the period (by the day received, those not
  accepted 不予受理 left out) / cases concluded in the period, from the complaint board
  (projections/complaints.py); a complaint counts for its department, window and staff member,
  its window's hall and center (``complaints_substantiated``: those concluded as 属实).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from domain.calendar import CHINA_TZ
from domain.errors import InvalidInput
from domain.organisation import UnitKind
from domain.steps import parse_instant
from projections import performance
from projections.complaints import counts as complaint_counts

GROUPS = ("center", "hall", "department", "window", "staff", "item", "day")
ALL_DAYS = ("0001-01-01", "9999-12-31")

# Additive counters and the SQL that sums them, by the day that places a case in a period.
ROLES: dict[str, tuple[str, dict[str, str]]] = {
    "received": ("submitted_day", {
        "volume": "COUNT(*)",
        "speed_cases": "COUNT(speed_promised)",
        "speed_sum": "SUM(speed_promised)",
    }),
    "closed": ("closed_day", {
        "concluded": "SUM(CASE WHEN closed_step = 'concluded' THEN 1 ELSE 0 END)",
        "refused": "SUM(CASE WHEN closed_step = 'refused' THEN 1 ELSE 0 END)",
        "withdrawn": "SUM(CASE WHEN closed_step = 'withdrawn' THEN 1 ELSE 0 END)",
        "on_time": "SUM(CASE WHEN closed_step = 'concluded' AND on_time = 1 THEN 1 ELSE 0 END)",
        "within_legal": "SUM(CASE WHEN closed_step = 'concluded' AND within_legal = 1 THEN 1 ELSE 0 END)",
        "spot_concluded": "SUM(CASE WHEN closed_step = 'concluded' AND on_the_spot = 1 THEN 1 ELSE 0 END)",
        "spot_same_day": "SUM(CASE WHEN closed_step = 'concluded' AND same_day = 1 THEN 1 ELSE 0 END)",
        "early": "SUM(CASE WHEN closed_step = 'concluded' AND early = 1 THEN 1 ELSE 0 END)",
        "actual_cases": "COUNT(speed_actual)",
        "actual_sum": "SUM(speed_actual)",
        "handled_cases": "COUNT(handling_seconds)",
        "handling_seconds": "SUM(handling_seconds)",
        "wd_cases": "SUM(CASE WHEN legal_unit = 'working_days' AND used_legal IS NOT NULL THEN 1 ELSE 0 END)",
        "wd_used": "SUM(CASE WHEN legal_unit = 'working_days' THEN used_legal END)",
        "wd_saved": "SUM(CASE WHEN legal_unit = 'working_days' THEN legal_value - used_legal END)",
    }),
    "rated": ("rated_day", {
        "rated": "COUNT(score)",
        **{f"score_{k}": f"SUM(CASE WHEN score = {k} THEN 1 ELSE 0 END)" for k in range(1, 6)},
    }),
}
GROUP_COLUMNS = {"department": ("department",), "window": ("window_code",), "staff": ("staff_code",),
                 "item": ("item_code",), "hall": ("window_code", "department"), "center": ("window_code", "department")}

# Output columns, in order, with their Chinese labels (CSV/xlsx headers).
COLUMNS: list[tuple[str, str]] = [
    ("volume", "办件量"), ("concluded", "办结"), ("refused", "不予受理"), ("withdrawn", "撤件"),
    ("on_time", "按时办结"), ("on_time_rate", "按时办结率%"), ("overdue", "超时件"),
    ("within_legal", "法定时限内办结"), ("spot_concluded", "即办件办结"), ("spot_same_day", "当场办结"),
    ("on_the_spot_completion_rate", "当场办结率%"), ("early", "提前办结"), ("early_completion_rate", "提前办结率%"),
    ("promised_speed_up", "承诺提速率%"), ("actual_speed_up", "办理提速率%"),
    ("avg_handling_hours", "平均办理时间(小时)"), ("avg_working_days_used", "平均办理工作日"),
    ("working_days_saved", "节约工作日"), ("rated", "评议件"), ("rating_rate", "评议率%"),
    ("satisfied", "满意件"), ("satisfaction_rate", "满意率%"),
    *[(f"score_{k}", label) for k, label in zip(range(1, 6), ("非常满意", "满意", "基本满意", "不满意", "非常不满意"))],
    ("complaints", "投诉"), ("complaints_substantiated", "投诉属实"), ("complaint_rate", "投诉率%"),
    ("catalogue_items", "事项数"), ("on_the_spot_items", "即办件事项数"), ("on_the_spot_share", "即办件比例%"),
    ("catalogue_promised_speed_up", "事项承诺提速率%"),
]
NOTES = {
    "complaints": "complaints (投诉) received in the period, not counting those not accepted (不予受理); "
                  "投诉率 = complaints / concluded",
    "overdue": "cases concluded after their promised deadline; open cases past it are reported by warnings",
    "staff": "a case counts for the staff member who accepted it (受理人), else who received it",
    "halls_and_centers": "a case counts for its window's hall and that hall's center (else its department's center), "
                         "as the organisation stands now",
}


def default_satisfied() -> tuple[int, ...]:
    return parse_scores(os.environ.get("ESUP_SATISFIED_SCORES", "1,2,3"))


def parse_scores(raw: str) -> tuple[int, ...]:
    try:
        scores = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}))
    except ValueError:
        raise InvalidInput("satisfied must list scores 1 to 5, e.g. 1,2,3", code="invalid_field") from None
    if not scores or any(s < 1 or s > 5 for s in scores):
        raise InvalidInput("satisfied must list scores 1 to 5, e.g. 1,2,3", code="invalid_field")
    return scores


def parse_day(raw: str | None, what: str) -> str | None:
    """A local date (YYYY-MM-DD) or an instant with an offset (its date in China)."""
    if not raw:
        return None
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(f"{what} must be a date (YYYY-MM-DD) or an ISO 8601 instant", code="invalid_field") from None
    else:
        day = parse_instant(raw, what).astimezone(CHINA_TZ).date()
    if not 1900 <= day.year <= 2199:  # periods are computed around the day: keep clear of date's limits
        raise InvalidInput(f"{what} must be a date between 1900 and 2199", code="invalid_field")
    return day.isoformat()


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


@dataclass
class MetricsQuery:
    group_by: str = "center"
    day_from: str | None = None
    day_to: str | None = None
    departments: frozenset[str] | None = None  # None: every department
    satisfied: tuple[int, ...] = (1, 2, 3)


class Metrics:
    def __init__(self, esup: Any) -> None:
        self.esup = esup

    # -- summing the view --------------------------------------------------------------------

    def _sums(self, q: MetricsQuery) -> dict[tuple[Any, ...], dict[str, float]]:
        lo, hi = q.day_from or ALL_DAYS[0], q.day_to or ALL_DAYS[1]
        out: dict[tuple[Any, ...], dict[str, float]] = {}
        with self.esup.views.read() as cur:
            for day_col, sums in ROLES.values():
                keys = (day_col,) if q.group_by == "day" else GROUP_COLUMNS[q.group_by]
                where = f"{day_col} >= ? AND {day_col} <= ?"
                params: list[Any] = [lo, hi]
                if q.departments is not None:
                    if not q.departments:
                        return {}
                    where += f" AND department IN ({', '.join('?' for _ in q.departments)})"
                    params += sorted(q.departments)
                select = ", ".join([*keys, *(f"{sql} AS {name}" for name, sql in sums.items())])
                rows = performance.sums(cur, select, where, params, keys)
                for row in rows:
                    key = tuple(row[: len(keys)])
                    acc = out.setdefault(key, {})
                    for name, value in zip(sums, row[len(keys):]):
                        acc[name] = acc.get(name, 0) + (value or 0)
            for key, acc in complaint_counts(cur, q.group_by, lo, hi, q.departments).items():
                _add(out.setdefault(key, {}), acc)
        return out

    def _regroup(self, q: MetricsQuery, sums: dict[tuple[Any, ...], dict[str, float]]) -> dict[Any, dict[str, float]]:
        if q.group_by not in ("hall", "center"):
            return {k[0]: v for k, v in sums.items()}
        ref = self.esup.reference
        out: dict[Any, dict[str, float]] = {}
        for (window, department), acc in sums.items():
            w = ref.unit(UnitKind.WINDOW, window) if window else None
            hall = w.attrs.get("hall") if w else None
            if q.group_by == "hall":
                key = hall
            else:
                h = ref.unit(UnitKind.HALL, hall) if hall else None
                key = h.attrs.get("center") if h and h.attrs.get("center") else None
                if key is None:
                    dept = ref.unit(UnitKind.DEPARTMENT, department)
                    key = dept.attrs.get("center") if dept else None
            _add(out.setdefault(key, {}), acc)
        return out

    # -- the catalogue ---------------------------------------------------------------------------

    def _catalogue(self, on: str) -> list[Any]:
        """Item versions in force on local day ``on``."""
        d = date.fromisoformat(on)
        end = datetime.combine(d + timedelta(days=1), time(0), CHINA_TZ)
        out = []
        for item in self.esup.reference.items():
            v = item.version_at(end)
            if v.effective_from is not None and v.effective_from >= end:
                continue  # registered after that day
            if v.in_force_on(d):
                out.append(v)
        return out

    def _items_for(self, q: MetricsQuery, key: Any, catalogue: list[Any]) -> list[Any] | None:
        ref = self.esup.reference
        g = q.group_by
        if g == "item":
            return [v for v in catalogue if v.code == key]
        if g == "day":
            return self._catalogue(key) if key else None
        if g == "department":
            depts = {key}
        elif g == "window":
            w = ref.unit(UnitKind.WINDOW, key) if key else None
            depts = {w.attrs.get("department")} if w else set()
        elif g == "staff":
            s = ref.unit(UnitKind.STAFF, key) if key else None
            depts = {s.attrs.get("department")} if s else set()
        elif g == "hall":
            depts = {w.attrs.get("department") for w in ref.units(UnitKind.WINDOW) if w.attrs.get("hall") == key}
        else:  # center
            in_center = {d.code for d in ref.units(UnitKind.DEPARTMENT) if d.attrs.get("center") == key}
            for h in ref.units(UnitKind.HALL):
                if h.attrs.get("center") == key:
                    in_center |= {w.attrs.get("department") for w in ref.units(UnitKind.WINDOW)
                                  if w.attrs.get("hall") == h.code}
            depts = in_center
        if q.departments is not None:
            depts &= set(q.departments)
        return [v for v in catalogue if v.department in depts]

    # -- the figures -------------------------------------------------------------------------------

    def figures(self, q: MetricsQuery) -> dict[str, Any]:
        grouped = self._regroup(q, self._sums(q))
        on = q.day_to or self.esup.clock.now().astimezone(CHINA_TZ).date().isoformat()
        catalogue = self._catalogue(on)
        rows = []
        total: dict[str, float] = {}
        for key in sorted(grouped, key=lambda k: (k is None, str(k))):
            acc = grouped[key]
            _add(total, acc)
            rows.append({"key": key, "name": self._name(q.group_by, key),
                         **compute(acc, q.satisfied, self._items_for(q, key, catalogue))})
        total_items = catalogue if q.departments is None else [v for v in catalogue if v.department in q.departments]
        return {
            "group_by": q.group_by, "from": q.day_from, "to": q.day_to, "catalogue_on": on,
            "satisfied_scores": list(q.satisfied), "rows": rows,
            "total": {"key": None, "name": "合计 total", **compute(total, q.satisfied, total_items)},
            "notes": NOTES,
        }

    def _name(self, group_by: str, key: Any) -> str | None:
        if key is None or group_by == "day":
            return None
        if group_by == "item":
            item = self.esup.reference.item(key)
            return item.current.name if item else None
        kind = {"center": UnitKind.CENTER, "hall": UnitKind.HALL, "department": UnitKind.DEPARTMENT,
                "window": UnitKind.WINDOW, "staff": UnitKind.STAFF}[group_by]
        unit = self.esup.reference.unit(kind, key)
        return unit.attrs.get("name") if unit else None


def _add(into: dict[str, float], acc: dict[str, float]) -> None:
    for k, v in acc.items():
        into[k] = into.get(k, 0) + v


def compute(acc: dict[str, float], satisfied: Iterable[int], items: list[Any] | None) -> dict[str, Any]:
    g = lambda k: acc.get(k, 0)  # noqa: E731
    concluded = int(g("concluded"))
    sat = int(sum(g(f"score_{s}") for s in satisfied))
    out: dict[str, Any] = {
        "volume": int(g("volume")), "concluded": concluded, "refused": int(g("refused")),
        "withdrawn": int(g("withdrawn")), "on_time": int(g("on_time")),
        "on_time_rate": _pct(g("on_time"), concluded), "overdue": concluded - int(g("on_time")),
        "within_legal": int(g("within_legal")),
        "spot_concluded": int(g("spot_concluded")), "spot_same_day": int(g("spot_same_day")),
        "on_the_spot_completion_rate": _pct(g("spot_same_day"), g("spot_concluded")),
        "early": int(g("early")), "early_completion_rate": _pct(g("early"), concluded),
        "promised_speed_up": _pct(g("speed_sum"), g("speed_cases")),
        "actual_speed_up": _pct(g("actual_sum"), g("actual_cases")),
        "avg_handling_hours": round(g("handling_seconds") / 3600 / g("handled_cases"), 2) if g("handled_cases") else None,
        "avg_working_days_used": round(g("wd_used") / g("wd_cases"), 2) if g("wd_cases") else None,
        "working_days_saved": round(g("wd_saved"), 2),
        "rated": int(g("rated")), "rating_rate": _pct(g("rated"), concluded),
        "satisfied": sat, "satisfaction_rate": _pct(sat, g("rated")),
        **{f"score_{k}": int(g(f"score_{k}")) for k in range(1, 6)},
        "complaints": int(g("complaints")), "complaints_substantiated": int(g("complaints_substantiated")),
        "complaint_rate": _pct(g("complaints"), concluded),
    }
    if items is None:
        out.update(catalogue_items=None, on_the_spot_items=None, on_the_spot_share=None, catalogue_promised_speed_up=None)
    else:
        spot = sum(1 for v in items if v.on_the_spot)
        speeds = [v.speed_up for v in items if v.speed_up is not None]
        out.update(catalogue_items=len(items), on_the_spot_items=spot, on_the_spot_share=_pct(spot, len(items)),
                   catalogue_promised_speed_up=_pct(float(sum(speeds)), len(speeds)))
    return out


# The seed's table (2009 yearbook, figures for 2008) and the same figures from the view.
SEED_FIGURES: list[tuple[str, str, str]] = [
    ("volume", "办件量 volume", "1,334,970"),
    ("on_the_spot_completion_rate", "当场办结率 on-the-spot completion", "98%"),
    ("on_time_rate", "按时办结率 on-time rate", "100%"),
    ("promised_speed_up", "承诺提速率 promised speed-up", "80%"),
    ("overdue", "超时件 overdue", "0"),
    ("satisfaction_rate", "满意率 satisfaction", "99.8%"),
    ("on_the_spot_share", "即办件比例 on-the-spot share", "25.4%-55.9%"),
]


def seed_table(esup: Any, year: int = 2008) -> list[tuple[str, str, str]]:
    """(label, the yearbook's 2008 figure, the performance view's figure for ``year``) for the
    whole district (a live demo's recent days are not the yearbook's); the caller catches the
    views up first."""
    result = Metrics(esup).figures(MetricsQuery(group_by="center", day_from=f"{year}-01-01", day_to=f"{year}-12-31",
                                                satisfied=default_satisfied()))
    total = result["total"]
    rows = []
    for key, label, seed in SEED_FIGURES:
        value = total[key]
        shown = "-" if value is None else (f"{value}%" if key.endswith(("rate", "speed_up", "share")) else f"{value:,}")
        rows.append((label, seed, shown))
    return rows

"""Live monitoring (实时监控): the feed behind the stream and the day's figures behind the board.

The feed reads the ledger's notification log after a position and turns what it finds into
items a screen may show: case steps, warnings (the acts of ``domain.warning.CaseWarning``) and
anomalies (rows of a view, see ``AnomalySource``). Each item carries the log position it belongs
to; a stream's resume point never skips anything (``Progress``). Items are built from
whitelists: an applicant's name, ID number or phone, free-text remarks and staff codes never
leave here.

The summary reads the case board view: today's volume, conclusions, open and overdue cases, the
department league table, a daily trend and the day's hourly profile.
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from projections import case_board
from projections.instants import from_us, us
from domain.case import STEP_TOPICS as CASE_STEP_TOPICS
from domain.errors import InvalidInput
from domain.warning import WARNING_TOPICS
from services.ingest import Forbidden

STEP_TOPICS = frozenset(CASE_STEP_TOPICS)
KINDS = ("step", "warning", "anomaly")

# What a step may show of its data: codes and numbers only, never free text or the applicant.
STEP_DATA = ("result", "granted", "procedure", "score", "amount", "value", "unit")
WARNING_FIELDS = ("case_no", "department", "item_code", "window", "level", "status", "threshold_at", "issued_at",
                  "promised_due_at", "legal_due_at", "due_at", "rule", "basis")
# The same names as GET /api/v1/anomalies (type, reason), one name per concept.
ANOMALY_FIELDS = ("anomaly_id", "case_no", "department", "item_code", "window", "rule", "type", "status", "reason",
                  "detected_at", "occurred_at")
ROW_METHODS = ("stream_rows", "monitor_rows")  # what an anomalies view may offer the feed


def _json_value(value: Any) -> Any:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def reading(store: Any):
    """A read-only snapshot of the view store (``ViewStore.read``: no writer lock on SQLite)."""
    return store.read()


def view_position(store: Any, view: str) -> int:
    """How far a view has processed the log (``ViewStore.position`` without the writer lock)."""
    with reading(store) as cur:
        return store.position(view, cur)


@dataclass(frozen=True)
class Item:
    position: int
    kind: str  # step | warning | anomaly
    data: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """How far a stream has delivered: log records read up to ``log``; anomalies (which the
    anomalies view places in the log a moment later) up to ``anomalies`` <= ``log``. A client
    resumes from ``resume``, where nothing before it is missing: items between ``resume`` and
    ``log`` may come again after a reconnect (dedupe by kind and position)."""

    log: int
    anomalies: int

    @classmethod
    def at(cls, position: int) -> Progress:
        return cls(position, position)

    @property
    def resume(self) -> int:
        return min(self.log, self.anomalies)


@dataclass(frozen=True)
class Scope:
    """What a reader sees: which kinds, and which departments (None: all)."""

    kinds: frozenset[str] = frozenset(KINDS)
    departments: frozenset[str] | None = None

    def admits(self, kind: str, department: str | None) -> bool:
        if kind not in self.kinds:
            return False
        return self.departments is None or (department is not None and department in self.departments)

    @classmethod
    def parse(cls, kind: str | None, department: str | None, allowed: frozenset[str] | None) -> Scope:
        """``kind``/``department``: comma-separated query values. ``allowed``: the key's departments
        (None for roles that read everything). Asking for a department the key may not read is an error."""
        kinds = frozenset(KINDS)
        if kind:
            kinds = frozenset(k.strip() for k in kind.split(",") if k.strip())
            unknown = kinds - set(KINDS)
            if unknown or not kinds:
                raise InvalidInput(f"kind must be a comma-separated subset of {', '.join(KINDS)}", code="invalid_query")
        departments = allowed
        if department:
            asked = frozenset(d.strip() for d in department.split(",") if d.strip())
            if allowed is not None and not asked <= allowed:
                raise Forbidden("this key may not read those departments", code="forbidden_department")
            departments = asked
        return cls(kinds, departments)


class AnomalySource(Protocol):
    """Anomalies are rows of a view, not log events. ``position()``: how far the view has read the
    log; ``rows(after, upto)``: the anomalies it raised or changed at log positions in (after, upto],
    each a dict with at least ``position`` and ``department``."""

    def position(self) -> int: ...

    def rows(self, after: int, upto: int) -> list[dict[str, Any]]: ...


class ViewAnomalies:
    """An anomalies view that shapes its rows for the feed: ``monitor_rows(cur, after, upto)`` (or
    ``stream_rows``), read here in a snapshot of the view store and passed through a whitelist."""

    def __init__(self, store: Any, view: Any, rows: Callable[..., list[dict[str, Any]]]) -> None:
        self.store = store
        self.view = view
        self._rows = rows

    def position(self) -> int:
        return view_position(self.store, self.view.name)

    def rows(self, after: int, upto: int) -> list[dict[str, Any]]:
        with reading(self.store) as cur:
            raw = self._rows(cur, after, upto)
        return [{**{k: _json_value(r[k]) for k in ANOMALY_FIELDS if k in r}, "position": int(r["position"])}
                for r in raw]


def find_anomaly_source(runner: Any) -> AnomalySource | None:
    """The system's anomalies view (named ``anomalies``) as a source for the stream, if it offers
    rows placed in the log; otherwise None, and steps still carry their flags."""
    view = getattr(runner, "views", {}).get("anomalies")
    method = next((getattr(view, name) for name in ROW_METHODS if hasattr(view, name)), None)
    return ViewAnomalies(runner.store, view, method) if method is not None else None


class MonitorFeed:
    """Reads the ledger after a position and returns what a screen may see, in log order."""

    def __init__(self, ledger: Any, views: Any, anomalies: AnomalySource | None = None, batch: int = 500) -> None:
        self.ledger = ledger
        self.views = views
        self.anomalies = anomalies
        self.batch = batch

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def backlog_start(self, steps: int, max_scan: int = 200_000) -> int:
        """The position to read after so the last ``steps`` case steps come first (a screen that
        opens fills its feed with recent steps). Scans back from the head at most ``max_scan``."""
        head = self.head()
        if steps <= 0:
            return head
        topics = sorted(STEP_TOPICS)
        found: list[int] = []
        stop, window = head, max(4 * steps, 1000)
        while stop > 0 and len(found) < steps and head - stop < max_scan:
            start = max(0, stop - window)
            notes = self.ledger.recorder.select_notifications(start=start, limit=window, stop=stop, topics=topics,
                                                              inclusive_of_start=False)
            found = [n.id for n in notes] + found
            stop = start
        if len(found) < steps:
            return stop
        return found[-steps] - 1

    def read(self, at: Progress, scope: Scope) -> tuple[list[Item], Progress]:
        """What follows ``at``: the next batch of log records (steps and warnings) and the anomalies
        the anomalies view has placed at positions up to what was read; and the progress after it."""
        notes = self.ledger.recorder.select_notifications(start=at.log, limit=self.batch, inclusive_of_start=False)
        log = notes[-1].id if notes else at.log
        wanted = [n for n in notes if (n.topic in STEP_TOPICS and "step" in scope.kinds)
                  or (n.topic in WARNING_TOPICS and "warning" in scope.kinds)]
        events = [(n.id, n.topic, self.ledger.mapper.to_domain_event(n)) for n in wanted]
        known = self._case_facts(events)
        items: list[Item] = []
        for position, topic, event in events:
            if topic in STEP_TOPICS:
                item = Item(position, "step", step_item(event, position, known))
            else:
                item = Item(position, "warning", warning_item(event, topic, position, self._warning_facts(event, known)))
            if scope.admits(item.kind, item.data.get("department")):
                items.append(item)
        anomalies = log
        if self.anomalies is not None and "anomaly" in scope.kinds:
            # Never ahead of the log read, never ahead of the view: steps do not wait for the view.
            anomalies = max(at.anomalies, min(log, self.anomalies.position()))
            if anomalies > at.anomalies:
                for row in self.anomalies.rows(at.anomalies, anomalies):
                    if scope.admits("anomaly", row.get("department")):
                        items.append(Item(row["position"], "anomaly", row))
                items.sort(key=lambda i: (i.position, KINDS.index(i.kind)))
        return items, Progress(log, anomalies)

    def _warning_facts(self, event: Any, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What a warning's later acts (answered, escalated, closed) do not repeat: its case,
        department and level, from the warning's first event."""
        if event.originator_version == 1:
            return vars(event)
        key = "warning:" + str(event.originator_id)
        if key not in known:
            first = next(iter(self.ledger.events.get(event.originator_id, lte=1)), None)
            known[key] = {k: v for k, v in vars(first).items() if k in WARNING_FIELDS} if first is not None else {}
        return known[key]

    def _case_facts(self, events: Sequence[tuple[int, str, Any]]) -> dict[str, dict[str, Any]]:
        """case id -> case number and item code for the batch's steps (only ``submitted`` names the
        item): from the batch itself, else from the case board."""
        known: dict[str, dict[str, Any]] = {}
        steps = [e for _, topic, e in events if topic in STEP_TOPICS]
        for e in steps:
            if getattr(e, "case_no", None) and "item_code" in e.data:
                known[str(e.originator_id)] = {"item_code": e.data["item_code"], "case_no": e.case_no}
        missing = sorted({str(e.originator_id) for e in steps} - set(known))
        if missing:
            with reading(self.views) as cur:
                known.update(case_board.numbers_and_items(cur, missing))
        for e in steps:  # the board has not seen the case yet: ask the case's first event
            cid = str(e.originator_id)
            if cid not in known:
                first = next(iter(self.ledger.events.get(e.originator_id, lte=1)), None)
                known[cid] = {"item_code": first.data.get("item_code"), "case_no": first.case_no} if first else {}
        return known


def _chunks(values: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]


def step_item(event: Any, position: int, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    facts = known.get(str(event.originator_id), {})
    d = event.derived
    out: dict[str, Any] = {
        "position": position,
        "case_no": facts.get("case_no") or getattr(event, "case_no", None),
        "step": event.STEP.value,
        "version": event.originator_version,
        "department": event.actor.get("department"),
        "window": event.actor.get("window"),
        "item_code": facts.get("item_code"),
        "occurred_at": _json_value(event.occurred_at),
        "recorded_at": _json_value(event.timestamp),
        "flags": [f.get("code") for f in event.flags],
    }
    for key in STEP_DATA:
        if key in event.data:
            out[key] = _json_value(event.data[key])
    for key in ("promised_due_at", "legal_due_at", "on_time"):
        if key in d:
            out[key] = _json_value(d[key])
    return out


def warning_item(event: Any, topic: str, position: int, facts: dict[str, Any]) -> dict[str, Any]:
    """A warning act. ``facts``: the warning's own fields (from its first event if this one is a
    later act); the status follows the act (Issued -> issued, Closed -> closed, ...)."""
    attrs = {**facts, **vars(event)}
    act = topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    out: dict[str, Any] = {"position": position, "type": act, "id": _json_value(event.originator_id),
                           "version": event.originator_version, "recorded_at": _json_value(event.timestamp)}
    for key in WARNING_FIELDS:
        if key in attrs:
            out[key] = _json_value(attrs[key])
    out.setdefault("status", act.lower())
    if event.originator_version == 1:
        out.setdefault("issued_at", _json_value(event.timestamp))
    return out


# -- the day's figures --------------------------------------------------------------------------


@dataclass
class Summary:
    """A day's figures from the case board, in the center's zone (China Standard Time).

    Everything is counted in SQL, grouped by department and by day (or hour) relative to a local
    midnight, so the work stays proportional to departments x days, not to cases.
    """

    views: Any
    tz: Any
    clock: Any
    names: Callable[[], dict[str, str]] = field(default=lambda: {})
    ttl: float = 3.0  # seconds a result is shared (screens poll; "overdue now" may lag this much)
    _cache: dict[Any, tuple[float, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, day: date | None, departments: frozenset[str] | None, days: int = 30) -> dict[str, Any]:
        """``compute``, shared by every screen asking the same while the case board stands still
        (for at most ``ttl`` seconds). Treat the result as read-only."""
        key = (day, departments, days, view_position(self.views, "case_board"))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > _time.monotonic():
                return hit[1]
        out = self.compute(day, departments, days)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (_time.monotonic() + self.ttl, out)
        return out

    def _midnight(self, day: date) -> int:
        return us(datetime.combine(day, time(0), tzinfo=self.tz))

    def compute(self, day: date | None, departments: frozenset[str] | None, days: int = 30) -> dict[str, Any]:
        now = self.clock.now()
        today = now.astimezone(self.tz).date()
        day = day or today
        lo, hi = self._midnight(day), self._midnight(day + timedelta(days=1))
        first_day = day - timedelta(days=days - 1)
        first = self._midnight(first_day)
        with reading(self.views) as cur:
            rows = case_board.day_summary(cur, pg=getattr(self.views, "kind", "sqlite") == "postgres", first=first,
                                          lo=lo, hi=hi, now=us(now), departments=departments, days=days)
        received, closed, accepted = rows["received"], rows["closed"], rows["accepted"]
        hourly_in, hourly_out, open_rows, position = rows["hourly_in"], rows["hourly_out"], rows["open"], rows["position"]
        latest = (from_us(rows["latest"], self.tz).date().isoformat()
                  if rows["latest"] is not None else None)

        last = days - 1
        totals = _blank()
        per_dept: dict[str, dict[str, Any]] = {}

        def dept(code: str) -> dict[str, Any]:
            if code not in per_dept:
                per_dept[code] = {"department": code, "today": _blank(), "period": _blank(), "open": 0, "overdue": 0,
                                  "past_legal": 0, "suspended": 0}
            return per_dept[code]

        trend = [{"date": (first_day + timedelta(days=i)).isoformat(), "received": 0, "concluded": 0, "on_time": 0,
                  "late": 0} for i in range(days)]
        for department, d, n in received:
            d, n = min(int(d), last), int(n)
            dept(department)["period"]["received"] += n
            trend[d]["received"] += n
            if d == last:
                dept(department)["today"]["received"] += n
                totals["received"] += n
        for department, d, status, on_time, n in closed:
            d, n = min(int(d), last), int(n)
            _count_closed(dept(department)["period"], status, on_time, n)
            _count_closed(trend[d], status, on_time, n)
            if d == last:
                _count_closed(dept(department)["today"], status, on_time, n)
                _count_closed(totals, status, on_time, n)
        for department, d, n in accepted:
            dept(department)["period"]["accepted"] += int(n)
            if min(int(d), last) == last:
                dept(department)["today"]["accepted"] += int(n)
                totals["accepted"] += int(n)
        hourly = [{"hour": h, "received": 0, "concluded": 0} for h in range(24)]
        for h, n in hourly_in:
            hourly[min(int(h), 23)]["received"] += int(n)
        for h, n in hourly_out:
            hourly[min(int(h), 23)]["concluded"] += int(n)

        open_total = {"open": 0, "overdue": 0, "past_legal": 0, "suspended": 0}
        for department, n, overdue, past_legal, suspended in open_rows:
            d = dept(department)
            d.update(open=int(n), overdue=int(overdue or 0), past_legal=int(past_legal or 0),
                     suspended=int(suspended or 0))
            for key in open_total:
                open_total[key] += d[key]

        names = self.names()
        league = list(per_dept.values())
        for d in league:
            d["name"] = names.get(d["department"], d["department"])
            d["on_time_rate"] = _rate(d["period"])
            # A case left overdue counts against its department as much as one concluded late:
            # on time / (concluded on time or late + open past the promise now).
            judged = d["period"]["on_time"] + d["period"]["late"] + d["overdue"]
            d["standing_rate"] = round(100 * d["period"]["on_time"] / judged, 1) if judged else None  # percent
        # Best first: that standing, then fewer overdue open cases, then volume.
        league.sort(key=lambda d: (-(d["standing_rate"] if d["standing_rate"] is not None else -1), d["overdue"],
                                   -d["period"]["received"], d["department"]))
        for rank, d in enumerate(league, 1):
            d["rank"] = rank
        return {
            "date": day.isoformat(),
            "today": today.isoformat(),
            "as_of": now.isoformat(),
            "position": int(position[0]) if position else 0,
            "counters": {**totals, **open_total, "on_time_rate": _rate(totals)},
            "hourly": hourly,
            "trend": trend,
            "period_days": days,
            "departments": league,
            "latest_date": latest,
        }


def _blank() -> dict[str, int]:
    return {"received": 0, "accepted": 0, "concluded": 0, "on_time": 0, "late": 0, "refused": 0, "withdrawn": 0}


def _rate(counts: dict[str, Any]) -> float | None:
    """A percentage, 0-100 with one decimal, like every rate esup answers (services/metrics)."""
    judged = counts["on_time"] + counts["late"]
    return round(100.0 * counts["on_time"] / judged, 1) if judged else None


def _count_closed(counts: dict[str, Any], status: str, on_time: int | None, n: int = 1) -> None:
    if status == "concluded":
        counts["concluded"] += n
        if on_time is not None:
            counts["on_time" if on_time else "late"] += n
    elif status in counts:
        counts[status] += n




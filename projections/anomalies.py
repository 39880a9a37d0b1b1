"""Anomalies (异常), each with the events that prove it.

One row per (case, rule): a rule id, its type in the deployed taxonomy (时效 time, 流程
procedure, 内容 content, 裁量 discretion, 风险防控 risk, 督办 escalation), a short reason, and
the evidence: every event that shows it (version, step, source event id, occurred and recorded
instants, the flag's own evidence), in a JSON list. A case that breaks one rule several times
(two late entries) keeps one row whose evidence grows.

Where anomalies come from:

- The flags the domain put on each event (late_entry, time_backwards, skipped_step,
  out_of_order, fee_above_standard, fee_on_free_item, no_reason, item_not_in_force,
  department_mismatch, concluded_while_suspended): one rule each, same code.
- Patterns over a case's events: many steps keyed in together (bulk_entry, 体外循环), frequent
  special procedures (suspension_frequent), steps that name no staff member (missing_actor),
  concluded past the promise (concluded_past_promise).
- Time limits (timers): not accepted or refused within 5 working days of receipt
  (acceptance_overdue), an on-the-spot item not concluded the day it was accepted
  (on_the_spot_overdue), a special procedure open too long (suspension_long), the legal limit
  passed (legal_limit_exceeded). A timer is armed by an event and kept in ``anomaly_pending``
  with its due instant (indexed). It fires when a later event shows the limit passed, or when
  time passes with nothing happening: ``sweep(now)`` turns every pending row due before
  ``now`` into an anomaly, in one transaction, idempotently (one row per case and rule). The
  view also sweeps by the log's own clock: when an event recorded at T arrives, nothing was
  recorded between the previous instant and T, so everything due before T has passed; a
  replay therefore finds the same anomalies whenever it runs.
- A timer anomaly raised on what the ledger knew (nothing recorded by the due instant) is
  marked ``cleared`` when a step keyed in later shows it happened in time; the late step is
  itself a ``late_entry`` anomaly. Wrongly keyed dates are what most false red cards are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

import orjson

from domain.calendar import CHINA_TZ
from domain.case import STEP_TOPICS
from domain.steps import STEP_ZH, Step
from domain.warning import CaseWarning
from projections.calendars import Calendars
from projections.runner import View
from projections.store import Cursor, ViewStore

TYPES = {
    "time": "时效",
    "procedure": "流程",
    "content": "内容",
    "discretion": "裁量",
    "risk": "风险防控",
    "escalation": "督办",
}


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    label: str  # 中文
    description: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("acceptance_overdue", "time", "收件后5个工作日内未受理或不予受理",
         "neither accepted nor refused (nor a supplement notice sent) within 5 working days of receipt"),
    Rule("on_the_spot_overdue", "time", "即办件未当场办结", "an on-the-spot item (即办件) not concluded the day it was accepted"),
    Rule("concluded_past_promise", "time", "超承诺时限办结", "concluded after the promised deadline"),
    Rule("legal_limit_exceeded", "escalation", "超法定时限", "the legal time limit passed: needs 督办"),
    Rule("skipped_step", "procedure", "跳过环节", "a step of the flow was skipped"),
    Rule("out_of_order", "procedure", "环节顺序颠倒", "a step came after a later stage of the flow"),
    Rule("time_backwards", "procedure", "时间倒流", "a step happened before the previous one"),
    Rule("concluded_while_suspended", "procedure", "特别程序中办结", "concluded while a special procedure was open"),
    Rule("no_reason", "content", "不予受理未说明理由", "refused (不予受理) without a reason"),
    Rule("item_not_in_force", "content", "事项不在有效期", "the item was not in force on the day"),
    Rule("department_mismatch", "content", "非本部门事项", "the item belongs to another department"),
    Rule("missing_actor", "content", "未登记经办人", "an acceptance, refusal, decision or conclusion names no staff member"),
    Rule("fee_above_standard", "discretion", "超标准收费", "a fee above the item's standard"),
    Rule("fee_on_free_item", "discretion", "免费事项收费", "a fee charged on a free item"),
    Rule("late_entry", "risk", "事后补录 (体外循环)", "a step recorded long after it happened"),
    Rule("bulk_entry", "risk", "集中录入 (体外循环)", "many steps of a case keyed in together, though they span days"),
    Rule("suspension_frequent", "risk", "频繁启动特别程序", "special procedures started again and again on one case"),
    Rule("suspension_long", "risk", "特别程序时间过长", "a special procedure open for too long"),
    Rule("warning_withdrawn", "risk", "补录撤销预警 (疑似倒签)",
         "a step keyed in after a warning was issued, dated before its threshold, withdrew the warning"),
]}
UNKNOWN_FLAG_TYPE = "procedure"  # a flag the domain adds later, before it is classified here


def rule_for(code: str) -> Rule:
    return RULES.get(code) or Rule(code, UNKNOWN_FLAG_TYPE, code, code)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class AnomalyPolicy:
    """Thresholds (configuration; see README "Anomalies")."""

    accept_within_working_days: int = 5  # law: a decision or a supplement notice within 5 working days
    bulk_min_steps: int = 4  # 体外循环: at least this many steps of one case ...
    bulk_window: timedelta = timedelta(seconds=60)  # ... recorded within this span ...
    bulk_min_span: timedelta = timedelta(days=1)  # ... whose business times span at least this
    suspensions_frequent: int = 3  # this many special procedures on one case
    suspension_long: timedelta = timedelta(days=30)  # one special procedure open longer (calendar time)

    @classmethod
    def from_env(cls) -> AnomalyPolicy:
        return cls(
            accept_within_working_days=_env_int("ESUP_ACCEPT_WITHIN_DAYS", 5),
            bulk_min_steps=_env_int("ESUP_BULK_STEPS", 4),
            bulk_window=timedelta(seconds=_env_float("ESUP_BULK_SECONDS", 60)),
            bulk_min_span=timedelta(hours=_env_float("ESUP_BULK_SPAN_HOURS", 24)),
            suspensions_frequent=_env_int("ESUP_SUSPENSIONS_FREQUENT", 3),
            suspension_long=timedelta(days=_env_float("ESUP_SUSPENSION_LONG_DAYS", 30)),
        )


CASE_TOPICS = STEP_TOPICS  # case steps only
# Flags that say something about our reference data, not about the department's work.
NOT_IRREGULAR = frozenset({"calendar_provisional"})
DECIDING = ("accepted", "refused", "decided", "concluded")  # steps someone must answer for
TIMER_RULES = ("acceptance_overdue", "on_the_spot_overdue", "suspension_long", "legal_limit_exceeded")


_LEVEL_ZH = {"yellow": "黄牌", "red": "红牌", "severe": "严重超期"}


def _step_zh(step: str | None) -> str:
    try:
        return STEP_ZH[Step(step)]
    except (KeyError, ValueError):
        return str(step)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO instant in China time."""
    return datetime.fromtimestamp(ts, CHINA_TZ).isoformat() if ts is not None else None


def evidence_of(event: Any, **extra: Any) -> dict[str, Any]:
    return {
        "version": event.originator_version,
        "step": event.STEP.value,
        "source_event_id": event.source_event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.timestamp.isoformat(),
        **extra,
    }


@dataclass
class _Memory:
    """What the log-clock sweep needs per event, cached between events of one run."""

    log_now: float = float("-inf")  # latest recorded instant processed
    next_due: float | None = None  # lower bound of the earliest pending due instant
    notification: int = -1


class AnomalyView(View):
    name = "anomalies"
    topics = CASE_TOPICS + (CaseWarning.Withdrawn.TOPIC,)
    tables = ("anomalies", "anomaly_cases", "anomaly_pending", "anomaly_clock")

    def __init__(self, policy: AnomalyPolicy | None = None, calendars: Calendars | None = None) -> None:
        self.policy = policy or AnomalyPolicy.from_env()
        self.calendars = calendars or Calendars()
        self.store: ViewStore | None = None
        self._mem: _Memory | None = None

    def bind(self, store: ViewStore, reference: Any = None) -> None:
        """Where ``sweep`` writes, and the reference data whose calendars the timers use."""
        self.store = store
        if reference is not None:
            self.calendars.bind(reference)

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
                occurred_at DOUBLE PRECISION NOT NULL,
                detected_at DOUBLE PRECISION NOT NULL,
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
                due_at DOUBLE PRECISION,
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
        cur.execute("CREATE TABLE IF NOT EXISTS anomaly_clock (clock_key TEXT PRIMARY KEY, instant DOUBLE PRECISION NOT NULL)")

    def forget(self) -> None:
        self._mem = None

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

    # -- processing -----------------------------------------------------------------------

    def process(self, cur: Cursor, event: Any, notification_id: int) -> None:
        if isinstance(event, CaseWarning.Withdrawn):
            self._card_withdrawn(cur, event, notification_id)
            return
        if not hasattr(event, "STEP"):
            return
        self._tick(cur, event.timestamp.timestamp(), notification_id)
        case_id = str(event.originator_id)
        step = event.STEP.value
        if step == "submitted":
            st = {
                "case_no": event.case_no, "department": event.actor["department"], "window": event.actor.get("window"),
                "item_code": event.data.get("item_code"), "spot": bool(event.derived["terms"]["on_the_spot"]),
                "accepted": False, "suspended": None, "suspensions": [],
                "last": None, "recent": [], "timers": {},
            }
            new = True
        else:
            row = cur.execute("SELECT state FROM anomaly_cases WHERE case_id = ?", (case_id,)).fetchone()
            if row is None:
                return
            st = orjson.loads(row[0])
            new = False
        c = _Case(self, cur, case_id, st, event, notification_id)
        c.run()
        if new:
            cur.execute("INSERT INTO anomaly_cases (case_id, state) VALUES (?, ?)", (case_id, _dumps(st)))
        else:
            cur.execute("UPDATE anomaly_cases SET state = ? WHERE case_id = ?", (_dumps(st), case_id))

    @staticmethod
    def _card_withdrawn(cur: Cursor, event: Any, notification_id: int) -> None:
        """Backdating a step to escape a card is seen, not rewarded: the step that withdrew the
        card is an anomaly naming the card (one row per case; each card adds its evidence)."""
        row = cur.execute("SELECT state FROM anomaly_cases WHERE case_id = ?", (event.case_id,)).fetchone()
        if row is None:
            return
        st = orjson.loads(row[0])
        ev = event.evidence
        evidence = [{
            "version": ev.get("version"), "step": ev.get("step"), "source_event_id": ev.get("source_event_id"),
            "occurred_at": ev.get("occurred_at"), "recorded_at": ev.get("recorded_at"),
            "role": "withdrew", "detail": str(event.originator_id), "warning_id": str(event.originator_id),
            "level": ev.get("level"), "threshold_at": ev.get("threshold_at"),
        }]
        recorded = datetime.fromisoformat(ev["recorded_at"]).timestamp() if ev.get("recorded_at") else event.timestamp.timestamp()
        occurred = datetime.fromisoformat(ev["occurred_at"]).timestamp() if ev.get("occurred_at") else recorded
        lag_days = (recorded - occurred) / 86400
        raise_anomaly(
            cur, event.case_id, "warning_withdrawn", case=(st["case_no"], st["department"], st["window"], st["item_code"]),
            reason=f"补录{_step_zh(ev.get('step'))}（滞后 {lag_days:.0f} 天）使已发出的{_LEVEL_ZH.get(ev.get('level'), '')}预警撤销",
            occurred=occurred,
            detected=event.timestamp.timestamp(), by="event", position=notification_id, evidence=evidence,
            details={"warnings": [str(event.originator_id)]},
        )

    # -- the clocks -----------------------------------------------------------------------

    def _memory(self, cur: Cursor, notification_id: int) -> _Memory:
        mem = self._mem
        # A notification at or before the last one seen means a retried (rolled back) batch or
        # another run: reload what the database holds rather than trust this process's cache.
        if mem is None or notification_id <= mem.notification:
            mem = _Memory()
            row = cur.execute("SELECT instant FROM anomaly_clock WHERE clock_key = 'log'").fetchone()
            if row is not None:
                mem.log_now = float(row[0])
            mem.next_due = self._next_due(cur)
            self._mem = mem
        mem.notification = notification_id
        return mem

    @staticmethod
    def _next_due(cur: Cursor) -> float | None:
        row = cur.execute("SELECT MIN(due_at) FROM anomaly_pending").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def _tick(self, cur: Cursor, recorded: float, notification_id: int) -> None:
        mem = self._memory(cur, notification_id)
        if recorded <= mem.log_now:
            return
        if mem.next_due is not None and mem.next_due < recorded:
            self._sweep(cur, recorded, notification_id, pg=getattr(cur, "_pg", False))
            mem.next_due = self._next_due(cur)
        mem.log_now = recorded
        cur.execute("DELETE FROM anomaly_clock WHERE clock_key = 'log'")
        cur.execute("INSERT INTO anomaly_clock (clock_key, instant) VALUES ('log', ?)", (recorded,))

    def _armed(self, due: float | None) -> None:
        mem = self._mem
        if mem is not None and due is not None and (mem.next_due is None or due < mem.next_due):
            mem.next_due = due

    def sweep(self, now: datetime, store: ViewStore | None = None) -> int:
        """Raise every timer anomaly due before ``now`` that no event has settled; returns how
        many. One transaction; running it again (or concurrently) raises nothing twice. Call it
        after the view has caught up (``sweep_now`` does), or a step already logged but not yet
        processed may be flagged and then cleared."""
        store = store or self.store
        if store is None:
            raise RuntimeError("AnomalyView.sweep needs a view store: bind(store) or pass one")
        with store.transaction() as cur:
            row = cur.execute("SELECT position FROM view_tracking WHERE view = ?", (self.name,)).fetchone()
            return self._sweep(cur, now.timestamp(), (int(row[0]) if row else 0) + 1, pg=store.kind == "postgres")

    def _sweep(self, cur: Cursor, now: float, position: int, pg: bool) -> int:
        lock = " FOR UPDATE SKIP LOCKED" if pg else ""
        rows = cur.execute(
            "SELECT case_id, rule, due_at, armed_version, case_no, department, window_code, item_code, reason, evidence"
            f" FROM anomaly_pending WHERE due_at IS NOT NULL AND due_at < ? ORDER BY due_at{lock}",
            (now,),
        ).fetchall()
        for case_id, rule, due, armed, case_no, dept, window, item, reason, evidence in rows:
            cur.execute("DELETE FROM anomaly_pending WHERE case_id = ? AND rule = ?", (case_id, rule))
            raise_anomaly(
                cur, case_id, rule, case=(case_no, dept, window, item), reason=reason, occurred=float(due),
                detected=now, by="sweep", position=position, evidence=orjson.loads(evidence),
                details={"due_at": iso(float(due)), "armed_version": armed, "as_of": iso(now)},
            )
        return len(rows)


def raise_anomaly(
    cur: Cursor, case_id: str, rule: str, *, case: tuple[str, str, str | None, str | None], reason: str,
    occurred: float, detected: float, by: str, position: int, evidence: list[dict[str, Any]], details: dict[str, Any],
) -> None:
    """Insert the (case, rule) anomaly, or add this evidence to it (and reopen it). ``position``:
    the log position that revealed it (for a wall-clock sweep, just after what the view had read)."""
    row = cur.execute(
        "SELECT evidence, details FROM anomalies WHERE case_id = ? AND rule = ?", (case_id, rule)
    ).fetchone()
    if row is None:
        r = rule_for(rule)
        case_no, dept, window, item = case
        cur.execute(
            "INSERT INTO anomalies (case_id, rule, case_no, department, window_code, item_code, type, reason, status,"
            " occurred_at, detected_at, detected_by, evidence, details, log_position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
            (case_id, rule, case_no, dept, window, item, r.type, reason, occurred, detected, by,
             _dumps(evidence), _dumps({**details, "breaches": [details.get("armed_version")] if "armed_version" in details else []}),
             position),
        )
        return
    old_evidence, old_details = orjson.loads(row[0]), orjson.loads(row[1])
    merged = _merge(old_evidence, evidence)
    if "armed_version" in details:
        old_details.setdefault("breaches", []).append(details["armed_version"])
    for k, v in details.items():
        if k in ("armed_version",):
            continue
        if isinstance(v, list) and isinstance(old_details.get(k), list):  # e.g. every card withdrawn
            old_details[k] = old_details[k] + [x for x in v if x not in old_details[k]]
        else:
            old_details[k] = v
    cur.execute(
        "UPDATE anomalies SET evidence = ?, details = ?, status = 'open', log_position = ? WHERE case_id = ? AND rule = ?",
        (_dumps(merged), _dumps(old_details), position, case_id, rule),
    )


def _merge(old: list[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {(e.get("version"), e.get("role"), e.get("detail")) for e in old}
    out = list(old)
    for e in new:
        key = (e.get("version"), e.get("role"), e.get("detail"))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


@dataclass
class _Case:
    """One event applied to one case's anomaly state."""

    view: AnomalyView
    cur: Cursor
    case_id: str
    st: dict[str, Any]
    event: Any
    position: int
    ev: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.ev = evidence_of(self.event)
        self.breached_now: set[str] = set()
        self.at = self.event.occurred_at.timestamp()
        self.recorded = self.event.timestamp.timestamp()

    @property
    def dims(self) -> tuple[str, str, str | None, str | None]:
        st = self.st
        return st["case_no"], st["department"], st["window"], st["item_code"]

    def anomaly(self, rule: str, reason: str, evidence: list[dict[str, Any]], occurred: float | None = None,
                **details: Any) -> None:
        raise_anomaly(self.cur, self.case_id, rule, case=self.dims, reason=reason,
                      occurred=self.at if occurred is None else occurred, detected=self.recorded, by="event",
                      position=self.position, evidence=evidence, details=details)

    # -- the rules --------------------------------------------------------------------------

    def run(self) -> None:
        e, st = self.event, self.st
        step = e.STEP.value
        previous_last = st["last"]
        self.flags(previous_last)
        self.bulk()
        if st["last"] is None or self.at > st["last"]["o"]:
            st["last"] = {"o": self.at, "e": self.ev}
        if step in DECIDING and not e.actor.get("staff"):
            self.anomaly("missing_actor", f"{step} names no staff member (经办人)", [self.ev])
        self.overdue_timers()
        getattr(self, f"on_{step}", lambda: None)()

    def flags(self, previous_last: dict[str, Any] | None) -> None:
        for f in self.event.flags:
            code = f["code"]
            if code in NOT_IRREGULAR:
                continue
            extra = {k: v for k, v in f.items() if k not in ("code", "detail")}
            evidence = [{**self.ev, "detail": f["detail"], **extra}]
            if code == "time_backwards" and previous_last is not None:
                evidence.append({**previous_last["e"], "role": "previous"})
            self.anomaly(code, f["detail"], evidence)

    def bulk(self) -> None:
        p = self.view.policy
        window = p.bulk_window.total_seconds()
        recent = [r for r in self.st["recent"] if r["r"] >= self.recorded - window]
        recent.append({"r": self.recorded, "o": self.at, "e": self.ev})
        self.st["recent"] = recent[-50:]
        if len(recent) < p.bulk_min_steps:
            return
        span = max(r["o"] for r in recent) - min(r["o"] for r in recent)
        if span >= p.bulk_min_span.total_seconds():
            self.anomaly(
                "bulk_entry",
                f"{len(recent)} steps recorded within {int(window)} s, though they happened over "
                f"{span / 86400:.1f} days (体外循环?)",
                [r["e"] for r in recent], occurred=recent[0]["o"],
            )

    def concluded_late(self) -> None:
        d = self.event.derived
        if d.get("on_time") is False:
            self.anomaly("concluded_past_promise", "concluded after the promised deadline (超承诺时限)", [self.ev])

    # -- timers ------------------------------------------------------------------------------

    def arm(self, rule: str, due: float | None, reason: str, evidence: list[dict[str, Any]], **extra: Any) -> None:
        st = self.st
        timer = {"due": due, "armed": self.event.originator_version, "reason": reason, "evidence": evidence,
                 "breached": False, **extra}
        st["timers"][rule] = timer
        self.cur.execute("DELETE FROM anomaly_pending WHERE case_id = ? AND rule = ?", (self.case_id, rule))
        case_no, dept, window, item = self.dims
        self.cur.execute(
            "INSERT INTO anomaly_pending (case_id, rule, due_at, armed_version, case_no, department, window_code,"
            " item_code, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.case_id, rule, due, timer["armed"], case_no, dept, window, item, reason, _dumps(evidence)),
        )
        self.view._armed(due)

    def move(self, rule: str, due: float | None) -> None:
        """A step moved (or paused: None) an armed timer's due instant."""
        timer = self.st["timers"].get(rule)
        if timer is None or timer["breached"]:
            return
        old = timer["due"]
        timer["due"] = due
        self.cur.execute("DELETE FROM anomaly_pending WHERE case_id = ? AND rule = ?", (self.case_id, rule))
        if old is not None and self.at <= old:
            # Moved by a step that happened in time: an anomaly raised meanwhile on what was
            # then known is cleared (if the new due passes too, it is raised again).
            self.clear(rule, timer)
        case_no, dept, window, item = self.dims
        self.cur.execute(
            "INSERT INTO anomaly_pending (case_id, rule, due_at, armed_version, case_no, department, window_code,"
            " item_code, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.case_id, rule, due, timer["armed"], case_no, dept, window, item, timer["reason"],
             _dumps(timer["evidence"])),
        )
        self.view._armed(due)

    def overdue_timers(self) -> None:
        """This event happened after an armed timer's due instant: it shows the limit passed."""
        for rule, timer in list(self.st["timers"].items()):
            if timer["breached"] or timer["due"] is None or self.at <= timer["due"]:
                continue
            self.breach(rule, timer)

    def breach(self, rule: str, timer: dict[str, Any]) -> None:
        timer["breached"] = True
        self.breached_now.add(rule)
        self.cur.execute("DELETE FROM anomaly_pending WHERE case_id = ? AND rule = ?", (self.case_id, rule))
        self.anomaly(rule, timer["reason"], [*timer["evidence"], {**self.ev, "role": "after_due"}],
                     occurred=timer["due"], due_at=iso(timer["due"]), armed_version=timer["armed"])

    def settle(self, rule: str) -> None:
        """The step this timer waited for: in time, or (already breached) late."""
        timer = self.st["timers"].pop(rule, None)
        if timer is None:
            return
        self.cur.execute("DELETE FROM anomaly_pending WHERE case_id = ? AND rule = ?", (self.case_id, rule))
        if timer["due"] is not None and self.at <= timer["due"]:
            # In time. If an anomaly was raised meanwhile on what the ledger then held (a sweep,
            # or a later-dated step keyed in first), this step, keyed in late, clears it.
            self.clear(rule, timer)
        elif rule not in self.breached_now:
            self.annotate(rule, timer, {**self.ev, "role": "settled_late"})

    def annotate(self, rule: str, timer: dict[str, Any], evidence: dict[str, Any], reason: str | None = None) -> None:
        """Add a step to the evidence of the anomaly this timer raised (if it raised one)."""
        row = self.cur.execute(
            "SELECT evidence, details FROM anomalies WHERE case_id = ? AND rule = ?", (self.case_id, rule)
        ).fetchone()
        if row is None or (orjson.loads(row[1]).get("breaches") or [None])[-1] != timer["armed"]:
            return
        merged = _dumps(_merge(orjson.loads(row[0]), [evidence]))
        if reason is None:
            self.cur.execute("UPDATE anomalies SET evidence = ? WHERE case_id = ? AND rule = ?", (merged, self.case_id, rule))
        else:
            self.cur.execute("UPDATE anomalies SET evidence = ?, reason = ? WHERE case_id = ? AND rule = ?",
                             (merged, reason, self.case_id, rule))

    def clear(self, rule: str, timer: dict[str, Any]) -> None:
        """A sweep (or an event) raised this timer's anomaly on what the ledger then held; this
        step, keyed in later, shows it happened in time."""
        row = self.cur.execute(
            "SELECT status, evidence, details FROM anomalies WHERE case_id = ? AND rule = ?", (self.case_id, rule)
        ).fetchone()
        if row is None or row[0] != "open":
            return
        details = orjson.loads(row[2])
        breaches = details.get("breaches") or []
        if not breaches or breaches[-1] != timer["armed"]:
            return
        evidence = _merge(orjson.loads(row[1]), [{**self.ev, "role": "settled_in_time"}])
        details["cleared"] = {"by_version": self.event.originator_version,
                              "note": "happened in time, recorded later: see the late_entry anomaly"}
        self.cur.execute(
            "UPDATE anomalies SET status = 'cleared', evidence = ?, details = ?, log_position = ? WHERE case_id = ? AND rule = ?",
            (_dumps(evidence), _dumps(details), self.position, self.case_id, rule),
        )

    def acceptance_timer(self, start: Any, evidence: list[dict[str, Any]]) -> None:
        p = self.view.policy
        st = self.st
        cal = self.view.calendars.for_case(st["department"], st["window"])
        due, note = self.view.calendars.working_days_deadline(cal, start, p.accept_within_working_days)
        reason = (f"neither accepted nor refused within {p.accept_within_working_days} working days of receipt "
                  f"(收件后{p.accept_within_working_days}个工作日内未受理): due {due.isoformat()}")
        self.arm("acceptance_overdue", due.timestamp(), reason, evidence, **({"calendar": note} if note else {}))

    # -- per step -----------------------------------------------------------------------------

    def on_submitted(self) -> None:
        self.acceptance_timer(self.event.occurred_at, [{**self.ev, "role": "received"}])

    def on_supplement_requested(self) -> None:
        self.settle("acceptance_overdue")  # the one-time notice stops the 5-day clock

    def on_supplement_received(self) -> None:
        if not self.st["accepted"]:
            self.acceptance_timer(self.event.occurred_at, [{**self.ev, "role": "received"}])

    def on_accepted(self) -> None:
        e, st = self.event, self.st
        st["accepted"] = True
        self.settle("acceptance_overdue")
        terms = e.derived.get("terms")
        if terms is not None:
            st["spot"] = bool(terms["on_the_spot"])
        if st["spot"]:
            local = e.occurred_at.astimezone(self.view.calendars.for_case(st["department"], st["window"]).tz)
            end = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=local.tzinfo)
            self.arm("on_the_spot_overdue", end.timestamp(),
                     f"on-the-spot item (即办件) not concluded on the day it was accepted ({local.date()})",
                     [{**self.ev, "role": "accepted"}])
        legal = e.derived.get("legal_due_at")
        if legal is not None:
            self.arm("legal_limit_exceeded", legal.timestamp(),
                     f"the legal time limit (法定时限) passed: due {legal.isoformat()}",
                     [{**self.ev, "role": "accepted"}])

    def on_refused(self) -> None:
        self.settle("acceptance_overdue")
        self.close()

    def on_withdrawn(self) -> None:
        self.close()

    def on_suspended(self) -> None:
        st = self.st
        st["suspensions"].append(self.ev)
        st["suspended"] = self.ev
        p = self.view.policy
        if len(st["suspensions"]) >= p.suspensions_frequent:
            self.anomaly("suspension_frequent",
                         f"{len(st['suspensions'])} special procedures (特别程序) on one case",
                         [{**s, "role": "suspension"} for s in st["suspensions"]])
        self.arm("suspension_long", self.at + p.suspension_long.total_seconds(),
                 f"a special procedure (特别程序) open longer than {p.suspension_long.days} days",
                 [{**self.ev, "role": "suspended"}])
        self.move("legal_limit_exceeded", None)  # the clock stops

    def on_resumed(self) -> None:
        self.st["suspended"] = None
        self.settle("suspension_long")
        legal = self.event.derived.get("legal_due_at")
        if legal is not None:
            self.move("legal_limit_exceeded", legal.timestamp())

    def on_extended(self) -> None:
        spot = self.st["timers"].get("on_the_spot_overdue")
        if spot is not None:  # an approved extension does not make an on-the-spot item on the spot
            ev = {**self.ev, "role": "extended"}
            spot["evidence"].append(ev)
            spot["reason"] += "; an extension (延期) was approved"
            if spot["breached"]:
                self.annotate("on_the_spot_overdue", spot, ev, spot["reason"])
            else:
                self.cur.execute("UPDATE anomaly_pending SET evidence = ?, reason = ? WHERE case_id = ? AND rule = ?",
                                 (_dumps(spot["evidence"]), spot["reason"], self.case_id, "on_the_spot_overdue"))
        legal = self.event.derived.get("legal_due_at")
        if legal is not None and self.st["suspended"] is None:
            self.move("legal_limit_exceeded", legal.timestamp())

    def on_concluded(self) -> None:
        e, st = self.event, self.st
        self.concluded_late()
        self.settle("on_the_spot_overdue")
        if e.derived.get("within_legal") is False:
            timer = st["timers"].get("legal_limit_exceeded")
            if timer is not None and not timer["breached"]:
                self.breach("legal_limit_exceeded", timer)
        self.close()

    def close(self) -> None:
        """A terminal step: nothing is awaited any more."""
        self.st["suspended"] = None
        for rule in list(self.st["timers"]):
            self.settle(rule)


def sweep_now(esup: Any, now: datetime | None = None) -> int:
    """Catch the anomaly view up, then sweep at ``now`` (default: the system's clock)."""
    view: AnomalyView = esup.runner.view(AnomalyView.name)  # type: ignore[assignment]
    if view.store is None:
        view.bind(esup.views, esup.reference)
    esup.runner.catch_up([AnomalyView.name])
    return view.sweep(now or esup.clock.now())

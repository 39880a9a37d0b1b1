"""A demo hall that lives: the demo district reporting steps as they happen.

``plan_case`` draws one case's steps (when each happens and when the department's system
reports it) from the catalogue in force, the working calendar and office hours, with what a
supervision officer must see now and then: promises missed (yellow and red cards), cases left
untouched, supplements, special procedures (特别程序), refusals without a reason, fees above the
standard, acceptances naming no staff member, steps keyed in days late and whole cases keyed in
at once (体外循环).

* ``recent_history`` ingests the last few working days up to now (``esup demo --live``), each
  step recorded at the instant it was reported (an injected ``ManualClock``), so the first
  screen already has open, overdue and suspended cases.
* ``LiveHall`` keeps reporting while ``esup serve --live-demo`` runs: new cases arrive following
  the day's arrival profile within office hours, and each planned step is sent through the
  ingest service (the same path as ``POST /api/v1/steps/batch``, as that department) when its
  reporting instant comes on the injected clock. Outside office hours and on days off the hall
  is treated as open at an average hour's rate, so the screen still shows a flow; the law's
  clocks (working days and working hours) still start only at the next office session.

Everything is drawn from a seeded ``random.Random``: the same seed, calendar and instants give
the same steps.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
from fractions import Fraction
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterable

from domain.access import Role
from domain.calendar import CHINA_TZ
from domain.errors import DomainError
from domain.organisation import UnitKind
from services.demo import DEPT_PACE, arrival_batches, item_weights
from services.demo_people import enterprise, person
from services.ingest import BatchRefused, Principal

log = logging.getLogger("esup.live_demo")

# Arrivals by local hour (a morning peak at ten, an afternoon one at three; the lunch break and
# the edges of the day are quiet). Only instants inside an office session are used.
HOUR_WEIGHT = {8: 0.2, 9: 0.8, 10: 1.3, 11: 1.1, 12: 0.3, 13: 0.6, 14: 1.1, 15: 1.2, 16: 0.9, 17: 0.4}
PROCEDURES = ("expert_review", "inspection", "hearing", "testing", "appraisal")
REFUSAL_REASONS = ("申请材料不齐全且逾期未补正", "不属于本机关受理范围", "申请事项依法不需要取得行政许可")
SUPPLEMENTS = ("营业执照副本复印件", "法定代表人身份证明", "场地使用证明", "章程修正案", "验资报告")


@dataclass
class Planned:
    at: datetime  # when the source reports it (recorded)
    seq: int
    body: dict[str, Any] = field(compare=False)

    def __lt__(self, other: Planned) -> bool:
        return (self.at, self.seq) < (other.at, other.seq)


class District:
    """What the planner needs of the reference data, read once."""

    def __init__(self, esup: Any) -> None:
        ref = esup.reference
        self.calendar = ref.calendar()
        items = [i.current for i in ref.items()]
        self.items, weights = item_weights(items)
        self.cum = list(itertools.accumulate(weights))
        self.windows: dict[str, list[str]] = {}
        for w in ref.units(UnitKind.WINDOW):
            self.windows.setdefault(w.attrs.get("department", ""), []).append(w.code)
        self.staff: dict[str, list[str]] = {}
        for s in ref.units(UnitKind.STAFF):
            self.staff.setdefault(s.attrs.get("department", ""), []).append(s.code)
        self.hours_items = [i for i in self.items if i.promised_limit.unit.value == "working_hours"]

    def sessions(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.calendar.is_working_day(d):
            return []
        return [(datetime.combine(d, s.start, CHINA_TZ), datetime.combine(d, s.end, CHINA_TZ))
                for s in self.calendar.office_hours.sessions_on(d)]

    def in_session(self, at: datetime) -> bool:
        local = at.astimezone(CHINA_TZ)
        return any(a <= local < b for a, b in self.sessions(local.date()))

    def hour_share(self, d: date) -> dict[int, float]:
        """Each office hour's share of a day's arrivals (the weights over the session minutes)."""
        minutes: dict[int, float] = {}
        for a, b in self.sessions(d):
            t = a
            while t < b:
                minutes[t.hour] = minutes.get(t.hour, 0.0) + HOUR_WEIGHT.get(t.hour, 0.2)
                t += timedelta(minutes=1)
        total = sum(minutes.values()) or 1.0
        return {h: m / total for h, m in minutes.items()}

    def arrival_at(self, rng: random.Random, d: date) -> datetime | None:
        """An instant on ``d`` drawn from the arrival profile, inside a session."""
        spans = self.sessions(d)
        if not spans:
            return None
        while True:
            a, b = rng.choice(spans)
            t = a + timedelta(seconds=rng.randrange(int((b - a).total_seconds())))
            if rng.random() * 1.3 <= HOUR_WEIGHT.get(t.hour, 0.2):
                return t

    def office_instant(self, d: date, hour: int, minutes: int = 0) -> datetime:
        """``minutes`` after ``hour``:00 local time on ``d``."""
        return datetime.combine(d, time(hour), CHINA_TZ) + timedelta(minutes=minutes)


def plan_case(district: District, rng: random.Random, case_no: str, start: datetime, *,
              item: Any = None, outcome: str | None = None, keyed_at: datetime | None = None) -> list[Planned]:
    """The steps of one case submitted at ``start``, each with its reporting instant.

    ``outcome`` forces one (``forgotten``: accepted, taken up, then nothing; ``late``: concluded
    after the promise), else it is drawn, slower departments (``DEPT_PACE``) missing more.
    ``keyed_at``: every step is reported at that instant, seconds apart (a case keyed in late,
    at once). Steps whose deadlines fall in a year with no published calendar are not planned.
    """
    cal = district.calendar
    if item is None:
        # Draw again (a few times) an item whose legal deadline falls in a year with no published
        # calendar: the ingest would refuse its acceptance.
        for _ in range(6):
            item = rng.choices(district.items, cum_weights=district.cum)[0]
            try:
                cal.deadline(start, item.legal_limit)
                break
            except DomainError:
                continue
    dept = item.department
    window = rng.choice(district.windows.get(dept) or [w for ws in district.windows.values() for w in ws])
    staff = rng.choice(district.staff.get(dept) or ["P001"])
    pace = DEPT_PACE.get(dept, 0.5)
    hours = item.promised_limit.unit.value == "working_hours"
    if outcome is None:
        r = rng.random()
        if r < 0.012:
            outcome = "refused"
        elif r < 0.017:
            outcome = "withdrawn"
        elif not item.on_the_spot and r < 0.017 + (0.15 if hours else 0.03) * pace * 2:
            outcome = "forgotten"
        elif not item.on_the_spot and r < 0.017 + (0.30 if hours else 0.07) * pace * 2:
            outcome = "late"
        else:
            outcome = "on_time"
    out: list[tuple[datetime, str, dict[str, Any] | None, dict[str, Any]]] = []

    def step(name: str, at: datetime, data: dict[str, Any] | None = None, **extra: Any) -> None:
        out.append((at, name, data, extra))

    person_kind = rng.random() < 0.65
    applicant = person(rng, start.date()) if person_kind else enterprise(rng, start.date())
    step("submitted", start, {"applicant": applicant, "applicant_kind": "person" if person_kind else "enterprise",
                              "channel": "online" if rng.random() < 0.2 else "window"}, item_code=item.code)
    t = start
    if not item.on_the_spot and outcome not in ("refused",) and rng.random() < 0.05:
        t += timedelta(minutes=rng.randrange(5, 20))
        step("supplement_requested", t, {"materials": rng.choice(SUPPLEMENTS), "reason": "材料不全"})
        nxt = cal.working_days_after(t.date(), 1)
        t = district.office_instant(nxt, 9, rng.randrange(10, 170))
        step("supplement_received", t)
    t += timedelta(minutes=rng.randrange(2, 15))
    if outcome == "refused":
        step("refused", t, {"reason": rng.choice(REFUSAL_REASONS)} if rng.random() < 0.7 else None)
        return _finish(out, case_no, dept, window, staff, rng, keyed_at)
    accepted = t
    try:  # the ingest refuses a deadline in a year with no published calendar: plan none
        promised_due = cal.deadline(accepted, item.promised_limit)
        cal.deadline(accepted, item.legal_limit)
    except DomainError:
        return []
    step("accepted", accepted, None, **({"staff": None} if rng.random() < 0.01 else {}))  # 未登记经办人
    if outcome == "withdrawn":
        step("withdrawn", accepted + timedelta(minutes=rng.randrange(20, 240)), {"reason": "申请人主动撤回"})
        return _finish(out, case_no, dept, window, staff, rng, keyed_at)
    if item.on_the_spot:
        done = accepted + timedelta(minutes=rng.randrange(5, 40))
    elif hours:
        # Counted in office time, as the promise is: a share of it, or past it by up to 1.5 hours.
        value = Fraction(item.promised_limit.value)
        used = value + Fraction(rng.randrange(5, 90), 60) if outcome == "late" else value * Fraction(rng.randrange(15, 70), 100)
        done = cal.deadline_for(accepted, used, item.promised_limit.unit)
    else:
        limit = item.promised_limit.value
        if outcome == "late":
            last_day = (promised_due - timedelta(seconds=1)).date()  # the promise's last day
            done = district.office_instant(cal.working_days_after(last_day, rng.choice([1, 1, 2, 3])), 10, rng.randrange(0, 90))
        else:
            used = min(limit - 1, int(limit * pace * 1.8 * rng.random()))
            day = cal.working_days_after(accepted.date(), used) if used else accepted.date()
            done = district.office_instant(day, 14, rng.randrange(0, 150))
            if done < accepted + timedelta(minutes=30):
                done = accepted + timedelta(minutes=30)
    if not item.on_the_spot:
        mid = accepted + (done - accepted) / 3 if outcome != "forgotten" else accepted + timedelta(minutes=rng.randrange(8, 40))
        step("undertaken", mid, {"opinion": "拟同意"})
        if outcome == "forgotten":
            return _finish(out, case_no, dept, window, staff, rng, keyed_at)
        after = mid
        if not hours and outcome == "on_time" and rng.random() < 0.04:
            # 特别程序: the clock stops from suspension to resumption (deadlines move on by as much).
            resume = district.office_instant(cal.working_days_after(mid.date(), rng.randrange(1, 4)), 10, rng.randrange(0, 60))
            step("suspended", mid + timedelta(minutes=5), {"procedure": rng.choice(PROCEDURES), "reason": "需组织专家评审或现场核查"})
            step("resumed", resume, {"result": "通过"})
            after, done = resume, resume + timedelta(minutes=rng.randrange(90, 240))
        step("reviewed", after + (done - after) / 2, {"opinion": "同意"})
        granted = rng.random() < 0.97
        step("decided", done - timedelta(minutes=5), {"granted": granted})
        if not granted:  # 不予许可: returned, no fee, no licence
            step("concluded", done, {"result": "returned"})
            return _finish(out, case_no, dept, window, staff, rng, keyed_at)
    if item.fee > 0:
        amount = item.fee * 2 if rng.random() < 0.02 else item.fee  # 超标准收费, now and then
        step("fee_charged", done - timedelta(minutes=2), {"amount": str(amount), "fee_item": "工本费"})
    elif rng.random() < 0.004:
        step("fee_charged", done - timedelta(minutes=2), {"amount": "20", "fee_item": "资料费"})  # 免费事项收费
    step("concluded", done, {"result": "issued"})
    if rng.random() < 0.6:
        score = rng.choice([1, 1, 1, 2]) if rng.random() < 0.985 - pace * 0.03 else rng.choice([3, 4, 5])
        step("rated", done + timedelta(minutes=rng.randrange(1, 10)), {"score": score})
    return _finish(out, case_no, dept, window, staff, rng, keyed_at)


def _finish(out: list[tuple[datetime, str, dict[str, Any] | None, dict[str, Any]]], case_no: str, dept: str,
            window: str, staff: str, rng: random.Random, keyed_at: datetime | None) -> list[Planned]:
    planned: list[Planned] = []
    last = out[0][0]
    if keyed_at is not None:
        out = [o for o in out if o[0] <= keyed_at]  # what had happened by the time it is keyed in
    for seq, (at, name, data, extra) in enumerate(out, 1):
        if keyed_at is not None:
            reported = keyed_at + timedelta(seconds=3 * seq)
        else:
            lag = timedelta(seconds=rng.randrange(3, 240))
            if rng.random() < 0.004:
                lag = timedelta(days=rng.randrange(2, 5), minutes=rng.randrange(0, 300))  # 延迟录入
            reported = at + lag
        last = max(last, reported)  # a source sends a case's steps in order
        body = {"event_id": f"{case_no}-{seq}", "case_no": case_no, "step": name,
                "occurred_at": at.astimezone(CHINA_TZ).isoformat(timespec="seconds"), "department": dept,
                "window": window, "staff": staff, **extra}
        if body.get("staff") is None:
            body.pop("staff")
        if data:
            body["data"] = data
        planned.append(Planned(last, seq, body))
    return planned


def report(esup: Any, bodies: list[dict[str, Any]]) -> tuple[int, set[str]]:
    """Send steps through the ingest service as their departments; a refused batch is resent one
    step at a time. Returns how many were stored and the cases whose submission was refused."""
    stored, dead = 0, set()
    by_dept: dict[str, list[dict[str, Any]]] = {}
    for b in bodies:
        by_dept.setdefault(b["department"], []).append(b)
    for dept, group in by_dept.items():
        who = Principal(Role.DEPARTMENT, frozenset({dept}), key=f"live-demo-{dept}")
        try:
            esup.ingest.report(group, who)
            stored += len(group)
            continue
        except BatchRefused:
            pass
        for b in group:
            if b["case_no"] in dead:
                continue
            try:
                esup.ingest.report([b], who)
                stored += 1
            except DomainError as exc:
                log.debug("live demo step refused: %s %s", b["event_id"], getattr(exc, "code", exc))
                if b["step"] == "submitted":
                    dead.add(b["case_no"])
    return stored, dead


def recent_history(esup: Any, clock: Any, now: datetime, *, days: int = 8, per_day: int = 400, seed: int = 2026,
                   progress: Callable[[int], None] | None = None) -> int:
    """The last ``days`` working days before today and today up to ``now``, ``per_day`` cases a
    day, each step recorded when it was reported (``clock``, a ``ManualClock``, is moved).
    Steps to be reported after ``now`` are left out: those cases are still open. Returns the
    number of steps stored."""
    district = District(esup)
    cal = district.calendar
    today = now.astimezone(CHINA_TZ).date()
    rng = random.Random(seed * 100_003 + today.toordinal())
    d, back = today, []
    while len(back) < days:
        d -= timedelta(days=1)
        if cal.is_working_day(d):
            back.append(d)
    planned: list[Planned] = []
    for day in sorted(back) + [today]:
        k = 0
        if not cal.is_working_day(day):
            continue
        for _ in range(per_day):
            at = district.arrival_at(rng, day)
            if at is None or at >= now:
                continue
            k += 1
            keyed = None
            if rng.random() < 0.003 and day < today:  # a whole case keyed in at once, the next day
                keyed = district.office_instant(cal.working_days_after(day, 1), 16, rng.randrange(0, 50))
            planned += plan_case(district, rng, f"CDGX{day:%Y%m%d}{k:04d}", at, keyed_at=keyed)
        # Two short-promise cases a day (working hours) that nobody takes further: red by the next day.
        for j, item in enumerate(district.hours_items[:2]):
            at = district.office_instant(day, 9, 20 + 7 * j)
            if at < now - timedelta(minutes=30):
                k += 1
                planned += plan_case(district, rng, f"CDGX{day:%Y%m%d}{k:04d}", at, item=item, outcome="forgotten")
    due = sorted(p for p in planned if p.at <= now)
    stored = 0
    for chunk in arrival_batches([(p.at, p.body) for p in due], 500):
        clock.set(chunk[-1][0])
        n, _ = report(esup, [b for _, b in chunk])
        stored += n
        if progress:
            progress(len(chunk))
    return stored


class LiveHall:
    """Reports the demo district's steps in real time on ``clock`` until stopped.

    ``rate``: cases a working day (spread over the office hours by the arrival profile; outside
    them, an average office hour's rate). ``tick``: seconds between looks at the clock.
    """

    def __init__(self, esup: Any, clock: Any = None, *, rate: float = 5300, seed: int | None = None,
                 tick: float = 1.0) -> None:
        self.esup = esup
        self.clock = clock or esup.clock
        self.rate = rate
        self.tick = tick
        self.rng = random.Random(seed)
        self.district = District(esup)
        self.agenda: list[Planned] = []
        self.sent = 0
        self.cases = 0
        self._last: datetime | None = None
        self._counter = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def per_second(self, at: datetime) -> float:
        local = at.astimezone(CHINA_TZ)
        day_share = self.district.hour_share(local.date())
        if self.district.in_session(at):
            return self.rate * day_share.get(local.hour, 0.0) / 3600
        return self.rate / 7 / 3600  # "treated as open": an average office hour

    def step(self, now: datetime | None = None) -> int:
        """One look at the clock: new arrivals since the last look, then every step now due.
        Returns the number of steps stored."""
        now = now or self.clock.now()
        self.arrive(now)
        return self.send_due(now)

    def arrive(self, now: datetime) -> None:
        """Plan the cases that arrived since the last look (their steps join the agenda)."""
        last = self._last or now - timedelta(seconds=self.tick)
        self._last = now
        span = max(0.0, (now - last).total_seconds())
        for _ in range(_poisson(self.rng, self.per_second(now) * span)):
            at = now - timedelta(seconds=self.rng.uniform(0, min(span, 5.0)) + 1)
            local = at.astimezone(CHINA_TZ)
            case_no = f"CDGX{local:%Y%m%d}{local.hour * 3600 + local.minute * 60 + local.second:05d}{next(self._counter) % 100:02d}"
            keyed = None
            start = at
            if self.rng.random() < 0.01:  # 体外循环: a case of two to four working days ago keyed in now, at once
                prev = [d for d in _days_back(local.date(), 12) if self.district.calendar.is_working_day(d)]
                if len(prev) >= 4:
                    start, keyed = self.district.office_instant(self.rng.choice(prev[1:4]), 10, self.rng.randrange(0, 50)), now
            for p in plan_case(self.district, self.rng, case_no, start, keyed_at=keyed):
                if keyed is None and p.body["step"] == "submitted":
                    p.at = now  # the first step is reported at once
                p.at = max(p.at, now)
                heapq.heappush(self.agenda, p)
            self.cases += 1

    def send_due(self, now: datetime) -> int:
        """Report every planned step whose reporting instant has come."""
        due: list[dict[str, Any]] = []
        while self.agenda and self.agenda[0].at <= now:
            due.append(heapq.heappop(self.agenda).body)
        if not due:
            return 0
        stored, dead = report(self.esup, due)
        if dead:
            self.agenda = [p for p in self.agenda if p.body["case_no"] not in dead]
            heapq.heapify(self.agenda)
        self.sent += stored
        return stored

    def start(self) -> None:
        if not self.district.items:
            log.warning("live demo: no catalogue items in this store (run esup demo first); not starting")
            return
        self._thread = threading.Thread(target=self._run, name="esup-live-demo", daemon=True)
        self._thread.start()
        log.info("live demo: the district reports about %d cases a working day", self.rate)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.step()
            except Exception:  # keep the hall alive; the next look retries
                log.exception("live demo step failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def _days_back(d: date, n: int) -> Iterable[date]:
    return (d - timedelta(days=k) for k in range(1, n + 1))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


__all__ = ["District", "LiveHall", "Planned", "plan_case", "recent_history", "report"]

"""``python -m tools.bench_warnings``: how late warnings are issued, and how fast the board
answers, with a million open cases.

For each store (SQLite file, PostgreSQL), in one fresh system:

* **real cases**, ingested through the ledger: ``--burst`` cases of a 5-working-day item accepted
  on Fri 26 Sep 2008, whose yellow thresholds all fall at the same instant, Tue 7 Oct 17:00 (how
  day-based limits bunch up in practice: the close of office); and ``--spread`` cases of a
  4-working-hour item accepted a few seconds apart, whose yellow thresholds fall one by one in
  the ten seconds before that (how the scheduler's wake-up accuracy shows).
* **synthetic scale**, said plainly: ``--cases`` open cases are written directly into the view
  tables (``warning_cases`` one row each, ``warning_thresholds`` yellow, red and severe rows
  each, instants spread over the following five months), and ``--warnings`` warnings directly
  into the board tables (``warning_board``, ``warning_status``; about half closed, 40
  departments). They are not in the ledger; none of their thresholds falls due in the window.
* **issuing**: the serving scheduler thread runs against a clock that maps real time onto
  business time from 16:59:40 on 7 Oct 2008 (so the thresholds arrive in real time); the
  delay of each warning is the clock just after its batch committed to the ledger (the
  scheduler's observer hook) minus its threshold instant. p50 / p99 / max, separately for the
  spread and for the burst; the event's own ``issued_at`` (taken before the save) is shown too.
* **queue cost**: the scheduler's two queries (the earliest pending instant; the due rows) at
  full size against the same queries before the synthetic fill: their ratio shows the index at
  work (it would grow with the open cases if they were scanned).
* **board**: ``WarningService.board`` (SQL plus shaping rows into the response) for an officer's
  open board, one department's, one department's red cards, a department as of a random past
  instant, everything as of a random past instant; and one department's board over HTTP
  (in-process ASGI client, JSON rendering included). p50 / p99.

Absolute figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from domain.calendar import CHINA_TZ

STORES = ("sqlite", "postgres")
WINDOW_START = datetime(2008, 10, 7, 16, 59, 40, tzinfo=CHINA_TZ)
BURST_AT = datetime(2008, 10, 7, 17, 0, tzinfo=CHINA_TZ)
SPREAD_FIRST = datetime(2008, 10, 7, 16, 59, 50, tzinfo=CHINA_TZ)  # 3.2 office hours after 13:47:50
DEPARTMENTS = [f"D{i:02d}" for i in range(40)]


class RunningClock:
    """Business time that runs with real time from ``start``."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


# -- set-up -------------------------------------------------------------------------------------


def open_system(store: str, base: Path, pg: Any):
    from domain.clock import ManualClock
    from domain.organisation import UnitKind
    from infra.settings import Settings
    from services.system import Esup

    settings = Settings(data_dir=base / store, postgres=pg.env(pg.create_database("esup_bench_warnings")) if pg else None)
    clock = ManualClock(datetime(2008, 9, 26, 9, 0, tzinfo=CHINA_TZ))
    esup = Esup.open(settings, clock)
    ref = esup.reference
    ref.put_unit(UnitKind.DEPARTMENT, "GS", {"name": "工商局"})
    ref.put_unit(UnitKind.DEPARTMENT, "DS", {"name": "地税局"})
    for code in DEPARTMENTS:  # the synthetic warnings' departments (department keys read their boards)
        ref.put_unit(UnitKind.DEPARTMENT, code, {"name": f"部门 {code}"})
    ref.put_item("GS-001", {"name": "企业设立登记", "department": "GS", "kind": "licence",
                            "legal_limit": {"value": 20, "unit": "working_days"},
                            "promised_limit": {"value": 5, "unit": "working_days"}})
    ref.put_item("DS-001", {"name": "税务登记", "department": "DS", "kind": "licence",
                            "legal_limit": {"value": 20, "unit": "working_days"},
                            "promised_limit": {"value": 4, "unit": "working_hours"}})
    return esup, clock


def ingest_real(esup: Any, clock: Any, burst: int, spread: int) -> float:
    """Real cases through the ledger; returns seconds taken."""
    steps: list[dict[str, Any]] = []
    for i in range(burst):
        when = (datetime(2008, 9, 26, 9, 0, tzinfo=CHINA_TZ) + timedelta(seconds=3 * i)).isoformat()
        no = f"B{i:07d}"
        steps.append({"event_id": f"{no}-s", "case_no": no, "step": "submitted", "occurred_at": when, "department": "GS",
                      "item_code": "GS-001"})
        steps.append({"event_id": f"{no}-a", "case_no": no, "step": "accepted", "occurred_at": when, "department": "GS"})
    gap = 10.0 / max(1, spread)
    for i in range(spread):
        when = (datetime(2008, 10, 7, 13, 47, 50, tzinfo=CHINA_TZ) + timedelta(seconds=gap * i)).isoformat()
        no = f"S{i:07d}"
        steps.append({"event_id": f"{no}-s", "case_no": no, "step": "submitted", "occurred_at": when, "department": "DS",
                      "item_code": "DS-001"})
        steps.append({"event_id": f"{no}-a", "case_no": no, "step": "accepted", "occurred_at": when, "department": "DS"})
    clock.set(datetime(2008, 10, 7, 13, 49, tzinfo=CHINA_TZ))
    t = time.perf_counter()
    for k in range(0, len(steps), 1000):
        esup.ingest.report(steps[k:k + 1000])
    esup.runner.catch_up()
    return time.perf_counter() - t


def synthetic_rows(cases: int, warnings: int, seed: int = 2008):
    from projections.warnings import us

    rng = random.Random(seed)
    start = us(datetime(2008, 10, 8, tzinfo=CHINA_TZ))
    span = 150 * 86_400_000_000
    day = 86_400_000_000

    def case_rows():
        for i in range(cases):
            cid = str(uuid.UUID(int=(1 << 120) + i))
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            y = start + rng.randrange(span)
            red, severe = y + day, y + 16 * day
            no = f"SYN{i:09d}"
            yield (cid, no, dept, "SYN-001", y - 5 * day, 5, "working_days", 20, "working_days", red, severe, 2), [
                (cid, "yellow", "yellow", y, 2, no, dept, "SYN-001", red, severe, "synthetic"),
                (cid, "red", "red", red, 2, no, dept, "SYN-001", red, severe, "synthetic"),
                (cid, "severe", "severe", severe, 2, no, dept, "SYN-001", red, severe, "synthetic"),
            ]

    def warning_rows():
        issued0 = us(datetime(2008, 6, 1, tzinfo=CHINA_TZ))
        wspan = us(datetime(2008, 10, 7, 12, tzinfo=CHINA_TZ)) - issued0
        levels = ["yellow"] * 6 + ["red"] * 3 + ["severe"]
        for i in range(warnings):
            wid = str(uuid.UUID(int=(2 << 120) + i))
            dept = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
            level = levels[rng.randrange(len(levels))]
            issued = issued0 + rng.randrange(wspan)
            status_path = ["issued"]
            r = rng.random()
            if r < 0.5:
                status_path += ["answered", "closed"]
            elif r < 0.65:
                status_path += ["answered"]
            elif r < 0.75:
                status_path += ["escalated"]
            times = [issued]
            for _ in status_path[1:]:
                times.append(times[-1] + rng.randrange(1, 3 * day))
            acts = dict(zip(status_path, times))
            board = (wid, f"W{i:09d}", f"W{i:09d}", dept, "SYN-001", level, level, "synthetic", status_path[-1],
                     issued - 3600_000_000, issued, issued, issued + 15 * day, acts.get("answered"),
                     "synthetic" if "answered" in acts else None, acts.get("escalated"),
                     acts["escalated"] + 3 * day if "escalated" in acts else None, acts.get("closed"), len(status_path), 0)
            statuses = [(wid, v + 1, s, t, times[v + 1] if v + 1 < len(times) else None)
                        for v, (s, t) in enumerate(zip(status_path, times))]
            yield board, statuses

    return case_rows(), warning_rows()


CASE_COLS = ("case_id", "case_no", "department", "item_code", "accepted_at", "p_value", "p_unit", "l_value", "l_unit",
             "promised_due_at", "legal_due_at", "version")
THRESHOLD_COLS = ("case_id", "rule", "level", "due_at", "case_version", "case_no", "department", "item_code",
                  "promised_due_at", "legal_due_at", "basis")
BOARD_COLS = ("warning_id", "case_id", "case_no", "department", "item_code", "level", "rule", "basis", "status",
              "threshold_at", "issued_at", "promised_due_at", "legal_due_at", "answered_at", "explanation",
              "escalated_at", "escalation_due_at", "closed_at", "version", "position")
STATUS_COLS = ("warning_id", "version", "status", "from_at", "to_at")


def fill(esup: Any, cases: int, warnings: int, chunk: int = 100_000) -> float:
    """Write the synthetic rows straight into the view tables; returns seconds taken."""
    case_iter, warning_iter = synthetic_rows(cases, warnings)
    t = time.perf_counter()
    pg = esup.settings.store == "postgres"

    def write(table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if pg:
            with esup.views.pool.connection() as conn, conn.cursor() as raw:
                with raw.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
        else:
            with esup.views.transaction() as cur:
                cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)

    cbuf: list[tuple] = []
    tbuf: list[tuple] = []
    for crow, trows in case_iter:
        cbuf.append(crow)
        tbuf.extend(trows)
        if len(cbuf) >= chunk:
            write("warning_cases", CASE_COLS, cbuf)
            write("warning_thresholds", THRESHOLD_COLS, tbuf)
            cbuf, tbuf = [], []
    write("warning_cases", CASE_COLS, cbuf)
    write("warning_thresholds", THRESHOLD_COLS, tbuf)
    bbuf: list[tuple] = []
    sbuf: list[tuple] = []
    for brow, srows in warning_iter:
        bbuf.append(brow)
        sbuf.extend(srows)
        if len(bbuf) >= chunk:
            write("warning_board", BOARD_COLS, bbuf)
            write("warning_status", STATUS_COLS, sbuf)
            bbuf, sbuf = [], []
    write("warning_board", BOARD_COLS, bbuf)
    write("warning_status", STATUS_COLS, sbuf)
    with esup.views.transaction() as cur:
        cur.execute("ANALYZE" if not pg else "ANALYZE warning_thresholds")
        if pg:
            for table in ("warning_cases", "warning_board", "warning_status"):
                cur.execute(f"ANALYZE {table}")
    elapsed = time.perf_counter() - t
    # Flush the bulk load now, so a checkpoint does not land in the measurement window.
    if pg:
        with esup.views.pool.connection() as conn:
            conn.execute("CHECKPOINT")
    else:
        import sqlite3

        conn = sqlite3.connect(esup.views.path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return elapsed


# -- measurements --------------------------------------------------------------------------------


def queue_cost(esup: Any, n: int = 200) -> dict[str, float]:
    from services.warning_scheduler import WarningScheduler

    s = WarningScheduler(esup.ledger, esup.views, esup.clock)
    now = WINDOW_START - timedelta(minutes=1)
    return {"next_due": statistics.median(timed(s.next_due, n)),
            "due_none": statistics.median(timed(lambda: s.due(now, 500), n))}


def issue(esup: Any, burst: int, spread: int, timeout: float = 600.0) -> dict[str, Any]:
    from domain.warning import CaseWarning
    from projections.warnings import us
    from services.warning_scheduler import WarningScheduler

    clock = RunningClock(WINDOW_START)
    scheduler = WarningScheduler(esup.ledger, esup.views, clock, esup.runner)
    last_us = us(BURST_AT)
    committed: dict[Any, datetime] = {}  # warning id -> the clock just after its batch committed

    def observe(saved: list[CaseWarning]) -> None:
        t = clock.now()
        for w in saved:
            committed[w.id] = t

    scheduler.observers.append(observe)

    def left() -> int:
        with esup.views.transaction() as cur:
            return cur.execute("SELECT COUNT(*) FROM warning_thresholds WHERE due_at <= ?", (last_us,)).fetchone()[0]

    scheduler.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and (clock.now() < BURST_AT or left() > 0):
            time.sleep(0.05)
    finally:
        scheduler.stop()
    spread_d, burst_d, recorded_d, last = [], [], [], None
    start = 0
    while True:
        batch = esup.ledger.recorder.select_notifications(start=start, limit=1000, topics=[CaseWarning.Issued.TOPIC],
                                                          inclusive_of_start=False)
        if not batch:
            break
        for n in batch:
            e = esup.ledger.mapper.to_domain_event(n)
            done = committed[e.originator_id]
            delay = (done - e.threshold_at).total_seconds() * 1000
            (spread_d if e.item_code == "DS-001" else burst_d).append(delay)
            recorded_d.append((e.timestamp - e.threshold_at).total_seconds() * 1000)
            last = done if last is None or done > last else last
        start = batch[-1].id
    burst_s = (last - BURST_AT).total_seconds() if last is not None and burst_d else float("nan")
    return {"spread": spread_d, "burst": burst_d, "recorded": recorded_d, "burst_seconds": burst_s,
            "expected": (spread, burst)}


def board_costs(esup: Any, n: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from domain.access import Role
    from services.ingest import Principal

    rng = random.Random(7)
    svc = esup.warnings
    officer = Principal(Role.OFFICER, key="bench")
    lo, hi = datetime(2008, 7, 1, tzinfo=CHINA_TZ), datetime(2008, 10, 7, tzinfo=CHINA_TZ)

    def past() -> datetime:
        return lo + (hi - lo) * rng.random()

    def dept() -> Principal:
        return Principal(Role.DEPARTMENT, frozenset({rng.choice(DEPARTMENTS)}), key="bench")

    out = {
        "officer, open board (first 1000)": timed(lambda: svc.board(officer), n),
        "one department, open": timed(lambda: svc.board(dept()), n),
        "one department, red, open": timed(lambda: svc.board(dept(), level="red"), n),
        "one department, as of a past instant": timed(lambda: svc.board(dept(), as_of=past()), n),
        "officer, as of a past instant (first 1000)": timed(lambda: svc.board(officer, as_of=past()), n),
    }
    client = TestClient(create_app(esup))
    keys = {d: esup.access.create("department", [d]) for d in DEPARTMENTS}
    out["HTTP: one department, open"] = timed(
        lambda: client.get("/api/v1/warnings", headers={"Authorization": f"Bearer {keys[rng.choice(DEPARTMENTS)]}"}), n)
    with esup.views.transaction() as cur:
        total, still_open = cur.execute(
            "SELECT COUNT(*), SUM(CASE WHEN status <> 'closed' THEN 1 ELSE 0 END) FROM warning_board").fetchone()
    out["_rows"] = [float(still_open), float(total) / len(DEPARTMENTS)]
    return out


def measure(store: str, args: argparse.Namespace, base: Path, pg: Any) -> dict[str, Any]:
    esup, clock = open_system(store, base, pg)
    try:
        ingest_s = ingest_real(esup, clock, args.burst, args.spread)
        small = queue_cost(esup)
        fill_s = fill(esup, args.cases, args.warnings)
        large = queue_cost(esup)
        with esup.views.transaction() as cur:
            thresholds = cur.execute("SELECT COUNT(*) FROM warning_thresholds").fetchone()[0]
            open_cases = cur.execute("SELECT COUNT(*) FROM warning_cases").fetchone()[0]
        issued = issue(esup, args.burst, args.spread)
        boards = board_costs(esup, args.queries)
    finally:
        esup.close()
    return {"store": store, "ingest_s": ingest_s, "fill_s": fill_s, "small": small, "large": large,
            "thresholds": thresholds, "open_cases": open_cases, "issued": issued, "boards": boards}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"warnings bench: {args.cases:,} synthetic open cases written directly into the view tables "
          f"(warning_cases, and warning_thresholds x3: yellow/red/severe), {args.warnings:,} synthetic warnings on the "
          f"board; plus {args.burst + args.spread:,} real cases ingested through the ledger "
          f"({args.burst:,} yellow at 2008-10-07 17:00:00 at once, {args.spread:,} spread over the 10 s before)")
    for r in results:
        iss = r["issued"]
        print(f"\n[{r['store']}]  open cases {r['open_cases']:,}, threshold rows {r['thresholds']:,}; "
              f"real ingest {r['ingest_s']:.1f} s, synthetic fill {r['fill_s']:.1f} s")
        got = (len(iss["spread"]), len(iss["burst"]))
        print(f"  issued {got[0]:,}/{iss['expected'][0]:,} spread and {got[1]:,}/{iss['expected'][1]:,} burst warnings")
        for name, d in (("spread (one at a time)", iss["spread"]), ("burst (all at 17:00:00)", iss["burst"])):
            print(f"  delay threshold -> issued, {name:<24} p50 {pct(d, 50):8.1f} ms   p99 {pct(d, 99):8.1f} ms   "
                  f"max {max(d) if d else float('nan'):8.1f} ms")
        print(f"  (issued_at as recorded on the event, taken before the batch is saved: p50 {pct(iss['recorded'], 50):.1f} ms, "
              f"p99 {pct(iss['recorded'], 99):.1f} ms)")
        if iss["burst"]:
            print(f"  burst of {len(iss['burst']):,} issued within {iss['burst_seconds']:.2f} s "
                  f"({len(iss['burst']) / max(iss['burst_seconds'], 1e-9):,.0f} warnings/s)")
        small, large = r["small"], r["large"]
        for key, label in (("next_due", "earliest pending instant (MIN(due_at))"), ("due_none", "due rows, none due yet")):
            print(f"  queue: {label:<40} {large[key]:.3f} ms at {r['thresholds']:,} rows vs {small[key]:.3f} ms "
                  f"before the fill: ratio {large[key] / max(small[key], 1e-9):.2f}")
        rows = r["boards"].pop("_rows")
        print(f"  board ({int(rows[0]):,} open warnings; ~{rows[1]:,.0f} per department in all statuses; "
              f"a response holds at most 1000):")
        for name, times in r["boards"].items():
            print(f"    {name:<44} p50 {pct(times, 50):7.2f} ms   p99 {pct(times, 99):7.2f} ms")
    print("\nDelays include the clock's granularity and the scheduler's sleep/wake; figures depend on the machine.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_warnings", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="synthetic open cases (default 1,000,000)")
    parser.add_argument("--warnings", type=int, default=200_000, help="synthetic warnings on the board (default 200,000)")
    parser.add_argument("--burst", type=int, default=5_000, help="real cases turning yellow at one instant (default 5,000)")
    parser.add_argument("--spread", type=int, default=200, help="real cases turning yellow one by one (default 200)")
    parser.add_argument("--queries", type=int, default=200, help="board queries per kind (default 200)")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated, from sqlite,postgres")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="esup-bench-warnings-"))
    pg, started = None, False
    try:
        results = []
        for store in args.stores.split(","):
            if store == "postgres" and pg is None:
                from infra import pgserver

                pg = pgserver.from_environment()
                if pg is None:
                    pg, started = pgserver.start_embedded(base / "pg"), True
            results.append(measure(store, args, base, pg if store == "postgres" else None))
        report(results, args)
    finally:
        if started:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

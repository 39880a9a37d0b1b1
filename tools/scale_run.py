"""``python -m tools.scale_run``: one district-year on PostgreSQL, ingested, rebuilt and queried.

A district-year is the demo district (``services.demo``: ``build_district``, then the seed's mix
of cases from ``stream_case_steps``, the streaming form of ``case_steps``) with 1.33 million
cases, about 7.2 million steps and 14.5 million events. Phases (``--phase``):

* ``generate-ingest``: an embedded PostgreSQL in ``DIR/pg`` (kept afterwards), the district, then
  every step through ``esup.ingest.report`` in arrival batches, the clock at each batch's last
  arrival (as ``ingest_demo``). Progress (steps, events/s, ETA, RSS) goes to ``DIR/progress.log``
  every ``--every`` seconds, and the position to ``DIR/state.json`` after each batch: run the same
  command again to continue an interrupted ingest (the generator is replayed and the steps
  already stored are skipped; a batch stored just before a crash answers as duplicates).
* ``rebuild``: ``esup.runner.rebuild()`` of every view over the stored log (re-runnable).
* ``query``: the real HTTP app (uvicorn on 127.0.0.1, in this process) and ``--requests``
  requests each of the live warning board (``GET /api/v1/warnings``, what the dashboard reads;
  empty at the year's end once every generated case has concluded), the board as of a past day
  by business time (what the dashboard reads when a day is picked), the monitor summary, a case's current state (``GET /api/v1/cases/{no}``, random cases), a case's
  whole history (``GET /api/v1/cases/{no}/events``, random cases) and ``--metrics-requests`` of
  a metrics query over the year; p50/p99/max per endpoint.
* ``all``: the three in turn.

Every phase prints wall time, rates and the peak RSS of this process (the PostgreSQL server's
own memory is its own processes'), and appends them to ``DIR/results.jsonl``. Try a small
year first: ``python -m tools.scale_run --dir /tmp/esup-scale-20k --cases 20000``.
Cases whose generated steps put one before the case's own submission (a slip of the generator
the ledger rightly refuses, which would void a whole batch) are left out and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.inline_server import serve_in_thread, stop

DISTRICT_YEAR = 1_330_049  # 1.33 million: 5,299 cases on each of 2008's 251 working days
STEPS_PER_CASE = 5.43  # the seed's mix, measured on the demo generator (for the ETA only)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", required=True, type=Path, help="data directory (PostgreSQL, keys, state); kept afterwards")
    p.add_argument("--cases", type=int, default=DISTRICT_YEAR, help=f"cases in the year (default {DISTRICT_YEAR:,})")
    p.add_argument("--phase", default="all", choices=["generate-ingest", "rebuild", "query", "all"])
    p.add_argument("--seed", type=int, default=2008)
    p.add_argument("--batch", type=int, default=1000, help="steps per report call (default 1000, the API's limit)")
    p.add_argument("--requests", type=int, default=200, help="requests per endpoint in the query phase (default 200)")
    p.add_argument("--metrics-requests", type=int, default=30,
                   help="requests of the metrics query, which sums the whole year's fact rows (default 30)")
    p.add_argument("--every", type=float, default=30.0, help="seconds between progress lines (default 30)")


# -- the store ---------------------------------------------------------------------------------


def _rss_mb() -> float:
    """Peak resident set size of this process, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now_rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # pragma: no cover
        return float("nan")


class Run:
    """The data directory: its PostgreSQL server, database and state file."""

    def __init__(self, root: Path, cases: int, seed: int) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_path = self.root / "state.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        if self.state and (self.state.get("cases"), self.state.get("seed")) != (cases, seed):
            raise SystemExit(f"{self.root} holds a run of {self.state.get('cases')} cases (seed {self.state.get('seed')}); "
                             "use another --dir for another size")
        self.state.setdefault("cases", cases)
        self.state.setdefault("seed", seed)
        self.pg: Any = None

    def save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_path)

    def open(self) -> tuple[Any, Any]:
        import warnings

        from domain.calendar import CHINA_TZ
        from domain.clock import ManualClock
        from infra import pgserver
        from infra.settings import Settings
        from services.system import Esup

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            self.pg = pgserver.start_embedded(self.root / "pg", keep=True)
        if "dbname" not in self.state:
            self.state["dbname"] = self.pg.create_database("esup_scale")
            self.save_state()
        settings = Settings(data_dir=self.root / "esup", postgres=self.pg.env(self.state["dbname"]), max_batch=1000)
        clock = ManualClock(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))
        return Esup.open(settings, clock), clock

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()  # stops the server; its data stays in DIR/pg
            self.pg = None

    def record(self, phase: str, figures: dict[str, Any]) -> None:
        line = {"phase": phase, "at": datetime.now().astimezone().isoformat(timespec="seconds"),
                "cases": self.state["cases"], **figures}
        with open(self.root / "results.jsonl", "a") as fh:
            fh.write(json.dumps(line) + "\n")


class Log:
    def __init__(self, path: Path) -> None:
        self.fh = open(path, "a", buffering=1)

    def __call__(self, msg: str) -> None:
        line = f"{datetime.now().astimezone().strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        self.fh.write(line + "\n")


# -- phases ------------------------------------------------------------------------------------


def generate_ingest(run: Run, args: argparse.Namespace, say: Log) -> dict[str, Any]:
    from domain.calendar import CHINA_TZ
    from services.demo import arrival_batches, build_district, stream_case_steps
    from services.ingest import BatchRefused

    esup, clock = run.open()
    try:
        rng = random.Random(args.seed)
        clock.set(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))
        build_district(esup, rng)  # idempotent: a resumed run re-puts the same (unchanged) units and items
        done = int(run.state.get("steps_stored", 0))
        if run.state.get("ingest_finished"):
            say(f"ingest already finished ({done:,} steps); nothing to do")
            return {}
        generated = {"cases": 0, "dropped": 0}

        def keep(steps: list[tuple[datetime, dict[str, Any]]]) -> bool:
            generated["cases"] += 1
            first = datetime.fromisoformat(steps[0][1]["occurred_at"])
            if any(datetime.fromisoformat(body["occurred_at"]) < first for _, body in steps):
                generated["dropped"] += 1
                return False
            return True

        stream = stream_case_steps(esup, args.cases, rng, keep=keep)
        skipped = 0
        if done:
            say(f"resuming: skipping the {done:,} steps already stored")
            for _ in stream:
                skipped += 1
                if skipped >= done:
                    break
        recorder = esup.ledger.recorder
        events0 = recorder.max_notification_id() or 0
        say(f"ingest: {args.cases:,} cases (seed {args.seed}), batches of {args.batch}, into {run.root / 'pg'} "
            f"database {run.state['dbname']}; {events0:,} events stored before")
        t0 = time.perf_counter()
        last_line = t0
        steps = refused = 0
        for chunk in arrival_batches(stream, args.batch):
            bodies = [body for _, body in chunk]
            clock.set(chunk[-1][0])
            while bodies:
                try:
                    esup.ingest.report(bodies)
                    break
                except BatchRefused as exc:  # never seen with the filter above; kept so a slip cannot stop the run
                    bad = {e.index for e in exc.errors}
                    refused += len(bad)
                    say(f"refused {len(bad)} steps: {[e.as_dict()['code'] for e in exc.errors][:5]}")
                    bodies = [b for i, b in enumerate(bodies) if i not in bad]
            steps += len(chunk)
            run.state["steps_stored"] = done + steps
            run.save_state()
            now = time.perf_counter()
            if now - last_line >= args.every:
                last_line = now
                say(progress_line(steps, done, now - t0, generated, args.cases, recorder, events0))
        elapsed = time.perf_counter() - t0
        events = (recorder.max_notification_id() or 0) - events0
        run.state["ingest_finished"] = True
        run.state["steps_total"] = done + steps
        run.save_state()
        figures = {"steps": steps, "events": events, "seconds": round(elapsed, 1),
                   "steps_per_s": round(steps / elapsed, 1) if elapsed else None,
                   "events_per_s": round(events / elapsed, 1) if elapsed else None,
                   "cases_dropped": generated["dropped"], "steps_refused": refused, "peak_rss_mb": round(_rss_mb(), 1),
                   "resumed_after_steps": done}
        say(f"ingest done: {steps:,} steps, {events:,} events in {elapsed:,.1f} s = {figures['events_per_s']:,} events/s "
            f"({figures['steps_per_s']:,} steps/s); {generated['dropped']} generated cases left out; "
            f"peak RSS {figures['peak_rss_mb']:,.0f} MB")
        return figures
    finally:
        esup.close()
        run.close()


def progress_line(steps: int, done: int, elapsed: float, generated: dict[str, int], cases: int, recorder: Any,
                  events0: int) -> str:
    events = (recorder.max_notification_id() or 0) - events0
    total_steps = cases * STEPS_PER_CASE
    rate = steps / elapsed
    left = max(total_steps - done - steps, 0) / rate if rate else float("inf")
    return (f"{done + steps:,} steps ({100 * (done + steps) / total_steps:.1f}% of ~{total_steps:,.0f}), "
            f"cases generated {generated['cases']:,}/{cases:,}; {events / elapsed:,.0f} events/s, {rate:,.0f} steps/s; "
            f"ETA {left / 60:,.0f} min; RSS {_now_rss_mb():,.0f} MB (peak {_rss_mb():,.0f})")


def rebuild(run: Run, args: argparse.Namespace, say: Log) -> dict[str, Any]:
    esup, _ = run.open()
    try:
        head = esup.ledger.recorder.max_notification_id() or 0
        say(f"rebuild: every view over {head:,} notifications")
        seen: dict[str, int] = {}
        t0 = time.perf_counter()
        last = [t0]

        def progress(view: str, n: int) -> None:
            seen[view] = seen.get(view, 0) + n
            now = time.perf_counter()
            if now - last[0] >= args.every:
                last[0] = now
                say(f"rebuild: {view} {seen[view]:,}/{head:,}; {sum(seen.values()) / (now - t0):,.0f} notifications/s; "
                    f"RSS {_now_rss_mb():,.0f} MB (peak {_rss_mb():,.0f})")

        replayed = esup.runner.rebuild(progress=progress)
        elapsed = time.perf_counter() - t0
        figures = {"notifications": head, "replayed": replayed, "seconds": round(elapsed, 1),
                   "events_per_s": round(head / elapsed, 1) if elapsed else None, "peak_rss_mb": round(_rss_mb(), 1)}
        say(f"rebuild done: {replayed:,} notifications replayed over all views ({head:,} in the log) in {elapsed:,.1f} s "
            f"= {figures['events_per_s']:,} log events/s; peak RSS {figures['peak_rss_mb']:,.0f} MB")
        return figures
    finally:
        esup.close()
        run.close()


def query(run: Run, args: argparse.Namespace, say: Log) -> dict[str, Any]:
    import httpx

    from domain.calendar import CHINA_TZ

    esup, clock = run.open()
    server = thread = None
    try:
        clock.set(datetime(2008, 12, 31, 17, 0, tzinfo=CHINA_TZ))  # the year's last afternoon: "now"
        esup.runner.catch_up()
        issued = 0
        if esup.warnings is not None:
            # What a server waking at that moment does first: issue every warning whose threshold
            # has passed (else the board would be measured empty). Re-running the phase issues
            # nothing new.
            t0 = time.perf_counter()
            issued = len(esup.warnings.check())
            say(f"query: {issued:,} warnings issued as of {clock.now().isoformat()} in {time.perf_counter() - t0:,.1f} s")
        key = esup.access.create("officer", label="scale-run")
        server, thread, port = serve_in_thread(esup, "scale-uvicorn")
        rng = random.Random(args.seed)
        n = args.requests
        cases = run.state["cases"]
        endpoints = {
            "warning board (GET /api/v1/warnings)": ["/api/v1/warnings"] * n,
            "monitor summary (GET /api/v1/monitor/summary)": ["/api/v1/monitor/summary?date=2008-12-31"] * n,
            # What the dashboard reads when an officer picks a past day: the board by business
            # time (the cards earned by that day's end, up to 1,000). The live board above is empty
            # at the year's end when every generated case has concluded.
            "board as of a day (GET /api/v1/warnings?as_of=…&by=occurred)":
                ["/api/v1/warnings?as_of=2008-06-30T23:59:59%2B08:00&by=occurred"] * n,
            "case (GET /api/v1/cases/{no})": [f"/api/v1/cases/CDGX2008{rng.randrange(1, cases + 1):07d}" for _ in range(n)],
            # A case's whole history, as an officer replays it (every event, its hash chain).
            "case history (GET /api/v1/cases/{no}/events)": [
                f"/api/v1/cases/CDGX2008{rng.randrange(1, cases + 1):07d}/events" for _ in range(n)],
            "metrics (GET /api/v1/metrics?group_by=department)": [
                "/api/v1/metrics?group_by=department&from=2008-01-01&to=2008-12-31"] * min(n, args.metrics_requests),
        }
        figures: dict[str, Any] = {"warnings_issued": issued}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                          timeout=600) as client:
            for name, paths in endpoints.items():
                client.get(paths[0])  # warm: the first request pays for imports and caches
                times, statuses = [], {}
                for path in paths:
                    t0 = time.perf_counter()
                    r = client.get(path)
                    times.append(1000 * (time.perf_counter() - t0))
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                times.sort()
                row = {"requests": len(paths), "p50_ms": round(times[len(times) // 2], 2),
                       "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                       "max_ms": round(times[-1], 2), "statuses": statuses, "bytes": len(r.content)}
                figures[name] = row
                say(f"query {name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms "
                    f"(statuses {statuses}, {row['bytes']:,} bytes)")
        figures["peak_rss_mb"] = round(_rss_mb(), 1)
        return figures
    finally:
        stop(server, thread)
        esup.close()
        run.close()


def working_days_2008() -> int:
    from domain.calendar import DEFAULT_OFFICE_HOURS, WorkingCalendar
    from infra.calendar_source import schedules_from_chinesecalendar
    from services.demo import working_days

    return len(working_days(WorkingCalendar(schedules_from_chinesecalendar(), DEFAULT_OFFICE_HOURS, provisional=True), 2008))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.scale_run", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    days = working_days_2008()
    if args.cases % days:
        # The generator spreads cases evenly, in order of day, only when each day gets the same
        # number; otherwise it draws days at random and cannot stream.
        rounded = -(-args.cases // days) * days
        print(f"--cases {args.cases:,} rounded up to {rounded:,} ({rounded // days:,} on each of {days} working days)")
        args.cases = rounded
    run = Run(args.dir, args.cases, args.seed)
    say = Log(run.root / "progress.log")
    phases = ["generate-ingest", "rebuild", "query"] if args.phase == "all" else [args.phase]
    for phase in phases:
        t0 = time.perf_counter()
        figures = {"generate-ingest": generate_ingest, "rebuild": rebuild, "query": query}[phase](run, args, say)
        if figures:
            run.record(phase, {**figures, "wall_s": round(time.perf_counter() - t0, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

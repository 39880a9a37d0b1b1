"""``esup bench``: ingest throughput as a ratio to a raw-insert floor measured in the same run.

Machines are noisy, so an absolute rate means little on its own. For each store this measures,
seconds apart on the same machine and on the same bytes:

* **app**: the demo district's 2008 cases (``services.demo``: ``build_district`` then
  ``case_steps``, fixed seed) ingested with ``esup.ingest.report`` in batches, the clock set to
  each batch's last recorded-at as ``ingest_demo`` does. Only the ``report`` calls are timed.
  Each step stores two events (the case event and its ``SourceEvent`` idempotency record).
* **raw**: the exact rows the app stored (originator_id, originator_version, topic, state), read
  back from the ledger's events table and inserted into a fresh table of the same schema
  (created by eventsourcing's own recorder, same settings as the app) in a fresh database of the
  same kind, one transaction per app transaction, with ``executemany``. Only the inserts and
  commits are timed; the best of ``--raw-repeats`` runs is kept: the physical floor for
  "storing these bytes".
* **http**: the same batches POSTed to ``/api/v1/steps/batch`` of the real API (uvicorn on
  127.0.0.1 in a background thread, a fresh SQLite store, an admin key, one keep-alive httpx
  client), timed around each request; compared with the SQLite raw floor and with the in-process
  SQLite app.

``ratio`` = app events/s ÷ raw events/s. ``ceiling`` = the ratio an ingest would reach that did
nothing but what every ingest of these events must: encode each with the ledger's mapper (the
events are first decoded from the stored rows, untimed), hash each case event's chain body, and
the raw insert (best of ``--raw-repeats``): raw ÷ (encode + hash + raw). It bounds what any
speeding up of the domain and service code can give with this stored format.

``--profile`` adds one more ingest that splits the app path into reference checks / case loads
/ save (encode, insert) / the rest, and a cProfile top list of a further run; neither feeds the
ratios.

Generated cases with a step before their own submission (a generator slip the ledger refuses)
are left out and counted in the notes. A PostgreSQL batch taking longer than ``--stall`` seconds
is treated as hung (eventsourcing's pipelined insert over a Unix socket does hang at ~500 KB):
its connection is ended and the store is reported as failed instead of the bench hanging.

Run with ``esup bench`` or ``python -m tools.bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tools.inline_server import serve_in_thread, stop

STORES = ("sqlite", "postgres", "http")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=5000,
                   help="demo cases to ingest per store (about 5.4 steps and 10.8 events each; default 5000)")
    p.add_argument("--stores", default=",".join(STORES),
                   help="comma-separated, from sqlite,postgres,http (default all three)")
    p.add_argument("--batch", type=int, default=500, help="steps per report call / HTTP request (default 500)")
    p.add_argument("--seed", type=int, default=2008, help="demo generator seed (default 2008)")
    p.add_argument("--raw-repeats", type=int, default=3, help="raw baseline runs per store; the best is kept (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON document on stdout (the human-readable report then goes to stderr)")
    p.add_argument("--profile", nargs="?", const="sqlite", choices=["sqlite", "postgres"],
                   help="also split the app path and cProfile it (on sqlite unless named)")
    p.add_argument("--top", type=int, default=12, help="profile entries to print (default 12)")
    p.add_argument("--stall", type=float, default=10.0,
                   help="seconds one PostgreSQL batch may take before it counts as hung: its connection is then "
                        "ended and the store reported as failed rather than the bench hanging (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# -- the workload ----------------------------------------------------------------------------


@dataclass
class Workload:
    batches: list[tuple[Any, list[dict[str, Any]]]]  # (recorded-at of the batch, steps)
    steps: int
    dropped_cases: list[str] = field(default_factory=list)


def prepare(esup: Any, clock: Any, cases: int, seed: int, batch: int) -> Workload:
    """Build the district in a fresh store and generate its cases' steps, batched."""
    import random
    from datetime import datetime

    from domain.calendar import CHINA_TZ
    from services.demo import build_district, case_steps

    rng = random.Random(seed)
    clock.set(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))  # as ingest_demo does
    build_district(esup, rng)
    pairs = list(case_steps(esup, cases, rng))
    # The generator can put a case's decision a few minutes before its submission (a case accepted
    # late in the afternoon and concluded within minutes); the ledger rightly refuses that, and a
    # refusal voids the whole batch. Such cases are left out, and counted in the report.
    submitted = {body["case_no"]: datetime.fromisoformat(body["occurred_at"])
                 for _, body in pairs if body["step"] == "submitted"}
    bad = {body["case_no"] for _, body in pairs
           if datetime.fromisoformat(body["occurred_at"]) < submitted[body["case_no"]]}
    pairs = [pair for pair in pairs if pair[1]["case_no"] not in bad]
    # As ingest_demo: a batch is recorded when its last step arrives.
    batches = [(chunk[-1][0], [body for _, body in chunk])
               for chunk in (pairs[i:i + batch] for i in range(0, len(pairs), batch))]
    return Workload(batches, len(pairs), sorted(bad))


# -- stores ----------------------------------------------------------------------------------


class Stores:
    """Fresh stores under one temp dir, and one PostgreSQL server started on first use."""

    def __init__(self, root: Path, max_batch: int, raw_repeats: int, stall: float, say: Callable[[str], None]) -> None:
        self.root = root
        self.stall = stall
        self.max_batch = max_batch
        self.raw_repeats = raw_repeats
        self.say = say
        self.pg: Any = None
        self.pg_embedded = False
        self.pg_databases: list[str] = []
        self._n = 0

    def postgres(self) -> Any:
        if self.pg is None:
            from infra import pgserver

            self.pg = pgserver.from_environment()
            if self.pg is None:
                import warnings

                self.say("starting an embedded PostgreSQL ...")
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, harmless
                    self.pg = pgserver.start_embedded(self.root / "pg")
                self.pg_embedded = True
        return self.pg

    def fresh_db(self) -> str:
        name = self.postgres().create_database("esup_bench")
        self.pg_databases.append(name)
        return name

    def settings(self, kind: str) -> Any:
        from infra.settings import Settings

        self._n += 1
        data_dir = self.root / f"{self._n:02d}-{kind}"
        postgres = self.postgres().env(self.fresh_db()) if kind == "postgres" else None
        return Settings(data_dir=data_dir, postgres=postgres, max_batch=max(self.max_batch, 1000))

    def open(self, kind: str) -> tuple[Any, Any]:
        from datetime import datetime, timezone

        from domain.clock import ManualClock
        from services.system import Esup

        clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
        return Esup.open(self.settings(kind), clock), clock

    def watchdog(self, settings: Any) -> Watchdog | None:
        """For a PostgreSQL store: end connections stuck for longer than the stall limit."""
        if not settings.postgres:
            return None
        db = settings.postgres["POSTGRES_DBNAME"]
        return Watchdog(self.stall, lambda: self.terminate_stuck(db))

    def terminate_stuck(self, dbname: str) -> int:
        """End the backends of ``dbname`` stuck reading a request from their client."""
        import psycopg

        with psycopg.connect(self.postgres().conninfo(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND wait_event = 'ClientRead' AND pid <> pg_backend_pid()", (dbname,)).fetchall()
        return len(rows)

    def close(self) -> None:
        if self.pg is not None:
            if self.pg_embedded:
                self.pg.stop()
            else:  # an operator's server: drop what we created
                import psycopg

                with psycopg.connect(self.pg.conninfo(), autocommit=True) as conn:
                    for name in self.pg_databases:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.pg = None


class EventsTable:
    """The stored-events table of an eventsourcing application, read and written with the driver."""

    def __init__(self, settings: Any, app_name: str = "ledger", create: bool = False) -> None:
        self.settings = settings
        self.kind = settings.store
        env = settings.app_env(app_name)
        if create:  # the schema exactly as eventsourcing creates it for this application
            from eventsourcing.persistence import InfrastructureFactory
            from eventsourcing.utils import Environment

            factory = InfrastructureFactory.construct(Environment(app_name, env))
            try:
                recorder = factory.application_recorder()
                self.table = recorder.events_table_name
                self.schema = getattr(recorder.datastore, "schema", None)
            finally:
                factory.close()
        else:
            self.table = "stored_events" if self.kind == "sqlite" else f"{app_name}_events"
            self.schema = (settings.postgres or {}).get("POSTGRES_SCHEMA", "").strip() or "public"
        if self.kind == "sqlite":
            import sqlite3

            # The same connection settings as eventsourcing's SQLite pool: autocommit, WAL.
            self.conn = sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.id_col = "rowid"
            self.qtable = self.table
            self.insert_sql = f"INSERT INTO {self.table} VALUES (?,?,?,?)"  # eventsourcing's statement
        else:
            import psycopg

            pg = settings.postgres
            info = {"host": pg["POSTGRES_HOST"], "port": pg["POSTGRES_PORT"], "user": pg["POSTGRES_USER"],
                    "dbname": pg["POSTGRES_DBNAME"]}
            if pg.get("POSTGRES_PASSWORD"):
                info["password"] = pg["POSTGRES_PASSWORD"]
            self.conn = psycopg.connect(**info, autocommit=True)
            self.id_col = "notification_id"
            self.qtable = f'"{self.schema}"."{self.table}"'
            self.insert_sql = (f"INSERT INTO {self.qtable} (originator_id, originator_version, topic, state) "
                               "VALUES (%s, %s, %s, %s)")
        self.param = "?" if self.kind == "sqlite" else "%s"

    def count(self, after: int = 0) -> tuple[int, int]:
        """(rows, bytes of state) stored after notification id ``after``."""
        row = self.conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM {self.qtable} WHERE {self.id_col} > {self.param}",
            (after,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def rows(self, after: int, upto: int) -> list[tuple[Any, ...]]:
        p = self.param
        return self.conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.qtable} "
            f"WHERE {self.id_col} > {p} AND {self.id_col} <= {p} ORDER BY {self.id_col}",
            (after, upto),
        ).fetchall()

    def insert_batch(self, rows: list[tuple[Any, ...]]) -> float:
        """One transaction, ``executemany``; returns the seconds it took, commit included."""
        if self.kind == "sqlite":
            cur = self.conn.cursor()
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            cur.executemany(self.insert_sql, rows)
            cur.execute("COMMIT")
            elapsed = time.perf_counter() - t0
            cur.close()
            return elapsed
        t0 = time.perf_counter()
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(self.insert_sql, rows)
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


# -- the measurements --------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    steps: int
    events: int = 0
    state_bytes: int = 0
    transactions: list[tuple[int, int]] = field(default_factory=list)  # notification id ranges (after, upto]

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


def bar(total: int, desc: str, unit: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, disable=quiet,
                dynamic_ncols=True, file=sys.stderr)


class Stalled(RuntimeError):
    """A batch made no progress for the stall limit (and its connection was ended to get out)."""


class Watchdog:
    """Calls ``unstick`` (every second) while one batch has taken longer than ``limit`` seconds."""

    def __init__(self, limit: float, unstick: Callable[[], Any]) -> None:
        import threading

        self.limit, self.unstick = limit, unstick
        self.started: float | None = None
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            started = self.started
            if started is not None and time.monotonic() - started > self.limit:
                self.tripped = True
                try:
                    self.unstick()
                except Exception:  # pragma: no cover - best effort
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def ingest_app(esup: Any, clock: Any, work: Workload, desc: str, quiet: bool,
               around: Callable[[Callable[[], Any]], Any] | None = None,
               watchdog: Watchdog | None = None) -> Run:
    """Every batch through ``esup.ingest.report``; only the calls are timed."""
    recorder = esup.ledger.recorder
    last = recorder.max_notification_id() or 0
    first = last
    run = Run(0.0, work.steps)
    with bar(work.steps, desc, "step", quiet) as b:
        for i, (recorded_at, bodies) in enumerate(work.batches):
            clock.set(recorded_at)
            if watchdog:
                watchdog.started = time.monotonic()
            t0 = time.perf_counter()
            try:
                outcomes = around(lambda: esup.ingest.report(bodies)) if around else esup.ingest.report(bodies)
            except Exception as exc:
                if watchdog and watchdog.tripped:
                    raise Stalled(f"batch {i + 1} of {len(work.batches)} ({len(bodies)} steps) made no progress "
                                  f"for {watchdog.limit:.0f} s; its connection was ended ({type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from exc
                errors = getattr(exc, "errors", None)
                if errors:
                    details = "; ".join(str(e.as_dict()) for e in errors[:3])
                    raise RuntimeError(f"{desc}: batch {i + 1} was refused ({len(errors)} steps): {details}") from exc
                raise
            finally:
                if watchdog:
                    watchdog.started = None
            run.seconds += time.perf_counter() - t0
            if watchdog and watchdog.tripped:  # a retry got through after the unsticking: the timing is void
                raise Stalled(f"batch {i + 1} of {len(work.batches)} ({len(bodies)} steps) made no progress for "
                              f"{watchdog.limit:.0f} s; it went through only after its connection was ended "
                              "and eventsourcing retried")
            created = sum(1 for o in outcomes if o.status == "created")
            if created != len(bodies):
                raise RuntimeError(f"{desc}: {len(bodies) - created} of {len(bodies)} steps were not created")
            upto = recorder.max_notification_id() or 0
            run.transactions.append((last, upto))
            last = upto
            b.update(len(bodies))
    table = EventsTable(esup.settings)
    try:
        if table.table != recorder.events_table_name:
            raise RuntimeError(f"the ledger's events table is {recorder.events_table_name}, not {table.table}")
        run.events, run.state_bytes = table.count(first)
    finally:
        table.close()
    return run


def codec_floor(esup: Any, run: Run, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds to encode every event the app stored (the ledger's own mapper)
    and to hash every case event's chain body, with no domain logic around them."""
    from domain.canonical import chain_hash

    from itertools import takewhile

    from infra.logs import notifications_after

    mapper = esup.ledger.mapper
    first, last = run.transactions[0][0], run.transactions[-1][1]
    events = [mapper.to_domain_event(n)
              for n in takewhile(lambda n: n.id <= last, notifications_after(esup.ledger.recorder, first))]
    if len(events) != run.events:
        raise RuntimeError(f"codec floor: read {len(events)} events, the app stored {run.events}")
    # A case number of the stored length: the hash's cost, not its value, is what is measured.
    bodies = [e.hash_body("CDGX2008000001") for e in events if hasattr(e, "hash_body")]
    genesis = "0" * 64
    encode_s = hash_s = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for e in events:
            mapper.to_stored_event(e)
        encode_s = min(encode_s, time.perf_counter() - t)
        t = time.perf_counter()
        for body in bodies:
            chain_hash(genesis, body)
        hash_s = min(hash_s, time.perf_counter() - t)
    return {"encode_seconds": round(encode_s, 4), "hash_seconds": round(hash_s, 4), "hashed": len(bodies)}


def raw_floor(stores: Stores, source_settings: Any, app: Run, desc: str, quiet: bool) -> list[float]:
    """Re-insert the app's rows into a fresh table of the same schema; seconds per repeat."""
    source = EventsTable(source_settings)
    times: list[float] = []
    try:
        for r in range(stores.raw_repeats):
            target = EventsTable(stores.settings(source.kind), create=True)
            watchdog = stores.watchdog(target.settings)
            total = 0.0
            try:
                with bar(app.events, f"{desc} {r + 1}/{stores.raw_repeats}", "ev", quiet) as b:
                    for i, (after, upto) in enumerate(app.transactions):
                        rows = source.rows(after, upto)
                        if watchdog:
                            watchdog.started = time.monotonic()
                        try:
                            total += target.insert_batch(rows)
                        except Exception as exc:
                            if watchdog and watchdog.tripped:
                                raise Stalled(f"{desc}: raw batch {i + 1} made no progress for {watchdog.limit:.0f} s "
                                              f"({type(exc).__name__})") from exc
                            raise
                        finally:
                            if watchdog:
                                watchdog.started = None
                        b.update(len(rows))
                n, nbytes = target.count()
                if (n, nbytes) != (app.events, app.state_bytes):
                    raise RuntimeError(f"{desc}: raw copy holds {n} rows / {nbytes} bytes, "
                                       f"the app stored {app.events} / {app.state_bytes}")
            finally:
                if watchdog:
                    watchdog.close()
                target.close()
            times.append(total)
    finally:
        source.close()
    return times


def ingest_http(stores: Stores, args: argparse.Namespace, reference: Workload | None) -> tuple[Run, Any]:
    """The same batches POSTed to the real API over a fresh SQLite store; the run and the store's settings."""
    import httpx
    import orjson

    esup, clock = stores.open("sqlite")
    server = thread = None
    try:
        work = prepare(esup, clock, args.cases, args.seed, args.batch)
        if reference is not None and work.batches != reference.batches:
            raise RuntimeError("the demo generator gave different steps in the HTTP store")
        key = esup.access.create("admin", label="bench")
        server, thread, port = serve_in_thread(esup, "bench-uvicorn")
        recorder = esup.ledger.recorder
        last = recorder.max_notification_id() or 0
        first = last
        run = Run(0.0, work.steps)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client, \
                bar(work.steps, "http: POST /steps/batch", "step", args.quiet) as b:
            for recorded_at, bodies in work.batches:
                payload = orjson.dumps(bodies)
                clock.set(recorded_at)  # the server runs in this process: same recorded-at as in-process
                t0 = time.perf_counter()
                response = client.post("/api/v1/steps/batch", content=payload)
                run.seconds += time.perf_counter() - t0
                if response.status_code != 201 or response.json().get("created") != len(bodies):
                    raise RuntimeError(f"http: {response.status_code} {response.text[:300]}")
                upto = recorder.max_notification_id() or 0
                run.transactions.append((last, upto))
                last = upto
                b.update(len(bodies))
        table = EventsTable(esup.settings)
        try:
            run.events, run.state_bytes = table.count(first)
        finally:
            table.close()
        return run, esup.settings
    finally:
        stop(server, thread)
        esup.close()


# -- where the time goes -----------------------------------------------------------------------


class Split:
    """Wall-clock time inside a few methods of the app path (wrapped on the instances)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, attr: str, label: str) -> None:
        fn = getattr(obj, attr)
        seconds, calls = self.seconds, self.calls
        seconds[label], calls[label] = 0.0, 0
        perf = time.perf_counter

        def timed(*a: Any, **k: Any) -> Any:
            t0 = perf()
            try:
                return fn(*a, **k)
            finally:
                seconds[label] += perf() - t0
                calls[label] += 1

        setattr(obj, attr, timed)


REFRESH = "reference cache check: reference.refresh"
LOAD = "load cases: ingest._load_many (one query a batch)"
DECODE = "  of which decode: mapper.to_domain_event"
SAVE = "save: ingest._save (encode, insert)"
ENCODE = "  of which encode: mapper.to_stored_event"
INSERT = "  of which insert + commit: recorder.insert_events"
REST = "parse, authorise, domain rules, hashing (the rest)"


def profile(stores: Stores, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    import cProfile
    import pstats

    # 1. A split of the app path, without a profiler (the wrappers cost well under 1%).
    esup, clock = stores.open(kind)
    try:
        work = prepare(esup, clock, args.cases, args.seed, args.batch)
        split = Split()
        split.wrap(esup.reference, "refresh", REFRESH)
        split.wrap(esup.ingest, "_load_many", LOAD)
        split.wrap(esup.ledger.events.mapper, "to_domain_event", DECODE)
        split.wrap(esup.ingest, "_save", SAVE)
        split.wrap(esup.ledger.events.mapper, "to_stored_event", ENCODE)
        split.wrap(esup.ledger.events.recorder, "insert_events", INSERT)
        watchdog = stores.watchdog(esup.settings)
        try:
            run = ingest_app(esup, clock, work, f"{kind}: split", args.quiet, watchdog=watchdog)
        finally:
            if watchdog:
                watchdog.close()
    finally:
        esup.close()
    total = run.seconds
    parts = {label: split.seconds[label] for label in (REFRESH, LOAD, DECODE, SAVE, ENCODE, INSERT)}
    parts[REST] = total - parts[REFRESH] - parts[LOAD] - parts[SAVE]
    breakdown = [{"part": label.strip(), "seconds": round(s, 4), "share": round(s / total, 4),
                  "calls": split.calls.get(label), "us_per_step": round(1e6 * s / run.steps, 1)}
                 for label, s in parts.items()]

    # 2. cProfile over another fresh store (only the report calls are profiled).
    esup, clock = stores.open(kind)
    prof = cProfile.Profile()

    def profiled(call: Callable[[], Any]) -> Any:
        prof.enable()
        try:
            return call()
        finally:
            prof.disable()

    try:
        work = prepare(esup, clock, args.cases, args.seed, args.batch)
        watchdog = stores.watchdog(esup.settings)
        try:
            ingest_app(esup, clock, work, f"{kind}: cProfile", args.quiet, around=profiled, watchdog=watchdog)
        finally:
            if watchdog:
                watchdog.close()
    finally:
        esup.close()
    stats = pstats.Stats(prof)
    # Everything profiled ran inside ingest.report: its cumulative time is the whole.
    total_tt = max(v[3] for func, v in stats.stats.items() if func[2] == "report")  # type: ignore[attr-defined]

    def rows(key: int) -> list[dict[str, Any]]:
        entries = sorted(((f, v) for f, v in stats.stats.items() if not f[0].endswith("bench.py")),  # type: ignore[attr-defined]
                         key=lambda kv: kv[1][key], reverse=True)
        return [{"function": where(func), "calls": nc, "tottime": round(tt, 4), "cumtime": round(ct, 4),
                 "tottime_share": round(tt / total_tt, 4), "cumtime_share": round(ct / total_tt, 4)}
                for func, (_cc, nc, tt, ct, _callers) in entries[:args.top]]

    return {"store": kind, "steps": run.steps, "seconds": round(total, 4), "split": breakdown,
            "profiled_seconds": round(total_tt, 4), "by_tottime": rows(2), "by_cumtime": rows(3)}


def where(func: tuple[str, int, str]) -> str:
    import re

    filename, line, name = func
    if filename == "~":
        return name
    path = Path(filename)
    m = re.search(r"/site-packages/|/lib/python3\.\d+/", filename)
    if m:
        return f"{filename[m.end():]}:{line}({name})"
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return f"{path}:{line}({name})"


# -- the report ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import sqlite3
    from importlib.metadata import version

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "eventsourcing": version("eventsourcing"), "sqlite": sqlite3.sqlite_version}


def pg_version(stores: Stores) -> str | None:
    if stores.pg is None:
        return None
    import psycopg

    with psycopg.connect(stores.pg.conninfo(), autocommit=True) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def n(x: float) -> str:
    return f"{x:,.0f}"


def text_report(doc: dict[str, Any]) -> str:
    p, m, r = doc["params"], doc["machine"], doc["results"]
    ok = {store: x for store, x in r.items() if "error" not in x}
    first = next(iter(ok.values()), None)
    out = [f"esup bench: {p['cases']:,} cases (seed {p['seed']}) = {first['steps']:,} steps per store, "
           f"batches of {p['batch']} steps, {first['transactions']} transactions" if first else "esup bench: nothing measured"]
    out.append(f"machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, eventsourcing {m['eventsourcing']}, "
               f"SQLite {m['sqlite']}" + (f", PostgreSQL {m['postgres']}" if m.get("postgres") else ""))
    out.append(f"raw = the app's stored rows re-inserted with executemany into a fresh table of the same schema, "
               f"one transaction per app batch, best of {p['raw_repeats']}")
    out.append("")
    out.append(f"{'store':<10}{'events':>9}{'B/event':>9}{'app s':>9}{'app ev/s':>11}{'steps/s':>10}{'ms/batch':>10}"
               f"{'raw s':>8}{'raw ev/s':>11}{'spread':>8}{'ratio':>8}")
    for store, x in r.items():
        if "error" in x:
            out.append(f"{store:<10}  FAILED (see notes)")
            continue
        raw = x.get("raw") or {}
        out.append(
            f"{store:<10}{x['events']:>9,}{x['state_bytes'] / x['events']:>9.0f}{x['seconds']:>9.2f}"
            f"{n(x['events_per_s']):>11}{n(x['steps_per_s']):>10}{1000 * x['seconds'] / x['transactions']:>10.1f}"
            + (f"{raw['seconds']:>8.2f}{n(raw['events_per_s']):>11}{raw['spread']:>8.2f}{x['ratio']:>8.3f}" if raw
               else f"{'':>8}{n(x['raw_sqlite_events_per_s']):>11}{'':>8}{x['ratio']:>8.3f}" if store == "http"
               else f"{'':>8}{'n/a':>11}")
        )
    out.append("")
    for store, x in ok.items():
        if store == "http":
            vs_app = x.get("ratio_vs_sqlite_app")
            out.append(f"http: {n(x['events_per_s'])} ev/s ({n(x['steps_per_s'])} steps/s); "
                       f"ratio {x['ratio']:.3f} vs the SQLite raw floor"
                       + (f", {vs_app:.3f} vs the in-process SQLite app" if vs_app is not None else ""))
        else:
            raw_text = f"raw {n(x['raw']['events_per_s'])} ev/s, ratio {x['ratio']:.3f}" if x.get("raw") else "raw n/a"
            out.append(f"{store}: app {n(x['events_per_s'])} ev/s, {raw_text}")
            c = x.get("codec_floor")
            if c:
                out.append(f"  ceiling {c['ceiling']:.3f}: encode {c['encode_seconds']:.2f} s ({x['events']:,} events) + hash "
                           f"{c['hash_seconds']:.2f} s ({c['hashed']:,} case events) + raw {x['raw']['seconds']:.2f} s, "
                           "no domain logic (the app at "
                           f"{x['ratio'] / c['ceiling']:.2f} of that)")
    for note in doc.get("notes") or []:
        out.append("")
        out.append(f"NOTE {note}")
    prof = doc.get("profile")
    if prof:
        out.append("")
        out.append(f"where the time goes ({prof['store']}, {prof['steps']:,} steps, {prof['seconds']:.2f} s "
                   "in report, no profiler):")
        for part in prof["split"]:
            label = part["part"] if not part["part"].startswith("of which") else "  " + part["part"]
            out.append(f"  {label:<55}{part['seconds']:>8.2f} s{100 * part['share']:>6.1f}%"
                       f"{part['us_per_step']:>9.1f} µs/step")
        for key, title in (("by_tottime", "own time"), ("by_cumtime", "cumulative time")):
            out.append("")
            out.append(f"cProfile top {len(prof[key])} by {title} (of {prof['profiled_seconds']:.2f} s profiled):")
            out.append(f"  {'calls':>9} {'tottime':>8} {'cumtime':>8} {'share':>6}  function")
            share_key = "tottime_share" if key == "by_tottime" else "cumtime_share"
            for e in prof[key]:
                out.append(f"  {e['calls']:>9,} {e['tottime']:>8.2f} {e['cumtime']:>8.2f} "
                           f"{100 * e[share_key]:>5.1f}%  {e['function']}")
    return "\n".join(out)


def summarise(run: Run, raw_times: list[float] | None, codec: dict[str, float] | None = None) -> dict[str, Any]:
    x: dict[str, Any] = {
        "steps": run.steps, "events": run.events, "state_bytes": run.state_bytes,
        "transactions": len(run.transactions), "seconds": round(run.seconds, 4),
        "events_per_s": round(run.events_per_s, 1), "steps_per_s": round(run.steps_per_s, 1),
    }
    if raw_times:
        best = min(raw_times)
        x["raw"] = {"seconds": round(best, 4), "all_seconds": [round(t, 4) for t in raw_times],
                    "spread": round(max(raw_times) / best, 3), "events_per_s": round(run.events / best, 1)}
        x["ratio"] = round(run.events_per_s / x["raw"]["events_per_s"], 4)
        if codec:
            x["codec_floor"] = {**codec, "ceiling": round(best / (best + codec["encode_seconds"] + codec["hash_seconds"]), 4)}
    return x


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
        add_arguments(parser)
        args = parser.parse_args(args)
    stores_wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores_wanted if s not in STORES]
    if unknown or not stores_wanted:
        print(f"esup bench: unknown store(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STORES)}",
              file=sys.stderr)
        return 2
    if args.cases < 1 or args.batch < 1 or args.raw_repeats < 1:
        print("esup bench: --cases, --batch and --raw-repeats must be positive", file=sys.stderr)
        return 2
    text_out = sys.stderr if args.json else sys.stdout

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="esup-bench-"))
    stores = Stores(root, args.batch, args.raw_repeats, args.stall, say)
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    reference: Workload | None = None
    doc: dict[str, Any] = {
        "params": {"cases": args.cases, "batch": args.batch, "seed": args.seed, "raw_repeats": args.raw_repeats,
                   "stores": stores_wanted},
        "machine": machine(), "results": results, "notes": notes,
    }
    try:
        def in_process(kind: str) -> tuple[Run, Any, dict[str, float]]:
            nonlocal reference
            esup, clock = stores.open(kind)
            watchdog = None
            try:
                say(f"{kind}: building the district and generating {args.cases:,} cases ...")
                work = prepare(esup, clock, args.cases, args.seed, args.batch)
                if reference is None:
                    reference = work
                    if work.dropped_cases:
                        notes.append(
                            f"workload: {len(work.dropped_cases)} of {args.cases:,} generated cases left out "
                            f"(e.g. {', '.join(work.dropped_cases[:3])}): services.demo.case_steps put a step before "
                            "the case's submission (decided = done - 5 min, with done only minutes after a late "
                            "acceptance), which the ledger refuses, voiding the batch.")
                elif work.batches != reference.batches:
                    raise RuntimeError(f"the demo generator gave different steps in the {kind} store")
                watchdog = stores.watchdog(esup.settings)
                run = ingest_app(esup, clock, work, f"{kind}: app", args.quiet, watchdog=watchdog)
                return run, esup.settings, codec_floor(esup, run, args.raw_repeats)
            finally:
                if watchdog:
                    watchdog.close()
                esup.close()

        for kind in [s for s in stores_wanted if s != "http"]:
            try:
                app, settings, codec = in_process(kind)
            except Stalled as exc:
                # Seen with eventsourcing's pipelined insert over a Unix socket at ~500 KB batches.
                notes.append(f"{kind}: the app's insert hung, no timing for this store: {exc}")
                results[kind] = {"error": str(exc)}
                continue
            try:
                raw = raw_floor(stores, settings, app, f"{kind}: raw", args.quiet)
            except Stalled as exc:
                notes.append(f"{kind}: the raw baseline hung: {exc}")
                raw = None
            results[kind] = summarise(app, raw, codec)
            if raw is None:
                results[kind]["ratio"] = None
        if "http" in stores_wanted:
            say("http: starting the API (uvicorn, 127.0.0.1) over a fresh SQLite store ...")
            run, http_settings = ingest_http(stores, args, reference)
            if "sqlite" in results and results["sqlite"].get("raw"):
                raw_eps = results["sqlite"]["raw"]["events_per_s"]
                x = summarise(run, None)
                x["ratio_vs_sqlite_app"] = round(run.events_per_s / results["sqlite"]["events_per_s"], 4)
            else:  # no in-process SQLite run: measure the SQLite floor on the HTTP store's rows
                x = summarise(run, raw_floor(stores, http_settings, run, "http: raw (sqlite)", args.quiet))
                raw_eps = x.pop("raw")["events_per_s"]
            x["ratio"] = round(run.events_per_s / raw_eps, 4)
            x["raw_sqlite_events_per_s"] = raw_eps
            results["http"] = x
        if args.profile:
            say(f"profile: splitting and profiling the app path on {args.profile} ...")
            try:
                doc["profile"] = profile(stores, args.profile, args)
            except Stalled as exc:
                notes.append(f"profile on {args.profile} abandoned: {exc}")
        doc["machine"]["postgres"] = pg_version(stores)
    finally:
        stores.close()
        shutil.rmtree(root, ignore_errors=True)
    print(text_report(doc), file=text_out, flush=True)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 1 if any("error" in x for x in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

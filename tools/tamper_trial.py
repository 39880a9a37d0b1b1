"""Random single-row tamperings of the ledger's stored case events, each one found by ``esup verify``.

A store of each kind is filled with demo cases and a checkpoint is signed over them; then, trial
after trial, one tampering is done with SQL straight on the ledger's table (never through the
application), ``LedgerVerifier`` (what ``esup verify`` runs) is run, and the tampering is undone
(a clean verify is asserted every few trials). The kinds take turns:

* ``edit_byte``: one byte of one stored event's state replaced by another value;
* ``delete_row``: one event row deleted (any case, any version);
* ``delete_last``: a case's last event deleted;
* ``delete_case``: every row of one case deleted;
* ``insert_forged``: a forged row inserted: another event's stored state copied in as the next
  version of some case, or as the first event of a case id that does not exist;
* ``swap_rows``: two event rows exchange their log positions.

A trial is *detected* when verify reports a fault, *located* when its faults name every
tampered event by case number, version and log position. Run (the figures in the report):

    python -m tools.tamper_trial --trials 204 --store both      # 204 per store, 34 of each kind

The suite runs a short version (tests/integration/test_tamper_trial.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from uuid import UUID, uuid4

KINDS = ("edit_byte", "delete_row", "delete_last", "delete_case", "insert_forged", "swap_rows")


class RawLedger:
    """The ledger's events table, reached with SQL of our own."""

    def __init__(self, esup: Any) -> None:
        self.esup = esup
        self.table = esup.ledger.recorder.events_table_name
        self.pg = esup.settings.store == "postgres"
        self.pos = "notification_id" if self.pg else "rowid"
        self.ph = "%s" if self.pg else "?"

    @contextmanager
    def sql(self) -> Iterator[Any]:
        if not self.pg:
            conn = sqlite3.connect(self.esup.settings.data_dir / "ledger.sqlite")
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg

        pg = self.esup.settings.postgres
        with psycopg.connect(host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"], user=pg["POSTGRES_USER"],
                             password=pg["POSTGRES_PASSWORD"], dbname=pg["POSTGRES_DBNAME"]) as conn:
            yield conn

    def _oid(self, value: Any) -> str:
        return str(UUID(str(value))) if not isinstance(value, UUID) else str(value)

    def _stored_oid(self, oid: str) -> Any:
        return UUID(oid) if self.pg else UUID(oid).hex

    def case_rows(self) -> list[tuple[int, str, int, str, bytes]]:
        """(position, originator id, version, topic, state) of every case event, in log order."""
        with self.sql() as conn:
            rows = conn.execute(f"SELECT {self.pos}, originator_id, originator_version, topic, state FROM {self.table}"
                                f" WHERE topic LIKE 'esup.case:%' ORDER BY {self.pos}").fetchall()
        return [(int(r[0]), self._oid(r[1]), int(r[2]), r[3], bytes(r[4])) for r in rows]

    def set_state(self, position: int, state: bytes) -> None:
        with self.sql() as conn:
            n = conn.execute(f"UPDATE {self.table} SET state = {self.ph} WHERE {self.pos} = {self.ph}",
                             (state, position)).rowcount
            assert n == 1

    def delete(self, position: int) -> None:
        with self.sql() as conn:
            assert conn.execute(f"DELETE FROM {self.table} WHERE {self.pos} = {self.ph}", (position,)).rowcount == 1

    def insert(self, oid: str, version: int, topic: str, state: bytes, position: int | None = None) -> int:
        """Insert a row (at ``position``, or where the store puts a new one); its position."""
        ph = self.ph
        with self.sql() as conn:
            if position is None:
                if self.pg:
                    row = conn.execute(f"INSERT INTO {self.table} (originator_id, originator_version, topic, state)"
                                       f" VALUES ({ph}, {ph}, {ph}, {ph}) RETURNING notification_id",
                                       (self._stored_oid(oid), version, topic, state)).fetchone()
                    return int(row[0])
                cur = conn.execute(f"INSERT INTO {self.table} (originator_id, originator_version, topic, state)"
                                   f" VALUES ({ph}, {ph}, {ph}, {ph})", (self._stored_oid(oid), version, topic, state))
                return int(cur.lastrowid)
            conn.execute(f"INSERT INTO {self.table} ({self.pos}, originator_id, originator_version, topic, state)"
                         f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph})", (position, self._stored_oid(oid), version, topic, state))
            return position

    def swap(self, p: int, q: int) -> None:
        ph = self.ph
        with self.sql() as conn:
            for a, b in ((p, -1), (q, p), (-1, q)):
                assert conn.execute(f"UPDATE {self.table} SET {self.pos} = {ph} WHERE {self.pos} = {ph}",
                                    (b, a)).rowcount == 1


Expected = set[tuple[str, int, int]]  # (case number, version, log position)


def tamper(raw: RawLedger, kind: str, rng: random.Random, names: dict[str, str]
           ) -> tuple[Expected, Callable[[], None], str]:
    """Do one tampering; return what verify must name, how to undo it, and what was done."""
    rows = raw.case_rows()
    by_case: dict[str, list[tuple[int, str, int, str, bytes]]] = {}
    for r in rows:
        by_case.setdefault(r[1], []).append(r)
    if kind == "edit_byte":
        pos, oid, v, topic, state = rng.choice(rows)
        at = rng.randrange(len(state))
        new = rng.choice([b for b in range(256) if b != state[at]])
        raw.set_state(pos, state[:at] + bytes([new]) + state[at + 1:])
        return ({(names[oid], v, pos)}, lambda: raw.set_state(pos, state),
                f"byte {at} of {names[oid]} v{v} {state[at]:#04x} -> {new:#04x}")
    if kind in ("delete_row", "delete_last"):
        if kind == "delete_row":
            pos, oid, v, topic, state = rng.choice(rows)
        else:
            pos, oid, v, topic, state = by_case[rng.choice(sorted(by_case))][-1]
        raw.delete(pos)
        return {(names[oid], v, pos)}, lambda: raw.insert(oid, v, topic, state, pos), f"deleted {names[oid]} v{v}"
    if kind == "delete_case":
        oid = rng.choice(sorted(by_case))
        gone = by_case[oid]
        for r in gone:
            raw.delete(r[0])

        def undo() -> None:
            for r in gone:
                raw.insert(r[1], r[2], r[3], r[4], r[0])
        return {(names[oid], r[2], r[0]) for r in gone}, undo, f"deleted case {names[oid]} ({len(gone)} rows)"
    if kind == "insert_forged":
        source = rng.choice(rows)
        if rng.random() < 0.5:  # the next version of a case, with another event's content
            oid = rng.choice(sorted(by_case))
            version = by_case[oid][-1][2] + 1
            pos = raw.insert(oid, version, source[3], source[4])
            what = (names[oid], version, pos)
        else:  # the first event of a case that does not exist (a copy of a real first event)
            first = rng.choice([r for r in rows if r[2] == 1])
            oid = str(uuid4())
            pos = raw.insert(oid, 1, first[3], first[4])
            what = (names[first[1]], 1, pos)  # the forged row claims the copied case's number
        return {what}, lambda: raw.delete(pos), f"forged {what[0]} v{what[1]} at {pos}"
    if kind == "swap_rows":
        a, b = rng.sample(rows, 2)
        raw.swap(a[0], b[0])
        return ({(names[a[1]], a[2], a[0]), (names[b[1]], b[2], b[0])}, lambda: raw.swap(b[0], a[0]),
                f"swapped {names[a[1]]} v{a[2]} and {names[b[1]]} v{b[2]}")
    raise ValueError(kind)


def run_trials(esup: Any, trials: int, seed: int, clean_every: int = 10,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``trials`` tamperings on a store already filled and checkpointed; the results per kind."""
    from projections import merkle as tree_view
    from services.ledger_verify import LedgerVerifier

    rng = random.Random(seed)
    raw = RawLedger(esup)
    names = tree_view.case_numbers(esup.views)
    verifier = LedgerVerifier(esup.ledger, esup.views, esup.checkpoints)
    assert verifier.run().ok, "the untouched store must verify"
    results = {k: {"trials": 0, "detected": 0, "located": 0} for k in KINDS}
    misses: list[dict[str, Any]] = []
    seconds = 0.0
    for i in range(trials):
        kind = KINDS[i % len(KINDS)]
        expected, undo, what = tamper(raw, kind, rng, names)
        t = time.perf_counter()
        report = verifier.run()
        seconds += time.perf_counter() - t
        named = {(f.case_no, f.version, f.position) for f in report.faults}
        r = results[kind]
        r["trials"] += 1
        r["detected"] += not report.ok
        r["located"] += expected <= named
        if report.ok or not expected <= named:
            misses.append({"kind": kind, "what": what, "expected": sorted(expected),
                           "faults": [f.line() for f in report.faults]})
            if log:
                log(f"MISSED {kind}: {what}: {[f.line() for f in report.faults]}")
        undo()
        if (i + 1) % clean_every == 0 or i == trials - 1:
            assert verifier.run().ok, f"undoing trial {i} ({what}) left the store faulty"
    total = {k: sum(r[k] for r in results.values()) for k in ("trials", "detected", "located")}
    return {"kinds": results, "total": total, "misses": misses, "verify_seconds_mean": seconds / max(trials, 1),
            "events": len(raw.case_rows())}


def build(settings: Any, cases: int, seed: int = 7) -> Any:
    """A store with ``cases`` demo cases (and a signed checkpoint over all of them)."""
    from domain.clock import ManualClock
    from services.demo import build_district, case_steps
    from services.system import Esup

    clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
    esup = Esup.open(settings, clock)
    rng = random.Random(seed)
    build_district(esup, rng)
    steps = list(case_steps(esup, cases, rng))
    for i in range(0, len(steps), 500):
        part = steps[i:i + 500]
        clock.set(part[-1][0])
        esup.ingest.report([b for _, b in part])
    esup.runner.catch_up()
    esup.checkpoints.issue()
    return esup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tamper_trial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=204, help="tamperings per store (default 204: 34 of each kind)")
    parser.add_argument("--cases", type=int, default=60, help="demo cases in each store (default 60)")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from infra import pgserver
    from infra.settings import Settings

    out: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="esup-tamper-"))
    pg = None
    try:
        for store in (["sqlite", "postgres"] if args.store == "both" else [args.store]):
            if store == "postgres":
                pg = pgserver.from_environment() or pgserver.start_embedded(base / "pg")
                settings = Settings(data_dir=base / store, postgres=pg.env(pg.create_database()))
            else:
                settings = Settings(data_dir=base / store)
            esup = build(settings, args.cases)
            try:
                out[store] = run_trials(esup, args.trials, args.seed, log=print)
            finally:
                esup.close()
    finally:
        if pg is not None and pgserver.from_environment() is None:
            pg.stop()
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for store, res in out.items():
            t = res["total"]
            print(f"{store}: {res['events']} case events; {t['trials']} tamperings: {t['detected']} detected, "
                  f"{t['located']} located to case, version and position "
                  f"(verify {res['verify_seconds_mean'] * 1000:.0f} ms each)")
            for kind, r in res["kinds"].items():
                print(f"  {kind:14s} {r['trials']:4d} trials  {r['detected']:4d} detected  {r['located']:4d} located")
    ok = all(r["total"]["detected"] == r["total"]["trials"] == r["total"]["located"] for r in out.values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

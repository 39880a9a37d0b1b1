"""Rebuild throughput of the views as a ratio to a raw read of the same log, in the same run.

For each store: the demo district's cases are ingested into a fresh store; then
* **raw**: the whole ledger log read with ``select_notifications`` in pages of 1,000 and every
  event decoded by the ledger's own mapper (best of three): the floor for "reading these
  events" (a view cannot do less than read and decode what it applies);
* **rebuild**: ``esup rebuild`` of every registered view (read the topics the views take, decode
  each event, update the view's tables, commit rows and tracking position per batch), in one
  process (what ``esup rebuild`` does by default) and in ``--workers`` processes (each replaying
  a share of the views side by side, as ``esup rebuild --workers N`` does; each process reads
  and decodes what its views take); ``--rounds`` of each, alternating, the best of each kept.
``ratio`` = rebuild events/s ÷ raw events/s (goal: 0.4). Run: ``python -m tools.bench_rebuild [--cases N]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def raw_read(ledger) -> tuple[int, float]:
    start, n = 0, 0
    decode = ledger.mapper.to_domain_event
    t = time.perf_counter()
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            decode(notification)
        n += len(page)
        start = page[-1].id
    return n, time.perf_counter() - t


def measure(store: str, cases: int, base: Path, pg=None, workers: int = 2, rounds: int = 2) -> dict:
    from domain.clock import ManualClock
    from infra.settings import Settings
    from services.demo import ingest_demo
    from services.system import Esup

    settings = Settings(data_dir=base / store, postgres=pg.env(pg.create_database()) if pg else None)
    clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
    esup = Esup.open(settings, clock)
    try:
        ingest_demo(esup, clock, cases)
        runs = [raw_read(esup.ledger) for _ in range(3)]
        events = runs[0][0]
        raw_s = min(s for _, s in runs)
        one_s = rebuild_s = float("inf")
        for _ in range(rounds):  # alternating, best of each: the machine's noise favours neither
            t = time.perf_counter()
            esup.runner.rebuild()
            one_s = min(one_s, time.perf_counter() - t)
            t = time.perf_counter()
            esup.runner.rebuild(workers=workers)
            rebuild_s = min(rebuild_s, time.perf_counter() - t)
    finally:
        esup.close()
    return {"store": store, "events": events, "raw_eps": events / raw_s, "one_eps": events / one_s,
            "one_ratio": raw_s / one_s, "rebuild_eps": events / rebuild_s, "ratio": raw_s / rebuild_s,
            "workers": workers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel rebuild (default 2)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rebuilds of each kind, alternating; the best of each is kept, as the raw read's best "
                             "of 3 is (default 2)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="esup-bench-rebuild-"))
    pg = None
    try:
        results = []
        for store in args.stores.split(","):
            if store == "postgres" and pg is None:
                from infra import pgserver

                pg = pgserver.start_embedded(base / "pg")
            results.append(measure(store, args.cases, base, pg if store == "postgres" else None, args.workers,
                                   args.rounds))
        from projections.registry import VIEW_NAMES

        print(f"rebuild of views [{', '.join(VIEW_NAMES)}] vs a raw read and decode of the same log")
        for r in results:
            print(f"  {r['store']:<9} {r['events']:>8,} events   raw read+decode {r['raw_eps']:>9,.0f} ev/s   "
                  f"rebuild: 1 process {r['one_eps']:>8,.0f} ev/s (ratio {r['one_ratio']:.3f})   "
                  f"{r['workers']} processes {r['rebuild_eps']:>8,.0f} ev/s   ratio {r['ratio']:.3f} (goal 0.4)")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

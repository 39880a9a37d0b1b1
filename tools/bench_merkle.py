"""What the tamper-evident log costs: tree maintenance against a raw read of the log, and proof
sizes and latency at large sizes.

1. **Maintenance** (per store): demo cases are ingested into a fresh store; then, best of three,
   * ``raw``: the ledger's whole log read with ``select_notifications`` in pages of 1,000, rows
     only, no decoding (the floor for "reading these events", as tools/bench_rebuild.py);
   * ``decode``: the same read, each case event decoded (what any view pays first);
   * ``merkle``: the merkle view alone following the whole log from an empty view store (as a
     server does when events are recorded): decode, leaf hash, frontier, leaf and node rows and
     the frontier committed with the tracking position per batch of 1,000.
   ``cost ratio`` = merkle time ÷ raw time (how many raw reads of the log keeping the tree costs);
   ``tree's own share`` = (merkle − decode) ÷ raw.
2. **The view's tree at 1M leaves** (SQLite): the view's own ``process``/``flush`` code fed
   synthetic case events (no decoding) into a fresh view store: events/s, then inclusion and
   consistency proofs read from the stored leaves and nodes (median and p99 of 200 each).
3. **In memory at 1M and 10M leaves**: synthetic leaves (leaf i = SHA-256(0x00 ‖ i as 8 bytes),
   computed when needed), the frontier appended leaf by leaf, nodes of 256 leaves and up kept;
   proof size (hashes, bytes) and latency of generating and of verifying (median, p99).

Run: ``python -m tools.bench_merkle [--cases 2000] [--sizes 1000000,10000000] [--store sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from domain import merkle


def _best(fn, n: int = 3) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def maintenance(store: str, cases: int, base: Path, pg: Any = None) -> dict[str, Any]:
    from domain.case import CASE_TOPICS
    from domain.clock import ManualClock
    from infra.settings import Settings
    from services.demo import build_district, case_steps
    from services.system import Esup

    settings = Settings(data_dir=base / store, postgres=pg.env(pg.create_database()) if pg else None)
    clock = ManualClock(datetime(2008, 1, 1, tzinfo=timezone.utc))
    esup = Esup.open(settings, clock)
    try:
        rng = random.Random(3)
        build_district(esup, rng)
        steps = list(case_steps(esup, cases, rng))
        for i in range(0, len(steps), 1000):
            part = steps[i:i + 1000]
            clock.set(part[-1][0])
            esup.ingest.report([b for _, b in part])
        recorder, mapper = esup.ledger.recorder, esup.ledger.mapper

        def read(decode: bool) -> int:
            start, n = 0, 0
            while True:
                page = recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False)
                if not page:
                    return n
                for x in page:
                    if x.topic in CASE_TOPICS:
                        n += 1
                        if decode:
                            mapper.to_domain_event(x)
                start = page[-1].id

        events, raw = _best(lambda: read(False))
        _, decode = _best(lambda: read(True))
        from projections.merkle import LedgerTree
        from projections.runner import ProjectionRunner
        from projections.store import PostgresViewStore, SQLiteViewStore

        fresh = iter(range(100))

        def follow() -> int:
            """The merkle view alone, from an empty view store, following the whole log."""
            k = next(fresh)
            store = (PostgresViewStore(settings.postgres, schema=f"bench_merkle_{k}") if settings.postgres
                     else SQLiteViewStore(base / store_name / f"merkle-{k}.sqlite"))
            try:
                return ProjectionRunner(esup.ledger, store, [LedgerTree()]).catch_up()
            finally:
                store.close()

        store_name = store
        _, tree = _best(follow)
        return {"store": store, "case_events": events, "raw_s": raw, "decode_s": decode, "merkle_s": tree,
                "cost_ratio": tree / raw, "tree_share": (tree - decode) / raw,
                "merkle_events_per_s": events / tree}
    finally:
        esup.close()


def _fake(i: int) -> Any:
    digest = merkle.leaf_hash(i.to_bytes(8, "big"))  # any 32 bytes stand for an event's chain hash
    return SimpleNamespace(TOPIC="synthetic", hash=digest.hex(), originator_id=f"c{i // 8}",
                           originator_version=2 + i % 8)


def _pct(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"median_ms": statistics.median(values) * 1000, "p99_ms": values[int(len(values) * 0.99) - 1] * 1000}


def view_at(size: int, base: Path) -> dict[str, Any]:
    from projections import merkle as tree_view
    from projections.merkle import LedgerTree
    from projections.store import SQLiteViewStore

    store = SQLiteViewStore(base / f"view-{size}.sqlite")
    view = LedgerTree()
    with store.transaction(pipeline=False) as cur:
        view.create(cur)
    t = time.perf_counter()
    batch = 1000
    for start in range(0, size, batch):
        with store.transaction() as cur:
            view._load(cur)
            for i in range(start, min(size, start + batch)):
                view.process(cur, _fake(i), i + 1)
            view.flush(cur)
    build = time.perf_counter() - t
    head = tree_view.head(store)
    rng = random.Random(5)
    incl, cons = [], []
    proof: list[bytes] = []
    longest = clongest = 0
    for _ in range(200):
        index = rng.randrange(size)
        t = time.perf_counter()
        proof = tree_view.inclusion_proof(store, index, size)
        incl.append(time.perf_counter() - t)
        assert merkle.verify_inclusion(index, size, merkle.leaf_hash(bytes.fromhex(_fake(index).hash)), proof, head.root)
        first = rng.randrange(1, size)
        t = time.perf_counter()
        cproof = tree_view.consistency_proof(store, first, size)
        cons.append(time.perf_counter() - t)
        longest, clongest = max(longest, len(proof)), max(clongest, len(cproof))
    assert merkle.verify_consistency(first, size, tree_view.root_at(store, first), head.root, cproof)
    rows = {}
    with store.read() as cur:
        for table in ("merkle_leaves", "merkle_nodes"):
            rows[table] = cur.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    store.close()
    return {"leaves": size, "build_s": build, "events_per_s": size / build, "rows": rows,
            "file_mb": (base / f"view-{size}.sqlite").stat().st_size / 1e6,
            "inclusion": {"hashes": longest, **_pct(incl)}, "consistency": {"hashes": clongest, **_pct(cons)}}


class MemoryTree:
    """Synthetic leaves (computed when needed) and the nodes of 2**8 leaves and up, kept."""

    KEEP = 8

    def __init__(self, size: int) -> None:
        self.size = size
        self.levels: dict[int, list[bytes]] = {}
        cr = merkle.CompactRange()
        for i in range(size):
            for level, index, digest in cr.append(self.leaf(i)):
                if level >= self.KEEP:
                    self.levels.setdefault(level, []).append(digest)
        self.root = cr.root()

    @staticmethod
    def leaf(i: int) -> bytes:
        return merkle.leaf_hash(i.to_bytes(8, "big"))

    def get(self, level: int, index: int) -> bytes:
        if level >= self.KEEP:
            return self.levels[level][index]
        return merkle.perfect_root([self.leaf(i) for i in range(index << level, (index + 1) << level)])


def memory_at(size: int) -> dict[str, Any]:
    t = time.perf_counter()
    tree = MemoryTree(size)
    build = time.perf_counter() - t
    rng = random.Random(9)
    gen, ver, cgen, cver = [], [], [], []
    sizes, csizes = [], []
    for _ in range(200):
        index = rng.randrange(size)
        t = time.perf_counter()
        proof = merkle.inclusion_proof(tree.get, index, size)
        gen.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert merkle.verify_inclusion(index, size, tree.leaf(index), proof, tree.root)
        ver.append(time.perf_counter() - t)
        sizes.append(len(proof))
        first = rng.randrange(1, size)
        t = time.perf_counter()
        cproof = merkle.consistency_proof(tree.get, first, size)
        cgen.append(time.perf_counter() - t)
        first_root = merkle.range_hash(tree.get, 0, first)
        t = time.perf_counter()
        assert merkle.verify_consistency(first, size, first_root, tree.root, cproof)
        cver.append(time.perf_counter() - t)
        csizes.append(len(cproof))
    return {"leaves": size, "build_s": build, "appends_per_s": size / build,
            "inclusion": {"hashes_max": max(sizes), "bytes_max": 32 * max(sizes), "generate": _pct(gen), "verify": _pct(ver)},
            "consistency": {"hashes_max": max(csizes), "bytes_max": 32 * max(csizes), "generate": _pct(cgen),
                            "verify": _pct(cver)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_merkle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--view-size", type=int, default=1_000_000, help="leaves in the view-store measurement (0: skip)")
    parser.add_argument("--sizes", default="1000000,10000000", help="in-memory tree sizes (comma-separated)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="esup-bench-merkle-"))
    pg = None
    try:
        for store in (["sqlite", "postgres"] if args.store == "both" else [args.store]):
            if store == "postgres":
                from infra import pgserver

                pg = pgserver.from_environment() or pgserver.start_embedded(base / "pg")
            m = maintenance(store, args.cases, base, pg if store == "postgres" else None)
            print(f"maintenance {m['store']}: {m['case_events']} case events: raw read {m['raw_s'] * 1000:.0f} ms, "
                  f"decoded {m['decode_s'] * 1000:.0f} ms, merkle view followed the log in {m['merkle_s'] * 1000:.0f} ms "
                  f"({m['merkle_events_per_s']:.0f} events/s): cost ratio {m['cost_ratio']:.2f} raw reads "
                  f"(the tree's own share {m['tree_share']:.2f})", flush=True)
        if args.view_size:
            v = view_at(args.view_size, base)
            print(f"view store (SQLite) at {v['leaves']:,} leaves: built {v['build_s']:.1f} s ({v['events_per_s']:.0f} "
                  f"events/s), {v['rows']['merkle_leaves']:,} leaf rows + {v['rows']['merkle_nodes']:,} node rows, "
                  f"{v['file_mb']:.0f} MB; inclusion <= {v['inclusion']['hashes']} hashes median "
                  f"{v['inclusion']['median_ms']:.2f} ms p99 {v['inclusion']['p99_ms']:.2f} ms; consistency "
                  f"<= {v['consistency']['hashes']} hashes median {v['consistency']['median_ms']:.2f} ms p99 "
                  f"{v['consistency']['p99_ms']:.2f} ms", flush=True)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            r = memory_at(size)
            i, c = r["inclusion"], r["consistency"]
            print(f"in memory at {size:,} leaves: built {r['build_s']:.1f} s ({r['appends_per_s']:.0f} appends/s); "
                  f"inclusion <= {i['hashes_max']} hashes ({i['bytes_max']} bytes), generate median "
                  f"{i['generate']['median_ms']:.2f} ms p99 {i['generate']['p99_ms']:.2f} ms, verify median "
                  f"{i['verify']['median_ms']:.3f} ms; consistency <= {c['hashes_max']} hashes ({c['bytes_max']} bytes), "
                  f"generate median {c['generate']['median_ms']:.2f} ms p99 {c['generate']['p99_ms']:.2f} ms, verify "
                  f"median {c['verify']['median_ms']:.3f} ms", flush=True)
    finally:
        if pg is not None:
            from infra import pgserver

            if pgserver.from_environment() is None:
                pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

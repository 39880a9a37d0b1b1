"""The provincial feed's figures, all in one run against one real broker (infra/kafka_broker.py)
and one embedded PostgreSQL:

1. feed throughput: ``FeedRelay.run_once`` over a demo district's ledger (reading the log,
   shaping and encoding, transactions of ``--batch`` records) against kafka-python's own
   ``KafkaProducer`` sending the SAME records (the relay's bytes) with the same acks ("all")
   and idempotence to the same broker: the ratio (goal >= 0.7), best of ``--rounds``
   alternating rounds of each (each on fresh topics; the first round also warms the broker);
2. end to end: a step recorded one at a time (``--rate`` a second) until it is in the
   province's views (the relay following with a 50 ms idle poll, the province's consumer in its
   own thread; the province's table is polled every 10 ms): p50 and p99;
3. province consumption: events/s into its PostgreSQL with 1 and with 2 consumer processes of
   one group, from the first row to the last.

    python -m tools.bench_feed [--cases 3000] [--store sqlite|postgres] [--batch 2000] [--rounds 3] [--e2e 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _topics(name: str, partitions: int = 6):
    from infra.feed_kafka import FeedTopics

    return FeedTopics(data=name, positions=name + ".positions", control=name + ".control", partitions=partitions)


def district(tmp: Path, cases: int, postgres: dict[str, str] | None = None):
    from domain.clock import ManualClock
    from infra.settings import Settings
    from services.demo import ingest_demo
    from services.system import Esup

    clock = ManualClock(__import__("datetime").datetime(2008, 1, 1, tzinfo=__import__("datetime").timezone.utc))
    esup = Esup.open(Settings(data_dir=tmp / "district", postgres=postgres), clock)
    _, steps = ingest_demo(esup, clock, cases)
    return esup, clock, steps


def feed_throughput(esup, bootstrap: str, batch: int, rounds: int = 3) -> tuple[float, float, int, list, float]:
    """(relay records/s, producer alone records/s, records, per-round ratios, transactional
    publisher alone records/s): the best of ``rounds`` alternating rounds of each, every round
    on fresh topics, so the broker's JIT warm-up favours neither side."""
    from infra import feed_kafka
    from kafka import KafkaProducer
    from services.feed import FeedRelay, FeedSource

    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                             batch_size=256 * 1024)
    relay_rates, raw_rates, txn_rates, ratios = [], [], [], []
    n = 0
    for i in range(rounds):
        topics = _topics(f"bench.feed.{i}")
        relay = FeedRelay(FeedSource(esup.ledger, "BENCH"), bootstrap, topics, batch=batch)
        relay.connect()
        started = time.perf_counter()
        n = relay.run_once()
        relay_rates.append(n / (time.perf_counter() - started))
        relay.close()
        if i == 0:
            records = list(feed_kafka.read_all(bootstrap, [topics.data]))
        raw_topics = _topics(f"bench.raw.{i}")
        feed_kafka.ensure_topics(bootstrap, raw_topics)
        producer.send(raw_topics.data, b"warm-up").get(30)
        started = time.perf_counter()
        for r in records:
            producer.send(raw_topics.data, key=r.key, value=r.value, headers=r.headers)
        producer.flush()
        raw_rates.append(len(records) / (time.perf_counter() - started))
        ratios.append(relay_rates[-1] / raw_rates[-1])
        # The same records through the relay's transactional publisher alone (no ledger, no
        # shaping): what the transactions cost, apart from reading and shaping the log.
        txn = feed_kafka.TransactionalPublisher(bootstrap, f"esup-bench-txn-{i}")
        out = [(raw_topics.data, r.key, r.value, r.headers) for r in records]
        started = time.perf_counter()
        for j in range(0, len(out), batch):
            txn.publish(out[j:j + batch])
        txn_rates.append(len(records) / (time.perf_counter() - started))
        txn.close()
    producer.close()
    return max(relay_rates), max(raw_rates), n, ratios, max(txn_rates)


def end_to_end(esup, clock, bootstrap: str, dsn: str, steps: int, rate: float) -> list[float]:
    from infra.province_store import ProvinceStore
    from services.feed import FEED_TOPICS, FeedRelay, FeedSource
    from services.ingest import SYSTEM
    from services.province import Province

    topics = _topics("bench.e2e")
    relay = FeedRelay(FeedSource(esup.ledger, "E2E"), bootstrap, topics, batch=500)
    relay.connect()
    relay.run_once()  # the history first: latency is measured on new steps
    stop = threading.Event()
    t_relay = threading.Thread(target=relay.run, args=(stop, 0.05), daemon=True)
    t_relay.start()
    province = Province(ProvinceStore(dsn), bootstrap, topics, group="bench-e2e", max_records=500)
    province.open()
    province.run_until_caught_up(600)
    t_prov = threading.Thread(target=province.run, args=(stop,), daemon=True)
    t_prov.start()
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    store = ProvinceStore(dsn)

    def watch() -> None:
        last = 0
        with store.read() as cur:
            while not stop.is_set() or len(seen) < len(sent):
                cur.execute("SELECT position FROM province_events WHERE district = 'E2E' AND position > %s", (last,))
                now = time.perf_counter()
                for (p,) in cur.fetchall():
                    seen.setdefault(int(p), now)
                    last = max(last, int(p))
                if stop.is_set() and time.perf_counter() > deadline:
                    return
                time.sleep(0.01)

    deadline = float("inf")
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    base = clock.now()
    for i in range(steps):
        no = f"E2E{i:06d}"
        clock.set(base + timedelta(seconds=i))
        body = {"event_id": f"{no}-sub", "case_no": no, "step": "submitted", "department": "GSJ",
                "occurred_at": (base + timedelta(seconds=i)).isoformat(), "item_code": _an_item(esup)}
        before = esup.ledger.recorder.max_notification_id() or 0
        t0 = time.perf_counter()
        esup.ingest.report([body], SYSTEM)
        for n in esup.ledger.recorder.select_notifications(start=before, limit=10, inclusive_of_start=False):
            if n.topic in FEED_TOPICS:  # the case event (the source-id record beside it is not fed)
                sent[n.id] = t0
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))
    deadline = time.perf_counter() + 30
    while len(seen.keys() & sent.keys()) < len(sent) and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in (t_relay, t_prov, watcher):
        t.join(30)
    relay.close()
    province.close()
    return [seen[p] - t for p, t in sent.items() if p in seen]


_ITEM: list[str] = []


def _an_item(esup) -> str:
    if not _ITEM:
        _ITEM.append(next(i.current.code for i in esup.reference.items() if i.current.department == "GSJ"))
    return _ITEM[0]


def consumption(bootstrap: str, make_dsn, topic: str, expected: int, consumers: int) -> float:
    from infra.province_store import ProvinceStore

    dsn = make_dsn()
    ProvinceStore(dsn)
    env = {**os.environ, "ESUP_FEED_TOPIC": topic, "ESUP_PROVINCE_POLL": "500"}
    procs = [subprocess.Popen([sys.executable, "-m", "api.cli", "province", "--no-http", "--dsn", dsn, "--bootstrap",
                               bootstrap, "--group", f"bench-{consumers}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(consumers)]
    store = ProvinceStore(dsn)
    first = None
    try:
        deadline = time.monotonic() + 900
        with store.read() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT COUNT(*) FROM province_events")
                n = cur.fetchone()[0]
                if n and first is None:
                    first = (time.perf_counter(), n)
                if n >= expected:
                    break
                time.sleep(0.05)
        done = time.perf_counter()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    return (expected - first[1]) / (done - first[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_feed", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000, help="demo cases in the district (about 5.4 steps each)")
    parser.add_argument("--batch", type=int, default=2000, help="log records per relay transaction")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite", help="the district's ledger")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of relay and producer; the best of each")
    parser.add_argument("--e2e", type=int, default=300, help="steps recorded one at a time for the latency")
    parser.add_argument("--rate", type=float, default=50.0, help="steps a second for the latency")
    args = parser.parse_args(argv)

    from infra import pgserver
    from infra.kafka_broker import KafkaBroker

    tmp = Path(tempfile.mkdtemp(prefix="esup-bench-feed-"))
    pg = pgserver.start_embedded(tmp / "pg")
    try:
        with KafkaBroker(data_dir=tmp / "kafka", heap="1g") as broker:
            bootstrap = broker.bootstrap_servers
            print(f"building a district of {args.cases} cases on {args.store}...", flush=True)
            esup, clock, steps = district(tmp, args.cases,
                                          pg.env(pg.create_database("district")) if args.store == "postgres" else None)
            feed_rate, raw_rate, n, ratios, txn_rate = feed_throughput(esup, bootstrap, args.batch, args.rounds)
            print(f"feed throughput: {n} records, best of {args.rounds} rounds: relay {feed_rate:,.0f}/s, kafka-python "
                  f"producer alone {raw_rate:,.0f}/s (acks=all, idempotent), ratio {feed_rate / raw_rate:.2f} "
                  f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); the same records through the relay's "
                  f"transactional publisher alone {txn_rate:,.0f}/s (ratio {txn_rate / raw_rate:.2f})", flush=True)
            for k in (1, 2):
                rate = consumption(bootstrap, lambda: pg.conninfo(pg.create_database("bench")), "bench.feed.0", n, k)
                print(f"province consumption, {k} consumer(s): {rate:,.0f} events/s", flush=True)
            lat = end_to_end(esup, clock, bootstrap, pg.conninfo(pg.create_database("bench")), args.e2e, args.rate)
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(f"end to end (recorded -> in the province's views), {len(lat)} steps at {args.rate:g}/s: "
                  f"p50 {1000 * statistics.median(lat):.0f} ms, p99 {1000 * p99:.0f} ms", flush=True)
            esup.close()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

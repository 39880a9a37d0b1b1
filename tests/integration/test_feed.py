"""The relay (district side of the provincial feed) against a real Kafka 4.x broker: exactly once
for read_committed consumers through kill -9, fencing, broker restarts and a district offline.

The long kill trial (>= 20 kills at random moments) is the same test with more trials:

    ESUP_FEED_KILL_TRIALS=20 .venv/bin/python -m pytest -q -p no:cacheprovider \
        tests/integration/test_feed.py -k kill -s
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from infra import feed_records as fr
from infra.feed_kafka import read_all
from infra.kafka_broker import KafkaBroker
from services.feed import relay_for
from tests.conftest import define_basics
from tests.integration.feed_support import (assert_exactly_once_in_order, feed_bodies, fresh_topics, relay_process,
                                            topic_env, workload)

kafka = pytest.importorskip("kafka")
from kafka.errors import ProducerFencedError  # noqa: E402

pytestmark = [pytest.mark.kafka]


@pytest.fixture
def topics():
    return fresh_topics("t", partitions=3)


def test_every_ledger_record_once_keyed_by_case_with_district_and_position_headers(district, clock, broker, topics):
    workload(district, clock, 60)
    relay = relay_for(district, broker.bootstrap_servers, district="CDGX", batch=40, topics=topics)
    assert relay.connect().position == 0
    district.runner.catch_up()
    try:
        relay.run_once()
    finally:
        relay.close()
    n = assert_exactly_once_in_order(district, broker.bootstrap_servers, "CDGX", topics)
    assert n == 60 * 2 + 40  # submitted and accepted each, concluded for two of three
    records = read_all(broker.bootstrap_servers, [topics.data])
    for r in records:
        body = fr.decode(r.key, r.value, r.headers)  # schema, headers and key checked
        assert dict(r.headers)["esup-district"] == b"CDGX"
        assert int(dict(r.headers)["esup-notification-id"]) == body["notification_id"]
        if body["schema"] == fr.STEP:
            assert r.key == body["case_no"].encode()
            assert len(body["payload"]["hash"]) == 64
        # Personal data stays in the district by default: no name, ID number or staff code.
        assert "张三".encode() not in r.value and b"510101199001011234" not in r.value and b"P001" not in r.value
    # One case, one partition.
    parts: dict[str, set[int]] = {}
    for part, body in feed_bodies(broker.bootstrap_servers, topics):
        parts.setdefault(body["case_no"], set()).add(part)
    assert all(len(p) == 1 for p in parts.values()) and len({min(p) for p in parts.values()}) > 1
    # The anomalies view's rows went too (acceptances naming no staff are not in this workload;
    # conclusions naming none are).
    anomalies = [b for _, b in feed_bodies(broker.bootstrap_servers, topics, schemas=(fr.ANOMALY,))]
    assert anomalies and all(a["payload"]["rule"] for a in anomalies)


def test_masking_is_a_setting(district, clock, broker, topics):
    workload(district, clock, 3)
    relay = relay_for(district, broker.bootstrap_servers, district="MASK", personal="mask", topics=topics)
    relay.connect()
    try:
        relay.run_once()
    finally:
        relay.close()
    steps = [b for _, b in feed_bodies(broker.bootstrap_servers, topics)]
    first = next(b for b in steps if b["payload"]["step"] == "submitted")
    assert first["payload"]["applicant"] == {"name": "张*", "id_number": "510101********1234"}
    assert next(b for b in steps if b["payload"]["step"] == "accepted")["payload"]["staff"] == "P***"


def test_restart_resumes_from_what_kafka_committed_and_a_second_relay_fences_the_first(district, clock, broker,
                                                                                         topics):
    workload(district, clock, 30, prefix="A")
    first = relay_for(district, broker.bootstrap_servers, district="CDGX", batch=10, topics=topics)
    first.connect()
    first.step()
    first.step()
    at = first.state.position
    assert at > 0
    # A second relay for the same district: it starts where the first committed, and fences it.
    second = relay_for(district, broker.bootstrap_servers, district="CDGX", batch=10, topics=topics)
    assert second.connect().position == at
    with pytest.raises(ProducerFencedError):
        first.step()
    first.close()
    workload(district, clock, 10, prefix="B", start="2008-09-27 09:00")
    try:
        second.run_once()
    finally:
        second.close()
    assert_exactly_once_in_order(district, broker.bootstrap_servers, "CDGX", topics)
    # The day that closed (26 Sep) has its digest, counted from the records themselves.
    digests = [b for _, b in feed_bodies(broker.bootstrap_servers, topics, schemas=(fr.DIGEST,))]
    assert [d["day"] for d in digests] == ["2008-09-26"]
    assert digests[0]["count"] == 30 * 2 + 20


def test_kill_9_mid_transaction_loses_and_duplicates_nothing(store_settings, clock, broker, topics):
    """Kill -9 of the relay at random moments (small transactions, so most kills land inside
    one), more steps recorded between kills; then one run to the head."""
    from services.system import Esup

    trials = int(os.environ.get("ESUP_FEED_KILL_TRIALS", "3"))
    seed = int(os.environ.get("ESUP_FEED_KILL_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"kill trials: {trials}, seed {seed}")
    esup = Esup.open(store_settings, clock)
    try:
        define_basics(esup)
        workload(esup, clock, 400)
        env = {**topic_env(topics), "ESUP_FEED_BATCH": "25"}
        killed_inside = 0
        for trial in range(trials):
            proc = relay_process(store_settings, broker.bootstrap_servers, "KILL", env=env)
            # Wait until it is publishing, then kill it at a random moment.
            line = proc.stdout.readline()
            assert "resuming after log position" in line, line + proc.stdout.read()
            time.sleep(rng.uniform(0.05, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stdout.close()
            killed_inside += 1
            workload(esup, clock, 20, prefix=f"K{trial:02d}-", start=f"2008-09-{27 + trial % 3} 09:00")
        proc = relay_process(store_settings, broker.bootstrap_servers, "KILL", "--once", env=env)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        n = assert_exactly_once_in_order(esup, broker.bootstrap_servers, "KILL", topics)
        print(f"{killed_inside} kills, {n} records exactly once")
    finally:
        esup.close()


def test_a_broker_restart_and_a_district_offline_for_an_hour_lose_nothing(district, clock, tmp_path, topics):
    with KafkaBroker(data_dir=tmp_path / "kafka") as own:
        workload(district, clock, 40)
        relay = relay_for(district, own.bootstrap_servers, district="CDGX", batch=20, topics=topics)
        relay.connect()
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop, 0.1), daemon=True)
        thread.start()
        try:
            _wait(lambda: relay.state.position == district.ledger.recorder.max_notification_id(), 60)
            own.stop()  # the broker goes away while the district keeps recording
            workload(district, clock, 30, prefix="R", start="2008-09-26 15:00")
            time.sleep(2)  # the relay meets the dead broker
            own.start()
            workload(district, clock, 10, prefix="S", start="2008-09-26 16:00")
            _wait(lambda: relay.state.position == district.ledger.recorder.max_notification_id(), 120)
        finally:
            stop.set()
            thread.join(30)
            relay.close()
        # Then the district is offline (no relay) for an hour of its log: 60 cases, a minute apart.
        workload(district, clock, 60, prefix="H", start="2008-09-26 17:00")
        later = relay_for(district, own.bootstrap_servers, district="CDGX", topics=topics)
        later.connect()
        try:
            later.run_once()
        finally:
            later.close()
        assert_exactly_once_in_order(district, own.bootstrap_servers, "CDGX", topics)


def _wait(cond, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_esup_serve_publishes_the_feed_when_kafka_is_configured(store_settings, clock, broker, topics):
    """`esup serve` with ESUP_KAFKA_BOOTSTRAP runs the relay beside the API: steps posted over
    HTTP reach the feed."""
    import httpx

    from services.system import Esup
    from tests.integration.feed_support import store_env
    from tests.integration.test_crash import free_port, start_server
    from tests.integration.test_ledger import step, submitted

    esup = Esup.open(store_settings, clock)
    try:
        define_basics(esup)
        workload(esup, clock, 10)
        key = esup.access.create("admin")
        port = free_port()
        env = {**store_env(store_settings), **topic_env(topics), "ESUP_KAFKA_BOOTSTRAP": broker.bootstrap_servers,
               "ESUP_DISTRICT": "SERVE"}
        proc = start_server(None, port, env=env)
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/api/v1/steps/batch", headers={"Authorization": f"Bearer {key}"},
                           json=[submitted("LIVE1", when="2008-09-30T09:00:00+08:00"),
                                 step("LIVE1", "accepted", "2008-09-30T09:10:00+08:00")], timeout=30)
            assert r.status_code == 201, r.text
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/feed/schemas", headers={"Authorization": f"Bearer {key}"})
            assert set(r.json()["schemas"]) >= {"esup.step/1", "esup.warning/1", "esup.anomaly/1", "esup.checkpoint/1"}
            deadline = time.monotonic() + 60
            while True:
                got = {b["case_no"] for _, b in feed_bodies(broker.bootstrap_servers, topics)
                       if b["district"] == "SERVE"}
                if "LIVE1" in got:
                    break
                assert time.monotonic() < deadline, "the served relay did not publish"
                time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(30)
        # The server's scheduler and views may have recorded more (a warning, a settled
        # deadline) after LIVE1 went out and before it stopped: a relay started afterwards
        # resumes from the feed's own position and sends exactly those, as at any restart.
        resumed = relay_for(esup, broker.bootstrap_servers, district="SERVE", topics=topics)
        try:
            resumed.connect()
            resumed.run_once()
        finally:
            resumed.close()
        assert_exactly_once_in_order(esup, broker.bootstrap_servers, "SERVE", topics)
    finally:
        esup.close()

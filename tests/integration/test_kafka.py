"""A real Kafka 4.x broker (infra.kafka_broker) carrying step envelopes through kafka-python."""

from __future__ import annotations

import time

import pytest

from infra.envelope import decode_envelope, encode_envelope
from infra.kafka_broker import KafkaBroker

kafka = pytest.importorskip("kafka")
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

pytestmark = pytest.mark.kafka

STEPS = [
    dict(notification_id=1, topic="domain.case:Case.Received", originator_id="0c1b6f0e-0000-4000-8000-000000000001",
         originator_version=1, case_no="SP-2026-000001", payload={"step": "受理", "officer": "王芳", "at": "2026-11-25T09:00:00+08:00"}),
    dict(notification_id=2, topic="domain.case:Case.Reviewed", originator_id="0c1b6f0e-0000-4000-8000-000000000001",
         originator_version=2, case_no="SP-2026-000001", payload={"step": "审查", "opinion": "同意", "days_used": 3}),
    # Ids may have gaps (the notification log is the outbox); order is what matters.
    dict(notification_id=5, topic="domain.case:Case.Received", originator_id="0c1b6f0e-0000-4000-8000-000000000002",
         originator_version=1, case_no="SP-2026-000002", payload={"step": "受理", "attachments": [], "urgent": True}),
]


def create_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # One partition: a total order over all cases, which the assertions below rely on.
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, steps: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    try:
        for step in steps:
            key, value, headers = encode_envelope(**step)
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(timeout=30)
    finally:
        producer.close()


def consume(bootstrap: str, topic: str, n: int, group: str, timeout: float = 20) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group,
        auto_offset_reset="earliest", isolation_level="read_committed", enable_auto_commit=False,
    )
    records = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < n and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        consumer.commit()
    finally:
        consumer.close()
    return records


def assert_steps(records: list, steps: list[dict]) -> None:
    assert len(records) == len(steps)
    for record, step in zip(records, steps):
        assert record.key == step["case_no"].encode("utf-8")
        assert list(record.headers) == [
            ("esup-notification-id", str(step["notification_id"]).encode()),
            ("esup-schema", b"esup.step/1"),
        ]
        body = decode_envelope(record.key, record.value, record.headers)
        assert body == {"schema": "esup.step/1", **step}
    assert [r.offset for r in records] == list(range(len(steps)))


def test_step_envelopes_round_trip_in_order(broker):
    create_topic(broker.bootstrap_servers, "esup.steps")
    produce(broker.bootstrap_servers, "esup.steps", STEPS)
    records = consume(broker.bootstrap_servers, "esup.steps", len(STEPS), group="province-test")
    assert_steps(records, STEPS)


def test_records_survive_broker_restart_on_same_data_dir(tmp_path):
    data_dir = tmp_path / "kafka"
    first = KafkaBroker(data_dir=data_dir).start()
    try:
        bootstrap = first.bootstrap_servers
        create_topic(bootstrap, "esup.steps")
        produce(bootstrap, "esup.steps", STEPS[:2])
        # A committed group position must survive too (a relay/consumer resumes from it).
        assert_steps(consume(bootstrap, "esup.steps", 2, group="province"), STEPS[:2])
    finally:
        first.stop()
    assert not first.running

    # A fresh instance on the same data dir: storage is not reformatted, ports are reused.
    second = KafkaBroker(data_dir=data_dir).start()
    try:
        assert second.bootstrap_servers == bootstrap
        assert_steps(consume(bootstrap, "esup.steps", 2, group="after-restart"), STEPS[:2])
        produce(bootstrap, "esup.steps", STEPS[2:])
        resumed = consume(bootstrap, "esup.steps", 1, group="province")
        assert [r.offset for r in resumed] == [2]
        assert decode_envelope(resumed[0].key, resumed[0].value, resumed[0].headers)["notification_id"] == 5
    finally:
        second.stop()

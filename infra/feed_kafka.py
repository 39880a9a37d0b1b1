"""Kafka for the provincial feed (kafka-python 3.0): topics, the relay's transactional producer,
and reading back the last committed position.

Topics (names from ``FeedTopics``; created by ``ensure_topics`` with these settings):

- ``esup.feed`` (data): every district's steps, warning acts, anomalies, checkpoints and daily
  digests. ``ESUP_FEED_PARTITIONS`` partitions (default 6; the province's consumers scale up to
  that many), key = case number (or the district for district-wide records), so each case keeps
  its order. ``retention.ms=-1`` by default (``ESUP_FEED_RETENTION_MS``): the province rebuilds
  its views from this topic, so the topic is the provincial copy of every district's log.
- ``esup.feed.positions``: compacted, 1 partition, key = district; the last record of every relay
  transaction says how far the district has published (``esup.position/1``).
- ``esup.feed.control``: 1 partition, 7 days; the province's resend requests (``esup.resend/1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2
from kafka.errors import InvalidProducerEpochError, KafkaTimeoutError, ProducerFencedError, TopicAlreadyExistsError

from infra import feed_records


@dataclass(frozen=True)
class FeedTopics:
    data: str = "esup.feed"
    positions: str = "esup.feed.positions"
    control: str = "esup.feed.control"
    partitions: int = 6
    retention_ms: int = -1
    replication: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> FeedTopics:
        env = dict(os.environ if env is None else env)
        prefix = env.get("ESUP_FEED_TOPIC", "esup.feed")
        return cls(data=prefix, positions=prefix + ".positions", control=prefix + ".control",
                   partitions=int(env.get("ESUP_FEED_PARTITIONS", "6")),
                   retention_ms=int(env.get("ESUP_FEED_RETENTION_MS", "-1")),
                   replication=int(env.get("ESUP_FEED_REPLICATION", "1")))

    def specs(self) -> list[NewTopic]:
        isr = str(max(1, self.replication - 1))
        return [
            NewTopic(self.data, num_partitions=self.partitions, replication_factor=self.replication,
                     topic_configs={"retention.ms": str(self.retention_ms), "cleanup.policy": "delete",
                                    "min.insync.replicas": isr, "max.message.bytes": str(4 * 1024 * 1024)}),
            NewTopic(self.positions, num_partitions=1, replication_factor=self.replication,
                     topic_configs={"cleanup.policy": "compact", "min.insync.replicas": isr,
                                    "segment.ms": str(3600_000), "min.cleanable.dirty.ratio": "0.1"}),
            NewTopic(self.control, num_partitions=1, replication_factor=self.replication,
                     topic_configs={"retention.ms": str(7 * 86400_000), "min.insync.replicas": isr}),
        ]


def ensure_topics(bootstrap: str, topics: FeedTopics) -> None:
    """Create the feed's topics if they do not exist (existing ones are left as they are)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="esup-feed-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [spec for spec in topics.specs() if spec.name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another relay created them meanwhile
    finally:
        admin.close()


Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers
# A newer producer with our transactional id exists: the broker says so either way.
FENCED = (ProducerFencedError, InvalidProducerEpochError)


class TransactionalPublisher:
    """A kafka-python transactional producer with a fixed ``transactional_id``: ``init`` fences
    any older producer with the same id (aborting its open transaction); each ``publish`` sends
    its records in one transaction. ``ProducerFencedError`` propagates: a second relay for the
    same district took over, and this one must stop."""

    def __init__(self, bootstrap: str, transactional_id: str, **config: Any) -> None:
        self.transactional_id = transactional_id
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=transactional_id, enable_idempotence=True, acks="all",
            delivery_timeout_ms=config.pop("delivery_timeout_ms", 30000), request_timeout_ms=config.pop("request_timeout_ms", 10000),
            linger_ms=config.pop("linger_ms", 5), batch_size=config.pop("batch_size", 256 * 1024),
            max_request_size=config.pop("max_request_size", 4 * 1024 * 1024),
            client_id=config.pop("client_id", "esup-relay-" + transactional_id), **config)
        self._partitions: dict[tuple[str, int], dict[bytes, int]] = {}
        self._futures = []
        self.producer.init_transactions()

    def publish(self, records: Sequence[Record]) -> None:
        """Send ``records`` in one transaction and commit it."""
        self.begin()
        try:
            for record in records:
                self.send(record)
        except BaseException:
            self.abort()
            raise
        self.commit()

    # A transaction sent as it is shaped (``begin``, ``send`` ..., ``commit`` or ``abort``): the
    # producer's sender thread puts records on the wire while the relay shapes the next ones.
    def begin(self) -> None:
        self._futures: list[Any] = []
        try:
            self.producer.begin_transaction()
        except Exception as exc:
            raise self._translated(exc) from exc

    def send(self, record: Record) -> None:
        topic, key, value, headers = record
        try:
            self._futures.append(self.producer.send(topic, key=key, value=value, headers=headers,
                                                    partition=self._partition(topic, key)))
        except Exception as exc:
            raise self._translated(exc) from exc

    def commit(self) -> None:
        try:
            self.producer.flush()
            # Never commit a transaction one of whose records failed (say, expired while the
            # broker was away): the position record would then claim records Kafka never got.
            for future in self._futures:
                if future.failed():
                    if isinstance(future.exception, FENCED):
                        raise ProducerFencedError() from future.exception
                    raise future.exception
                if not future.succeeded():
                    raise KafkaTimeoutError("a record of the transaction was not acknowledged")
            self.producer.commit_transaction()
        except Exception as exc:
            self.abort()
            raise self._translated(exc) from exc
        finally:
            self._futures = []

    def abort(self) -> None:
        try:
            self.producer.abort_transaction()
        except Exception:  # noqa: BLE001 - the original error matters
            pass

    def _translated(self, exc: BaseException) -> BaseException:
        return ProducerFencedError() if self._fenced(exc) else exc

    def _partition(self, topic: str, key: bytes | None) -> int | None:
        """The partition kafka-python's default partitioner gives ``key`` (murmur2 of the key over
        all of the topic's partitions), remembered per key: a case's steps come in runs, and
        hashing is a good part of a send's cost. None (the producer chooses) when unkeyed or the
        topic's metadata is not known yet."""
        if key is None:
            return None
        parts = self.producer._metadata.partitions_for_topic(topic)
        if not parts:
            return None
        n = len(parts)
        cache = self._partitions.get((topic, n))
        if cache is None:
            cache = self._partitions[(topic, n)] = {}
        p = cache.get(key)
        if p is None:
            if len(cache) > 100_000:
                cache.clear()
            p = cache[key] = sorted(parts)[(murmur2(key) & 0x7FFFFFFF) % n]
        return p

    def _fenced(self, exc: BaseException) -> bool:
        """Fenced, however kafka-python says it: the error itself, an error wrapping it ("Cannot
        perform send because ... ProducerFencedError()"), or the transaction state's last error."""
        if isinstance(exc, FENCED) or any(isinstance(a, FENCED) for a in getattr(exc, "args", ())):
            return True
        manager = getattr(self.producer, "_transaction_manager", None)
        return isinstance(getattr(manager, "last_error", None), FENCED)

    def close(self, timeout: float = 10) -> None:
        self.producer.close(timeout=timeout)


def committed_consumer(bootstrap: str, **config: Any) -> KafkaConsumer:
    """A consumer that sees committed records only (no group unless one is given)."""
    return KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False,
                         auto_offset_reset="earliest", **config)


def last_committed(bootstrap: str, topic: str, key: bytes, timeout: float = 30) -> dict[str, Any] | None:
    """The value of the last committed record with ``key`` on ``topic`` (read ``read_committed``
    backwards from the end in growing windows), decoded; None if there is none.

    Call it after ``init_transactions``: the old producer's open transaction is then aborted, so
    the partition's last stable offset is the end.
    """
    import time

    consumer = committed_consumer(bootstrap, consumer_timeout_ms=1000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout
        while not parts and time.monotonic() < deadline:
            time.sleep(0.2)
            parts = consumer.partitions_for_topic(topic) or set()
        best: dict[str, Any] | None = None
        for p in sorted(parts):
            tp = TopicPartition(topic, p)
            consumer.assign([tp])
            begin = consumer.beginning_offsets([tp])[tp]
            end = consumer.end_offsets([tp])[tp]
            window, stop = 256, end
            while stop > begin:
                start = max(begin, stop - window)
                found = _last_with_key(consumer, tp, start, stop, key, deadline)
                if found is not None:
                    if best is None or found["notification_id"] > best["notification_id"]:
                        best = found
                    break
                stop, window = start, window * 4
        return best
    finally:
        consumer.close()


def _last_with_key(consumer: KafkaConsumer, tp: TopicPartition, start: int, stop: int, key: bytes,
                   deadline: float) -> dict[str, Any] | None:
    import time

    consumer.seek(tp, start)
    found = None
    while consumer.position(tp) < stop:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {tp.topic}[{tp.partition}] {start}..{stop} took too long")
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                if r.offset < stop and r.key == key:
                    found = feed_records.decode(r.key, r.value, r.headers)
    return found


def read_all(bootstrap: str, topics: Iterable[str], timeout: float = 30, idle: float = 2.0) -> list[Any]:
    """Every committed record of ``topics`` up to their current ends (for tests and rebuilds), in
    partition order."""
    import time

    consumer = committed_consumer(bootstrap)
    try:
        tps = []
        deadline = time.monotonic() + timeout
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            while parts is None and time.monotonic() < deadline:
                time.sleep(0.2)
                parts = consumer.partitions_for_topic(topic)
            tps += [TopicPartition(topic, p) for p in sorted(parts or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError("reading the feed took too long")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(r for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return out
    finally:
        consumer.close()

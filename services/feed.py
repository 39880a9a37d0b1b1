"""The relay (district side of the provincial feed): the ledger's notification log, which already
is the outbox, published to Kafka exactly once for ``read_committed`` consumers.

- Each round reads up to ``batch`` log records after the published position and sends, in ONE
  Kafka transaction, their records (``esup.step/1`` for case events, ``esup.warning/1`` for
  warning acts), the anomalies the anomalies view placed up to there (``esup.anomaly/1``), the
  digest of every day that closed (``esup.digest/1``), a new signed checkpoint when the audit
  toolkit is present (``esup.checkpoint/1``), and last a position record (``esup.position/1``,
  key = district) on the compacted positions topic. Either all of it is visible or none.
- The transactional id is fixed per district (``esup-relay-<district>``): a second relay for the
  same district fences the first (whose next commit fails with ``ProducerFencedError``; it exits).
- On start it recovers its position from Kafka: after ``init_transactions`` (which aborts a
  crashed predecessor's open transaction) it reads the district's last committed position
  record ``read_committed``. No local file can lag behind what Kafka holds.
- Personal data stays in the district by default (``personal="omit"``: codes, numbers and
  instants only, like the live stream); ``personal="mask"`` adds the staff code and the
  applicant's name and ID number masked (张*, 510101********1237).
- Resend requests (``esup.resend/1`` on the control topic, from the province's reconciliation)
  are answered in a transaction that also moves the control offset kept in the position record.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

from domain.calendar import CHINA_TZ
import orjson

from domain.case import CASE_TOPICS, EVENT_CLASSES
from domain.reconciliation import day_root
from domain.warning import WARNING_TOPICS
from infra import feed_records as fr
from services.monitor import STEP_DATA, _json_value, step_item, warning_item

log = logging.getLogger("esup.feed")

FEED_TOPICS = frozenset(CASE_TOPICS) | frozenset(WARNING_TOPICS)
PERSONAL_MODES = ("omit", "mask")
_FEED_TOPIC_LIST = tuple(sorted(FEED_TOPICS))


def transactional_id(district: str) -> str:
    return f"esup-relay-{district}"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def mask_id(number: str) -> str:
    return number[:6] + "*" * max(0, len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


@dataclass
class FeedState:
    """What the last committed position record says (all zero for a district never published)."""

    position: int = 0  # log position published through
    anomalies: int = 0  # anomalies view position published through
    day: str | None = None  # China-time day of the last published ledger event
    day_start: int = 0  # log position before that day's first event
    control: int = 0  # next offset of the control topic to read
    checkpoint: int = 0  # size of the last checkpoint published

    @classmethod
    def from_record(cls, body: dict[str, Any] | None) -> FeedState:
        if body is None:
            return cls()
        return cls(body["notification_id"], body["anomalies"], body.get("day"), body.get("day_start", 0),
                   body.get("control", 0), body.get("checkpoint", 0))

    def fields(self) -> dict[str, Any]:
        return {"anomalies": self.anomalies, "day": self.day, "day_start": self.day_start, "control": self.control,
                "checkpoint": self.checkpoint}


_STEP_OF_TOPIC = {cls.TOPIC: cls.STEP for cls in EVENT_CLASSES.values()}
_STORED_DATETIME = "datetime_iso"


class _StoredStep:
    """A case step read straight from its stored JSON: the fields ``step_item`` and the masking
    use, without building the domain event (decoding each value, then encoding it again, was
    most of the relay's own time). Instants stay the ISO strings the transcoder stored, which
    are what ``_json_value`` would give back; ``timestamp`` is a datetime for the day."""

    __slots__ = ("STEP", "originator_id", "originator_version", "timestamp", "occurred_at", "actor", "data",
                 "derived", "flags", "hash", "prev_hash", "case_no")

    @classmethod
    def parse(cls, notification: Any) -> _StoredStep | None:
        """None when the event holds a value this reader does not know (the mapper then decodes
        it), or the stored state is not plain JSON (compressed, enciphered)."""
        try:
            body = orjson.loads(notification.state)
        except orjson.JSONDecodeError:
            return None
        self = cls()
        self.STEP = _STEP_OF_TOPIC[notification.topic]
        self.originator_id = notification.originator_id
        self.originator_version = notification.originator_version
        try:
            self.timestamp = datetime.fromisoformat(_instant(body["timestamp"]))
            self.occurred_at = _instant(body["occurred_at"])
            self.actor, self.flags = body["actor"], body["flags"]
            self.hash, self.prev_hash = body["hash"], body["prev_hash"]
            self.data = _plain(body["data"], _DATA_READ)
            self.derived = _plain(body["derived"], ("promised_due_at", "legal_due_at", "on_time"))
        except (KeyError, TypeError, ValueError):
            return None
        self.case_no = body.get("case_no")
        return self


def _instant(value: Any) -> str:
    if type(value) is dict and value.get("_type_") == _STORED_DATETIME and type(value.get("_data_")) is str:
        return value["_data_"]
    raise ValueError("not a stored instant")


def _plain(values: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``values``' ``keys`` with stored instants as ISO strings. Any other non-scalar value
    (another tagged type, a nested object) sends the event to the mapper (ValueError)."""
    out = {}
    for k in keys:
        if k in values:
            v = values[k]
            if type(v) is dict:
                v = _instant(v)
            elif not (v is None or type(v) in _SCALARS):
                raise ValueError("not a plain value")
            out[k] = v
    return out


_SCALARS = (str, int, float, bool)
# What the feed reads of a step's data: the fields step_item publishes, the item and the applicant.
_DATA_READ = (*STEP_DATA, "item_code", "applicant")


class FeedSource:
    """Turns the ledger's log into feed records (schema, position, fields, value bytes)."""

    def __init__(self, ledger: Any, district: str, personal: str = "omit", sealer: Any = None,
                 anomalies: Any = None) -> None:
        if personal not in PERSONAL_MODES:
            raise ValueError(f"personal must be one of {', '.join(PERSONAL_MODES)}")
        self.ledger = ledger
        self.district = district
        self.personal = personal
        self.sealer = sealer
        self.anomalies = anomalies  # services.monitor.AnomalySource or None
        self._cases: dict[str, dict[str, Any]] = {}
        self._warnings: dict[str, dict[str, Any]] = {}

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def notifications(self, after: int, limit: int, stop: int | None = None) -> Sequence[Any]:
        """The log records the feed carries at positions in (after, stop], at most ``limit``
        (the log's other records, such as admitted source ids, are not even read)."""
        return self.ledger.recorder.select_notifications(start=after, limit=limit, stop=stop, topics=_FEED_TOPIC_LIST,
                                                         inclusive_of_start=False)

    def batch(self, after: int, limit: int) -> tuple[Sequence[Any], int]:
        """The next records after ``after`` and the log position the read covered: the head as
        it was before the read when fewer than ``limit`` came back, else the last one's."""
        head = self.head()
        notes = self.notifications(after, limit, stop=head) if head > after else []
        return notes, (notes[-1].id if len(notes) >= limit else max(head, after))

    # -- shaping ------------------------------------------------------------------------------
    def _case_facts(self, event: Any, cid: str) -> dict[str, Any]:
        facts = self._cases.get(cid)
        if facts is None:
            first = event if event.originator_version == 1 else next(iter(self.ledger.events.get(event.originator_id, lte=1)), None)
            facts = {"case_no": getattr(first, "case_no", None), "item_code": (first.data or {}).get("item_code") if first else None}
            if len(self._cases) > 200_000:
                self._cases.clear()
            self._cases[cid] = facts
        return facts

    def _warning_facts(self, event: Any) -> dict[str, Any]:
        if event.originator_version == 1:
            return vars(event)
        wid = str(event.originator_id)
        if wid not in self._warnings:
            first = next(iter(self.ledger.events.get(event.originator_id, lte=1)), None)
            if len(self._warnings) > 100_000:
                self._warnings.clear()
            self._warnings[wid] = dict(vars(first)) if first is not None else {}
        return self._warnings[wid]

    def _personal(self, event: Any, payload: dict[str, Any]) -> None:
        if self.personal != "mask":
            return
        staff = (event.actor or {}).get("staff")
        payload["staff"] = (staff[:1] + "***") if staff else None
        sealed = (event.data or {}).get("applicant")
        if sealed and self.sealer is not None:
            try:
                person = self.sealer.open(sealed)
            except Exception:  # noqa: BLE001 - damaged or other key: say nothing
                person = {}
            payload["applicant"] = {k: (mask_id(v) if k == "id_number" else mask_name(v) if k == "name" else None)
                                    for k, v in person.items() if k in ("name", "id_number") and isinstance(v, str)}

    def record(self, notification: Any) -> tuple[str, dict[str, Any], Any] | None:
        """(schema, fields, event) for a log record the feed carries, else None."""
        if notification.topic not in FEED_TOPICS:
            return None
        event = _StoredStep.parse(notification) if notification.topic in _STEP_OF_TOPIC else None
        if event is None:
            event = self.ledger.mapper.to_domain_event(notification)
        position = notification.id
        common = {"topic": notification.topic, "originator_id": str(event.originator_id),
                  "originator_version": event.originator_version}
        if notification.topic in WARNING_TOPICS:
            facts = self._warning_facts(event)
            payload = warning_item(event, notification.topic, position, facts)
            case_no = payload.pop("case_no", None) or facts.get("case_no")
            payload.pop("position", None)
            return fr.WARNING, {**common, "case_no": case_no, "payload": payload}, event
        facts = self._case_facts(event, common["originator_id"])
        payload = step_item(event, position, {common["originator_id"]: facts})
        case_no = payload.pop("case_no")
        payload.pop("position", None)
        payload["hash"], payload["prev_hash"] = event.hash, event.prev_hash
        self._personal(event, payload)
        return fr.STEP, {**common, "case_no": case_no, "payload": payload}, event

    def anomaly_fields(self, after: int, upto: int) -> list[tuple[int, dict[str, Any]]]:
        if self.anomalies is None or upto <= after:
            return []
        out = []
        for row in self.anomalies.rows(after, upto):
            position = int(row.pop("position"))
            case_no = row.get("case_no")
            if case_no:
                out.append((position, {"case_no": case_no, "payload": row}))
        return out

    def day_of(self, event: Any) -> str:
        return event.timestamp.astimezone(CHINA_TZ).date().isoformat()

    def day_values(self, day: str, after: int, upto: int) -> list[tuple[int, bytes]]:
        """(position, value bytes) of the records of ledger events recorded on ``day`` at log
        positions in (after, upto]."""
        out = []
        while after < upto:
            notes = self.notifications(after, 1000, stop=upto)
            if not notes:
                break
            for n in notes:
                made = self.record(n)
                if made is not None and self.day_of(made[2]) == day:
                    out.append((n.id, fr.encode(made[0], self.district, n.id, made[1])[1]))
            after = notes[-1].id
        return out


class FeedRelay:
    """Publishes a district's log. ``publisher``: ``infra.feed_kafka.TransactionalPublisher``
    (made by ``connect``); ``topics``: ``infra.feed_kafka.FeedTopics``."""

    def __init__(self, source: FeedSource, bootstrap: str, topics: Any, batch: int = 2000,
                 checkpoints: Any = None, anomaly_position: Callable[[], int] | None = None) -> None:
        self.source = source
        self.bootstrap = bootstrap
        self.topics = topics
        self.batch = batch
        self.checkpoints = checkpoints  # services.checkpoints.CheckpointService, when present
        self.anomaly_position = anomaly_position
        self.publisher: Any = None
        self.state = FeedState()
        self.published = 0  # records sent by this process (ledger events)
        self.checkpoint_every = 60.0  # seconds between signed checkpoints while following
        self.check = os.environ.get("ESUP_FEED_CHECK", "") == "1"  # schema-check every record sent
        # The open day's records as published by this process, for its digest without a re-read:
        # (day, day_start, [(position, value)]); None when the day began before this process.
        self._day: tuple[str, int, list[tuple[int, bytes]]] | None = None
        self._control: Any = None

    @property
    def district(self) -> str:
        return self.source.district

    def connect(self) -> FeedState:
        from infra.feed_kafka import TransactionalPublisher, ensure_topics, last_committed

        ensure_topics(self.bootstrap, self.topics)
        self.publisher = TransactionalPublisher(self.bootstrap, transactional_id(self.district))
        body = last_committed(self.bootstrap, self.topics.positions, self.district.encode("utf-8"))
        self.state = FeedState.from_record(body)
        log.info("relay %s resumes after log position %s", self.district, self.state.position)
        return self.state

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None

    # -- one transaction -----------------------------------------------------------------------
    def _encode(self, schema: str, position: int, fields: dict[str, Any], key: str | None = None):
        k, v, h = fr.encode(schema, self.district, position, fields, key, check=self.check)
        return (self.topics.positions if schema == fr.POSITION else self.topics.data, k, v, h)

    def step(self) -> int:
        """Publish the next batch (one transaction); the number of ledger records it carried.

        Records are sent as they are shaped, inside the open transaction, so Kafka's sender
        thread works while the next ones are read and shaped; any failure aborts the whole
        transaction (the position record is its last record, so nothing half-published counts)."""
        notes, scanned = self.source.batch(self.state.position, self.batch)
        state = FeedState(**vars(self.state))
        upto = state.anomalies
        if self.anomaly_position is not None:
            upto = max(upto, min(scanned, self.anomaly_position()))
        if scanned == self.state.position and upto == self.state.anomalies:
            return 0
        cached = self._day
        day_records: list[tuple[int, bytes]] | None = None
        if cached is not None and cached[0] == state.day and cached[1] == state.day_start:
            day_records = list(cached[2])
        events = 0
        publisher = self.publisher
        publisher.begin()
        try:
            for n in notes:
                made = self.source.record(n)
                if made is not None:
                    schema, fields, event = made
                    day = self.source.day_of(event)
                    if state.day is not None and day > state.day:
                        publisher.send(self._digest(state.day, state.day_start, n.id - 1, day_records))
                    if state.day is None or day > state.day:
                        state.day, state.day_start = day, n.id - 1
                        day_records = []
                    record = self._encode(schema, n.id, fields)
                    publisher.send(record)
                    if day_records is not None and day == state.day:
                        day_records.append((n.id, record[2]))
                    events += 1
            state.position = scanned
            if self.anomaly_position is not None:
                if upto > state.anomalies:
                    for position, fields in self.source.anomaly_fields(state.anomalies, upto):
                        publisher.send(self._encode(fr.ANOMALY, position, fields))
                    state.anomalies = upto
            else:
                state.anomalies = state.position
            publisher.send(self._encode(fr.POSITION, state.position, state.fields(), key=self.district))
        except BaseException:
            publisher.abort()
            raise
        publisher.commit()
        advanced = scanned > self.state.position
        self.state = state
        self._day = (state.day, state.day_start, day_records) if day_records is not None and state.day else None
        self.published += events
        return max(events, 1) if advanced else 0

    def _digest(self, day: str, after: int, upto: int, known: list[tuple[int, bytes]] | None = None):
        """The digest of a day that closed: from the records this process published that day, or
        (the day began before it started) from the log."""
        values = known if known is not None else self.source.day_values(day, after, upto)
        fields = {"day": day, "count": len(values), "root": day_root([v for _, v in values]).hex(),
                  "positions": [p for p, _ in values]}
        return self._encode(fr.DIGEST, upto, fields)

    def publish_checkpoint(self) -> bool:
        """Issue (sign) a checkpoint of the log as it stands and publish it if it grew."""
        if self.checkpoints is None:
            return False
        cp = self.checkpoints.issue()
        if cp.size <= self.state.checkpoint:
            return False
        state = FeedState(**vars(self.state))
        state.checkpoint = cp.size
        proof: list[str] = []
        if self.state.checkpoint:
            proof = self.checkpoints.consistency(self.state.checkpoint, cp.size)["proof"]  # base64 hashes
        fields = {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "note": cp.note,
                  "issued_at": _json_value(cp.issued_at), "verifier_key": self.checkpoints.verifier_key(),
                  "proof_from": self.state.checkpoint, "proof": proof}
        self.publisher.publish([self._encode(fr.CHECKPOINT, cp.position, fields),
                                self._encode(fr.POSITION, state.position, state.fields(), key=self.district)])
        self.state = state
        return True

    # -- resend requests ---------------------------------------------------------------------------
    def answer_resends(self) -> int:
        """Answer the province's resend requests for this district; the records re-sent."""
        from kafka import TopicPartition

        from infra.feed_kafka import committed_consumer

        if self._control is None:
            self._control = committed_consumer(self.bootstrap)
            self._tp = TopicPartition(self.topics.control, 0)
            self._control.assign([self._tp])
        self._control.seek(self._tp, self.state.control)
        end = self._control.end_offsets([self._tp])[self._tp]
        wanted: list[int] = []
        offset = self.state.control
        deadline = time.monotonic() + 10
        while offset < end and time.monotonic() < deadline:
            for records in self._control.poll(timeout_ms=300).values():
                for r in records:
                    offset = r.offset + 1
                    if r.key == self.district.encode("utf-8"):
                        body = fr.decode(r.key, r.value, r.headers)
                        wanted += [p for p in body["positions"] if p <= self.state.position]
            if self._control.position(self._tp) >= end:
                offset = end
        if offset == self.state.control:
            return 0
        out = []
        for p in sorted(set(wanted)):
            notes = self.source.notifications(p - 1, 1, stop=p)
            made = self.source.record(notes[0]) if notes and notes[0].id == p else None
            if made is not None:
                out.append(self._encode(made[0], p, made[1]))
        state = FeedState(**vars(self.state))
        state.control = offset
        out.append(self._encode(fr.POSITION, state.position, state.fields(), key=self.district))
        self.publisher.publish(out)
        self.state = state
        return len(out) - 1

    # -- loops ------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Publish up to the head (as it was when called, and whatever arrives meanwhile), then a
        checkpoint; the ledger records published."""
        total = 0
        while True:
            n = self.step()
            if not n:
                break
            total += n
        self.answer_resends()
        self.publish_checkpoint()
        return total

    def run(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Follow the log until ``stop``. A broker that goes away is waited for: the relay
        reconnects (``init_transactions`` aborts what was open) and resumes from what Kafka
        committed. Being fenced ends the loop (another relay for this district took over)."""
        from kafka.errors import KafkaError

        from infra.feed_kafka import FENCED

        last_cp = 0.0
        last_control = 0.0
        while not stop.is_set():
            try:
                n = self._round(last_cp, last_control)
            except FENCED:
                raise  # another relay of this district took over: stop, never fence it back
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("relay %s: %r; reconnecting", self.district, exc)
                self.close()
                while not stop.is_set():
                    stop.wait(1.0)
                    try:
                        self.connect()
                        break
                    except (KafkaError, TimeoutError, OSError) as again:
                        log.warning("relay %s: broker not back yet (%r)", self.district, again)
                        self.close()
                continue
            n, last_cp, last_control = n
            if not n:
                stop.wait(idle)

    def _round(self, last_cp: float, last_control: float) -> tuple[int, float, float]:
        """One batch; resend requests every 5 s and a checkpoint every ``checkpoint_every`` s."""
        n = self.step()
        now = time.monotonic()
        if now - last_control > 5:
            self.answer_resends()
            last_control = now
        if now - last_cp > self.checkpoint_every:
            self.publish_checkpoint()
            last_cp = now
        return n, last_cp, last_control


def district_code(esup: Any, env: dict[str, str] | None = None) -> str:
    """The district's code: ``ESUP_DISTRICT``, else the first center registered, else ``esup``."""
    import os

    env = os.environ if env is None else env
    if env.get("ESUP_DISTRICT"):
        return env["ESUP_DISTRICT"]
    try:
        from domain.organisation import UnitKind

        centers = sorted(u.code for u in esup.reference.units(UnitKind.CENTER))
        if centers:
            return centers[0]
    except Exception:  # noqa: BLE001 - reference data not readable: the fallback
        pass
    return "esup"


def relay_for(esup: Any, bootstrap: str, district: str | None = None, personal: str | None = None,
              batch: int | None = None, topics: Any = None) -> FeedRelay:
    """A relay over a system's ledger (its anomalies view and checkpoints when present)."""
    import os

    from infra.feed_kafka import FeedTopics
    from services.monitor import find_anomaly_source

    district = district or district_code(esup)
    personal = personal or os.environ.get("ESUP_FEED_PERSONAL", "omit")
    anomalies = find_anomaly_source(esup.runner)
    source = FeedSource(esup.ledger, district, personal, esup.sealer, anomalies)
    return FeedRelay(source, bootstrap, topics or FeedTopics.from_env(),
                     batch=batch or int(os.environ.get("ESUP_FEED_BATCH", "2000")),
                     checkpoints=getattr(esup, "checkpoints", None),
                     anomaly_position=anomalies.position if anomalies is not None else None)


def start_relay_thread(esup: Any, bootstrap: str) -> tuple[threading.Thread, threading.Event, FeedRelay]:
    """What ``esup serve`` runs when ``ESUP_KAFKA_BOOTSTRAP`` is set."""
    relay = relay_for(esup, bootstrap)
    stop = threading.Event()

    def run() -> None:
        try:
            relay.connect()
            relay.run(stop)
        except Exception:  # noqa: BLE001 - fenced or broker gone: say so, serving goes on
            log.exception("the feed relay stopped")
        finally:
            relay.close()

    thread = threading.Thread(target=run, name="esup-feed-relay", daemon=True)
    thread.start()
    return thread, stop, relay

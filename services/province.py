"""The province (省级监察): every district's feed, consumed into the province's own PostgreSQL.

- A consumer group over the feed's data topic (``read_committed``, auto-commit off). Each poll's
  records are applied in ONE database transaction together with the next offset of every
  partition they came from (``province_offsets``); on assignment the consumer seeks to those
  stored offsets (the group's Kafka offsets are committed too, after the database, for lag tools
  only). A province killed mid-batch resumes exactly where its rows end; consumers of one group
  split the partitions and write to the same store.
- Views (tables of ``infra.province_store``): the records themselves (replay by case number),
  cases (performance by district and by department across districts), warnings (the
  provincial board), anomalies, daily digests and reconciliation reports, accepted (cosigned)
  checkpoints and alarms. Applying is idempotent and depends only on each case's (or district's)
  own records, which one partition orders: any split of the partitions gives the same rows.
- The witness (``domain.witness``) judges each district checkpoint when it is applied.
- Reconciliation (``reconcile``) compares each district-day digest with the records held,
  names the missing and extra positions and asks the district's relay to resend (control topic).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

import orjson

from domain import note, witness
from domain.calendar import CHINA_TZ
from domain.reconciliation import compare
from infra import feed_records as fr
from projections.instants import from_us, us

log = logging.getLogger("esup.province")

CLOSING = ("concluded", "refused", "withdrawn")
OPEN_WARNINGS = ("issued", "answered", "escalated")
ACT_STATUS = {"Issued": "issued", "Answered": "answered", "Escalated": "escalated", "Closed": "closed",
              "Withdrawn": "withdrawn"}


def _us(text: str | None) -> int | None:
    return us(datetime.fromisoformat(text)) if text else None


def _iso(value: int | None) -> str | None:
    return from_us(value).isoformat() if value is not None else None


def _named(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A row as a dict of its column names, instants (``*_at``, epoch µs) as ISO text."""
    return {n: (_iso(v) if n.endswith("_at") else v) for n, v in zip(names, row)}


def _day(text: str | None) -> str:
    return datetime.fromisoformat(text).astimezone(CHINA_TZ).date().isoformat() if text else ""


class Province:
    def __init__(self, store: Any, bootstrap: str, topics: Any, group: str = "esup-province",
                 witness_key: str | None = None, trusted_keys: dict[str, str] | None = None,
                 max_records: int = 500, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topics = topics
        self.group = group
        self.max_records = max_records
        self.clock = clock or (lambda: datetime.now(CHINA_TZ))
        self.trusted = trusted_keys or {}
        key = witness_key or store.key("witness", lambda: note.Signer("esup.province/witness", os.urandom(32)).text())
        self.signer = note.Signer.parse(key)
        self.consumer: Any = None
        self.assigned: list[int] = []
        self.on_assign: Callable[[list[int]], None] | None = None
        self.applied = 0
        self._producer: Any = None

    # -- consuming --------------------------------------------------------------------------------
    def open(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        from infra.feed_kafka import ensure_topics

        ensure_topics(self.bootstrap, self.topics)
        province = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                province.assigned = []

            def on_partitions_assigned(self, assigned):
                stored = province.store.offsets(province.topics.data)
                for tp in assigned:
                    if tp.partition in stored:
                        province.consumer.seek(tp, stored[tp.partition])
                    else:
                        province.consumer.seek_to_beginning(tp)
                province.assigned = sorted(tp.partition for tp in assigned)
                log.info("province consumer assigned partitions %s", province.assigned)
                if province.on_assign is not None:
                    province.on_assign(province.assigned)

        self.consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=self.max_records,
            client_id=f"esup-province-{os.getpid()}")
        self.consumer.subscribe([self.topics.data], listener=Listener())

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll's records applied in one transaction with their offsets; how many."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        if not batches:
            return 0
        n = 0
        try:
            with self.store.transaction() as cur:
                for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                    for r in records:
                        self.apply(cur, r.key, r.value, r.headers, r.timestamp)
                        n += 1
                    cur.execute("INSERT INTO province_offsets (topic, partition, next_offset) VALUES (%s, %s, %s)"
                                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                                (tp.topic, tp.partition, records[-1].offset + 1))
        except Exception:
            # Nothing of the batch was stored: read it again from the offsets the store holds.
            stored = self.store.offsets(self.topics.data)
            for tp in batches:
                if tp.partition in stored:
                    self.consumer.seek(tp, stored[tp.partition])
                else:
                    self.consumer.seek_to_beginning(tp)
            raise
        self.applied += n
        try:  # informational (lag tools); the database's offsets are the ones that count
            from kafka import OffsetAndMetadata

            self.consumer.commit({tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batches.items()})
        except Exception:  # noqa: BLE001 - a rebalance meanwhile: the database still knows
            pass
        return n

    def caught_up(self) -> bool:
        """Every assigned partition read to its current (committed) end."""
        tps = list(self.consumer.assignment())
        if not tps:
            return False
        ends = self.consumer.end_offsets(tps)
        return all(self.consumer.position(tp) >= ends[tp] for tp in tps)

    def run_until_caught_up(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            got = self.poll_once()
            n += got
            if not got and self.caught_up():
                return n
        raise TimeoutError("the province did not catch up with the feed")

    def run(self, stop: threading.Event, reconcile_every: float = 30.0) -> None:
        last = time.monotonic()
        while not stop.is_set():
            try:
                got = self.poll_once()
            except Exception:  # noqa: BLE001 - the database went away: the batch is read again
                log.exception("province: a batch could not be stored; retrying")
                stop.wait(1.0)
                continue
            if not got and time.monotonic() - last > reconcile_every and self.caught_up():
                try:
                    self.reconcile()
                except Exception:  # noqa: BLE001 - next round
                    log.exception("reconciliation failed")
                last = time.monotonic()

    # -- applying one record ------------------------------------------------------------------------
    def apply(self, cur: Any, key: bytes | None, value: bytes | None, headers: Any, timestamp_ms: int) -> None:
        try:
            body = fr.decode(key, value, headers)
        except ValueError as exc:
            log.warning("province: a record it cannot read is skipped: %s", exc)
            return
        schema, district, position = body["schema"], body["district"], body["notification_id"]
        if schema in (fr.STEP, fr.WARNING):
            payload = body["payload"]
            leaf = bytes.fromhex(payload["hash"]) if schema == fr.STEP else None
            cur.execute(
                "INSERT INTO province_events (district, position, schema, case_no, topic, version, day, leaf, payload,"
                " value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (district, position) DO NOTHING"
                " RETURNING position",
                (district, position, schema, body["case_no"], body["topic"], body["originator_version"],
                 _day(payload.get("recorded_at")), leaf, orjson.dumps(payload).decode(), value))
            if cur.fetchone() is None:
                return  # seen already (a resend, a replay): nothing changes
            if schema == fr.STEP:
                self._case(cur, district, position, body["case_no"], payload)
            else:
                self._warning(cur, district, position, body["case_no"], payload)
        elif schema == fr.ANOMALY:
            p = body["payload"]
            cur.execute(
                "INSERT INTO province_anomalies (district, anomaly_id, case_no, rule, type, status, department, reason,"
                " occurred_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (district, anomaly_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,"
                " position = EXCLUDED.position WHERE province_anomalies.position <= EXCLUDED.position",
                (district, p["anomaly_id"], body["case_no"], p["rule"], p["type"], p["status"], p.get("department"),
                 p.get("reason"), p.get("occurred_at"), position))
        elif schema == fr.DIGEST:
            cur.execute(
                "INSERT INTO province_digests (district, day, count, root, positions, position)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (district, day) DO UPDATE SET count = EXCLUDED.count,"
                " root = EXCLUDED.root, positions = EXCLUDED.positions, position = EXCLUDED.position",
                (district, body["day"], body["count"], body["root"], orjson.dumps(body["positions"]).decode(), position))
        elif schema == fr.CHECKPOINT:
            self._witness(cur, district, position, body, timestamp_ms)

    def _case(self, cur: Any, district: str, position: int, case_no: str, p: dict[str, Any]) -> None:
        cur.execute("SELECT department, item_code, status, submitted_at, accepted_at, closed_at, on_time,"
                    " promised_due_at, legal_due_at, suspended, status_position, due_position, suspend_position, events"
                    " FROM province_cases WHERE district = %s AND case_no = %s FOR UPDATE", (district, case_no))
        row = cur.fetchone()
        names = ("department", "item_code", "status", "submitted_at", "accepted_at", "closed_at", "on_time",
                 "promised_due_at", "legal_due_at", "suspended", "status_position", "due_position",
                 "suspend_position", "events")
        c = dict(zip(names, row)) if row else dict(zip(names, (None, None, "open", None, None, None, None, None, None,
                                                               False, 0, 0, 0, 0)))
        step, occurred = p["step"], _us(p.get("occurred_at"))
        c["events"] += 1
        c["department"] = c["department"] or p.get("department")
        c["item_code"] = c["item_code"] or p.get("item_code")
        if step == "submitted":
            c["submitted_at"] = occurred
        elif step == "accepted":
            c["accepted_at"] = occurred
        if ("promised_due_at" in p or "legal_due_at" in p) and position > c["due_position"]:
            c["promised_due_at"] = _us(p.get("promised_due_at")) if "promised_due_at" in p else c["promised_due_at"]
            c["legal_due_at"] = _us(p.get("legal_due_at")) if "legal_due_at" in p else c["legal_due_at"]
            c["due_position"] = position
        if step in CLOSING and position > c["status_position"]:
            c["status"], c["closed_at"], c["status_position"] = step, occurred, position
            c["on_time"] = p.get("on_time") if step == "concluded" else None
        elif "on_time" in p and c["status"] == "concluded" and position > c["status_position"]:
            c["on_time"] = p["on_time"]  # deadlines settled after the conclusion
        if step in ("suspended", "resumed") and position > c["suspend_position"]:
            c["suspended"], c["suspend_position"] = step == "suspended", position
        cols = ", ".join(names)
        cur.execute(
            f"INSERT INTO province_cases (district, case_no, {cols}) VALUES (%s, %s, {', '.join(['%s'] * len(names))})"
            f" ON CONFLICT (district, case_no) DO UPDATE SET {', '.join(f'{n} = EXCLUDED.{n}' for n in names)}",
            (district, case_no, *[c[n] for n in names]))

    def _warning(self, cur: Any, district: str, position: int, case_no: str, p: dict[str, Any]) -> None:
        status = ACT_STATUS.get(p.get("type"), p.get("status") or "issued")
        cur.execute(
            "INSERT INTO province_warnings (district, warning_id, case_no, department, item_code, level, rule, status,"
            " threshold_at, issued_at, promised_due_at, legal_due_at, position)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (district, warning_id) DO UPDATE"
            " SET status = CASE WHEN EXCLUDED.position > province_warnings.position THEN EXCLUDED.status"
            " ELSE province_warnings.status END,"
            " position = GREATEST(EXCLUDED.position, province_warnings.position),"
            " level = COALESCE(province_warnings.level, EXCLUDED.level),"
            " department = COALESCE(province_warnings.department, EXCLUDED.department),"
            " threshold_at = COALESCE(province_warnings.threshold_at, EXCLUDED.threshold_at),"
            " issued_at = COALESCE(province_warnings.issued_at, EXCLUDED.issued_at)",
            (district, p["id"], case_no, p.get("department"), p.get("item_code"), p.get("level"), p.get("rule"), status,
             _us(p.get("threshold_at")), _us(p.get("issued_at")), _us(p.get("promised_due_at")),
             _us(p.get("legal_due_at")), position))

    # -- the witness -------------------------------------------------------------------------------
    def _witness(self, cur: Any, district: str, position: int, body: dict[str, Any], timestamp_ms: int) -> None:
        cur.execute("SELECT size, root, cosigned_note, verifier_key, note FROM province_checkpoints WHERE district = %s"
                    " ORDER BY size DESC LIMIT 1", (district,))
        row = cur.fetchone()
        vkey = self.trusted.get(district) or (row[3] if row else None) or body.get("verifier_key")
        try:
            verifier = note.Verifier.parse(vkey or "")
        except note.NoteError as exc:
            self._alarm(cur, district, "bad_signature", position, f"无法验证：没有可用的区县公钥 ({exc})",
                        {"note": body["note"]})
            return
        last = witness.Accepted(int(row[0]), base64.b64decode(row[1]), row[4]) if row else None
        proof = [base64.b64decode(h) for h in body["proof"]]
        verdict = witness.judge(body["note"], verifier, verifier.name, last, body["proof_from"], proof)
        if verdict.decision == "alarm":
            evidence = {**verdict.evidence, "held_root": self._held_root(cur, district, verdict.body)}
            self._alarm(cur, district, verdict.code, position, verdict.detail, evidence)
            return
        if verdict.decision == "same":
            return
        text = verdict.body.text()
        line = witness.cosign(text, self.signer, timestamp_ms // 1000)
        cur.execute(
            "INSERT INTO province_checkpoints (district, size, root, note, position, issued_at, verifier_key, cosignature,"
            " cosigned_note, accepted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (district, size) DO NOTHING",
            (district, verdict.body.size, base64.b64encode(verdict.body.root).decode(), body["note"], position,
             body.get("issued_at"), verifier.text(), line, body["note"] + line, timestamp_ms * 1000))

    def _held_root(self, cur: Any, district: str, body: Any) -> dict[str, Any] | None:
        """The root of the case events the province itself holds from this district, at the new
        checkpoint's size (evidence of which history the province received)."""
        if body is None:
            return None
        cur.execute("SELECT leaf FROM province_events WHERE district = %s AND leaf IS NOT NULL ORDER BY position"
                    " LIMIT %s", (district, body.size))
        leaves = [bytes(r[0]) for r in cur.fetchall()]
        from domain import merkle

        return {"size": len(leaves), "root": base64.b64encode(merkle.root([merkle.leaf_hash(x) for x in leaves])).decode()}

    def _alarm(self, cur: Any, district: str, code: str, position: int, detail: str, evidence: dict[str, Any]) -> None:
        log.warning("province: alarm %s for district %s at %s: %s", code, district, position, detail)
        cur.execute("INSERT INTO province_alarms (district, code, position, detail, evidence, raised_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (district, code, position, detail, orjson.dumps(evidence).decode(), us(self.clock())))

    @property
    def witness_key(self) -> str:
        """The witness's verifier key for cosignatures (alg 0x04, cosignature/v1)."""
        return f"{self.signer.name}+{witness.cosignature_key_id(self.signer.name, self.signer.public_key).hex()}+" \
               f"{base64.b64encode(bytes([witness.ALG_COSIGNATURE_V1]) + self.signer.public_key).decode()}"

    # -- reconciliation ------------------------------------------------------------------------------
    def reconcile(self, districts: Iterable[str] | None = None, resend: bool = True) -> list[dict[str, Any]]:
        """Compare every district-day digest with what the province holds; a report per day;
        a resend request for what is missing."""
        with self.store.read() as cur:
            cur.execute("SELECT district, day, count, root, positions FROM province_digests ORDER BY district, day")
            digests = [r for r in cur.fetchall() if districts is None or r[0] in set(districts)]
        out = []
        for district, day, count, root, positions in digests:
            with self.store.transaction() as cur:
                cur.execute("SELECT position, value FROM province_events WHERE district = %s AND day = %s",
                            (district, day))
                held = [(int(p), bytes(v)) for p, v in cur.fetchall()]
                report = compare(district, day, count, root, positions, held)
                requested: list[int] = []
                if report.missing and resend:
                    self.request_resend(district, list(report.missing))
                    requested = list(report.missing)
                cur.execute(
                    "INSERT INTO province_reports (district, day, status, expected_count, held_count, expected_root,"
                    " held_root, missing, extra, differing, checked_at, resend_requested)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (district, day) DO UPDATE SET"
                    " status = EXCLUDED.status, expected_count = EXCLUDED.expected_count, held_count = EXCLUDED.held_count,"
                    " expected_root = EXCLUDED.expected_root, held_root = EXCLUDED.held_root, missing = EXCLUDED.missing,"
                    " extra = EXCLUDED.extra, differing = EXCLUDED.differing, checked_at = EXCLUDED.checked_at,"
                    " resend_requested = EXCLUDED.resend_requested",
                    (district, day, report.status, report.expected_count, report.held_count, report.expected_root,
                     report.held_root, orjson.dumps(report.missing).decode(), orjson.dumps(report.extra).decode(),
                     orjson.dumps(report.differing).decode(), us(self.clock()), orjson.dumps(requested).decode()))
            out.append(self._report_dict((district, day, report.status, report.expected_count, report.held_count,
                                          report.expected_root, report.held_root, list(report.missing),
                                          list(report.extra), list(report.differing), us(self.clock()), requested)))
        return out

    def request_resend(self, district: str, positions: list[int]) -> None:
        from kafka import KafkaProducer

        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all")
        k, v, h = fr.encode(fr.RESEND, district, 0, {"positions": positions}, key=district)
        self._producer.send(self.topics.control, key=k, value=v, headers=h).get(timeout=30)
        log.info("province: asked %s to resend %d record(s)", district, len(positions))

    # -- queries --------------------------------------------------------------------------------------
    def districts(self) -> list[dict[str, Any]]:
        """Every district ranked: on time over (concluded + open past the promise now), like the
        district's own league table; with open warnings by level and open anomalies."""
        now = us(self.clock())
        with self.store.read() as cur:
            cur.execute(
                "SELECT district, COUNT(*), SUM(CASE WHEN closed_at IS NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN closed_at IS NULL AND NOT suspended AND promised_due_at < %s THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' AND on_time THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' AND on_time = false THEN 1 ELSE 0 END), MAX(events)"
                " FROM province_cases GROUP BY district", (now,))
            cases = {r[0]: r[1:] for r in cur.fetchall()}
            cur.execute("SELECT district, level, COUNT(*) FROM province_warnings WHERE status = ANY(%s)"
                        " GROUP BY district, level", (list(OPEN_WARNINGS),))
            warnings: dict[str, dict[str, int]] = {}
            for d, level, n in cur.fetchall():
                warnings.setdefault(d, {})[level or "unknown"] = int(n)
            cur.execute("SELECT district, COUNT(*) FROM province_anomalies WHERE status = 'open' GROUP BY district")
            anomalies = {d: int(n) for d, n in cur.fetchall()}
            cur.execute("SELECT district, MAX(position), COUNT(*) FROM province_events GROUP BY district")
            positions = {d: (int(p), int(n)) for d, p, n in cur.fetchall()}
            cur.execute("SELECT district, COUNT(*) FROM province_alarms GROUP BY district")
            alarms = {d: int(n) for d, n in cur.fetchall()}
        out = []
        for d in sorted(set(cases) | set(positions)):
            total, open_, overdue, concluded, on_time, late, _ = (int(x or 0) for x in cases.get(d, (0,) * 7))
            judged = on_time + late + overdue
            out.append({"district": d, "cases": total, "open": open_, "overdue": overdue, "concluded": concluded,
                        "on_time": on_time, "late": late,
                        "on_time_rate": round(100 * on_time / (on_time + late), 1) if on_time + late else None,
                        "standing_rate": round(100 * on_time / judged, 1) if judged else None,
                        "warnings": warnings.get(d, {}), "red_cards": warnings.get(d, {}).get("red", 0)
                        + warnings.get(d, {}).get("severe", 0),
                        "open_anomalies": anomalies.get(d, 0), "events": positions.get(d, (0, 0))[1],
                        "position": positions.get(d, (0, 0))[0], "alarms": alarms.get(d, 0)})
        out.sort(key=lambda r: (-(r["standing_rate"] if r["standing_rate"] is not None else -1), r["overdue"],
                                r["district"]))
        for rank, r in enumerate(out, 1):
            r["rank"] = rank
        return out

    def performance(self, group_by: str = "district", district: str | None = None) -> list[dict[str, Any]]:
        """Figures by district, or by department across districts (``group_by=department``)."""
        if group_by not in ("district", "department"):
            raise ValueError("group_by is district or department")
        now = us(self.clock())
        where, params = ("WHERE district = %s", [district]) if district else ("", [])
        with self.store.read() as cur:
            cur.execute(
                f"SELECT {group_by}, COUNT(*), SUM(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' AND on_time THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'concluded' AND on_time = false THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'refused' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN closed_at IS NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN closed_at IS NULL AND NOT suspended AND promised_due_at < %s THEN 1 ELSE 0 END),"
                f" COUNT(DISTINCT district) FROM province_cases {where} GROUP BY {group_by} ORDER BY {group_by}",
                [now, *params])
            rows = cur.fetchall()
        out = []
        for key, received, accepted, concluded, on_time, late, refused, open_, overdue, districts in rows:
            on_time, late = int(on_time or 0), int(late or 0)
            out.append({"key": key, "received": int(received), "accepted": int(accepted or 0),
                        "concluded": int(concluded or 0), "on_time": on_time, "late": late,
                        "refused": int(refused or 0), "open": int(open_ or 0), "overdue": int(overdue or 0),
                        "on_time_rate": round(100 * on_time / (on_time + late), 1) if on_time + late else None,
                        "districts": int(districts)})
        return out

    def board(self, district: str | None = None, level: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        sql = ("SELECT district, warning_id, case_no, department, item_code, level, rule, status, threshold_at,"
               " issued_at, promised_due_at, legal_due_at FROM province_warnings WHERE status = ANY(%s)")
        params: list[Any] = [list(OPEN_WARNINGS)]
        if district:
            sql += " AND district = %s"
            params.append(district)
        if level:
            sql += " AND level = %s"
            params.append(level)
        sql += " ORDER BY threshold_at, district, warning_id LIMIT %s"
        params.append(limit)
        with self.store.read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        names = ("district", "id", "case_no", "department", "item_code", "level", "rule", "status", "threshold_at",
                 "issued_at", "promised_due_at", "legal_due_at")
        return [_named(names, r) for r in rows]

    def case(self, district: str, case_no: str) -> dict[str, Any] | None:
        with self.store.read() as cur:
            cur.execute("SELECT department, item_code, status, submitted_at, accepted_at, closed_at, on_time,"
                        " promised_due_at, legal_due_at, suspended FROM province_cases WHERE district = %s AND case_no = %s",
                        (district, case_no))
            row = cur.fetchone()
            cur.execute("SELECT position, schema, topic, version, payload FROM province_events"
                        " WHERE district = %s AND case_no = %s ORDER BY position", (district, case_no))
            events = cur.fetchall()
            cur.execute("SELECT anomaly_id, rule, type, status, reason FROM province_anomalies"
                        " WHERE district = %s AND case_no = %s ORDER BY anomaly_id", (district, case_no))
            anomalies = cur.fetchall()
        if row is None and not events:
            return None
        names = ("department", "item_code", "status", "submitted_at", "accepted_at", "closed_at", "on_time",
                 "promised_due_at", "legal_due_at", "suspended")
        summary = _named(names, row or (None,) * len(names))
        return {"district": district, "case_no": case_no, **summary,
                "events": [{"position": p, "kind": "step" if s == fr.STEP else "warning", "topic": t, "version": v,
                            **(pl if isinstance(pl, dict) else orjson.loads(pl))} for p, s, t, v, pl in events],
                "anomalies": [dict(zip(("id", "rule", "type", "status", "reason"), a)) for a in anomalies]}

    def cases(self, district: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        with self.store.read() as cur:
            cur.execute("SELECT case_no, department, item_code, status, submitted_at FROM province_cases"
                        " WHERE district = %s ORDER BY submitted_at DESC NULLS LAST, case_no LIMIT %s OFFSET %s",
                        (district, limit, offset))
            return [{"case_no": c, "department": d, "item_code": i, "status": s, "submitted_at": _iso(t)}
                    for c, d, i, s, t in cur.fetchall()]

    def reports(self, district: str | None = None, day: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT district, day, status, expected_count, held_count, expected_root, held_root, missing, extra,"
               " differing, checked_at, resend_requested FROM province_reports WHERE 1=1")
        params: list[Any] = []
        for col, value in (("district", district), ("day", day)):
            if value:
                sql += f" AND {col} = %s"
                params.append(value)
        with self.store.read() as cur:
            cur.execute(sql + " ORDER BY district, day", params)
            return [self._report_dict(r) for r in cur.fetchall()]

    @staticmethod
    def _report_dict(r: tuple) -> dict[str, Any]:
        names = ("district", "day", "status", "expected_count", "held_count", "expected_root", "held_root", "missing",
                 "extra", "differing", "checked_at", "resend_requested")
        out = dict(zip(names, r))
        out["checked_at"] = _iso(out["checked_at"])
        return out

    def checkpoints(self, district: str | None = None) -> list[dict[str, Any]]:
        rows = self._of_district("SELECT district, size, root, position, issued_at, cosigned_note, accepted_at"
                                 " FROM province_checkpoints", district, "district, size")
        return [{"district": d, "size": s, "root": r, "position": p, "issued_at": i, "cosigned_note": n,
                 "accepted_at": _iso(a)} for d, s, r, p, i, n, a in rows]

    def alarms(self, district: str | None = None) -> list[dict[str, Any]]:
        rows = self._of_district("SELECT district, code, position, detail, evidence, raised_at FROM province_alarms",
                                 district, "raised_at, district")
        return [{"district": d, "code": c, "position": p, "detail": t, "evidence": e, "raised_at": _iso(r)}
                for d, c, p, t, e, r in rows]

    def _of_district(self, select: str, district: str | None, order: str) -> list[tuple]:
        """The rows of ``select`` (of one district, when given), in ``order``."""
        where, params = (" WHERE district = %s", [district]) if district else ("", [])
        with self.store.read() as cur:
            cur.execute(f"{select}{where} ORDER BY {order}", params)
            return cur.fetchall()


def province_from_env(dsn: str, bootstrap: str, group: str, env: dict[str, str] | None = None) -> Province:
    from infra.feed_kafka import FeedTopics
    from infra.province_store import ProvinceStore

    env = dict(os.environ if env is None else env)
    trusted = orjson.loads(env["ESUP_PROVINCE_DISTRICT_KEYS"]) if env.get("ESUP_PROVINCE_DISTRICT_KEYS") else {}
    return Province(ProvinceStore(dsn), bootstrap, FeedTopics.from_env(env), group=group,
                    witness_key=env.get("ESUP_PROVINCE_WITNESS_KEY"), trusted_keys=trusted,
                    max_records=int(env.get("ESUP_PROVINCE_POLL", "500")))

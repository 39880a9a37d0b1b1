"""Shared by the feed and province tests: fresh topics per test (on the module's broker,
``tests/integration/conftest.py``), a district's workload, the relay as a real process, reading the feed back."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from infra import feed_records as fr
from infra.feed_kafka import FeedTopics, read_all
from services.ingest import SYSTEM
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

ROOT = Path(__file__).resolve().parents[2]
_n = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test of this run uses (topics, consumer groups) on a shared broker."""
    return f"{prefix}{next(_n)}-{os.getpid()}"


def fresh_topics(prefix: str, partitions: int) -> FeedTopics:
    """Topics of one test alone."""
    data = unique(prefix) + ".feed"
    return FeedTopics(data=data, positions=data + ".positions", control=data + ".control", partitions=partitions)


def topic_env(topics: FeedTopics) -> dict[str, str]:
    """The settings that point a relay or a province at ``topics``."""
    return {"ESUP_FEED_TOPIC": topics.data, "ESUP_FEED_PARTITIONS": str(topics.partitions)}


def workload(esup, clock, cases: int, prefix: str = "C", start: str = "2008-09-26 09:00", per_batch: int = 50) -> int:
    """``cases`` cases (submitted, accepted, concluded for two of three; a rating for some),
    recorded over consecutive minutes from ``start``; the ledger records written."""
    t0 = at(start)
    bodies = []
    for i in range(cases):
        no = f"{prefix}{i:05d}"
        when = t0 + timedelta(minutes=i)
        iso = lambda d: (when + d).isoformat()  # noqa: E731
        dept, item = ("GS", "GS-001") if i % 3 else ("DS", "DS-001")
        bodies.append([submitted(no, when=iso(timedelta()), item=item, dept=dept,
                                 applicant={"name": "张三", "id_number": "510101199001011234"}),
                       {**step(no, "accepted", iso(timedelta(minutes=5)), dept=dept), "staff": "P001"}])
        if i % 3 != 2:
            bodies[-1].append(step(no, "concluded", iso(timedelta(minutes=30)), dept=dept, result="issued"))
    n = 0
    for i in range(0, len(bodies), per_batch):
        chunk = [b for case in bodies[i:i + per_batch] for b in case]
        clock.set(max(at(start), t0 + timedelta(minutes=i + per_batch)) + timedelta(hours=1))
        try:
            esup.ingest.report(chunk, SYSTEM)
        except Exception as exc:
            raise AssertionError(getattr(exc, "errors", exc)) from exc
        n += len(chunk)
    return n


def store_env(settings) -> dict[str, str]:
    """Environment naming the same store for an ``esup`` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESUP_POSTGRES_", "POSTGRES_"))}
    env["ESUP_DATA_DIR"] = str(settings.data_dir)
    if settings.postgres:
        for k, v in settings.postgres.items():
            env["ESUP_" + k] = v
    if settings.pii_key:
        import base64

        env["ESUP_PII_KEY"] = base64.b64encode(settings.pii_key).decode()
    return env


def relay_process(settings, bootstrap: str, district: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    full = {**store_env(settings), "ESUP_DISTRICT": district, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "feed", "--bootstrap", bootstrap, *args], cwd=ROOT,
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ledger_records(esup) -> list[tuple[int, str]]:
    """(position, topic) of every ledger record the feed carries, in log order."""
    from services.feed import FEED_TOPICS

    out, start = [], 0
    while True:
        notes = esup.ledger.recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False)
        if not notes:
            return out
        out += [(n.id, n.topic) for n in notes if n.topic in FEED_TOPICS]
        start = notes[-1].id


def feed_bodies(bootstrap: str, topics: FeedTopics | None = None, schemas=(fr.STEP, fr.WARNING)) -> list[tuple[int, dict]]:
    """(partition, body) of the committed data records of ``schemas``, in partition order."""
    topics = topics or FeedTopics()
    out = []
    for r in read_all(bootstrap, [topics.data]):
        body = fr.decode(r.key, r.value, r.headers)
        if body["schema"] in schemas:
            out.append((r.partition, body))
    return out


def assert_exactly_once_in_order(esup, bootstrap: str, district: str, topics: FeedTopics | None = None) -> int:
    """Every ledger record of the district on the feed once, and each case's records in log order."""
    want = ledger_records(esup)
    got = [b for _, b in feed_bodies(bootstrap, topics) if b["district"] == district]
    positions = [b["notification_id"] for b in got]
    dup = len(positions) - len(set(positions))
    lost = sorted({p for p, _ in want} - set(positions))
    assert dup == 0, f"{dup} duplicated"
    assert not lost, f"{len(lost)} lost, e.g. {lost[:5]}"
    assert len(got) == len(want)
    per_case: dict[str, list[int]] = {}
    for b in got:
        per_case.setdefault(b["case_no"], []).append(b["notification_id"])
    for case_no, seq in per_case.items():
        assert seq == sorted(seq), f"case {case_no} out of order: {seq}"
    return len(got)

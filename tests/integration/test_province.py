"""The province (esup province) against a real Kafka broker and its own real PostgreSQL: views of
several districts, killed mid-batch, two consumers of one group, daily reconciliation with a
resend, and the witness catching a rewritten district log."""

from __future__ import annotations

import base64
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from api.province import create_province_app
from domain import note, witness
from domain.clock import ManualClock
from infra.feed_kafka import FeedTopics
from infra.province_store import ProvinceStore
from infra.settings import Settings
from services.feed import relay_for
from services.province import Province
from services.system import Esup
from tests.conftest import START, define_basics
from tests.integration.browser_support import needs_chromium
from tests.integration.feed_support import ROOT, fresh_topics, ledger_records, topic_env, unique, workload
from tests.unit.test_case import at

pytest.importorskip("kafka")
pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
WITNESS_KEY = note.Signer("esup.province/witness", bytes(range(32))).text()


@pytest.fixture
def topics():
    return fresh_topics("p", partitions=4)


@pytest.fixture
def new_dsn(pg_server):
    return lambda: pg_server.conninfo(pg_server.create_database("province"))


class World:
    """Districts on their own stores, each with a relay, and a broker."""

    def __init__(self, tmp_path, broker, topics):
        self.tmp, self.broker, self.topics = tmp_path, broker, topics
        self.districts: dict[str, tuple[Esup, ManualClock]] = {}

    def district(self, code: str, cases: int, days: int = 2) -> Esup:
        clock = ManualClock(START)
        esup = Esup.open(Settings(data_dir=self.tmp / code), clock)
        define_basics(esup)
        for d in range(days):
            workload(esup, clock, cases, prefix=f"{code}{d}-", start=f"2008-09-{26 + d} 09:00")
        esup.warnings.check(at("2008-10-20 12:00"))  # the open cases' cards (yellow, red)
        self.districts[code] = (esup, clock)
        return esup

    def publish(self, code: str, relay_class=None) -> None:
        esup, _ = self.districts[code]
        relay = relay_for(esup, self.broker.bootstrap_servers, district=code, topics=self.topics, batch=50)
        if relay_class is not None:
            relay.__class__ = relay_class
        relay.connect()
        esup.runner.catch_up()
        try:
            relay.run_once()
        finally:
            relay.close()

    def province(self, dsn: str, group: str | None = None) -> Province:
        p = Province(ProvinceStore(dsn), self.broker.bootstrap_servers, self.topics,
                     group=group or unique("g"), witness_key=WITNESS_KEY, max_records=100,
                     clock=lambda: at("2008-10-20 12:00"))
        p.open()
        return p

    def close(self):
        for esup, _ in self.districts.values():
            esup.close()


@pytest.fixture
def world(tmp_path, broker, topics):
    w = World(tmp_path, broker, topics)
    yield w
    w.close()


def rebuilt(world: World, dsn: str) -> dict:
    p = world.province(dsn)
    try:
        p.run_until_caught_up()
    finally:
        p.close()
    return p.store.dump(leave_out=LEAVE_OUT)


LEAVE_OUT = {"province_alarms": ("raised_at",)}


def test_provincial_views_of_several_districts(world, new_dsn):
    a, b = world.district("CDGX", 30), world.district("XJ", 12, days=1)
    world.publish("CDGX")
    world.publish("XJ")
    province = world.province(new_dsn())
    try:
        province.run_until_caught_up()
        ranked = {d["district"]: d for d in province.districts()}
        assert {k: v["cases"] for k, v in ranked.items()} == {"CDGX": 60, "XJ": 12}
        assert sorted(r["rank"] for r in ranked.values()) == [1, 2]
        # Every ledger record arrived once.
        assert ranked["CDGX"]["events"] == len(ledger_records(a)) and ranked["XJ"]["events"] == len(ledger_records(b))
        # The provincial board: every district's open cards, as many as each district issued.
        for code, esup in (("CDGX", a), ("XJ", b)):
            issued = [t for _, t in ledger_records(esup) if t.endswith("CaseWarning.Issued")]
            board = province.board(code)
            assert len(board) == len(issued) > 0
            assert ranked[code]["red_cards"] == sum(1 for w in board if w["level"] in ("red", "severe"))
        # By department across districts: GS and DS of both districts.
        by_dept = {r["key"]: r for r in province.performance("department")}
        assert by_dept["GS"]["districts"] == 2 and by_dept["GS"]["received"] + by_dept["DS"]["received"] == 72
        by_district = {r["key"]: r for r in province.performance("district")}
        assert by_district["CDGX"]["concluded"] == 40 and by_district["XJ"]["concluded"] == 8
        # A case for replay: every event of the district's case, in log order, with its chain hash.
        case = province.case("CDGX", "CDGX0-00001")
        events = a.cases.events("CDGX0-00001")
        assert [e["step"] for e in case["events"] if e["kind"] == "step"] == [e.STEP.value for e in events]
        assert [e["hash"] for e in case["events"] if e["kind"] == "step"] == [e.hash for e in events]
        # The API over it.
        client = TestClient(create_province_app(province, key="k"))
        h = {"Authorization": "Bearer k"}
        assert client.get("/api/v1/province/districts", headers=h).json()["districts"][0]["rank"] == 1
        r = client.get("/api/v1/province/districts/CDGX/cases/NOPE", headers=h)
        assert r.status_code == 404 and r.json()["code"] == "unknown_case"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/province/districts", headers={"Authorization": "k"}).json()["code"] == "missing_bearer"
        assert client.get("/api/v1/province/performance?group_by=x", headers=h).json()["code"] == "invalid_query"
        assert client.get("/api/v1/province/districts/CDGX/cases/CDGX0-00001", headers=h).json()["events"]
        assert "省级监察" in client.get("/").text
    finally:
        province.close()


def province_process(dsn: str, bootstrap: str, topics: FeedTopics, group: str, *args: str,
                     env: dict | None = None) -> subprocess.Popen:
    full = {**os.environ, **topic_env(topics), "ESUP_PROVINCE_WITNESS_KEY": WITNESS_KEY, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "province", "--no-http", "--dsn", dsn, "--bootstrap",
                             bootstrap, "--group", group, *args], cwd=ROOT, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_province_killed_mid_batch_ends_equal_to_one_rebuilt_from_the_topics(world, new_dsn):
    world.district("CDGX", 60)
    world.district("XJ", 20)
    world.publish("CDGX")
    world.publish("XJ")
    dsn, group = new_dsn(), "killed"
    rng = random.Random(int(os.environ.get("ESUP_PROVINCE_KILL_SEED", "7")))
    store = ProvinceStore(dsn)
    for trial in range(3):
        proc = province_process(dsn, world.broker.bootstrap_servers, world.topics, group,
                                env={"ESUP_PROVINCE_POLL": "15"})
        # Killed once it has applied something of this round (mid-way: small batches).
        before = sum(store.offsets(world.topics.data).values())
        deadline = time.monotonic() + 60
        while sum(store.offsets(world.topics.data).values()) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    proc = province_process(dsn, world.broker.bootstrap_servers, world.topics, group, "--once")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    killed = store.dump(leave_out=LEAVE_OUT)
    assert len(killed["province_events"]) == sum(len(ledger_records(e)) for e, _ in world.districts.values())
    assert killed == rebuilt(world, new_dsn())


def test_two_consumers_of_one_group_split_the_partitions_and_together_equal_one(world, new_dsn):
    dsn, group = new_dsn(), "pair"
    procs = [province_process(dsn, world.broker.bootstrap_servers, world.topics, group,
                              env={"ESUP_PROVINCE_POLL": "20"}) for _ in range(2)]
    latest: list[list[int] | None] = [None, None]

    def read(i):
        for line in procs[i].stdout:
            if "assigned partitions" in line:
                latest[i] = eval(line.rsplit("partitions", 1)[1])  # a list of ints, printed by the CLI

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(2)]
    for t in readers:
        t.start()
    try:
        deadline = time.monotonic() + 90
        while not (all(latest) and not set(latest[0]) & set(latest[1])
                   and sorted(latest[0] + latest[1]) == list(range(world.topics.partitions))):
            assert time.monotonic() < deadline, f"assignments {latest}"
            time.sleep(0.2)
        world.district("CDGX", 40)
        world.district("XJ", 20)
        world.publish("CDGX")
        world.publish("XJ")
        want = sum(len(ledger_records(e)) for e, _ in world.districts.values())
        store = ProvinceStore(dsn)
        deadline = time.monotonic() + 120
        while True:
            with store.read() as cur:
                cur.execute("SELECT COUNT(*) FROM province_events")
                if cur.fetchone()[0] == want:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)  # anomalies, digests and checkpoints after the last event
        split = latest[:]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    assert all(split) and not set(split[0]) & set(split[1])
    with store.read() as cur:  # each consumer wrote the offsets of its partitions
        cur.execute("SELECT COUNT(*) FROM province_offsets WHERE topic = %s", (world.topics.data,))
        assert cur.fetchone()[0] == world.topics.partitions
    assert store.dump(leave_out=LEAVE_OUT) == rebuilt(world, new_dsn())


def test_reconciliation_names_a_dropped_record_and_the_resend_repairs_it(world, new_dsn):
    esup = world.district("CDGX", 20)
    # The 7th ledger record of 26 Sep never reaches Kafka (a relay that loses it).
    dropped = ledger_records(esup)[6][0]

    class Lossy(type(relay_for(esup, world.broker.bootstrap_servers, "CDGX", topics=world.topics))):
        """Loses that record on the way to Kafka (after the relay shaped and counted it)."""

        def connect(self):
            state = super().connect()
            send = self.publisher.send

            def lossy(record):
                headers = dict(record[3])
                if not (headers["esup-notification-id"] == str(dropped).encode()
                        and headers["esup-schema"] in (b"esup.step/1", b"esup.warning/1")):
                    send(record)
            self.publisher.send = lossy  # every record of every transaction goes through send
            return state

    world.publish("CDGX", relay_class=Lossy)
    province = world.province(new_dsn())
    try:
        province.run_until_caught_up()
        reports = {r["day"]: r for r in province.reconcile()}
        assert reports["2008-09-26"]["status"] == "mismatch"
        assert reports["2008-09-26"]["missing"] == [dropped] and reports["2008-09-26"]["extra"] == []
        assert reports["2008-09-26"]["resend_requested"] == [dropped]
        assert province.reports("CDGX", "2008-09-26")[0]["missing"] == [dropped]
        # The relay answers the request (it reads the control topic), the province takes the record in.
        world.publish("CDGX")
        province.run_until_caught_up()
        after = {r["day"]: r for r in province.reconcile()}
        assert after["2008-09-26"]["status"] == "ok" and after["2008-09-26"]["missing"] == []
        assert after["2008-09-26"]["held_count"] == after["2008-09-26"]["expected_count"]
        with province.store.read() as cur:
            cur.execute("SELECT COUNT(*) FROM province_events WHERE district = 'CDGX'")
            assert cur.fetchone()[0] == len(ledger_records(esup))
    finally:
        province.close()


def case_events(esup: Esup) -> int:
    return sum(1 for _, t in ledger_records(esup) if t.startswith("esup.case:"))


def tamper_with_a_case_event(esup: Esup, case_no: str, version: int) -> None:
    """Change a stored event's chain hash, drop the signed checkpoints and the views: a district
    rewriting its history and re-signing it with its own key."""
    from domain.case import case_id

    data = esup.settings.data_dir
    esup.close()
    conn = sqlite3.connect(data / "ledger.sqlite")
    try:
        table = "stored_events"
        oid = case_id(case_no).hex
        state = bytes(conn.execute(f"SELECT state FROM {table} WHERE originator_id = ? AND originator_version = ?",
                                   (oid, version)).fetchone()[0])
        at_ = state.index(b'"hash":"') + 8
        changed = state[:at_] + (b"0" if state[at_:at_ + 1] != b"0" else b"1") + state[at_ + 1:]
        assert conn.execute(f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
                            (changed, oid, version)).rowcount == 1
        assert conn.execute(f"DELETE FROM {table} WHERE topic LIKE 'esup.checkpoint:%'").rowcount >= 1
        conn.commit()
    finally:
        conn.close()
    (data / "views.sqlite").unlink()


def test_the_witness_cosigns_and_catches_a_district_log_rewritten_after_it_was_acknowledged(world, new_dsn):
    esup = world.district("CDGX", 15, days=1)
    world.publish("CDGX")
    province = world.province(new_dsn())
    try:
        province.run_until_caught_up()
        [accepted] = province.checkpoints("CDGX")
        assert accepted["size"] == case_events(esup)
        # The cosignature verifies with the witness's key (C2SP tlog-cosignature/v1).
        body_text = note.parse(accepted["cosigned_note"])[0]
        cosig = accepted["cosigned_note"].rstrip("\n").rsplit("\n", 1)[1] + "\n"
        assert witness.verify_cosignature(body_text, cosig, note.Signer.parse(WITNESS_KEY).verifier)
        assert province.alarms() == []

        # More honest steps: the next checkpoint extends the first and is accepted too.
        _, clock = world.districts["CDGX"]
        workload(esup, clock, 5, prefix="M", start="2008-09-27 09:00")
        world.publish("CDGX")
        province.run_until_caught_up()
        assert [c["size"] for c in province.checkpoints("CDGX")] == [accepted["size"], case_events(esup)]
        acknowledged = province.checkpoints("CDGX")[-1]

        # The district rewrites an acknowledged event, re-signs, and publishes on.
        tamper_with_a_case_event(esup, "CDGX0-00003", 2)
        esup2 = Esup.open(Settings(data_dir=world.tmp / "CDGX"), clock)
        world.districts["CDGX"] = (esup2, clock)
        workload(esup2, clock, 3, prefix="N", start="2008-09-28 09:00")
        world.publish("CDGX")
        province.run_until_caught_up()
        [alarm] = province.alarms("CDGX")
        assert alarm["code"] == "not_an_extension"
        ev = alarm["evidence"]
        assert acknowledged["cosigned_note"].startswith(ev["accepted_note"])
        assert ev["accepted_size"] == acknowledged["size"] and ev["size"] == case_events(esup2)
        new_body = note.CheckpointBody.parse(note.parse(ev["note"])[0])
        # The evidence proves it: the district's own signature on the new head verifies, and its
        # proof does not join it to the head the province acknowledged.
        verifier = note.Verifier.parse(esup2.checkpoints.verifier_key())
        note.verify_checkpoint(ev["note"], verifier)
        assert not __import__("domain.merkle", fromlist=["x"]).verify_consistency(
            ev["accepted_size"], ev["size"], base64.b64decode(acknowledged["root"]), new_body.root,
            [base64.b64decode(p) for p in ev["proof"]])
        # The province's own copy still has the acknowledged history (its held root is not the new one).
        assert ev["held_root"]["root"] != base64.b64encode(new_body.root).decode()
        # Nothing after the rewrite was cosigned.
        assert [c["size"] for c in province.checkpoints("CDGX")][-1] == acknowledged["size"]
    finally:
        province.close()


@pytest.mark.browser
@needs_chromium
def test_the_province_page_ranks_districts_and_opens_a_case_timeline_in_chinese(world, new_dsn, browser):
    import uvicorn

    from tests.integration.test_crash import free_port

    world.district("CDGX", 12, days=1)
    world.district("XJ", 6, days=1)
    world.publish("CDGX")
    world.publish("XJ")
    province = world.province(new_dsn())
    province.run_until_caught_up()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_province_app(province, key="pk"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda d: d.accept("pk"))  # the page asks for the province's key once
        deadline = time.monotonic() + 20
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        page.wait_for_selector("#districts tbody tr")
        assert page.inner_text("h1") == "省级监察"
        rows = page.locator("#districts tbody tr").all_inner_texts()
        assert len(rows) == 2 and rows[0].startswith("1") and {"CDGX", "XJ"} <= set(" ".join(rows).split())
        assert page.locator("#bars .bar").count() == 2
        board = page.locator("#board tbody tr")
        assert board.count() == len(province.board())
        first = board.first.inner_text()
        assert "红牌" in first or "黄牌" in first
        board.first.click()
        page.wait_for_selector("#timeline li")
        timeline = page.locator("#timeline li").all_inner_texts()
        assert timeline[0].split()[2] == "收件" and any("预警发出" in x for x in timeline)
        page.screenshot(path="/tmp/esup-province-page.png")
        page.click("#lang")
        page.wait_for_function("document.querySelector('h1').textContent === 'Provincial supervision'")
        assert "Districts ranked" in page.inner_text("main")
    finally:
        server.should_exit = True
        thread.join(10)
        province.close()

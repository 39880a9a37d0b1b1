"""`esup rebuild` beside a running `esup serve` under a steady flow of steps (issue 6, item 2),
on both stores: the rebuild exits 0, nobody reads a half-built view meanwhile, the server logs
no projection failure, and once the flow stops the views equal a rebuild from scratch."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import orjson
import pytest

from datetime import datetime, timezone

from domain.clock import ManualClock
from projections.anomalies import sweep_now
from services.system import Esup
from tests.conftest import define_basics
from tests.integration.test_crash import free_port, start_server
from tests.integration.test_ledger import run_demo
from tests.integration.test_rebuild import dump, env_for
from tests.unit.test_case import at

CASES = 1500


def comparable(views: dict[str, list]) -> dict[str, list]:
    """The views, less what a wall-clock sweep (时效 timers swept while serving) stamps with the
    instant it ran: when it was detected, the log position it was placed at, ``as_of``."""
    out = dict(views)
    rows = []
    for row in views["anomalies"]:
        details = orjson.loads(row[13])
        details.pop("as_of", None)
        rows.append((*row[:10], *row[11:13], orjson.dumps(details, option=orjson.OPT_SORT_KEYS)))
    out["anomalies"] = sorted(rows, key=repr)
    return out


def volume(client: httpx.Client) -> int:
    r = client.get("/api/v1/metrics", params={"group_by": "center"})
    r.raise_for_status()
    return r.json()["total"]["volume"]


@pytest.mark.slow
def test_rebuild_beside_a_served_district_under_load(store_settings, tmp_path):
    clock = ManualClock(at("2008-01-01 08:00"))
    esup = Esup.open(store_settings, clock)
    run_demo(esup, clock, CASES)
    define_basics(esup)
    key = esup.access.create("admin")
    esup.runner.catch_up()
    esup.close()

    env = {**env_for(store_settings), "ESUP_ANOMALY_SWEEP_SECONDS": "100000"}  # only the log moves the views
    port = free_port()
    server = start_server(None, port, env=env, wait=60)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    stop = threading.Event()
    posted: list[int] = []
    seen: list[int] = []
    errors: list[str] = []

    def flow() -> None:  # a steady flow of new cases, ten at a time
        n = 0
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=30) as c:
            while not stop.is_set():
                steps = []
                for i in range(10):
                    case_no = f"LOAD{n:05d}{i}"
                    steps += [{"event_id": f"{case_no}-1", "case_no": case_no, "step": "submitted",
                               "occurred_at": "2008-12-26T09:00:00+08:00", "department": "GS", "item_code": "GS-001"},
                              {"event_id": f"{case_no}-2", "case_no": case_no, "step": "accepted",
                               "occurred_at": "2008-12-26T09:30:00+08:00", "department": "GS"}]
                r = c.post("/api/v1/steps/batch", json=steps)
                if r.status_code >= 300:
                    errors.append(f"post {r.status_code}: {r.text[:200]}")
                posted.append(n)
                n += 1
                time.sleep(0.2)

    def readers() -> None:  # what officers see: the figures never go back to a half-built view
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=30) as c:
            while not stop.is_set():
                try:
                    seen.append(volume(c))
                    r = c.get("/api/v1/warnings", params={"limit": 1})
                    if r.status_code != 200:
                        errors.append(f"board {r.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(f"read {exc!r}")
                time.sleep(0.02)

    threads = [threading.Thread(target=flow), threading.Thread(target=readers)]
    try:
        before = volume(client)
        assert before >= CASES
        for t in threads:
            t.start()
        time.sleep(1.0)
        rebuild = subprocess.run([sys.executable, "-m", "api.cli", "rebuild", "--batch", "200", "--quiet"], env=env,
                                 capture_output=True, text=True, timeout=600)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert rebuild.returncode == 0, rebuild.stderr[-3000:]
        assert len(posted) > 10, "the flow should have run during the rebuild"
        assert not errors, errors[:5]
        assert seen and min(seen) >= before, f"a half-built view was served: volume {min(seen)} < {before}"
        assert all(b >= a for a, b in zip(seen, seen[1:])), "the figures went backwards"

        # Quiet: let the server's views reach the ledger's head, then compare with a rebuild
        # from scratch.
        check = Esup.open(store_settings, ManualClock(at("2008-01-01 08:00")))
        deadline = time.time() + 120
        while time.time() < deadline:
            head = check.runner.head()
            if all(check.runner.position(n) >= head for n in check.runner.views):
                time.sleep(1.0)  # the scheduler may still issue a warning or two
                if check.runner.head() == head:
                    break
            time.sleep(0.2)
        served = dump(check)
        check.close()
    finally:
        stop.set()
        client.close()
        server.terminate()
        try:
            _, raw = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, raw = server.communicate()
        stderr = raw.decode(errors="replace")
    assert "projection catch-up failed" not in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]

    scratch = Esup.open(store_settings, ManualClock(at("2008-01-01 08:00")))
    try:
        scratch.runner.rebuild()
        # The server swept time-based anomalies by the wall clock as it went: so does this.
        sweep_now(scratch, datetime.now(timezone.utc))
        assert comparable(dump(scratch)) == comparable(served)
        with scratch.views.read() as cur:
            assert cur.execute("SELECT COUNT(*) FROM case_board").fetchone()[0] == CASES + 10 * len(posted)
    finally:
        scratch.close()

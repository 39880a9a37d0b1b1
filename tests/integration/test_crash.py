"""Data is never lost: a server killed with SIGKILL mid-ingest keeps every acknowledged step,
and no batch is ever half-stored."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from domain.errors import NotFound
from infra.settings import Settings
from services.system import Esup
from tests.conftest import define_basics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir, port, env: dict[str, str] | None = None, wait: float = 30) -> subprocess.Popen:
    """``esup serve`` on ``data_dir`` (or with ``env``, e.g. a PostgreSQL store's), once it answers."""
    env = env or {**os.environ, "ESUP_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(proc.stderr.read().decode())


def batch(n: int) -> list[dict]:
    """Ten cases, two steps each."""
    out = []
    for i in range(10):
        case_no = f"K{n:04d}{i}"
        out.append({"event_id": f"{case_no}-1", "case_no": case_no, "step": "submitted",
                    "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "item_code": "GS-001"})
        out.append({"event_id": f"{case_no}-2", "case_no": case_no, "step": "accepted",
                    "occurred_at": "2008-09-26T09:30:00+08:00", "department": "GS"})
    return out


@pytest.mark.slow
def test_sigkill_during_ingest_loses_no_acknowledged_step(tmp_path):
    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    define_basics(esup)
    key = esup.access.create("admin")
    esup.close()

    port = free_port()
    proc = start_server(data, port)
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer(offset: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as client:
            n = offset
            while not stop.is_set():
                try:
                    r = client.post("/api/v1/steps/batch", json=batch(n), timeout=10)
                except httpx.HTTPError:
                    return  # the server died under us: this batch was not acknowledged
                if r.status_code in (200, 201):
                    acknowledged.append(n)
                n += 2

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    while len(acknowledged) < 40:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()

    # Restart on the same data and check.
    proc = start_server(data, port)
    try:
        esup = Esup.open(Settings(data_dir=data))
        stored = {c for c in range(0, max(acknowledged) + 10)
                  if _has(esup, f"K{c:04d}0")}
        assert set(acknowledged) <= stored, "an acknowledged batch was lost"
        for n in stored:  # all or nothing: every case of a stored batch has both steps
            for i in range(10):
                assert esup.cases.current(f"K{n:04d}{i}").version == 2
        # The restarted server accepts new work and answers duplicates of old work as such.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as client:
            assert client.post("/api/v1/steps/batch", json=batch(acknowledged[0])).json()["duplicates"] == 20
            assert client.post("/api/v1/steps/batch", json=batch(9999)).status_code == 201
        esup.close()
    finally:
        proc.terminate()
        proc.wait(10)


def _has(esup: Esup, case_no: str) -> bool:
    try:
        esup.cases.current(case_no)
        return True
    except NotFound:
        return False

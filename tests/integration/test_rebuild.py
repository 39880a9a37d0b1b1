"""A projection process killed mid-rebuild and restarted ends with views identical to an
uninterrupted rebuild, on both stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from services.system import Esup
from tests.integration.test_ledger import run_demo


def dump(esup: Esup) -> dict[str, list]:
    out = {}
    with esup.views.transaction() as cur:
        for view in esup.runner.views.values():
            for table in view.tables:
                out[table] = sorted(map(tuple, cur.execute(f"SELECT * FROM {table}").fetchall()), key=repr)
    return out


def env_for(settings) -> dict[str, str]:
    env = {**os.environ, "ESUP_DATA_DIR": str(settings.data_dir)}
    for key, value in (settings.postgres or {}).items():
        env["ESUP_" + key] = value
    return env


def shadow_positions(esup: Esup) -> list[int]:
    """Where an interrupted rebuild's shadow views stand (empty if there is none)."""
    shadow = esup.views.shadow(fresh=False)
    try:
        return [shadow.position(n) for n in esup.runner.views]
    finally:
        shadow.close()


@pytest.mark.slow
def test_killed_rebuild_resumes_to_identical_views(esup, clock, store_settings):
    """SIGKILL mid-rebuild: the live views are untouched meanwhile (the rebuild builds beside
    them), and --resume finishes from the shadow's positions to the same views."""
    run_demo(esup, clock, 800)
    head = esup.runner.head()
    esup.runner.rebuild()
    uninterrupted = dump(esup)
    assert uninterrupted["case_board"], "the demo should fill the case board"

    cmd = [sys.executable, "-m", "api.cli", "rebuild", "--batch", "20", "--quiet"]
    proc = subprocess.Popen(cmd, env=env_for(store_settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill it with SIGKILL once it has committed part, but not all, of the rebuild.
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            positions = shadow_positions(esup)
        except Exception:  # the shadow is being created
            positions = []
        if any(0 < p < head for p in positions) and proc.poll() is None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    positions = shadow_positions(esup)
    assert any(p < head for p in positions), "the kill came too late to interrupt the rebuild"
    assert dump(esup) == uninterrupted, "a killed rebuild must leave the live views as they were"

    done = subprocess.run([sys.executable, "-m", "api.cli", "rebuild", "--resume", "--quiet"],
                          env=env_for(store_settings), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert dump(esup) == uninterrupted


def test_a_rebuild_while_ingest_goes_on_ends_consistent(esup, clock):
    """Rebuilding does not stop ingest; once both are done and the views caught up, they equal
    a rebuild from scratch."""
    import random
    import threading

    from services.demo import build_district, case_steps

    rng = random.Random(3)
    clock.set(datetime(2008, 1, 1, tzinfo=timezone.utc))
    build_district(esup, rng)
    steps = list(case_steps(esup, 400, rng))
    half = len(steps) // 2
    for i in range(0, half, 500):
        chunk = steps[i:min(i + 500, half)]
        clock.set(chunk[-1][0])
        esup.ingest.report([b for _, b in chunk])
    esup.runner.batch = 50

    def ingest_rest() -> None:
        for i in range(half, len(steps), 200):
            chunk = steps[i:i + 200]
            clock.set(chunk[-1][0])
            esup.ingest.report([b for _, b in chunk])

    writer = threading.Thread(target=ingest_rest)
    writer.start()
    esup.runner.rebuild()
    writer.join()
    esup.runner.catch_up()
    during = dump(esup)
    esup.runner.rebuild()
    assert dump(esup) == during
    with esup.views.transaction() as cur:
        assert cur.execute("SELECT COUNT(*) FROM case_board").fetchone()[0] == 400


def test_a_rebuild_in_two_processes_gives_the_views_one_process_gives(esup, clock, caplog):
    """Each view replays the whole log in order whichever process runs it: two workers (a
    forked one taking a share of the views) end with the very rows of one. The views replay
    together, one read of the log for all (never the slow one-view-at-a-time fallback)."""
    run_demo(esup, clock, 300)
    esup.runner.rebuild()
    assert not [r for r in caplog.records if "one view at a time" in r.getMessage()]
    alone = dump(esup)
    assert alone["case_board"] and alone["anomalies"] and alone["warning_cases"] is not None
    esup.runner.rebuild(workers=2)
    assert dump(esup) == alone
    head = esup.runner.head()
    assert all(esup.runner.position(n) == head for n in esup.runner.views)


def test_the_views_are_split_into_shares_of_about_equal_cost():
    from projections.runner import split_by_cost

    names = ["case_board", "anomalies", "performance", "warning_thresholds", "warning_board", "other"]
    shares = split_by_cost(names, 2)
    assert sorted(n for s in shares for n in s) == sorted(names) and len(shares) == 2
    assert {"anomalies", "warning_thresholds"} not in [set(s) & {"anomalies", "warning_thresholds"} for s in shares]
    assert split_by_cost(["case_board"], 4) == [["case_board"]]


def test_a_workers_part_of_the_shadow_is_taken_in_with_its_position(esup, clock):
    """A rebuild's worker builds its share in ``shadow(part=k)`` (on SQLite a file of its own,
    so the worker never waits on the parent's write lock); ``take_part`` brings that share's
    rows and position into the shadow, and leaves no part file behind."""
    from projections.runner import ProjectionRunner

    run_demo(esup, clock, 40)
    esup.runner.catch_up()
    with esup.views.read() as cur:
        live = sorted(map(tuple, cur.execute("SELECT * FROM case_board").fetchall()), key=repr)
    assert live
    shadow = esup.views.shadow(fresh=True)
    part = esup.views.shadow(fresh=False, part=1)
    try:
        mine = [v for v in esup.runner.factory(part) if v.name == "case_board"]
        read = ProjectionRunner(esup.ledger, part, mine, skips_from=esup.views).replay(["case_board"])
        # Only the view's topics are read: the ledger's idempotency records (half the log) are not.
        taken = len(esup.ledger.recorder.select_notifications(0, 10**6, topics=mine[0].topics))
        assert read == taken < esup.runner.head()
        assert part.position("case_board") == esup.runner.head()
        ProjectionRunner(esup.ledger, shadow, [v for v in esup.runner.factory(shadow) if v.name == "case_board"],
                         skips_from=esup.views)
        shadow.take_part(1, {"case_board": ("case_board",)})
        assert shadow.position("case_board") == esup.runner.head()
        with shadow.read() as cur:
            assert sorted(map(tuple, cur.execute("SELECT * FROM case_board").fetchall()), key=repr) == live
    finally:
        part.close()
        esup.views.drop_shadow(shadow)
    if esup.views.kind == "sqlite":
        assert not list(esup.views.path.parent.glob("*.rebuild*")), "the part and the shadow are removed"


def test_a_damaged_workspace_is_replayed_from_the_start_on_resume(esup, clock, caplog):
    """A rebuild's shadow is written without fsync (it need survive a killed process, not a
    power loss): a shadow found damaged when a rebuild resumes is started again, to the same
    views, with a warning saying so."""
    if esup.views.kind != "sqlite":
        pytest.skip("PostgreSQL's shadow commits without waiting for its WAL flush: never damaged, only shorter")
    run_demo(esup, clock, 60)
    esup.runner.rebuild()
    whole = dump(esup)
    shadow = esup.views.shadow(fresh=True)
    assert not shadow.durable and esup.views.durable
    with shadow.transaction() as cur:
        assert cur.execute("PRAGMA synchronous").fetchall()[0][0] == 0  # OFF
    shadow.close()
    path = shadow.path
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))  # what a power loss may leave
    with caplog.at_level("WARNING"):
        esup.runner.rebuild(resume=True)
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert dump(esup) == whole

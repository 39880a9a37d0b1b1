"""One event a view cannot apply must not stall every view silently (issue 6, item 8), on both
stores: the view stops just before it with the fault recorded (view, log position, event,
error), the other views follow the log, `/healthz` and `esup views` raise the alarm, and the
operator's way out (`esup views skip`) lets the view go on."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from api.app import create_app
from domain.case import case_id
from tests.integration.test_ledger import step, submitted
from tests.integration.test_rebuild import env_for
from tests.integration.test_warnings import iso, report


def delete_case_rows(esup, case_no: str) -> None:
    """Damage the store as an intruder (or a careless DBA) would: the case's rows are gone."""
    cid = case_id(case_no)
    if esup.settings.postgres:
        import psycopg

        pg = esup.settings.postgres
        with psycopg.connect(host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"], user=pg["POSTGRES_USER"],
                             password=pg.get("POSTGRES_PASSWORD") or None, dbname=pg["POSTGRES_DBNAME"],
                             autocommit=True) as conn:
            conn.execute("DELETE FROM ledger_events WHERE originator_id = %s", (cid,))
    else:
        import sqlite3

        with sqlite3.connect(esup.settings.data_dir / "ledger.sqlite") as conn:
            conn.execute("DELETE FROM stored_events WHERE originator_id = ?", (cid.hex,))
    esup.ledger.repository.cache = None  # nothing of the old case is remembered in this process


def test_a_view_that_cannot_apply_an_event_stops_alone_and_says_so(district, store_settings):
    report(district, "2008-09-24 10:00", submitted("F1", when=iso("2008-09-24 09:00")),
           step("F1", "accepted", iso("2008-09-24 09:30")))
    district.runner.catch_up()
    delete_case_rows(district, "F1")
    # The case is submitted again: the ledger takes it (it holds no F1 now), the case board cannot.
    before = district.runner.head()
    report(district, "2008-09-25 09:00", {**submitted("F1", when=iso("2008-09-25 09:00")), "event_id": "F1-again"})
    poison = next(n.id for n in district.ledger.recorder.select_notifications(start=before, limit=10,
                                                                              inclusive_of_start=False)
                  if n.originator_id == case_id("F1"))
    report(district, "2008-09-25 10:00", submitted("F2", when=iso("2008-09-25 10:00")))
    head = district.runner.head()

    district.runner.catch_up()  # does not raise
    health = district.runner.health()
    fault = health["views"]["case_board"]["fault"]
    assert fault["position"] == poison and "case_board" in fault["view"]
    # The view says what is wrong in its own words (the case is on the board already), not a bare constraint error.
    assert "F1 is already on the case board" in fault["error"]
    assert health["views"]["case_board"]["position"] == poison - 1
    # Every view keyed by case stops there; the others follow the log.
    assert set(district.views.faults()) == {"case_board", "anomalies", "performance", "warning_thresholds"}
    assert health["views"]["warning_board"]["position"] == head

    api = TestClient(create_app(district))
    body = api.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["alarms"][0]["code"] == "view_stopped" and body["alarms"][0]["position"] == poison

    listing = subprocess.run([sys.executable, "-m", "api.cli", "views"], env=env_for(store_settings),
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 1 and f"STOPPED at {poison}" in listing.stdout
    skipped = subprocess.run([sys.executable, "-m", "api.cli", "views", "skip", "all", "--note", "F1 rows deleted"],
                             env=env_for(store_settings), capture_output=True, text=True, timeout=60)
    assert skipped.returncode == 0, skipped.stderr
    district.runner.catch_up()
    health = district.runner.health()
    assert health["faults"] == [] and health["views"]["case_board"]["position"] == head
    assert api.get("/healthz").json()["status"] == "ok"
    with district.views.read() as cur:
        assert cur.execute("SELECT COUNT(*) FROM case_board WHERE case_no = 'F2'").fetchone()[0] == 1

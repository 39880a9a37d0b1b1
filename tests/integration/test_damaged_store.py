"""Issue 6 item 8.2: a damaged store is answered, not crashed on.

Rows are damaged with SQL straight in the real stores (sqlite3 on the ledger file, psycopg on
PostgreSQL): one byte changed inside an applicant's sealed personal data, and an event row
deleted from the middle of a case. The case then answers ``500 integrity_violation`` (a
problem document naming the case and version), its ``/events`` shows what is left with the
damage marked, ``/verify`` reports the break, and every other case is served as before.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest

from domain.case import case_id
from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.integration.test_ledger import step, submitted

APPLICANT = {"name": "张三", "id_number": "510101198001011234"}


@contextmanager
def raw_sql(esup):
    """A connection of our own to the ledger's real database, with the events table's name."""
    table = esup.ledger.recorder.events_table_name
    if esup.settings.store == "sqlite":
        conn = sqlite3.connect(esup.settings.data_dir / "ledger.sqlite")
        try:
            yield conn, table, "?"
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        pg = esup.settings.postgres
        with psycopg.connect(host=pg["POSTGRES_HOST"], port=pg["POSTGRES_PORT"], user=pg["POSTGRES_USER"],
                             password=pg["POSTGRES_PASSWORD"], dbname=pg["POSTGRES_DBNAME"]) as conn:
            yield conn, table, "%s"


def flip_a_byte_in_the_sealed_applicant(esup, case_no):
    with raw_sql(esup) as (conn, table, ph):
        oid = case_id(case_no).hex if esup.settings.store == "sqlite" else case_id(case_no)
        state = bytes(conn.execute(f"SELECT state FROM {table} WHERE originator_id = {ph} AND originator_version = 1",
                                   (oid,)).fetchone()[0])
        at = state.index(b"pii1:") + 5 + 20  # inside the ciphertext
        changed = state[:at] + (b"A" if state[at:at + 1] != b"A" else b"B") + state[at + 1:]
        n = conn.execute(f"UPDATE {table} SET state = {ph} WHERE originator_id = {ph} AND originator_version = 1",
                         (changed, oid)).rowcount
        assert n == 1


def delete_version(esup, case_no, version):
    with raw_sql(esup) as (conn, table, ph):
        oid = case_id(case_no).hex if esup.settings.store == "sqlite" else case_id(case_no)
        n = conn.execute(f"DELETE FROM {table} WHERE originator_id = {ph} AND originator_version = {ph}",
                         (oid, version)).rowcount
        assert n == 1


def two_cases(api):
    for case_no, day in (("C1", "26"), ("C2", "27")):
        r = api("POST", "/api/v1/steps/batch", json=[
            submitted(case_no, when=f"2008-09-{day}T09:00:00+08:00", applicant=APPLICANT),
            step(case_no, "accepted", f"2008-09-{day}T09:30:00+08:00"),
            step(case_no, "undertaken", f"2008-09-{day}T10:30:00+08:00"),
            step(case_no, "concluded", f"2008-09-{day}T16:00:00+08:00", result="issued"),
        ])
        assert r.status_code == 201, r.text


def the_other_case_is_served(api):
    ok = api("GET", "/api/v1/cases/C2", key="officer")
    assert ok.status_code == 200 and ok.json()["applicant"] == APPLICANT
    assert api("GET", "/api/v1/cases/C2/verify", key="officer").json()["verified"] is True


def test_one_byte_changed_in_sealed_personal_data(api):
    two_cases(api)
    flip_a_byte_in_the_sealed_applicant(api.esup, "C1")
    body = assert_problem(api("GET", "/api/v1/cases/C1", key="officer"), 500, "integrity_violation")  # was InvalidTag
    assert body["case_no"] == "C1" and body["version"] == 1
    events = api("GET", "/api/v1/cases/C1/events", key="officer")
    assert events.status_code == 200
    history = events.json()["events"]
    assert [e["version"] for e in history] == [1, 2, 3, 4]
    assert history[0]["data"]["applicant"] == {"damaged": True, "code": "integrity_violation"}
    assert history[3]["step"] == "concluded"
    verdict = api("GET", "/api/v1/cases/C1/verify", key="officer").json()
    assert verdict["verified"] is False and verdict["first_bad_version"] == 1  # the hash covers the sealed bytes
    the_other_case_is_served(api)


def test_an_event_row_deleted_from_the_middle_of_a_case(api):
    two_cases(api)
    delete_version(api.esup, "C1", 2)
    body = assert_problem(api("GET", "/api/v1/cases/C1", key="officer"), 500, "integrity_violation")  # was OriginatorVersionError
    assert body["case_no"] == "C1" and body["version"] == 2 and body["problem"] == "missing"
    assert_problem(api("GET", "/api/v1/cases/C1", key="officer", params={"as_of": "2008-10-01T00:00:00+08:00"}),
                   500, "integrity_violation")
    history = api("GET", "/api/v1/cases/C1/events", key="officer").json()["events"]
    assert [(e["version"], e.get("step"), e.get("damaged")) for e in history] == [
        (1, "submitted", None), (2, None, True), (3, "undertaken", None), (4, "concluded", None)]
    verdict = api("GET", "/api/v1/cases/C1/verify", key="officer")
    assert verdict.status_code == 200
    v = verdict.json()
    assert v["verified"] is False and v["first_bad_version"] == 2 and v["damaged"] == [{"version": 2, "problem": "missing"}]
    # Department keys: their own damaged case answers the same; another department learns nothing.
    assert_problem(api("GET", "/api/v1/cases/C1", key="gs"), 500, "integrity_violation")
    assert_problem(api("GET", "/api/v1/cases/C1", key="ds"), 404, "unknown_case")
    assert_problem(api("GET", "/api/v1/cases/C1/events", key="ds"), 404, "unknown_case")
    the_other_case_is_served(api)
    # Steps keep being taken for other cases.
    assert api("POST", "/api/v1/steps", json=step("C2", "rated", "2008-09-28T10:00:00+08:00", score=1)).status_code == 201

"""Issue 6 item 4: a fact is never refused for want of our own reference data.

Today is 1 Dec 2026 and the packaged calendar ends with 2026. A deadline falling in 2027 is
computed on weekdays, flagged ``calendar_provisional`` with the missing year, and settled (a
``DeadlinesSettled`` ledger event, chained, replanning the warning thresholds) when the year is
published with ``PUT /api/v1/calendar/2027``. From 1 November ``/healthz`` and the CLI say that
next year's schedule is missing. Both stores.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.case import verify_chain
from domain.clock import ManualClock
from services.calendar import schedule_outlook
from tests.conftest import define_basics
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

# The State Council's 2027 notice as an operator would PUT it (dates as published for 2027 are
# not known to this test; any holidays do: the test checks the deadlines follow them).
SCHEDULE_2027 = {"holidays": ["2027-01-01", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11", "2027-02-12"],
                 "workdays": ["2027-02-06"]}


@pytest.fixture
def clock():
    return ManualClock(datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc))  # 10:00 in Beijing, Tue 1 Dec 2026


@pytest.fixture
def api(esup):
    define_basics(esup)
    ref = esup.reference
    # 20 working days promised; the legal 60 reach into 2027 from any December acceptance.
    ref.put_item("GS-020", {"name": "食品经营许可", "department": "GS", "kind": "licence",
                            "legal_limit": {"value": 60, "unit": "working_days"},
                            "promised_limit": {"value": 20, "unit": "working_days"}})
    ref.put_item("GS-021", {"name": "户外广告设置许可", "department": "GS", "kind": "licence",
                            "legal_limit": {"value": 20, "unit": "working_days"},
                            "promised_limit": {"value": 20, "unit": "working_days"}})
    client = TestClient(create_app(esup), raise_server_exceptions=False)
    keys = {"admin": esup.access.create("admin"), "gs": esup.access.create("department", ["GS"]),
            "officer": esup.access.create("officer")}

    def call(method, path, key="gs", **kw):
        return client.request(method, path, headers={"Authorization": f"Bearer {keys[key]}"}, **kw)

    call.esup = esup  # type: ignore[attr-defined]
    return call


def thresholds(esup, case_no):
    esup.runner.catch_up()
    with esup.views.read() as cur:
        rows = cur.execute("SELECT rule, due_at FROM warning_thresholds WHERE case_no = ? ORDER BY rule", (case_no,)).fetchall()
    return dict(rows)


def test_accept_today_with_a_20_working_day_limit_is_stored_provisionally_and_settled_on_publication(api):
    esup = api.esup
    assert api("POST", "/api/v1/steps", json=submitted("D1", when="2026-12-01T09:00:00+08:00", item="GS-020")).status_code == 201
    accepted = api("POST", "/api/v1/steps", json=step("D1", "accepted", "2026-12-01T09:30:00+08:00"))
    assert accepted.status_code == 201, accepted.text  # was 422 calendar_unknown
    body = accepted.json()
    # 20 working days from Tue 1 Dec end on Tue 29 Dec 2026: the packaged calendar decides it.
    assert body["promised_due_at"] == "2026-12-30T00:00:00+08:00"
    # 60 working days: 22 in December 2026 (2 to 31 Dec), then 38 weekdays of 2027 (no holiday
    # assumed, 1 Jan counted): Tue 23 Feb 2027.
    assert body["legal_due_at"] == "2027-02-24T00:00:00+08:00"
    flag = next(f for f in body["flags"] if f["code"] == "calendar_provisional")
    assert flag["years"] == [2027] and "2027" in flag["detail"]
    case = api("GET", "/api/v1/cases/D1", key="officer").json()
    assert case["calendar_provisional"] == [2027]
    before = thresholds(esup, "D1")
    assert before  # thresholds are planned on the provisional deadline, not dropped

    # A 20-working-day acceptance on 15 Dec reaches 2027 for its promise too (the refusal officers hit).
    esup.clock.set(at("2026-12-15 10:00"))
    api("POST", "/api/v1/steps", json=submitted("D2", when="2026-12-15T09:00:00+08:00", item="GS-021"))
    r = api("POST", "/api/v1/steps", json=step("D2", "accepted", "2026-12-15T09:30:00+08:00"))
    assert r.status_code == 201, r.text
    # 16-31 Dec: 12 working days; then 8 weekdays of 2027 (assumed): Tue 12 Jan 2027.
    assert r.json()["promised_due_at"] == "2027-01-13T00:00:00+08:00"
    assert r.json()["legal_due_at"] == "2027-01-13T00:00:00+08:00"

    # The year is published: both cases are settled by the real schedule.
    esup.clock.set(at("2026-12-20 10:00"))
    put = api("PUT", "/api/v1/calendar/2027", key="admin", json=SCHEDULE_2027)
    assert put.status_code == 201 and put.json()["settled"] == 2
    d1 = api("GET", "/api/v1/cases/D1", key="officer").json()
    # 1 Jan and 8-12 Feb off, Sat 6 Feb worked: the 60th working day moves from 23 Feb to Tue 2 Mar.
    assert d1["legal_due_at"] == "2027-03-03T00:00:00+08:00" and d1["calendar_provisional"] == []
    assert d1["promised_due_at"] == "2026-12-30T00:00:00+08:00"
    d2 = api("GET", "/api/v1/cases/D2", key="officer").json()
    assert d2["promised_due_at"] == "2027-01-14T00:00:00+08:00"  # 1 Jan off: one day later
    events = api("GET", "/api/v1/cases/D1/events", key="officer").json()["events"]
    settled = events[-1]
    assert settled["step"] == "deadlines_settled" and settled["data"]["years"] == [2027]
    assert settled["data"]["previous"]["legal_due_at"] == "2027-02-24T00:00:00+08:00"
    assert settled["prev_hash"] == events[-2]["hash"]  # in the case's chain
    assert api("GET", "/api/v1/cases/D1/verify", key="officer").json()["verified"] is True
    assert verify_chain("D1", esup.cases.events("D1")) is None
    after = thresholds(esup, "D1")
    assert after["severe"] > before["severe"]  # replanned from the settled legal deadline
    # Settling again changes nothing (no second event).
    again = api("PUT", "/api/v1/calendar/2027", key="admin", json=SCHEDULE_2027)
    assert again.status_code == 200 and again.json()["settled"] == 0
    assert len(esup.cases.events("D1")) == len(events)


def test_a_case_concluded_on_a_provisional_deadline_has_on_time_settled(esup, clock):
    define_basics(esup)
    clock.set(at("2027-01-05 12:00"))  # 2027 still unpublished: every 2027 day is assumed
    esup.ingest.report([submitted("J1", when="2027-01-04T09:00:00+08:00"),
                        step("J1", "accepted", "2027-01-04T09:30:00+08:00")])
    case = esup.cases.current("J1")
    assert case.provisional_years == (2027,) and case.promised_due_at == at("2027-01-12 00:00")  # 5 weekdays after Mon 4
    clock.set(at("2027-01-11 17:00"))
    esup.ingest.report([step("J1", "concluded", "2027-01-11T16:00:00+08:00", result="issued")])
    concluded = esup.cases.events("J1")[-1]
    assert concluded.derived["on_time"] is True and concluded.derived["provisional_years"] == [2027]
    # The real 2027 schedule makes Mon 11 Jan a holiday: the promise ends one working day later.
    schedule, created, changed, settled = esup.calendars.publish(2027, {"holidays": ["2027-01-01", "2027-01-11"]})
    assert settled == 1
    case = esup.cases.current("J1")
    assert case.promised_due_at == at("2027-01-13 00:00") and case.on_time is True and case.provisional_years == ()


def test_next_year_dates_december_2027_lean_on_2028(esup, clock):
    define_basics(esup)
    esup.calendars.publish(2027, SCHEDULE_2027)
    clock.set(at("2027-12-20 10:00"))
    esup.ingest.report([submitted("N1", when="2027-12-20T09:00:00+08:00"), step("N1", "accepted", "2027-12-20T09:30:00+08:00")])
    case = esup.cases.current("N1")
    assert case.promised_due_at == at("2027-12-28 00:00")  # within the published 2027: exact
    legal = esup.cases.events("N1")[-1]
    # 20 working days from Mon 20 Dec 2027: 21-31 Dec (9), then 11 weekdays of 2028 (assumed):
    # Mon 17 Jan 2028.
    assert legal.derived["legal_due_at"] == at("2028-01-18 00:00")
    assert legal.derived["provisional_years"] == [2028]
    assert esup.calendars.pending() == {2028: 1}
    assert esup.calendars.status()["missing_years"] == [2028]


@pytest.mark.parametrize(("today", "missing"), [
    ("2026-10-31 23:59", []),
    ("2026-11-01 00:00", [2027]),
    ("2027-01-05 09:00", [2027]),
])
def test_health_and_cli_say_next_years_schedule_is_missing_from_1_november(api, clock, today, missing, capsys):
    clock.set(at(today))
    health = api("GET", "/healthz").json()["calendar"]
    assert health["missing_years"] == missing and health["status"] == ("missing" if missing else "ok")
    from api.cli import calendar_report, calendar_warnings  # what `esup calendar status` and `esup serve` print

    warned = calendar_warnings(api.esup)
    assert bool(warned) == bool(missing) and all("2027" in w for w in warned)
    assert ("missing" in calendar_report(api.esup)[0]) == bool(missing)
    if missing:
        assert "PUT /api/v1/calendar/2027" in health["message"] and "2027年" in health["message"]
        api("PUT", "/api/v1/calendar/2027", key="admin", json=SCHEDULE_2027)
        assert api("GET", "/healthz").json()["calendar"]["status"] == "ok"


def test_schedule_outlook_is_pure():
    from datetime import date

    assert schedule_outlook({2026}, date(2026, 10, 31))["missing_years"] == []
    assert schedule_outlook({2026}, date(2026, 11, 1))["missing_years"] == [2027]
    assert schedule_outlook({2026}, date(2027, 1, 5))["missing_years"] == [2027]
    assert schedule_outlook({2026, 2027}, date(2027, 1, 5))["missing_years"] == []


def test_fee_null_is_a_free_item(api):
    r = api("PUT", "/api/v1/items/GS-777", key="admin",
            json={"name": "免费事项", "department": "GS", "kind": "non_licence", "fee": None,
                  "legal_limit": {"value": 5, "unit": "working_days"}, "promised_limit": {"value": 1, "unit": "working_days"}})
    assert r.status_code == 201, r.text
    assert r.json()["fee"] == "0.00"

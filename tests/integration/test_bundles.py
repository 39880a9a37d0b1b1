"""Parallel-approval bundles (并联审批) through the HTTP API, on SQLite and PostgreSQL.

2008: Sun 28 Sep is a worked 调休 Sunday (summer hours 13:30-17:30), 29 Sep - 5 Oct off, winter
hours from 1 Oct. A bundle accepted Sun 28 Sep 16:00 with a 4-working-hour promise is due
Mon 6 Oct 11:30.
"""

from __future__ import annotations

import pytest

from tests.integration.test_api import api, assert_problem  # noqa: F401  (the fixture)
from tests.integration.test_ledger import step, submitted

CHANNEL = {"name": "企业设立并联审批", "department": "ZWFW", "items": ["GS-001", "DS-001", "GS-002"],
           "promised_limit": {"value": 4, "unit": "working_hours"}, "legal_limit": {"value": 20, "unit": "working_days"}}


@pytest.fixture
def channel(api):  # noqa: F811
    assert api("PUT", "/api/v1/departments/ZWFW", key="admin", json={"name": "政务服务处"}).status_code == 201
    r = api("PUT", "/api/v1/channels/QYSL", key="admin", json=CHANNEL)
    assert r.status_code == 201 and r.json()["promised_limit"] == {"value": 4, "unit": "working_hours"}
    api.keys["zwfw"] = api.esup.access.create("department", ["ZWFW"])
    return api


def bundle(no="B1", parts=("P1", "P2"), when="2008-09-28T15:50:00+08:00", event_id=None, **kw):
    return {"event_id": event_id or f"{no}-sub", "bundle_no": no, "channel": "QYSL", "occurred_at": when,
            "parts": list(parts), "window": None, **kw}


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json()


def part_steps(api, case_no, item, dept, accepted, concluded):  # noqa: F811
    ok(api("POST", "/api/v1/steps/batch", key="admin", json=[
        submitted(case_no, when=accepted, item=item, dept=dept),
        step(case_no, "accepted", accepted, dept=dept),
        *([step(case_no, "concluded", concluded, dept=dept, result="issued")] if concluded else []),
    ]), 201)


def test_a_bundle_with_a_late_part_is_late_though_its_own_limit_held(channel):
    api = channel
    # P2 (tax registration, promised 4 working hours) was accepted Fri 26 Sep 09:00: due 14:30 that
    # day; it concludes on Sun 28 Sep 16:50, late. P1 is in time. The bundle (accepted 28 Sep 16:00,
    # due 6 Oct 11:30) concludes with its last part at 16:50: inside its own 4 hours, yet late.
    part_steps(api, "P2", "DS-001", "DS", "2008-09-26T09:00:00+08:00", None)
    created = ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle()), 201)
    assert created["status"] == "submitted" and [p["case_no"] for p in created["parts"]] == ["P1", "P2"]
    assert created["parts"][0]["status"] == "not_reported" and created["parts"][1]["status"] == "accepted"
    assert ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle()))["bundle_no"] == "B1"  # same event: 200
    accepted = ok(api("POST", "/api/v1/bundles/B1/accept", key="zwfw",
                      json={"event_id": "B1-acc", "occurred_at": "2008-09-28T16:00:00+08:00"}), 201)
    assert accepted["promised_due_at"] == "2008-10-06T11:30:00+08:00"
    part_steps(api, "P1", "GS-001", "GS", "2008-09-28T16:00:00+08:00", "2008-09-28T16:30:00+08:00")
    assert ok(api("GET", "/api/v1/cases/B1", key="officer"))["status"] == "accepted"  # one part still open
    ok(api("POST", "/api/v1/steps", key="admin", json=step("P2", "concluded", "2008-09-28T16:50:00+08:00", dept="DS",
                                                           result="issued")), 201)
    b = ok(api("GET", "/api/v1/cases/B1", key="officer"))
    assert b["kind"] == "bundle" and b["status"] == "concluded" and b["concluded_at"] == "2008-09-28T16:50:00+08:00"
    assert b["on_time"] is False and b["late"] is True and b["late_parts"] == ["P2"]
    states = {p["case_no"]: (p["status"], p["on_time"]) for p in b["parts"]}
    assert states == {"P1": ("concluded", True), "P2": ("concluded", False)}
    assert ok(api("GET", "/api/v1/bundles/B1", key="officer")) == b
    # Anomalies of the bundle (the view's rule) and of its late part (the anomalies view's).
    assert [a["rule"] for a in b["anomalies"]] == ["bundle_part_late"] and b["anomalies"][0]["evidence"]["late_parts"] == ["P2"]
    parts = {p["case_no"]: p for p in b["parts"]}
    assert "concluded_past_promise" in parts["P2"]["anomalies"] and "concluded_past_promise" not in parts["P1"]["anomalies"]
    # The board, the warnings and the anomalies of the bundle and of its part.
    board = ok(api("GET", "/api/v1/bundles", key="officer", params={"late": "true"}))["bundles"]
    assert [r["bundle_no"] for r in board] == ["B1"] and board[0]["late"] and board[0]["late_parts"] == 1
    assert {p["case_no"]: p["status"] for p in board[0]["parts"]} == {"P1": "concluded", "P2": "concluded"}
    assert ok(api("GET", "/api/v1/bundles", key="officer", params={"late": "false"}))["bundles"] == []
    alerts = ok(api("GET", "/api/v1/bundles/alerts", key="officer"))["alerts"]
    assert [(a["rule"], a["case_no"]) for a in alerts] == [("bundle:part_late", "P2")]  # the bundle's own limit held
    rules = [a["rule"] for a in ok(api("GET", "/api/v1/bundles/anomalies", key="officer"))["anomalies"]]
    assert rules == ["bundle_part_late"]
    figures = ok(api("GET", "/api/v1/metrics/channels", key="officer"))["channels"]
    assert figures[0]["channel"] == "QYSL" and figures[0]["volume"] == 1 and figures[0]["parts"] == 2
    assert figures[0]["on_time_rate"] == 0.0 and figures[0]["average_hours"] == pytest.approx(50 / 60, abs=0.01)
    # The DS key sees the bundle (one of its parts) but not the GS part's state.
    seen = ok(api("GET", "/api/v1/bundles/B1", key="ds"))
    assert {p["case_no"]: p["status"] for p in seen["parts"]} == {"P1": "hidden", "P2": "concluded"}
    # A rebuild of the view from the log gives the same board.
    api.esup.runner.rebuild(["bundles"])
    assert ok(api("GET", "/api/v1/bundles", key="officer", params={"late": "true"}))["bundles"] == board


def test_a_bundle_past_its_own_limit_is_late_though_every_part_is_in_time(channel):
    api = channel
    ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle()), 201)
    ok(api("POST", "/api/v1/bundles/B1/accept", key="zwfw",
           json={"event_id": "B1-acc", "occurred_at": "2008-09-28T16:00:00+08:00"}), 201)
    part_steps(api, "P1", "GS-001", "GS", "2008-09-28T16:00:00+08:00", "2008-09-28T16:30:00+08:00")
    part_steps(api, "P2", "GS-002", "GS", "2008-10-06T13:00:00+08:00", None)  # on the spot: due end of 6 Oct
    # Now (the fixture's clock: 20 Oct) the open bundle is red by its own limit, and its open part late.
    alerts = {(a["rule"], a["case_no"]) for a in ok(api("GET", "/api/v1/bundles/alerts", key="officer"))["alerts"]}
    assert alerts == {("bundle:red", None), ("bundle:part_late", "P2")}
    ok(api("POST", "/api/v1/steps", key="admin", json=step("P2", "concluded", "2008-10-06T13:20:00+08:00",
                                                           result="issued")), 201)
    b = ok(api("GET", "/api/v1/cases/B1", key="officer"))
    assert all(p["on_time"] for p in b["parts"]) and b["late_parts"] == []
    assert b["on_time"] is False and b["late"] is True  # 13:20 on 6 Oct is past its 11:30
    rules = {a["rule"] for a in ok(api("GET", "/api/v1/bundles/anomalies", key="officer"))["anomalies"]}
    assert rules == {"bundle_over_limit"}


def test_a_part_concluded_before_the_bundle_is_recorded_at_submission(channel):
    api = channel
    part_steps(api, "P1", "GS-001", "GS", "2008-09-28T15:00:00+08:00", "2008-09-28T15:30:00+08:00")
    part_steps(api, "P2", "GS-002", "GS", "2008-09-28T15:00:00+08:00", "2008-09-28T15:20:00+08:00")
    b = ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle()), 201)
    assert b["status"] == "concluded" and b["parts_closed"] == 2 and b["on_time"] is None  # never accepted


def test_refusals(channel):
    api = channel
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json={**bundle(), "channel": "NOPE"}), 422, "unknown_channel")
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(parts=["P1"])), 422, "invalid_parts")
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json={**bundle(), "colour": 1}), 422, "unknown_field")
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json={"bundle_no": "B1"}), 422, "missing_field")
    assert_problem(api("POST", "/api/v1/bundles", key="gs", json=bundle()), 403, "forbidden_department")
    part_steps(api, "X1", "GS-001", "GS", "2008-09-28T15:00:00+08:00", None)
    ok(api("POST", "/api/v1/steps", key="admin", json=submitted("X2", item="GS-001")), 201)
    # A bundle number is not a case number in use.
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(no="X1", parts=["P1", "P2"])), 409,
                   "case_exists")
    ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle()), 201)
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(event_id="other")), 409, "bundle_exists")
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(parts=["P1", "P3"])), 409, "event_id_reused")
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(no="B2", parts=["P2", "P3"])), 409,
                   "part_in_other_bundle")
    acc = {"event_id": "B1-acc", "occurred_at": "2008-09-28T16:00:00+08:00"}
    assert_problem(api("POST", "/api/v1/bundles/B1/accept", key="zwfw",
                       json={**acc, "occurred_at": "2008-09-28T15:00:00+08:00"}), 422, "before_submission")
    ok(api("POST", "/api/v1/bundles/B1/accept", key="zwfw", json=acc), 201)
    assert ok(api("POST", "/api/v1/bundles/B1/accept", key="zwfw", json=acc))["accepted_at"]  # same act again: 200
    assert_problem(api("POST", "/api/v1/bundles/B1/accept", key="zwfw", json={**acc, "event_id": "again"}), 409,
                   "already_accepted")
    assert_problem(api("POST", "/api/v1/bundles/NOPE/accept", key="zwfw", json=acc), 404, "unknown_bundle")
    assert_problem(api("GET", "/api/v1/cases/NOPE", key="officer"), 404, "unknown_case")
    ok(api("PUT", "/api/v1/departments/ZJ", key="admin", json={"name": "质监局"}), 201)
    ok(api("PUT", "/api/v1/items/ZJ-001", key="admin", json={
        "name": "组织机构代码", "department": "ZJ", "kind": "non_licence", "on_the_spot": True,
        "legal_limit": {"value": 5, "unit": "working_days"}, "promised_limit": {"value": 0, "unit": "working_days"}}), 201)
    ok(api("POST", "/api/v1/steps", key="admin", json=submitted("Z1", item="ZJ-001", dept="ZJ")), 201)
    assert_problem(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(no="B3", parts=["Z1", "X2"])), 422,
                   "item_not_in_channel")
    assert_problem(api("PUT", "/api/v1/channels/BAD", key="admin", json={**CHANNEL, "items": ["GS-001", "NOPE"]}), 422,
                   "unknown_item")
    # Nothing half stored: the refused B3 left no membership behind (Z1 and X2 are free).
    ok(api("POST", "/api/v1/bundles", key="zwfw", json=bundle(no="B4", parts=["X1", "X2"])), 201)

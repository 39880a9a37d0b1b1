"""Issue 6 item 8.1: an event id reused with different content is refused, never dropped.

Same (department, event_id) and the same content: a duplicate (200, the original outcome).
Same id, other content (another step, time, window, data, case): ``409 event_id_reused``
showing the original and the new, counted for its source; a batch holding one is refused
whole. Both stores.
"""

from __future__ import annotations

import pytest

from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.integration.test_ledger import case_events, step, submitted

APPLICANT = {"name": "李四", "id_number": "510101199001011234"}


def test_same_id_same_content_is_a_duplicate(api):
    first = api("POST", "/api/v1/steps", json=submitted(applicant=APPLICANT))
    again = api("POST", "/api/v1/steps", json=submitted(applicant=APPLICANT))
    assert first.status_code == 201 and again.status_code == 200 and again.json()["status"] == "duplicate"
    # The same instant written in another offset is the same content.
    api("POST", "/api/v1/steps", json=step("C1", "accepted", "2008-09-26T09:30:00+08:00"))
    same = api("POST", "/api/v1/steps", json=step("C1", "accepted", "2008-09-26T01:30:00Z"))
    assert same.status_code == 200 and same.json()["status"] == "duplicate"


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: b.update(step="refused", data={"reason": "材料不全"}), "step"),
    (lambda b: b.update(occurred_at="2008-09-26T10:30:00+08:00"), "occurred_at"),
    (lambda b: b.update(window="S009"), "window"),
    (lambda b: b.update(staff="P001"), "staff"),
])
def test_same_id_other_content_is_refused_409_showing_both(api, change, field):
    api("POST", "/api/v1/steps", json=submitted())
    original = step("C1", "accepted", "2008-09-26T09:30:00+08:00")
    assert api("POST", "/api/v1/steps", json=original).status_code == 201
    reused = dict(original)
    change(reused)
    stored_before = case_events(api.esup)
    resp = api("POST", "/api/v1/steps", json=reused)
    body = assert_problem(resp, 409, "event_id_reused")  # was 200 duplicate, the new content dropped
    assert field in body["differs"]
    assert body["original"]["step"] == "accepted" and body["original"]["version"] == 2
    assert body["original"]["event_id"] == body["new"]["event_id"] == "C1-accepted"
    assert body["new"][field] != body["original"][field] or field == "occurred_at"
    assert case_events(api.esup) == stored_before
    counts = api("GET", "/api/v1/sources/refusals", key="admin").json()["refusals"]
    assert counts["GS"]["event_id_reused"] == 1


def test_other_data_or_applicant_or_case_is_refused(api):
    api("POST", "/api/v1/steps", json=submitted(applicant=APPLICANT))
    other_applicant = api("POST", "/api/v1/steps", json=submitted(applicant={**APPLICANT, "name": "王五"}))
    body = assert_problem(other_applicant, 409, "event_id_reused")
    assert body["differs"] == ["applicant"] and "applicant" not in body["original"] and "applicant" not in body["new"]
    assert "李四" not in other_applicant.text and "王五" not in other_applicant.text  # no personal data in errors
    api("POST", "/api/v1/steps", json=step("C1", "accepted", "2008-09-26T09:30:00+08:00"))
    api("POST", "/api/v1/steps", json=step("C1", "concluded", "2008-10-06T10:00:00+08:00", result="issued"))
    other_data = api("POST", "/api/v1/steps", json=step("C1", "concluded", "2008-10-06T10:00:00+08:00", result="returned"))
    assert assert_problem(other_data, 409, "event_id_reused")["differs"] == ["data"]
    # The same id for a step of another case (already the rule) also shows both.
    api("POST", "/api/v1/steps", json=submitted("C2", when="2008-09-27T09:00:00+08:00"))
    other_case = api("POST", "/api/v1/steps", json=step("C2", "accepted", "2008-09-27T09:30:00+08:00", event_id="C1-accepted"))
    body = assert_problem(other_case, 409, "event_id_reused")
    assert body["original"]["case_no"] == "C1" and body["new"]["case_no"] == "C2"


def test_a_batch_with_a_reused_id_is_refused_whole(api):
    api("POST", "/api/v1/steps", json=submitted())
    api("POST", "/api/v1/steps", json=step("C1", "accepted", "2008-09-26T09:30:00+08:00"))
    stored_before = case_events(api.esup)
    resp = api("POST", "/api/v1/steps/batch", json=[
        step("C1", "undertaken", "2008-09-27T09:30:00+08:00"),
        step("C1", "reviewed", "2008-09-28T09:30:00+08:00", event_id="C1-accepted"),
    ])
    body = assert_problem(resp, 409, "batch_refused")
    assert [e["code"] for e in body["errors"]] == ["event_id_reused"] and body["errors"][0]["index"] == 1
    assert body["errors"][0]["original"]["step"] == "accepted" and body["errors"][0]["new"]["step"] == "reviewed"
    assert case_events(api.esup) == stored_before
    # One id twice inside one batch with different content: refused too; identical: a duplicate.
    twice = api("POST", "/api/v1/steps/batch", json=[
        step("C1", "undertaken", "2008-09-27T09:30:00+08:00", event_id="X1"),
        step("C1", "reviewed", "2008-09-28T09:30:00+08:00", event_id="X1"),
    ])
    assert assert_problem(twice, 409, "batch_refused")["errors"][0]["code"] == "event_id_reused"
    same = api("POST", "/api/v1/steps/batch", json=[step("C1", "undertaken", "2008-09-27T09:30:00+08:00", event_id="X1")] * 2)
    assert same.status_code == 201 and same.json()["duplicates"] == 1
    counts = api("GET", "/api/v1/sources/refusals", key="admin").json()["refusals"]
    assert counts["GS"]["event_id_reused"] == 2

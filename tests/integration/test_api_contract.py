"""What an integrator codes against: refusals that say what to fix and reveal nothing they should
not, the OpenAPI document, and the docs page working with no network."""

from __future__ import annotations

from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.integration.test_ledger import case_events, step, submitted


def test_another_departments_case_answers_like_a_case_that_does_not_exist(api):
    assert api("POST", "/api/v1/steps", json=submitted("C1")).status_code == 201
    accepted = {"occurred_at": "2008-09-26T09:30:00+08:00"}
    foreign = api("POST", "/api/v1/steps", key="ds", json=step("C1", "accepted", accepted["occurred_at"], dept="DS"))
    absent = api("POST", "/api/v1/steps", key="ds", json=step("C9", "accepted", accepted["occurred_at"], dept="DS"))
    assert_problem(foreign, 404, "unknown_case")
    assert_problem(absent, 404, "unknown_case")
    assert foreign.json()["detail"].replace("C1", "C9") == absent.json()["detail"]
    # Reading answers the same for both, too.
    got_foreign, got_absent = api("GET", "/api/v1/cases/C1", key="ds"), api("GET", "/api/v1/cases/C9", key="ds")
    assert_problem(got_foreign, 404, "unknown_case")
    assert_problem(got_absent, 404, "unknown_case")
    assert got_foreign.json()["detail"].replace("C1", "C9") == got_absent.json()["detail"]
    for path in ("/api/v1/cases/C1/events", "/api/v1/cases/C1/verify"):
        assert_problem(api("GET", path, key="ds"), 404, "unknown_case")
    assert case_events(api.esup) == 1


def test_a_key_sent_without_bearer_is_told_so(api):
    key = api.keys["gs"]
    body = assert_problem(api("GET", "/api/v1/items", key=None, headers={"Authorization": key}), 401, "missing_bearer")
    assert "Bearer" in body["detail"]
    assert_problem(api("GET", "/api/v1/items", key=None, headers={"Authorization": f"Basic {key}"}), 401, "missing_bearer")
    assert_problem(api("GET", "/api/v1/items", key=None), 401, "missing_key")
    assert_problem(api("GET", "/api/v1/items", key=None, headers={"Authorization": "Bearer "}), 401, "missing_key")
    assert api("GET", "/api/v1/items", key=None, headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_every_missing_field_of_a_step_is_named(api):
    body = assert_problem(api("POST", "/api/v1/steps", json={"step": "submitted", "department": "GS"}), 422, "missing_field")
    assert body["missing"] == ["event_id", "case_no", "occurred_at", "item_code"]
    for name in body["missing"]:
        assert name in body["detail"]
    batch = assert_problem(api("POST", "/api/v1/steps/batch", json=[submitted("C1"), {"step": "accepted"}]),
                           422, "batch_refused")
    assert batch["errors"][0]["missing"] == ["event_id", "case_no", "occurred_at", "department"]
    assert case_events(api.esup) == 0

"""The HTTP contract, including hostile input: never a 500, never half-stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.integration.test_ledger import case_events, step, submitted
from tests.unit.test_case import at


@pytest.fixture
def api(district, clock):
    clock.set(at("2008-10-20 12:00"))
    client = TestClient(create_app(district), raise_server_exceptions=False)
    keys = {
        "admin": district.access.create("admin"),
        "officer": district.access.create("officer"),
        "province": district.access.create("province"),
        "gs": district.access.create("department", ["GS"]),
        "ds": district.access.create("department", ["DS"]),
    }

    def call(method, path, key="gs", headers=None, **kw):
        headers = {**({"Authorization": f"Bearer {keys[key]}"} if key else {}), **(headers or {})}
        return client.request(method, path, headers=headers, **kw)

    call.esup = district  # type: ignore[attr-defined]
    call.keys = keys  # type: ignore[attr-defined]
    return call


def assert_problem(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["status"] == status and body["type"].endswith(code) and body["detail"]
    return body


def test_a_step_answers_201_then_200_for_the_same_event_id(api):
    first = api("POST", "/api/v1/steps", json=submitted(applicant={"name": "李四", "id_number": "510101199001011234"}))
    assert first.status_code == 201 and first.json()["status"] == "created"
    again = api("POST", "/api/v1/steps", json=submitted(applicant={"name": "李四", "id_number": "510101199001011234"}))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["hash"] == first.json()["hash"]


def test_case_state_history_and_as_of(api):
    api("POST", "/api/v1/steps/batch", json=[submitted(), step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
                                             step("C1", "concluded", "2008-10-06T10:00:00+08:00")])
    case = api("GET", "/api/v1/cases/C1").json()
    assert case["status"] == "concluded" and case["on_time"] is True and case["version"] == 3
    assert case["promised_due_at"] == "2008-10-09T00:00:00+08:00"
    assert case["legal_due_at"] == "2008-10-30T00:00:00+08:00"
    past = api("GET", "/api/v1/cases/C1", params={"as_of": "2008-10-01T00:00:00+08:00", "by": "occurred"}).json()
    assert past["status"] == "accepted" and past["version"] == 2
    events = api("GET", "/api/v1/cases/C1/events").json()["events"]
    assert [e["step"] for e in events] == ["submitted", "accepted", "concluded"]
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert api("GET", "/api/v1/cases/C1/verify").json()["verified"] is True


def test_personal_data_is_shown_to_officers_and_masked_for_everyone_else(api):
    api("POST", "/api/v1/steps", json=submitted(applicant={"name": "王小明", "id_number": "510101199001011234",
                                                            "phone": "13812345678"}))
    assert api("GET", "/api/v1/cases/C1", key="officer").json()["applicant"]["id_number"] == "510101199001011234"
    for key in ("province", "gs", "admin"):
        masked = api("GET", "/api/v1/cases/C1", key=key).json()["applicant"]
        assert masked["id_number"] != "510101199001011234" and "*" in masked["id_number"]
        assert "王小明" not in masked["name"]


def test_reference_data_endpoints(api):
    r = api("PUT", "/api/v1/departments/ZJ", key="admin", json={"name": "质监局"})
    assert r.status_code == 201
    r = api("PUT", "/api/v1/items/ZJ-001", key="admin", json={
        "name": "检验检测", "department": "ZJ", "kind": "licence", "on_the_spot": False, "fee": 100,
        "legal_limit": {"value": 20, "unit": "working_days"}, "promised_limit": {"value": 8, "unit": "working_days"},
        "valid_from": "2008-01-01"})
    assert r.status_code == 201 and r.json()["version"] == 1
    r = api("PUT", "/api/v1/items/ZJ-001", key="admin", json={
        "name": "检验检测", "department": "ZJ", "kind": "licence", "fee": 100,
        "legal_limit": {"value": 20, "unit": "working_days"}, "promised_limit": {"value": 6, "unit": "working_days"}})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert len(api("GET", "/api/v1/items/ZJ-001").json()["versions"]) == 2
    assert api("GET", "/api/v1/calendar/2008").json()["workdays"] == [
        "2008-02-02", "2008-02-03", "2008-05-04", "2008-09-27", "2008-09-28"]
    assert_problem(api("PUT", "/api/v1/items/X", json={"name": "x"}), 403, "forbidden_role")
    assert_problem(api("PUT", "/api/v1/items/X", key="admin", json={
        "name": "x", "department": "NOPE", "kind": "licence",
        "legal_limit": {"value": 1, "unit": "working_days"}, "promised_limit": {"value": 1, "unit": "fortnights"}}),
        422, "invalid_limit")


HOSTILE = [
    ("malformed JSON", b'{"event_id": ', 422, "malformed_json"),
    ("not an object", b'"hello"', 422, "invalid_body"),
    ("missing field", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "department": "GS"}', 422, "missing_field"),
    ("mistyped field", b'{"event_id": 5, "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "item_code": "GS-001"}', 422, "invalid_code"),
    ("unknown step", b'{"event_id": "x", "case_no": "C1", "step": "bribed", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS"}', 422, "unknown_step"),
    ("unknown item", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "item_code": "NOPE"}', 422, "unknown_item"),
    ("unknown case", b'{"event_id": "x", "case_no": "C404", "step": "accepted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS"}', 404, "unknown_case"),
    ("naive timestamp", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00", "department": "GS", "item_code": "GS-001"}', 422, "naive_timestamp"),
    ("far future", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "occurred_at": "2999-01-01T00:00:00+08:00", "department": "GS", "item_code": "GS-001"}', 422, "future_timestamp"),
    ("huge number", b'{"event_id": "x", "case_no": "C1", "step": "rated", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "data": {"score": 1e999}}', 422, "malformed_json"),
    ("nested junk", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "item_code": "GS-001", "data": {"applicant": [1, 2]}}', 422, "invalid_field"),
    ("another department", b'{"event_id": "x", "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "DS", "item_code": "DS-001"}', 403, "forbidden_department"),
    ("control characters", b'{"event_id": "x\\u0000", "case_no": "C1", "step": "submitted", "occurred_at": "2008-09-26T09:00:00+08:00", "department": "GS", "item_code": "GS-001"}', 422, "invalid_code"),
]


@pytest.mark.parametrize("name, body, status, code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_with_a_stable_code_and_nothing_is_stored(api, name, body, status, code):
    resp = api("POST", "/api/v1/steps", content=body, headers={"content-type": "application/json"})
    assert_problem(resp, status, code)
    assert case_events(api.esup) == 0


def test_a_bad_step_in_a_batch_refuses_the_whole_batch(api):
    resp = api("POST", "/api/v1/steps/batch", json=[submitted("C1"), submitted("C2", item="NOPE"),
                                                    step("C1", "teleported", "2008-09-26T09:30:00+08:00")])
    body = assert_problem(resp, 422, "batch_refused")
    # Every refusal is reported: parse errors first, then what the ledger refused.
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(2, "unknown_step")]
    assert body["stored"] == 0 and case_events(api.esup) == 0


def test_oversized_batches_and_bodies_are_refused(api):
    api.esup.settings.max_body_bytes = 50_000
    assert_problem(api("POST", "/api/v1/steps/batch", json=[submitted(f"C{i}") for i in range(1001)]), 413, "body_too_large")
    api.esup.settings.max_body_bytes = 8 * 1024 * 1024
    assert_problem(api("POST", "/api/v1/steps/batch", json=[submitted(f"C{i}") for i in range(1001)]), 422, "batch_too_large")
    assert_problem(api("POST", "/api/v1/steps/batch", json=[]), 422, "empty_batch")
    assert case_events(api.esup) == 0


def test_a_department_key_cannot_write_or_read_another_departments_case(api):
    assert api("POST", "/api/v1/steps", json=submitted()).status_code == 201
    # DS's key reports a step under its own department on GS's case: answered as for a case
    # that does not exist (see test_api_contract for the comparison).
    resp = api("POST", "/api/v1/steps", key="ds", json=step("C1", "accepted", "2008-09-26T09:30:00+08:00", dept="DS"))
    assert_problem(resp, 404, "unknown_case")
    # Reading it answers as if it did not exist: no probing of other departments' case numbers.
    assert_problem(api("GET", "/api/v1/cases/C1", key="ds"), 404, "unknown_case")
    assert case_events(api.esup) == 1


def test_keys_and_roles(api):
    assert_problem(api("GET", "/api/v1/cases/C1", key=None), 401, "missing_key")
    resp = api("GET", "/api/v1/items", key=None, headers={"Authorization": "Bearer esup_nope_nope"})
    assert_problem(resp, 401, "invalid_key")
    assert_problem(api("POST", "/api/v1/steps", key="officer", json=submitted()), 403, "forbidden_role")
    assert_problem(api("POST", "/api/v1/keys", key="gs", json={"role": "admin"}), 403, "forbidden_role")
    created = api("POST", "/api/v1/keys", key="admin", json={"role": "department", "departments": ["GS"]})
    assert created.status_code == 201
    public_id = created.json()["key"].split("_")[1]
    assert api("DELETE", f"/api/v1/keys/{public_id}", key="admin").status_code == 204
    stored = api("GET", "/api/v1/keys", key="admin").json()["keys"]
    assert all(k["id"] != public_id or k["revoked"] for k in stored)
    assert "secret" not in str(stored)


def test_unknown_routes_and_bad_query_parameters_are_problems_too(api):
    assert_problem(api("GET", "/api/v1/nothing"), 404, "no_such_route")
    api("POST", "/api/v1/steps", json=submitted())
    assert_problem(api("GET", "/api/v1/cases/C1", params={"as_of": "soon"}), 422, "invalid_timestamp")
    assert_problem(api("GET", "/api/v1/cases/C1", params={"as_of": "2008-09-26T08:00:00+08:00"}), 404, "not_yet")
    assert_problem(api("GET", "/api/v1/calendar/1999"), 422, "calendar_unknown")

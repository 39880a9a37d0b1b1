"""GET /api/v1/anomalies and GET /api/v1/metrics: filters, department scoping, CSV and xlsx."""

from __future__ import annotations

import csv
import io

import pytest

from tests.integration.test_anomalies import st, sub
from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.unit.test_case import at


@pytest.fixture
def loaded(api):  # noqa: F811
    r = api("POST", "/api/v1/steps/batch", key="admin", json=[
        sub("C1", when="2008-09-26T09:00:00+08:00"), st("C1", "accepted", "2008-10-09T09:00:00+08:00"),
        st("C1", "fee_charged", "2008-10-09T09:10:00+08:00", amount="80"),
        st("C1", "concluded", "2008-10-10T09:00:00+08:00", result="issued"),
        st("C1", "rated", "2008-10-10T09:05:00+08:00", score=1),
        sub("D1", item="DS-001", dept="DS", when="2008-10-17T09:00:00+08:00"),
        st("D1", "accepted", "2008-10-17T09:00:00+08:00", dept="DS"),
        st("D1", "concluded", "2008-10-17T10:00:00+08:00", dept="DS", result="issued"),
        st("D1", "rated", "2008-10-17T10:05:00+08:00", dept="DS", score=5),
    ])
    assert r.status_code == 201, r.text
    api.esup.runner.catch_up()
    return api


def test_anomalies_by_type_with_labels_and_evidence(loaded):
    body = loaded("GET", "/api/v1/anomalies", key="officer", params={"type": "discretion"}).json()
    assert body["total"] == 1 and body["counts"] == {"discretion": 1}
    a = body["anomalies"][0]
    assert (a["case_no"], a["rule"], a["type"], a["type_label"], a["rule_label"]) == (
        "C1", "fee_above_standard", "discretion", "裁量", "超标准收费")
    assert a["evidence"][0]["source_event_id"] == "C1-fee_charged" and a["evidence"][0]["version"] == 3
    # The Chinese label works as a filter too.
    assert loaded("GET", "/api/v1/anomalies", key="officer", params={"type": "时效"}).json()["counts"] == {"time": 1}
    every = loaded("GET", "/api/v1/anomalies", key="officer").json()
    assert {(x["case_no"], x["rule"]) for x in every["anomalies"]} >= {("C1", "acceptance_overdue"),
                                                                      ("C1", "late_entry")}


def test_anomalies_filters_case_period_and_department_scoping(loaded):
    only = loaded("GET", "/api/v1/anomalies", key="officer", params={"case_no": "D1"}).json()
    assert only["anomalies"] and all(x["case_no"] == "D1" for x in only["anomalies"])
    late = loaded("GET", "/api/v1/anomalies", key="officer", params={"from": "2008-10-09", "to": "2008-10-09"}).json()
    assert {x["rule"] for x in late["anomalies"]} >= {"acceptance_overdue", "fee_above_standard"}
    assert all(x["occurred_at"].startswith("2008-10-09") for x in late["anomalies"])
    # A department key sees its own departments only, and may not ask for another's.
    ds = loaded("GET", "/api/v1/anomalies", key="ds").json()
    assert ds["anomalies"] and {x["department"] for x in ds["anomalies"]} == {"DS"}
    assert_problem(loaded("GET", "/api/v1/anomalies", key="ds", params={"department": "GS"}), 403, "forbidden_department")
    assert_problem(loaded("GET", "/api/v1/anomalies", key="officer", params={"type": "nope"}), 422, "invalid_field")
    rules = loaded("GET", "/api/v1/anomalies/rules", key="gs").json()
    assert {t["label"] for t in rules["types"]} == {"时效", "流程", "内容", "裁量", "风险防控", "督办"}


def test_time_passing_is_swept_after_the_view_catches_up(loaded):
    loaded("POST", "/api/v1/steps", key="gs", json=sub("C9", when="2008-10-20T09:00:00+08:00"))
    loaded.esup.clock.set(at("2008-10-28 00:00:01"))  # five working days after Mon 20 Oct have passed
    loaded("POST", "/api/v1/steps", key="gs", json=sub("C10", when="2008-10-27T09:00:00+08:00"))
    loaded.esup.runner.catch_up()
    got = loaded("GET", "/api/v1/anomalies", key="gs", params={"case_no": "C9"}).json()["anomalies"]
    assert [x["rule"] for x in got] == ["acceptance_overdue"]


def test_metrics_json_for_groups_and_periods(loaded):
    body = loaded("GET", "/api/v1/metrics", key="officer", params={"group_by": "department"}).json()
    by = {r["key"]: r for r in body["rows"]}
    assert by["GS"]["volume"] == 1 and by["DS"]["on_time_rate"] == 100.0 and by["GS"]["score_1"] == 1
    assert body["total"]["satisfaction_rate"] == 50.0 and body["satisfied_scores"] == [1, 2, 3]
    day = loaded("GET", "/api/v1/metrics", key="officer",
                 params={"group_by": "day", "from": "2008-10-17", "to": "2008-10-17"}).json()
    assert [r["key"] for r in day["rows"]] == ["2008-10-17"] and day["total"]["volume"] == 1
    gs = loaded("GET", "/api/v1/metrics", key="gs", params={"group_by": "department"}).json()
    assert [r["key"] for r in gs["rows"]] == ["GS"]
    assert_problem(loaded("GET", "/api/v1/metrics", key="officer", params={"group_by": "planet"}), 422, "invalid_field")


def test_metrics_as_csv_for_excel_and_as_xlsx(loaded):
    r = loaded("GET", "/api/v1/metrics", key="officer", params={"group_by": "department", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese headers
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = table[0]
    assert "办件量 volume" in header and "按时办结率% on_time_rate" in header
    assert [row[0] for row in table[1:]] == ["DS", "GS", ""]  # the last row is the total
    r = loaded("GET", "/api/v1/metrics", key="officer", params={"group_by": "department", "format": "xlsx"})
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.content)).worksheets[0]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0] == header
    assert values[1][header.index("办件量 volume")] == 1 and values[1][0] == "DS"

"""The three tiers (三级政务服务体系) through the HTTP API, on SQLite and PostgreSQL: centers with their
tier, parent, halls, windows and delegated items; figures and rankings by tier and center."""

from __future__ import annotations

import pytest

from tests.integration.test_api import api, assert_problem  # noqa: F401  (the fixture)
from tests.integration.test_ledger import step, submitted


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def tiers(api):  # noqa: F811
    put = lambda path, body: ok(api("PUT", path, key="admin", json=body), 201)  # noqa: E731
    put("/api/v1/centers/D", {"name": "区级政务服务中心", "tier": "district", "items": ["GS-001"]})
    put("/api/v1/centers/S1", {"name": "芳草街街道社会事务服务中心", "tier": "street", "parent": "D", "items": ["GS-002"]})
    put("/api/v1/centers/S2", {"name": "桂溪街道社会事务服务中心", "tier": "street", "parent": "D", "items": ["GS-002"]})
    put("/api/v1/centers/C1", {"name": "芳草社区便民服务中心", "tier": "community", "parent": "S1", "items": ["GS-002"]})
    for center in ("D", "S1", "S2", "C1"):
        put(f"/api/v1/halls/{center}H", {"name": f"{center} 大厅", "center": center})
        put(f"/api/v1/windows/{center}W", {"name": f"{center} 1号窗口", "hall": f"{center}H", "department": "GS"})
    return api


def case(api, no, window, item, accepted, concluded):  # noqa: F811
    sub = {**submitted(no, when=accepted, item=item), "window": window}
    ok(api("POST", "/api/v1/steps/batch", key="admin", json=[
        sub, {**step(no, "accepted", accepted), "window": window},
        {**step(no, "concluded", concluded, result="issued"), "window": window}]), 201)


def test_figures_and_rankings_by_tier_and_center(tiers):
    api = tiers
    case(api, "K1", "DW", "GS-001", "2008-09-26T09:30:00+08:00", "2008-09-27T10:00:00+08:00")  # on time
    case(api, "K2", "DW", "GS-001", "2008-09-22T09:30:00+08:00", "2008-10-20T10:00:00+08:00")  # late
    case(api, "K3", "S1W", "GS-002", "2008-10-06T09:30:00+08:00", "2008-10-06T10:00:00+08:00")  # on the spot
    case(api, "K4", "S2W", "GS-002", "2008-10-06T09:30:00+08:00", "2008-10-07T10:00:00+08:00")  # a day late
    case(api, "K5", "S2W", "GS-002", "2008-10-08T09:30:00+08:00", "2008-10-08T10:00:00+08:00")
    case(api, "K6", "C1W", "GS-002", "2008-10-08T09:30:00+08:00", "2008-10-08T09:40:00+08:00")
    out = ok(api("GET", "/api/v1/metrics/centers", key="officer"))
    rows = {r["key"]: r for r in out["centers"]}
    assert {k: (r["tier"], r["volume"], r["on_time"]) for k, r in rows.items()} == {
        "D": ("district", 2, 1), "S1": ("street", 1, 1), "S2": ("street", 2, 1), "C1": ("community", 1, 1)}
    assert (rows["S1"]["rank"], rows["S2"]["rank"]) == (1, 2)  # 100% on time before 50%
    assert rows["C1"]["parent"] == "S1" and rows["S1"]["delegated_items"] == 1 and rows["D"]["windows"] == 1
    assert rows["S1"]["on_the_spot_share"] == 100.0  # its delegated item is on the spot
    tiers_ = {t["tier"]: t for t in out["tiers"]}
    assert (tiers_["street"]["centers"], tiers_["street"]["volume"], tiers_["street"]["on_time_rate"]) == (2, 3, 66.7)
    assert [r["key"] for r in ok(api("GET", "/api/v1/metrics/centers", key="officer",
                                     params={"tier": "street"}))["centers"]] == ["S1", "S2"]
    one = ok(api("GET", "/api/v1/metrics/centers", key="officer", params={"center": "S2"}))["centers"]
    assert [(r["key"], r["volume"], r["rank"]) for r in one] == [("S2", 2, 2)]
    assert_problem(api("GET", "/api/v1/metrics/centers", key="officer", params={"center": "NOPE"}), 404, "unknown_center")
    assert_problem(api("GET", "/api/v1/metrics/centers", key="officer", params={"tier": "moon"}), 422, "invalid_query")
    assert ok(api("GET", "/api/v1/metrics/centers", key="ds"))["tiers"][0]["volume"] == 0  # DS has no cases here


def test_a_center_delegates_only_catalogue_items(tiers):
    api = tiers
    assert_problem(api("PUT", "/api/v1/centers/S9", key="admin", json={"name": "x", "tier": "street", "items": ["NOPE"]}),
                   422, "unknown_item")
    assert_problem(api("PUT", "/api/v1/centers/S9", key="admin", json={"name": "x", "tier": "street", "items": "GS-002"}),
                   422, "invalid_field")
    centers = {c["code"]: c for c in ok(api("GET", "/api/v1/centers", key="officer"))["centers"]}
    assert centers["S1"]["items"] == ["GS-002"] and "S9" not in centers

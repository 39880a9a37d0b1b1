"""What an integrator codes against: refusals that say what to fix and reveal nothing they should
not, the OpenAPI document, and the docs page working with no network."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest

from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.integration.test_ledger import case_events, step, submitted
from tests.unit.test_case import at


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


# -- the docs page, offline ------------------------------------------------------------------


def test_docs_load_nothing_from_elsewhere_and_every_asset_is_served(api):
    page = api("GET", "/docs", key=None)
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert len(urls) >= 4, urls  # stylesheet, icon, script, the OpenAPI document
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not local"
        assert api("GET", url, key=None).status_code == 200, url
    # The strict policy admits the page's one inline script by its hash, nothing inline else.
    csp = page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    for script in re.findall(r"<script>(.*?)</script>", page.text, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    redoc = api("GET", "/redoc", key=None)
    for url in re.findall(r'(?:src|href|spec-url)="([^"]+)"', redoc.text):
        assert url.startswith("/") and api("GET", url, key=None).status_code == 200, url


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")
def test_swagger_ui_renders_in_chromium_with_no_request_elsewhere(tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.integration.test_crash import free_port, start_server

    port = free_port()
    proc = start_server(tmp_path / "data", port)
    origin = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(origin + "/docs")
            page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
            assert page.locator(".swagger-ui .opblock").count() >= 30
            assert "esup" in page.inner_text(".swagger-ui .info .title")
            page.screenshot(path="/tmp/esup-docs.png")
            browser.close()
        assert requests and all(u.startswith(origin) or u.startswith("data:") for u in requests), requests
        assert not errors, errors  # a Content-Security-Policy refusal shows up here
    finally:
        proc.terminate()
        proc.wait(10)


# -- one unit, one name, one style -------------------------------------------------------------

INSTANT_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+08:00$")


def _instants(value, key=None, out=None):
    """Every (key, text) that is an instant anywhere in an answer, stored payloads aside."""
    out = [] if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in ("data", "derived", "flags"):
                _instants(v, k, out)
    elif isinstance(value, list):
        for v in value:
            _instants(v, key, out)
    elif isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        out.append((key, value))
    return out


def _day(api):
    r = api("POST", "/api/v1/steps/batch", key="admin", json=[
        submitted("C1", when="2008-10-06T09:00:00+08:00"), step("C1", "accepted", "2008-10-06T09:30:00+08:00"),
        step("C1", "concluded", "2008-10-07T10:00:00+08:00", result="issued"),
        submitted("C2", when="2008-09-22T09:00:00+08:00"), step("C2", "accepted", "2008-09-22T09:30:00+08:00"),
        step("C2", "concluded", "2008-10-07T11:00:00+08:00", result="issued"),
        submitted("D1", item="DS-001", dept="DS", when="2008-10-07T09:00:00+08:00"),
        step("D1", "accepted", "2008-10-07T09:10:00+08:00")])
    assert r.status_code == 201, r.text
    api.esup.runner.catch_up()


def test_rates_are_percentages_in_the_summary_as_in_the_metrics(api):
    _day(api)
    summary = api("GET", "/api/v1/monitor/summary", key="officer", params={"date": "2008-10-07"}).json()
    metrics = api("GET", "/api/v1/metrics", key="officer",
                  params={"group_by": "department", "from": "2008-10-07", "to": "2008-10-07"}).json()
    gs = next(r for r in metrics["rows"] if r["key"] == "GS")
    assert summary["counters"]["on_time_rate"] == gs["on_time_rate"] == metrics["total"]["on_time_rate"] == 50.0
    league = {d["department"]: d for d in summary["departments"]}
    assert league["GS"]["on_time_rate"] == 50.0


def test_an_anomaly_has_the_same_names_in_the_stream_as_in_rest(api):
    from services.monitor import MonitorFeed, Progress, Scope, find_anomaly_source

    _day(api)  # D1 is accepted by nobody named: missing_actor
    rest = next(a for a in api("GET", "/api/v1/anomalies", key="officer").json()["anomalies"] if a["case_no"] == "D1")
    esup = api.esup
    feed = MonitorFeed(esup.ledger, esup.views, find_anomaly_source(esup.runner))
    at, items = Progress.at(0), []
    for _ in range(20):
        got, at = feed.read(at, Scope.parse("anomaly", None, None))
        items += got
    streamed = next(i.data for i in items if i.kind == "anomaly" and i.data["case_no"] == "D1" and i.data["rule"] == rest["rule"])
    for name in ("case_no", "rule", "type", "reason", "status", "department", "occurred_at", "detected_at"):
        assert streamed[name] == rest[name], name
    assert "category" not in streamed and "summary" not in streamed


def test_every_instant_is_china_time_and_every_deadline_names_its_last_day(api):
    out = api("POST", "/api/v1/steps", json=submitted("C1"))
    accepted = api("POST", "/api/v1/steps", json=step("C1", "accepted", "2008-09-26T09:30:00+08:00")).json()
    assert accepted["legal_due_at"] == "2008-10-30T00:00:00+08:00" and accepted["legal_due_date"] == "2008-10-29"
    case = api("GET", "/api/v1/cases/C1").json()
    # "By the end of 29 Oct": the instant is midnight that follows, the date is the 29th.
    assert (case["promised_due_at"], case["promised_due_date"]) == ("2008-10-09T00:00:00+08:00", "2008-10-08")
    assert (case["legal_due_at"], case["legal_due_date"]) == ("2008-10-30T00:00:00+08:00", "2008-10-29")
    # A working-hours deadline ends within its day.
    api("POST", "/api/v1/steps/batch", json=[submitted("D1", item="DS-001", dept="DS", when="2008-09-28T16:00:00+08:00"),
                                             step("D1", "accepted", "2008-09-28T16:00:00+08:00", dept="DS")], key="admin")
    d1 = api("GET", "/api/v1/cases/D1", key="officer").json()
    assert d1["promised_due_at"].startswith("2008-10-06T11:30") and d1["promised_due_date"] == "2008-10-06"
    api.esup.clock.set(at("2008-10-20 12:00"))
    api.esup.warnings.check()
    board = api("GET", "/api/v1/warnings", key="officer", params={"status": "all"}).json()
    warning = next(w for w in board["warnings"] if w["case_no"] == "C1" and w["level"] == "red")
    acted = api("POST", f"/api/v1/warnings/{warning['id']}/escalate", key="officer", json={"note": "请说明"}).json()
    assert acted["escalation_due_date"] and acted["legal_due_date"] == "2008-10-29"
    answers = [out.json(), accepted, case, d1, board, acted, api("GET", f"/api/v1/warnings/{warning['id']}", key="officer").json(),
               api("GET", "/api/v1/cases/C1/events").json(), api("GET", "/api/v1/items/GS-001").json(),
               api("GET", "/api/v1/monitor/summary", key="officer").json(),
               api("GET", "/api/v1/anomalies", key="officer").json()]
    seen = [pair for answer in answers for pair in _instants(answer)]
    assert len(seen) > 40
    assert all(INSTANT_TEXT.match(text) for _, text in seen), [p for p in seen if not INSTANT_TEXT.match(p[1])]


def test_a_flag_reads_chinese_first_with_a_readable_lag(api):
    # Recorded 2008-10-20 12:00 for a step of 2008-09-26 09:00: 24 days 3 hours late (hours are
    # left out from ten days on).
    flags = api("POST", "/api/v1/steps", json=submitted("C1")).json()["flags"]
    late = next(f for f in flags if f["code"] == "late_entry")
    assert late["detail"].startswith("录入滞后 24 天，") and late["lag_seconds"] == 24 * 86400 + 3 * 3600
    assert not re.search(r"\d+:\d\d:\d\d", late["detail"])  # no "24 days, 3:00:00"
    api.esup.runner.catch_up()
    anomaly = next(a for a in api("GET", "/api/v1/anomalies", key="officer").json()["anomalies"] if a["rule"] == "late_entry")
    assert anomaly["reason"].startswith("录入滞后 24 天，")


def test_the_cli_names_a_deadlines_last_day():
    from datetime import datetime

    from api.cli import _due
    from domain.calendar import CHINA_TZ

    assert _due(datetime(2008, 10, 30, tzinfo=CHINA_TZ)) == "2008-10-29 24:00"
    assert _due(datetime(2008, 10, 6, 11, 30, tzinfo=CHINA_TZ)) == "2008-10-06 11:30"
    assert _due(None) == "-"

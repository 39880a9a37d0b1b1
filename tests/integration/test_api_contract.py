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


# -- the docs page, offline ------------------------------------------------------------------

import base64  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402


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

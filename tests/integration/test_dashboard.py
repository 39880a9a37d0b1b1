"""The dashboard end to end, in real headless Chromium against a real ``esup serve``: an officer
opens ``/``, enters a key once, a department reports a step and it appears on the board live;
a case crosses its promised deadline while nobody touches it and its card turns from yellow to
red on screen (the warnings scheduler issues the red card).

Chromium is Debian's (/usr/bin/chromium; ``./run test`` installs it when missing, as root),
never a downloaded browser. A screenshot of each run is left in /tmp for a human eye.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import pytest

from domain.calendar import CHINA_TZ
from domain.organisation import UnitKind
from infra.settings import Settings
from services.system import Esup
from tests.integration.browser_support import needs_chromium
from tests.integration.test_crash import free_port, start_server

SCREENSHOT = "/tmp/esup-dashboard-e2e.png"  # the board with the red card
TIMELINE_SHOT = "/tmp/esup-dashboard-e2e-timeline.png"  # the case's timeline, opened from its card
# Every hour of every day is office time here, so a 1-working-hour promise runs out in real time
# whenever the test runs (weekends and nights included).
ALL_DAY = [["00:00", "23:59:59"]]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


def every_day_a_working_day(year: int) -> dict:
    d, weekend = date(year, 1, 1), []
    while d.year == year:
        if d.weekday() >= 5:
            weekend.append(d.isoformat())
        d += timedelta(days=1)
    return {"holidays": [], "workdays": weekend}


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    ref = esup.reference
    today = datetime.now(CHINA_TZ).date()
    for year in sorted({today.year - 1, today.year, today.year + 1}):
        ref.publish_year(year, every_day_a_working_day(year))
    ref.put_unit(UnitKind.CENTER, "GX", {"name": "高新区政务服务中心", "tier": "district",
                                          "office_hours": {"winter": ALL_DAY, "summer": ALL_DAY}})
    ref.put_unit(UnitKind.DEPARTMENT, "GS", {"name": "工商局", "center": "GX"})
    ref.put_item("GS-001", {"name": "企业设立登记", "department": "GS", "kind": "licence",
                            "legal_limit": {"value": 2, "unit": "working_hours"},
                            "promised_limit": {"value": 1, "unit": "working_hours"}})
    keys = {"officer": esup.access.create("officer"), "gs": esup.access.create("department", ["GS"])}
    esup.close()
    port = free_port()
    proc = start_server(data, port)
    yield f"http://127.0.0.1:{port}", keys
    proc.terminate()
    proc.wait(10)


def report(base: str, key: str, body: dict) -> None:
    r = httpx.post(base + "/api/v1/steps", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 201, r.text


def step(case_no: str, name: str, when: datetime, **extra) -> dict:
    return {"event_id": f"{case_no}-{name}", "case_no": case_no, "step": name, "department": "GS",
            "occurred_at": when.isoformat(timespec="seconds"), **extra}


def expect(locator):
    from playwright.sync_api import expect as _expect  # (works under the page's CSP; wait_for_function does not)

    return _expect(locator)


def open_board(browser, base: str, key: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    page.wait_for_selector("#key-dialog[open]")  # asks for the key once ...
    page.fill("#key-input", key)
    page.click("#key-save")
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    assert page.evaluate("localStorage.getItem('esup.monitor.key')") == key  # ... and keeps it
    return page, errors


def test_a_reported_step_appears_on_the_board_live(server, browser):
    base, keys = server
    page, errors = open_board(browser, base, keys["officer"])
    assert page.inner_text("h1") == "电子监察实时监控"
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    report(base, keys["gs"], step("GX2026E2E0001", "submitted", now - timedelta(minutes=2), item_code="GS-001",
                                  data={"applicant": {"name": "张三", "id_number": "510101199001011234"}}))
    row = page.wait_for_selector('#feed li[data-case="GX2026E2E0001"][data-step="submitted"]', timeout=10_000)
    assert "收件" in row.inner_text() and "工商局" in row.inner_text() and "企业设立登记" in row.inner_text()
    # Today's counter follows from the case board.
    expect(page.locator("#kpi-received .value")).to_have_text("1", timeout=15_000)
    # A reload keeps the key: straight to the live board, no question asked.
    page.reload()
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    assert not page.is_visible("#key-dialog")
    assert "张三" not in page.content() and "510101199001011234" not in page.content()
    assert errors == []


def test_a_case_crossing_its_deadline_turns_red_on_screen(server, browser):
    base, keys = server
    page, errors = open_board(browser, base, keys["officer"])
    case_no = "GX2026E2E0002"
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    accepted = now - timedelta(minutes=59, seconds=25)  # the 1-hour promise ends ~35 s from now
    report(base, keys["gs"], step(case_no, "submitted", accepted - timedelta(minutes=1), item_code="GS-001"))
    report(base, keys["gs"], step(case_no, "accepted", accepted))
    page.wait_for_selector(f'#feed li[data-case="{case_no}"][data-step="accepted"]', timeout=10_000)
    # 80% of the promise is long gone: a yellow card at once, while the deadline has not passed yet.
    page.wait_for_selector(f'#warnings li[data-case="{case_no}"][data-level="yellow"]', timeout=20_000)
    assert datetime.now(CHINA_TZ) < accepted + timedelta(hours=1)
    # Nobody does anything; the deadline passes; the card turns red.
    card = page.wait_for_selector(f'#warnings li[data-case="{case_no}"][data-level="red"]', timeout=60_000)
    assert datetime.now(CHINA_TZ) >= accepted + timedelta(hours=1)
    assert "红牌" in card.inner_text() and "已超期" in card.inner_text()
    assert page.inner_text("#kpi-red .value") == "1" and page.inner_text("#kpi-yellow .value") == "0"
    assert page.query_selector(f'#feed li[data-kind="warning"][data-case="{case_no}"]') is not None
    expect(page.locator("#kpi-open .note")).to_contain_text("超承诺期限 1", timeout=10_000)
    page.wait_for_timeout(2500)  # let the highlight animations settle for the picture
    page.screenshot(path=SCREENSHOT, full_page=True)
    # Its timeline, on click.
    page.locator(f'#warnings li[data-case="{case_no}"]').click()  # (the board re-renders: no stale handle)
    page.wait_for_selector('#tl-events li[data-step="accepted"]', timeout=10_000)
    assert page.inner_text("#tl-title") == case_no and "红牌" in page.inner_text("#tl-facts")
    page.screenshot(path=TIMELINE_SHOT)
    assert errors == []


def test_operator_alarms_show_on_the_board(tmp_path, browser):
    """A view stopped by an event it cannot apply, and (from 1 November) next year's calendar
    not yet published, are said on the dashboard, as /healthz says them."""
    from tests.conftest import define_basics
    from tests.integration.test_ledger import submitted
    from tests.integration.test_view_faults import delete_case_rows

    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    define_basics(esup)
    officer = esup.access.create("officer")
    esup.ingest.report([submitted("F1")])
    esup.runner.catch_up()
    delete_case_rows(esup, "F1")
    esup.ingest.report([{**submitted("F1"), "event_id": "F1-again"}])  # the case board cannot take it
    esup.close()
    port = free_port()
    proc = start_server(data, port)
    base = f"http://127.0.0.1:{port}"
    page = None
    try:
        health = httpx.get(base + "/healthz", timeout=10).json()
        assert health["status"] == "degraded"
        page, errors = open_board(browser, base, officer)
        expect(page.locator("#alarms")).to_be_visible(timeout=15_000)
        text = page.inner_text("#alarms")
        assert "case_board" in text and "已停在此处" in text
        if health["calendar"]["status"] != "ok":  # 1 Nov - 31 Dec, or a year the package lacks
            assert "工作日历" in text or str(health["calendar"]["missing_years"][0]) in text
        page.screenshot(path="/tmp/esup-dashboard-alarms.png")
        page.click("#lang")
        expect(page.locator("#alarms")).to_contain_text("has stopped there", timeout=15_000)
        assert errors == []
    finally:
        if page is not None:
            page.close()  # its live stream would hold the server's graceful shutdown
        proc.terminate()
        proc.wait(30)

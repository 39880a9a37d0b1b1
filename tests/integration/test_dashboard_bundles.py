"""The dashboard's parallel-approval and three-tier panels in headless Chromium against a real
``esup serve``: a bundle with a late part is listed late and opens to its parts and their
states; the center switcher shows a street center's figures and its rank in its tier."""

from __future__ import annotations


import pytest

from infra.settings import Settings
from services.system import Esup
from tests.conftest import define_basics
from tests.integration.test_crash import free_port, start_server
from tests.integration.browser_support import needs_chromium
from tests.integration.test_dashboard import expect, open_board
from tests.integration.test_ledger import step, submitted

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


@pytest.fixture
def server(tmp_path):
    from domain.organisation import UnitKind
    from services.ingest import SYSTEM

    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    define_basics(esup)
    ref = esup.reference
    ref.put_unit(UnitKind.CENTER, "D", {"name": "高新区政务服务中心", "tier": "district", "items": ["GS-001", "DS-001"]})
    ref.put_unit(UnitKind.CENTER, "S1", {"name": "芳草街街道社会事务服务中心", "tier": "street", "parent": "D",
                                          "items": ["GS-002"]})
    ref.put_unit(UnitKind.HALL, "S1H", {"name": "芳草街大厅", "center": "S1"})
    ref.put_unit(UnitKind.WINDOW, "S1W", {"name": "芳草街1号窗口", "hall": "S1H", "department": "GS"})
    ref.put_unit(UnitKind.DEPARTMENT, "ZWFW", {"name": "政务服务处", "center": "D"})
    ref.put_channel("QYSL", {"name": "企业设立并联审批", "department": "ZWFW", "items": ["GS-001", "DS-001"],
                             "promised_limit": {"value": 4, "unit": "working_hours"},
                             "legal_limit": {"value": 20, "unit": "working_days"}})
    esup.ingest.report([submitted("P2", when="2008-09-26T09:00:00+08:00", item="DS-001", dept="DS"),
                        step("P2", "accepted", "2008-09-26T09:00:00+08:00", dept="DS")])
    esup.bundles.submit({"event_id": "B1-sub", "bundle_no": "QYSL2008001", "channel": "QYSL", "parts": ["P1", "P2"],
                         "occurred_at": "2008-09-28T15:50:00+08:00"}, SYSTEM)
    esup.bundles.accept("QYSL2008001", {"event_id": "B1-acc", "occurred_at": "2008-09-28T16:00:00+08:00"}, SYSTEM)
    esup.ingest.report([submitted("P1", when="2008-09-28T16:00:00+08:00"),
                        step("P1", "accepted", "2008-09-28T16:05:00+08:00"),
                        step("P1", "concluded", "2008-09-28T16:30:00+08:00", result="issued"),
                        step("P2", "concluded", "2008-09-28T16:50:00+08:00", dept="DS", result="issued"),
                        {**submitted("K1", when="2008-10-06T09:00:00+08:00", item="GS-002"), "window": "S1W"},
                        {**step("K1", "accepted", "2008-10-06T09:05:00+08:00"), "window": "S1W"},
                        {**step("K1", "concluded", "2008-10-06T09:20:00+08:00", result="issued"), "window": "S1W"}])
    officer = esup.access.create("officer")
    esup.close()
    port = free_port()
    proc = start_server(data, port)
    yield f"http://127.0.0.1:{port}", officer
    proc.terminate()
    proc.wait(30)


def test_the_dashboard_shows_a_bundle_with_its_parts_and_switches_center(server, browser):  # noqa: F811
    base, officer = server
    page, errors = open_board(browser, base, officer)
    try:
        row = page.locator('#bundles tr.bundle[data-bundle="QYSL2008001"]')
        expect(row).to_be_visible(timeout=15_000)
        assert row.get_attribute("data-late") == "1"
        assert "企业设立并联审批" in row.inner_text() and "超时" in row.inner_text() and "2/2" in row.inner_text()
        expect(page.locator('#channel-figures .chip[data-channel="QYSL"]')).to_contain_text("企业设立并联审批")
        row.click()
        parts = page.locator('#bundles ul.parts[data-bundle="QYSL2008001"] li')
        expect(parts).to_have_count(2, timeout=5_000)
        p2 = page.locator('#bundles ul.parts li[data-case="P2"]')
        assert "已办结" in p2.inner_text() and "DS-001" in p2.inner_text() and "late" in (p2.get_attribute("class") or "")
        assert page.locator('#bundles ul.parts li[data-case="P1"]').get_attribute("data-status") == "concluded"
        # The three tiers: the totals by tier, then one street center picked in the switcher.
        expect(page.locator('#tier-figures tr[data-tier="street"]')).to_be_visible(timeout=15_000)
        page.select_option("#center-switch", "S1")
        expect(page.locator('#tier-figures tr[data-center="S1"]')).to_contain_text("芳草街街道社会事务服务中心")
        assert "排名 1/1" in page.inner_text("#center-detail")
        assert page.locator('#tier-figures tr[data-center="S1"] td').nth(2).inner_text() == "1"  # its one case
        page.click("#lang")
        expect(page.locator("#bundle-panel h2")).to_contain_text("Parallel approval", timeout=5_000)
        page.screenshot(path="/tmp/esup-dashboard-bundles.png", full_page=True)
        assert errors == []
    finally:
        page.close()

"""The audit page (审计抽查) in real headless Chromium against a real ``esup serve``: an officer
sees the cases drawn for them, opens one's full timeline from the audit panel, records a finding
with a deviation, and the finding then shows in the audit's report."""

from __future__ import annotations


import httpx
import pytest

from domain.clock import ManualClock
from infra.settings import Settings
from services.system import Esup
from tests.conftest import define_basics
from tests.integration.test_audits import PLAN, cases
from tests.integration.test_crash import free_port, start_server
from tests.integration.browser_support import needs_chromium
from tests.integration.test_dashboard import expect, open_board
from tests.unit.test_case import at

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


@pytest.fixture
def audit_server(tmp_path):
    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data), ManualClock(at("2008-11-03 10:00")))
    define_basics(esup)
    cases(esup, 0, 30)
    reviewer = esup.access.create("officer", label="审查人甲")
    other = esup.access.create("officer", label="审查人乙")
    from domain.access import Role
    from services.ingest import Principal

    lead = Principal(Role.OFFICER, frozenset(), "lead")
    a = esup.audits.plan({**PLAN, "sampling": {"n": 3}}, lead)
    esup.audits.draw(a["id"], "2008-11-03 纪工委公告", lead)
    esup.audits.assign(a["id"], [{"id": reviewer.split("_")[1], "name": "甲"}, {"id": other.split("_")[1], "name": "乙",
                                                                               "departments": ["GS", "DS"]}], 1, lead)
    sample = esup.audits.get(a["id"])["draw"]["sample"]
    esup.close()
    port = free_port()
    proc = start_server(data, port)
    yield f"http://127.0.0.1:{port}", reviewer, a["id"], sample
    proc.terminate()
    proc.wait(30)


def test_an_officer_opens_a_drawn_case_from_the_audit_page_and_records_a_finding(audit_server, browser):
    base, key, audit_id, sample = audit_server
    page, errors = open_board(browser, base, key)
    try:
        expect(page.locator("#audit-panel")).to_be_visible(timeout=15_000)
        assert page.inner_text("#audit-heading") == "审计抽查"
        rows = page.locator("#audit-cases tr")
        expect(rows).to_have_count(3, timeout=15_000)  # every drawn case is theirs (the other reviewer recused)
        case_no = sample[0]
        row = page.locator(f'#audit-cases tr[data-case="{case_no}"]')
        assert row.get_attribute("data-recorded") == "0" and "待记录" in row.inner_text()
        # the full timeline, from the audit panel
        row.locator("button.audit-open").click()
        page.wait_for_selector('#tl-events li[data-step="concluded"]', timeout=10_000)
        assert page.inner_text("#tl-title") == case_no
        page.click("#tl-close")
        # the finding: fees deviate, with a note
        row.locator("button.audit-record").click()
        page.wait_for_selector("#finding-dialog[open]")
        assert page.locator("#finding-points .finding-point").count() == 6
        fees = page.locator('#finding-points .finding-point[data-point="fees"]')
        fees.locator("select").select_option("deviation")
        page.click("#finding-submit")  # refused in the page: a deviation needs its note
        expect(page.locator("#finding-error")).to_be_visible()
        fees.locator("input").fill("收费凭证缺失，未按标准开具")
        page.click("#finding-submit")
        expect(page.locator(f'#audit-cases tr[data-case="{case_no}"]')).to_have_attribute("data-recorded", "1",
                                                                                          timeout=10_000)
        assert "已记录" in page.locator(f'#audit-cases tr[data-case="{case_no}"]').inner_text()
        page.screenshot(path="/tmp/esup-dashboard-audit.png", full_page=True)
        # ... and it is in the report
        report = httpx.get(f"{base}/api/v1/audits/{audit_id}/report?format=html",
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert report.status_code == 200 and "收费凭证缺失，未按标准开具" in report.text and case_no in report.text
        page.click("#lang")
        expect(page.locator("#audit-heading")).to_have_text("Random audits", timeout=5_000)
        assert errors == []
    finally:
        page.close()

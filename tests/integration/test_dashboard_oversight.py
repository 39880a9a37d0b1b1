"""The dashboard's complaints (投诉处理) and supervision notices (督察整改) panels in real headless
Chromium against a real ``esup serve``: counts, the latest complaints with their stage and a late
one marked, the notices with their rectification progress and inspection round; Chinese first,
English on the switch; a department key sees only its own."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.access import Role
from domain.calendar import CHINA_TZ
from domain.organisation import UnitKind
from infra.settings import Settings
from services.ingest import Principal
from services.system import Esup
from tests.integration.test_crash import free_port, start_server
from tests.integration.browser_support import needs_chromium
from tests.integration.test_dashboard import expect, open_board

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              needs_chromium]
OFFICER = Principal(Role.OFFICER, key="officer")


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    ref = esup.reference
    for code, name in (("GS", "工商局"), ("DS", "地税局")):
        ref.put_unit(UnitKind.DEPARTMENT, code, {"name": name})
    ref.put_unit(UnitKind.STAFF, "P001", {"name": "黄刚", "department": "GS"})
    o = esup.oversight
    long_ago = (datetime.now(CHINA_TZ) - timedelta(days=20)).isoformat(timespec="seconds")
    o.receive({"complaint_no": "TS-LATE", "channel": "letter", "department": "GS", "staff": "P001",
               "summary": "推诿", "received_at": long_ago, "complainant": {"name": "张三"}}, OFFICER)
    o.receive({"complaint_no": "TS-DONE", "channel": "phone", "department": "GS", "summary": "态度生硬"}, OFFICER)
    for act, body in (("accept", {}), ("assign", {"assignee": "王明"}), ("investigate", {"findings": "属实"}),
                      ("conclude", {"substantiated": True, "action": "批评教育"})):
        o.act_on_complaint("TS-DONE", act, body, OFFICER)
    o.receive({"complaint_no": "TS-DS", "channel": "online", "department": "DS", "summary": "无人接听"}, OFFICER)
    o.issue({"notice_no": "DC-01", "department": "GS", "title": "窗口规范督察意见", "problems": [
        {"source": "complaint", "ref": "TS-DONE", "description": "态度问题"},
        {"source": "audit", "description": "缺签字"}]}, OFFICER)
    o.act_on_problem("DC-01", 1, "report", {"rectification": "已整改"}, Principal(Role.ADMIN))
    o.act_on_problem("DC-01", 1, "verify", {}, OFFICER)
    o.issue({"notice_no": "HC-1-1", "department": "DS", "title": "互查互评", "inspection": {
        "round": "R1", "inspector": "ST01", "inspected": "CM02"},
        "problems": [{"source": "inspection", "description": "公示栏未更新"}]}, OFFICER)
    keys = {"officer": esup.access.create("officer"), "gs": esup.access.create("department", ["GS"])}
    esup.close()
    port = free_port()
    proc = start_server(data, port)
    yield f"http://127.0.0.1:{port}", keys
    proc.terminate()
    proc.wait(10)


def test_the_dashboard_shows_complaints_and_notices(server, browser):  # noqa: F811
    base, keys = server
    page, errors = open_board(browser, base, keys["officer"])
    panel = page.locator("#complaint-panel")
    expect(panel.locator("h2")).to_contain_text("投诉处理")
    expect(panel.locator("#cp-list li")).to_have_count(3)
    late = panel.locator("#cp-list li[data-no=TS-LATE]")
    expect(late).to_have_class("late")
    expect(late).to_contain_text("待受理")
    expect(late).to_contain_text("超期")
    due = (datetime.now(CHINA_TZ) - timedelta(days=20))  # received then: accept by the end of the next working day
    expect(late).to_contain_text("期限 " + due.strftime("%Y-"))
    expect(panel.locator("#cp-list li[data-no=TS-DONE]")).to_contain_text("已办结")
    expect(panel.locator("#cp-counts")).to_contain_text("3收到投诉")
    expect(panel.locator("#cp-counts")).to_contain_text("1属实")
    expect(panel.locator("#cp-counts")).to_contain_text("1超期")
    assert "张三" not in page.content()  # personal data never on the dashboard
    notices = page.locator("#notice-panel")
    expect(notices.locator("h2")).to_contain_text("督察整改")
    expect(notices.locator("#np-list li[data-no=DC-01]")).to_contain_text("整改 1/2")
    expect(notices.locator("#np-list li[data-no=HC-1-1]")).to_contain_text("互查互评 R1")
    expect(notices.locator("#np-counts")).to_contain_text("2督察意见")
    expect(notices.locator("#np-counts")).to_contain_text("1互查互评（轮）")
    page.locator("#complaint-panel").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/esup-dashboard-oversight.png", full_page=True)
    page.click("#lang")
    expect(panel.locator("h2")).to_contain_text("Complaints")
    expect(late).to_contain_text("to accept")
    expect(notices.locator("#np-list li[data-no=DC-01]")).to_contain_text("rectified 1/2")
    assert not errors, errors
    # A department key: its own complaints and notices only, no district-wide counts.
    page2, errors2 = open_board(browser, base, keys["gs"])
    expect(page2.locator("#cp-list li")).to_have_count(2)
    expect(page2.locator("#np-list li")).to_have_count(1)
    expect(page2.locator("#cp-counts")).to_be_empty()
    assert not errors2, errors2

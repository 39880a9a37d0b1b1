"""Complaints (投诉) and supervision notices (督察意见 → 整改) through the HTTP API, on both stores:
each runs its whole lifecycle, refused transitions are problem documents with stable codes,
department keys see only their own, late ones warn (the clock moves, nothing else), and 投诉率
in the metrics counts them. 2008: 29 Sep - 5 Oct off, Sat 27 / Sun 28 Sep worked (调休).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.organisation import UnitKind
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at


@pytest.fixture
def api(district, clock):
    clock.set(at("2008-09-26 10:00"))
    district.reference.put_unit(UnitKind.STAFF, "P001", {"name": "黄刚", "department": "GS"})
    app = create_app(district)
    client = TestClient(app, raise_server_exceptions=False)
    keys = {role: district.access.create(role) for role in ("officer", "admin", "province")}
    keys["gs"] = district.access.create("department", ["GS"])
    keys["ds"] = district.access.create("department", ["DS"])
    headers = {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}
    return district, client, headers


COMPLAINT = {"complaint_no": "TS2008-001", "channel": "phone", "department": "GS", "staff": "P001",
             "case_no": "C1", "summary": "窗口人员态度生硬，推诿",
             "complainant": {"name": "张三", "phone": "13800000000"}}


def test_a_complaint_runs_its_whole_lifecycle(api):
    esup, client, h = api
    r = client.post("/api/v1/complaints", headers=h["officer"], json=COMPLAINT)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["status"], c["stage"], c["due_at"]) == ("received", "accept", "2008-09-28T00:00:00+08:00")
    assert c["complainant"] == {"name": "张三", "phone": "13800000000"}
    assert client.post("/api/v1/complaints", headers=h["officer"], json=COMPLAINT).json()["code"] == "complaint_exists"
    # Sealed in the store: the clear name is nowhere in the ledger's stored event.
    stored = esup.ledger.recorder.select_notifications(start=1, limit=1000)
    assert not any("张三".encode() in n.state or b"13800000000" in n.state for n in stored)
    # Department keys: their own complaint, personal data masked; another department's is unknown.
    gs = client.get("/api/v1/complaints/TS2008-001", headers=h["gs"]).json()
    assert gs["complainant"]["name"] != "张三" and gs["complainant"]["name"].startswith("张")
    assert client.get("/api/v1/complaints/TS2008-001", headers=h["ds"]).json()["code"] == "unknown_complaint"
    assert client.get("/api/v1/complaints", headers=h["ds"]).json() == {"total": 0, "complaints": []}
    assert client.post("/api/v1/complaints/TS2008-001/accept", headers=h["gs"], json={}).json()["code"] == "forbidden_role"
    # Out of order: refused, nothing stored.
    r = client.post("/api/v1/complaints/TS2008-001/conclude", headers=h["officer"], json={"substantiated": False})
    assert (r.status_code, r.json()["code"], r.headers["content-type"]) == (409, "complaint_out_of_order",
                                                                             "application/problem+json")
    esup.clock.set(at("2008-09-27 16:00"))  # Saturday, worked
    r = client.post("/api/v1/complaints/TS2008-001/accept", headers=h["officer"], json={"note": "属于受理范围"})
    assert (r.json()["status"], r.json()["due_at"]) == ("accepted", "2008-09-29T00:00:00+08:00")
    esup.clock.set(at("2008-09-28 10:00"))
    r = client.post("/api/v1/complaints/TS2008-001/assign", headers=h["officer"], json={"assignee": "督查科 王明"})
    assert r.json()["due_at"] == "2008-10-11T00:00:00+08:00"  # 5 working days: 6-10 Oct, after the holiday
    esup.clock.set(at("2008-10-09 15:00"))
    r = client.post("/api/v1/complaints/TS2008-001/investigate", headers=h["officer"], json={"findings": "情况属实"})
    assert r.json()["status"] == "investigated"
    r = client.post("/api/v1/complaints/TS2008-001/conclude", headers=h["officer"], json={"substantiated": True})
    assert (r.status_code, r.json()["code"], r.json()["missing"]) == (422, "missing_field", ["action"])
    r = client.post("/api/v1/complaints/TS2008-001/conclude", headers=h["officer"],
                    json={"substantiated": True, "action": "批评教育，全中心通报"})
    done = r.json()
    assert (done["status"], done["substantiated"], [s["late"] for s in done["stages"]]) == (
        "concluded", True, [False, False, False, False])
    assert [e["act"] for e in done["history"]] == ["Received", "Accepted", "Assigned", "Investigated", "Concluded"]
    r = client.post("/api/v1/complaints/TS2008-001/accept", headers=h["officer"], json={})
    assert (r.status_code, r.json()["code"]) == (409, "complaint_closed")
    assert esup.oversight.check(at("2008-12-31 12:00")) == {"complaints": 0, "problems": 0}  # closed: no warning
    # 投诉率: one complaint against GS; concluded cases of September-October.
    client.post("/api/v1/steps/batch", headers=h["admin"], json=[
        submitted("C1", when="2008-09-26T09:00:00+08:00"), step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
        step("C1", "concluded", "2008-09-26T10:00:00+08:00", result="issued"),
        submitted("C2", when="2008-09-26T09:00:00+08:00"), step("C2", "accepted", "2008-09-26T09:30:00+08:00"),
        step("C2", "concluded", "2008-09-26T10:00:00+08:00", result="issued")])
    esup.runner.catch_up()
    m = client.get("/api/v1/metrics", headers=h["officer"],
                   params={"group_by": "department", "from": "2008-09-01", "to": "2008-10-31"}).json()
    gs_row = next(r for r in m["rows"] if r["key"] == "GS")
    assert (gs_row["complaints"], gs_row["complaints_substantiated"], gs_row["complaint_rate"]) == (1, 1, 50.0)
    staff = client.get("/api/v1/metrics", headers=h["officer"],
                       params={"group_by": "staff", "from": "2008-09-01", "to": "2008-10-31"}).json()
    assert next(r for r in staff["rows"] if r["key"] == "P001")["complaints"] == 1
    assert m["total"]["complaints"] == 1


def test_a_late_complaint_warns_once_per_stage(api):
    esup, client, h = api
    client.post("/api/v1/complaints", headers=h["officer"], json={**COMPLAINT, "complaint_no": "TS2008-002",
                                                                   "channel": "letter",
                                                                   "received_at": "2008-09-25T16:00:00+08:00"})
    r = client.post("/api/v1/complaints", headers=h["officer"], json={**COMPLAINT, "complaint_no": "TS2008-003"})
    assert r.json()["due_at"] == "2008-09-28T00:00:00+08:00"
    assert client.get("/api/v1/complaints?late=true", headers=h["officer"]).json()["total"] == 0
    esup.clock.set(at("2008-09-27 09:00"))  # TS2008-002 (due the end of 26 Sep) is late; -003 is not
    late = client.get("/api/v1/complaints?late=true", headers=h["officer"]).json()
    assert [c["complaint_no"] for c in late["complaints"]] == ["TS2008-002"] and late["complaints"][0]["late"]
    assert esup.oversight.check() == {"complaints": 1, "problems": 0}
    assert esup.oversight.check() == {"complaints": 0, "problems": 0}  # once
    c = client.get("/api/v1/complaints/TS2008-002", headers=h["gs"]).json()
    assert c["stages"][0]["warned_at"] == "2008-09-27T09:00:00+08:00"
    assert c["history"][-1]["act"] == "Warned" and c["history"][-1]["stage"] == "accept"
    client.post("/api/v1/complaints/TS2008-002/accept", headers=h["officer"], json={})
    esup.clock.set(at("2008-10-06 09:00"))  # after the holiday: -002's assignment (end of 28 Sep) and -003's acceptance
    assert esup.oversight.check() == {"complaints": 2, "problems": 0}
    board = client.get("/api/v1/complaints", headers=h["officer"]).json()["complaints"]
    assert {c["complaint_no"]: (c["stage"], c["warnings"], c["late_stages"]) for c in board} == {
        "TS2008-002": ("assign", 2, 1), "TS2008-003": ("accept", 1, 0)}
    r = client.post("/api/v1/complaints/TS2008-003/refuse", headers=h["officer"], json={"reason": "不属受理范围"})
    assert r.json()["status"] == "not_accepted"
    assert client.get("/api/v1/oversight/summary?year=2008", headers=h["officer"]).json()["complaints"][
        "warned"] == 2


@pytest.mark.parametrize("body,code", [
    ({**COMPLAINT, "channel": "fax"}, "invalid_field"),
    ({**COMPLAINT, "department": "XX"}, "unknown_department"),
    ({**COMPLAINT, "staff": "P999"}, "unknown_staff"),
    ({**COMPLAINT, "colour": "red"}, "unknown_field"),
    ({k: v for k, v in COMPLAINT.items() if k != "summary"}, "missing_field"),
    ({**COMPLAINT, "complainant": {"name": 3}}, "invalid_field"),
    ({**COMPLAINT, "received_at": "2009-01-01T00:00:00+08:00"}, "future_timestamp"),
])
def test_bad_complaints_are_refused_and_nothing_is_stored(api, body, code):
    esup, client, h = api
    before = esup.ledger.recorder.max_notification_id()
    r = client.post("/api/v1/complaints", headers=h["officer"], json=body)
    assert (r.status_code, r.json()["code"]) == (422, code)
    assert esup.ledger.recorder.max_notification_id() == before


NOTICE = {"notice_no": "DC2008-01", "department": "GS", "title": "窗口服务规范督察意见", "problems": [
    {"source": "audit", "ref": "C1", "description": "受理单缺经办人签字", "within": {"value": 5, "unit": "working_days"}},
    {"source": "complaint", "ref": "TS2008-001", "description": "窗口人员态度生硬", "due_date": "2008-10-10"},
]}


def test_a_notice_runs_its_whole_lifecycle_and_overdue_rectification_warns(api):
    esup, client, h = api
    esup.clock.set(at("2008-09-25 10:00"))
    assert client.post("/api/v1/notices", headers=h["admin"], json=NOTICE).json()["code"] == "forbidden_role"
    r = client.post("/api/v1/notices", headers=h["officer"], json=NOTICE)
    assert r.status_code == 201, r.text
    n = r.json()
    assert [p["due_at"] for p in n["problems"]] == ["2008-10-08T00:00:00+08:00", "2008-10-11T00:00:00+08:00"]
    assert client.post("/api/v1/notices", headers=h["officer"], json=NOTICE).json()["code"] == "notice_exists"
    assert client.get("/api/v1/notices/DC2008-01", headers=h["ds"]).json()["code"] == "unknown_notice"
    r = client.post("/api/v1/notices/DC2008-01/problems/1/report", headers=h["ds"], json={"rectification": "x"})
    assert r.json()["code"] == "unknown_notice"  # DS cannot even learn it exists
    r = client.post("/api/v1/notices/DC2008-01/problems/1/verify", headers=h["officer"], json={})
    assert (r.status_code, r.json()["code"]) == (409, "problem_not_reported")
    r = client.post("/api/v1/notices/DC2008-01/problems/3/report", headers=h["gs"], json={"rectification": "x"})
    assert (r.status_code, r.json()["code"]) == (404, "unknown_problem")
    esup.clock.set(at("2008-09-27 10:00"))
    r = client.post("/api/v1/notices/DC2008-01/problems/1/report", headers=h["gs"], json={"rectification": "已补签"})
    assert r.json()["problems"][0]["status"] == "reported"
    r = client.post("/api/v1/notices/DC2008-01/problems/1/report", headers=h["gs"], json={"rectification": "已补签"})
    assert (r.status_code, r.json()["code"]) == (409, "problem_already_reported")
    r = client.post("/api/v1/notices/DC2008-01/problems/1/send-back", headers=h["officer"], json={"reason": "未附培训记录"})
    assert (r.json()["problems"][0]["status"], r.json()["problems"][0]["returns"]) == ("open", 1)
    # Problem 1's deadline (end of 7 Oct) passes with nothing reported again: it warns, once.
    esup.clock.set(at("2008-10-08 09:00"))
    board = client.get("/api/v1/notices", headers=h["gs"]).json()
    assert board["notices"][0]["late_problems"] == 1 and board["notices"][0]["problem_list"][0]["late"]
    assert esup.oversight.check() == {"complaints": 0, "problems": 1}
    assert esup.oversight.check() == {"complaints": 0, "problems": 0}
    assert client.get("/api/v1/notices/DC2008-01", headers=h["gs"]).json()["problems"][0]["warnings"] == [
        "2008-10-08T00:00:00+08:00"]
    for no in (1, 2):
        client.post(f"/api/v1/notices/DC2008-01/problems/{no}/report", headers=h["gs"], json={"rectification": "已整改"})
        r = client.post(f"/api/v1/notices/DC2008-01/problems/{no}/verify", headers=h["officer"], json={"note": "到位"})
    n = r.json()
    assert (n["status"], n["closed_at"]) == ("closed", "2008-10-08T09:00:00+08:00")
    assert [p["reported_late"] for p in n["problems"]] == [True, False]
    r = client.post("/api/v1/notices/DC2008-01/problems/2/send-back", headers=h["officer"], json={"reason": "x"})
    assert (r.status_code, r.json()["code"]) == (409, "problem_closed")
    # A mutual inspection round (互查互评) is a notice with its round.
    client.post("/api/v1/notices", headers=h["officer"], json={
        "notice_no": "HC2008-1-01", "department": "DS", "title": "第一轮互查互评", "inspection": {
            "round": "2008-1", "inspector": "ST01", "inspected": "CDGX"},
        "problems": [{"source": "inspection", "description": "公示栏信息未更新"}]})
    s = client.get("/api/v1/oversight/summary?year=2008", headers=h["officer"]).json()["notices"]
    assert (s["notices"], s["closed_notices"], s["problems"], s["rectified"], s["inspection_rounds"], s["warned"]) == (
        2, 1, 3, 2, 1, 1)
    assert client.get("/api/v1/notices?round=2008-1", headers=h["officer"]).json()["total"] == 1
    assert client.get("/api/v1/oversight/summary", headers=h["gs"]).json()["code"] == "forbidden_role"


def test_the_boards_survive_a_rebuild(api):
    esup, client, h = api
    client.post("/api/v1/complaints", headers=h["officer"], json=COMPLAINT)
    client.post("/api/v1/notices", headers=h["officer"], json=NOTICE)
    esup.clock.set(at("2008-10-20 10:00"))
    esup.oversight.check()
    before = (client.get("/api/v1/complaints", headers=h["officer"]).json(),
              client.get("/api/v1/notices", headers=h["officer"]).json())
    esup.runner.rebuild(["complaints", "notices"])
    after = (client.get("/api/v1/complaints", headers=h["officer"]).json(),
             client.get("/api/v1/notices", headers=h["officer"]).json())
    assert before == after and before[0]["complaints"][0]["warnings"] == 1

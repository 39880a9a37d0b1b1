"""The annual staff assessment (年终考核) on both stores, through the HTTP API: figures computed from
events (cases handled, on time, overdue, cards and how they were answered, anomalies attributed,
substantiated complaints, satisfaction), each traceable to its event; the ranking equals a full
recomputation from the log, survives a rebuild, and exports as xlsx."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.assessment import AssessmentPolicy
from domain.organisation import UnitKind
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at


def iso(text: str) -> str:
    return at(text).isoformat()


def s(case_no: str, name: str, when: str, staff: str, **data) -> dict:
    return {**step(case_no, name, iso(when), **data), "staff": staff}


@pytest.fixture
def year(district, clock):
    esup = district
    for code, name in (("P001", "黄刚"), ("P002", "周竹"), ("P003", "叶唐"), ("P004", "陈雪梅")):
        esup.reference.put_unit(UnitKind.STAFF, code, {"name": name, "department": "GS", "staff_kind": "self_hired"})
    app = create_app(esup)
    client = TestClient(app, raise_server_exceptions=False)
    h = {r: {"Authorization": f"Bearer {esup.access.create(r)}"} for r in ("officer", "admin")}
    h["gs"] = {"Authorization": f"Bearer {esup.access.create('department', ['GS'])}"}

    def report(when: str, *steps: dict) -> None:
        clock.set(at(when))
        r = client.post("/api/v1/steps/batch", headers=h["admin"], json=list(steps))
        assert r.status_code in (200, 201), r.text

    # C1: P001, on time, rated 非常满意.
    report("2008-09-24 09:10", {**submitted("C1", when=iso("2008-09-24 09:00")), "staff": "P001"},
           s("C1", "accepted", "2008-09-24 09:05", "P001"))
    report("2008-09-25 10:05", s("C1", "concluded", "2008-09-25 10:00", "P001", result="issued"),
           s("C1", "rated", "2008-09-25 10:02", "P001", score=1))
    # C2: P001, nobody concludes it in time: yellow and red cards, then overdue.
    report("2008-09-24 09:10", {**submitted("C2", when=iso("2008-09-24 09:00")), "staff": "P001"},
           s("C2", "accepted", "2008-09-24 09:05", "P001"))
    clock.set(at("2008-10-08 09:00"))
    cards = esup.warnings.check()
    # The department answers the yellow card (纠错说明); the officer escalates the red one (督办).
    yellow = next(w for w in cards if w.level == "yellow")
    red = next(w for w in cards if w.level == "red")
    assert client.post(f"/api/v1/warnings/{yellow.id}/answer", headers=h["gs"],
                       json={"explanation": "材料待补"}).status_code == 200
    assert client.post(f"/api/v1/warnings/{red.id}/escalate", headers=h["officer"],
                       json={"note": "限期办结"}).status_code == 200
    report("2008-10-10 15:05", s("C2", "concluded", "2008-10-10 15:00", "P001", result="issued"))
    # C3: received by P002, accepted (so handled) by P003, every step keyed in a week late
    # (体外循环: late_entry on each step, attributed to who reported it), rated 不满意.
    report("2008-10-20 10:00", {**submitted("C3", when=iso("2008-10-13 09:00")), "staff": "P002"},
           s("C3", "accepted", "2008-10-13 09:10", "P003"), s("C3", "concluded", "2008-10-13 11:00", "P003", result="issued"),
           s("C3", "rated", "2008-10-13 11:05", "P003", score=4))
    # A substantiated complaint against P002, one not substantiated against P003.
    for no, staff, substantiated in (("TS1", "P002", True), ("TS2", "P003", False)):
        clock.set(at("2008-10-21 09:00"))
        client.post("/api/v1/complaints", headers=h["officer"], json={
            "complaint_no": no, "channel": "online", "department": "GS", "staff": staff, "summary": "推诿"})
        for act, body in (("accept", {}), ("assign", {"assignee": "王明"}), ("investigate", {"findings": "核实"}),
                          ("conclude", {"substantiated": substantiated, "action": "批评教育"})):
            assert client.post(f"/api/v1/complaints/{no}/{act}", headers=h["officer"], json=body).status_code == 200
    # C9: 2009, not in 2008's assessment.
    report("2009-01-05 09:10", {**submitted("C9", when=iso("2009-01-05 09:00")), "staff": "P004"},
           s("C9", "accepted", "2009-01-05 09:05", "P004"), s("C9", "concluded", "2009-01-05 09:08", "P004", result="issued"))
    esup.assessment.policy = AssessmentPolicy(excellent_count=1)
    return esup, client, h, {"yellow": str(yellow.id), "red": str(red.id)}


def by_staff(result: dict) -> dict[str, dict]:
    return {r["staff"]: r for r in result["staff"]}


def test_the_figures_come_from_the_events_and_trace_back_to_them(year):
    esup, client, h, cards = year
    r = client.get("/api/v1/assessment/2008", headers=h["officer"])
    assert r.status_code == 200, r.text
    result = r.json()
    rows = by_staff(result)
    pick = ("handled", "on_time", "overdue", "card_yellow", "card_red", "card_answered", "card_escalated",
            "card_unanswered", "anomaly", "rated", "satisfied", "dissatisfied", "complaint_substantiated")
    # Anomalies: every flag on a step (calendar_provisional aside) counts for who reported the step.
    flagged: dict[str, list[tuple[str, str]]] = {}
    for case_no in ("C1", "C2", "C3"):
        for e in client.get(f"/api/v1/cases/{case_no}/events", headers=h["officer"]).json()["events"]:
            for flag in e["flags"]:
                if flag["code"] != "calendar_provisional":
                    flagged.setdefault(e["actor"]["staff"], []).append((e["event_id"], flag["code"]))
    assert ("C3-sub", "late_entry") in flagged["P002"] and ("C1-concluded", "skipped_step") in flagged["P001"]
    assert {k: rows["P001"][k] for k in pick} == {
        "handled": 2, "on_time": 1, "overdue": 1, "card_yellow": 1, "card_red": 1, "card_answered": 1,
        "card_escalated": 1, "card_unanswered": 1, "anomaly": len(flagged["P001"]), "rated": 1, "satisfied": 1, "dissatisfied": 0,
        "complaint_substantiated": 0}
    assert {k: rows["P002"][k] for k in ("handled", "anomaly", "complaint_substantiated")} == {
        "handled": 0, "anomaly": 1, "complaint_substantiated": 1}  # the late submitted step; TS1
    assert {k: rows["P003"][k] for k in ("handled", "on_time", "anomaly", "rated", "satisfied", "dissatisfied",
                                         "complaint_substantiated")} == {
        "handled": 1, "on_time": 1, "anomaly": len(flagged["P003"]), "rated": 1, "satisfied": 0, "dissatisfied": 1,
        "complaint_substantiated": 0}  # accepted, concluded and rated keyed in late; TS2 not substantiated
    assert rows["P004"]["handled"] == 0  # C9 is 2009's
    # The score (defaults): P001 100 + 0.02 - 5 - 1 - 3 - 2 - 1 - anomalies + 0.5 x (100 - 95).
    assert rows["P001"]["score"] == round(90.52 - len(flagged["P001"]), 2)
    assert rows["P003"]["score"] == round(100 + 0.01 - len(flagged["P003"]) + 0.5 * (0 - 95), 2)
    # Ranked; 优秀 quota 1: P004 (100, nothing against them) is ranked first and is the one 优秀;
    # P002 (100 - 1 anomaly - 10 for the complaint) before P001; P003's 不满意 rating sinks it.
    assert rows["P002"]["score"] == 89.0
    assert [r["staff"] for r in result["staff"]] == ["P004", "P002", "P001", "P003"]
    assert [r["grade"] for r in result["staff"]] == ["优秀", "称职", "称职", "不称职"]
    assert result["distribution"] == {"优秀": 1, "称职": 2, "基本称职": 0, "不称职": 1}
    # Each count traces to its events: the case numbers, source event ids, log positions.
    facts = client.get("/api/v1/assessment/2008/facts", headers=h["officer"], params={"staff": "P001"}).json()["facts"]
    assert sorted((f["kind"], f["case_no"], f["event_ref"]) for f in facts if f["kind"] in ("handled", "overdue")) == [
        ("handled", "C1", "C1-concluded"), ("handled", "C2", "C2-concluded"), ("overdue", "C2", "C2-concluded")]
    assert {f["event_ref"] for f in facts if f["kind"].startswith("card_")} == {cards["yellow"], cards["red"]}
    anomalies = client.get("/api/v1/assessment/2008/facts", headers=h["officer"],
                           params={"kind": "anomaly"}).json()["facts"]
    assert sorted((f["staff"], f["event_ref"]) for f in anomalies) == sorted(
        (staff, event_id) for staff, found in flagged.items() for event_id, _ in found)
    for f in anomalies:  # the log position names the event that carries the flag
        n = esup.ledger.recorder.select_notifications(start=f["position"], limit=1)[0]
        assert esup.ledger.mapper.to_domain_event(n).source_event_id == f["event_ref"]
    assert client.get("/api/v1/assessment/2008", headers=h["gs"]).json()["code"] == "forbidden_role"


def test_the_assessment_equals_a_full_recomputation_from_the_log_and_survives_a_rebuild(year):
    esup, client, h, cards = year
    served = client.get("/api/v1/assessment/2008", headers=h["officer"]).json()
    recomputed = esup.assessment.recompute(2008)
    assert served == {**recomputed, "policy": served["policy"]} and served["policy"] == recomputed["policy"]
    assert by_staff(esup.assessment.recompute(2009))["P004"]["handled"] == 1
    assert esup.assessment.recompute(2009) == {**esup.assessment.result(2009), "policy": recomputed["policy"]}
    esup.runner.rebuild(["assessment"])
    assert client.get("/api/v1/assessment/2008", headers=h["officer"]).json() == served
    # A withdrawn card counts for nothing, in the view as in the recomputation.
    from uuid import UUID

    w = esup.ledger.repository.get(UUID(cards["yellow"]))
    assert w.withdraw("a step keyed in later stopped the clock first", {"step": "concluded"}, at("2008-10-21 10:00"))
    esup.ledger.save(w)
    after = by_staff(client.get("/api/v1/assessment/2008", headers=h["officer"]).json())["P001"]
    assert (after["card_yellow"], after["card_answered"]) == (0, 0)
    assert by_staff(esup.assessment.recompute(2008))["P001"] == after


def test_the_workbook_for_the_assessment_group(year):
    from openpyxl import load_workbook

    esup, client, h, _ = year
    r = client.get("/api/v1/assessment/2008?format=xlsx", headers=h["officer"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["考核结果", "事实明细", "计分规则"]
    ranking = list(wb["考核结果"].iter_rows(values_only=True))
    header = ranking[2]
    assert header[:3] == ("排名", "工号", "姓名") and header[-2:] == ("效能得分", "建议等次")
    assert [(row[1], row[2], row[-1]) for row in ranking[3:]] == [
        ("P004", "陈雪梅", "优秀"), ("P002", "周竹", "称职"), ("P001", "黄刚", "称职"), ("P003", "叶唐", "不称职")]
    facts = list(wb["事实明细"].iter_rows(values_only=True))[1:]
    assert ("P001", "overdue", "超时件", "C2", "C2-concluded") in [row[:5] for row in facts]
    assert len(facts) == len(client.get("/api/v1/assessment/2008/facts", headers=h["officer"]).json()["facts"])


def test_the_demo_year_on_both_stores_115_staff_24_excellent_and_the_recomputation_agrees(esup, clock):
    from services.demo import ingest_demo
    from services.demo_oversight import oversight_2008

    ingest_demo(esup, clock, 300)  # as `esup demo` records it: steps arrive minutes after they happen
    did = oversight_2008(esup, cases=300)
    s = esup.oversight.summary(2008)
    assert (s["notices"]["notices"], s["notices"]["rectified"], s["notices"]["inspection_rounds"]) == (20, 54, 4)
    assert (s["complaints"]["received"], s["complaints"]["substantiated"]) == (36, 9)
    assert did["warned"] == {"complaints": 3, "problems": 2}  # the late ones the demo plans, warned once each
    result = esup.assessment.result(2008)
    assert (result["assessed"], result["quota"]) == (115, 24)
    assert result["distribution"] == {"优秀": 24, "称职": 91, "基本称职": 0, "不称职": 0}
    assert esup.assessment.recompute(2008) == result
    # The substantiated complaints weigh on their staff: none of them is 优秀.
    against = {f["staff"] for f in esup.assessment.facts(2008, kind="complaint_substantiated")}
    assert len(against) == 9 and not any(r["grade"] == "优秀" for r in result["staff"] if r["staff"] in against)

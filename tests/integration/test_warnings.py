"""Warnings (预警纠错) on real stores (SQLite file and PostgreSQL), driven by a manual clock.

Nothing but the clock moves in most of these: a case where nothing happens must still turn
yellow and red on time. 2008: National Day off 29 Sep - 5 Oct, Sat 27 / Sun 28 Sep worked;
summer office hours to 30 Sep end at 17:30, winter ones at 17:00.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.access import Role
from domain.warning import CaseWarning, warning_id
from projections.warnings import from_us
from services.ingest import SYSTEM, Principal
from services.system import Esup
from services.warning_scheduler import WarningScheduler
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

OFFICER = Principal(Role.OFFICER, key="officer-1")
GS = Principal(Role.DEPARTMENT, frozenset({"GS"}), key="gs-1")
DS = Principal(Role.DEPARTMENT, frozenset({"DS"}), key="ds-1")


def iso(text: str) -> str:
    return at(text).isoformat()


def report(esup: Esup, when: str, *steps: dict) -> None:
    """Steps keyed in at ``when`` (the clock moves there first)."""
    esup.clock.set(at(when))  # type: ignore[attr-defined]
    esup.ingest.report(list(steps))


def accept(esup: Esup, case_no: str, when: str, item: str = "GS-001", dept: str = "GS") -> None:
    report(esup, when, submitted(case_no, when=iso(when), item=item, dept=dept), step(case_no, "accepted", iso(when), dept=dept))


def check(esup: Esup, when: str) -> list[tuple[str, str, str]]:
    """Move the clock to ``when`` and let the scheduler look: (case, level, threshold) issued."""
    esup.clock.set(at(when))  # type: ignore[attr-defined]
    return [(w.case_no, w.level, w.threshold_at.astimezone(at(when).tzinfo).strftime("%Y-%m-%d %H:%M"))
            for w in esup.warnings.check()]


def pending(esup: Esup, case_no: str) -> dict[str, str]:
    """The case's pending thresholds, once the projection has followed the log."""
    esup.runner.catch_up()
    with esup.views.transaction() as cur:
        rows = cur.execute("SELECT rule, due_at FROM warning_thresholds WHERE case_no = ?", (case_no,)).fetchall()
    return {rule: from_us(due).strftime("%Y-%m-%d %H:%M") for rule, due in rows}


class TestWarningsFireOnTime:
    def test_a_case_where_nothing_happens_turns_yellow_then_red_then_severe_across_the_holiday(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        assert check(district, "2008-09-28 17:29") == []
        assert check(district, "2008-09-28 17:30") == [("C1", "yellow", "2008-09-28 17:30")]  # a worked Sunday
        assert check(district, "2008-10-06 23:59") == []  # nothing fires in the holiday
        assert check(district, "2008-10-07 00:00") == [("C1", "red", "2008-10-07 00:00")]
        assert check(district, "2008-10-28 00:00") == [("C1", "severe", "2008-10-28 00:00")]
        assert check(district, "2008-12-31 00:00") == []  # once each
        assert pending(district, "C1") == {}

    def test_a_late_check_issues_everything_due_at_once_with_the_true_threshold(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        assert check(district, "2008-10-08 09:00") == [("C1", "yellow", "2008-09-28 17:30"), ("C1", "red", "2008-10-07 00:00")]
        yellow = district.ledger.repository.get(warning_id("C1", "yellow"))
        assert yellow.issued_at == at("2008-10-08 09:00")

    def test_working_hours_count_office_time_only(self, district):
        # DS-001 promises 4 working hours; accepted Sun 28 Sep 16:00 (a worked Sunday, to 17:30).
        accept(district, "H1", "2008-09-28 16:00", item="DS-001", dept="DS")
        assert pending(district, "H1") == {"yellow": "2008-10-06 10:42", "red": "2008-10-06 11:30", "severe": "2008-11-01 00:00"}
        assert check(district, "2008-10-06 10:41") == []
        assert check(district, "2008-10-06 10:42") == [("H1", "yellow", "2008-10-06 10:42")]
        assert check(district, "2008-10-06 11:30") == [("H1", "red", "2008-10-06 11:30")]

    def test_a_suspended_case_does_not_warn_and_resumption_moves_the_thresholds(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        report(district, "2008-09-27 10:00", step("C1", "suspended", iso("2008-09-27 10:00"), procedure="inspection"))
        assert pending(district, "C1") == {}
        assert check(district, "2008-09-28 17:30") == []
        assert check(district, "2008-10-07 00:00") == []  # the old red instant: the clock is stopped
        # Resumed Tue 7 Oct: 28 Sep, 6 and 7 Oct were not counted; due moves to the end of 9 Oct.
        report(district, "2008-10-07 09:00", step("C1", "resumed", iso("2008-10-07 09:00")))
        assert pending(district, "C1") == {"yellow": "2008-10-08 17:00", "red": "2008-10-10 00:00", "severe": "2008-10-31 00:00"}
        assert check(district, "2008-10-08 16:59") == []
        assert check(district, "2008-10-08 17:00") == [("C1", "yellow", "2008-10-08 17:00")]
        assert check(district, "2008-10-10 00:00") == [("C1", "red", "2008-10-10 00:00")]

    def test_an_extension_moves_the_thresholds(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        report(district, "2008-09-26 10:00", step("C1", "extended", iso("2008-09-26 10:00"), value=10, unit="working_days"))
        assert check(district, "2008-09-28 17:30") == []
        # 15 working days promised: due end of 20 Oct; 3 days left from close of office on 15 Oct.
        assert check(district, "2008-10-15 17:00") == [("C1", "yellow", "2008-10-15 17:00")]
        assert check(district, "2008-10-21 00:00") == [("C1", "red", "2008-10-21 00:00")]

    def test_conclusion_clears_pending_thresholds(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        accept(district, "C2", "2008-09-24 09:00")
        assert set(pending(district, "C1")) == {"yellow", "red", "severe"}
        report(district, "2008-09-26 15:00", step("C1", "concluded", iso("2008-09-26 15:00"), result="issued"))
        district.runner.catch_up()
        assert pending(district, "C1") == {}
        assert [c for c, _, _ in check(district, "2008-12-31 00:00")] == ["C2", "C2", "C2"]

    def test_a_threshold_waits_while_the_projection_is_behind_the_case(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        district.runner.catch_up()
        # A scheduler not tied to the runner sees a concluded case through an old projection.
        bare = WarningScheduler(district.ledger, district.views, district.clock)
        report(district, "2008-09-26 15:00", step("C1", "concluded", iso("2008-09-26 15:00"), result="issued"))
        assert bare.check(at("2008-10-08 00:00")) == [] and bare.waiting == 2
        district.runner.catch_up()
        assert bare.check(at("2008-10-08 00:00")) == [] and bare.waiting == 0

    def test_a_case_stepped_after_the_projections_position_waits_for_it(self, district, monkeypatch):
        accept(district, "C1", "2008-09-24 09:00")
        accept(district, "C2", "2008-09-24 09:00")
        district.runner.catch_up()
        report(district, "2008-09-26 15:00", step("C1", "concluded", iso("2008-09-26 15:00"), result="issued"))
        follow = district.runner.catch_up
        monkeypatch.setattr(district.runner, "catch_up", lambda names=None, progress=None: 0)  # the projection lags
        assert [w.case_no for w in district.warnings.check(at("2008-10-08 00:00"))] == ["C2", "C2"]
        assert district.warnings.scheduler.waiting == 2
        monkeypatch.setattr(district.runner, "catch_up", follow)
        assert district.warnings.check(at("2008-10-08 00:00")) == [] and district.warnings.scheduler.waiting == 0

    def test_checking_again_and_rebuilding_never_issue_twice(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        assert len(check(district, "2008-10-07 00:00")) == 2
        district.runner.rebuild()
        assert pending(district, "C1") == {"severe": "2008-10-28 00:00"}
        assert check(district, "2008-10-07 00:01") == []
        # Even a scheduler that finds a stale threshold row cannot issue the same warning twice.
        with district.views.transaction() as cur:
            cur.execute("UPDATE warning_thresholds SET rule = 'red', level = 'red' WHERE case_no = 'C1'")
        assert check(district, "2008-10-07 00:02") == []
        events = [n for n in district.ledger.recorder.select_notifications(start=1, limit=1000)
                  if n.topic == CaseWarning.Issued.TOPIC]
        assert len(events) == 2


class TestPolicy:
    def test_the_environment_sets_the_default(self, store_settings, clock, monkeypatch):
        monkeypatch.setenv("ESUP_WARNING_POLICY", '{"yellow": {"share": 0.9}}')
        from tests.conftest import define_basics

        system = Esup.open(store_settings, clock)
        try:
            define_basics(system)
            accept(system, "C1", "2008-09-24 09:00")
            assert pending(system, "C1")["yellow"] == "2008-10-06 13:30"
        finally:
            system.close()

    def test_an_item_override_replans_open_cases_at_once(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        out = district.warnings.put_policy("item", "GS-001", {"yellow": {"before": 2}, "severe": False})
        assert out["replanned_cases"] == 1
        assert pending(district, "C1") == {"yellow": "2008-09-27 17:30", "red": "2008-10-07 00:00"}
        assert district.warnings.effective_policy(None, "GS-001")["policy"]["yellow"] == {"before": 2}

    def test_a_step_overrunning_its_limit_warns_yellow(self, district):
        district.warnings.put_policy("item", "GS-001", {"steps": {"undertaken": {"value": 1, "unit": "working_days"}}})
        accept(district, "C1", "2008-09-24 09:00")
        assert check(district, "2008-09-26 00:00") == [("C1", "yellow", "2008-09-26 00:00")]
        w = district.ledger.repository.get(warning_id("C1", "step:undertaken"))
        assert w.rule == "step:undertaken" and "undertaken within 1 working_days" in w.basis


class TestTheBoard:
    def test_the_lifecycle_is_recorded_and_the_board_shows_it_now_and_as_it_stood(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        accept(district, "H1", "2008-09-28 16:00", item="DS-001", dept="DS")
        check(district, "2008-09-28 17:30")
        yellow = str(warning_id("C1", "yellow"))
        district.clock.set(at("2008-09-29 10:00"))
        district.warnings.answer(yellow, "申请人补充材料中", GS)
        district.clock.set(at("2008-09-30 10:00"))
        escalated = district.warnings.escalate(yellow, OFFICER, note="请于期限内办结")
        assert escalated["escalation_due_at"] == at("2008-10-09 00:00")  # 3 working days: 6, 7, 8 Oct
        check(district, "2008-10-07 00:00")  # C1 red; H1 yellow and red were due on 6 Oct
        district.clock.set(at("2008-10-08 10:00"))
        district.warnings.close(yellow, OFFICER, note="已办结")

        now = district.warnings.board(SYSTEM)
        assert [(w["case_no"], w["level"], w["status"]) for w in now] == [
            ("H1", "yellow", "issued"), ("H1", "red", "issued"), ("C1", "red", "issued")]
        assert set(now[0]) >= {"id", "case_no", "department", "item_code", "level", "status", "threshold_at",
                               "issued_at", "promised_due_at", "legal_due_at"}
        everything = district.warnings.board(SYSTEM, status="all", level="yellow")
        assert [(w["case_no"], w["status"]) for w in everything] == [("C1", "closed"), ("H1", "issued")]

        def then(when: str, **kw):
            return [(w["case_no"], w["level"], w["status"]) for w in district.warnings.board(SYSTEM, as_of=at(when), **kw)]

        assert then("2008-09-28 17:29") == []
        assert then("2008-09-28 17:30") == [("C1", "yellow", "issued")]
        assert then("2008-09-29 12:00") == [("C1", "yellow", "answered")]
        assert then("2008-10-07 00:00") == [("C1", "yellow", "escalated"), ("H1", "yellow", "issued"),
                                            ("H1", "red", "issued"), ("C1", "red", "issued")]
        assert then("2008-10-08 10:00") == [("H1", "yellow", "issued"), ("H1", "red", "issued"), ("C1", "red", "issued")]
        past = district.warnings.board(SYSTEM, as_of=at("2008-09-29 12:00"))[0]
        assert past["explanation"] == "申请人补充材料中" and past["escalated_at"] is None

        history = district.warnings.get(yellow, OFFICER)["history"]
        assert [h["act"] for h in history] == ["issued", "answered", "escalated", "closed"]
        assert history[1]["by"] == {"role": "department", "key": "gs-1"}

    def test_department_keys_see_only_their_departments(self, district):
        accept(district, "C1", "2008-09-24 09:00")
        accept(district, "H1", "2008-09-28 16:00", item="DS-001", dept="DS")
        check(district, "2008-10-07 00:00")
        assert {w["department"] for w in district.warnings.board(GS)} == {"GS"}
        assert {w["department"] for w in district.warnings.board(DS)} == {"DS"}
        assert {w["department"] for w in district.warnings.board(OFFICER)} == {"GS", "DS"}
        with pytest.raises(Exception) as exc:
            district.warnings.board(GS, department="DS")
        assert getattr(exc.value, "code", None) == "forbidden_department"
        with pytest.raises(Exception) as exc:
            district.warnings.answer(str(warning_id("H1", "red")), "不是我的", GS)
        assert getattr(exc.value, "code", None) == "unknown_warning"


class TestHttp:
    @pytest.fixture
    def api(self, district):
        client = TestClient(create_app(district), raise_server_exceptions=False)
        keys = {role: district.access.create(role) for role in ("admin", "officer", "province")}
        keys["gs"] = district.access.create("department", ["GS"])
        keys["ds"] = district.access.create("department", ["DS"])

        def call(method, path, key="officer", **kw):
            return client.request(method, path, headers={"Authorization": f"Bearer {keys[key]}"}, **kw)

        return call

    def test_board_answer_escalate_close_over_http(self, district, api):
        accept(district, "C1", "2008-09-24 09:00")
        check(district, "2008-10-07 00:00")
        board = api("GET", "/api/v1/warnings", params={"level": "yellow"}).json()["warnings"]
        assert len(board) == 1
        w = board[0]
        assert w["threshold_at"] == "2008-09-28T17:30:00+08:00" and w["status"] == "issued"
        assert w["promised_due_at"] == "2008-10-07T00:00:00+08:00" and w["legal_due_at"] == "2008-10-28T00:00:00+08:00"
        assert w["issued_at"] == "2008-10-07T00:00:00+08:00" and w["department"] == "GS" and w["item_code"] == "GS-001"
        path = f"/api/v1/warnings/{w['id']}"

        assert api("POST", f"{path}/answer", key="officer", json={"explanation": "x"}).json()["code"] == "forbidden_role"
        assert api("POST", f"{path}/answer", key="ds", json={"explanation": "x"}).status_code == 404
        assert api("POST", f"{path}/answer", key="gs", json={}).json()["code"] == "missing_field"
        district.clock.set(at("2008-10-07 09:00"))
        r = api("POST", f"{path}/answer", key="gs", json={"explanation": "专家评审意见未返回"})
        assert r.status_code == 200 and r.json()["status"] == "answered"
        assert api("GET", "/api/v1/warnings", key="gs").json()["warnings"][0]["status"] == "answered"
        assert api("GET", "/api/v1/warnings", key="ds").json()["warnings"] == []
        assert api("POST", f"{path}/escalate", key="gs", json={}).json()["code"] == "forbidden_role"
        district.clock.set(at("2008-10-07 10:00"))
        r = api("POST", f"{path}/escalate", json={"within": {"value": 1, "unit": "working_days"}, "note": "督办"})
        assert r.json()["escalation_due_at"] == "2008-10-09T00:00:00+08:00"
        district.clock.set(at("2008-10-07 11:00"))
        assert api("POST", f"{path}/close", json={"note": "已纠正"}).json()["status"] == "closed"
        r = api("POST", f"{path}/answer", key="gs", json={"explanation": "again"})
        assert r.status_code == 409 and r.json()["code"] == "warning_closed"
        past = api("GET", "/api/v1/warnings", params={"as_of": "2008-10-07T09:00:00+08:00", "level": "yellow"}).json()
        assert past["warnings"][0]["status"] == "answered"
        assert api("GET", "/api/v1/warnings", params={"level": "orange"}).json()["code"] == "invalid_query"
        assert api("GET", "/api/v1/warnings", params={"as_of": "2008-10-07"}).json()["code"] == "naive_timestamp"
        assert [h["act"] for h in api("GET", path).json()["history"]] == ["issued", "answered", "escalated", "closed"]

    def test_policy_over_http(self, district, api):
        r = api("PUT", "/api/v1/warning-policies/items/GS-001", key="admin", json={"yellow": {"share": 0.9}})
        assert r.status_code == 201 and r.json()["override"] == {"yellow": {"share": 0.9}}
        assert api("PUT", "/api/v1/warning-policies/items/GS-001", key="officer", json={}).json()["code"] == "forbidden_role"
        assert api("PUT", "/api/v1/warning-policies/items/NOPE", key="admin", json={}).json()["code"] == "unknown_item"
        assert api("PUT", "/api/v1/warning-policies/items/GS-001", key="admin", json={"red": 1}).json()["code"] == "invalid_policy"
        got = api("GET", "/api/v1/warning-policy", params={"item": "GS-001"}).json()
        assert got["policy"]["yellow"] == {"share": 0.9} and got["default"]["yellow"] == {"share": 0.8}


def test_the_serving_scheduler_wakes_at_the_threshold(district):
    """With a real thread: a clock that runs (from 2008-09-28 17:29:59.8) and no events at all."""
    import threading
    import time
    from datetime import datetime

    accept(district, "C1", "2008-09-24 09:00")
    district.runner.catch_up()
    base, start = at("2008-09-28 17:29:59.800"), time.monotonic()

    class Running:
        def now(self) -> datetime:
            return base + timedelta(seconds=time.monotonic() - start)

    scheduler = WarningScheduler(district.ledger, district.views, Running(), district.runner)
    issued = threading.Event()
    district.runner.listeners.append(lambda view, pos: view == "warning_board" and issued.set())
    scheduler.start()
    try:
        assert issued.wait(10)
    finally:
        scheduler.stop()
    w = district.ledger.repository.get(warning_id("C1", "yellow"))
    delay = (w.issued_at - w.threshold_at).total_seconds()
    assert 0 <= delay < 5, delay

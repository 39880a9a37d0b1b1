"""Anomalies (异常) with evidence: each rule as a specification, on SQLite and PostgreSQL.

Time passes on a ManualClock: a step's recording instant is the clock when it is reported.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from projections.anomalies import TYPES, AnomalyPolicy, AnomalyView, sweep_now
from services.anomalies import AnomalyFilter, list_anomalies
from tests.unit.test_case import at


def sub(case_no="C1", when="2008-09-26T09:00:00+08:00", item="GS-001", dept="GS", staff="P1", **data):
    body = {"event_id": f"{case_no}-sub", "case_no": case_no, "step": "submitted", "occurred_at": when,
            "department": dept, "item_code": item, "staff": staff}
    if data:
        body["data"] = data
    return body


def st(case_no, name, when, n="", dept="GS", staff="P1", **data):
    body = {"event_id": f"{case_no}-{name}{n}", "case_no": case_no, "step": name, "occurred_at": when,
            "department": dept}
    if staff:
        body["staff"] = staff
    if data:
        body["data"] = data
    return body


@pytest.fixture
def sup(district, clock):

    def report(recorded: str, *steps):
        clock.set(at(recorded))
        district.ingest.report(list(steps))

    report.esup = district  # type: ignore[attr-defined]
    report.clock = clock  # type: ignore[attr-defined]
    return report


def found(esup, case_no=None, **filters) -> dict[str, dict]:
    esup.runner.catch_up()
    rows = list_anomalies(esup, AnomalyFilter(case_no=case_no, limit=1000, **filters))["anomalies"]
    out = {}
    for r in rows:
        assert (r["case_no"], r["rule"]) not in {(o["case_no"], o["rule"]) for o in out.values()}
        out[r["rule"] if case_no else f"{r['case_no']}:{r['rule']}"] = r
    return out


def versions(anomaly) -> list[int]:
    return [e["version"] for e in anomaly["evidence"]]


# -- 时效: accepted or refused within 5 working days of receipt ----------------------------------

# Received Fri 26 Sep 2008. Working days after it: Sat 27 and Sun 28 Sep (调休, worked), then
# National Day 29 Sep - 5 Oct off, Mon 6, Tue 7, Wed 8 Oct: the fifth. Due: end of 8 Oct.
DUE_5WD = "2008-10-09T00:00:00+08:00"


def test_accepted_on_the_fifth_working_day_across_national_day_is_in_time(sup):
    sup("2008-10-08 16:01", sub(), st("C1", "accepted", "2008-10-08T16:00:00+08:00"))
    assert "acceptance_overdue" not in found(sup.esup, "C1")


def test_accepted_after_the_fifth_working_day_is_an_anomaly_with_its_evidence(sup):
    sup("2008-09-26 09:01", sub())
    sup("2008-10-09 09:01", st("C1", "accepted", "2008-10-09T09:00:00+08:00"))
    a = found(sup.esup, "C1")["acceptance_overdue"]
    assert a["type"] == "time" and a["type_label"] == "时效" and a["status"] == "open"
    assert a["occurred_at"] == DUE_5WD and a["details"]["due_at"] == DUE_5WD
    assert [(e["version"], e["step"], e["source_event_id"]) for e in a["evidence"]] == [
        (1, "submitted", "C1-sub"), (2, "accepted", "C1-accepted")]
    assert a["evidence"][0]["occurred_at"] == "2008-09-26T09:00:00+08:00"
    assert datetime.fromisoformat(a["evidence"][1]["recorded_at"]) == at("2008-10-09 09:01")


def test_nothing_happening_still_raises_it_when_the_sweep_passes_the_due_instant(sup):
    sup("2008-09-26 09:01", sub())
    assert sweep_now(sup.esup, at("2008-10-08 23:59")) == 0
    assert found(sup.esup, "C1") == {}
    assert sweep_now(sup.esup, at("2008-10-09 00:00") + timedelta(seconds=1)) == 1
    a = found(sup.esup, "C1")["acceptance_overdue"]
    assert a["detected_by"] == "sweep" and versions(a) == [1]
    assert a["detected_at"] == "2008-10-09T00:00:01+08:00"
    # Idempotent: a second sweep (or one racing it) raises nothing twice.
    assert sweep_now(sup.esup, at("2008-10-10 00:00")) == 0
    assert len(found(sup.esup)) == 1


def test_the_log_itself_is_a_clock_a_later_step_of_any_case_shows_the_time_passed(sup):
    sup("2008-09-26 09:01", sub("C1"))
    sup("2008-10-09 10:00", sub("C2", when="2008-10-09T09:59:00+08:00"))
    a = found(sup.esup, "C1")["acceptance_overdue"]
    assert a["detected_by"] == "sweep" and a["detected_at"] == "2008-10-09T10:00:00+08:00"


def test_a_sweep_anomaly_is_cleared_when_a_step_keyed_in_late_shows_it_happened_in_time(sup):
    sup("2008-09-26 09:01", sub())
    sweep_now(sup.esup, at("2008-10-10 09:00"))
    sup("2008-10-10 10:00", st("C1", "accepted", "2008-10-07T11:00:00+08:00"))
    anomalies = found(sup.esup, "C1")
    a = anomalies["acceptance_overdue"]
    assert a["status"] == "cleared" and a["details"]["cleared"]["by_version"] == 2
    assert [(e["version"], e.get("role")) for e in a["evidence"]] == [(1, "received"), (2, "settled_in_time")]
    assert anomalies["late_entry"]["status"] == "open"  # what really happened: keyed in three days late
    assert found(sup.esup, "C1", status="open").keys() == {"late_entry"}


def test_a_supplement_notice_in_time_stops_the_clock_and_the_supplement_restarts_it(sup):
    sup("2008-09-26 09:11", sub(), st("C1", "supplement_requested", "2008-09-26T09:10:00+08:00", reason="材料不全"))
    sweep_now(sup.esup, at("2008-10-20 09:00"))
    assert "acceptance_overdue" not in found(sup.esup, "C1")
    sup("2008-10-20 09:01", st("C1", "supplement_received", "2008-10-20T09:00:00+08:00"))
    # Mon 20 Oct + 5 working days: end of Mon 27 Oct.
    assert sweep_now(sup.esup, at("2008-10-27 23:00")) == 0
    assert sweep_now(sup.esup, at("2008-10-28 00:01")) == 1
    a = found(sup.esup, "C1")["acceptance_overdue"]
    assert a["details"]["due_at"] == "2008-10-28T00:00:00+08:00" and versions(a) == [3]


def test_a_refusal_in_time_settles_it_and_a_refusal_without_reason_is_a_content_anomaly(sup):
    sup("2008-09-27 09:01", sub(when="2008-09-27T08:30:00+08:00"), st("C1", "refused", "2008-09-27T09:00:00+08:00"),
        sub("C2", when="2008-09-27T08:30:00+08:00"), st("C2", "refused", "2008-09-27T09:00:00+08:00", reason="不属于本机关职权范围"))
    sweep_now(sup.esup, at("2008-11-01 00:00"))
    a = found(sup.esup)
    assert set(a) == {"C1:no_reason"}
    assert a["C1:no_reason"]["type"] == "content" and versions(a["C1:no_reason"]) == [2]


# -- 时效: an on-the-spot item concluded the day it was accepted ---------------------------------

def test_an_on_the_spot_item_concluded_the_next_day_is_an_anomaly(sup):
    sup("2008-09-26 10:01", sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T10:00:00+08:00"))
    sup("2008-09-27 09:31", st("S1", "concluded", "2008-09-27T09:30:00+08:00", result="issued"))
    a = found(sup.esup, "S1")["on_the_spot_overdue"]
    assert a["type"] == "time" and a["occurred_at"] == "2008-09-27T00:00:00+08:00"
    assert [(e["step"], e.get("role")) for e in a["evidence"]] == [("accepted", "accepted"), ("concluded", "after_due")]
    # The step that showed it and the conclusion that finally came are both in the evidence.
    sup("2008-09-27 09:40", sub("S3", item="GS-002"), st("S3", "accepted", "2008-09-26T10:00:00+08:00"),
        st("S3", "undertaken", "2008-09-27T09:00:00+08:00"),
        st("S3", "concluded", "2008-09-27T09:30:00+08:00", result="issued"))
    a = found(sup.esup, "S3")["on_the_spot_overdue"]
    assert [(e["step"], e.get("role")) for e in a["evidence"]] == [
        ("accepted", "accepted"), ("undertaken", "after_due"), ("concluded", "settled_late")]


def test_an_approved_extension_is_part_of_the_evidence_and_the_late_conclusion_too(sup):
    sup("2008-09-26 10:21", sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T10:00:00+08:00"),
        st("S1", "extended", "2008-09-26T10:20:00+08:00", value=1, unit="working_days", reason="需现场核查"))
    assert sweep_now(sup.esup, at("2008-09-27 00:00:01")) == 1
    a = found(sup.esup, "S1")["on_the_spot_overdue"]
    assert "extension" in a["reason"] and [e.get("role") for e in a["evidence"]] == ["accepted", "extended"]
    sup("2008-09-27 10:01", st("S1", "concluded", "2008-09-27T10:00:00+08:00", result="issued"))
    a = found(sup.esup, "S1")["on_the_spot_overdue"]
    assert a["status"] == "open" and [e.get("role") for e in a["evidence"]] == ["accepted", "extended", "after_due"]


def test_an_on_the_spot_item_left_open_is_raised_at_midnight_and_same_day_ones_are_not(sup):
    sup("2008-09-26 10:21", sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T10:00:00+08:00"),
        sub("S2", item="GS-002"), st("S2", "accepted", "2008-09-26T10:00:00+08:00"),
        st("S2", "concluded", "2008-09-26T10:20:00+08:00", result="issued"))
    assert sweep_now(sup.esup, at("2008-09-26 23:59")) == 0
    assert sweep_now(sup.esup, at("2008-09-27 00:00") + timedelta(seconds=1)) == 1
    assert set(found(sup.esup)) == {"S1:on_the_spot_overdue"}


# -- 流程 procedure, 内容 content, 裁量 discretion: the domain's flags with their evidence ------------

def test_skipped_out_of_order_and_backwards_steps(sup):
    sup("2008-09-26 12:00", sub(), st("C1", "concluded", "2008-09-26T11:00:00+08:00", result="issued"))
    sup("2008-09-26 12:01", sub("C2"), st("C2", "accepted", "2008-09-26T10:00:00+08:00"),
        st("C2", "reviewed", "2008-09-26T11:00:00+08:00"),
        st("C2", "undertaken", "2008-09-26T10:30:00+08:00"))
    c1, c2 = found(sup.esup, "C1"), found(sup.esup, "C2")
    assert c1["skipped_step"]["type"] == "procedure" and versions(c1["skipped_step"]) == [2, 2]
    assert {e["missing"] for e in c1["skipped_step"]["evidence"]} == {"accepted", "decided"}
    assert versions(c2["skipped_step"]) == [3]  # reviewed without undertaking
    assert versions(c2["out_of_order"]) == [4]
    back = c2["time_backwards"]
    # The evidence names both steps: the one keyed with the earlier time and the one before it.
    assert [(e["version"], e.get("role")) for e in back["evidence"]] == [(4, None), (3, "previous")]
    assert back["evidence"][0]["previous_occurred_at"] == back["evidence"][1]["occurred_at"]


def test_fees_above_the_standard_or_on_a_free_item(sup):
    sup("2008-09-26 12:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00"),
        st("C1", "fee_charged", "2008-09-26T09:20:00+08:00", amount="80"),
        sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T09:10:00+08:00"),
        st("S1", "fee_charged", "2008-09-26T09:20:00+08:00", amount="10"))
    a = found(sup.esup)
    assert a["C1:fee_above_standard"]["type"] == "discretion" and a["C1:fee_above_standard"]["type_label"] == "裁量"
    assert a["C1:fee_above_standard"]["evidence"][0]["standard"] == "50.00"
    assert a["S1:fee_on_free_item"]["type"] == "discretion"


def test_a_deciding_step_that_names_no_staff_member(sup):
    sup("2008-09-26 12:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00", staff=None))
    a = found(sup.esup, "C1")["missing_actor"]
    assert a["type"] == "content" and versions(a) == [2]


# -- 风险防控 risk: 体外循环 and special procedures ----------------------------------------------------

def test_a_step_keyed_in_long_after_it_happened(sup):
    sup("2008-09-26 09:01", sub())
    sup("2008-09-29 15:00", st("C1", "accepted", "2008-09-26T09:30:00+08:00"))
    a = found(sup.esup, "C1")["late_entry"]
    assert a["type"] == "risk" and versions(a) == [2] and a["evidence"][0]["lag_seconds"] > 3 * 86400 - 7200


def test_many_steps_keyed_in_together_though_they_span_days(sup):
    # Three steps in a minute spanning days: not yet; the fourth makes it 体外循环.
    sup("2008-10-10 09:00", sub(when="2008-10-06T09:00:00+08:00"), st("C1", "accepted", "2008-10-06T09:30:00+08:00"),
        st("C1", "undertaken", "2008-10-08T10:00:00+08:00"))
    assert "bulk_entry" not in found(sup.esup, "C1")
    sup("2008-10-10 09:00:50", st("C1", "reviewed", "2008-10-09T15:00:00+08:00"))
    a = found(sup.esup, "C1")["bulk_entry"]
    assert a["type"] == "risk" and versions(a) == [1, 2, 3, 4]
    # Steps of a day keyed in together are normal batching, not an anomaly.
    sup("2008-10-06 18:00", sub("C2", when="2008-10-06T09:00:00+08:00"), st("C2", "accepted", "2008-10-06T09:30:00+08:00"),
        st("C2", "undertaken", "2008-10-06T10:00:00+08:00"), st("C2", "reviewed", "2008-10-06T15:00:00+08:00"))
    assert "bulk_entry" not in found(sup.esup, "C2")


def test_steps_a_minute_apart_are_not_keyed_in_together(sup):
    sup("2008-10-10 09:00", sub(when="2008-10-06T09:00:00+08:00"))
    sup("2008-10-10 09:00:40", st("C1", "accepted", "2008-10-06T09:30:00+08:00"))
    sup("2008-10-10 09:01:20", st("C1", "undertaken", "2008-10-08T10:00:00+08:00"))
    sup("2008-10-10 09:02:00", st("C1", "reviewed", "2008-10-09T15:00:00+08:00"))
    assert "bulk_entry" not in found(sup.esup, "C1")


def test_frequent_and_long_special_procedures(sup):
    steps = [sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00")]
    for n, (start, end) in enumerate([("2008-10-06", "2008-10-07"), ("2008-10-08", "2008-10-09"), ("2008-10-10", None)]):
        steps.append(st("C1", "suspended", f"{start}T10:00:00+08:00", n=n, procedure="inspection"))
        if end:
            steps.append(st("C1", "resumed", f"{end}T10:00:00+08:00", n=n))
    sup("2008-10-10 10:01", *steps)
    a = found(sup.esup, "C1")
    assert a["suspension_frequent"]["type"] == "risk"
    assert [e["step"] for e in a["suspension_frequent"]["evidence"]] == ["suspended"] * 3
    assert "suspension_long" not in a
    assert sweep_now(sup.esup, at("2008-11-09 10:01")) == 1  # 30 days after the third started
    long = found(sup.esup, "C1")["suspension_long"]
    assert long["type"] == "risk" and versions(long) == [7]


def test_a_long_special_procedure_shown_by_its_resumption(sup):
    sup("2008-09-26 10:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00"),
        st("C1", "suspended", "2008-09-26T09:20:00+08:00", procedure="expert_review"))
    sup("2008-11-20 10:00", st("C1", "resumed", "2008-11-20T09:00:00+08:00"))
    long = found(sup.esup, "C1")["suspension_long"]
    assert [(e["step"], e.get("role")) for e in long["evidence"]] == [("suspended", "suspended"), ("resumed", "after_due")]
    # The legal limit's clock stood still meanwhile: the resumption moved it, nothing passed.
    assert "legal_limit_exceeded" not in found(sup.esup, "C1")


# -- 督办 escalation: the legal limit passed --------------------------------------------------------

def test_the_legal_limit_passing_with_nothing_done_is_escalated(sup):
    sup("2008-09-26 10:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00"))
    legal_due = sup.esup.cases.current("C1").legal_due_at
    assert sweep_now(sup.esup, legal_due - timedelta(seconds=1)) == 0
    assert sweep_now(sup.esup, legal_due + timedelta(seconds=1)) == 1
    a = found(sup.esup, "C1")["legal_limit_exceeded"]
    assert a["type"] == "escalation" and a["type_label"] == "督办" and a["occurred_at"] == legal_due.isoformat()


def test_concluded_past_the_promise_and_the_legal_limit(sup):
    sup("2008-09-26 10:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00"))
    sup("2008-12-01 10:00", st("C1", "concluded", "2008-12-01T09:00:00+08:00", result="issued"))
    a = found(sup.esup, "C1")
    assert a["concluded_past_promise"]["type"] == "time" and versions(a["concluded_past_promise"]) == [3]
    assert a["legal_limit_exceeded"]["type"] == "escalation"


# -- the view as a whole ---------------------------------------------------------------------------

def test_every_rule_has_a_type_of_the_taxonomy_and_rebuild_finds_the_same(sup):
    from projections.anomalies import RULES

    assert {r.type for r in RULES.values()} == set(TYPES)
    sup("2008-09-26 10:01", sub("C1"), sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T10:00:00+08:00"))
    sup("2008-10-10 10:00", st("C1", "accepted", "2008-10-07T11:00:00+08:00"),
        st("S1", "fee_charged", "2008-09-27T09:00:00+08:00", amount="5"))
    before = found(sup.esup)
    assert {"C1:acceptance_overdue", "C1:late_entry", "S1:on_the_spot_overdue", "S1:fee_on_free_item"} <= set(before)
    sup.esup.runner.rebuild([AnomalyView.name])
    assert found(sup.esup) == before


def test_policy_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ESUP_BULK_STEPS", "6")
    monkeypatch.setenv("ESUP_SUSPENSION_LONG_DAYS", "10")
    from infra.settings import anomaly_policy

    p = anomaly_policy()
    assert p.bulk_min_steps == 6 and p.suspension_long == timedelta(days=10) and p.accept_within_working_days == 5


def test_anomalies_are_placed_in_the_log_for_the_live_monitor(sup):
    sup("2008-09-26 12:00", sub(), st("C1", "accepted", "2008-09-26T09:10:00+08:00"),
        st("C1", "fee_charged", "2008-09-26T09:20:00+08:00", amount="80"))
    esup = sup.esup
    esup.runner.catch_up()
    view = esup.runner.view(AnomalyView.name)
    head = esup.runner.head()
    with esup.views.transaction() as cur:
        rows = view.monitor_rows(cur, 0, head)
        fee = [r for r in rows if r["rule"] == "fee_above_standard"]
        # The position is the fee step's own place in the log.
        fee_step = [n.id for n in esup.ledger.recorder.select_notifications(start=0, limit=100)
                    if n.topic == "esup.case:Case.FeeCharged"]
        assert len(fee) == 1 and fee[0]["position"] == fee_step[0] and fee[0]["department"] == "GS"
        assert fee[0]["type"] == "discretion" and fee[0]["anomaly_id"] == "C1:fee_above_standard"
        assert all(r["rule"] != "fee_above_standard" for r in view.monitor_rows(cur, fee_step[0], head))


def test_a_wall_clock_sweep_places_its_anomalies_just_after_what_the_view_had_read(sup):
    sup("2008-09-26 09:01", sub())
    esup = sup.esup
    esup.runner.catch_up()
    read = esup.runner.position(AnomalyView.name)
    sweep_now(esup, at("2008-10-10 00:00"))
    view = esup.runner.view(AnomalyView.name)
    with esup.views.transaction() as cur:
        assert view.monitor_rows(cur, 0, read) == []
        rows = view.monitor_rows(cur, read, read + 1)
    assert [(r["rule"], r["position"]) for r in rows] == [("acceptance_overdue", read + 1)]

"""The ledger on real stores (SQLite file and PostgreSQL): the same specifications on both."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from domain.case import Case, verify_chain
from domain.clock import ManualClock
from services.demo import build_district, case_steps
from services.ingest import BatchRefused, IngestService
from services.system import Esup

from tests.unit.test_case import at


def submitted(case_no="C1", event_id=None, when="2008-09-26T09:00:00+08:00", item="GS-001", dept="GS", **data):
    body = {"event_id": event_id or f"{case_no}-sub", "case_no": case_no, "step": "submitted", "occurred_at": when,
            "department": dept, "item_code": item}
    if data:
        body["data"] = data
    return body


def step(case_no, name, when, event_id=None, dept="GS", **data):
    body = {"event_id": event_id or f"{case_no}-{name}", "case_no": case_no, "step": name, "occurred_at": when,
            "department": dept}
    if data:
        body["data"] = data
    return body


def case_events(esup: Esup) -> int:
    """How many case events the ledger holds (refusal records are not case events)."""
    n, start = 0, 0
    while True:
        batch = esup.ledger.recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False)
        if not batch:
            return n
        n += sum(1 for x in batch if x.topic.startswith("esup.case:"))
        start = batch[-1].id


@pytest.fixture
def later(clock: ManualClock):
    clock.set(at("2008-10-20 12:00"))
    return clock


def test_a_case_moves_through_its_steps_and_keeps_its_deadlines(district, later):
    outcomes = district.ingest.report([
        submitted(applicant={"name": "张三", "id_number": "510101198001011234"}),
        step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
        step("C1", "suspended", "2008-09-27T10:00:00+08:00", procedure="inspection"),
        step("C1", "resumed", "2008-10-07T09:00:00+08:00"),
        step("C1", "concluded", "2008-10-10T15:00:00+08:00", result="issued"),
    ])
    assert [o.status for o in outcomes] == ["created"] * 5
    case = district.cases.current("C1")
    assert case.version == 5 and case.status == "concluded" and case.on_time is True
    # Accepted Fri 26 Sep: due end of 8 Oct; suspended 27 Sep - 7 Oct: 28 Sep, 6 and 7 Oct are
    # working days not counted, so the promise moves 3 working days to the end of 13 Oct.
    assert case.promised_due_at == at("2008-10-14 00:00")
    # Personal data is sealed at rest: the stored event does not contain the name.
    raw = district.ledger.recorder.select_events(case.id)[0].state
    assert "张三".encode() not in raw and "510101198001011234".encode() not in raw
    assert district.sealer.open(case.applicant)["name"] == "张三"


def test_a_repeated_source_event_id_returns_the_original_outcome_and_stores_nothing(district, later):
    first = district.ingest.report([submitted(), step("C1", "accepted", "2008-09-26T09:30:00+08:00")])
    before = district.ledger.recorder.max_notification_id()
    later.advance(timedelta(hours=1))
    again = district.ingest.report([step("C1", "accepted", "2008-09-26T09:30:00+08:00"), submitted()])
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert again[0].as_dict() | {"status": "created"} == first[1].as_dict()
    assert again[1].event.hash == first[0].event.hash
    assert district.ledger.recorder.max_notification_id() == before


def test_a_batch_is_all_or_nothing(district, later):
    with pytest.raises(BatchRefused) as exc:
        district.ingest.report([
            submitted("C1"), step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
            submitted("C2", item="NOPE"), step("C3", "accepted", "2008-09-26T09:30:00+08:00"),
        ])
    assert [(e.index, e.error.code) for e in exc.value.errors] == [(2, "unknown_item"), (3, "unknown_case")]
    assert case_events(district) == 0
    # The refusals themselves are recorded and counted per source.
    assert district.ingest.refusal_counts() == {"GS": {"unknown_item": 1, "unknown_case": 1}}


def test_the_same_event_id_on_another_case_is_refused(district, later):
    district.ingest.report([submitted("C1", event_id="E1")])
    with pytest.raises(BatchRefused) as exc:
        district.ingest.report([submitted("C2", event_id="E1")])
    assert exc.value.errors[0].error.code == "event_id_reused"
    assert case_events(district) == 1


def test_the_case_as_of_any_moment_by_recording_and_by_business_time(district, clock):
    clock.set(at("2008-09-26 09:10"))
    district.ingest.report([submitted()])
    clock.set(at("2008-10-08 10:00"))  # keyed in twelve days late
    district.ingest.report([step("C1", "accepted", "2008-09-26T09:30:00+08:00")])
    known_then = district.cases.as_of("C1", at("2008-10-01 00:00"), "recorded")
    happened_by_then = district.cases.as_of("C1", at("2008-10-01 00:00"), "occurred")
    assert known_then.status == "submitted" and known_then.version == 1
    assert happened_by_then.status == "accepted"
    assert district.cases.current("C1").flags[0]["code"] == "late_entry"


def test_a_new_years_schedule_published_at_run_time_is_used(district, clock):
    clock.set(at("2026-12-28 10:00"))
    district.reference.put_item("GS-009", {"name": "年末事项", "department": "GS", "kind": "licence",
                                           "legal_limit": {"value": 20, "unit": "working_days"},
                                           "promised_limit": {"value": 5, "unit": "working_days"}})
    district.ingest.report([submitted("N1", when="2026-12-28T09:00:00+08:00", item="GS-009")])
    district.reference.publish_year(2027, {"holidays": ["2027-01-01"], "workdays": []})
    district.ingest.report([step("N1", "accepted", "2026-12-28T09:30:00+08:00")])
    # 29, 30, 31 Dec, (1 Jan holiday), 4, 5 Jan 2027: the 5th working day is 5 Jan.
    case = district.cases.current("N1")
    assert case.promised_due_at == at("2027-01-06 00:00") and case.provisional_years == ()


def test_item_revisions_do_not_rewrite_history(district, clock):
    clock.set(at("2008-09-26 09:10"))
    district.ingest.report([submitted("C1"), step("C1", "accepted", "2008-09-26T09:05:00+08:00")])
    clock.set(at("2008-09-26 12:00"))
    district.reference.put_item("GS-001", {"name": "企业设立登记", "department": "GS", "kind": "licence",
                                           "legal_limit": {"value": 20, "unit": "working_days"},
                                           "promised_limit": {"value": 3, "unit": "working_days"}, "fee": 50})
    clock.set(at("2008-09-26 14:00"))
    district.ingest.report([submitted("C2", when="2008-09-26T13:00:00+08:00"),
                            step("C2", "accepted", "2008-09-26T13:10:00+08:00")])
    old, new = district.cases.current("C1"), district.cases.current("C2")
    assert (old.terms.version, old.terms.promised_limit.value) == (1, 5)
    assert (new.terms.version, new.terms.promised_limit.value) == (2, 3)


class Recording(IngestService):
    """Keeps the in-memory aggregates the command path produced, to compare with replay."""

    def __init__(self, inner: IngestService):
        self.__dict__.update(inner.__dict__)
        self.live: dict[str, Case] = {}

    def _apply(self, reports, principal):
        work = super()._apply(reports, principal)
        self.live.update({k: v for k, v in work.cases.items() if v is not None})
        return work


def run_demo(esup: Esup, clock: ManualClock, cases: int) -> Recording:
    rng = random.Random(7)
    clock.set(at("2008-01-01 08:00"))
    build_district(esup, rng)
    esup.ingest = recording = Recording(esup.ingest)
    steps = list(case_steps(esup, cases, rng))
    for i in range(0, len(steps), 1000):
        chunk = steps[i:i + 1000]
        clock.set(chunk[-1][0])
        recording.report([b for _, b in chunk])
    return recording


def assert_rebuilt_identical(esup: Esup, recording: Recording) -> int:
    events = 0
    for case_no, live in recording.live.items():
        stored = esup.cases.events(case_no)
        events += len(stored)
        assert verify_chain(case_no, stored) is None
        rebuilt = esup.cases.current(case_no)
        assert rebuilt.summary() == live.summary()
        assert rebuilt.applicant == live.applicant
    return events


def test_demo_cases_rebuild_identically_and_every_chain_verifies(esup, clock, store_settings):
    recording = run_demo(esup, clock, 600)
    events = assert_rebuilt_identical(esup, recording)
    assert events == case_events(esup) > 3000
    # A fresh process over the same store sees the same (nothing lived only in memory).
    reopened = Esup.open(store_settings, clock)
    try:
        assert reopened.cases.current("CDGX20080000001").summary() == recording.live["CDGX20080000001"].summary()
    finally:
        reopened.close()


@pytest.mark.slow
def test_100k_demo_events_rebuild_identically_on_sqlite(tmp_path, clock):
    from infra.settings import Settings

    esup = Esup.open(Settings(data_dir=tmp_path / "big"), clock)
    recording = run_demo(esup, clock, 18_800)  # about 5.3 steps and 10.6 events a case
    events = assert_rebuilt_identical(esup, recording)
    assert events >= 100_000
    esup.close()


def test_working_hours_follow_the_centers_own_office_hours(district, clock):
    from domain.organisation import UnitKind

    ref = district.reference
    clock.set(at("2008-03-03 08:00"))
    ref.put_unit(UnitKind.CENTER, "JD1", {"name": "街道社会事务服务中心", "tier": "street",
                                          "office_hours": {"winter": [["08:30", "12:00"], ["14:00", "18:00"]],
                                                           "summer": [["08:30", "12:00"], ["14:30", "18:30"]]}})
    ref.put_unit(UnitKind.HALL, "JD1H", {"name": "大厅", "center": "JD1"})
    ref.put_unit(UnitKind.WINDOW, "JD1W1", {"name": "1号窗口", "hall": "JD1H", "department": "DS"})
    clock.set(at("2008-03-03 18:00"))
    district.ingest.report([
        submitted("H1", item="DS-001", dept="DS", when="2008-03-03T10:00:00+08:00") | {"window": "JD1W1"},
        step("H1", "accepted", "2008-03-03T10:00:00+08:00", dept="DS"),
        submitted("H2", item="DS-001", dept="DS", when="2008-03-03T10:00:00+08:00"),
        step("H2", "accepted", "2008-03-03T10:00:00+08:00", dept="DS"),
    ])
    # The street center: 10:00-12:00 (2 h), then 14:00-16:00. The default hours: 10-12, 13-15.
    assert district.cases.current("H1").promised_due_at == at("2008-03-03 16:00")
    assert district.cases.current("H2").promised_due_at == at("2008-03-03 15:00")

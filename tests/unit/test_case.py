"""Specifications of the case (办件) rules in DOMAIN.md, against the pure domain.

Dates are in 2008, whose schedule (国办发明电〔2007〕12号) has National Day off 29 Sep - 5 Oct
with Sat 27 and Sun 28 Sep worked.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.calendar import CHINA_TZ
from domain.case import Case, CaseRefused, replay, verify_chain
from domain.catalogue import ItemKind, ItemVersion
from domain.errors import DomainError, InvalidInput
from domain.limits import Limit, Unit
from domain.steps import StepReport
from infra.calendar_source import default_calendar

CAL = default_calendar()
LICENCE = ItemVersion("GS-001", "企业设立登记", "GS", ItemKind.LICENCE, Limit(20, Unit.WORKING_DAYS),
                      Limit(5, Unit.WORKING_DAYS), False, Decimal("50.00"))
SPOT = ItemVersion("GS-002", "补办", "GS", ItemKind.NON_LICENCE, Limit(5, Unit.WORKING_DAYS),
                   Limit(0, Unit.WORKING_DAYS), True, Decimal("0.00"))
HOURS = ItemVersion("GS-003", "企业设立并联审批", "GS", ItemKind.LICENCE, Limit(20, Unit.WORKING_DAYS),
                    Limit(4, Unit.WORKING_HOURS), False, Decimal("0.00"))


def at(text: str) -> datetime:
    """A Beijing-time instant, e.g. at("2008-09-26 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def end_of(day: str) -> datetime:
    """The deadline instant for a day: local midnight starting the next day."""
    return datetime.fromisoformat(day).replace(tzinfo=CHINA_TZ) + timedelta(days=1)


_n = 0


def report(step: str, when: datetime, case_no: str = "C1", item: str | None = None, **data) -> StepReport:
    global _n
    _n += 1
    raw = {"event_id": f"e{_n}", "case_no": case_no, "step": step, "occurred_at": when.isoformat(), "department": "GS"}
    if item or step == "submitted":
        raw["item_code"] = item or "GS-001"
    if data:
        raw["data"] = data
    return StepReport.parse(raw)


def new_case(when: datetime, terms: ItemVersion = LICENCE) -> Case:
    return Case.submit(report("submitted", when, item=terms.code), recorded_at=when + timedelta(minutes=1), terms=terms)


def step(case: Case, name: str, when: datetime, terms: ItemVersion | None = None, recorded: datetime | None = None, **data) -> Case.Event:
    return case.record(report(name, when, **data), recorded_at=recorded or when + timedelta(minutes=1), calendar=CAL, terms=terms)


def accepted(when: datetime, terms: ItemVersion = LICENCE) -> Case:
    case = new_case(when - timedelta(minutes=10), terms)
    step(case, "accepted", when, terms=terms)
    return case


class TestDeadlines:
    def test_acceptance_sets_promised_and_legal_deadlines_counting_worked_weekends(self):
        # Fri 26 Sep 2008: +5 working days = Sat 27, Sun 28 (调休 worked), then the holiday
        # 29 Sep - 5 Oct, then Mon 6, Tue 7, Wed 8 Oct: due at the end of 8 Oct.
        case = accepted(at("2008-09-26 09:30"))
        assert case.promised_due_at == end_of("2008-10-08")
        # +20: 27, 28 Sep; 6-10 Oct (5); 13-17 (5); 20-24 (5); 27, 28, 29 Oct: the 20th is 29 Oct.
        assert case.legal_due_at == end_of("2008-10-29")

    def test_on_the_spot_item_is_due_the_same_day(self):
        case = accepted(at("2008-03-03 10:00"), SPOT)
        assert case.promised_due_at == end_of("2008-03-03")

    def test_working_hours_promise_counts_office_time_only(self):
        # 4 working hours from 10:00 on a winter Monday: 10-12 and 13-15.
        case = accepted(at("2008-03-03 10:00"), HOURS)
        assert case.promised_due_at == at("2008-03-03 15:00")

    def test_suspension_stops_the_clock_and_resumption_moves_the_deadlines(self):
        case = accepted(at("2008-09-22 09:00"))  # Mon; +5 working days = Sat 27 Sep (worked)
        assert case.promised_due_at == end_of("2008-09-27")
        step(case, "suspended", at("2008-09-23 10:00"), procedure="expert_review")
        assert case.suspended
        # Resumed Tue 7 Oct: working days after 23 Sep through 7 Oct are 24, 25, 26, 27, 28 Sep
        # and 6, 7 Oct: 7 working days are not counted.
        e = step(case, "resumed", at("2008-10-07 09:00"))
        assert e.derived["promised_extra"] == "7"
        # 5 + 7 = 12 working days after 22 Sep: 23-28 Sep (6), 6-10 Oct (5), 13 Oct (12th).
        assert case.promised_due_at == end_of("2008-10-13")
        assert not case.suspended

    def test_extension_moves_the_deadline_by_approved_working_days(self):
        case = accepted(at("2008-09-26 09:30"))
        step(case, "extended", at("2008-09-27 09:00"), value=10, unit="working_days", approved_by="局长")
        # 20 + 10 = 30 working days: 29 Oct was the 20th; 30, 31 Oct (22), 3-7 Nov (27),
        # 10, 11, 12 Nov: the 30th is 12 Nov.
        assert case.legal_due_at == end_of("2008-11-12")
        # 5 + 10 = 15: 27, 28 Sep, 6-10, 13-17, 20-22 Oct: the 15th is 22 Oct.
        assert case.promised_due_at == end_of("2008-10-22")

    def test_conclusion_on_time_and_late(self):
        case = accepted(at("2008-09-26 09:30"))
        e = step(case, "concluded", at("2008-10-08 16:00"), result="issued")
        assert e.derived == {"on_time": True, "within_legal": True}
        late = accepted(at("2008-09-26 09:30"))
        step(late, "concluded", at("2008-10-09 09:00"), result="0")  # exchange code 0 = 出证
        assert late.on_time is False and late.within_legal is True and late.result == "issued"

    def test_concluded_while_suspended_counts_the_open_procedure(self):
        case = accepted(at("2008-09-22 09:00"))
        step(case, "suspended", at("2008-09-23 10:00"), procedure="hearing")
        e = step(case, "concluded", at("2008-10-13 10:00"))
        assert e.derived["on_time"] is True
        assert any(f["code"] == "concluded_while_suspended" for f in e.flags)


class TestRefusals:
    def test_a_step_on_an_unknown_case_is_refused(self):
        with pytest.raises(CaseRefused) as exc:
            Case.submit(report("accepted", at("2008-03-03 10:00")), recorded_at=at("2008-03-03 10:01"), terms=LICENCE)
        assert exc.value.code == "unknown_case"

    @pytest.mark.parametrize("terminal", ["refused", "withdrawn", "concluded"])
    def test_no_step_after_a_terminal_one_except_delivery_and_rating(self, terminal):
        case = accepted(at("2008-03-03 10:00"))
        step(case, terminal, at("2008-03-03 11:00"), reason="材料不符") if terminal != "concluded" else step(case, terminal, at("2008-03-03 11:00"))
        with pytest.raises(CaseRefused) as exc:
            step(case, "undertaken", at("2008-03-03 12:00"))
        assert exc.value.code == "case_closed"
        step(case, "rated", at("2008-03-03 12:00"), score=1)
        assert case.score == 1

    def test_resuming_without_a_suspension_is_refused(self):
        case = accepted(at("2008-03-03 10:00"))
        with pytest.raises(CaseRefused) as exc:
            step(case, "resumed", at("2008-03-04 10:00"))
        assert exc.value.code == "not_suspended"

    def test_a_step_before_the_case_was_received_is_refused(self):
        case = new_case(at("2008-03-03 10:00"))
        with pytest.raises(CaseRefused) as exc:
            step(case, "accepted", at("2008-03-03 09:00"))
        assert exc.value.code == "before_submission"

    def test_far_future_steps_are_refused(self):
        case = new_case(at("2008-03-03 10:00"))
        with pytest.raises(InvalidInput) as exc:
            step(case, "accepted", at("2008-03-05 10:00"), recorded=at("2008-03-03 10:05"))
        assert exc.value.code == "future_timestamp"

    def test_a_refused_step_changes_nothing(self):
        case = accepted(at("2008-03-03 10:00"))
        before = (case.version, case.last_hash, len(case.pending_events))
        with pytest.raises(DomainError):
            step(case, "accepted", at("2008-03-03 11:00"))
        assert (case.version, case.last_hash, len(case.pending_events)) == before

    @pytest.mark.parametrize("raw, code", [
        ({"step": "teleported"}, "unknown_step"),
        ({"occurred_at": "2008-03-03T10:00:00"}, "naive_timestamp"),
        ({"occurred_at": "yesterday"}, "invalid_timestamp"),
        ({"case_no": "X" * 51}, "invalid_case_no"),
        ({"event_id": 7}, "invalid_code"),
        ({"department": None}, "missing_field"),
        ({"step": "rated", "data": {"score": 6}}, "invalid_score"),
        ({"step": "rated", "data": {"score": True}}, "invalid_score"),
        ({"step": "fee_charged", "data": {"amount": "-1"}}, "invalid_amount"),
        ({"step": "fee_charged", "data": {"amount": "NaN"}}, "invalid_amount"),
        ({"step": "suspended", "data": {}}, "invalid_field"),
        ({"step": "decided", "data": {"granted": "yes"}}, "invalid_field"),
        ({"data": {"colour": "red"}}, "unknown_field"),
        ({"extra": 1}, "unknown_field"),
    ])
    def test_malformed_reports_are_refused_with_a_stable_code(self, raw, code):
        base = {"event_id": "x", "case_no": "C1", "step": "accepted", "occurred_at": "2008-03-03T10:00:00+08:00",
                "department": "GS"}
        with pytest.raises(InvalidInput) as exc:
            StepReport.parse({**base, **raw})
        assert exc.value.code == code


class TestIrregularitiesAreRecordedAndFlagged:
    def codes(self, event):
        return [f["code"] for f in event.flags]

    def test_skipped_acceptance_is_flagged_not_dropped(self):
        case = new_case(at("2008-03-03 10:00"))
        e = step(case, "concluded", at("2008-03-03 11:00"))
        assert "skipped_step" in self.codes(e)
        assert case.status == "concluded" and case.on_time is None

    def test_late_entry_is_flagged_with_the_lag_as_evidence(self):
        case = new_case(at("2008-03-03 10:00"))
        e = step(case, "accepted", at("2008-03-03 10:30"), recorded=at("2008-03-06 10:30"))
        flag = next(f for f in e.flags if f["code"] == "late_entry")
        assert flag["lag_seconds"] == 3 * 24 * 3600

    def test_fees_above_the_standard_or_on_a_free_item(self):
        case = accepted(at("2008-03-03 10:00"))
        assert self.codes(step(case, "fee_charged", at("2008-03-03 10:10"), amount="50")) == []
        assert self.codes(step(case, "fee_charged", at("2008-03-03 10:20"), amount="80.5")) == ["fee_above_standard"]
        free = accepted(at("2008-03-03 10:00"), SPOT)
        assert self.codes(step(free, "fee_charged", at("2008-03-03 10:10"), amount=10)) == ["fee_on_free_item"]

    def test_times_going_backwards_and_refusal_without_reason(self):
        case = accepted(at("2008-03-03 10:00"))
        step(case, "undertaken", at("2008-03-03 11:00"))
        e = step(case, "reviewed", at("2008-03-03 10:30"))
        assert "time_backwards" in self.codes(e)
        other = new_case(at("2008-03-03 10:00"))
        assert "no_reason" in self.codes(step(other, "refused", at("2008-03-03 10:05")))

    def test_out_of_order_stage_is_flagged(self):
        case = accepted(at("2008-03-03 10:00"))
        step(case, "undertaken", at("2008-03-03 10:10"))
        step(case, "decided", at("2008-03-03 10:20"), granted=True)
        assert "out_of_order" in self.codes(step(case, "undertaken", at("2008-03-03 10:30")))


class TestHashChainAndReplay:
    def build(self) -> tuple[Case, list[Case.Event]]:
        case = accepted(at("2008-09-26 09:30"))
        step(case, "undertaken", at("2008-09-27 10:00"))
        step(case, "concluded", at("2008-10-06 10:00"), recorded=at("2008-10-08 10:00"))
        return case, list(case.collect_events())  # type: ignore[arg-type]

    def test_every_event_is_chained_to_the_previous_one(self):
        case, events = self.build()
        assert verify_chain("C1", events) is None
        assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
        assert case.last_hash == events[-1].hash

    def test_tampering_with_any_field_breaks_the_chain_at_that_event(self):
        _, events = self.build()
        forged = replace(events[2], occurred_at=events[2].occurred_at - timedelta(days=1))
        assert verify_chain("C1", [events[0], events[1], forged, events[3]]) == 3
        assert verify_chain("C2", events) == 1  # the case number is part of every hash

    def test_replay_by_business_time_and_by_recording_time_differ_for_late_entries(self):
        _, events = self.build()
        # By 7 Oct the case had (in business time) been concluded on 6 Oct...
        by_occurred = replay([e for e in events if e.occurred_at <= at("2008-10-07 00:00")])
        assert by_occurred.status == "concluded"
        # ...but the system only learned it on 8 Oct.
        by_recorded = replay([e for e in events if e.timestamp <= at("2008-10-07 00:00")])
        assert by_recorded.status == "undertaken"


def test_flag_details_read_chinese_first_without_clock_digits():
    from datetime import timedelta

    from domain.case import _span_en, _span_zh

    assert _span_zh(timedelta(days=6640, hours=20, minutes=34, seconds=44.671789)) == "6640 天"
    assert _span_zh(timedelta(days=2, hours=3, minutes=5)) == "2 天 3 小时"
    assert _span_zh(timedelta(hours=25)) == "1 天 1 小时"
    assert _span_zh(timedelta(hours=5, minutes=12, seconds=9)) == "5 小时 12 分钟"
    assert _span_en(timedelta(days=6640, hours=20)) == "6640 days"

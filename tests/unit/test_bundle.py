"""Specifications of the parallel-approval bundle (并联审批件) and its channel, in the pure domain.

2008 schedule: National Day off 29 Sep - 5 Oct, Sat 27 and Sun 28 Sep worked (调休); summer office
hours (to 30 Sep) 09:00-12:00, 13:30-17:30, winter (from 1 Oct) 09:00-12:00, 13:00-17:00.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.bundle import (Bundle, BundleRefused, PartStep, bundle_thresholds, read_part_step, reached_levels)
from domain.channel import Channel, ChannelTerms
from domain.errors import InvalidInput, NotFound
from domain.limits import Limit, Unit
from tests.unit.test_case import CAL, LICENCE, accepted, at, end_of, step

SETUP = ChannelTerms.parse("QYSL", {
    "name": "企业设立并联审批", "department": "ZWFW", "center": "CDGX", "items": ["GSJ-002", "ZJ-001", "GS-001", "DS-001"],
    "promised_limit": {"value": 4, "unit": "working_hours"}, "legal_limit": {"value": 20, "unit": "working_days"},
})
PROJECT = ChannelTerms.parse("XMBJ", {
    "name": "项目报建并联审批", "department": "ZWFW", "items": ["GH-001", "GH-002", "JS-001"],
    "promised_limit": {"value": 17, "unit": "working_days"}, "legal_limit": {"value": 68, "unit": "working_days"},
    "serial_limit": {"value": 68, "unit": "working_days"},
})
ACTOR = {"department": "ZWFW", "window": "S002", "staff": None}
DAYS5 = Limit(5, Unit.WORKING_DAYS)
_n = 0


def submitted(channel: ChannelTerms = SETUP, parts=("P1", "P2", "P3"), when: str = "2008-09-28 15:50") -> Bundle:
    return Bundle.submit(bundle_no="B1", channel=channel, parts=list(parts), occurred_at=at(when),
                         recorded_at=at(when) + timedelta(minutes=1), event_id="b-1", actor=ACTOR)


def accept(b: Bundle, when: str):
    return b.accept(occurred_at=at(when), recorded_at=at(when) + timedelta(minutes=1), event_id="b-acc-" + when.replace(" ", "T"),
                    actor=ACTOR, calendar=CAL)


def close(b: Bundle, case_no: str, when: str, on_time: bool | None = True, step_name: str = "concluded",
          promised: Limit | None = DAYS5):
    global _n
    _n += 1
    part = PartStep(case_no, step_name, 5, at(when), "GS", None, None, on_time)
    return b.close_part(part, promised=promised, recorded_at=at(when) + timedelta(minutes=1), calendar=CAL)


class TestChannel:
    def test_a_channel_is_reference_data_with_versions(self):
        ch = Channel.register(SETUP, at("2008-01-01 08:00"))
        assert ch.current.promised_limit == Limit(4, Unit.WORKING_HOURS) and ch.current.version == 1
        assert not ch.revise(SETUP, at("2008-02-01 08:00"))  # nothing changed: nothing recorded
        body = {k: v for k, v in SETUP.as_dict().items() if k not in ("code", "version", "effective_from")}
        faster = ChannelTerms.parse("QYSL", {**body, "promised_limit": {"value": 2, "unit": "working_hours"}})
        assert ch.revise(faster, at("2008-06-01 08:00"))
        assert ch.version_at(at("2008-03-01 09:00")).promised_limit.value == 4
        assert ch.version_at(at("2008-07-01 09:00")).promised_limit.value == 2

    @pytest.mark.parametrize("body, code", [
        ({"name": "x", "department": "D", "items": ["A"], "promised_limit": {"value": 1, "unit": "working_days"},
          "legal_limit": {"value": 2, "unit": "working_days"}}, "invalid_field"),  # one member item
        ({"name": "x", "department": "D", "items": ["A", "A"], "promised_limit": {"value": 1, "unit": "working_days"},
          "legal_limit": {"value": 2, "unit": "working_days"}}, "invalid_field"),
        ({"name": "x", "department": "D", "items": ["A", "B"], "promised_limit": {"value": 9, "unit": "working_days"},
          "legal_limit": {"value": 2, "unit": "working_days"}}, "invalid_limit"),
        ({"name": "x", "items": ["A", "B"]}, "missing_field"),
        ({"name": "x", "department": "D", "items": ["A", "B"], "promised_limit": {"value": 1, "unit": "working_days"},
          "legal_limit": {"value": 2, "unit": "working_days"}, "colour": "red"}, "unknown_field"),
    ])
    def test_bad_channels_are_refused_with_a_code(self, body, code):
        with pytest.raises(InvalidInput) as e:
            ChannelTerms.parse("C", body)
        assert e.value.code == code


class TestDeadlines:
    def test_working_hours_across_the_national_day_holiday(self):
        # Sun 28 Sep 2008 is a worked 调休 Sunday (summer hours): 16:00-17:30 = 1.5 h; 29 Sep - 5 Oct
        # off; Mon 6 Oct (winter hours) 09:00-11:30 = 2.5 h: the 4 hours end at 11:30.
        b = submitted()
        e = accept(b, "2008-09-28 16:00")
        assert e.promised_due_at == at("2008-10-06 11:30") == b.promised_due_at
        # 20 working days: 27/28 Sep are before; from 28 Sep: 6-10 Oct (5), 13-17, 20-24, 27-31 Oct (20).
        assert b.legal_due_at == end_of("2008-10-31")

    def test_working_days_counting_worked_weekends(self):
        # Wed 24 Sep + 17 working days: 25, 26, Sat 27, Sun 28 Sep (4), 6-10 Oct (9), 13-17 (14),
        # 20, 21, 22 Oct (17): due at the end of 22 Oct.
        b = submitted(PROJECT, when="2008-09-24 09:00")
        accept(b, "2008-09-24 10:00")
        assert b.promised_due_at == end_of("2008-10-22")

    def test_the_bundle_warns_on_its_own_limit(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        levels = {t.rule: t.at for t in bundle_thresholds(b.accepted_at, b.channel.promised_limit, b.channel.legal_limit, b.promised_due_at, b.legal_due_at, CAL)}
        # 80% of 4 hours used = 0.8 h left before 11:30: 10:42 (as a case's yellow card).
        assert levels["yellow"] == at("2008-10-06 10:42") and levels["red"] == at("2008-10-06 11:30")
        ts = bundle_thresholds(b.accepted_at, b.channel.promised_limit, b.channel.legal_limit, b.promised_due_at, b.legal_due_at, CAL)
        assert [t.rule for t in reached_levels(ts, None, at("2008-10-06 11:00"))] == ["yellow"]
        assert [t.rule for t in reached_levels(ts, None, at("2008-10-06 11:31"))] == ["yellow", "red"]
        assert reached_levels(ts, at("2008-10-06 10:00"), at("2009-01-01 00:00")) == []  # concluded in time

    def test_no_thresholds_before_acceptance(self):
        b = submitted()
        assert bundle_thresholds(None, b.channel.promised_limit, b.channel.legal_limit, None, None, CAL) == []


class TestLifecycle:
    def test_concluded_when_its_last_part_concludes_all_in_time(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        assert close(b, "P2", "2008-09-28 16:40") and b.status == "accepted"
        close(b, "P1", "2008-10-06 09:20")
        events = close(b, "P3", "2008-09-28 17:00")  # keyed after P1, but happened earlier
        assert [type(e).__name__ for e in events] == ["PartClosed", "Concluded"]
        assert b.status == "concluded" and b.concluded_at == at("2008-10-06 09:20")  # the last part's time
        assert b.on_time is True and b.within_legal is True and not b.late(at("2009-01-01 00:00"))
        concluded = events[-1]
        assert concluded.used_hours == pytest.approx(1 + 5 / 6, abs=1e-3)  # 16:00-17:30 and 09:00-09:20
        assert concluded.serial_working_days == 15  # three parts promised 5 working days each

    def test_late_when_one_part_is_late_even_within_the_bundle_limit(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        close(b, "P1", "2008-09-28 16:30")
        close(b, "P2", "2008-09-28 16:45", on_time=False)
        close(b, "P3", "2008-09-28 17:00")
        assert b.concluded_at < b.promised_due_at  # the bundle's own limit held
        assert b.on_time is False and b.late_parts == ["P2"] and b.late(b.concluded_at)
        assert b.pending_events[-1].over_limit is False

    def test_late_when_its_limit_passes_though_every_part_is_in_time(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        close(b, "P1", "2008-09-28 16:30")
        close(b, "P2", "2008-10-06 10:00")
        assert not b.late(at("2008-10-06 11:00"))
        assert b.late(at("2008-10-06 11:31"))  # open, past its 4 hours: late before it concludes
        close(b, "P3", "2008-10-06 14:00")  # each part by its own 5-day promise: in time
        assert b.late_parts == [] and b.on_time is False and b.pending_events[-1].over_limit is True

    def test_an_open_part_past_its_own_promise_makes_the_bundle_late(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        assert b.late(at("2008-09-28 16:30"), open_parts_past_due=["P1"])

    def test_refused_or_withdrawn_parts_close_too(self):
        b = submitted(parts=("P1", "P2"))
        accept(b, "2008-09-28 16:00")
        close(b, "P1", "2008-09-28 16:10", on_time=None, step_name="refused")
        close(b, "P2", "2008-09-28 16:30")
        assert b.status == "concluded" and b.on_time is True and b.closed_parts["P1"]["on_time"] is None

    def test_a_bundle_never_accepted_concludes_without_a_verdict(self):
        b = submitted(parts=("P1", "P2"))
        close(b, "P1", "2008-09-28 16:10")
        close(b, "P2", "2008-09-28 16:30")
        assert b.status == "concluded" and b.on_time is None


class TestRefusals:
    @pytest.mark.parametrize("parts", [["P1"], ["P1", "P1"], ["B1", "P2"], "P1,P2", ["P1", " bad "]])
    def test_parts_must_be_two_or_more_distinct_case_numbers(self, parts):
        with pytest.raises(InvalidInput) as e:
            Bundle.submit(bundle_no="B1", channel=SETUP, parts=parts, occurred_at=at("2008-03-03 09:00"),
                          recorded_at=at("2008-03-03 09:01"), event_id="x", actor=ACTOR)
        assert e.value.code in ("invalid_parts", "invalid_code")

    def test_submission_in_the_future_is_refused(self):
        with pytest.raises(InvalidInput) as e:
            Bundle.submit(bundle_no="B1", channel=SETUP, parts=["P1", "P2"], occurred_at=at("2008-03-04 09:00"),
                          recorded_at=at("2008-03-03 09:01"), event_id="x", actor=ACTOR)
        assert e.value.code == "future_timestamp"

    def test_accepted_once(self):
        b = submitted()
        accept(b, "2008-09-28 16:00")
        with pytest.raises(BundleRefused) as e:
            accept(b, "2008-09-28 16:05")
        assert e.value.code == "already_accepted" and e.value.status == 409

    def test_not_before_submission(self):
        b = submitted()
        with pytest.raises(InvalidInput) as e:
            accept(b, "2008-09-28 15:00")
        assert e.value.code == "before_submission"

    def test_not_after_conclusion(self):
        b = submitted(parts=("P1", "P2"))
        close(b, "P1", "2008-09-28 16:10")
        close(b, "P2", "2008-09-28 16:30")
        with pytest.raises(BundleRefused) as e:
            accept(b, "2008-09-28 16:40")
        assert e.value.code == "bundle_closed"

    def test_a_stranger_is_not_a_part_and_a_part_closes_once(self):
        b = submitted()
        with pytest.raises(NotFound) as e:
            close(b, "P9", "2008-09-28 16:10")
        assert e.value.code == "not_a_part"
        close(b, "P1", "2008-09-28 16:10")
        with pytest.raises(BundleRefused) as e:
            close(b, "P1", "2008-09-28 16:20")
        assert e.value.code == "part_closed"
        with pytest.raises(InvalidInput):
            close(b, "P2", "2008-09-28 16:20", step_name="accepted")


def test_the_adapter_reads_a_real_case_event():
    case = accepted(at("2008-09-26 09:30"))
    e = step(case, "concluded", at("2008-09-27 10:00"), result="issued")
    part = read_part_step(e, "C1")
    assert (part.case_no, part.step, part.on_time, part.department) == ("C1", "concluded", True, "GS")
    assert part.version == case.version
    first = read_part_step(case.pending_events[0])
    assert first.step == "submitted" and first.item_code == LICENCE.code
    assert read_part_step(object()) is None

"""Specifications of warning thresholds (预警阈值) and the warning's lifecycle, in the pure domain.

2008 schedule: National Day off 29 Sep - 5 Oct, Sat 27 and Sun 28 Sep worked (调休). Summer office
hours (to 30 Sep) 09:00-12:00, 13:30-17:30; winter (from 1 Oct) 09:00-12:00, 13:00-17:00.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest

from domain.errors import InvalidInput
from domain.limits import Limit, Unit
from domain.thresholds import (
    DEFAULT_WARNING_POLICY,
    CaseClock,
    PolicyBook,
    WarningPolicy,
    instant_before,
    plan,
)
from domain.warning import CaseWarning, WarningClosed, warning_id
from tests.unit.test_case import CAL, at

DAYS5 = Limit(5, Unit.WORKING_DAYS)
DAYS20 = Limit(20, Unit.WORKING_DAYS)
HOURS4 = Limit(4, Unit.WORKING_HOURS)


def clock_for(accepted: str, promised: Limit = DAYS5, legal: Limit = DAYS20, **kw) -> CaseClock:
    a = at(accepted)
    return CaseClock(a, promised, legal, CAL.deadline_for(a, promised.value, promised.unit),
                     CAL.deadline_for(a, legal.value, legal.unit), **kw)


def instants(c: CaseClock, policy: WarningPolicy = DEFAULT_WARNING_POLICY) -> dict[str, str]:
    return {t.rule: t.at.astimezone(CAL.tz).strftime("%Y-%m-%d %H:%M") for t in plan(c, policy, CAL)}


class TestDefaultPolicy:
    def test_defaults_are_yellow_at_80_percent_red_at_the_promise_severe_at_the_law(self):
        assert DEFAULT_WARNING_POLICY.as_dict() == {
            "yellow": {"share": 0.8}, "red": True, "severe": True, "steps": {},
            "escalation": {"value": 3, "unit": "working_days"},
        }

    def test_80_percent_of_5_working_days_is_the_close_of_office_of_the_4th_day_on_a_worked_sunday(self):
        # Accepted Wed 24 Sep: the 5 days are 25, 26, Sat 27, Sun 28 Sep (调休), then Mon 6 Oct.
        # One day left = from the close of office on Sun 28 Sep (summer: 17:30).
        assert instants(clock_for("2008-09-24 09:00")) == {
            "yellow": "2008-09-28 17:30", "red": "2008-10-07 00:00", "severe": "2008-10-28 00:00"}

    def test_90_percent_leaves_half_of_the_last_days_office_time(self):
        # Mon 6 Oct (winter, 7 office hours): 3.5 hours left from 13:30.
        policy = WarningPolicy.parse({"yellow": {"share": "90%"}})
        assert instants(clock_for("2008-09-24 09:00"), policy)["yellow"] == "2008-10-06 13:30"

    def test_a_number_of_working_days_before_the_deadline(self):
        policy = WarningPolicy.parse({"yellow": {"before": 2}})
        # Two working days before the end of 6 Oct: 6 Oct and Sun 28 Sep; from close of Sat 27 Sep.
        assert instants(clock_for("2008-09-24 09:00"), policy)["yellow"] == "2008-09-27 17:30"

    def test_working_hours_count_office_sessions_across_the_holiday(self):
        # Accepted Sun 28 Sep 16:00: 1.5 h that day (to 17:30), then 6 Oct 09:00-11:30 (2.5 h).
        # 80% of 4 h = 48 min left: from 10:42.
        c = clock_for("2008-09-28 16:00", HOURS4)
        assert instants(c) == {"yellow": "2008-10-06 10:42", "red": "2008-10-06 11:30", "severe": "2008-11-01 00:00"}

    def test_an_on_the_spot_item_has_no_yellow(self):
        c = clock_for("2008-03-03 10:00", Limit(0, Unit.WORKING_DAYS), DAYS5)
        assert set(instants(c)) == {"red", "severe"}


class TestClockStates:
    def test_no_thresholds_while_suspended_closed_or_not_accepted(self):
        assert plan(clock_for("2008-09-24 09:00", suspended=True), DEFAULT_WARNING_POLICY, CAL) == []
        assert plan(clock_for("2008-09-24 09:00", closed=True), DEFAULT_WARNING_POLICY, CAL) == []
        assert plan(CaseClock(None, DAYS5, DAYS20, None, None), DEFAULT_WARNING_POLICY, CAL) == []

    def test_an_extension_is_part_of_the_promised_time(self):
        # +10 working days: due end of 20 Oct; 80% of 15 days leaves 3: from close of 15 Oct.
        a = at("2008-09-24 09:00")
        c = CaseClock(a, DAYS5, DAYS20, CAL.deadline_for(a, 15, Unit.WORKING_DAYS),
                      CAL.deadline_for(a, 30, Unit.WORKING_DAYS), promised_extension=Fraction(10))
        assert instants(c)["yellow"] == "2008-10-15 17:00" and instants(c)["red"] == "2008-10-21 00:00"

    def test_a_threshold_never_falls_before_the_last_resumption(self):
        a = at("2008-09-24 09:00")
        c = CaseClock(a, DAYS5, DAYS20, at("2008-10-07 00:00"), at("2008-10-28 00:00"), resumed_at=at("2008-10-06 15:00"))
        assert instants(c)["yellow"] == "2008-10-06 15:00"

    def test_issued_rules_are_not_planned_again(self):
        assert set(instants(clock_for("2008-09-24 09:00", issued=frozenset({"yellow"})))) == {"red", "severe"}

    def test_a_step_limit_is_measured_from_the_previous_main_step(self):
        policy = WarningPolicy.parse({"steps": {"undertaken": {"value": 1, "unit": "working_days"}}})
        c = clock_for("2008-09-24 09:00", stage="accepted", stage_at=at("2008-09-24 09:00"))
        assert instants(c, policy)["step:undertaken"] == "2008-09-26 00:00"


class TestCountingBackwards:
    def test_working_days_hours_and_calendar_days(self):
        end = at("2008-10-07 00:00")
        assert instant_before(CAL, end, 1, Unit.WORKING_DAYS) == at("2008-09-28 17:30")
        assert instant_before(CAL, end, Fraction(1, 2), Unit.WORKING_DAYS) == at("2008-10-06 13:30")
        assert instant_before(CAL, end, 8, Unit.WORKING_HOURS) == at("2008-09-28 16:30")
        assert instant_before(CAL, end, 2, Unit.CALENDAR_DAYS) == at("2008-10-05 00:00")

    def test_nothing_before_the_start(self):
        assert instant_before(CAL, at("2008-10-07 00:00"), 5, Unit.WORKING_DAYS, not_before=at("2008-09-26 09:00")) is None


class TestPolicyConfiguration:
    def test_a_partial_override_inherits_the_rest(self):
        p = WarningPolicy.parse({"yellow": {"share": 0.9}, "severe": False})
        assert p.yellow_share == Fraction(9, 10) and p.red is True and p.severe is False

    def test_item_overrides_win_over_center_overrides_over_the_default(self):
        book = PolicyBook.parse({"default": {"yellow": {"share": 0.9}},
                                 "centers": {"CDGX": {"yellow": {"before": 1}, "severe": False}},
                                 "items": {"GS-001": {"yellow": {"share": 0.5}}}})
        assert book.policy_for(None, "X").yellow_share == Fraction(9, 10)
        assert book.policy_for("CDGX", "X").yellow_before == 1
        item = book.policy_for("CDGX", "GS-001")
        assert item.yellow_share == Fraction(1, 2) and item.severe is False

    @pytest.mark.parametrize("raw", [{"yellow": {"share": 1.5}}, {"yellow": {"share": 0.8, "before": 1}},
                                     {"red": "yes"}, {"colour": "blue"}, {"steps": {"delivered": {"value": 1, "unit": "working_days"}}},
                                     {"escalation": {"value": 0, "unit": "working_days"}}, []])
    def test_invalid_policies_are_refused_with_a_code(self, raw):
        with pytest.raises(InvalidInput) as exc:
            WarningPolicy.parse(raw)
        assert exc.value.code == "invalid_policy"


class TestWarningLifecycle:
    def issue(self):
        t = at("2008-09-28 17:30")
        return CaseWarning.issue(case_no="C1", case_id="x", case_version=2, department="GS", item_code="GS-001",
                                 level="yellow", rule="yellow", threshold_at=t, promised_due_at=at("2008-10-07 00:00"),
                                 legal_due_at=at("2008-10-28 00:00"), basis="80%", at=t)

    def test_issued_answered_escalated_closed(self):
        w = self.issue()
        assert w.id == warning_id("C1", "yellow") and w.status == "issued"
        w.answer("材料已补齐，正在审核", {"role": "department"}, at("2008-09-29 10:00"))
        assert w.status == "answered"
        w.escalate(at("2008-10-09 00:00"), "督办", {"role": "officer"}, at("2008-09-30 10:00"))
        assert w.status == "escalated" and w.escalation_due_at == at("2008-10-09 00:00")
        w.close(None, {"role": "officer"}, at("2008-10-08 10:00"))
        assert w.status == "closed"
        assert [type(e).__name__ for e in w.collect_events()] == ["Issued", "Answered", "Escalated", "Closed"]

    def test_a_closed_warning_takes_no_more_acts_and_an_answer_needs_text(self):
        w = self.issue()
        with pytest.raises(InvalidInput):
            w.answer("  ", {"role": "department"}, at("2008-09-29 10:00"))
        with pytest.raises(InvalidInput):  # an escalation's deadline is in the future
            w.escalate(at("2008-09-29 09:00"), None, {"role": "officer"}, at("2008-09-29 10:00"))
        w.close(None, {"role": "officer"}, at("2008-09-29 10:00"))
        with pytest.raises(WarningClosed):
            w.answer("late", {"role": "department"}, at("2008-09-29 11:00"))

    def test_the_same_case_and_rule_is_the_same_warning(self):
        assert warning_id("C1", "red") == warning_id("C1", "red") != warning_id("C1", "yellow")
        assert self.issue().created_on - at("2008-09-28 17:30") == timedelta(0)

"""Specifications of the anomaly rules (异常监测, DOMAIN.md), in memory: real case events in,
decisions out (``domain.anomalies``), no view and no store.

Dates are in 2008: National Day off 29 Sep - 5 Oct, with Sat 27 and Sun 28 Sep worked (调休).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain import anomalies as rules
from domain.anomalies import AnomalyPolicy, Annotate, Arm, CaseState, Clear, Disarm, Raise, to_us
from domain.case import Case
from domain.steps import Step, status_after
from tests.unit.test_case import CAL, LICENCE, SPOT, at, end_of, report

POLICY = AnomalyPolicy()


class Timeline:
    """One case, its events fed to the rules as the view would (state kept between events)."""

    def __init__(self, submitted: datetime, terms=LICENCE, recorded: datetime | None = None, staff: str | None = "P1"):
        self.terms = terms
        self.staff = staff
        self.case = Case.submit(self._report("submitted", submitted, item=terms.code),
                                recorded_at=recorded or submitted + timedelta(minutes=1), terms=terms)
        event = self.case.collect_events()[-1]
        self.state = rules.started(event)
        self.decisions = rules.apply(POLICY, self.state, event, lambda: CAL)

    def _report(self, step: str, when: datetime, **kw):
        r = report(step, when, **kw)
        if self.staff is None:
            return r
        from dataclasses import replace

        return replace(r, actor=replace(r.actor, staff=self.staff))

    def step(self, name: str, when: datetime, recorded: datetime | None = None, staff: str | None = "P1", **data) -> list:
        self.staff = staff
        self.case.record(self._report(name, when, **data), recorded_at=recorded or when + timedelta(minutes=1),
                         calendar=CAL, terms=self.terms)
        event = self.case.collect_events()[-1]
        self.decisions = rules.apply(POLICY, self.state, event, lambda: CAL)
        return self.decisions

    def raised(self) -> dict[str, Raise]:
        return {d.rule: d for d in self.decisions if isinstance(d, Raise)}

    def armed(self) -> dict[str, Arm]:
        return {d.rule: d for d in self.decisions if isinstance(d, Arm)}


class TestAcceptanceWithinFiveWorkingDays:
    def test_receipt_arms_the_timer_at_the_end_of_the_fifth_working_day_counting_worked_weekends(self):
        # Fri 26 Sep: 27, 28 (worked), then the holiday, then 6, 7, 8 Oct: due at the end of 8 Oct.
        c = Timeline(at("2008-09-26 09:00"))
        arm = c.armed()["acceptance_overdue"]
        assert arm.due == to_us(end_of("2008-10-08")) and arm.armed == 1
        assert "5 working days" in arm.reason

    def test_accepted_in_time_settles_the_timer_and_clears_what_a_sweep_raised(self):
        c = Timeline(at("2008-09-26 09:00"))
        out = c.step("accepted", at("2008-10-08 16:00"))
        assert Disarm("acceptance_overdue") in out
        clear = next(d for d in out if isinstance(d, Clear))
        assert clear.rule == "acceptance_overdue" and clear.armed == 1 and clear.evidence["role"] == "settled_in_time"
        assert "acceptance_overdue" not in c.raised()

    def test_accepted_after_the_fifth_working_day_is_an_anomaly_dated_at_the_due_instant(self):
        c = Timeline(at("2008-09-26 09:00"))
        c.step("accepted", at("2008-10-09 09:00"))
        found = c.raised()["acceptance_overdue"]
        assert found.occurred == to_us(end_of("2008-10-08")) and found.armed == 1
        assert [e.get("role") for e in found.evidence] == ["received", "after_due"]

    def test_a_supplement_notice_stops_the_clock_and_the_supplement_restarts_it(self):
        c = Timeline(at("2008-09-26 09:00"))
        assert Disarm("acceptance_overdue") in c.step("supplement_requested", at("2008-09-27 10:00"))
        out = c.step("supplement_received", at("2008-10-06 10:00"))
        # From Mon 6 Oct: 7, 8, 9, 10, 13 Oct.
        assert c.armed()["acceptance_overdue"].due == to_us(end_of("2008-10-13")) and out

    def test_a_sweep_raises_the_timer_when_nothing_was_recorded_by_its_due_instant(self):
        due = to_us(end_of("2008-10-08"))
        r = rules.swept("acceptance_overdue", due, 1, "reason", [{"role": "received"}], to_us(at("2008-10-09 12:00")))
        assert r.by == "sweep" and r.occurred == due and r.armed == 1
        assert r.details == {"due_at": "2008-10-09T00:00:00+08:00", "as_of": "2008-10-09T12:00:00+08:00"}


class TestOnTheSpot:
    def test_an_on_the_spot_item_not_concluded_the_day_it_was_accepted(self):
        c = Timeline(at("2008-03-03 09:50"), SPOT)
        c.step("accepted", at("2008-03-03 10:00"))
        assert c.armed()["on_the_spot_overdue"].due == to_us(end_of("2008-03-03"))
        c.step("concluded", at("2008-03-04 09:00"), result="issued")
        assert c.raised()["on_the_spot_overdue"].occurred == to_us(end_of("2008-03-03"))

    def test_concluded_the_same_day_is_in_time(self):
        c = Timeline(at("2008-03-03 09:50"), SPOT)
        c.step("accepted", at("2008-03-03 10:00"))
        out = c.step("concluded", at("2008-03-03 15:00"), result="issued")
        assert "on_the_spot_overdue" not in c.raised() and Disarm("on_the_spot_overdue") in out
        assert c.state.timers == {}

    def test_an_extension_is_noted_on_the_timer_it_does_not_stop(self):
        c = Timeline(at("2008-03-03 09:50"), SPOT)
        c.step("accepted", at("2008-03-03 10:00"))
        out = c.step("extended", at("2008-03-03 11:00"), value=2, unit="working_days", reason="材料核验")
        amend = next(d for d in out if isinstance(d, rules.Amend))
        assert amend.rule == "on_the_spot_overdue" and "extension" in amend.reason
        assert c.state.timers["on_the_spot_overdue"].due == to_us(end_of("2008-03-03"))


class TestEventRules:
    def test_a_deciding_step_that_names_no_staff_member(self):
        c = Timeline(at("2008-09-26 09:00"))
        c.step("accepted", at("2008-09-26 10:00"), staff=None)
        assert c.raised()["missing_actor"].reason == "accepted names no staff member (经办人)"

    def test_a_step_recorded_long_after_it_happened_carries_its_late_entry_flag(self):
        c = Timeline(at("2008-09-26 09:00"))
        c.step("accepted", at("2008-09-26 10:00"), recorded=at("2008-10-08 10:00"))
        late = c.raised()["late_entry"]
        assert late.evidence[0]["version"] == 2 and late.by == "event"

    def test_steps_keyed_in_together_though_they_span_days_are_bulk_entry(self):
        keyed = at("2008-10-20 16:00")
        c = Timeline(at("2008-10-06 09:00"), recorded=keyed)
        c.step("accepted", at("2008-10-06 10:00"), recorded=keyed + timedelta(seconds=5))
        c.step("undertaken", at("2008-10-08 10:00"), recorded=keyed + timedelta(seconds=10))
        assert "bulk_entry" not in c.raised()  # three steps: not yet
        c.step("concluded", at("2008-10-10 10:00"), recorded=keyed + timedelta(seconds=15), result="issued")
        bulk = c.raised()["bulk_entry"]
        assert len(bulk.evidence) == 4 and bulk.occurred == to_us(at("2008-10-06 09:00"))

    def test_the_third_special_procedure_is_frequent_and_each_pauses_the_legal_clock(self):
        c = Timeline(at("2008-10-06 09:00"))
        c.step("accepted", at("2008-10-06 10:00"))
        frequent = []
        for day in ("07", "09", "13"):
            c.step("suspended", at(f"2008-10-{day} 10:00"), procedure="expert_review", reason="专家评审")
            legal = c.state.timers["legal_limit_exceeded"]
            assert c.armed()["legal_limit_exceeded"].due is None and legal.due is None  # the clock stops
            assert c.armed()["suspension_long"].due == to_us(at(f"2008-10-{day} 10:00") + timedelta(days=30))
            frequent.append("suspension_frequent" in c.raised())
            c.step("resumed", at(f"2008-10-{day} 15:00"))
            assert c.state.timers["legal_limit_exceeded"].due is not None  # and runs again
        assert frequent == [False, False, True]


class TestAfterTheFact:
    def test_a_later_dated_step_breaches_a_timer_it_passed_and_a_late_settlement_is_annotated(self):
        c = Timeline(at("2008-03-03 09:50"), SPOT)
        c.step("accepted", at("2008-03-03 10:00"))
        c.step("fee_charged", at("2008-03-05 10:00"), amount="0")  # dated after the day: the limit passed
        assert "on_the_spot_overdue" in c.raised()
        out = c.step("concluded", at("2008-03-05 11:00"), result="issued")
        # Breached by the earlier step; the late conclusion joins that anomaly's evidence.
        note = next(d for d in out if isinstance(d, Annotate))
        assert note.rule == "on_the_spot_overdue" and note.armed == 2 and note.evidence["role"] == "settled_late"
        assert c.state.timers == {}

    def test_a_withdrawn_card_is_an_anomaly_naming_the_card(self):
        class Withdrawn:
            originator_id = "W-1"
            timestamp = at("2008-10-20 10:00")
            evidence = {"version": 3, "step": "concluded", "source_event_id": "e3", "level": "red",
                        "occurred_at": "2008-10-10T10:00:00+08:00", "recorded_at": "2008-10-15T10:00:00+08:00",
                        "threshold_at": "2008-10-11T00:00:00+08:00"}

        r = rules.card_withdrawn(Withdrawn())
        assert r.rule == "warning_withdrawn" and r.details == {"warnings": ["W-1"]}
        assert r.reason == "补录办结（滞后 5 天）使已发出的红牌预警撤销"


def test_the_state_survives_its_storage_form():
    c = Timeline(at("2008-10-06 09:00"))
    c.step("accepted", at("2008-10-06 10:00"))
    c.step("suspended", at("2008-10-07 10:00"), procedure="expert_review", reason="专家评审")
    again = CaseState.from_dict(c.state.to_dict())
    assert again == c.state


@pytest.mark.parametrize("before, step, after", [
    ("submitted", Step.ACCEPTED, "accepted"),
    ("accepted", Step.SUPPLEMENT_REQUESTED, "supplement_requested"),
    ("supplement_requested", Step.SUPPLEMENT_RECEIVED, "supplemented"),
    ("accepted", Step.UNDERTAKEN, "undertaken"),
    ("undertaken", Step.SUSPENDED, "undertaken"),
    ("undertaken", Step.FEE_CHARGED, "undertaken"),
    ("reviewed", Step.DECIDED, "decided"),
    ("decided", Step.CONCLUDED, "concluded"),
    ("accepted", Step.REFUSED, "refused"),
    ("submitted", Step.WITHDRAWN, "withdrawn"),
    ("concluded", Step.RATED, "concluded"),
    ("concluded", Step.DELIVERED, "concluded"),
    ("concluded", Step.DECIDED, "concluded"),  # a main step never reopens a closed case
])
def test_the_one_status_transition(before, step, after):
    assert status_after(before, step) == after

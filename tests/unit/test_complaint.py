"""Specifications of a complaint's (投诉) lifecycle, in the pure domain (in memory).

2008: National Day off 29 Sep - 5 Oct, Sat 27 and Sun 28 Sep worked (调休).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.complaint import (
    CHANNELS,
    DEFAULT_COMPLAINT_LIMITS,
    Complaint,
    ComplaintClosed,
    ComplaintLimits,
    ComplaintOutOfOrder,
    complaint_id,
    late_stage,
)
from domain.errors import InvalidInput
from domain.limits import Limit, Unit
from tests.unit.test_case import CAL, at

OFFICER = {"role": "officer", "key": "k1"}


def received(when: str = "2008-09-26 10:00", **kw) -> Complaint:
    args = dict(complaint_no="TS2008-001", channel="phone", department="GS", window="S005", staff="P001",
                case_no="CDGX20080000001", summary="窗口人员态度生硬", complainant="pii1:sealed", received_at=at(when),
                at=at(when) + timedelta(minutes=5), by=OFFICER, calendar=CAL)
    args.update(kw)
    return Complaint.receive(**args)


def day(instant) -> str:
    return instant.astimezone(CAL.tz).strftime("%Y-%m-%d %H:%M")


def test_the_whole_lifecycle_with_each_stage_deadline_across_national_day():
    c = received("2008-09-26 10:00")  # Friday; Sat 27 Sep is a worked day (调休)
    assert c.id == complaint_id("TS2008-001")
    assert (c.status, c.stage, day(c.due_at)) == ("received", "accept", "2008-09-28 00:00")  # end of Sat 27
    c.accept("属于受理范围", OFFICER, at("2008-09-27 16:00"), CAL)  # Saturday 27 Sep, worked
    assert (c.status, c.stage, day(c.due_at)) == ("accepted", "assign", "2008-09-29 00:00")  # end of Sun 28, worked
    c.assign("督查科 王明", OFFICER, at("2008-09-28 10:00"), CAL)
    # 5 working days after Sun 28 Sep: 29 Sep - 5 Oct are holidays, so 6, 7, 8, 9, 10 Oct.
    assert (c.status, day(c.due_at)) == ("assigned", "2008-10-11 00:00")
    c.investigate("经调取录像核实，情况属实", OFFICER, at("2008-10-10 15:00"), CAL)
    assert (c.status, day(c.due_at)) == ("investigated", "2008-10-16 00:00")  # 13, 14, 15 Oct
    c.conclude(True, "对当事人批评教育，窗口通报", OFFICER, at("2008-10-13 11:00"))
    assert (c.status, c.stage, c.due_at, c.substantiated) == ("concluded", None, None, True)
    assert [s["late"] for s in c.stages.values()] == [False, False, False, False]
    topics = [type(e).TOPIC for e in c.collect_events()]
    assert topics == ["esup.complaint:Complaint.Received", "esup.complaint:Complaint.Accepted",
                      "esup.complaint:Complaint.Assigned", "esup.complaint:Complaint.Investigated",
                      "esup.complaint:Complaint.Concluded"]


def test_not_accepted_needs_a_reason_and_closes_it():
    c = received()
    with pytest.raises(InvalidInput) as e:
        c.refuse(None, OFFICER, at("2008-09-26 11:00"))
    assert e.value.code == "missing_field"
    c.refuse("不属于政务服务中心受理范围", OFFICER, at("2008-09-26 11:00"))
    assert (c.status, c.stage) == ("not_accepted", None)
    for act in (lambda: c.accept(None, OFFICER, at("2008-09-27 09:00"), CAL),
                lambda: c.refuse("x", OFFICER, at("2008-09-27 09:00")),
                lambda: c.assign("x", OFFICER, at("2008-09-27 09:00"), CAL)):
        with pytest.raises(ComplaintClosed) as e:
            act()
        assert e.value.code == "complaint_closed" and e.value.status == 409


# Every act in every state: allowed where the lifecycle says, refused (stable code) elsewhere.
ACTS = {
    "accept": lambda c, t: c.accept(None, OFFICER, t, CAL),
    "refuse": lambda c, t: c.refuse("不属受理范围", OFFICER, t),
    "assign": lambda c, t: c.assign("王明", OFFICER, t, CAL),
    "investigate": lambda c, t: c.investigate("核实", OFFICER, t, CAL),
    "conclude": lambda c, t: c.conclude(False, None, OFFICER, t),
}
PATH = {"received": [], "accepted": ["accept"], "not_accepted": ["refuse"], "assigned": ["accept", "assign"],
        "investigated": ["accept", "assign", "investigate"], "concluded": ["accept", "assign", "investigate", "conclude"]}
ALLOWED = {"received": {"accept", "refuse"}, "accepted": {"assign"}, "assigned": {"investigate"},
           "investigated": {"conclude"}, "not_accepted": set(), "concluded": set()}


@pytest.mark.parametrize("state", list(PATH))
@pytest.mark.parametrize("act", list(ACTS))
def test_every_transition(state, act):
    c = received()
    t = at("2008-09-26 11:00")
    for step in PATH[state]:
        ACTS[step](c, t)
        t += timedelta(hours=1)
    assert c.status == state
    if act in ALLOWED[state]:
        ACTS[act](c, t)
        assert c.status != state
    else:
        expected = ComplaintClosed if state in ("not_accepted", "concluded") else ComplaintOutOfOrder
        with pytest.raises(expected) as e:
            ACTS[act](c, t)
        assert e.value.code == ("complaint_closed" if expected is ComplaintClosed else "complaint_out_of_order")
        assert c.status == state


def test_a_substantiated_complaint_says_what_was_done():
    c = received()
    for step in PATH["investigated"]:
        ACTS[step](c, at("2008-09-26 11:00"))
    with pytest.raises(InvalidInput) as e:
        c.conclude(True, None, OFFICER, at("2008-09-26 12:00"))
    assert e.value.code == "missing_field"
    with pytest.raises(InvalidInput):
        c.conclude("yes", None, OFFICER, at("2008-09-26 12:00"))
    c.conclude(False, None, OFFICER, at("2008-09-26 12:00"))
    assert (c.substantiated, c.action) == (False, None)


@pytest.mark.parametrize("field,value,code", [
    ("channel", "fax", "invalid_field"), ("channel", None, "missing_field"), ("department", None, "missing_field"),
    ("summary", "  ", "invalid_field"), ("complaint_no", "x" * 51, "invalid_field"),
])
def test_bad_receipts_are_refused(field, value, code):
    with pytest.raises(InvalidInput) as e:
        received(**{field: value})
    assert e.value.code == code


def test_received_in_the_future_is_refused():
    with pytest.raises(InvalidInput) as e:
        received(received_at=at("2008-09-27 10:00"), at=at("2008-09-26 10:00"))
    assert e.value.code == "future_timestamp"


def test_channels():
    assert CHANNELS == ("phone", "letter", "online", "in_person")
    for ch in CHANNELS:
        assert received(channel=ch).channel == ch


def test_a_late_stage_warns_once_and_only_after_its_deadline():
    c = received("2008-09-26 10:00")  # accept by the end of Sat 27 Sep
    assert late_stage(c, at("2008-09-27 23:59")) is None
    assert c.warn_if_late(at("2008-09-28 00:00")) is False  # exactly at the deadline: still in time
    assert late_stage(c, at("2008-09-28 00:01")) == ("accept", c.due_at)
    assert c.warn_if_late(at("2008-09-28 00:01")) is True
    assert c.warn_if_late(at("2008-09-29 10:00")) is False  # once per stage
    c.accept(None, OFFICER, at("2008-09-28 09:00"), CAL)
    assert c.stages["accept"]["late"] is True
    assert late_stage(c, at("2008-10-06 12:00")) is None  # assign by the end of 6 Oct
    assert late_stage(c, at("2008-10-07 00:01"))[0] == "assign"
    assert c.warn_if_late(at("2008-10-07 00:01"))
    c.assign("王明", OFFICER, at("2008-10-07 09:00"), CAL)
    assert c.warn_if_late(at("2008-10-08 09:00")) is False
    c.investigate("核实", OFFICER, at("2008-10-08 10:00"), CAL)
    c.conclude(False, None, OFFICER, at("2008-10-08 11:00"))
    assert late_stage(c, at("2009-01-01 00:00")) is None  # closed: nothing more to warn
    warned = [e.stage for e in c.collect_events() if isinstance(e, Complaint.Warned)]
    assert warned == ["accept", "assign"]


def test_limits_are_configuration_and_stored_on_the_complaint():
    limits = ComplaintLimits(accept=Limit(3, Unit.WORKING_DAYS), investigate=Limit(10, Unit.WORKING_DAYS))
    c = received("2008-09-26 10:00", limits=limits)
    assert day(c.due_at) == "2008-10-07 00:00"  # 27, 28 Sep, 6 Oct
    assert c.limits["investigate"] == {"value": 10, "unit": "working_days"}
    assert ComplaintLimits.parse({"accept": {"value": 2, "unit": "working_days"}}).accept == Limit(2, Unit.WORKING_DAYS)
    assert ComplaintLimits.parse({}) == DEFAULT_COMPLAINT_LIMITS
    with pytest.raises(InvalidInput):
        ComplaintLimits.parse({"ponder": {"value": 2, "unit": "working_days"}})
    with pytest.raises(InvalidInput):
        ComplaintLimits.parse({"accept": {"value": 2, "unit": "fortnights"}})


def test_working_hours_limits():
    c = received("2008-10-08 16:00", limits=ComplaintLimits(accept=Limit(2, Unit.WORKING_HOURS)))
    assert day(c.due_at) == "2008-10-09 10:00"  # winter hours: 16:00-17:00, then 09:00-10:00

"""Specifications of a supervision notice (督察意见) and its rectification (整改), in memory.

2008: National Day off 29 Sep - 5 Oct, Sat 27 and Sun 28 Sep worked (调休).
"""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from domain.notice import (
    ProblemAlreadyReported,
    ProblemClosed,
    ProblemNotReported,
    SupervisionNotice,
    UnknownProblem,
    late_problems,
    notice_id,
)
from tests.unit.test_case import CAL, at

OFFICER = {"role": "officer", "key": "k1"}
DEPT = {"role": "department", "key": "k2"}


def issued(**kw) -> SupervisionNotice:
    args = dict(notice_no="DC2008-01", department="GS", title="窗口服务规范督察", problems=[
        {"source": "audit", "ref": "CDGX20080000001", "description": "受理单缺经办人签字", "within": {"value": 5, "unit": "working_days"}},
        {"source": "complaint", "ref": "TS2008-001", "description": "窗口人员态度生硬", "due_date": "2008-10-10"},
        {"source": "anomaly", "description": "录入滞后，疑似体外循环"},
    ], by=OFFICER, at=at("2008-09-25 10:00"), calendar=CAL)
    args.update(kw)
    return SupervisionNotice.issue(**args)


def day(instant) -> str:
    return instant.astimezone(CAL.tz).strftime("%Y-%m-%d %H:%M")


def test_deadlines_per_problem_across_national_day():
    n = issued()
    assert n.id == notice_id("DC2008-01")
    # 5 working days after Thu 25 Sep: 26, 27 (Sat, worked), 28 (Sun, worked), 6, 7 Oct.
    assert [day(p["due_at"]) for p in n.problems.values()] == ["2008-10-08 00:00", "2008-10-11 00:00",
                                                                "2008-10-22 00:00"]
    # The third: the default 15 working days (26, 27, 28 Sep, 6-10, 13-17, 20, 21 Oct).
    assert n.status == "open"


def test_the_whole_lifecycle_report_send_back_report_verify():
    n = issued()
    n.report(1, "已补签并组织培训", DEPT, at("2008-09-27 10:00"))
    assert n.problems[1]["status"] == "reported"
    n.send_back(1, "未附培训记录", OFFICER, at("2008-09-28 10:00"), CAL)
    p = n.problems[1]
    assert (p["status"], p["returns"], day(p["due_at"])) == ("open", 1, "2008-10-08 00:00")  # its deadline kept
    n.report(1, "已补培训签到表", DEPT, at("2008-10-06 10:00"))
    n.verify(1, "整改到位", OFFICER, at("2008-10-06 15:00"))
    assert n.problems[1]["status"] == "closed" and n.status == "open"
    for no in (2, 3):
        n.report(no, "已整改", DEPT, at("2008-10-07 10:00"))
        n.verify(no, None, OFFICER, at("2008-10-07 11:00"))
    assert n.status == "closed" and n.closed_at == at("2008-10-07 11:00")


def test_send_back_after_the_deadline_gives_a_new_one():
    n = issued()
    n.report(1, "已整改", DEPT, at("2008-10-07 10:00"))
    n.send_back(1, "未整改到位", OFFICER, at("2008-10-09 10:00"), CAL)  # the old deadline (end of 7 Oct) passed
    assert day(n.problems[1]["due_at"]) == "2008-10-31 00:00"  # 15 working days from 9 Oct
    n.report(1, "已整改", DEPT, at("2008-10-10 10:00"))
    n.send_back(1, "仍未到位", OFFICER, at("2008-10-10 11:00"), CAL, due={"due_date": "2008-10-15"})
    assert day(n.problems[1]["due_at"]) == "2008-10-16 00:00"


# Every act on a problem in every state.
ACTS = {
    "report": lambda n, t: n.report(1, "已整改", DEPT, t),
    "verify": lambda n, t: n.verify(1, None, OFFICER, t),
    "send_back": lambda n, t: n.send_back(1, "不到位", OFFICER, t, CAL),
}
PATH = {"open": [], "reported": ["report"], "closed": ["report", "verify"], "sent_back": ["report", "send_back"]}
OUTCOME = {  # state -> act -> resulting status, or the refusal's code
    "open": {"report": "reported", "verify": "problem_not_reported", "send_back": "problem_not_reported"},
    "reported": {"report": "problem_already_reported", "verify": "closed", "send_back": "open"},
    "closed": {"report": "problem_closed", "verify": "problem_closed", "send_back": "problem_closed"},
    "sent_back": {"report": "reported", "verify": "problem_not_reported", "send_back": "problem_not_reported"},
}
ERRORS = {"problem_not_reported": ProblemNotReported, "problem_already_reported": ProblemAlreadyReported,
          "problem_closed": ProblemClosed}


@pytest.mark.parametrize("state", list(PATH))
@pytest.mark.parametrize("act", list(ACTS))
def test_every_transition(state, act):
    n = issued()
    t = at("2008-09-26 10:00")
    for step in PATH[state]:
        ACTS[step](n, t)
    before = n.version
    outcome = OUTCOME[state][act]
    if outcome in ERRORS:
        with pytest.raises(ERRORS[outcome]) as e:
            ACTS[act](n, t)
        assert e.value.code == outcome and e.value.status == 409 and n.version == before
    else:
        ACTS[act](n, t)
        assert n.problems[1]["status"] == outcome


@pytest.mark.parametrize("no", [0, 4, "1", None, True])
def test_unknown_problem(no):
    n = issued()
    with pytest.raises(UnknownProblem) as e:
        n.report(no, "x", DEPT, at("2008-09-26 10:00"))
    assert (e.value.code, e.value.status) == ("unknown_problem", 404)


@pytest.mark.parametrize("problems,code", [
    (None, "missing_field"), ([], "invalid_field"), (["x"], "invalid_field"),
    ([{"source": "rumour", "description": "x"}], "invalid_field"),
    ([{"description": "x"}], "missing_field"),
    ([{"source": "audit"}], "missing_field"),
    ([{"source": "audit", "description": "x", "colour": "red"}], "unknown_field"),
    ([{"source": "audit", "description": "x", "due_date": "2008-09-20"}], "invalid_field"),  # before the issue
    ([{"source": "audit", "description": "x", "due_date": "10/10/2008"}], "invalid_field"),
    ([{"source": "audit", "description": "x", "due_date": "2008-10-10", "within": {"value": 1, "unit": "working_days"}}],
     "invalid_field"),
    ([{"source": "audit", "description": "x", "within": {"value": 1, "unit": "weeks"}}], "invalid_limit"),
])
def test_bad_notices_are_refused(problems, code):
    with pytest.raises(InvalidInput) as e:
        issued(problems=problems)
    assert e.value.code == code


def test_an_inspection_round_is_a_notice_with_its_round():
    n = issued(inspection={"round": "2008-1", "inspector": "ST01", "inspected": "CM03"},
               problems=[{"source": "inspection", "description": "公示栏信息未更新"}])
    assert n.inspection == {"round": "2008-1", "inspector": "ST01", "inspected": "CM03"}
    with pytest.raises(InvalidInput):
        issued(inspection={"round": "2008-1"})
    with pytest.raises(InvalidInput):
        issued(inspection={"round": "2008-1", "inspector": "A", "inspected": "B", "weather": "fine"})


def test_overdue_rectification_warns_once_per_deadline():
    n = issued()  # problem 1 due at the end of 7 Oct, 2 at the end of 10 Oct, 3 of 21 Oct
    assert late_problems(n, at("2008-10-07 23:59")) == []
    assert n.warn_late(at("2008-10-08 00:00")) == 0  # exactly at the deadline: in time
    assert n.warn_late(at("2008-10-08 09:00")) == 1
    assert n.warn_late(at("2008-10-08 10:00")) == 0  # once
    n.report(2, "已整改", DEPT, at("2008-10-10 10:00"))  # reported in time: awaits verification, no warning
    assert n.warn_late(at("2008-10-12 10:00")) == 0
    n.report(1, "已整改", DEPT, at("2008-10-12 11:00"))
    assert n.problems[1]["reported_late"] is True
    n.send_back(1, "不到位", OFFICER, at("2008-10-13 09:00"), CAL, due={"within": {"value": 1, "unit": "working_days"}})
    assert n.warn_late(at("2008-10-15 09:00")) == 1  # the new deadline (end of 14 Oct) passed too
    n.verify(2, None, OFFICER, at("2008-10-15 10:00"))
    assert n.warn_late(at("2008-10-22 09:00")) == 1  # problem 3
    warned = [(e.problem_no, day(e.due_at)) for e in n.collect_events() if isinstance(e, SupervisionNotice.Warned)]
    assert warned == [(1, "2008-10-08 00:00"), (1, "2008-10-15 00:00"), (3, "2008-10-22 00:00")]

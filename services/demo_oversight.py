"""The demo district's 2008 oversight: complaints (投诉), supervision notices (督察意见 → 整改) and the
four mutual-inspection rounds (互查互评), run through the same acts an officer and the departments
would use (services/oversight.py), in time order, with the late-warning sweep looking before each
act as a serving process would.

From the yearbook (2008): "全年开展互查互评活动4次，发出《督察意见》20份，整改落实各类问题50余项":
4 rounds, 20 notices (8 of them from the rounds), 54 problems, every one rectified and verified
by the end of the year (a few sent back once, a few reported late and warned). The yearbook
gives no complaint figures (it only says the center handles them and that the 投诉记录 feed the
assessment): the demo's own are ``COMPLAINTS`` received, a few not accepted, ``SUBSTANTIATED``
of them substantiated, a few handled late (warned). A fixed seed makes it repeatable.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any, Callable

from domain.access import Role
from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.organisation import UnitKind
from services.ingest import Principal

NOTICES, PROBLEMS, ROUNDS = 20, 54, 4  # the yearbook's 20, 50余项, 4
COMPLAINTS, NOT_ACCEPTED, SUBSTANTIATED, LATE = 36, 3, 9, 3  # the demo's own (the yearbook has none)
OFFICER = Principal(Role.OFFICER, key="demo-officer")
DESK = Principal(Role.OFFICER, key="demo-complaint-desk")
# The three tiers' centers as the rounds name them (district, 5 streets, 11 communities).
TIER_CENTERS = ["CDGX"] + [f"ST{i:02d}" for i in range(1, 6)] + [f"CM{i:02d}" for i in range(1, 12)]
COMPLAINT_TEXTS = ["窗口人员态度生硬", "一次性告知不到位，多次往返", "上班时间窗口无人", "推诿扯皮，要求到其他部门办理",
                   "办理时间超过承诺时限", "收费未出具票据", "叫号系统混乱，插队办理", "电话咨询无人接听"]
PROBLEM_TEXTS = {
    "audit": ["受理单缺经办人签字", "补正告知书未载明全部所缺材料", "办结时间早于审核时间，录入不规范", "收费依据未公示"],
    "anomaly": ["办件录入滞后，疑似体外循环", "即办件未当场办结且未说明原因", "特别程序未附审批材料"],
    "complaint": ["投诉查实：窗口服务态度问题，需整改并通报", "投诉查实：一次性告知不到位"],
    "inspection": ["公示栏办事指南未更新", "窗口工作人员未佩戴工作牌", "便民服务设施缺失", "台账资料不完整"],
}


def _moment(cal: WorkingCalendar, day: date, rng: random.Random, lo: int = 9, hi: int = 16) -> datetime:
    if not cal.is_working_day(day):
        day = cal.next_working_day(day)
    return datetime.combine(day, time(rng.randrange(lo, hi), rng.randrange(0, 60)), CHINA_TZ)


def _after(cal: WorkingCalendar, t: datetime, days: int, rng: random.Random) -> datetime:
    return _moment(cal, cal.working_days_after(t.astimezone(CHINA_TZ).date(), days), rng) if days else \
        t + timedelta(minutes=rng.randrange(30, 150))


def oversight_2008(esup: Any, seed: int = 2008, cases: int = 5000) -> dict[str, Any]:
    """Record the year's complaints and notices; returns what it did (for the demo's printout)."""
    from domain.complaint import complaint_id

    if esup.ledger.recorder.max_notification_id() and _recorded(esup, complaint_id("TS2008-001")):
        return {"acts": 0, "warned": {"complaints": 0, "problems": 0}}  # recorded by an earlier run
    rng = random.Random(f"oversight-{seed}")
    cal = esup.reference.calendar()
    svc = esup.oversight
    staff = [s for s in esup.reference.units(UnitKind.STAFF)]
    windows: dict[str, list[str]] = {}
    for w in esup.reference.units(UnitKind.WINDOW):
        windows.setdefault(w.attrs["department"], []).append(w.code)
    acts: list[tuple[datetime, int, Callable[[], Any]]] = []
    order = iter(range(10**9))

    def at(t: datetime, fn: Callable[[], Any]) -> None:
        acts.append((t, next(order), fn))

    # -- complaints -------------------------------------------------------------------------------
    days = [date(2008, 1, 7) + timedelta(n) for n in range(0, 330)]
    picked = rng.sample(staff, COMPLAINTS)
    outcomes = ["not_accepted"] * NOT_ACCEPTED + ["substantiated"] * SUBSTANTIATED
    outcomes += ["unfounded"] * (COMPLAINTS - len(outcomes))
    rng.shuffle(outcomes)
    late = set(rng.sample([i for i, o in enumerate(outcomes) if o != "not_accepted"], LATE))
    concluded: list[tuple[datetime, str, str]] = []  # (when, complaint_no, department) of substantiated ones
    for i, (person, outcome) in enumerate(zip(picked, outcomes)):
        no = f"TS2008-{i + 1:03d}"
        dept = person.attrs["department"]
        received = _moment(cal, rng.choice(days), rng)
        body = {"complaint_no": no, "channel": rng.choice(["phone", "phone", "online", "letter", "in_person"]),
                "department": dept, "window": rng.choice(windows.get(dept) or [None]), "staff": person.code,
                "case_no": f"CDGX2008{rng.randrange(1, cases + 1):07d}" if rng.random() < 0.6 else None,
                "summary": rng.choice(COMPLAINT_TEXTS),
                "complainant": {"name": rng.choice("王李张刘陈杨") + rng.choice("伟芳敏静强磊"),
                                "phone": f"13{rng.randrange(0, 10**9):09d}"}}
        at(received, lambda body=body: svc.receive(body, DESK))
        t = received + timedelta(minutes=rng.randrange(20, 120))
        if outcome == "not_accepted":
            at(t, lambda no=no: svc.act_on_complaint(no, "refuse", {"reason": "不属于政务服务中心受理范围，已告知向有关部门反映"}, DESK))
            continue
        at(t, lambda no=no: svc.act_on_complaint(no, "accept", {"note": "属于受理范围"}, DESK))
        t = _after(cal, t, 1, rng)
        at(t, lambda no=no: svc.act_on_complaint(no, "assign", {"assignee": "政务服务处 督查组"}, DESK))
        t = _after(cal, t, 7 if i in late else rng.randrange(1, 5), rng)  # late: past the 5 working days
        findings = "经调阅录像、询问当事人，情况属实" if outcome == "substantiated" else "经核查，窗口按规定办理，投诉不属实"
        at(t, lambda no=no, f=findings: svc.act_on_complaint(no, "investigate", {"findings": f}, DESK))
        t = _after(cal, t, rng.randrange(0, 3), rng)
        if outcome == "substantiated":
            body2 = {"substantiated": True, "action": rng.choice(["对当事人批评教育，全中心通报", "责令书面检查，扣减考核分",
                                                                   "约谈窗口负责人，限期整改"])}
            concluded.append((t, no, dept))
        else:
            body2 = {"substantiated": False, "action": "向投诉人解释说明"}
        at(t, lambda no=no, b=body2: svc.act_on_complaint(no, "conclude", b, DESK))

    # -- notices: 12 from audits, anomalies and complaints, 8 from the 4 inspection rounds -----------
    sizes = [2] * NOTICES
    for _ in range(PROBLEMS - 2 * NOTICES):
        sizes[rng.randrange(NOTICES)] += 1
    round_days = [date(2008, 4, 15), date(2008, 6, 17), date(2008, 9, 9), date(2008, 11, 11)]
    plain_days = [date(2008, m, d) for m, d in ((2, 26), (3, 18), (4, 22), (5, 20), (6, 24), (7, 15), (7, 29),
                                                   (8, 19), (9, 23), (10, 21), (11, 4), (11, 18))]
    departments = sorted({s.attrs["department"] for s in staff})
    plans: list[tuple[datetime, str, dict[str, Any] | None, list[str]]] = []
    for r, day in enumerate(round_days, 1):
        for k in range(2):
            inspector, inspected = rng.sample(TIER_CENTERS, 2)
            plans.append((_moment(cal, day, rng), f"HC2008-{r}-{k + 1}",
                          {"round": f"2008-{r}", "inspector": inspector, "inspected": inspected}, ["inspection"]))
    for day in plain_days:
        plans.append((_moment(cal, day, rng), "", None, ["audit", "anomaly", "complaint"]))
    plans.sort(key=lambda p: p[0])
    sent_back = set(rng.sample(range(PROBLEMS), 5))
    reported_late = set(rng.sample(sorted(set(range(PROBLEMS)) - sent_back), 2))
    k = 0
    for n, ((issued, label, inspection, sources), size) in enumerate(zip(plans, sizes), 1):
        no = label or f"DC2008-{n:02d}"
        dept = rng.choice(departments)
        problems = []
        for _ in range(size):
            source = rng.choice(sources)
            ref = None
            if source == "complaint":
                done = [c for c in concluded if c[0] < issued]
                if done:
                    _, ref, dept = done[-1]
                else:
                    source = "audit"
            if source in ("audit", "anomaly"):
                ref = f"CDGX2008{rng.randrange(1, cases + 1):07d}"
            problems.append({"source": source, "ref": ref, "description": rng.choice(PROBLEM_TEXTS[source]),
                             "within": {"value": rng.choice([10, 15, 15]), "unit": "working_days"}})
        title = (f"第{inspection['round'][-1]}轮互查互评督察意见（{inspection['inspected']}）" if inspection
                 else f"高新区政务服务中心督察意见〔2008〕{n}号")
        body = {"notice_no": no, "department": dept, "title": title, "problems": problems, "inspection": inspection}
        at(issued, lambda body=body: svc.issue(body, OFFICER))
        dept_key = Principal(Role.DEPARTMENT, frozenset({dept}), key=f"demo-{dept}")
        for p in range(1, size + 1):
            t = _after(cal, issued, 17 if k in reported_late else rng.randrange(3, 9), rng)
            at(t, lambda no=no, p=p, d=dept_key: svc.act_on_problem(no, p, "report", {"rectification": "已按要求整改，附整改报告"}, d))
            t = _after(cal, t, 1, rng)
            if k in sent_back:
                at(t, lambda no=no, p=p: svc.act_on_problem(no, p, "send_back", {"reason": "整改材料不全，请补充"}, OFFICER))
                t = _after(cal, t, 2, rng)
                at(t, lambda no=no, p=p, d=dept_key: svc.act_on_problem(no, p, "report", {"rectification": "已补充整改材料"}, d))
                t = _after(cal, t, 1, rng)
            at(t, lambda no=no, p=p: svc.act_on_problem(no, p, "verify", {"note": "整改到位，予以销号"}, OFFICER))
            k += 1

    acts.sort(key=lambda a: (a[0], a[1]))
    warned = {"complaints": 0, "problems": 0}
    for t, _, fn in acts:
        esup.clock.set(t)
        for key, n in svc.check(t).items():  # the sweep a serving process runs on a timer
            warned[key] += n
        fn()
    end = datetime(2009, 1, 1, tzinfo=CHINA_TZ)
    for key, n in svc.check(end).items():
        warned[key] += n
    return {"acts": len(acts), "warned": warned}


def _recorded(esup: Any, aggregate_id: Any) -> bool:
    return bool(list(esup.ledger.events.get(aggregate_id, limit=1)))

"""A realistic demo district, built from the 2009 yearbook's figures for 2008 (see DOMAIN.md).

Two halls (South: 124 windows, West: 18), 15 departments, 149 items (67 licences, 82
non-licence approvals) of which 55.9% are on the spot (即办件), promised limits giving an 80%
average speed-up, and cases over the real 2008 working calendar with the seed's rates: 98%
concluded on the spot, 100% on time, 99.8% satisfied. A fixed random seed makes it repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterator

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.clock import ManualClock
from domain.organisation import UnitKind

DEPARTMENTS = [
    ("GH", "规划局"), ("GT", "国土局"), ("GS", "国税局"), ("DS", "地税局"), ("GSJ", "工商局"),
    ("ZJ", "质量技术监督局"), ("RS", "人事劳动和社会保障局"), ("JM", "经贸发展局"), ("KJ", "科技局"),
    ("TZ", "投资服务局"), ("JS", "规划建设局"), ("CZ", "财政局"), ("SY", "社会事业局"), ("CG", "城管执法局"),
    ("GH2", "工会"),
]
WEST_DEPARTMENTS = ["RS", "JM", "KJ", "TZ", "JS", "GT", "CZ", "SY", "GS", "DS", "GSJ", "ZJ", "GH"]
ITEM_NAMES = ["设立登记", "变更登记", "注销登记", "许可证核发", "许可证延续", "备案", "资质认定", "年检", "审批", "证明"]
LEGAL_DAYS = [20, 20, 20, 15, 10, 30, 45]


@dataclass
class DemoFigures:
    departments: int
    windows: int
    staff: int
    items: int
    on_the_spot_items: int


def build_district(esup: Any, rng: random.Random) -> DemoFigures:
    """Organisation and catalogue, recorded at the start of 2008."""
    ref = esup.reference
    ref.put_unit(UnitKind.CENTER, "CDGX", {"name": "成都高新区政务服务中心", "tier": "district"})
    ref.put_unit(UnitKind.HALL, "SOUTH", {"name": "南部园区政务服务大厅", "center": "CDGX"})
    ref.put_unit(UnitKind.HALL, "WEST", {"name": "西部园区政务服务大厅", "center": "CDGX"})
    for code, name in DEPARTMENTS:
        ref.put_unit(UnitKind.DEPARTMENT, code, {"name": name, "center": "CDGX"})
    kinds = ["standard", "enterprise_parallel", "construction_parallel", "intermediary", "department"]
    windows = 0
    for hall, count, depts in (("SOUTH", 124, [c for c, _ in DEPARTMENTS]), ("WEST", 18, WEST_DEPARTMENTS)):
        for i in range(count):
            dept = depts[i % len(depts)]
            ref.put_unit(UnitKind.WINDOW, f"{hall[0]}{i + 1:03d}", {
                "name": f"{hall} {i + 1}号窗口", "hall": hall, "department": dept,
                "window_kind": kinds[i % len(kinds)] if i < 40 else "department",
            })
            windows += 1
    staff_kinds = ["civil_servant", "committee_hired", "self_hired"]
    for i in range(115):
        dept = DEPARTMENTS[i % len(DEPARTMENTS)][0]
        ref.put_unit(UnitKind.STAFF, f"P{i + 1:03d}", {"name": f"工作人员{i + 1:03d}", "department": dept,
                                                        "staff_kind": staff_kinds[i % 3]})
    on_the_spot = round(149 * 0.559)
    flags = [True] * on_the_spot + [False] * (149 - on_the_spot)
    rng.shuffle(flags)
    for n in range(149):
        dept = DEPARTMENTS[n % len(DEPARTMENTS)][0]
        kind = "licence" if n < 67 else "non_licence"
        legal = rng.choice(LEGAL_DAYS)
        if flags[n]:
            promised = {"value": 0, "unit": "working_days"}
        else:
            # 55.9% of items at 100% speed-up and the rest at ~55% average out to the seed's 80%.
            promised = {"value": max(1, round(legal * 0.45)), "unit": "working_days"}
        if n == 0:  # 企业设立并联审批: promised 4 working hours
            flags[n], promised, dept = False, {"value": 4, "unit": "working_hours"}, "GSJ"
        ref.put_item(f"{dept}-{n + 1:03d}", {
            "name": ("企业设立并联审批" if n == 0 else f"{dict(DEPARTMENTS)[dept]}{ITEM_NAMES[n % len(ITEM_NAMES)]}"),
            "department": dept, "kind": kind, "on_the_spot": flags[n],
            "legal_limit": {"value": legal, "unit": "working_days"}, "promised_limit": promised,
            "fee": rng.choice([0, 0, 0, 0, 20, 50, 100]),
        })
    return DemoFigures(len(DEPARTMENTS), windows, 115, 149, sum(flags))


def case_steps(esup: Any, cases: int, rng: random.Random, year: int = 2008) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(recorded-at, step) pairs for ``cases`` cases spread over the year's working days."""
    cal: WorkingCalendar = esup.reference.calendar()
    items = esup.reference.items()
    windows = {w.code: w.attrs for w in esup.reference.units(UnitKind.WINDOW)}
    staff_by_dept: dict[str, list[str]] = {}
    for s in esup.reference.units(UnitKind.STAFF):
        staff_by_dept.setdefault(s.attrs["department"], []).append(s.code)
    windows_by_dept: dict[str, list[str]] = {}
    for code, attrs in windows.items():
        windows_by_dept.setdefault(attrs["department"], []).append(code)
    days = [d for d in (date(year, 1, 1) + timedelta(n) for n in range(366)) if d.year == year and cal.is_working_day(d)]
    per_day = max(1, cases // len(days))
    out: list[tuple[datetime, dict[str, Any]]] = []
    for n in range(cases):
        day = days[min(len(days) - 1, n // per_day)] if per_day * len(days) >= cases else rng.choice(days)
        item = rng.choice(items).current
        dept = item.department
        window = rng.choice(windows_by_dept.get(dept) or list(windows))
        staff = rng.choice(staff_by_dept.get(dept) or ["P001"])
        case_no = f"CDGX{year}{n + 1:07d}"
        start = datetime.combine(day, time(9, 0), CHINA_TZ) + timedelta(minutes=rng.randrange(0, 7 * 60))
        if start.time() >= time(12, 0) and start.time() < time(13, 30):
            start += timedelta(minutes=90)
        seq = 0
        last_recorded = start

        def step(name: str, at: datetime, data: dict[str, Any] | None = None, **extra: Any) -> None:
            nonlocal seq, last_recorded
            seq += 1
            lag = timedelta(seconds=rng.randrange(5, 300))
            if rng.random() < 0.003:
                lag = timedelta(days=rng.randrange(2, 6))  # keyed in days later: flagged as late entry
            # A source sends a case's steps in order, so their arrival times never go backwards.
            last_recorded = max(last_recorded, at + lag)
            body = {"event_id": f"{case_no}-{seq}", "case_no": case_no, "step": name,
                    "occurred_at": at.isoformat(), "department": dept, "window": window, "staff": staff, **extra}
            if data:
                body["data"] = data
            out.append((last_recorded, body))

        person = rng.random() < 0.7
        applicant = {"name": f"申请人{n % 9973:04d}", "id_number": f"5101{rng.randrange(10**13, 10**14)}",
                     "phone": f"138{rng.randrange(10**7, 10**8)}"}
        step("submitted", start, {"applicant": applicant, "applicant_kind": "person" if person else "enterprise",
                                   "channel": "window"}, item_code=item.code)
        t = start
        if rng.random() < 0.04 and not item.on_the_spot:
            t += timedelta(minutes=10)
            step("supplement_requested", t, {"materials": "营业执照复印件", "reason": "材料不全"})
            t = datetime.combine(cal.working_days_after(t.date(), 1), time(10, 0), CHINA_TZ)
            step("supplement_received", t)
        t += timedelta(minutes=rng.randrange(2, 15))
        step("accepted", t)
        if item.on_the_spot:
            # 98% concluded on the spot (当场办结); the rest get an approved one-day extension
            # (延期) and conclude the next working day, so the seed's 100% on time still holds.
            if rng.random() < 0.98:
                done = t + timedelta(minutes=rng.randrange(5, 40))
            else:
                done = datetime.combine(cal.working_days_after(t.date(), 1), time(10, 30), CHINA_TZ)
                step("extended", t + timedelta(minutes=20), {"value": 1, "unit": "working_days",
                                                             "approved_by": "中心主任", "reason": "需现场核查"})
                step("undertaken", done - timedelta(minutes=30), {"opinion": "同意"})
                step("decided", done - timedelta(minutes=10), {"granted": True})
        else:
            limit = item.promised_limit
            if limit.unit.value == "working_hours":
                span = timedelta(minutes=rng.randrange(40, 90))  # 4 hours promised, about 1 hour done
                done = t + span
            else:
                used = rng.randrange(0, max(1, limit.value))  # finish within the promise: 100% on time
                day_done = cal.working_days_after(t.date(), used) if used else t.date()
                done = datetime.combine(day_done, time(15, 0), CHINA_TZ) + timedelta(minutes=rng.randrange(0, 90))
                if done < t + timedelta(minutes=30):  # leave room for the handling steps before it
                    done = t + timedelta(minutes=30)
            mid = t + (done - t) / 3
            step("undertaken", mid, {"opinion": "拟同意"})
            if rng.random() < 0.01 and limit.unit.value == "working_days":
                susp_end = mid + (done - mid) / 4
                step("suspended", mid + timedelta(minutes=5), {"procedure": "expert_review", "reason": "专家评审"})
                step("resumed", susp_end)
            step("reviewed", mid + (done - mid) / 2, {"opinion": "同意"})
            step("decided", done - timedelta(minutes=5), {"granted": rng.random() < 0.97})
        if item.fee > 0:
            step("fee_charged", done - timedelta(minutes=2), {"amount": str(item.fee), "fee_item": "工本费"})
        step("concluded", done, {"result": "issued"})
        if rng.random() < 0.6:
            # 99.8% satisfied (1 非常满意 / 2 满意), as the seed reports.
            score = rng.choice([1, 1, 1, 2]) if rng.random() < 0.998 else rng.choice([4, 5])
            step("rated", done + timedelta(minutes=3), {"score": score})
    out.sort(key=lambda p: p[0])
    return iter(out)


def ingest_demo(esup: Any, clock: ManualClock, cases: int, seed: int = 2008, batch: int = 500,
                progress: Callable[[int], None] | None = None) -> tuple[DemoFigures, int]:
    """Build the district and ingest its cases; returns the figures and the number of steps."""
    rng = random.Random(seed)
    clock.set(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))
    figures = build_district(esup, rng)
    steps = list(case_steps(esup, cases, rng))
    for chunk in arrival_batches(steps, batch):
        clock.set(chunk[-1][0])  # a batch is recorded when its last step arrives
        esup.ingest.report([body for _, body in chunk])
        if progress:
            progress(len(chunk))
    return figures, len(steps)


def arrival_batches(steps: list[tuple[datetime, dict[str, Any]]], size: int,
                    window: timedelta = timedelta(minutes=10)) -> Iterator[list[tuple[datetime, dict[str, Any]]]]:
    """Group steps as a source would send them: at most ``size`` steps arriving within ``window``,
    so a step is recorded minutes (not days) after it arrived and only real late entries are flagged."""
    chunk: list[tuple[datetime, dict[str, Any]]] = []
    for item in steps:
        if chunk and (len(chunk) >= size or item[0] - chunk[0][0] > window):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk

"""A realistic demo district, built from the 2009 yearbook's figures for 2008 (see DOMAIN.md).

Two halls (South: 124 windows, West: 18), 15 departments, 149 items (67 licences, 82
non-licence approvals) of which 55.9% are on the spot (即办件), promised limits giving an 80%
average speed-up, and cases over the real 2008 working calendar with the seed's rates: 98%
concluded on the spot, 100% on time, 99.8% satisfied. A fixed random seed makes it repeatable.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterator

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.clock import ManualClock
from domain.organisation import UnitKind
from services.demo_people import enterprise, person, staff_name

DEPARTMENTS = [
    ("GH", "规划局"), ("GT", "国土局"), ("GS", "国税局"), ("DS", "地税局"), ("GSJ", "工商局"),
    ("ZJ", "质量技术监督局"), ("RS", "人事劳动和社会保障局"), ("JM", "经贸发展局"), ("KJ", "科技局"),
    ("TZ", "投资服务局"), ("JS", "规划建设局"), ("CZ", "财政局"), ("SY", "社会事业局"), ("CG", "城管执法局"),
    ("GH2", "工会"),
]
WEST_DEPARTMENTS = ["RS", "JM", "KJ", "TZ", "JS", "GT", "CZ", "SY", "GS", "DS", "GSJ", "ZJ", "GH"]
# The catalogue (事项目录), by department, named as such centers' published catalogues name their
# items: "L" a licence (行政许可, 67 of them), "N" a non-licence approval (82); "*" usually
# concluded on the spot (即办件; the rest of the 55.9% are drawn among the non-licences).
CATALOGUE: dict[str, list[str]] = {
    "GSJ": ["企业设立并联审批 L", "内资企业设立登记 L", "内资企业变更登记 L*", "内资企业注销登记 L", "个体工商户设立登记 L",
            "个体工商户变更登记 L*", "个体工商户注销登记 L*", "外商投资企业设立登记 L", "企业名称预先核准 N*",
            "企业年度检验 N*", "动产抵押登记 N*", "营业执照遗失补领 N*", "股权出质设立登记 N", "分支机构设立登记 L"],
    "GS": ["税务登记（国税） N", "增值税一般纳税人资格认定 L", "普通发票领购 N*", "增值税专用发票最高开票限额审批 L",
           "税收减免审批（国税） L", "出口货物退（免）税认定 N", "发票验旧 N*", "税务登记变更（国税） N*", "代开增值税专用发票 N*",
           "延期申报核准 N", "外出经营活动税收管理证明 N*"],
    "DS": ["税务登记（地税） N*", "地方税种核定 N*", "个人所得税完税证明开具 N*", "房产税减免审批 L", "地税发票领购 N*",
           "契税征收 N*", "印花税核定 N*", "代开建筑业发票 N*", "城镇土地使用税减免审批 L", "延期缴纳税款审批 L",
           "税务登记注销（地税） N"],
    "RS": ["社会保险登记 N*", "劳动合同备案 N*", "就业失业登记 N*", "外国人就业许可 L", "职业介绍机构设立许可 L",
           "特殊工时制度审批 L", "养老保险关系转移接续 N*", "引进人才落户审批 N", "劳务派遣经营许可 L", "社会保障卡申领 N*",
           "工伤认定 N", "失业保险金申领 N*", "招聘会举办审批 L"],
    "ZJ": ["组织机构代码证办理 N*", "组织机构代码证年检 N*", "工业产品生产许可证核发 L", "计量器具强制检定 N",
           "特种设备使用登记 L", "食品生产许可证核发 L", "锅炉压力容器安装告知 N*", "产品标准备案 N*", "制造计量器具许可 L",
           "检验检测机构资质认定 L"],
    "SY": ["民办学校设立审批 L", "医疗机构执业许可 L", "公共场所卫生许可 L", "餐饮服务许可证核发 L", "生育服务证办理 N*",
           "社会团体成立登记 L", "民办非企业单位成立登记 L", "结婚登记 N*", "最低生活保障审批 N", "残疾人证办理 N*",
           "医师执业注册 L", "药品零售企业许可 L", "文化娱乐场所经营许可 L", "网吧经营许可初审 L"],
    "JS": ["建筑工程施工许可证核发 L", "建设工程质量监督登记 N*", "建设工程安全监督登记 N*", "建设工程竣工验收备案 N",
           "商品房预售许可 L", "建筑业企业资质核准 L", "房屋拆迁许可 L", "施工图设计文件审查备案 N", "房屋权属登记 L",
           "商品房买卖合同备案 N*", "物业服务企业资质核准 L"],
    "GH": ["建设用地规划许可证核发 L", "建设工程规划许可证核发 L", "建设项目选址意见书核发 L", "临时建设工程规划许可 L",
           "建设工程规划条件核实 L", "规划设计条件书核发 N", "建筑设计方案审查 N", "门牌号码编制 N*", "规划许可证遗失补办 N*"],
    "GT": ["建设用地审批 L", "国有土地使用权出让 L", "土地初始登记 L", "土地使用权变更登记 L*", "土地抵押登记 N*",
           "临时用地审批 L", "集体土地所有权登记 N", "土地权属证明开具 N*", "宗地图查询 N*"],
    "JM": ["企业投资项目备案 N*", "对外贸易经营者备案登记 N*", "外商投资企业合同章程审批 L", "成品油零售经营资格初审 L",
           "酒类商品零售许可 L*", "再生资源回收经营者备案 N*", "加工贸易业务批准证 L", "原产地证书签发 N*", "企业投资项目核准 L"],
    "KJ": ["高新技术企业认定初审 N", "技术合同认定登记 N*", "软件企业认定初审 N", "科技计划项目立项 N", "民营科技企业认定 N*",
           "科技型中小企业创新基金申报 N", "孵化器入驻审核 N", "专利资助申请 N*"],
    "TZ": ["投资项目联合审批 N", "企业入驻登记 N*", "项目投资协议备案 N*", "投资企业服务登记 N*", "重大项目代办 N",
           "外资项目信息报告 N*", "项目用地预审代办 N", "招商引资项目奖励审核 N"],
    "CZ": ["政府采购方式审批 L", "行政事业性收费票据领购 N*", "会计从业资格证书办理 N*", "代理记账机构设立审批 L",
           "国有资产产权登记 N*", "财政专项资金拨付审核 N", "会计人员继续教育登记 N*"],
    "CG": ["城市道路挖掘许可 L", "户外广告设置审批 L", "临时占用城市道路审批 L*", "建筑垃圾处置核准 L", "城市绿地占用审批 L",
           "门头招牌设置审批 L*", "砍伐城市树木审批 L", "夜间施工许可 L*", "市政设施临时占用审批 L"],
    "GH2": ["工会法人资格登记 N*", "基层工会成立登记 N*", "困难职工帮扶申请 N", "工会经费拨缴 N*", "职工互助保障参保 N*",
            "劳动争议调解申请 N"],
}
# Promises counted in working hours (工作小时): the seed's 4-hour enterprise setup, and a few
# items such centers promise within hours. The live hall's yellow and red cards come from these.
HOURS_PROMISED = {"企业设立并联审批": 4, "个体工商户设立登记": 2, "税务登记（国税）": 2, "特种设备使用登记": 3, "医师执业注册": 2}
# How busy each department's windows are (enterprise registration and the two tax offices carry
# most of a hi-tech zone's traffic), and how much of a promise it typically uses.
DEPT_WEIGHT = {"GSJ": 22, "GS": 14, "DS": 13, "RS": 12, "ZJ": 8, "SY": 7, "JS": 5, "GH": 3.5, "GT": 3.5, "JM": 3,
               "KJ": 2.5, "TZ": 2, "CZ": 1.5, "CG": 2, "GH2": 0.5}
DEPT_PACE = {"GSJ": 0.25, "GS": 0.3, "DS": 0.3, "RS": 0.45, "ZJ": 0.5, "SY": 0.6, "JS": 0.85, "GH": 0.75, "GT": 0.7,
             "JM": 0.4, "KJ": 0.55, "TZ": 0.35, "CZ": 0.4, "CG": 0.65, "GH2": 0.3}
LEGAL_DAYS = [20, 20, 20, 15, 10, 30, 45]


@dataclass
class DemoFigures:
    departments: int
    windows: int
    staff: int
    items: int
    on_the_spot_items: int


def catalogue_entries() -> list[tuple[str, str, str, bool]]:
    """(item code, name, kind, usually on the spot) in catalogue order."""
    out = []
    for dept, entries in CATALOGUE.items():
        for k, entry in enumerate(entries, 1):
            name, marks = entry.rsplit(" ", 1)
            out.append((f"{dept}-{k:03d}", name, "licence" if marks[0] == "L" else "non_licence", "*" in marks))
    return out


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
    for hall, hall_name, count, depts in (("SOUTH", "南区", 124, [c for c, _ in DEPARTMENTS]),
                                          ("WEST", "西区", 18, WEST_DEPARTMENTS)):
        for i in range(count):
            dept = depts[i % len(depts)]
            ref.put_unit(UnitKind.WINDOW, f"{hall[0]}{i + 1:03d}", {
                "name": f"{hall_name}{i + 1}号窗口", "hall": hall, "department": dept,
                "window_kind": kinds[i % len(kinds)] if i < 40 else "department",
            })
            windows += 1
    staff_kinds = ["civil_servant", "committee_hired", "self_hired"]
    for i in range(115):
        dept = DEPARTMENTS[i % len(DEPARTMENTS)][0]
        ref.put_unit(UnitKind.STAFF, f"P{i + 1:03d}", {"name": staff_name(rng), "department": dept,
                                                        "staff_kind": staff_kinds[i % 3]})
    entries = catalogue_entries()
    # 55.9% on the spot (the seed): the items marked so, then non-licences drawn at random.
    wanted = round(len(entries) * 0.559)
    marked = [n for n, e in enumerate(entries) if e[3]]
    others = [n for n, e in enumerate(entries) if not e[3] and e[2] == "non_licence" and e[1] not in HOURS_PROMISED]
    rng.shuffle(others)
    spot = set(marked + others[:max(0, wanted - len(marked))])
    for n, (code, name, kind, _) in enumerate(entries):
        legal = rng.choice(LEGAL_DAYS)
        if n in spot:
            promised = {"value": 0, "unit": "working_days"}
        elif name in HOURS_PROMISED:
            promised = {"value": HOURS_PROMISED[name], "unit": "working_hours"}
        else:
            # 55.9% of items at 100% speed-up and the rest at ~55% average out to the seed's 80%.
            promised = {"value": max(1, round(legal * 0.45)), "unit": "working_days"}
        ref.put_item(code, {
            "name": name, "department": code.rsplit("-", 1)[0], "kind": kind, "on_the_spot": n in spot,
            "legal_limit": {"value": legal, "unit": "working_days"}, "promised_limit": promised,
            "fee": rng.choice([0, 0, 0, 0, 20, 50, 100]) if kind == "licence" else rng.choice([0, 0, 0, 0, 0, 10]),
        })
    return DemoFigures(len(DEPARTMENTS), windows, 115, len(entries), len(spot))


def item_weights(items: list[Any]) -> tuple[list[Any], list[float]]:
    """Items in force with how often each is applied for: by department (``DEPT_WEIGHT``), and
    within one the catalogue's first items (its everyday business) more than its last."""
    by_dept: dict[str, list[Any]] = {}
    for item in items:
        by_dept.setdefault(item.department, []).append(item)
    out, weights = [], []
    for dept, group in sorted(by_dept.items()):
        group.sort(key=lambda i: i.code)
        shares = [1 / (k + 1) ** 0.7 for k in range(len(group))]
        total = sum(shares)
        for item, share in zip(group, shares):
            out.append(item)
            weights.append(DEPT_WEIGHT.get(dept, 1.0) * share / total)
    return out, weights


def case_steps(esup: Any, cases: int, rng: random.Random, year: int = 2008) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(recorded-at, step) pairs for ``cases`` cases spread over the year's working days."""
    out: list[tuple[datetime, dict[str, Any]]] = []
    for _, steps in _generated_cases(esup, cases, rng, year):
        out.extend(steps)
    out.sort(key=lambda p: p[0])
    return iter(out)


def stream_case_steps(esup: Any, cases: int, rng: random.Random, year: int = 2008,
                      keep: Callable[[list[tuple[datetime, dict[str, Any]]]], bool] | None = None,
                      ) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """``case_steps`` without holding the year in memory: the same steps in the same order (for
    the same seed), yielded as they become final. Cases are generated day by day (each starts on
    its day, after midnight), so every step recorded before the next day begins can go out; only
    the open cases' later steps wait in a heap. ``keep(steps)`` may leave a case out (its steps
    in generation order). When the cases outnumber what the days hold evenly the generator draws
    their days at random, and this falls back to ``case_steps``."""
    import heapq

    days = working_days(esup.reference.calendar(), year)
    if max(1, cases // len(days)) * len(days) < cases:  # days drawn at random: no order to stream in
        out = [pair for _, steps in _generated_cases(esup, cases, rng, year) if keep is None or keep(steps)
               for pair in steps]
        out.sort(key=lambda p: p[0])
        yield from out
        return
    heap: list[tuple[datetime, int, dict[str, Any]]] = []
    n = 0
    for day, steps in _generated_cases(esup, cases, rng, year):
        assert day is not None
        boundary = datetime.combine(day, time(0, 0), CHINA_TZ)
        while heap and heap[0][0] < boundary:
            recorded, _, body = heapq.heappop(heap)
            yield recorded, body
        if keep is not None and not keep(steps):
            n += len(steps)  # the same tie-break positions as in case_steps' stable sort
            continue
        for recorded, body in steps:
            heapq.heappush(heap, (recorded, n, body))
            n += 1
    while heap:
        recorded, _, body = heapq.heappop(heap)
        yield recorded, body


def working_days(cal: WorkingCalendar, year: int) -> list[date]:
    return [d for d in (date(year, 1, 1) + timedelta(n) for n in range(366)) if d.year == year and cal.is_working_day(d)]


def _generated_cases(esup: Any, cases: int, rng: random.Random, year: int = 2008,
                     ) -> Iterator[tuple[date | None, list[tuple[datetime, dict[str, Any]]]]]:
    """Each case's day (None when days are drawn at random) and its (recorded-at, step) pairs,
    in generation order."""
    cal: WorkingCalendar = esup.reference.calendar()
    items, weights = item_weights([i.current for i in esup.reference.items()])
    cum = list(itertools.accumulate(weights))
    windows = {w.code: w.attrs for w in esup.reference.units(UnitKind.WINDOW)}
    staff_by_dept: dict[str, list[str]] = {}
    for s in esup.reference.units(UnitKind.STAFF):
        staff_by_dept.setdefault(s.attrs["department"], []).append(s.code)
    windows_by_dept: dict[str, list[str]] = {}
    for code, attrs in windows.items():
        windows_by_dept.setdefault(attrs["department"], []).append(code)
    days = working_days(cal, year)
    per_day = max(1, cases // len(days))
    in_order = per_day * len(days) >= cases
    for n in range(cases):
        day = days[min(len(days) - 1, n // per_day)] if in_order else rng.choice(days)
        out: list[tuple[datetime, dict[str, Any]]] = []
        item = rng.choices(items, cum_weights=cum)[0]
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

        person_kind = rng.random() < 0.7
        applicant = person(rng, day) if person_kind else enterprise(rng, day)
        step("submitted", start, {"applicant": applicant, "applicant_kind": "person" if person_kind else "enterprise",
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
                # Within the promise (the seed's 100% on time), some departments nearer its end.
                used = min(limit.value - 1, int(limit.value * DEPT_PACE.get(dept, 0.5) * 1.8 * rng.random()))
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
            if score <= 2 and rng.random() < DEPT_PACE.get(dept, 0.5) / 3:
                score = 2  # slower departments are rated 满意 rather than 非常满意 more often
            step("rated", done + timedelta(minutes=3), {"score": score})
        yield (day if in_order else None), out


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

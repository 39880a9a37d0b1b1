"""The demo's parallel-approval channels (并联审批) and three tiers (三级政务), from the seed.

Channels (reference data) and their 2008 history to the end of November (截止11月):

* 企业设立并联审批 (``QYSL``): promised 4 working hours; 1,566 enterprises set up, each a bundle
  of four parts handled at the same time (工商 内资企业设立登记, 质监 组织机构代码, 国税 and 地税
  税务登记), done in about an hour.
* 项目报建并联审批 (``XMBJ``): promised 17 working days (68 one after another, the legal limit
  given the bundle); 150 enterprises, 295 projects, 2,951 items (parts) in the planning, land
  and construction departments; each part concluded within its own promise, the bundle within
  its 17 days, and the working days saved (the parts' promised limits one after another, less
  the days the bundle used) add up to more than 15,000.

Tiers: the district center gets its third and fourth halls; 5 street centers (街道社会事务服务中心)
and 11 community centers (社区便民服务中心), each with a hall, windows and the items delegated to
it (enterprise items at the district, personal and convenience items at streets and
communities), and a year of personal cases at their windows.

Every figure printed (``channel_table``) is computed from the events, through the bundle view.
``scale`` shrinks the volumes (tests); the seed's figures are ``scale=1``.
"""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, time, timedelta
from typing import Any, Callable

from domain.calendar import CHINA_TZ, WorkingCalendar
from domain.clock import ManualClock
from domain.organisation import UnitKind
from services.demo import arrival_batches
from services.demo_people import enterprise, person
from services.ingest import SYSTEM

SEED_CHANNELS = {"enterprises_set_up": 1566, "projects_enterprises": 150, "projects": 295, "project_items": 2951,
                 "working_days_saved": 15000}
SETUP_PARTS = ["GSJ-002", "ZJ-001", "GS-001", "DS-001"]  # 内资企业设立登记, 组织机构代码, 国税/地税 税务登记
# Construction-project items the channel may take, in the planning, land and construction departments.
PROJECT_CANDIDATES = ["GH-001", "GH-002", "GH-003", "GH-004", "GH-005", "GH-006", "GH-007", "GT-001", "GT-002",
                      "GT-006", "JS-001", "JS-002", "JS-003", "JS-004", "JS-008", "JM-009", "TZ-001", "CG-001"]
STREETS = [("FCJ", "芳草街街道社会事务服务中心"), ("ZJX", "肇家巷街道社会事务服务中心"), ("GXJ", "桂溪街道社会事务服务中心"),
           ("SYC", "石羊场街道社会事务服务中心"), ("XYJ", "西园街道社会事务服务中心")]
COMMUNITIES = [("FCJ", "芳草社区"), ("FCJ", "玉林东路社区"), ("ZJX", "肇家巷社区"), ("ZJX", "紫荆社区"), ("GXJ", "桂溪社区"),
               ("GXJ", "和平社区"), ("GXJ", "新园社区"), ("SYC", "石羊社区"), ("SYC", "新北社区"), ("XYJ", "西园社区"),
               ("XYJ", "合作社区")]
PERSONAL = ["生育服务证办理", "结婚登记", "最低生活保障审批", "残疾人证办理", "就业失业登记", "养老保险关系转移接续",
            "社会保障卡申领", "失业保险金申领", "困难职工帮扶申请"]
CONVENIENCE = ["生育服务证办理", "残疾人证办理", "就业失业登记", "社会保障卡申领"]


def _promised_days(item: Any) -> int:
    return item.promised_limit.value if item.promised_limit.unit.value == "working_days" else 0


def project_items(esup: Any, parts: int = 10, serial: int = 68) -> list[str]:
    """The construction channel's member items: ``parts`` of the candidates whose promised limits
    add up closest to the serial ``serial`` working days, then one more (a project with 11 parts)."""
    ref = esup.reference
    cands = [c for c in PROJECT_CANDIDATES if ref.item(c) is not None]
    days = {c: _promised_days(ref.item(c).current) for c in cands}
    best = min(itertools.combinations(cands, parts), key=lambda combo: (abs(sum(days[c] for c in combo) - serial), combo))
    rest = [c for c in cands if c not in best]
    return list(best) + rest[:1]


def build_channels(esup: Any) -> dict[str, Any]:
    ref = esup.reference
    ref.put_unit(UnitKind.DEPARTMENT, "ZWFW", {"name": "政务服务处（并联审批通道）", "center": "CDGX"})
    ref.put_channel("QYSL", {"name": "企业设立并联审批", "department": "ZWFW", "center": "CDGX", "items": SETUP_PARTS,
                             "promised_limit": {"value": 4, "unit": "working_hours"},
                             "legal_limit": {"value": 20, "unit": "working_days"}})
    items = project_items(esup)
    ref.put_channel("XMBJ", {"name": "项目报建并联审批", "department": "ZWFW", "center": "CDGX", "items": items,
                             "promised_limit": {"value": 17, "unit": "working_days"},
                             "legal_limit": {"value": 68, "unit": "working_days"},
                             "serial_limit": {"value": 68, "unit": "working_days"}})
    return {"QYSL": SETUP_PARTS, "XMBJ": items}


def build_tiers(esup: Any) -> dict[str, int]:
    """The district's third and fourth halls, 5 street and 11 community centers with their halls,
    windows and delegated items."""
    ref = esup.reference
    items = ref.items()
    by_name = {i.current.name: i.current for i in items}
    personal = [by_name[n].code for n in PERSONAL if n in by_name]
    convenience = [by_name[n].code for n in CONVENIENCE if n in by_name]
    enterprise_items = [i.current.code for i in items if i.current.code not in personal]
    ref.put_unit(UnitKind.CENTER, "CDGX", {"name": "成都高新区政务服务中心", "tier": "district", "items": enterprise_items})
    for code, name in (("EAST", "东部园区政务服务大厅"), ("TAXH", "办税服务大厅")):
        ref.put_unit(UnitKind.HALL, code, {"name": name, "center": "CDGX"})
        for k, dept in enumerate(("GS", "DS", "GSJ", "RS"), 1):
            ref.put_unit(UnitKind.WINDOW, f"{code[0]}{k:03d}", {"name": f"{name}{k}号窗口", "hall": code, "department": dept,
                                                               "window_kind": "department"})
    windows = 8
    for code, name in STREETS:
        ref.put_unit(UnitKind.CENTER, code, {"name": name, "tier": "street", "parent": "CDGX", "items": personal})
        ref.put_unit(UnitKind.HALL, f"{code}-H", {"name": f"{name}大厅", "center": code})
        for k, dept in enumerate(("SY", "RS", "SY", "RS"), 1):
            ref.put_unit(UnitKind.WINDOW, f"{code}-{k}", {"name": f"{name}{k}号窗口", "hall": f"{code}-H",
                                                          "department": dept, "window_kind": "standard"})
            windows += 1
    for n, (street, name) in enumerate(COMMUNITIES, 1):
        code = f"SQ{n:02d}"
        ref.put_unit(UnitKind.CENTER, code, {"name": f"{name}便民服务中心", "tier": "community", "parent": street,
                                             "items": convenience})
        ref.put_unit(UnitKind.HALL, f"{code}-H", {"name": f"{name}便民服务大厅", "center": code})
        for k, dept in enumerate(("SY", "RS"), 1):
            ref.put_unit(UnitKind.WINDOW, f"{code}-{k}", {"name": f"{name}{k}号窗口", "hall": f"{code}-H",
                                                          "department": dept, "window_kind": "standard"})
            windows += 1
    return {"district": 1, "street": len(STREETS), "community": len(COMMUNITIES), "halls": 4 + len(STREETS) + len(COMMUNITIES),
            "windows": windows}


# -- the history -----------------------------------------------------------------------------------

Action = tuple[datetime, int, str, Any]  # (recorded at, order, kind, body): kind "step", "submit", "accept"


def _office(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh), CHINA_TZ) + timedelta(minutes=mm)


def _part_steps(case_no: str, item: Any, dept: str, window: str, staff: str, accepted: datetime, done: datetime,
                applicant: dict[str, str], rng: random.Random) -> list[tuple[datetime, dict[str, Any]]]:
    out: list[tuple[datetime, dict[str, Any]]] = []

    def step(name: str, at: datetime, data: dict[str, Any] | None = None, **extra: Any) -> None:
        body = {"event_id": f"{case_no}-{len(out) + 1}", "case_no": case_no, "step": name, "occurred_at": at.isoformat(),
                "department": dept, "window": window, "staff": staff, **extra}
        if data:
            body["data"] = data
        recorded = at + timedelta(seconds=rng.randrange(5, 120))
        out.append((max(recorded, out[-1][0]) if out else recorded, body))  # a source reports in order

    step("submitted", accepted - timedelta(minutes=5), {"applicant": applicant, "applicant_kind": "enterprise",
                                                        "channel": "window"}, item_code=item.code)
    step("accepted", accepted)
    if not item.on_the_spot:
        mid = accepted + (done - accepted) / 3
        step("undertaken", mid, {"opinion": "拟同意"})
        step("reviewed", mid + (done - mid) / 2, {"opinion": "同意"})
        step("decided", done - timedelta(minutes=3), {"granted": True})
    step("concluded", done, {"result": "issued"})
    return out


def channel_actions(esup: Any, rng: random.Random, scale: float = 1.0, year: int = 2008) -> list[Action]:
    ref = esup.reference
    cal: WorkingCalendar = ref.calendar("CDGX")
    days = [d for d in (date(year, 1, 2) + timedelta(n) for n in range(340))
            if d.year == year and d.month <= 11 and cal.is_working_day(d)]
    windows: dict[str, list[str]] = {}
    for w in ref.units(UnitKind.WINDOW):
        if w.attrs.get("hall") in ("SOUTH", "WEST"):
            windows.setdefault(w.attrs["department"], []).append(w.code)
    staff: dict[str, list[str]] = {}
    for s in ref.units(UnitKind.STAFF):
        staff.setdefault(s.attrs["department"], []).append(s.code)
    channel_windows = {kind: [w.code for w in ref.units(UnitKind.WINDOW) if w.attrs.get("window_kind") == kind]
                       for kind in ("enterprise_parallel", "construction_parallel")}
    actions: list[Action] = []
    order = itertools.count()

    def add_bundle(no: str, channel: str, parts: list[tuple[str, str]], submit_at: datetime, accept_at: datetime,
                   dones: list[datetime], ent: dict[str, str], project: str | None, window: str) -> None:
        actions.append((submit_at + timedelta(seconds=20), next(order), "submit", {
            "event_id": f"{no}-sub", "bundle_no": no, "channel": channel, "occurred_at": submit_at.isoformat(),
            "parts": [c for c, _ in parts], "window": window, "enterprise": ent["id_number"], "project": project}))
        actions.append((accept_at + timedelta(seconds=20), next(order), "accept", (no, {
            "event_id": f"{no}-acc", "occurred_at": accept_at.isoformat(), "window": window})))
        for (case_no, code), done in zip(parts, dones):
            item = ref.item(code).current
            dept = item.department
            part_accept = accept_at + timedelta(minutes=rng.randrange(3, 10))
            for at, body in _part_steps(case_no, item, dept, rng.choice(windows.get(dept) or ["S001"]),
                                        rng.choice(staff.get(dept) or ["P001"]), part_accept, max(done, part_accept + timedelta(minutes=12)),
                                        ent, rng):
                actions.append((at, next(order), "step", body))

    # 企业设立并联审批: about an hour each (40 to 90 minutes), in office hours.
    n_setup = round(SEED_CHANNELS["enterprises_set_up"] * scale)
    for k in range(n_setup):
        day = days[k * len(days) // max(1, n_setup)]
        start = _office(day, rng.choice([9, 10, 14, 15]), rng.randrange(0, 40))
        accept = start + timedelta(minutes=5)
        span = timedelta(minutes=rng.randrange(40, 90))
        dones = [accept + span * rng.uniform(0.5, 1.0) for _ in SETUP_PARTS]
        dones[rng.randrange(len(dones))] = accept + span  # the last part ends the bundle
        no = f"QYSL{year}{k + 1:05d}"
        parts = [(f"{no}-{j + 1}", code) for j, code in enumerate(SETUP_PARTS)]
        add_bundle(no, "QYSL", parts, start, accept, dones, enterprise(rng, day), None,
                   rng.choice(channel_windows["enterprise_parallel"] or ["S002"]))

    # 项目报建并联审批: 295 projects of 150 enterprises, 2,951 parts.
    members = ref.channel("XMBJ").current.items
    n_items = round(SEED_CHANNELS["project_items"] * scale)
    n_proj = round(SEED_CHANNELS["projects"] * scale)
    n_ent = round(SEED_CHANNELS["projects_enterprises"] * scale)
    ents = [enterprise(rng, days[0]) for _ in range(max(1, n_ent))]
    base, extra = divmod(n_items, max(1, n_proj))  # 2,951 items over 295 projects: 10 each, one with 11
    per = [min(len(members), base + (1 if k < extra else 0)) for k in range(n_proj)]
    for k in range(n_proj):
        day = days[k * len(days) // max(1, n_proj)]
        start = _office(day, 9, rng.randrange(0, 50))
        accept = start + timedelta(minutes=10)
        codes = list(members[:per[k]])
        dones = []
        for code in codes:
            p = _promised_days(ref.item(code).current)
            used = rng.randint(max(0, p // 3), max(0, min(p - 1, 14)))
            end_day = cal.working_days_after(day, used) if used else day
            dones.append(_office(end_day, 15, rng.randrange(0, 90)) if used else accept + timedelta(hours=2))
        no = f"XMBJ{year}{k + 1:04d}"
        parts = [(f"{no}-{j + 1:02d}", code) for j, code in enumerate(codes)]
        add_bundle(no, "XMBJ", parts, start, accept, dones, ents[k % len(ents)], f"XM{year}{k + 1:04d}",
                   rng.choice(channel_windows["construction_parallel"] or ["S003"]))
    actions.sort(key=lambda a: (a[0], a[1]))
    return actions


def tier_steps(esup: Any, rng: random.Random, cases: int, year: int = 2008) -> list[tuple[datetime, dict[str, Any]]]:
    """Personal and convenience cases at the street and community centers' windows (their
    delegated items), concluded on the spot or within their promise, most rated."""
    ref = esup.reference
    cal: WorkingCalendar = ref.calendar()
    days = [d for d in (date(year, 1, 2) + timedelta(n) for n in range(364)) if d.year == year and cal.is_working_day(d)]
    centers = [c for c in ref.units(UnitKind.CENTER) if c.attrs.get("tier") in ("street", "community")]
    halls = {h.attrs.get("center"): h.code for h in ref.units(UnitKind.HALL)}
    windows: dict[str, list[Any]] = {}
    for w in ref.units(UnitKind.WINDOW):
        windows.setdefault(w.attrs.get("hall"), []).append(w)
    staff: dict[str, list[str]] = {}
    for s_ in ref.units(UnitKind.STAFF):
        staff.setdefault(s_.attrs["department"], []).append(s_.code)
    out: list[tuple[datetime, dict[str, Any]]] = []
    for n in range(cases):
        center = centers[n % len(centers)]
        items = [ref.item(c).current for c in center.attrs.get("items") or []]
        ws = windows.get(halls.get(center.code), [])
        if not items or not ws:
            continue
        window = rng.choice(ws)
        fitting = [i for i in items if i.department == window.attrs["department"]] or items
        item = rng.choice(fitting)
        dept = item.department
        day = days[n * len(days) // cases]
        start = _office(day, rng.choice([9, 10, 14, 15]), rng.randrange(0, 50))
        case_no = f"{center.code}{year}{n + 1:06d}"
        steps: list[tuple[datetime, dict[str, Any]]] = []

        def step(name: str, at: datetime, data: dict[str, Any] | None = None, **extra: Any) -> None:
            body = {"event_id": f"{case_no}-{len(steps) + 1}", "case_no": case_no, "step": name,
                    "occurred_at": at.isoformat(), "department": dept, "window": window.code, **extra}
            if data:
                body["data"] = data
            recorded = at + timedelta(seconds=rng.randrange(5, 200))
            steps.append((max(recorded, steps[-1][0]) if steps else recorded, body))  # reported in order

        step("submitted", start, {"applicant": person(rng, day), "applicant_kind": "person", "channel": "window"},
             item_code=item.code)
        accepted = start + timedelta(minutes=rng.randrange(2, 10))
        step("accepted", accepted, staff=rng.choice(staff.get(dept) or ["P001"]))
        if item.on_the_spot:
            done = accepted + timedelta(minutes=rng.randrange(5, 30))
        else:
            used = rng.randint(0, max(0, _promised_days(item) - 1))
            end_day = cal.working_days_after(day, used) if used else day
            done = _office(end_day, 15, rng.randrange(0, 60)) if used else accepted + timedelta(minutes=45)
            step("undertaken", accepted + (done - accepted) / 3, {"opinion": "拟同意"})
            step("decided", done - timedelta(minutes=3), {"granted": True})
        step("concluded", done, {"result": "issued"})
        if rng.random() < 0.6:
            step("rated", done + timedelta(minutes=2), {"score": rng.choice([1, 1, 1, 2]) if rng.random() < 0.995 else 4})
        out += steps
    out.sort(key=lambda s: s[0])
    return out


def ingest_channels_and_tiers(esup: Any, clock: ManualClock, *, scale: float = 1.0, tier_cases: int = 800,
                              seed: int = 2008, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Reference data, then the channels' bundles and the tiers' cases, in the order they were
    reported: a bundle is submitted and accepted at the channel window (``BundleService``), its
    parts' steps go through the ingest service as their departments' reports (in batches)."""
    rng = random.Random(seed * 7 + 1)
    clock.set(datetime(2008, 1, 1, 8, 30, tzinfo=CHINA_TZ))
    build_channels(esup)
    tiers = build_tiers(esup)
    actions = channel_actions(esup, rng, scale)
    actions += [(at, -1, "step", body) for at, body in tier_steps(esup, rng, tier_cases)]
    actions.sort(key=lambda a: (a[0], a[1]))
    pending: list[tuple[datetime, dict[str, Any]]] = []

    def flush() -> None:
        for chunk in arrival_batches(pending, 500):
            clock.set(chunk[-1][0])
            esup.ingest.report([b for _, b in chunk])
            if progress:
                progress(len(chunk))
        pending.clear()

    for at, _, kind, body in actions:
        if kind == "step":
            pending.append((at, body))
            continue
        flush()
        clock.set(at)
        if kind == "submit":
            esup.bundles.submit(body, SYSTEM)
        else:
            esup.bundles.accept(body[0], body[1], SYSTEM)
    flush()
    return {"tiers": tiers}


def channel_table(esup: Any) -> list[tuple[str, str, str]]:
    """(label, the seed's figure, the figure from the events) for the two channels."""
    from projections import bundles as view

    esup.runner.catch_up(["bundles"])
    with esup.views.read() as cur:
        rows = {r["channel"]: r for r in view.channel_metrics(cur, "2008-01-01", "2008-11-30")}
    q, x = rows.get("QYSL", {}), rows.get("XMBJ", {})

    def n(v: Any) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"

    hours = q.get("average_hours")
    return [
        ("企业设立 enterprises set up", "1,566", n(q.get("concluded"))),
        ("平均办理时间 average time", "约1小时 ~1 h", f"{hours:.2f} h" if hours is not None else "-"),
        ("  承诺 promised", "4 工作小时", f"{q.get('promised_limit', {}).get('value', '-')} 工作小时"),
        ("项目报建 enterprises", "150", n(x.get("enterprises"))),
        ("项目 projects", "295", n(x.get("projects"))),
        ("办理事项 items", "2,951", n(x.get("parts"))),
        ("节省工作日 working days saved", "15,000+", n(x.get("working_days_saved"))),
        ("  承诺 promised", "17 (原68) 工作日", f"{x.get('promised_limit', {}).get('value', '-')} 工作日"),
        ("  平均用时 average used", "-", f"{x['average_working_days']} 工作日" if x.get("average_working_days") is not None else "-"),
        ("  按时 on time", "100%", f"{x.get('on_time_rate')}%"),
    ]

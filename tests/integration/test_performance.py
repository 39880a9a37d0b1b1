"""Performance figures (绩效) from the performance view: every formula as a specification, on
SQLite and PostgreSQL, and the view agreeing with the full-scan reference on the demo."""

from __future__ import annotations

import pytest

from domain.organisation import UnitKind
from services.figures import headline
from services.metrics import Metrics, MetricsQuery
from tests.integration.test_anomalies import st, sub
from tests.integration.test_ledger import run_demo
from tests.unit.test_case import at


def figures(esup, **q):
    esup.runner.catch_up()
    return Metrics(esup).figures(MetricsQuery(**q))


def rows(result) -> dict:
    return {r["key"]: r for r in result["rows"]}


@pytest.fixture
def cases(district, clock):
    """Seven cases with hand-checked figures (2008 National Day: 29 Sep - 5 Oct off, 27 and 28
    Sep worked)."""
    ref = district.reference
    ref.put_unit(UnitKind.CENTER, "CT", {"name": "测试中心", "tier": "district"})
    ref.put_unit(UnitKind.HALL, "H1", {"name": "一号大厅", "center": "CT"})
    ref.put_unit(UnitKind.WINDOW, "W01", {"name": "1号窗口", "hall": "H1", "department": "GS"})
    clock.set(at("2008-10-20 12:00"))
    district.ingest.report([
        # C1: accepted Fri 26 Sep by P2, concluded Tue 7 Oct: 4 working days used of 20 (legal) and
        # 5 (promised): on time, early, actual speed-up 80%, 16 working days saved.
        sub("C1", when="2008-09-26T09:00:00+08:00") | {"window": "W01"},
        st("C1", "accepted", "2008-09-26T09:00:00+08:00", staff="P2"),
        st("C1", "concluded", "2008-10-07T15:00:00+08:00", result="issued"),
        st("C1", "rated", "2008-10-07T15:10:00+08:00", score=1),
        # C2: accepted Mon 6 Oct, suspended 7 to 9 Oct (2 working days not counted), concluded
        # Wed 15 Oct: 7 working days elapsed, 5 used: on time (due end of 15 Oct), not early.
        sub("C2", when="2008-10-06T09:00:00+08:00"),
        st("C2", "accepted", "2008-10-06T09:00:00+08:00"),
        st("C2", "suspended", "2008-10-07T10:00:00+08:00", procedure="inspection"),
        st("C2", "resumed", "2008-10-09T10:00:00+08:00"),
        st("C2", "concluded", "2008-10-15T10:00:00+08:00", result="issued"),
        st("C2", "rated", "2008-10-15T10:10:00+08:00", score=3),
        # S1, S2: on-the-spot items (即办件); S1 concluded the same day, S2 the next (worked) day.
        sub("S1", item="GS-002"), st("S1", "accepted", "2008-09-26T09:05:00+08:00"),
        st("S1", "concluded", "2008-09-26T09:30:00+08:00", result="issued"),
        st("S1", "rated", "2008-09-26T09:35:00+08:00", score=4),
        sub("S2", item="GS-002"), st("S2", "accepted", "2008-09-26T09:05:00+08:00"),
        st("S2", "concluded", "2008-09-27T10:00:00+08:00", result="issued"),
        st("S2", "rated", "2008-09-27T10:05:00+08:00", score=2),
        # D1: promised 4 working hours, done in 1.5: early; its limits count different units, so
        # it has no promised speed-up.
        sub("D1", item="DS-001", dept="DS"), st("D1", "accepted", "2008-09-26T09:00:00+08:00", dept="DS"),
        st("D1", "concluded", "2008-09-26T10:30:00+08:00", dept="DS", result="issued"),
        sub("R1"), st("R1", "refused", "2008-09-26T09:30:00+08:00", reason="材料不符合法定形式"),
        sub("W1"), st("W1", "withdrawn", "2008-09-26T09:30:00+08:00"),
    ])
    return district


def test_every_formula_over_the_whole_period(cases):
    t = figures(cases)["total"]
    assert (t["volume"], t["concluded"], t["refused"], t["withdrawn"]) == (7, 5, 1, 1)
    assert (t["on_time"], t["on_time_rate"], t["overdue"]) == (4, 80.0, 1)  # S2 missed its same-day promise
    assert (t["spot_concluded"], t["spot_same_day"], t["on_the_spot_completion_rate"]) == (2, 1, 50.0)
    assert (t["early"], t["early_completion_rate"]) == (2, 40.0)  # C1 and D1
    # (15/20 for the four GS-001 cases, 5/5 for the two on-the-spot ones) / 6; D1 has none.
    assert t["promised_speed_up"] == 83.3
    # (legal - used) / legal: C1 16/20, C2 15/20, S1 5/5, S2 4/5, D1 20/20.
    assert t["actual_speed_up"] == 87.0
    assert t["working_days_saved"] == 60 and t["avg_working_days_used"] == 2.0
    assert t["avg_handling_hours"] == round((270 + 9 * 24 + 1 + 0.4167 + 24.9167 + 1.5) / 5, 2)
    assert (t["rated"], t["rating_rate"], t["score_4"]) == (4, 80.0, 1)
    assert (t["satisfied"], t["satisfaction_rate"]) == (3, 75.0)  # 1, 2 and 3 (基本满意) count by default
    assert (t["complaints"], t["complaint_rate"]) == (0, 0.0)
    assert "投诉率 = complaints / concluded" in figures(cases)["notes"]["complaints"]
    # The catalogue: GS-002 is the one on-the-spot item of three.
    assert (t["catalogue_items"], t["on_the_spot_items"], t["on_the_spot_share"]) == (3, 1, 33.3)


def test_whether_basic_satisfaction_counts_is_configuration(cases, monkeypatch):
    assert figures(cases, satisfied=(1, 2))["total"]["satisfaction_rate"] == 50.0
    from services.metrics import default_satisfied

    monkeypatch.setenv("ESUP_SATISFIED_SCORES", "1,2")
    assert default_satisfied() == (1, 2)


def test_each_figure_counts_on_its_own_day(cases):
    # October: C2 was received, C1 and C2 were concluded and rated.
    t = figures(cases, day_from="2008-10-01", day_to="2008-10-31")["total"]
    assert (t["volume"], t["concluded"], t["on_time"], t["rated"], t["satisfied"]) == (1, 2, 2, 2, 2)
    by_day = rows(figures(cases, group_by="day"))
    assert by_day["2008-09-26"]["volume"] == 6 and by_day["2008-09-26"]["concluded"] == 2  # S1, D1
    assert by_day["2008-09-27"]["overdue"] == 1 and by_day["2008-10-06"]["volume"] == 1
    assert by_day["2008-10-15"]["concluded"] == 1 and by_day["2008-10-15"]["volume"] == 0


def test_groupings_department_item_window_hall_center_staff(cases):
    dept = rows(figures(cases, group_by="department"))
    assert set(dept) == {"GS", "DS"} and dept["GS"]["volume"] == 6 and dept["DS"]["early"] == 1
    assert dept["GS"]["name"] == "工商局" and dept["GS"]["on_the_spot_share"] == 50.0
    assert dept["GS"]["catalogue_promised_speed_up"] == 87.5 and dept["DS"]["on_the_spot_share"] == 0.0
    item = rows(figures(cases, group_by="item"))
    assert item["GS-002"]["on_the_spot_completion_rate"] == 50.0 and item["GS-002"]["on_the_spot_share"] == 100.0
    assert rows(figures(cases, group_by="window"))["W01"]["volume"] == 1
    hall = rows(figures(cases, group_by="hall"))
    assert hall["H1"]["volume"] == 1 and hall[None]["volume"] == 6 and hall["H1"]["name"] == "一号大厅"
    center = rows(figures(cases, group_by="center"))
    assert center["CT"]["volume"] == 1 and center["CT"]["on_the_spot_share"] == 50.0  # GS has a window in it
    staff = rows(figures(cases, group_by="staff"))
    assert staff["P2"]["volume"] == 1 and staff["P1"]["volume"] == 6  # C1 counts for who accepted it
    # Groups add up to the total.
    total = figures(cases)["total"]
    for g in ("department", "item", "window", "hall", "center", "staff", "day"):
        assert sum(r["volume"] for r in figures(cases, group_by=g)["rows"]) == total["volume"], g


def test_a_department_sees_only_its_own_cases(cases):
    t = figures(cases, departments=frozenset({"DS"}))["total"]
    assert (t["volume"], t["catalogue_items"]) == (1, 1)


def test_the_view_agrees_with_the_full_scan_on_the_demo(esup, clock):
    run_demo(esup, clock, 600)
    reference = headline(esup.ledger)
    result = figures(esup, group_by="center")
    assert len(result["rows"]) == 1 and result["rows"][0]["key"] == "CDGX"
    view = result["total"]
    for key in ("volume", "concluded", "on_time_rate", "on_the_spot_completion_rate", "overdue",
                "satisfaction_rate", "promised_speed_up"):
        assert view[key] == reference[key], key
    assert view["volume"] == 600 and view["on_time_rate"] == 100.0
    # The catalogue share is the demo district's 55.9%-ish of on-the-spot items.
    items = esup.reference.items()
    assert view["on_the_spot_share"] == round(100 * sum(i.current.on_the_spot for i in items) / len(items), 1)
    # Rebuilding the view from the log gives the same figures.
    esup.runner.rebuild(["performance"])
    assert figures(esup, group_by="center")["total"] == view


def test_esup_demo_ends_with_the_seeds_table_from_the_view(tmp_path, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("ESUP_DATA_DIR", str(tmp_path / "demo"))
    # With the live hall's recent days (overdue and late cases among them) the table stays 2008's.
    assert main(["demo", "--cases", "150", "--recent-days", "1", "--recent-per-day", "40", "--channel-scale", "0.01",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("the seed's table"):].splitlines()
    assert [line.split()[0] for line in table[2:9]] == ["办件量", "当场办结率", "按时办结率", "承诺提速率", "超时件", "满意率", "即办件比例"]
    assert table[2].split()[-1] == "150" and table[4].split()[-1] == "100.0%" and table[9].startswith("live hall:")


def test_esup_demo_prints_the_oversight_and_assessment_figures_from_the_events(tmp_path, monkeypatch, capsys):
    """The yearbook's 2008 oversight (20 notices, 50+ problems rectified, 4 rounds of mutual
    inspection) and the assessment (115 staff, 24 优秀, the rest 称职), from the demo's events."""
    from api.cli import main

    monkeypatch.setenv("ESUP_DATA_DIR", str(tmp_path / "demo"))
    assert main(["demo", "--cases", "150", "--no-live", "--quiet"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("oversight and the annual assessment"):].splitlines()
    demo = {line.split()[0]: line.split()[-1] for line in table[2:]}
    assert demo["督察意见"] == "20" and demo["互查互评"] == "4" and demo["考核人数"] == "115"
    import re

    rectified, listed = re.search(r"整改落实问题.*50余项\s+(\d+) / (\d+)", out).groups()
    assert int(rectified) == int(listed) > 50
    assert re.search(r"投诉 complaints.*-\s+36 \(9\)", out)
    assert (demo["优秀"], demo["称职"], demo["基本称职"], demo["不称职"]) == ("24", "91", "0", "0")
    # The yearbook's table itself is as it was, and comes first.
    seed = out[out.index("the seed's table"):].splitlines()
    assert [line.split()[0] for line in seed[2:9]] == ["办件量", "当场办结率", "按时办结率", "承诺提速率", "超时件", "满意率", "即办件比例"]
    assert out.index("the seed's table") < out.index("oversight and the annual assessment")
    # esup assessment: the same grades, the workbook, and the recomputation from the whole log agrees.
    assert main(["assessment", "2008", "--check", "--xlsx", str(tmp_path / "a.xlsx")]) == 0
    printed = capsys.readouterr().out
    assert "115 staff assessed, 优秀 quota 24: 优秀 24, 称职 91" in printed and "identical" in printed
    assert (tmp_path / "a.xlsx").stat().st_size > 0

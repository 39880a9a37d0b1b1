"""``esup demo``'s parallel-approval channels and three tiers: a short version of the seed's
figures (``--channel-scale 0.02``); the full ones are ``esup demo`` (README: 1,566 enterprises
set up in about an hour, 150 enterprises, 295 projects, 2,951 items, more than 15,000 working
days saved)."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.clock import ManualClock
from infra.settings import Settings
from projections import bundles as view
from services.demo_channels import SEED_CHANNELS
from services.system import Esup
from services.tiers import center_figures

SCALE = 0.02


def test_esup_demo_prints_the_channel_figures_from_the_events_beside_the_yearbook_table(tmp_path, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("ESUP_DATA_DIR", str(tmp_path / "demo"))
    assert main(["demo", "--cases", "80", "--channel-scale", str(SCALE), "--tier-cases", "120", "--no-live",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    channels = out[out.index("parallel approval (并联审批)"):out.index("the seed's table")].splitlines()
    demo = {line.split()[0]: line.split()[-1] for line in channels[2:] if line.strip() and not line.startswith("three")}
    # The yearbook's table is still the 2008 sample's (80 cases), not the channels' parts.
    table = out[out.index("the seed's table"):].splitlines()
    assert table[2].split()[-1] == "80" and table[4].split()[-1] == "100.0%"

    esup = Esup.open(Settings.from_env(), ManualClock(datetime(2008, 12, 31, tzinfo=timezone.utc)))
    try:
        esup.runner.catch_up()
        with esup.views.read() as cur:
            rows = {r["channel"]: r for r in view.channel_metrics(cur)}
            bundles = view.list_bundles(cur, now=esup.clock.now(), limit=1000)
        setup, project = rows["QYSL"], rows["XMBJ"]
        # Volumes: the seed's, scaled; every bundle concluded with all its parts, none late.
        assert setup["concluded"] == round(SEED_CHANNELS["enterprises_set_up"] * SCALE) == int(demo["企业设立"])
        assert project["projects"] == round(SEED_CHANNELS["projects"] * SCALE) == int(demo["项目"])
        assert project["enterprises"] == round(SEED_CHANNELS["projects_enterprises"] * SCALE) == int(demo["项目报建"])
        assert project["parts"] == round(SEED_CHANNELS["project_items"] * SCALE) == int(demo["办理事项"])
        assert setup["parts"] == 4 * setup["volume"]
        assert all(b["status"] == "concluded" and not b["late"] for b in bundles)
        assert len(bundles) == setup["volume"] + project["volume"]
        # About an hour each under the 4-hour promise; projects within 17 working days, each
        # saving the parts' serial limits less the days it used (> 15,000 / 295 a project).
        assert 0.75 <= setup["average_hours"] <= 1.25 and demo["平均办理时间"] == "h"
        assert project["average_working_days"] < 17 and project["on_time_rate"] == 100.0
        assert project["working_days_saved"] > SEED_CHANNELS["working_days_saved"] * project["projects"] / 295
        assert f"{project['working_days_saved']:,.0f}" == demo["节省工作日"]
        # Each bundle's parts are real cases, in several departments.
        b = next(b for b in bundles if b["channel"] == "XMBJ")
        assert len({p["department"] for p in b["parts"]}) >= 3
        assert all(esup.cases.current(p["case_no"]).status == "concluded" for p in b["parts"])
        # The three tiers: 1 + 5 + 11 centers, the street and community ones with their own cases.
        figures = center_figures(esup)
        assert {t["tier"]: t["centers"] for t in figures["tiers"]} == {"district": 1, "street": 5, "community": 11}
        street = [r for r in figures["centers"] if r["tier"] == "street"]
        assert sum(r["volume"] for r in street) > 0 and all(r["delegated_items"] for r in street)
        assert sorted(r["rank"] for r in street) == [1, 2, 3, 4, 5]
    finally:
        esup.close()

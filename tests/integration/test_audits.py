"""Audits (抽查) on real stores: plan → draw at a checkpoint → redraw from the log → assign →
findings → close → reports, through the service and the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.calendar import CHINA_TZ
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

PLAN = {"title": "2008年10月 办结件抽查", "population": {"from": "2008-10-01", "to": "2008-10-31"},
        "sampling": {"n": 8}, "design": {"method": "stratified", "stratify_by": "department", "allocation": "proportional"}}


def cases(esup, first: int, count: int, day: str = "2008-10-08") -> None:
    """``count`` cases concluded on ``day``: GS licences (some charged a fee) and DS cases."""
    start = datetime.fromisoformat(day + "T09:00:00+08:00")
    steps = []
    for i in range(first, first + count):
        no, dept, item = (f"A{i:04d}", "GS", "GS-001") if i % 3 else (f"A{i:04d}", "DS", "DS-001")
        t = start + timedelta(minutes=i % 50)
        steps += [submitted(no, when=t.isoformat(), item=item, dept=dept),
                  step(no, "accepted", (t + timedelta(minutes=5)).isoformat(), dept=dept)]
        if i % 4 == 0 and dept == "GS":
            steps.append(step(no, "fee_charged", (t + timedelta(minutes=6)).isoformat(), dept=dept, amount=50))
        steps.append(step(no, "concluded", (t + timedelta(minutes=30)).isoformat(), dept=dept, result="issued"))
    esup.ingest.report(steps)


@pytest.fixture
def world(district, clock):
    clock.set(at("2008-11-03 10:00"))
    cases(district, 0, 40)
    return district


def officer(esup):
    from services.ingest import Principal
    from domain.access import Role

    return Principal(Role.OFFICER, frozenset(), "o-lead")


def test_a_draw_is_rederived_from_the_log_and_later_steps_never_change_its_population(world, clock):
    audits = world.audits
    # a case accepted in the period but not concluded when the population is fixed
    world.ingest.report([submitted("OPEN1", when="2008-10-09T09:00:00+08:00"),
                         step("OPEN1", "accepted", "2008-10-09T09:10:00+08:00")])
    a = audits.plan(PLAN, officer(world))
    drawn = audits.draw(a["id"], "纪工委 2008-11-03 公告: 7 12 33 41", officer(world))
    draw = drawn["draw"]
    assert drawn["state"] == "drawn" and drawn["population"]["size"] == 40 and len(draw["sample"]) == 8
    assert sum(s["n"] for s in draw["strata"]) == 8 and {s["key"] for s in draw["strata"]} == {"GS", "DS"}
    assert draw["probability_total"] == "8"
    cp = drawn["population"]["checkpoint"]
    fees = sum(1 for i in range(40) if i % 4 == 0 and i % 3)
    assert cp["size"] == 40 * 3 + fees + 2 and cp["note"].startswith("esup.")  # 40 cases, 3 steps each, and the fees
    first = audits.redraw(draw["id"])
    assert first["matches"] is True and all(first["checks"].values()) and first["sample"] == draw["sample"]

    # Later: more cases concluded in the same period, steps on sampled cases, a warning: the
    # recorded population is what the log held at the checkpoint, and the redraw still matches.
    clock.advance(timedelta(hours=1))
    cases(world, 40, 20, day="2008-10-20")
    world.ingest.report([step("OPEN1", "concluded", "2008-10-10T09:00:00+08:00", result="issued")])  # in the period
    world.ingest.report([step(draw["sample"][0], "rated", "2008-10-21T10:00:00+08:00",
                              dept=drawn["cases"][0]["department"], score=5)])
    again = audits.redraw(draw["id"])
    assert again["matches"] is True and again["population"]["size"] == 40
    now = audits.population_at(10**12).members(world.audits.load(a["id"]).criteria_)
    assert len(now) == 61 and "OPEN1" in {m.case_no for m in now}
    assert "OPEN1" not in audits.load(a["id"]).population["case_nos"]
    assert [m.case_no for m in audits.population_at(cp["position"]).members(world.audits.load(a["id"]).criteria_)] \
        == audits.load(a["id"]).population["case_nos"]

    # The same plan and seed at a later checkpoint: another population and another sample.
    b = audits.plan(PLAN, officer(world))
    later = audits.draw(b["id"], "纪工委 2008-11-03 公告: 7 12 33 41", officer(world))
    assert later["population"]["checkpoint"]["root"] != cp["root"] and later["population"]["size"] == 61
    assert later["draw"]["sample"] != draw["sample"]
    # Another seed at the same checkpoint: another sample.
    c = audits.plan(PLAN, officer(world))
    other = audits.draw(c["id"], "another announced seed", officer(world))
    assert other["population"]["checkpoint"] == later["population"]["checkpoint"]
    assert other["draw"]["sample"] != later["draw"]["sample"]
    assert audits.redraw(later["draw"]["id"])["matches"] and audits.redraw(other["draw"]["id"])["matches"]


def test_a_log_changed_behind_the_ledgers_back_does_not_redraw(world):
    audits = world.audits
    a = audits.plan({**PLAN, "design": {"method": "weighted"}}, officer(world))
    drawn = audits.draw(a["id"], "seed", officer(world))
    assert audits.redraw(drawn["draw"]["id"])["matches"]
    # a case event of the population deleted behind the ledger's back (the sampled case's acceptance)
    from tests.integration.test_damaged_store import delete_version

    delete_version(world, drawn["draw"]["sample"][0], 2)
    out = audits.redraw(drawn["draw"]["id"])
    assert out["matches"] is False and not out["checks"]["tree_size"] and not out["checks"]["tree_root"]


@pytest.fixture
def api(world):
    app = create_app(world)
    client = TestClient(app, raise_server_exceptions=False)
    keys = {name: world.access.create("officer", label=name) for name in ("lead", "r1", "r2", "r3")}
    keys["dept"] = world.access.create("department", ["GS"])
    return client, keys


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def kid(key: str) -> str:
    return key.split("_")[1]


def test_the_api_walks_an_audit_from_plan_to_report(api, world):
    client, keys = api
    assert client.get("/api/v1/audits/sample-size?confidence=0.95&tolerable=0.05&expected=0", headers=h(keys["lead"])).json()["n"] == 59
    assert client.get("/api/v1/audits/sample-size?confidence=0.95&tolerable=0.05&expected=0.01", headers=h(keys["lead"])).json()["n"] == 93
    assert client.get("/api/v1/audits/sample-size?confidence=90%25&tolerable=5%25", headers=h(keys["lead"])).json()["n"] == 45
    bad = client.get("/api/v1/audits/sample-size?confidence=0.95&tolerable=0.05&expected=0.05", headers=h(keys["lead"]))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_sampling"

    refused = client.post("/api/v1/audits", headers=h(keys["dept"]), json=PLAN)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    assert client.post("/api/v1/audits", headers=h(keys["lead"]), json={**PLAN, "population": {"from": "x"}}).json()["code"] == "invalid_field"
    plan = client.post("/api/v1/audits", headers=h(keys["lead"]), json={**PLAN, "sampling": {"n": 4}})
    assert plan.status_code == 201, plan.text
    aid = plan.json()["id"]
    assert client.get(f"/api/v1/audits/{aid}", headers=h(keys["lead"])).json()["state"] == "planned"
    assert client.get("/api/v1/audits/nope", headers=h(keys["lead"])).json()["code"] == "unknown_audit"
    assert client.post(f"/api/v1/audits/{aid}/assign", headers=h(keys["lead"]), json={"pool": [kid(keys["r1"])]}).json()["code"] == "audit_state"
    assert client.post(f"/api/v1/audits/{aid}/draw", headers=h(keys["lead"]), json={}).json()["code"] == "missing_field"

    drawn = client.post(f"/api/v1/audits/{aid}/draw", headers=h(keys["lead"]), json={"seed": "2008-11-03 双色球 05 11 18"})
    assert drawn.status_code == 200, drawn.text
    d = drawn.json()
    assert client.post(f"/api/v1/audits/{aid}/draw", headers=h(keys["lead"]), json={"seed": "again"}).json()["code"] == "audit_state"
    redraw = client.get(f"/api/v1/audits/draws/{d['draw']['id']}/redraw", headers=h(keys["lead"])).json()
    assert redraw["matches"] is True and redraw["sample"] == d["draw"]["sample"]
    assert client.get("/api/v1/audits/draws/00000000-0000-0000-0000-000000000000/redraw",
                      headers=h(keys["lead"])).json()["code"] == "unknown_draw"

    # Recusal: r3 belongs to GS and declared a conflict with DS: impossible with 3 per case.
    pool = [{"id": kid(keys["r1"]), "name": "甲"}, {"id": kid(keys["r2"]), "name": "乙"},
            {"id": kid(keys["r3"]), "name": "丙", "departments": ["GS"], "conflicts": ["DS"]}]
    impossible = client.post(f"/api/v1/audits/{aid}/assign", headers=h(keys["lead"]), json={"pool": pool, "per_case": 3})
    assert impossible.status_code == 409 and impossible.json()["code"] == "recusal_impossible"
    unknown = client.post(f"/api/v1/audits/{aid}/assign", headers=h(keys["lead"]),
                          json={"pool": [*pool, {"id": kid(keys["dept"])}]})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_reviewer"
    assigned = client.post(f"/api/v1/audits/{aid}/assign", headers=h(keys["lead"]), json={"pool": pool})
    assert assigned.status_code == 200, assigned.text
    assignments = assigned.json()["assignments"]
    assert all(len(v) == 2 and kid(keys["r3"]) not in v for v in assignments.values())  # recused everywhere

    case_no = d["draw"]["sample"][0]
    points = {p: {"result": "conforming"} for p in ("acceptance", "time_limits", "fees", "procedure", "documents", "delivery")}
    deviation = {**points, "fees": {"result": "deviation", "note": "收费凭证缺失 (no fee receipt)"}}
    outsider = client.post(f"/api/v1/audits/{aid}/findings", headers=h(keys["lead"]), json={"case_no": case_no, "points": points})
    assert outsider.status_code == 403 and outsider.json()["code"] == "not_assigned"
    assert client.post(f"/api/v1/audits/{aid}/findings", headers=h(keys["r1"]),
                       json={"case_no": "ZZZ", "points": points}).json()["code"] == "not_in_sample"
    early = client.post(f"/api/v1/audits/{aid}/close", headers=h(keys["lead"]))
    assert early.status_code == 409 and early.json()["code"] == "findings_incomplete"
    for c, reviewers in assignments.items():
        for r in reviewers:
            key = next(k for k in keys.values() if kid(k) == r)
            body = {"case_no": c, "points": deviation if c == case_no else points}
            resp = client.post(f"/api/v1/audits/{aid}/findings", headers=h(key), json=body)
            assert resp.status_code == 201, resp.text
    mine = client.get("/api/v1/audits/mine", headers=h(keys["r1"])).json()["cases"]
    assert {m["case_no"] for m in mine} == {c for c, rs in assignments.items() if kid(keys["r1"]) in rs}
    assert all(m["recorded"] for m in mine)

    closed = client.post(f"/api/v1/audits/{aid}/close", headers=h(keys["lead"]))
    assert closed.status_code == 200, closed.text
    r = closed.json()["results"]
    assert r["n"] == 4 and r["deviations"] == 1 and r["rate"] == 0.25 and r["exceeds_tolerable"] is True
    assert 0.25 < r["upper_limit"] < 1 and sum(s["n"] for s in r["strata"]) == 4

    html = client.get(f"/api/v1/audits/{aid}/report?format=html", headers=h(keys["lead"]))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    for text in ("收费凭证缺失", case_no, d["draw"]["seed"], d["population"]["checkpoint"]["root"], d["population"]["digest"]):
        assert text in html.text
    pdf = client.get(f"/api/v1/audits/{aid}/report?format=pdf", headers=h(keys["lead"]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"STSong-Light" in pdf.content
    xlsx = client.get(f"/api/v1/audits/{aid}/report?format=xlsx", headers=h(keys["lead"]))
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(xlsx.content))
    cells = {str(c.value) for ws in wb for row in ws.iter_rows() for c in row}
    assert case_no in cells and "收费凭证缺失 (no fee receipt)" in cells and d["population"]["digest"] in cells
    assert client.get(f"/api/v1/audits/{aid}/report?format=doc", headers=h(keys["lead"])).json()["code"] == "invalid_query"
    listed = client.get("/api/v1/audits", headers=h(keys["lead"])).json()["audits"]
    assert [x["state"] for x in listed if x["id"] == aid] == ["closed"]


def test_the_cli_plans_draws_redraws_and_reports(district, clock, tmp_path, capsys):
    if district.settings.store != "sqlite":
        pytest.skip("the CLI opens the data directory (SQLite); the service is the same on both stores")
    clock.set(at("2008-11-03 10:00"))
    cases(district, 0, 30)
    from api.cli import main

    base = ["--data-dir", str(district.settings.data_dir), "audit"]
    assert main([*base, "plan", json_text({**PLAN, "sampling": {"confidence": 0.9, "tolerable": 0.2}})]) == 0
    out = capsys.readouterr().out
    audit_id = out.split()[1]
    assert "sample of 11" in out  # 90% / 20% / 0: 11 cases
    assert main([*base, "draw", audit_id, "--seed", "announced 2008-11-03"]) == 0
    out = capsys.readouterr().out
    draw_id = out.split()[1].rstrip(":")
    assert "11 of 30 cases" in out
    assert main([*base, "redraw", draw_id]) == 0
    assert '"matches": true' in capsys.readouterr().out
    # offline: the exported draw is checked with no database at all
    exported = tmp_path / "draw.json"
    assert main([*base, "export-draw", draw_id, "-o", str(exported)]) == 0
    capsys.readouterr()
    assert main(["audit", "verify-draw", str(exported)]) == 0
    assert "MATCHES" in capsys.readouterr().out
    import json

    doc = json.loads(exported.read_text())
    for forged in ({**doc, "seed": doc["seed"] + "x"}, {**doc, "population": doc["population"][1:]},
                   {**doc, "checkpoint": {**doc["checkpoint"], "root": "00" * 32}}):
        exported.write_text(json.dumps(forged))
        assert main(["audit", "verify-draw", str(exported)]) == 1
        assert "DOES NOT MATCH" in capsys.readouterr().out
    reviewer = district.access.create("officer").split("_")[1]
    assert main([*base, "assign", audit_id, "--pool", json_text([{"id": reviewer}]), "--per-case", "1"]) == 0
    drawn = [line.split(":")[0].strip() for line in capsys.readouterr().out.splitlines()]
    assert len(drawn) == 11
    points = {p: "conforming" for p in ("acceptance", "time_limits", "fees", "procedure", "documents", "delivery")}
    for i, case_no in enumerate(drawn):
        mine = {**points, "delivery": {"result": "deviation", "note": "未按时送达"}} if i < 2 else points
        assert main([*base, "finding", audit_id, case_no, "--reviewer", reviewer, "--points", json_text(mine)]) == 0
    assert main([*base, "finding", audit_id, drawn[0], "--reviewer", "someone", "--points", json_text(points)]) == 2
    assert "not_assigned" in capsys.readouterr().err
    assert main([*base, "close", audit_id]) == 0
    results = capsys.readouterr().out
    assert '"deviations": 2' in results and '"exceeds_tolerable": true' in results
    report = tmp_path / "audit.pdf"
    assert main([*base, "report", audit_id, "-o", str(report)]) == 0
    assert report.read_bytes().startswith(b"%PDF")
    assert main([*base, "redraw", "00000000-0000-0000-0000-000000000000"]) == 2
    assert "unknown_draw" in capsys.readouterr().err


def json_text(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


def test_the_light_decoding_of_the_fold_reads_what_the_events_say(world):
    """The fold reads stored state without building event objects: the same facts and leaves."""
    from domain.audit import Population
    from domain.case import CASE_TOPICS
    from domain.merkle import leaf_hash, root
    from infra.logs import notifications_after

    world.ingest.report([step("A0001", "rated", "2008-10-21T10:00:00+08:00", score=2)])
    full, leaves = Population(), []
    for n in notifications_after(world.ledger.recorder, 0, CASE_TOPICS):
        event = world.ledger.mapper.to_domain_event(n)
        full.case_event(event)
        leaves.append(leaf_hash(bytes.fromhex(event.hash)))
    light, size, head = world.audits.fold(10**12)
    assert light.cases == full.cases and len(light.cases) == 40
    assert (size, head) == (len(leaves), root(leaves))
    assert head == world.checkpoints.issue().root

"""The demo district (services.demo) and its live hall (services.live_demo), on both stores:
well-formed applicants and a real catalogue; the hall reports through the ingest service in
real time on the injected clock, with cards that go yellow and red, anomalies, late entries and
suspensions; the same seed and instants give the same steps."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from datetime import date, datetime, timedelta

from domain.calendar import CHINA_TZ
from services.demo import CATALOGUE, build_district, case_steps, catalogue_entries
from services.demo_people import (credit_code, enterprise, id_check_digit, org_code, person, valid_id_number,
                                  valid_uscc)
from services.live_demo import LiveHall, recent_history


def test_applicants_are_fake_but_well_formed():
    assert id_check_digit("11010519491231002") == "X"  # GB 11643's own example: 11010519491231002X
    rng = random.Random(1)
    people = [person(rng, date(2026, 12, 1)) for _ in range(500)]
    assert all(valid_id_number(p["id_number"]) for p in people)
    assert all(len(p["id_number"]) == 18 and len(p["phone"]) == 11 and 2 <= len(p["name"]) <= 3 for p in people)
    born = [int(p["id_number"][6:10]) for p in people]
    assert min(born) >= 1956 and max(born) <= 2008  # adults, 18 to 70
    assert len({p["name"] for p in people}) > 300  # not 申请人0000 over and over
    broken = people[0]["id_number"][:17] + ("0" if people[0]["id_number"][17] != "0" else "1")
    assert not valid_id_number(broken)
    codes = [credit_code(rng, "510107") for _ in range(200)]
    assert all(valid_uscc(c) and c.startswith("91510107") for c in codes)
    assert not valid_uscc(codes[0][:17] + ("0" if codes[0][17] != "0" else "1"))
    assert len(org_code(rng)) == 9 and enterprise(rng, date(2008, 5, 1))["name"].endswith("有限公司")


def test_the_catalogue_names_real_items_once_each():
    entries = catalogue_entries()
    names = [name for _, name, _, _ in entries]
    assert len(entries) == 149 and len(set(names)) == 149
    assert sum(1 for e in entries if e[2] == "licence") == 67  # 67 licences, 82 non-licence approvals (seed)
    assert set(CATALOGUE) == {code.rsplit("-", 1)[0] for code, _, _, _ in entries} and len(CATALOGUE) == 15


def test_departments_differ_and_history_is_deterministic(esup, clock):
    clock.set(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))
    build_district(esup, random.Random(2008))
    first = list(case_steps(esup, 400, random.Random(5)))
    assert first == list(case_steps(esup, 400, random.Random(5)))
    per_dept = Counter(body["department"] for _, body in first if body["step"] == "submitted")
    assert per_dept.most_common(1)[0][0] == "GSJ" and per_dept["GSJ"] > 4 * per_dept.get("GH2", 0)
    ids = [body["data"]["applicant"]["id_number"] for _, body in first if body["step"] == "submitted"
           and body["data"]["applicant_kind"] == "person"]
    assert ids and all(valid_id_number(i) for i in ids)


@pytest.mark.slow
def test_the_live_hall_reports_in_real_time_with_cards_anomalies_and_suspensions(esup, clock):
    clock.set(datetime(2008, 1, 1, 8, 0, tzinfo=CHINA_TZ))
    build_district(esup, random.Random(2008))
    # The last working days up to Wed 26 Nov 2008, 10:00, recorded as they were reported.
    now = datetime(2008, 11, 26, 10, 0, tzinfo=CHINA_TZ)
    stored = recent_history(esup, clock, now, days=3, per_day=80)
    assert stored > 700
    esup.runner.catch_up()
    hall = LiveHall(esup, clock, rate=6000, seed=3)
    sent, t = 0, now
    while t < now + timedelta(hours=3):  # three office hours, looking every 30 seconds
        t += timedelta(seconds=30)
        clock.set(t)
        sent += hall.step(t)
    assert sent > 300 and hall.cases > 100
    esup.runner.catch_up()
    esup.warnings.check(t)
    esup.runner.catch_up()
    today = now.strftime("%Y%m%d")
    live = [c for c in esup.warnings.board(_officer(), status="all") if c["case_no"].startswith(f"CDGX{today}")]
    assert {"yellow", "red"} <= {c["level"] for c in live}  # short promises missed today, in real time
    with esup.views.read() as cur:
        rules = dict(cur.execute("SELECT rule, COUNT(*) FROM anomalies GROUP BY rule").fetchall())
        suspended = cur.execute("SELECT COUNT(*) FROM case_board WHERE suspended = 1").fetchone()[0]
    assert rules.get("late_entry", 0) >= 1 and len(rules) >= 3 and suspended >= 1
    assert esup.ingest.refusal_counts() == {}  # every step the hall sends is accepted
    # The same seed and instants: the same plans.
    a, b = LiveHall(esup, clock, rate=6000, seed=9), LiveHall(esup, clock, rate=6000, seed=9)
    for k in range(30):
        a.arrive(t + timedelta(seconds=20 * k))
        b.arrive(t + timedelta(seconds=20 * k))
    assert len(a.agenda) > 20 and [p.body for p in sorted(a.agenda)] == [p.body for p in sorted(b.agenda)]


def _officer():
    from domain.access import Role
    from services.ingest import Principal

    return Principal(Role.OFFICER)

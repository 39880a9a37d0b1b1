"""No false card, ever (issue 6, item 1), on both stores.

- A warning is never saved for a case whose log, at the instant of saving, shows its threshold
  was never reached: the check and the save are one decision (the ledger's guarded insert).
- A card issued on what the log held, which a step keyed in later shows was never earned, is
  withdrawn in the ledger with that step as evidence, leaves the open board, stays in history,
  and the late entry that withdrew it is an anomaly naming the card.
- A property: random interleavings of step posts (one by one, batched, late or on time) and
  scheduler runs never leave an open card on a case whose business timeline did not cross it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from domain.calendar import CHINA_TZ
from domain.warning import CaseWarning, reached, warning_id
from infra.recorders import CaseMoved
from services.anomalies import AnomalyFilter, list_anomalies
from services.warning_scheduler import WarningScheduler
from tests.integration.test_ledger import step, submitted
from tests.integration.test_warnings import GS as GS_KEY
from tests.integration.test_warnings import OFFICER, accept, check, iso, report
from tests.unit.test_case import at


def open_cards(esup, case_no: str | None = None) -> list[dict]:
    esup.runner.catch_up()
    return esup.warnings.board(OFFICER, case_no=case_no)


class TestTheCheckAndTheSaveAreOneDecision:
    def test_a_step_that_lands_between_check_and_save_stops_the_card(self, district, monkeypatch):
        """The race the README's one-request-at-a-time example hit: the scheduler had checked
        the case, the conclusion was recorded, then the card was saved 0.3 ms later."""
        accept(district, "R1", "2008-09-24 09:00")
        district.runner.catch_up()
        real = WarningScheduler._moved_since
        slipped = []

        def then_a_step_slips_in(self, position):
            moved = real(self, position)
            if not slipped:  # after the check, before the save
                slipped.append(True)
                report(district, "2008-10-08 09:00", step("R1", "concluded", iso("2008-09-26 10:00"), result="issued"))
            return moved

        monkeypatch.setattr(WarningScheduler, "_moved_since", then_a_step_slips_in)
        assert check(district, "2008-10-08 09:00") == []
        assert slipped
        assert open_cards(district, "R1") == []
        monkeypatch.undo()
        assert check(district, "2008-10-30 09:00") == []  # concluded: nothing is ever due again
        assert open_cards(district, "R1") == []

    def test_the_ledger_refuses_a_guarded_save_when_the_case_moved(self, district):
        accept(district, "R2", "2008-09-24 09:00")
        from domain.case import case_id

        cid = case_id("R2")

        def card() -> CaseWarning:
            return CaseWarning.issue(case_no="R2", case_id=str(cid), case_version=1, department="GS",
                                     item_code="GS-001", level="red", rule="red", threshold_at=at("2008-10-07 00:00"),
                                     promised_due_at=None, legal_due_at=None, basis="test", at=at("2008-10-08 09:00"))

        with pytest.raises(CaseMoved):
            district.ledger.save(card(), guard=[(cid, 1)])  # the case is at version 2 (accepted)
        assert not district.ledger.recorder.select_events(card().id)
        district.ledger.save(card(), guard=[(cid, 2)])
        assert district.ledger.recorder.select_events(card().id)


class TestWithdrawal:
    def test_a_conclusion_keyed_in_late_withdraws_the_cards_it_shows_were_never_earned(self, district):
        accept(district, "W1", "2008-09-24 09:00")
        assert check(district, "2008-10-28 09:00") == [("W1", "yellow", "2008-09-28 17:30"),
                                                       ("W1", "red", "2008-10-07 00:00"),
                                                       ("W1", "severe", "2008-10-28 00:00")]
        assert {c["level"] for c in open_cards(district, "W1")} == {"yellow", "red", "severe"}
        # The department keys in, weeks later, a conclusion dated before the red threshold.
        report(district, "2008-10-29 09:00", step("W1", "concluded", iso("2008-10-06 16:00"), result="issued"))
        check(district, "2008-10-29 09:01")
        left = open_cards(district, "W1")
        assert [c["level"] for c in left] == ["yellow"]  # the yellow threshold was crossed on 28 Sep
        red = district.warnings.get(str(warning_id("W1", "red")), OFFICER)
        assert red["status"] == "withdrawn"
        assert [h["act"] for h in red["history"]] == ["issued", "withdrawn"]
        assert red["withdrawal"]["evidence"]["step"] == "concluded"
        assert red["withdrawal"]["evidence"]["version"] == 3
        assert "撤销" in red["withdrawal"]["reason"]
        everything = district.warnings.board(OFFICER, case_no="W1", status="all")
        assert {c["level"]: c["status"] for c in everything} == {"yellow": "issued", "red": "withdrawn",
                                                                 "severe": "withdrawn"}
        # Backdating a step to escape a card is seen, not rewarded: an anomaly names the cards.
        found = list_anomalies(district, AnomalyFilter(rule="warning_withdrawn"))["anomalies"]
        assert len(found) == 1 and found[0]["case_no"] == "W1"
        named = {e.get("warning_id") for e in found[0]["evidence"]}
        assert {str(warning_id("W1", "red")), str(warning_id("W1", "severe"))} <= named

    def test_a_suspension_keyed_in_late_withdraws_and_the_rule_can_be_earned_again(self, district):
        accept(district, "W2", "2008-09-24 09:00")
        assert ("W2", "red", "2008-10-07 00:00") in check(district, "2008-10-08 09:00")
        # A special procedure (hearing) started on 6 Oct, keyed in on 9 Oct; resumed 20 Oct.
        report(district, "2008-10-09 09:00", step("W2", "suspended", iso("2008-10-06 09:00"), procedure="hearing"))
        check(district, "2008-10-09 09:01")
        assert [c["level"] for c in open_cards(district, "W2")] == ["yellow"]
        report(district, "2008-10-20 09:00", step("W2", "resumed", iso("2008-10-20 09:00")))
        again = check(district, "2008-10-30 09:00")
        assert [lv for _, lv, _ in again] == ["red"]  # earned again, after the clock ran on
        second = district.ledger.repository.get(warning_id("W2", "red", 1))
        assert second.status == "issued" and second.threshold_at > at("2008-10-20 09:00")

    def test_a_closed_card_stays_closed(self, district):
        accept(district, "W3", "2008-09-24 09:00")
        check(district, "2008-10-08 09:00")
        district.warnings.close(str(warning_id("W3", "red")), OFFICER, note="已核实")
        report(district, "2008-10-09 09:00", step("W3", "concluded", iso("2008-10-06 10:00"), result="issued"))
        check(district, "2008-10-09 09:01")
        assert district.warnings.get(str(warning_id("W3", "red")), OFFICER)["status"] == "closed"


# -- the property ---------------------------------------------------------------------------------

LIMIT = timedelta(days=40)


def _script(rng: random.Random, n: int, base: datetime) -> list[tuple[str, datetime, list[dict]]]:
    """One case's steps: submitted+accepted, then maybe a suspension/resumption, then maybe a
    conclusion; each step keyed in on time or late, posted one by one or batched."""
    case = f"P{n:05d}"
    start = base + timedelta(days=rng.randrange(0, 60), hours=rng.randrange(9, 16))
    steps: list[tuple[datetime, dict]] = [(start, submitted(case, when=start.isoformat())),
                                          (start, step(case, "accepted", start.isoformat()))]
    t = start
    if rng.random() < 0.3:
        t += timedelta(days=rng.randrange(1, 12), hours=rng.randrange(0, 5))
        steps.append((t, step(case, "suspended", t.isoformat(), procedure="hearing")))
        t += timedelta(days=rng.randrange(1, 10))
        steps.append((t, step(case, "resumed", t.isoformat())))
    if rng.random() < 0.85:
        t += timedelta(days=rng.randrange(0, 30), hours=rng.randrange(0, 8), minutes=rng.randrange(60))
        steps.append((t, step(case, "concluded", t.isoformat(), result="issued")))
    # When each step is keyed in: on time (same instant) or late (hours to weeks after).
    posts = []
    for happened, body in steps:
        lag = timedelta(0) if rng.random() < 0.5 else timedelta(hours=rng.choice([2, 30, 24 * 9, 24 * 40]))
        posts.append((happened + lag, body))
    # Recording time never goes backwards within a case (the ledger refuses nothing here).
    for i in range(1, len(posts)):
        if posts[i][0] < posts[i - 1][0]:
            posts[i] = (posts[i - 1][0], posts[i][1])
    if rng.random() < 0.3:  # batched: everything keyed in together at the last instant
        return [(case, posts[-1][0], [b for _, b in posts])]
    return [(case, when, [body]) for when, body in posts]


@pytest.mark.slow
def test_random_interleavings_never_leave_a_card_the_timeline_did_not_earn(district):
    rng = random.Random(20261201)
    base = datetime(2008, 9, 1, 1, 0, tzinfo=timezone.utc)
    posts: list[tuple[datetime, int, str, list[dict]]] = []
    cases = 500
    for n in range(cases):
        for seq, (case, when, bodies) in enumerate(_script(rng, n, base)):
            posts.append((when, n * 10 + seq, case, bodies))
    posts.sort(key=lambda p: (p[0], p[1]))
    # Scheduler runs between posts at random (as a serving process wakes whenever it likes).
    now = base
    for when, _, case, bodies in posts:
        if rng.random() < 0.5 and when > now:
            check_at = now + (when - now) * rng.random()
            district.clock.set(check_at)
            district.warnings.check()
        district.clock.set(when)
        now = when
        district.ingest.report(bodies)
        if rng.random() < 0.3:
            district.warnings.check()
    for later in (now, now + timedelta(days=1)):
        district.clock.set(later)
        district.warnings.check()
    district.runner.catch_up()
    cards = district.warnings.board(OFFICER, limit=10_000)
    assert cards, "the interleavings should earn some cards"
    checked = 0
    for card in cards:
        assert _running_at(district, card["case_no"], card["threshold_at"]), (
            f"open {card['level']} card on {card['case_no']} at {card['threshold_at']}: its clock was not running then")
        assert not _stopped_after_plan(district, card), f"open {card['level']} card on {card['case_no']} never earned"
        checked += 1
    withdrawn = district.warnings.board(OFFICER, status="withdrawn", limit=10_000)
    assert withdrawn, "late entries should have withdrawn some cards"
    for card in withdrawn:  # and no card was withdrawn that its plan's timeline had earned
        assert _stopped_after_plan(district, card), f"{card['level']} card on {card['case_no']} withdrawn wrongly"
    assert checked > 50


def _stopped_after_plan(esup, card: dict) -> bool:
    """Did a step the card's plan did not know (a later version) stop the clock no later than
    the card's threshold, by business time?"""
    from uuid import UUID

    from domain.case import case_id

    planned_at = next(iter(esup.ledger.events.get(UUID(card["id"])))).case_version
    return any(e.originator_version > planned_at and e.STEP.value in ("suspended", "concluded", "refused", "withdrawn")
               and not reached(card["threshold_at"], e.occurred_at)
               for e in esup.ledger.events.get(case_id(card["case_no"])))


def _running_at(esup, case_no: str, threshold: datetime) -> bool:
    """Was the case's clock running at ``threshold`` by business time? It starts at acceptance
    or resumption and stops at a suspension or the end; a stop at the instant itself counts
    (concluded exactly at the deadline is on time)."""
    from domain.case import case_id

    running = False
    for e in sorted(esup.ledger.events.get(case_id(case_no)), key=lambda e: (e.occurred_at, e.originator_version)):
        step = e.STEP.value
        if step in ("accepted", "resumed") and e.occurred_at <= threshold:
            running = True
        elif step in ("suspended", "concluded", "refused", "withdrawn") and reached(threshold, e.occurred_at) is False:
            running = False
    return running


class TestTheBoardByBusinessTime:
    """`GET /api/v1/warnings?as_of=…&by=occurred` (issue 6, item 3): cases back-filled later
    show the cards their timelines had earned by then, with the status they had then."""

    def test_a_back_filled_batch_shows_the_cards_its_timeline_earned(self, district):
        # Keyed in on 1 Dec as one batch: accepted 24 Sep, concluded late on 10 Oct.
        report(district, "2008-12-01 09:00", submitted("B1", when=iso("2008-09-24 09:00")),
               step("B1", "accepted", iso("2008-09-24 09:00")),
               step("B1", "concluded", iso("2008-10-10 11:00"), result="issued"))
        district.warnings.check()
        district.runner.catch_up()
        on_9_oct = at("2008-10-09 12:00")
        assert district.warnings.board(OFFICER, as_of=on_9_oct) == []  # as recorded: nothing yet
        cards = district.warnings.board(OFFICER, as_of=on_9_oct, by="occurred")
        assert [(c["level"], c["status"]) for c in cards] == [("yellow", "earned"), ("red", "earned")]
        assert cards[1]["threshold_at"] == at("2008-10-07 00:00") and cards[1]["id"] is None
        assert cards[1]["clock_stopped_at"] == at("2008-10-10 11:00")
        assert [c["level"] for c in district.warnings.board(OFFICER, as_of=at("2008-10-01 12:00"), by="occurred")] \
            == ["yellow"]
        # Concluded on 10 Oct: the severe threshold (28 Oct) was never reached.
        assert "severe" not in {c["level"] for c in district.warnings.board(OFFICER, as_of=at("2008-11-30 12:00"),
                                                                            by="occurred")}

    def test_issued_cards_show_with_the_status_they_had_then_and_withdrawn_ones_never(self, district):
        accept(district, "B2", "2008-09-24 09:00")
        check(district, "2008-10-08 09:00")  # yellow and red issued on 8 Oct
        red = str(warning_id("B2", "red"))
        district.clock.set(at("2008-10-09 15:00"))
        district.warnings.answer(red, "材料待补正", GS_KEY)
        # Keyed in on 20 Oct: a special procedure from 1 Oct (so red was never earned), none later.
        report(district, "2008-10-20 09:00", step("B2", "suspended", iso("2008-09-30 10:00"), procedure="hearing"))
        check(district, "2008-10-20 09:01")
        by_business = district.warnings.board(OFFICER, as_of=at("2008-10-09 16:00"), by="occurred")
        assert [(c["level"], c["status"]) for c in by_business] == [("yellow", "issued")]
        as_recorded = district.warnings.board(OFFICER, as_of=at("2008-10-09 16:00"))
        assert {c["level"]: c["status"] for c in as_recorded} == {"yellow": "issued", "red": "answered"}
        district.clock.set(at("2008-10-21 09:00"))
        district.warnings.answer(str(warning_id("B2", "yellow")), "已处理", GS_KEY)
        assert [(c["level"], c["status"]) for c in
                district.warnings.board(OFFICER, as_of=at("2008-10-21 10:00"), by="occurred")] == [("yellow", "answered")]

    def test_over_http(self, district):
        from fastapi.testclient import TestClient

        from api.app import create_app

        report(district, "2008-12-01 09:00", submitted("B3", when=iso("2008-09-24 09:00")),
               step("B3", "accepted", iso("2008-09-24 09:00")),
               step("B3", "concluded", iso("2008-10-10 11:00"), result="issued"))
        district.runner.catch_up()
        key = district.access.create("officer")
        api = TestClient(create_app(district))
        r = api.get("/api/v1/warnings", params={"as_of": "2008-10-09T12:00:00+08:00", "by": "occurred"},
                    headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        assert [w["level"] for w in r.json()["warnings"]] == ["yellow", "red"] and r.json()["by"] == "occurred"
        bad = api.get("/api/v1/warnings", params={"by": "occurred"}, headers={"Authorization": f"Bearer {key}"})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_query"


@pytest.mark.slow
def test_one_request_at_a_time_beside_a_serving_scheduler_leaves_no_false_card(tmp_path):
    """The first user's report, as they met it: the README's steps posted one request at a time
    (submitted, accepted, concluded within the promise, all back-filled for 2008) to a real
    `esup serve` whose scheduler is awake. No open card may remain on an on-time case."""
    import time

    import httpx

    from infra.settings import Settings
    from services.system import Esup
    from tests.conftest import define_basics
    from tests.integration.test_crash import free_port, start_server

    data = tmp_path / "data"
    esup = Esup.open(Settings(data_dir=data))
    define_basics(esup)
    key = esup.access.create("admin")
    esup.close()
    port = free_port()
    server = start_server(data, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                          timeout=30) as c:
            rng = random.Random(6)
            for i in range(40):
                case_no = f"CDGX2008900{i:04d}"
                day = 1 + i % 20
                for body in (submitted(case_no, when=f"2008-09-{day:02d}T09:00:00+08:00"),
                             step(case_no, "accepted", f"2008-09-{day:02d}T09:30:00+08:00"),
                             step(case_no, "concluded", f"2008-09-{day + 1:02d}T10:00:00+08:00", result="issued")):
                    r = c.post("/api/v1/steps", json=body)
                    assert r.status_code == 201, r.text
                    if i < 12:  # typed by hand: a pause between requests, the scheduler looks meanwhile
                        time.sleep(rng.uniform(0.0, 0.8))
            deadline = time.time() + 20
            while time.time() < deadline:  # the scheduler and the views settle
                time.sleep(1.0)
                h = c.get("/healthz").json()
                if all(v["lag"] == 0 for v in h["views"].values()):
                    break
            time.sleep(1.5)
            open_ = c.get("/api/v1/warnings").json()["warnings"]
            assert open_ == [], f"{len(open_)} false cards, e.g. {open_[:1]}"
            for w in c.get("/api/v1/warnings", params={"status": "all"}).json()["warnings"]:
                assert w["status"] == "withdrawn"  # issued before the conclusion arrived, then withdrawn
            case = c.get("/api/v1/cases/CDGX20089000000").json()
            assert case["status"] == "concluded" and case["on_time"] is True
    finally:
        server.terminate()
        server.wait(30)


def test_a_view_followed_by_two_processes_misses_no_withdrawal(district, store_settings):
    """Two servers on one store take turns at the views: what one process remembers of a view
    (here: which cases have cards) is forgotten when the other has moved it meanwhile."""
    from services.system import Esup

    accept(district, "T1", "2008-09-24 09:00")
    report(district, "2008-09-25 10:00", submitted("T2", when=iso("2008-09-25 09:00")),
           step("T2", "accepted", iso("2008-09-25 09:00")),
           step("T2", "concluded", iso("2008-09-25 10:00"), result="issued"))
    district.runner.catch_up()  # this process's board view has seen T2's conclusion: no cards anywhere
    other = Esup.open(store_settings, district.clock)
    try:
        other.clock.set(at("2008-10-08 09:00"))
        assert {w.level for w in other.warnings.check()} == {"yellow", "red"}  # issued by the other process
    finally:
        other.close()
    report(district, "2008-10-09 09:00", step("T1", "concluded", iso("2008-10-06 16:00"), result="issued"))
    check(district, "2008-10-09 09:01")
    assert district.warnings.get(str(warning_id("T1", "red")), OFFICER)["status"] == "withdrawn"

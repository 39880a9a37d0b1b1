"""Live monitoring: the event stream over a real HTTP server (SQLite and PostgreSQL), the day's
summary from the case board, and the dashboard's files."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from tests.integration.test_ledger import step, submitted
from tests.unit.test_case import at

PERSONAL = ("张三", "510101199001011234", "13812345678")


@dataclass
class Served:
    base: str
    keys: dict[str, str]
    esup: object
    app: object

    def post(self, path, json, key="admin"):
        r = httpx.post(self.base + path, json=json, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r


@pytest.fixture
def served(district, clock):
    """The API on a real uvicorn server in this process (so streams really stream), with the
    projection runner following the log as ``esup serve`` does."""
    clock.set(at("2008-09-26 18:00"))
    keys = {
        "admin": district.access.create("admin"),
        "officer": district.access.create("officer"),
        "gs": district.access.create("department", ["GS"]),
    }
    app = create_app(district)
    app.state.monitor_stream.poll_seconds = 0.05
    app.state.monitor_stream.heartbeat_seconds = 0.3
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    district.runner.start(poll_seconds=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", keys, district, app)
    server.should_exit = True
    thread.join(10)


@dataclass
class Stream:
    """Reads a server-sent event stream in a background thread, as a browser would."""

    status: int | None = None
    events: list[dict] = field(default_factory=list)  # {"event", "data", "id"}
    lines: list[str] = field(default_factory=list)
    last_id: str | None = None
    error: str | None = None

    def steps(self):
        return [(e["data"]["case_no"], e["data"]["step"]) for e in self.events if e["event"] == "step"]


def open_stream(served: Served, path: str, key: str | None = "officer", headers=None, until=None, seconds=8.0) -> Stream:
    out = Stream()
    hdrs = {**({"Authorization": f"Bearer {served.keys[key]}"} if key else {}), **(headers or {})}
    stop = threading.Event()

    def run():
        try:
            with httpx.stream("GET", served.base + path, headers=hdrs, timeout=5) as r:
                out.status = r.status_code
                if r.status_code != 200:
                    out.error = r.read().decode()
                    return
                event = {"event": "message", "data": [], "id": None}
                for line in r.iter_lines():
                    out.lines.append(line)
                    if line == "":
                        if event["id"] is not None:
                            out.last_id = event["id"]
                        if event["data"]:
                            out.events.append({"event": event["event"], "id": event["id"],
                                               "data": orjson.loads("\n".join(event["data"]))})
                        event = {"event": "message", "data": [], "id": None}
                        if stop.is_set() or (until and until(out)):
                            return
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        event["data"].append(value)
                    elif name in ("event", "id"):
                        event[name] = value
        except httpx.HTTPError as exc:  # pragma: no cover - reported by the assertions
            out.error = repr(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    out.join = lambda: (thread.join(seconds), stop.set(), thread.join(2))  # type: ignore[attr-defined]
    return out


def three_steps():
    return [submitted(applicant={"name": "张三", "id_number": "510101199001011234", "phone": "13812345678"}),
            step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
            submitted("D1", item="DS-001", dept="DS", when="2008-09-26T11:00:00+08:00")]


def test_stream_sends_steps_live_in_log_order_without_personal_data(served):
    s = open_stream(served, "/api/v1/monitor/stream", until=lambda o: len(o.steps()) >= 3)
    time.sleep(0.3)  # connected at the head: only what comes next
    served.post("/api/v1/steps/batch", three_steps())
    s.join()
    assert s.status == 200 and s.steps() == [("C1", "submitted"), ("C1", "accepted"), ("D1", "submitted")]
    positions = [e["data"]["position"] for e in s.events if e["event"] == "step"]
    assert positions == sorted(set(positions))
    first = s.events[0]["data"]
    assert first["department"] == "GS" and first["item_code"] == "GS-001"
    assert s.events[1]["data"]["item_code"] == "GS-001"  # known from the case, not repeated by the step
    assert s.events[1]["data"]["promised_due_at"] == "2008-10-09T00:00:00+08:00"
    raw = "\n".join(s.lines)
    assert not any(p in raw for p in PERSONAL) and "applicant" not in raw
    assert s.lines[0] == "retry: 3000"


def test_a_reconnecting_screen_resumes_after_its_last_event_id_and_misses_nothing(served):
    served.post("/api/v1/steps/batch", three_steps())
    head = str(served.esup.ledger.recorder.max_notification_id())
    first = open_stream(served, "/api/v1/monitor/stream?after=0", until=lambda o: o.last_id == head)
    first.join()
    assert first.steps() == [("C1", "submitted"), ("C1", "accepted"), ("D1", "submitted")]
    assert first.last_id == head  # everything up to the head delivered, anomalies included
    # While the screen is away, more happens.
    served.post("/api/v1/steps", step("C1", "undertaken", "2008-09-26T10:00:00+08:00"))
    again = open_stream(served, "/api/v1/monitor/stream", headers={"Last-Event-ID": first.last_id},
                        until=lambda o: len(o.steps()) >= 1)
    again.join()
    assert again.steps() == [("C1", "undertaken")]
    via_query = open_stream(served, f"/api/v1/monitor/stream?after={first.last_id}", until=lambda o: len(o.steps()) >= 1)
    via_query.join()
    assert via_query.steps() == again.steps()


def test_anomalies_are_streamed_after_the_step_that_revealed_them(served):
    served.post("/api/v1/steps/batch", [*three_steps(),
                                        submitted("L2", item="DS-001", dept="DS", when="2008-09-20T09:00:00+08:00")])
    gs = open_stream(served, "/api/v1/monitor/stream?after=0&kind=anomaly", key="gs",
                     until=lambda o: any(e["data"]["rule"] == "missing_actor" for e in o.events))
    gs.join()
    rules = {(e["data"]["case_no"], e["data"]["rule"]) for e in gs.events}
    assert ("C1", "missing_actor") in rules  # accepted (受理) by nobody named
    assert all(e["event"] == "anomaly" and e["data"]["department"] == "GS" for e in gs.events)
    officer = open_stream(served, "/api/v1/monitor/stream?after=0", until=lambda o: any(
        e["event"] == "anomaly" and e["data"]["rule"] == "late_entry" for e in o.events))
    officer.join()
    late = next(e["data"] for e in officer.events if e["event"] == "anomaly" and e["data"]["rule"] == "late_entry")
    assert late["case_no"] == "L2" and late["department"] == "DS" and late["type"] == "risk"
    submitted_at = next(e["data"]["position"] for e in officer.events if e["data"].get("case_no") == "L2"
                        and e["event"] == "step")
    assert late["position"] == submitted_at  # placed at the step that revealed it, after it in the stream
    kinds = [(e["data"]["position"], e["event"]) for e in officer.events]
    assert kinds.index((submitted_at, "step")) < kinds.index((submitted_at, "anomaly"))


class Lagging:
    """An anomalies view that has read the log only up to ``at``."""

    def __init__(self, at: int, rows: list[dict]) -> None:
        self.at, self._rows = at, rows

    def position(self) -> int:
        return self.at

    def rows(self, after, upto):
        return [r for r in self._rows if after < r["position"] <= upto]


def test_a_lagging_anomalies_view_holds_back_the_resume_point_not_the_steps(district, clock):
    from services.ingest import SYSTEM
    from services.monitor import MonitorFeed, Progress, Scope

    clock.set(at("2008-09-26 18:00"))
    district.ingest.report(three_steps(), SYSTEM)
    view = Lagging(1, [{"position": 2, "department": "GS", "case_no": "C1", "rule": "missing_actor"}])
    feed = MonitorFeed(district.ledger, district.views, view)
    head = district.ledger.recorder.max_notification_id()
    items, progress = feed.read(Progress.at(0), Scope())
    assert [i.kind for i in items] == ["step", "step", "step"]  # the steps did not wait
    assert progress == Progress(head, 1) and progress.resume == 1  # a reconnect resumes at 1
    view.at = head  # the view catches up
    items, progress = feed.read(progress, Scope())
    assert [(i.kind, i.position) for i in items] == [("anomaly", 2)] and progress.resume == head
    items, progress = feed.read(progress, Scope(kinds=frozenset({"step"})))
    assert items == [] and progress.resume == head


def test_department_keys_see_only_their_departments_and_move_past_the_rest(served):
    served.post("/api/v1/steps/batch", three_steps())
    head = served.esup.ledger.recorder.max_notification_id()
    gs = open_stream(served, "/api/v1/monitor/stream?after=0", key="gs", until=lambda o: o.last_id == str(head))
    gs.join()
    assert gs.steps() == [("C1", "submitted"), ("C1", "accepted")]
    assert gs.last_id == str(head)  # an id-only frame carries it past records it may not see
    ds = open_stream(served, "/api/v1/monitor/stream?after=0&department=DS", until=lambda o: len(o.steps()) >= 1)
    ds.join()
    assert ds.steps() == [("D1", "submitted")]
    refused = open_stream(served, "/api/v1/monitor/stream?department=DS", key="gs")
    refused.join()
    assert refused.status == 403 and "forbidden_department" in refused.error


def test_kind_filter_backlog_query_key_heartbeat_and_bad_input(served):
    served.post("/api/v1/steps/batch", three_steps())
    only_warnings = open_stream(served, "/api/v1/monitor/stream?after=0&kind=warning",
                                until=lambda o: any(line.startswith(": heartbeat") for line in o.lines))
    only_warnings.join()
    assert only_warnings.status == 200 and only_warnings.events == []
    assert any(line.startswith(": heartbeat") for line in only_warnings.lines)

    backlog = open_stream(served, "/api/v1/monitor/stream?backlog=2", until=lambda o: len(o.steps()) >= 2)
    backlog.join()
    assert backlog.steps() == [("C1", "accepted"), ("D1", "submitted")]

    by_query_key = open_stream(served, f"/api/v1/monitor/stream?after=0&key={served.keys['gs']}", key=None,
                               until=lambda o: len(o.steps()) >= 2)
    by_query_key.join()
    assert by_query_key.steps() == [("C1", "submitted"), ("C1", "accepted")]

    officer = {"Authorization": f"Bearer {served.keys['officer']}"}
    for path, headers, status, code in [
        ("/api/v1/monitor/stream?key=esup_nope_nope", {}, 401, "invalid_key"),
        ("/api/v1/monitor/stream", {}, 401, "missing_key"),
        ("/api/v1/monitor/stream?kind=gossip", officer, 422, "invalid_query"),
        ("/api/v1/monitor/stream?backlog=100000", officer, 422, "invalid_query"),
        ("/api/v1/monitor/stream", {**officer, "Last-Event-ID": "yesterday"}, 422, "invalid_position"),
        ("/api/v1/monitor/stream?after=%C2%B2", officer, 422, "invalid_position"),
    ]:
        r = httpx.get(served.base + path, headers=headers, timeout=5)
        assert r.status_code == status and r.json()["code"] == code, (path, r.text)


# -- the summary ------------------------------------------------------------------------------


@pytest.fixture
def api(district, clock):
    clock.set(at("2008-09-26 18:00"))
    client = TestClient(create_app(district), raise_server_exceptions=False)
    keys = {"admin": district.access.create("admin"), "officer": district.access.create("officer"),
            "gs": district.access.create("department", ["GS"])}

    def call(path, key="officer", **kw):
        return client.get(path, headers={"Authorization": f"Bearer {keys[key]}"}, **kw)

    call.client, call.keys, call.esup = client, keys, district  # type: ignore[attr-defined]
    return call


def day_of_work(api):
    """2008-09-26 (a Friday): GS concludes two cases on time, DS's 4-working-hour case is overdue."""
    r = api.client.post("/api/v1/steps/batch", headers={"Authorization": f"Bearer {api.keys['admin']}"}, json=[
        submitted(when="2008-09-26T09:00:00+08:00"),
        step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
        step("C1", "concluded", "2008-09-26T16:00:00+08:00"),
        submitted("C2", item="GS-002", when="2008-09-26T10:05:00+08:00"),
        step("C2", "accepted", "2008-09-26T10:06:00+08:00"),
        step("C2", "concluded", "2008-09-26T10:20:00+08:00"),
        submitted("D1", item="DS-001", dept="DS", when="2008-09-26T11:00:00+08:00"),
        step("D1", "accepted", "2008-09-26T11:10:00+08:00"),
        submitted("C3", when="2008-09-25T15:00:00+08:00"),
    ])
    assert r.status_code == 201, r.text
    api.esup.runner.catch_up()


def test_summary_counts_the_day_from_the_case_board(api):
    day_of_work(api)
    s = api("/api/v1/monitor/summary", params={"days": 7}).json()
    assert s["date"] == s["today"] == "2008-09-26"
    c = s["counters"]
    assert (c["received"], c["accepted"], c["concluded"], c["on_time"], c["late"]) == (4 - 1, 3, 2, 2, 0)
    assert (c["open"], c["overdue"], c["on_time_rate"]) == (2, 1, 100.0)  # C3 has no deadline yet; D1 is overdue
    assert [h["received"] for h in s["hourly"]][9:12] == [1, 1, 1]
    assert s["hourly"][10]["concluded"] == 1 and s["hourly"][16]["concluded"] == 1
    assert [t["date"] for t in s["trend"]][-2:] == ["2008-09-25", "2008-09-26"]
    assert s["trend"][-2]["received"] == 1 and s["trend"][-1] == {"date": "2008-09-26", "received": 3, "concluded": 2,
                                                                   "on_time": 2, "late": 0}
    league = {d["department"]: d for d in s["departments"]}
    assert league["GS"]["rank"] == 1 and league["GS"]["name"] == "工商局" and league["GS"]["on_time_rate"] == 100.0
    assert league["GS"]["period"]["received"] == 3 and league["GS"]["today"]["received"] == 2
    assert league["GS"]["period"]["accepted"] == league["GS"]["today"]["accepted"] == 2
    assert league["DS"]["rank"] == 2 and league["DS"]["overdue"] == 1 and league["DS"]["on_time_rate"] is None
    assert s["position"] == api.esup.runner.head()


def test_summary_scope_other_days_and_bad_input(api):
    day_of_work(api)
    mine = api("/api/v1/monitor/summary", key="gs").json()
    assert [d["department"] for d in mine["departments"]] == ["GS"]
    assert mine["counters"]["received"] == 2 and mine["scope"] == {"role": "department", "departments": ["GS"]}
    assert api("/api/v1/monitor/summary", key="gs", params={"department": "DS"}).json()["code"] == "forbidden_department"
    earlier = api("/api/v1/monitor/summary", params={"date": "2008-09-25", "days": 1}).json()
    assert earlier["counters"]["received"] == 1 and len(earlier["trend"]) == 1
    empty = api("/api/v1/monitor/summary", params={"date": "2008-10-01"}).json()
    assert empty["counters"]["received"] == 0 and empty["latest_date"] == "2008-09-26"
    assert api("/api/v1/monitor/summary", params={"date": "26/09/2008"}).json()["code"] == "invalid_query"
    assert api("/api/v1/monitor/summary", params={"days": 1000}).json()["code"] == "invalid_query"
    assert api.client.get("/api/v1/monitor/summary").json()["code"] == "missing_key"


def test_the_dashboard_is_served_with_a_strict_content_security_policy(api):
    page = api.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "电子监察" in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        r = api.client.get(f"/dashboard/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        # Nothing is fetched from elsewhere (the only URL is the SVG namespace).
        assert "https://" not in r.text and r.text.count("http://") == (1 if name == "app.js" else 0)


def test_warnings_are_streamed_with_their_case_and_later_acts_keep_it(served, clock):
    from domain.access import Role
    from services.ingest import Principal

    served.post("/api/v1/steps/batch", three_steps())  # C1 (GS) accepted 2008-09-26, promised by 2008-10-09
    start = served.esup.ledger.recorder.max_notification_id()
    served.esup.runner.catch_up()
    clock.set(at("2008-10-10 12:00"))
    issued = served.esup.warnings.check(clock.now())
    red = next(w for w in issued if w.level == "red")
    served.esup.warnings.close(str(red.id), Principal(Role.OFFICER), "rectified")
    s = open_stream(served, f"/api/v1/monitor/stream?after={start}&kind=warning", key="gs",
                    until=lambda o: any(e["data"]["status"] == "closed" for e in o.events))
    s.join()
    acts = [(e["data"]["type"], e["data"]["level"], e["data"]["status"]) for e in s.events]
    assert ("Issued", "red", "issued") in acts and acts[-1] == ("Closed", "red", "closed")
    for e in s.events:
        d = e["data"]
        assert e["event"] == "warning" and d["case_no"] == "C1" and d["department"] == "GS" and d["item_code"] == "GS-001"
        assert d["promised_due_at"] == "2008-10-09T00:00:00+08:00"
    closed = s.events[-1]["data"]
    assert closed["id"] == str(red.id) and "rectified" not in orjson.dumps(closed).decode()  # no free text
    # The dashboard's board and the stream agree on ids.
    board = httpx.get(served.base + "/api/v1/warnings?status=all", headers={"Authorization": f"Bearer {served.keys['gs']}"})
    assert str(red.id) in {w["id"] for w in board.json()["warnings"]}


def test_a_key_in_the_query_is_redacted_from_the_access_log():
    import logging

    from api.monitor import RedactKeys

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/api/v1/monitor/stream?kind=step&key=esup_ab_SECRET&after=3",
                                "1.1", 200), None)
    assert RedactKeys().filter(record)
    assert "SECRET" not in record.getMessage() and "key=[redacted]&after=3" in record.getMessage()


def test_screens_share_a_summary_until_the_case_board_moves(api):
    day_of_work(api)
    first = api("/api/v1/monitor/summary").json()
    assert api("/api/v1/monitor/summary").json() == first
    r = api.client.post("/api/v1/steps", headers={"Authorization": f"Bearer {api.keys['admin']}"},
                        json=submitted("C9", when="2008-09-26T17:00:00+08:00"))
    assert r.status_code == 201
    assert api("/api/v1/monitor/summary").json()["counters"]["received"] == 3  # the board has not seen it yet
    api.esup.runner.catch_up()
    assert api("/api/v1/monitor/summary").json()["counters"]["received"] == 4


def test_the_league_counts_overdue_open_cases_against_a_department(api):
    """GS concluded both its cases on time but left three past their promise; DS concluded one of
    two late. Ranked on concluded cases alone GS would lead with 100%; counting what it left
    overdue (2 / (2 + 3) = 40%) it falls behind DS (1 / 2 = 50%)."""
    batch = [
        submitted("C1", when="2008-09-26T09:00:00+08:00"), step("C1", "accepted", "2008-09-26T09:30:00+08:00"),
        step("C1", "concluded", "2008-09-26T16:00:00+08:00"),
        submitted("C2", item="GS-002", when="2008-09-26T10:05:00+08:00"), step("C2", "accepted", "2008-09-26T10:06:00+08:00"),
        step("C2", "concluded", "2008-09-26T10:20:00+08:00"),
        submitted("D1", item="DS-001", dept="DS", when="2008-09-26T09:00:00+08:00"),
        step("D1", "accepted", "2008-09-26T09:10:00+08:00", dept="DS"), step("D1", "concluded", "2008-09-26T10:00:00+08:00", dept="DS"),
        submitted("D2", item="DS-001", dept="DS", when="2008-09-25T09:00:00+08:00"),
        step("D2", "accepted", "2008-09-25T09:10:00+08:00", dept="DS"), step("D2", "concluded", "2008-09-26T16:30:00+08:00", dept="DS"),
    ]
    for n in range(3):  # accepted on 10 Sep with a 5-working-day promise: overdue by the 26th
        batch += [submitted(f"G{n}", when="2008-09-10T09:00:00+08:00"), step(f"G{n}", "accepted", "2008-09-10T09:30:00+08:00")]
    r = api.client.post("/api/v1/steps/batch", headers={"Authorization": f"Bearer {api.keys['admin']}"}, json=batch)
    assert r.status_code == 201, r.text
    api.esup.runner.catch_up()
    league = {d["department"]: d for d in api("/api/v1/monitor/summary", params={"days": 30}).json()["departments"]}
    gs, ds = league["GS"], league["DS"]
    assert (gs["on_time_rate"], gs["overdue"], gs["standing_rate"]) == (100.0, 3, 40.0)
    assert (ds["on_time_rate"], ds["overdue"], ds["standing_rate"]) == (50.0, 0, 50.0)
    assert (ds["rank"], gs["rank"]) == (1, 2)

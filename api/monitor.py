"""Live monitoring routes: the event stream, the day's summary and the web dashboard at ``/``.

``GET /api/v1/monitor/stream`` is server-sent events (text/event-stream): ``event: step``,
``event: warning`` and ``event: anomaly``, each ``data:`` one JSON object with its ledger log
``position``; ``id:`` frames carry the resume point, a log position before which everything has
been sent. A client that reconnects with ``Last-Event-ID`` (or ``?after=``) gets everything after
it (a few items again if anomalies were lagging: dedupe by event type and position); without
either, the stream starts at the log's head. The ledger is polled (SQLite and PostgreSQL alike);
blocking reads run in the thread pool.

EventSource cannot send headers, so this endpoint, and only this one, also takes the key as
``?key=``. That puts the key in URLs, where proxies' logs and browser history may keep it (our
own access log redacts it): prefer the header (the dashboard reads the stream with fetch and
sends it), and give a screen that must use ``?key=`` a read-only key (officer/province or a
department's).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time as _time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.http import present
from domain.access import Role
from domain.errors import InvalidInput
from domain.organisation import UnitKind
from services.ingest import Principal
from services.monitor import Item, MonitorFeed, Progress, Scope, Summary, find_anomaly_source

STATIC = Path(__file__).parent / "static"
# The dashboard loads nothing from elsewhere: its own script and stylesheet, charts drawn as SVG.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass
class StreamSettings:
    poll_seconds: float = 0.5  # how often a quiet stream looks at the log again
    heartbeat_seconds: float = 15.0  # comment lines keep proxies and the browser from timing out
    retry_ms: int = 3000  # EventSource's reconnection delay


def _frame(items: list[Item], resume: int | None) -> str:
    """SSE frames for ``items``, then ``id:`` the resume point (an id-only frame sets the client's
    Last-Event-ID without an event, so it also moves past records this reader may not see). A
    connection lost mid-chunk leaves the previous id: the chunk comes again, nothing is skipped."""
    out = []
    for item in items:
        out.append(f"event: {item.kind}\ndata: " + orjson.dumps(present(item.data)).decode() + "\n\n")
    if resume is not None:
        out.append(f"id: {resume}\n\n")
    return "".join(out)


_KEY_IN_QUERY = re.compile(r"([?&]key=)[^&\s]*")


class RedactKeys(logging.Filter):
    """Keeps ``?key=`` secrets out of uvicorn's access log (its args: client, method, path, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "key=" in args[2]:
            record.args = (*args[:2], _KEY_IN_QUERY.sub(r"\1[redacted]", args[2]), *args[3:])
        return True


def _position(raw: str | None, what: str) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput(f"{what} must be a log position (a non-negative integer)", code="invalid_position")
    return int(raw)


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    settings = StreamSettings()
    app.state.monitor_stream = settings
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in access_log.filters):
        access_log.addFilter(RedactKeys())
    feed = MonitorFeed(esup.ledger, esup.views, find_anomaly_source(esup.runner))

    def department_names() -> dict[str, str]:
        return {u.code: u.attrs.get("name", u.code) for u in esup.reference.units(UnitKind.DEPARTMENT)}

    summary = Summary(esup.views, esup.reference.calendar().tz, esup.clock, department_names)

    def allowed(p: Principal) -> frozenset[str] | None:
        return p.scope()

    def stream_principal(request: Request, key: str | None = None) -> Principal:
        if key and not request.headers.get("authorization"):
            return esup.access.authenticate(key.strip())
        return deps.principal(request)

    @app.get("/api/v1/monitor/stream", tags=["monitor"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "server-sent events: step, warning, anomaly; id = resume position"}})
    async def monitor_stream(request: Request, department: str | None = None, kind: str | None = None,
                             after: str | None = None, backlog: int = 0, key: str | None = None,
                             p: Principal = Depends(stream_principal)) -> Response:
        """Live steps, warnings and anomalies. `?department=GS,DS`, `?kind=step,warning,anomaly`;
        resume with the `Last-Event-ID` header or `?after=<position>`; a new screen may ask for the
        last `?backlog=N` steps (at most 500) first. `?key=` is for EventSource clients, which
        cannot send `Authorization` (see the module notes on that trade-off)."""
        scope = Scope.parse(kind, department, allowed(p))
        start = _position(request.headers.get("last-event-id"), "Last-Event-ID")
        if start is None:
            start = _position(after, "after")
        if not 0 <= backlog <= 500:
            raise InvalidInput("backlog must be between 0 and 500", code="invalid_query")
        if start is None:
            start = await run_in_threadpool(feed.backlog_start, backlog)
        return StreamingResponse(_events(request, feed, scope, start, settings), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/v1/monitor/summary", tags=["monitor"])
    def monitor_summary(department: str | None = None, day: str | None = Query(None, alias="date"), days: int = 30,
                        p: Principal = Depends(deps.principal)) -> Any:
        """A day's figures (default today, `?date=YYYY-MM-DD`, in the center's zone) from the case
        board: received (办件量), accepted, concluded (办结) on time or late, refused, withdrawn, open
        and overdue cases now, the hourly profile, a daily trend over `days` (1-92), and the
        department league table (部门排名, by `standing_rate`: on time / (concluded + open past the
        promise now), then fewer overdue open cases, then volume). Department keys see their own
        departments only.
        """
        try:
            on = date.fromisoformat(day) if day else None
        except ValueError:
            raise InvalidInput("date must be YYYY-MM-DD", code="invalid_query") from None
        if on is not None and not 1900 <= on.year <= 2199:
            raise InvalidInput("date must be between 1900 and 2199", code="invalid_query")
        if not 1 <= days <= 92:
            raise InvalidInput("days must be between 1 and 92", code="invalid_query")
        scope = Scope.parse(None, department, allowed(p))
        out = summary.get(on, scope.departments, days)
        return {**out, "scope": {"role": p.role.value,
                                 "departments": sorted(p.departments) if p.role is Role.DEPARTMENT else None}}

    # -- the dashboard ------------------------------------------------------------------------

    app.mount("/dashboard", StaticFiles(directory=STATIC), name="dashboard")

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def _events(request: Request, feed: MonitorFeed, scope: Scope, start: int,
                  settings: StreamSettings) -> AsyncIterator[str]:
    at = Progress.at(start)
    yield f"retry: {settings.retry_ms}\n: esup monitor stream after position {start}\n\n"
    quiet_since = _time.monotonic()
    while True:
        items, now = await run_in_threadpool(feed.read, at, scope)
        resume = now.resume if now.resume != at.resume else None
        if items or resume is not None:
            yield _frame(items, resume)
        if items:
            quiet_since = _time.monotonic()
        moved, at = now != at, now
        if moved:
            continue  # there may be more: read again at once
        if await request.is_disconnected():
            return
        if _time.monotonic() - quiet_since >= settings.heartbeat_seconds:
            yield f": heartbeat {at.resume}\n\n"
            quiet_since = _time.monotonic()
        await asyncio.sleep(settings.poll_seconds)

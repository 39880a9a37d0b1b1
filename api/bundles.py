"""Parallel-approval routes (并联审批): channels (reference data), bundles (the channel window's
acts: submitted with the parts' case numbers, accepted), a bundle with its parts, the bundle
board with its warnings and anomalies, and the figures by channel."""

from __future__ import annotations

from typing import Any

from datetime import date

from fastapi import Depends, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool

from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput, NotFound
from projections import bundles as view

VIEW = "bundles"


def bundle_page(esup: Any, bundle_no: str, p: Any, not_found: str = "unknown_bundle") -> dict[str, Any]:
    """The bundle with its parts (``BundleService.show``), its own anomalies (the bundle view's
    rules) and each visible part's anomaly rules (the anomalies view's rows for that case)."""
    from services.anomalies import AnomalyFilter, list_anomalies

    out = esup.bundles.show(bundle_no, p, not_found=not_found)
    esup.runner.catch_up([VIEW, "anomalies"])
    with esup.views.read() as cur:
        out["anomalies"] = view.anomalies(cur, esup.clock.now(), bundle_no=bundle_no)
    for part in out["parts"]:
        if part["status"] not in ("not_reported", "hidden"):
            rows = list_anomalies(esup, AnomalyFilter(case_no=part["case_no"]))["anomalies"]
            part["anomalies"] = sorted({a["rule"] for a in rows})
    return out


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require, body = deps.principal, deps.require, deps.body
    service = esup.bundles

    def scope(p: Any) -> list[str] | None:
        return sorted(p.departments) if p.role is Role.DEPARTMENT else None

    def read(fn: Any, **kw: Any) -> Any:
        esup.runner.catch_up([VIEW])  # read your writes
        with esup.views.read() as cur:
            return fn(cur, **kw)

    # -- channels (reference data) ------------------------------------------------------------

    @app.put("/api/v1/channels/{code}", tags=["bundles"])
    async def put_channel(code: str, request: Request, p=Depends(principal)) -> Any:
        """Register or revise a parallel-approval channel (admin): ``name``, coordinating
        ``department``, ``center`` (whose office hours its clock follows), member ``items``, the
        bundle's own ``promised_limit`` and ``legal_limit``, optionally the ``serial_limit``."""
        require(p, Role.ADMIN)
        terms, created, changed = esup.reference.put_channel(code, await body(request))
        return JSON({**terms.as_dict(), "changed": changed}, status_code=201 if created else 200)

    @app.get("/api/v1/channels", tags=["bundles"])
    def list_channels(p=Depends(principal)) -> Any:
        return {"channels": [c.current.as_dict() for c in esup.reference.channels()]}

    @app.get("/api/v1/channels/{code}", tags=["bundles"])
    def get_channel(code: str, p=Depends(principal)) -> Any:
        channel = esup.reference.channel(code)
        if channel is None:
            raise NotFound(f"no channel {code}", code="unknown_channel")
        return {**channel.current.as_dict(), "versions": [v.as_dict() for v in channel.versions]}

    # -- the channel window's acts --------------------------------------------------------------

    @app.post("/api/v1/bundles", tags=["bundles"])
    async def submit_bundle(request: Request, p=Depends(principal)) -> Any:
        """A bundle submitted at the channel window: ``{"event_id", "bundle_no", "channel",
        "occurred_at", "parts": [case numbers], "window", "staff", "enterprise", "project"}``.
        The parts are ordinary cases, reported by their departments through ``/api/v1/steps``
        (before or after). ``201`` stored, ``200`` the same event again."""
        raw = await body(request)
        bundle, created = await run_in_threadpool(service.submit, raw, p)
        return JSON(service.show(bundle.bundle_no, p), status_code=201 if created else 200)

    @app.post("/api/v1/bundles/{bundle_no}/accept", tags=["bundles"])
    async def accept_bundle(bundle_no: str, request: Request, p=Depends(principal)) -> Any:
        """The bundle accepted (受理): its clock starts, its own deadlines are set:
        ``{"event_id", "occurred_at", "window", "staff"}``."""
        raw = await body(request)
        bundle, created = await run_in_threadpool(service.accept, bundle_no, raw, p)
        return JSON(service.show(bundle.bundle_no, p), status_code=201 if created else 200)

    # -- reading --------------------------------------------------------------------------------

    @app.get("/api/v1/bundles", tags=["bundles"])
    def list_bundles(channel: str | None = None, status: str | None = None, late: bool | None = None,
                     limit: int = 100, offset: int = 0, p=Depends(principal)) -> Any:
        """The bundle board, newest first, each bundle with its parts, its ``level`` by its own
        limit (yellow / red / severe) and whether it is ``late`` (a part late, or its own limit
        passed). ``status``: submitted, accepted, concluded or open."""
        if status not in (None, "submitted", "accepted", "concluded", "open"):
            raise InvalidInput("status is submitted, accepted, concluded or open", code="invalid_query")
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidInput("limit is 1 to 1000, offset 0 or more", code="invalid_query")
        rows = read(view.list_bundles, now=esup.clock.now(), channel=channel, status=status, late=late,
                    departments=scope(p), limit=limit, offset=offset)
        return {"bundles": rows}

    @app.get("/api/v1/bundles/alerts", tags=["bundles"])
    def bundle_alerts(p=Depends(principal)) -> Any:
        """Warnings of bundles by their own limit (``bundle:yellow``, ``bundle:red``,
        ``bundle:severe``) and of their parts (``bundle:part_late``), as they stand now."""
        return {"alerts": read(view.alerts, now=esup.clock.now(), departments=scope(p))}

    @app.get("/api/v1/bundles/anomalies", tags=["bundles"])
    def bundle_anomalies(p=Depends(principal)) -> Any:
        """Anomalies of bundles, with their evidence: ``bundle_part_late``, ``bundle_over_limit``,
        ``bundle_legal_exceeded``."""
        return {"anomalies": read(view.anomalies, now=esup.clock.now(), departments=scope(p)),
                "rules": {k: {"type": t, "reason": r} for k, (t, r) in view.ANOMALY_RULES.items()}}

    @app.get("/api/v1/bundles/{bundle_no}", tags=["bundles"])
    def get_bundle(bundle_no: str, p=Depends(principal)) -> Any:
        """A bundle and each part's state, read from the part cases, with the bundle's anomalies
        and each part's (also answered by ``GET /api/v1/cases/{bundle_no}``)."""
        return bundle_page(esup, bundle_no, p)

    @app.get("/api/v1/metrics/channels", tags=["bundles"])
    def channel_metrics(day_from: str | None = Query(None, alias="from"), to: str | None = None,
                        p=Depends(principal)) -> Any:
        """Figures by channel: volume, parts (items), enterprises, projects, on-time rate, average
        time (office hours, working days) and working days saved against the serial sum of the
        parts' promised limits. ``from``/``to``: days the bundles were submitted."""
        for d in (day_from, to):
            if d is not None:
                try:
                    date.fromisoformat(d)
                except ValueError:
                    raise InvalidInput("from and to are dates (YYYY-MM-DD)", code="invalid_query") from None
        return {"channels": read(view.channel_metrics, day_from=day_from, day_to=to)}

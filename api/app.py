"""The HTTP API: parse, authorise, call the service layer, shape the answer. Nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from api.http import JSON, install_error_handlers
from domain.access import Role
from domain.errors import DomainError, InvalidInput, NotFound
from domain.organisation import UnitKind
from domain.steps import mask, parse_instant
from services.access import Unauthorised
from infra.pii import SealBroken
from services.cases import IntegrityViolation
from services.ingest import Forbidden, Principal
from services.system import Esup

# Modules with ``install(app, esup, deps)``; ``deps`` has principal (a FastAPI dependency),
# require(principal, *roles), body(request), applicant_view(sealed, principal), check_case_access.
ROUTE_MODULES: list[str] = ["api.monitor", "api.warnings", "api.supervision", "api.checkpoints", "api.feed"]


class BodyTooLarge(DomainError):
    status = 413


UNIT_PATHS = {"centers": UnitKind.CENTER, "halls": UnitKind.HALL, "windows": UnitKind.WINDOW,
              "departments": UnitKind.DEPARTMENT, "staff": UnitKind.STAFF}


def create_app(esup: Esup) -> FastAPI:
    app = FastAPI(
        title="esup",
        description="Event-sourced electronic supervision (电子监察) of administrative approvals. "
        "Every request carries `Authorization: Bearer <key>`. Errors are RFC 9457 problem documents "
        "with a stable `code`.",
        version="1.0",
        default_response_class=JSON,
        docs_url=None,
        redoc_url=None,
    )
    app.state.esup = esup
    install_error_handlers(app)
    from api import docs

    docs.install(app)  # /docs and /redoc from the package's own assets (offline networks)
    from api import openapi

    openapi.install(app)  # bodies, answers, refusals and the bearer scheme (see api/openapi.py)

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "").strip()
        if not header:
            raise Unauthorised("send Authorization: Bearer <key>", code="missing_key")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            # The commonest integration slip: the key sent bare (or under another scheme).
            raise Unauthorised("the Authorization header must read 'Bearer <key>': the word Bearer and a space "
                               "before the key", code="missing_bearer")
        if not token.strip():
            raise Unauthorised("send Authorization: Bearer <key>", code="missing_key")
        return esup.access.authenticate(token.strip())

    def require(p: Principal, *roles: Role) -> None:
        if p.role not in roles:
            raise Forbidden(f"the {p.role.value} role may not do this", code="forbidden_role")

    async def body(request: Request) -> Any:
        limit = esup.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"the body exceeds {limit} bytes", code="body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body exceeds {limit} bytes", code="body_too_large")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json") from None

    def show_case(case, p: Principal) -> dict[str, Any]:
        summary = case.summary()
        try:
            summary["applicant"] = applicant_view(case.applicant, p, strict=True)
        except SealBroken:
            raise IntegrityViolation(
                f"case {case.case_no}: the applicant's sealed personal data (version 1) does not authenticate: "
                "damaged in the store", case_no=case.case_no, version=1, problem="unreadable: applicant") from None
        summary["applicant_kind"] = case.applicant_kind
        return summary

    def applicant_view(sealed: str | None, p: Principal, strict: bool = False) -> dict[str, Any] | None:
        if not sealed:
            return None
        try:
            data = esup.sealer.open(sealed)
        except SealBroken:
            if strict:
                raise
            return {"damaged": True, "code": "integrity_violation"}  # shown as such in a history
        if p.sees_personal_data:
            return data
        return {k: mask(v) for k, v in data.items()}

    def check_case_access(case, p: Principal) -> None:
        if not p.may_read(case.department):
            # Not 403: a department must not learn which case numbers exist elsewhere.
            raise NotFound(f"no case {case.case_no}", code="unknown_case")

    # -- steps -------------------------------------------------------------------------------

    @app.post("/api/v1/steps", status_code=201, tags=["steps"])
    async def post_step(request: Request, p: Principal = Depends(principal)) -> Response:
        require(p, Role.DEPARTMENT, Role.ADMIN)
        raw = await body(request)
        if isinstance(raw, list):
            raise InvalidInput("send one step as an object here, or a list to /api/v1/steps/batch", code="invalid_body")
        from starlette.concurrency import run_in_threadpool

        outcome = (await run_in_threadpool(esup.ingest.report, [raw], p, False))[0]
        return JSON(outcome.as_dict(), status_code=201 if outcome.status == "created" else 200)

    @app.post("/api/v1/steps/batch", status_code=201, tags=["steps"])
    async def post_batch(request: Request, p: Principal = Depends(principal)) -> Response:
        require(p, Role.DEPARTMENT, Role.ADMIN)
        raw = await body(request)
        if isinstance(raw, dict) and "steps" in raw and len(raw) == 1:
            raw = raw["steps"]
        from starlette.concurrency import run_in_threadpool

        outcomes = await run_in_threadpool(esup.ingest.report, raw, p)
        created = sum(1 for o in outcomes if o.status == "created")
        return JSON(
            {"created": created, "duplicates": len(outcomes) - created, "outcomes": [o.as_dict() for o in outcomes]},
            status_code=201 if created else 200,
        )

    # -- cases -------------------------------------------------------------------------------

    @app.get("/api/v1/cases/{case_no}", tags=["cases"])
    def get_case(request: Request, case_no: str, as_of: str | None = None, by: str = "recorded",
                 p: Principal = Depends(principal)) -> Any:
        check_case_access(esup.cases.owner(case_no), p)  # before any damage could tell it exists
        if as_of is None:
            case = esup.cases.current(case_no)
        else:
            case = esup.cases.as_of(case_no, parse_instant(as_of, "as_of"), by)
        out = show_case(case, p)
        if as_of:
            out["as_of"] = as_of
            out["by"] = by
        log_read(request, p, case_no, out.get("applicant"), as_of=as_of, by=by if as_of else None)
        return out

    def log_read(request: Request, p: Principal, case_no: str, applicant: Any, **detail: Any) -> None:
        """Officers' reads are logged (查阅留痕) before the answer leaves: personal data read, a case
        replayed as of an instant, a history with personal data (services/access_log.py)."""
        replay = detail.get("as_of") is not None
        if not replay and not (applicant and p.sees_personal_data):
            return
        action = "replay" if replay else detail.pop("action", "personal_data")
        shown = {k: v for k, v in detail.items() if v is not None and k != "action"}
        esup.access_log.record(p, action, case_no, {"path": request.url.path, "personal_data": bool(
            applicant and p.sees_personal_data), **shown}, request.client.host if request.client else None)

    @app.get("/api/v1/cases/{case_no}/events", tags=["cases"])
    def get_events(request: Request, case_no: str, p: Principal = Depends(principal)) -> Any:
        rows = esup.cases.rows(case_no)
        check_case_access(esup.cases.owner(case_no), p)
        out = []
        for row in rows:
            e = row.event
            if e is None:  # damaged: say so where it was, keep the rest
                out.append({"version": row.version, "damaged": True, "code": "integrity_violation", "problem": row.problem})
                continue
            data = dict(e.data)
            if "applicant" in data:
                data["applicant"] = applicant_view(data["applicant"], p)
            out.append({
                "version": e.originator_version, "step": e.STEP.value, "event_id": e.source_event_id,
                "occurred_at": e.occurred_at, "recorded_at": e.timestamp, "actor": e.actor, "data": data,
                "derived": e.derived, "flags": e.flags, "prev_hash": e.prev_hash, "hash": e.hash,
            })
        applicant = next((e["data"].get("applicant") for e in out if "data" in e and e["data"].get("applicant")), None)
        log_read(request, p, case_no, applicant, action="history")
        return {"case_no": case_no, "events": out}

    @app.get("/api/v1/cases/{case_no}/verify", tags=["cases"])
    def verify_case(case_no: str, p: Principal = Depends(principal)) -> Any:
        check_case_access(esup.cases.owner(case_no), p)
        return esup.cases.verify(case_no)

    # -- reference data ------------------------------------------------------------------------

    @app.put("/api/v1/items/{code}", tags=["catalogue"])
    async def put_item(code: str, request: Request, p: Principal = Depends(principal)) -> Response:
        require(p, Role.ADMIN)
        terms, created, changed = esup.reference.put_item(code, await body(request))
        return JSON({**terms.as_dict(), "changed": changed}, status_code=201 if created else 200)

    @app.get("/api/v1/items", tags=["catalogue"])
    def list_items(p: Principal = Depends(principal)) -> Any:
        return {"items": [i.current.as_dict() for i in esup.reference.items()]}

    @app.get("/api/v1/items/{code}", tags=["catalogue"])
    def get_item(code: str, p: Principal = Depends(principal)) -> Any:
        item = esup.reference.item(code)
        if item is None:
            raise NotFound(f"no item {code}", code="unknown_item")
        return {**item.current.as_dict(), "versions": [v.as_dict() for v in item.versions]}

    def unit_routes(path: str, kind: UnitKind) -> None:
        @app.put(f"/api/v1/{path}/{{code}}", tags=["organisation"], name=f"put_{path}")
        async def put_unit(code: str, request: Request, p: Principal = Depends(principal)) -> Response:
            require(p, Role.ADMIN)
            attrs, created, changed = esup.reference.put_unit(kind, code, await body(request))
            return JSON({**attrs, "changed": changed}, status_code=201 if created else 200)

        @app.get(f"/api/v1/{path}", tags=["organisation"], name=f"list_{path}")
        def list_units(p: Principal = Depends(principal)) -> Any:
            return {path: [u.attrs for u in esup.reference.units(kind)]}

    for path, kind in UNIT_PATHS.items():
        unit_routes(path, kind)

    @app.put("/api/v1/calendar/{year}", tags=["calendar"])
    async def put_year(year: int, request: Request, p: Principal = Depends(principal)) -> Response:
        require(p, Role.ADMIN)
        raw = await body(request)
        from starlette.concurrency import run_in_threadpool

        schedule, created, changed, settled = await run_in_threadpool(esup.calendars.publish, year, raw)
        # ``settled``: cases whose provisional deadlines this year's schedule settled.
        return JSON({**schedule.as_dict(), "changed": changed, "settled": settled}, status_code=201 if created else 200)

    @app.get("/api/v1/calendar/{year}", tags=["calendar"])
    def get_year(year: int, center: str | None = None, p: Principal = Depends(principal)) -> Any:
        cal = esup.reference.calendar(center)
        schedule = cal.schedule(year)
        published = year in esup.reference.published_years()
        return {**schedule.as_dict(), "source": "published" if published else "package",
                "office_hours": cal.office_hours.as_dict()}

    # -- keys and sources ------------------------------------------------------------------------

    @app.post("/api/v1/keys", tags=["access"], status_code=201)
    async def create_key(request: Request, p: Principal = Depends(principal)) -> Any:
        require(p, Role.ADMIN)
        raw = await body(request)
        if not isinstance(raw, dict):
            raise InvalidInput('send {"role": ..., "departments": [...]}', code="invalid_body")
        departments = raw.get("departments") or []
        if not isinstance(departments, list) or not all(isinstance(d, str) for d in departments):
            raise InvalidInput("departments must be a list of codes", code="invalid_field")
        label = raw.get("label")
        if label is not None and not isinstance(label, str):
            raise InvalidInput("label must be a string", code="invalid_field")
        key = esup.access.create(raw.get("role"), departments, label)  # type: ignore[arg-type]
        return {"key": key, "role": raw.get("role"), "departments": departments}

    @app.get("/api/v1/keys", tags=["access"])
    def list_keys(p: Principal = Depends(principal)) -> Any:
        require(p, Role.ADMIN)
        return {"keys": esup.access.list()}

    @app.delete("/api/v1/keys/{public_id}", tags=["access"], status_code=204)
    def revoke_key(public_id: str, p: Principal = Depends(principal)) -> Response:
        require(p, Role.ADMIN)
        esup.access.revoke(public_id)
        return Response(status_code=204)

    @app.get("/api/v1/sources/refusals", tags=["steps"])
    def refusals(p: Principal = Depends(principal)) -> Any:
        counts = esup.ingest.refusal_counts()
        recent = esup.ingest.recent_refusals()
        if p.role is Role.DEPARTMENT:
            counts = {k: v for k, v in counts.items() if k in p.departments}
            recent = {k: v for k, v in recent.items() if k in p.departments}
        # ``refusals``: exact counts per source and code; ``recent``: the last refusals per source
        # (at most ``sample``), newest first.
        return {"refusals": counts, "recent": recent, "sample": esup.ingest.refusals.sample}

    # Feature modules add their own routes (warnings, monitoring, metrics, ...).
    from types import SimpleNamespace

    deps = SimpleNamespace(principal=principal, require=require, body=body, applicant_view=applicant_view,
                           check_case_access=check_case_access)
    app.state.deps = deps
    import importlib

    for module in ROUTE_MODULES:
        importlib.import_module(module).install(app, esup, deps)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Any:
        views = esup.runner.health()
        alarms = [{"code": "view_stopped", "view": f["view"], "position": f["position"],
                   "detail": f"视图 {f['view']} 无法处理日志位置 {f['position']} 的事件，已停在此处（其他视图照常）：{f['error']}"}
                  for f in views["faults"]]
        return {"status": "degraded" if alarms else "ok", "store": esup.settings.store,
                "ledger_position": esup.ledger.recorder.max_notification_id(), "alarms": alarms,
                "calendar": esup.calendars.status(),  # next year's schedule missing from 1 Nov
                "views": views["views"]}

    return app

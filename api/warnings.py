"""Warning routes (预警纠错): the board (now or as of an instant), one warning with its history, the
department's answer, an officer's escalation (督办) and closing, and the warning policy."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput
from domain.steps import parse_instant


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require, body = deps.principal, deps.require, deps.body
    service = esup.warnings

    async def object_body(request: Request) -> dict[str, Any]:
        raw = await body(request)
        if not isinstance(raw, dict):
            raise InvalidInput("send a JSON object", code="invalid_body")
        return raw

    @app.get("/api/v1/warnings", tags=["warnings"])
    def list_warnings(level: str | None = None, department: str | None = None, status: str | None = None,
                      as_of: str | None = None, by: str = "recorded", case_no: str | None = None,
                      limit: int = 1000, offset: int = 0, p=Depends(principal)) -> Any:
        """The warning board, ordered by threshold instant. ``status``: a comma-separated list or
        ``all`` (default: the open ones, issued/answered/escalated). ``as_of``: the board as it
        stood at that instant, as recorded then (``by=recorded``, the default), or by business
        time (``by=occurred``: the cards the cases' timelines had earned by then, with the
        status they had then; ``earned`` marks one the system never issued because the step
        that stopped the case's clock was keyed in first). Department keys see only their
        departments."""
        if by not in ("recorded", "occurred"):
            raise InvalidInput("by is recorded or occurred", code="invalid_query")
        if by == "occurred" and as_of is None:
            raise InvalidInput("by=occurred needs as_of", code="invalid_query")
        instant = parse_instant(as_of, "as_of") if as_of is not None else None
        rows = service.board(p, level=level, department=department, status=status, as_of=instant, case_no=case_no,
                             limit=limit, offset=offset, by=by)
        out: dict[str, Any] = {"warnings": rows}
        if as_of is not None:
            out["as_of"] = instant
            out["by"] = by
        # Rendered here: a returned dict would first go through FastAPI's jsonable_encoder, which
        # for a page of 1,000 cards took 46 of a request's 79 ms at district-year scale, to reach
        # the same bytes.
        return JSON(out)

    @app.get("/api/v1/warnings/{warning_id}", tags=["warnings"])
    def get_warning(warning_id: str, p=Depends(principal)) -> Any:
        return service.get(warning_id, p)

    @app.post("/api/v1/warnings/{warning_id}/answer", tags=["warnings"])
    async def answer(warning_id: str, request: Request, p=Depends(principal)) -> Any:
        """The responsible department's explanation (纠错说明): ``{"explanation": "..."}``."""
        require(p, Role.DEPARTMENT)
        raw = await object_body(request)
        return await run_in_threadpool(service.answer, warning_id, raw.get("explanation"), p)

    @app.post("/api/v1/warnings/{warning_id}/escalate", tags=["warnings"])
    async def escalate(warning_id: str, request: Request, p=Depends(principal)) -> Any:
        """督办: ``{"note": ..., "due_at": <instant>}`` or ``{"within": {"value": 3, "unit":
        "working_days"}}``; default: the policy's escalation limit from now."""
        require(p, Role.OFFICER)
        raw = await object_body(request)
        due_at = parse_instant(raw["due_at"], "due_at") if raw.get("due_at") is not None else None
        return await run_in_threadpool(
            lambda: service.escalate(warning_id, p, due_at=due_at, within=raw.get("within"), note=raw.get("note")))

    @app.post("/api/v1/warnings/{warning_id}/close", tags=["warnings"])
    async def close(warning_id: str, request: Request, p=Depends(principal)) -> Any:
        require(p, Role.OFFICER)
        raw = await object_body(request) if request.headers.get("content-length", "0") != "0" else {}
        return await run_in_threadpool(service.close, warning_id, p, raw.get("note"))

    @app.get("/api/v1/warning-policy", tags=["warnings"])
    def get_policy(center: str | None = None, item: str | None = None, p=Depends(principal)) -> Any:
        """The policy in force for a center and item, with the default and every stored override."""
        return service.effective_policy(center, item)

    def policy_route(path: str, scope: str) -> None:
        @app.put(f"/api/v1/warning-policies/{path}/{{code}}", tags=["warnings"], name=f"put_{scope}_warning_policy")
        async def put_policy(code: str, request: Request, p=Depends(principal)) -> Response:
            """A partial policy for this center or item (keys not given are inherited)."""
            require(p, Role.ADMIN)
            raw = await object_body(request)
            out = await run_in_threadpool(service.put_policy, scope, code, raw)
            return JSON(out, status_code=201 if out["created"] else 200)

    policy_route("centers", "center")
    policy_route("items", "item")

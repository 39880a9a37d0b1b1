"""Audit routes (抽查): plans, the draw, double-random reviewers, findings, closing, reports, the
redraw, and the attribute sample size. Officers and admins; a reviewer records findings only
for the cases assigned to them."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput
from domain.sampling import rate, sample_size

REPORT_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require, body = deps.principal, deps.require, deps.body
    service = esup.audits

    def officer(p: Any) -> None:
        require(p, Role.OFFICER, Role.ADMIN)

    async def object_body(request: Request) -> dict[str, Any]:
        raw = await body(request)
        if not isinstance(raw, dict):
            raise InvalidInput("send a JSON object", code="invalid_body")
        return raw

    @app.get("/api/v1/audits/sample-size", tags=["audits"])
    def get_sample_size(confidence: str = "0.95", tolerable: str = "0.05", expected: str = "0",
                        p=Depends(principal)) -> Any:
        """Attribute sampling: the smallest n with binomial P(X ≤ ⌈n·expected⌉; n, tolerable) ≤
        1 − confidence (rates as fractions of one, e.g. 0.95, or percentages, 95%)."""
        c, t = rate(confidence, "confidence"), rate(tolerable, "tolerable")
        e = rate(expected, "expected", allow_zero=True)
        n = sample_size(c, t, e)
        return {"n": n, "confidence": float(c), "tolerable": float(t), "expected": float(e),
                "allowed_deviations": math.ceil(n * e)}

    @app.get("/api/v1/audits/mine", tags=["audits"])
    def my_cases(p=Depends(principal)) -> Any:
        """The cases drawn for the calling reviewer, across audits, with their finding if recorded."""
        officer(p)
        return {"cases": service.mine(p)}

    @app.get("/api/v1/audits/draws/{draw_id}/redraw", tags=["audits"])
    def redraw(draw_id: str, p=Depends(principal)) -> Any:
        """Re-derive a recorded draw from the log alone and compare (``matches``)."""
        officer(p)
        return service.redraw(draw_id)

    @app.post("/api/v1/audits", tags=["audits"], status_code=201)
    async def plan(request: Request, p=Depends(principal)) -> Response:
        officer(p)
        raw = await object_body(request)
        return JSON(await run_in_threadpool(service.plan, raw, p), status_code=201)

    @app.get("/api/v1/audits", tags=["audits"])
    def list_audits(p=Depends(principal)) -> Any:
        officer(p)
        return {"audits": service.list()}

    @app.get("/api/v1/audits/{audit_id}", tags=["audits"])
    def get_audit(audit_id: str, p=Depends(principal)) -> Any:
        officer(p)
        return service.get(audit_id)

    @app.post("/api/v1/audits/{audit_id}/draw", tags=["audits"])
    async def draw(audit_id: str, request: Request, p=Depends(principal)) -> Any:
        """``{"seed": "..."}``: the seed the commission announced; the population is fixed at a
        checkpoint issued now, and the sample drawn from the seed and its root."""
        officer(p)
        raw = await object_body(request)
        return await run_in_threadpool(service.draw, audit_id, raw.get("seed"), p)

    @app.post("/api/v1/audits/{audit_id}/assign", tags=["audits"])
    async def assign(audit_id: str, request: Request, p=Depends(principal)) -> Any:
        """``{"pool": [{"id": <officer key id>, "name", "departments", "conflicts"}], "per_case": 2}``."""
        officer(p)
        raw = await object_body(request)
        return await run_in_threadpool(service.assign, audit_id, raw.get("pool"), raw.get("per_case"), p)

    @app.post("/api/v1/audits/{audit_id}/findings", tags=["audits"], status_code=201)
    async def finding(audit_id: str, request: Request, p=Depends(principal)) -> Response:
        """``{"case_no", "points": {code: {"result": "conforming"|"deviation", "note"}}, "note"}``."""
        officer(p)
        raw = await object_body(request)
        return JSON(await run_in_threadpool(service.finding, audit_id, raw, p), status_code=201)

    @app.post("/api/v1/audits/{audit_id}/close", tags=["audits"])
    async def close(audit_id: str, p=Depends(principal)) -> Any:
        officer(p)
        return await run_in_threadpool(service.close, audit_id, p)

    @app.get("/api/v1/audits/{audit_id}/report", tags=["audits"])
    def report(audit_id: str, format: str = "html", p=Depends(principal)) -> Response:
        """The audit's report with the draw's proof: printable HTML, PDF or an xlsx workbook."""
        officer(p)
        if format not in REPORT_TYPES:
            raise InvalidInput("format is html, pdf or xlsx", code="invalid_query")
        from services import audit_reports

        summary = service.get(audit_id)
        content = audit_reports.render(summary, format)
        headers = {}
        if format != "html":
            headers["Content-Disposition"] = f'attachment; filename="audit-{summary["id"][:8]}.{format}"'
        return Response(content, media_type=REPORT_TYPES[format], headers=headers)

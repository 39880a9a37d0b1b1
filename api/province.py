"""The province's own HTTP service (``esup province``): its API under ``/api/v1/province/*`` and
the 省级监察 page at ``/``.

A separate FastAPI app, not routes of a district's server: the province is another service with
another store (its own PostgreSQL) and no district ledger behind it, and it runs where the
province runs. Bearer key: ``ESUP_PROVINCE_KEY`` (when unset the API is open: bind it to
loopback). Refusals are RFC 9457 problem documents with a stable ``code``.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

STATIC = Path(__file__).resolve().parent / "static"
PROBLEM = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status, self.code, self.detail = status, code, detail


def create_province_app(province: Any, key: str | None = None) -> FastAPI:
    app = FastAPI(title="esup province (省级监察)", version="1", docs_url="/docs", redoc_url=None)

    @app.exception_handler(Problem)
    def problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": exc.code, "status": exc.status, "detail": exc.detail,
                             "code": exc.code}, status_code=exc.status, media_type=PROBLEM)

    @app.exception_handler(StarletteHTTPException)
    def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"type": "about:blank", "title": code, "status": exc.status_code, "detail": str(exc.detail),
                             "code": code}, status_code=exc.status_code, media_type=PROBLEM)

    @app.exception_handler(ValueError)
    def invalid(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": "invalid_query", "status": 422, "detail": str(exc),
                             "code": "invalid_query"}, status_code=422, media_type=PROBLEM)

    def principal(request: Request) -> None:
        if not key:
            return
        header = request.headers.get("authorization", "")
        if not header:
            raise Problem(401, "missing_key", "send Authorization: Bearer <key>")
        if not header.startswith("Bearer "):
            raise Problem(401, "missing_bearer", "the Authorization header needs the word Bearer before the key")
        if not hmac.compare_digest(header[7:].strip(), key):
            raise Problem(401, "invalid_key", "this key is not the province's")

    def known(district: str) -> None:
        if district not in {d["district"] for d in province.districts()}:
            raise Problem(404, "unknown_district", f"no records from district {district}")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "province.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in ("province.js", "province.css"):
            raise Problem(404, "not_found", "no such file")
        return FileResponse(STATIC / name)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok", "applied": province.applied, "assigned": province.assigned,
                "witness_key": province.witness_key}

    @app.get("/api/v1/province/districts")
    def districts(p=Depends(principal)) -> Any:
        """Every district ranked (综合按时率), with its open warnings by level, red cards, open
        anomalies, alarms and how far its log has arrived."""
        return {"districts": province.districts()}

    @app.get("/api/v1/province/warnings")
    def board(district: str | None = None, level: str | None = None, limit: int = 500, p=Depends(principal)) -> Any:
        """The provincial board: every district's open warnings."""
        if not 1 <= limit <= 5000:
            raise Problem(422, "invalid_limit", "limit is 1..5000")
        return {"warnings": province.board(district, level, limit)}

    @app.get("/api/v1/province/performance")
    def performance(group_by: str = "district", district: str | None = None, p=Depends(principal)) -> Any:
        """Figures by district, or by department across districts."""
        if group_by not in ("district", "department"):
            raise Problem(422, "invalid_query", "group_by is district or department")
        return {"group_by": group_by, "rows": province.performance(group_by, district)}

    @app.get("/api/v1/province/districts/{district}/cases")
    def cases(district: str, limit: int = 100, offset: int = 0, p=Depends(principal)) -> Any:
        known(district)
        if not 1 <= limit <= 1000 or offset < 0:
            raise Problem(422, "invalid_limit", "limit is 1..1000, offset >= 0")
        return {"district": district, "cases": province.cases(district, limit, offset)}

    @app.get("/api/v1/province/districts/{district}/cases/{case_no}")
    def case(district: str, case_no: str, p=Depends(principal)) -> Any:
        """A district's case for replay: its state and every record the province holds, in log order."""
        found = province.case(district, case_no)
        if found is None:
            raise Problem(404, "unknown_case", f"district {district} sent no case {case_no}")
        return found

    @app.get("/api/v1/province/reconciliation")
    def reconciliation(district: str | None = None, day: str | None = None, p=Depends(principal)) -> Any:
        """The daily reconciliation reports (日对账): per district and day, the digest against
        what the province holds, the missing and extra positions, what was asked again."""
        return {"reports": province.reports(district, day)}

    @app.get("/api/v1/province/checkpoints")
    def checkpoints(district: str | None = None, p=Depends(principal)) -> Any:
        """The district checkpoints the province accepted, each with the witness's cosignature."""
        return {"witness_key": province.witness_key, "checkpoints": province.checkpoints(district)}

    @app.get("/api/v1/province/alarms")
    def alarms(district: str | None = None, p=Depends(principal)) -> Any:
        """History rewritten, bad signatures: each with its evidence."""
        return {"alarms": province.alarms(district)}

    return app

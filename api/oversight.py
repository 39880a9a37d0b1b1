"""Complaint (投诉) and supervision-notice (督察意见 → 整改) routes: thin, the rules are in the domain
and services/oversight.py."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput

COMPLAINT_ACTS = ("accept", "refuse", "assign", "investigate", "conclude")
PROBLEM_ACTS = {"report": "report", "verify": "verify", "send-back": "send_back"}


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require, body = deps.principal, deps.require, deps.body
    service = esup.oversight

    async def optional_body(request: Request) -> Any:
        if request.headers.get("content-length", "0") == "0" and "chunked" not in request.headers.get(
                "transfer-encoding", ""):
            return {}
        return await body(request)

    def show_complaint(c: Any, p: Any, history: bool = True) -> dict[str, Any]:
        out = c.as_dict()
        out["complainant"] = deps.applicant_view(c.complainant, p)
        if history:
            out["history"] = service.complaint_history(c)
        return out

    def show_notice(n: Any, history: bool = True) -> dict[str, Any]:
        out = n.as_dict()
        if history:
            out["history"] = service.notice_history(n)
        return out

    # -- complaints ------------------------------------------------------------------------------

    @app.post("/api/v1/complaints", tags=["complaints"], status_code=201)
    async def receive_complaint(request: Request, p=Depends(principal)) -> Any:
        """Receive a complaint (收到投诉): ``complaint_no``, ``channel`` (phone, letter, online,
        in_person), ``department``, optional ``window``, ``staff``, ``case_no``, ``summary``,
        ``complainant`` (name, phone, id_number, address: sealed), ``received_at``."""
        require(p, Role.OFFICER, Role.ADMIN)
        raw = await body(request)
        c = await run_in_threadpool(service.receive, raw, p)
        return JSON(show_complaint(c, p), status_code=201)

    @app.get("/api/v1/complaints", tags=["complaints"])
    def list_complaints(status: str | None = None, department: str | None = None, late: bool = False,
                        limit: int = 100, offset: int = 0, p=Depends(principal)) -> Any:
        """The complaint board, newest first; ``late=true``: only those past their stage's deadline
        now. Department keys see the complaints against their departments."""
        return service.complaint_board(p, status=status, department=department, late=late, limit=limit,
                                       offset=offset)

    @app.get("/api/v1/complaints/{complaint_no}", tags=["complaints"])
    def get_complaint(complaint_no: str, p=Depends(principal)) -> Any:
        return show_complaint(service.complaint(complaint_no, p), p)

    def complaint_act(act: str) -> None:
        @app.post(f"/api/v1/complaints/{{complaint_no}}/{act}", tags=["complaints"], name=f"complaint_{act}")
        async def act_route(complaint_no: str, request: Request, p=Depends(principal)) -> Any:
            require(p, Role.OFFICER, Role.ADMIN)
            raw = await optional_body(request)
            c = await run_in_threadpool(service.act_on_complaint, complaint_no, act, raw, p)
            return show_complaint(c, p)

    for act in COMPLAINT_ACTS:
        complaint_act(act)

    # -- notices ---------------------------------------------------------------------------------

    @app.post("/api/v1/notices", tags=["notices"], status_code=201)
    async def issue_notice(request: Request, p=Depends(principal)) -> Any:
        """Issue a supervision notice (督察意见): ``notice_no``, ``department``, ``title``,
        ``problems`` (each ``source``: audit, anomaly, complaint or inspection, ``ref``,
        ``description``, ``due_date`` or ``within``), optional ``inspection`` (互查互评: ``round``,
        ``inspector``, ``inspected``)."""
        require(p, Role.OFFICER)
        raw = await body(request)
        n = await run_in_threadpool(service.issue, raw, p)
        return JSON(show_notice(n), status_code=201)

    @app.get("/api/v1/notices", tags=["notices"])
    def list_notices(status: str | None = None, department: str | None = None, round: str | None = None,
                     limit: int = 100, offset: int = 0, p=Depends(principal)) -> Any:
        return service.notice_board(p, status=status, department=department, round=round, limit=limit,
                                    offset=offset)

    @app.get("/api/v1/notices/{notice_no}", tags=["notices"])
    def get_notice(notice_no: str, p=Depends(principal)) -> Any:
        return show_notice(service.notice(notice_no, p))

    def problem_act(path: str, act: str) -> None:
        @app.post(f"/api/v1/notices/{{notice_no}}/problems/{{problem_no}}/{path}", tags=["notices"],
                  name=f"problem_{act}")
        async def act_route(notice_no: str, problem_no: int, request: Request, p=Depends(principal)) -> Any:
            if act == "report":
                require(p, Role.DEPARTMENT, Role.ADMIN)
            else:
                require(p, Role.OFFICER)
            raw = await optional_body(request)
            n = await run_in_threadpool(service.act_on_problem, notice_no, problem_no, act, raw, p)
            return show_notice(n)

    for path, act in PROBLEM_ACTS.items():
        problem_act(path, act)

    @app.get("/api/v1/oversight/summary", tags=["notices"])
    def oversight_summary(year: int | None = None, p=Depends(principal)) -> Any:
        """Complaints and notices in a year (all years if none): counts for the dashboard."""
        require(p, Role.OFFICER, Role.PROVINCE, Role.ADMIN)
        if year is not None and not 1900 <= year <= 2199:
            raise InvalidInput("year is 1900 to 2199", code="invalid_query")
        return service.summary(year)

"""The annual staff assessment (年终考核): the ranking with suggested grades (JSON or the xlsx
workbook for the assessment group) and the facts behind each figure."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from domain.access import Role
from domain.errors import InvalidInput

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require = deps.principal, deps.require
    service = esup.assessment

    @app.get("/api/v1/assessment/{year}", tags=["assessment"])
    async def get_assessment(year: int, format: str = "json", p=Depends(principal)) -> Any:
        """Every window staff member's objective efficiency figures for the year, the score, the
        rank and the suggested grade (优秀 / 称职 / 基本称职 / 不称职) under the 优秀 quota;
        ``format=xlsx``: the workbook (ranking, every fact behind a count, the scoring rules)."""
        require(p, Role.OFFICER, Role.ADMIN)
        if format not in ("json", "xlsx"):
            raise InvalidInput("format is json or xlsx", code="invalid_query")
        if format == "xlsx":
            content = await run_in_threadpool(service.xlsx, year)
            return Response(content, media_type=XLSX,
                            headers={"content-disposition": f'attachment; filename="esup-assessment-{year}.xlsx"'})
        return await run_in_threadpool(service.result, year)

    @app.get("/api/v1/assessment/{year}/facts", tags=["assessment"])
    async def get_facts(year: int, staff: str | None = None, kind: str | None = None, p=Depends(principal)) -> Any:
        """The facts behind the counts: per fact the staff member, the figure (``kind``), the case
        (or complaint) number, the source event id (or warning id) and the log position."""
        require(p, Role.OFFICER, Role.ADMIN)
        facts = await run_in_threadpool(service.facts, year, staff, kind)
        return {"year": year, "staff": staff, "kind": kind, "facts": facts}

"""Reference data: the item catalogue (事项), the organisation, the working calendar."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import EsupDep, PrincipalDep, body, require
from api.http import JSON
from domain.access import Role
from domain.errors import NotFound
from domain.organisation import UnitKind

router = APIRouter(prefix="/api/v1")

UNIT_PATHS = {"centers": UnitKind.CENTER, "halls": UnitKind.HALL, "windows": UnitKind.WINDOW,
              "departments": UnitKind.DEPARTMENT, "staff": UnitKind.STAFF}


@router.put("/items/{code}", tags=["catalogue"])
async def put_item(code: str, request: Request, esup: EsupDep, p: PrincipalDep) -> Response:
    require(p, Role.ADMIN)
    terms, created, changed = esup.reference.put_item(code, await body(request))
    return JSON({**terms.as_dict(), "changed": changed}, status_code=201 if created else 200)


@router.get("/items", tags=["catalogue"])
def list_items(esup: EsupDep, p: PrincipalDep) -> Any:
    return {"items": [i.current.as_dict() for i in esup.reference.items()]}


@router.get("/items/{code}", tags=["catalogue"])
def get_item(code: str, esup: EsupDep, p: PrincipalDep) -> Any:
    item = esup.reference.item(code)
    if item is None:
        raise NotFound(f"no item {code}", code="unknown_item")
    return {**item.current.as_dict(), "versions": [v.as_dict() for v in item.versions]}


def _unit_routes(path: str, kind: UnitKind) -> None:
    @router.put(f"/{path}/{{code}}", tags=["organisation"], name=f"put_{path}")
    async def put_unit(code: str, request: Request, esup: EsupDep, p: PrincipalDep) -> Response:
        require(p, Role.ADMIN)
        attrs, created, changed = esup.reference.put_unit(kind, code, await body(request))
        return JSON({**attrs, "changed": changed}, status_code=201 if created else 200)

    @router.get(f"/{path}", tags=["organisation"], name=f"list_{path}")
    def list_units(esup: EsupDep, p: PrincipalDep) -> Any:
        return {path: [u.attrs for u in esup.reference.units(kind)]}


for _path, _kind in UNIT_PATHS.items():
    _unit_routes(_path, _kind)


@router.put("/calendar/{year}", tags=["calendar"])
async def put_year(year: int, request: Request, esup: EsupDep, p: PrincipalDep) -> Response:
    require(p, Role.ADMIN)
    raw = await body(request)
    schedule, created, changed, settled = await run_in_threadpool(esup.calendars.publish, year, raw)
    # ``settled``: cases whose provisional deadlines this year's schedule settled.
    return JSON({**schedule.as_dict(), "changed": changed, "settled": settled}, status_code=201 if created else 200)


@router.get("/calendar/{year}", tags=["calendar"])
def get_year(year: int, esup: EsupDep, p: PrincipalDep, center: str | None = None) -> Any:
    cal = esup.reference.calendar(center)
    schedule = cal.schedule(year)
    published = year in esup.reference.published_years()
    return {**schedule.as_dict(), "source": "published" if published else "package",
            "office_hours": cal.office_hours.as_dict()}

"""Steps (办件环节) reported by the departments' systems, one at a time or in batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import EsupDep, PrincipalDep, body, require
from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["steps"])


@router.post("/steps", status_code=201)
async def post_step(request: Request, esup: EsupDep, p: PrincipalDep) -> Response:
    require(p, Role.DEPARTMENT, Role.ADMIN)
    raw = await body(request)
    if isinstance(raw, list):
        raise InvalidInput("send one step as an object here, or a list to /api/v1/steps/batch", code="invalid_body")
    outcome = (await run_in_threadpool(esup.ingest.report, [raw], p, False))[0]
    return JSON(outcome.as_dict(), status_code=201 if outcome.status == "created" else 200)


@router.post("/steps/batch", status_code=201)
async def post_batch(request: Request, esup: EsupDep, p: PrincipalDep) -> Response:
    require(p, Role.DEPARTMENT, Role.ADMIN)
    raw = await body(request)
    if isinstance(raw, dict) and "steps" in raw and len(raw) == 1:
        raw = raw["steps"]
    outcomes = await run_in_threadpool(esup.ingest.report, raw, p)
    created = sum(1 for o in outcomes if o.status == "created")
    return JSON(
        {"created": created, "duplicates": len(outcomes) - created, "outcomes": [o.as_dict() for o in outcomes]},
        status_code=201 if created else 200,
    )


@router.get("/sources/refusals")
def refusals(esup: EsupDep, p: PrincipalDep) -> Any:
    # ``refusals``: exact counts per source and code; ``recent``: the last refusals per source
    # (at most ``sample``), newest first. A department sees its own sources only.
    return {"refusals": p.only_readable(esup.ingest.refusal_counts()),
            "recent": p.only_readable(esup.ingest.recent_refusals()), "sample": esup.ingest.refusals.sample}

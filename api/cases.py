"""A case (办件): its state now or as of any instant, its events with their chain, its verdict."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import EsupDep, PrincipalDep, applicant_view, check_case_access, show_case
from domain.steps import parse_instant

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.get("/{case_no}")
def get_case(case_no: str, esup: EsupDep, p: PrincipalDep, as_of: str | None = None, by: str = "recorded") -> Any:
    check_case_access(esup.cases.owner(case_no), p)  # before any damage could tell it exists
    if as_of is None:
        case = esup.cases.current(case_no)
    else:
        case = esup.cases.as_of(case_no, parse_instant(as_of, "as_of"), by)
    out = show_case(esup, case, p)
    if as_of:
        out["as_of"] = as_of
        out["by"] = by
    return out


@router.get("/{case_no}/events")
def get_events(case_no: str, esup: EsupDep, p: PrincipalDep) -> Any:
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
            data["applicant"] = applicant_view(esup, data["applicant"], p)
        out.append({
            "version": e.originator_version, "step": e.STEP.value, "event_id": e.source_event_id,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp, "actor": e.actor, "data": data,
            "derived": e.derived, "flags": e.flags, "prev_hash": e.prev_hash, "hash": e.hash,
        })
    return {"case_no": case_no, "events": out}


@router.get("/{case_no}/verify")
def verify_case(case_no: str, esup: EsupDep, p: PrincipalDep) -> Any:
    check_case_access(esup.cases.owner(case_no), p)
    return esup.cases.verify(case_no)

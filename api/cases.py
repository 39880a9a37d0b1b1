"""A case (办件): its state now or as of any instant, its events with their chain, its verdict."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import EsupDep, PrincipalDep, applicant_view, check_case_access, show_case
from domain.errors import NotFound
from domain.steps import parse_instant

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def log_read(esup: Any, request: Request, p: Any, case_no: str, applicant: Any, **detail: Any) -> None:
    """Officers' reads are logged (查阅留痕) before the answer leaves: personal data read, a case
    replayed as of an instant, a history with personal data (services/access_log.py)."""
    replay = detail.get("as_of") is not None
    if not replay and not (applicant and p.sees_personal_data):
        return
    action = "replay" if replay else detail.pop("action", "personal_data")
    shown = {k: v for k, v in detail.items() if v is not None and k != "action"}
    esup.access_log.record(p, action, case_no, {"path": request.url.path, "personal_data": bool(
        applicant and p.sees_personal_data), **shown}, request.client.host if request.client else None)


@router.get("/{case_no}")
def get_case(request: Request, case_no: str, esup: EsupDep, p: PrincipalDep, as_of: str | None = None,
             by: str = "recorded") -> Any:
    try:
        owner = esup.cases.owner(case_no)
    except NotFound:
        if as_of is None and esup.bundles is not None and esup.bundles.is_bundle(case_no):
            from api.bundles import bundle_page  # a parallel-approval bundle: its parts and their states

            return bundle_page(esup, case_no, p, not_found="unknown_case")
        raise
    check_case_access(owner, p)  # before any damage could tell it exists
    if as_of is None:
        case = esup.cases.current(case_no)
    else:
        case = esup.cases.as_of(case_no, parse_instant(as_of, "as_of"), by)
    out = show_case(esup, case, p)
    if as_of:
        out["as_of"] = as_of
        out["by"] = by
    log_read(esup, request, p, case_no, out.get("applicant"), as_of=as_of, by=by if as_of else None)
    return out


@router.get("/{case_no}/events")
def get_events(request: Request, case_no: str, esup: EsupDep, p: PrincipalDep) -> Any:
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
    applicant = next((e["data"].get("applicant") for e in out if "data" in e and e["data"].get("applicant")), None)
    log_read(esup, request, p, case_no, applicant, action="history")
    return {"case_no": case_no, "events": out}


@router.get("/{case_no}/verify")
def verify_case(case_no: str, esup: EsupDep, p: PrincipalDep) -> Any:
    check_case_access(esup.cases.owner(case_no), p)
    return esup.cases.verify(case_no)

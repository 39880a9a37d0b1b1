"""What every route depends on, the FastAPI way: the system, the caller, the body.

``EsupDep`` and ``PrincipalDep`` are ``Annotated`` dependencies; a route declares
``p: PrincipalDep`` and gets the authenticated caller (401 problems otherwise). The department
scope rule itself is ``domain.access.Principal`` (``may_read``, ``scope``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from domain.access import Forbidden, Principal, Role
from domain.errors import DomainError, InvalidInput, NotFound
from domain.steps import mask
from infra.pii import SealBroken
from services.access import Unauthorised
from services.cases import IntegrityViolation
from services.system import Esup


class BodyTooLarge(DomainError):
    status = 413


def get_esup(request: Request) -> Esup:
    return request.app.state.esup


EsupDep = Annotated[Esup, Depends(get_esup)]


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
    return get_esup(request).access.authenticate(token.strip())


PrincipalDep = Annotated[Principal, Depends(principal)]


def require(p: Principal, *roles: Role) -> None:
    if p.role not in roles:
        raise Forbidden(f"the {p.role.value} role may not do this", code="forbidden_role")


async def body(request: Request) -> Any:
    """The JSON body, read within the configured size limit (413 beyond it)."""
    limit = get_esup(request).settings.max_body_bytes
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


def applicant_view(esup: Esup, sealed: str | None, p: Principal, strict: bool = False) -> dict[str, Any] | None:
    """The applicant's personal data as this caller may see it: officers in full, others masked."""
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


def check_case_access(case: Any, p: Principal) -> None:
    if not p.may_read(case.department):
        # Not 403: a department must not learn which case numbers exist elsewhere.
        raise NotFound(f"no case {case.case_no}", code="unknown_case")


def show_case(esup: Esup, case: Any, p: Principal) -> dict[str, Any]:
    summary = case.summary()
    try:
        summary["applicant"] = applicant_view(esup, case.applicant, p, strict=True)
    except SealBroken:
        raise IntegrityViolation(
            f"case {case.case_no}: the applicant's sealed personal data (version 1) does not authenticate: "
            "damaged in the store", case_no=case.case_no, version=1, problem="unreadable: applicant") from None
    summary["applicant_kind"] = case.applicant_kind
    return summary

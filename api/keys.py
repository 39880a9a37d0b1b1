"""API keys (访问密钥): issued, listed and revoked by the admin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import EsupDep, PrincipalDep, body, require
from domain.access import Role
from domain.errors import InvalidInput

router = APIRouter(prefix="/api/v1/keys", tags=["access"])


@router.post("", status_code=201)
async def create_key(request: Request, esup: EsupDep, p: PrincipalDep) -> Any:
    require(p, Role.ADMIN)
    raw = await body(request)
    if not isinstance(raw, dict):
        raise InvalidInput('send {"role": ..., "departments": [...]}', code="invalid_body")
    departments = raw.get("departments") or []
    if not isinstance(departments, list) or not all(isinstance(d, str) for d in departments):
        raise InvalidInput("departments must be a list of codes", code="invalid_field")
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise InvalidInput("label must be a string", code="invalid_field")
    key = esup.access.create(raw.get("role"), departments, label)  # type: ignore[arg-type]
    return {"key": key, "role": raw.get("role"), "departments": departments}


@router.get("")
def list_keys(esup: EsupDep, p: PrincipalDep) -> Any:
    require(p, Role.ADMIN)
    return {"keys": esup.access.list()}


@router.delete("/{public_id}", status_code=204)
def revoke_key(public_id: str, esup: EsupDep, p: PrincipalDep) -> Response:
    require(p, Role.ADMIN)
    esup.access.revoke(public_id)
    return Response(status_code=204)

"""Routes for the tamper-evident log: signed checkpoints, the verifier key, inclusion and
consistency proofs, and the access log of officers' reads.

``GET /api/v1/checkpoints/latest`` (the signed note, text/plain), ``POST /api/v1/checkpoints``
(sign now: officer or admin), ``GET /api/v1/checkpoints/key`` (text/plain verifier key),
``GET /api/v1/proofs/inclusion?case_no=&version=&size=``, ``GET /api/v1/proofs/consistency?from=&to=``,
``GET /api/v1/access-log`` (admin). ``log=access`` on the checkpoint and proof routes answers for
the access log's own tree.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.http import JSON
from domain.access import Role
from domain.errors import InvalidInput, NotFound

LOGS = ("ledger", "access")


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal, require = deps.principal, deps.require

    def service(log: str) -> Any:
        if log not in LOGS:
            raise InvalidInput("log is ledger or access", code="invalid_query")
        return esup.checkpoints if log == "ledger" else esup.access_checkpoints

    @app.get("/api/v1/checkpoints/latest", tags=["integrity"], response_class=Response)
    def latest_checkpoint(log: str = "ledger", p=Depends(principal)) -> Response:
        """The latest signed checkpoint (C2SP tlog-checkpoint signed note), as text."""
        cp = service(log).latest()
        if cp is None:
            raise NotFound("no checkpoint has been signed yet", code="no_checkpoint")
        return Response(cp.note, media_type="text/plain; charset=utf-8")

    @app.post("/api/v1/checkpoints", tags=["integrity"], status_code=201)
    async def issue_checkpoint(log: str = "ledger", p=Depends(principal)) -> Response:
        """Sign the tree head now (201); the latest checkpoint again (200) if the log has not moved."""
        require(p, Role.OFFICER, Role.ADMIN)
        svc = service(log)
        before = svc.latest()
        cp = await run_in_threadpool(svc.issue)
        return JSON(cp.as_dict(), status_code=200 if before is not None and before.size == cp.size else 201)

    @app.get("/api/v1/checkpoints/key", tags=["integrity"], response_class=Response)
    def checkpoint_key(log: str = "ledger", p=Depends(principal)) -> Response:
        """The verifier key: ``name+keyid+base64(0x01 ‖ Ed25519 public key)``."""
        return Response(service(log).verifier_key() + "\n", media_type="text/plain; charset=utf-8")

    @app.get("/api/v1/proofs/inclusion", tags=["integrity"])
    def inclusion(case_no: str = Query(..., min_length=1, max_length=50), version: int = Query(..., ge=1, lt=2**31),
                  size: int | None = Query(None, ge=1, lt=2**62), p=Depends(principal)) -> Any:
        """The case event's leaf index in the tree of ``size`` leaves (default: the latest
        checkpoint's) and its audit path (base64 hashes, RFC 6962 order)."""
        deps.check_case_access(esup.cases.owner(case_no), p)
        return esup.checkpoints.inclusion(case_no, version, size)

    @app.get("/api/v1/proofs/consistency", tags=["integrity"])
    def consistency(from_: int = Query(..., alias="from", ge=0, lt=2**62), to: int | None = Query(None, ge=1, lt=2**62),
                    log: str = "ledger", p=Depends(principal)) -> Any:
        """The proof that the tree of ``from`` leaves is a prefix of the tree of ``to`` (default:
        the latest checkpoint's)."""
        return service(log).consistency(from_, to)

    @app.get("/api/v1/access-log", tags=["integrity"])
    def access_log(case_no: str | None = Query(None, max_length=50), key: str | None = Query(None, max_length=100),
                   action: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   before: int | None = Query(None, ge=0, lt=2**62), p=Depends(principal)) -> Any:
        """Officers' reads (newest first): who, when, what, from where. ``before``: the ``index``
        of the last entry seen, for the next page."""
        require(p, Role.ADMIN)
        return {"entries": esup.access_log.entries(case_no=case_no, key=key, action=action, limit=limit,
                                                   before=before)}

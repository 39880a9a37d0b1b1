"""HTTP plumbing: orjson responses and RFC 9457 problem documents with stable codes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError

PROBLEM_TYPE = "urn:esup:problem:"


def _default(obj: Any) -> Any:
    from decimal import Decimal
    from fractions import Fraction

    if isinstance(obj, (Decimal, Fraction)):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


def problem(status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> Response:
    body = {**extra, "type": PROBLEM_TYPE + code, "title": title or code.replace("_", " "), "status": status,
            "detail": detail, "code": code}
    return Response(orjson.dumps(body, default=_default), status_code=status, media_type="application/problem+json")


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        extra: dict[str, Any] = exc.public_context()
        errors = getattr(exc, "errors", None)
        if errors is not None:
            extra["errors"] = [e.as_dict() for e in errors]
            extra["stored"] = 0
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        resp = problem(exc.status, exc.code, exc.detail, **extra)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errs = [{"loc": [str(x) for x in e.get("loc", ())], "msg": e.get("msg")} for e in exc.errors()]
        return problem(422, "invalid_request", "the request's parameters are not valid", errors=errs)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "no_such_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        resp = problem(exc.status_code, code, str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:
            # RFC 9110: a 405 lists every method the path takes. Starlette names only the first
            # route that matched the path, and GET and PUT of one path are separate routes here.
            resp.headers["Allow"] = ", ".join(_allowed_methods(request))
        return resp

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:  # pragma: no cover - last resort
        import logging

        logging.getLogger("esup").exception("unhandled error")
        return problem(500, "internal_error", "an internal error occurred; it has been logged")

"""HTTP plumbing: orjson responses and RFC 9457 problem documents with stable codes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.calendar import CHINA_TZ
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


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")
# Stored event payloads are shown as stored: the hash chain covers them, byte for byte.
_AS_STORED = frozenset({"data", "derived", "flags"})


def instant_text(value: datetime) -> str:
    """Every instant esup answers: RFC 3339 in China time, e.g. ``2008-10-06T10:00:00+08:00``
    (microseconds only when there are some)."""
    return value.astimezone(CHINA_TZ).isoformat()


def deadline_date(value: datetime) -> str:
    """The last day a deadline covers: "by the end of 29 Oct" is the instant 30 Oct 00:00, and
    its day is the 29th; a deadline at 11:30 ends on its own day."""
    return (value.astimezone(CHINA_TZ) - timedelta(microseconds=1)).date().isoformat()


def _instant_key(key: Any) -> bool:
    return isinstance(key, str) and (key in ("at", "as_of") or key.endswith(("_at", "_from", "_to")))


def present(content: Any) -> Any:
    """One style for every answer: instants (datetimes, and instant strings under ``at``,
    ``as_of``, ``*_at``, ``*_from``, ``*_to``) in China time; each ``*_due_at`` deadline joined by its ``*_due_date``, the day it ends."""
    if isinstance(content, dict):
        out: dict[Any, Any] = {}
        for key, value in content.items():
            if isinstance(key, str) and key in _AS_STORED:
                out[key] = value
                continue
            if isinstance(value, str) and _instant_key(key) and _INSTANT.match(value):
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            out[key] = present(value)
            if isinstance(key, str) and key.endswith("due_at") and isinstance(value, datetime):
                date_key = key[:-3] + "_date"
                if date_key not in content:
                    out[date_key] = deadline_date(value)
        return out
    if isinstance(content, (list, tuple)):
        return [present(v) for v in content]
    if isinstance(content, datetime):
        return instant_text(content)
    return content


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(present(content), default=_default, option=orjson.OPT_NON_STR_KEYS)


def problem(status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> Response:
    body = {"type": PROBLEM_TYPE + code, "title": title or code.replace("_", " "), "status": status,
            "detail": detail, "code": code}
    body.update((k, v) for k, v in extra.items() if k not in body)  # context never overrides the standard members
    return Response(orjson.dumps(body, default=_default), status_code=status, media_type="application/problem+json")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route takes at this path: asked of every route (included routers too)
    by matching the path with each method in turn."""
    from starlette.routing import Match

    allowed: list[str] = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return sorted(m for m in allowed if m != "HEAD" or "GET" not in allowed)


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

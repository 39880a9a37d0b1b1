"""The HTTP API: the app assembled from its resource routers and feature modules."""

from __future__ import annotations

from fastapi import FastAPI

from api import cases, deps as deps_module, keys, ops, reference, steps
from api.http import JSON, install_error_handlers
from services.system import Esup

# Modules with ``install(app, esup, deps)``; ``deps`` has principal (a FastAPI dependency),
# require(principal, *roles), body(request), applicant_view(sealed, principal), check_case_access.
ROUTE_MODULES: list[str] = ["api.monitor", "api.warnings", "api.supervision", "api.checkpoints", "api.audits", "api.bundles",
                            "api.tiers", "api.oversight", "api.assessment", "api.feed"]


def create_app(esup: Esup) -> FastAPI:
    app = FastAPI(
        title="esup",
        description="Event-sourced electronic supervision (电子监察) of administrative approvals. "
        "Every request carries `Authorization: Bearer <key>`. Errors are RFC 9457 problem documents "
        "with a stable `code`.",
        version="1.0",
        default_response_class=JSON,
        docs_url=None,
        redoc_url=None,
    )
    app.state.esup = esup
    install_error_handlers(app)
    from api import docs

    docs.install(app)  # /docs and /redoc from the package's own assets (offline networks)
    from api import openapi

    openapi.install(app)  # bodies, answers, refusals and the bearer scheme (see api/openapi.py)

    # Resources: one router each, in the framework's idiom (``api/deps.py``).
    for router in (steps.router, cases.router, reference.router, keys.router, ops.router):
        app.include_router(router)

    # Feature modules add their own routes (warnings, monitoring, metrics, ...).
    from types import SimpleNamespace

    deps = SimpleNamespace(principal=deps_module.principal, require=deps_module.require, body=deps_module.body,
                           applicant_view=lambda sealed, p, strict=False: deps_module.applicant_view(esup, sealed, p, strict),
                           check_case_access=deps_module.check_case_access)
    app.state.deps = deps
    import importlib

    for module in ROUTE_MODULES:
        importlib.import_module(module).install(app, esup, deps)

    return app

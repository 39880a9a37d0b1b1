"""The API's documentation pages, served with nothing loaded from elsewhere.

Government networks are often offline: Swagger UI and ReDoc come from the ``fastapi_offline``
package's copies (served under ``/docs/assets``), never a CDN. The pages carry a strict
Content-Security-Policy like the dashboard's; the one inline script FastAPI's Swagger page needs
is allowed by its hash, not by ``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs/assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _csp(html: str, extra: str = "") -> str:
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'self'; img-src 'self' data:; script-src 'self' {hashes}; connect-src 'self'; "
            f"frame-ancestors 'none'; base-uri 'none'; form-action 'none'{extra}")


def install(app: FastAPI) -> None:
    """Call with ``FastAPI(docs_url=None, redoc_url=None)``: adds ``/docs``, ``/redoc`` and the assets."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{app.title} API", swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css", swagger_favicon_url=f"{PREFIX}/favicon.png",
        swagger_ui_parameters={"persistAuthorization": True},
    ).body.decode()
    # ReDoc injects its styles at run time and searches in a blob: worker.
    redoc = get_redoc_html(openapi_url=openapi_url, title=f"{app.title} API", redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                           redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False).body.decode()
    headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    swagger_headers = {**headers, "Content-Security-Policy": _csp(swagger)}
    redoc_headers = {**headers, "Content-Security-Policy": _csp(redoc, "; style-src 'self' 'unsafe-inline'; worker-src blob:")}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(swagger, headers=swagger_headers)

    @app.get("/redoc", include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers=redoc_headers)

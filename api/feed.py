"""Feed routes: the JSON Schemas of the provincial feed's envelopes (``infra/schemas``)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from infra import feed_records


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    @app.get("/api/v1/feed/schemas", tags=["feed"])
    def feed_schemas(p=Depends(deps.principal)) -> Any:
        """The envelopes the district publishes to the provincial feed (``esup.step/1``,
        ``esup.warning/1``, ``esup.anomaly/1``, ``esup.checkpoint/1``, ``esup.digest/1``,
        ``esup.position/1``, ``esup.resend/1``), each a JSON Schema (draft 2020-12), by tag."""
        return {"schemas": feed_records.schemas()}

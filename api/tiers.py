"""Three-tier routes (三级政务): figures and rankings by tier and center."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Query

from domain.access import Role
from services.metrics import parse_day
from services.tiers import center_figures


def install(app: FastAPI, esup: Any, deps: Any) -> None:
    principal = deps.principal

    @app.get("/api/v1/metrics/centers", tags=["metrics"])
    def centers(tier: str | None = None, center: str | None = None, day_from: str | None = Query(None, alias="from"),
                to: str | None = None, p=Depends(principal)) -> Any:
        """Every center's figures with its tier (district / street / community), parent, halls,
        windows and delegated items, ranked within its tier (on-time rate, satisfaction,
        volume), and each tier's total. ``center=`` one center; ``tier=`` one tier."""
        esup.runner.catch_up(["performance"])
        return center_figures(esup, day_from=parse_day(day_from, "from"), day_to=parse_day(to, "to"), tier=tier,
                              center=center, departments=frozenset(p.departments) if p.role is Role.DEPARTMENT else None)

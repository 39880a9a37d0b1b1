"""Every view the system runs, in processing order. Add a view here to have it run and rebuild."""

from __future__ import annotations

from projections.case_board import CaseBoard
from projections.runner import View
from projections.warnings import WarningBoard, WarningThresholds


def all_views() -> list[View]:
    return [CaseBoard(), WarningThresholds(), WarningBoard()]

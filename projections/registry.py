"""Every view the system runs, in processing order. Add a view here to have it run and rebuild."""

from __future__ import annotations

from projections.access_log import AccessLogView
from projections.anomalies import AnomalyView
from projections.case_board import CaseBoard
from projections.merkle import LedgerTree
from projections.performance import PerformanceView
from projections.runner import View
from projections.warnings import WarningBoard, WarningThresholds


def all_views() -> list[View]:
    return [CaseBoard(), AnomalyView(), PerformanceView(), WarningThresholds(), WarningBoard(),
            LedgerTree(), AccessLogView()]


def bind_supervision_views(esup) -> None:
    """Give the anomaly and performance views the view store and the reference data (calendars,
    office hours); projections/calendars.py says what an unbound view uses instead."""
    for name in (AnomalyView.name, PerformanceView.name):
        esup.runner.view(name).bind(esup.views, esup.reference)

"""Every view the system runs, in processing order. Add a view here to have it run and rebuild."""

from __future__ import annotations

from infra.assessment_policy import assessment_policy_from_env
from projections.anomalies import AnomalyView
from projections.assessment import AssessmentView
from projections.case_board import CaseBoard
from projections.complaints import ComplaintBoard
from projections.notices import NoticeBoard
from projections.performance import PerformanceView
from projections.runner import View
from projections.warnings import WarningBoard, WarningThresholds


def all_views() -> list[View]:
    return [CaseBoard(), AnomalyView(), PerformanceView(), WarningThresholds(), WarningBoard(),
            ComplaintBoard(), NoticeBoard(), AssessmentView(assessment_policy_from_env().satisfied_scores)]


def bind_supervision_views(esup) -> None:
    """Give the anomaly and performance views the view store and the reference data (calendars,
    office hours); projections/calendars.py says what an unbound view uses instead."""
    for name in (AnomalyView.name, PerformanceView.name):
        esup.runner.view(name).bind(esup.views, esup.reference)

"""Every view the system runs, in processing order. Add a view here to have it run and rebuild."""

from __future__ import annotations

from typing import Any

from infra.settings import anomaly_policy
from projections.access_log import AccessLogView
from projections.anomalies import AnomalyView
from projections.calendars import Calendars
from projections.bundles import BundleView
from projections.case_board import CaseBoard
from projections.merkle import LedgerTree
from infra.assessment_policy import assessment_policy_from_env
from projections.assessment import AssessmentView
from projections.complaints import ComplaintBoard
from projections.notices import NoticeBoard
from projections.performance import PerformanceView
from projections.runner import View
from projections.store import ViewStore
from projections.warnings import WarningBoard, WarningThresholds


def all_views(store: ViewStore, reference: Any, planner: Any, load_case: Any = None) -> list[View]:
    """The views, built with what they use: the store they live in (the anomaly view's
    wall-clock sweep writes there), the reference data (calendars, office hours), the warning
    policy (``planner``) and, for the bundle view, ``load_case`` (a case number -> the Case,
    or None)."""
    calendars = Calendars(reference)
    return [CaseBoard(), AnomalyView(store, calendars, anomaly_policy()), PerformanceView(calendars),
            WarningThresholds(planner), WarningBoard(), LedgerTree(), AccessLogView(),
            BundleView(load_case, reference.calendar), ComplaintBoard(), NoticeBoard(),
            AssessmentView(assessment_policy_from_env().satisfied_scores)]


VIEW_NAMES = ("case_board", "anomalies", "performance", "warning_thresholds", "warning_board", "merkle",
              "access_log", "bundles", "complaints", "notices", "assessment")

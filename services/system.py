"""Wiring: settings in, a ready set of services out."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from domain.case import IngestPolicy
from domain.clock import Clock
from infra.pii import Sealer
from projections.registry import all_views
from projections.runner import ProjectionRunner
from projections.store import ViewStore, open_view_store
from infra.settings import Settings
from services.access import AccessService
from services.apps import Access, Ledger, Reference
from services.calendar import CalendarService
from services.cases import CaseQueries
from services.ingest import IngestService
from services.reference import ReferenceService
from services.warnings import WarningPlanner, WarningService, policy_book_from_env


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class Esup:
    settings: Settings
    ledger: Ledger
    reference_app: Reference
    access_app: Access
    reference: ReferenceService
    ingest: IngestService
    cases: CaseQueries
    access: AccessService
    sealer: Sealer
    clock: Clock
    views: ViewStore
    runner: ProjectionRunner
    warnings: WarningService | None = None  # 预警纠错: policy, scheduler, acts, board
    calendars: CalendarService | None = None  # publishing years, settling provisional deadlines
    checkpoints: Any = None  # services.checkpoints.CheckpointService: the ledger's signed tree heads
    access_checkpoints: Any = None  # the same for the access log (officers' reads)
    access_log: Any = None  # services.access_log.AccessLog: recording officers' reads

    @classmethod
    def open(cls, settings: Settings | None = None, clock: Clock | None = None) -> Esup:
        settings = settings or Settings.from_env()
        clock = clock or SystemClock()
        ledger = Ledger(env=settings.app_env("ledger"))
        reference_app = Reference(env=settings.app_env("reference"))
        access_app = Access(env=settings.app_env("access"))
        reference = ReferenceService(reference_app, clock)
        sealer = Sealer(settings.resolve_pii_key())
        ingest = IngestService(
            ledger, reference, clock, sealer, IngestPolicy(late_entry_after=settings.late_entry_after), settings.max_batch,
            settings.refusal_sample,
        )
        views = open_view_store(settings)
        planner = WarningPlanner(reference, reference_app, policy_book_from_env())

        def make_views(store: ViewStore) -> list:
            """The views, bound to their store and to the reference data (calendars, office
            hours, warning policy): for the live store, and for a rebuild's shadow."""
            made = all_views()
            for view in made:
                if view.name in ("anomalies", "performance"):
                    view.bind(store, reference)  # type: ignore[attr-defined]
                elif view.name == "warning_thresholds":
                    view.bind(planner)  # type: ignore[attr-defined]
            return made

        runner = ProjectionRunner(ledger, views, make_views(views), factory=make_views)
        system = cls(
            settings, ledger, reference_app, access_app, reference, ingest, CaseQueries(ledger),
            AccessService(access_app, reference, clock), sealer, clock, views, runner,
        )
        system.warnings = WarningService(ledger, reference, planner, views, runner, clock)
        system.calendars = CalendarService(ledger, reference, clock)
        system._open_checkpoints()
        return system

    def _open_checkpoints(self) -> None:
        from services.access_log import AccessLog
        from services.checkpoints import CheckpointService, CheckpointTimer, district_code

        key = self.settings.resolve_checkpoint_key()
        district = lambda: district_code(self.reference, self.settings.district)  # noqa: E731
        self.checkpoints = CheckpointService(self.ledger, self.views, self.runner, self.clock, key, district)
        self.access_checkpoints = CheckpointService(self.ledger, self.views, self.runner, self.clock, key, district,
                                                    tree="access", prefix="access", view="access_log")
        self.access_log = AccessLog(self.ledger, self.views, self.clock)
        self._checkpoint_timer = CheckpointTimer([self.checkpoints, self.access_checkpoints],
                                                 self.settings.checkpoint_seconds)

    def start_background(self) -> None:
        """What a serving process runs besides requests: projections following the log."""
        self.runner.start()
        self._checkpoint_timer.start()  # signs each log's head every ESUP_CHECKPOINT_SECONDS when it moved
        if self.warnings is not None:
            self.warnings.scheduler.start()  # wakes at the next warning threshold
        # Time-based anomalies (e.g. not accepted within 5 working days) must appear even when
        # nothing at all is recorded: sweep them on a timer too.
        self._sweeper_stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_anomalies, name="esup-anomaly-sweep", daemon=True)
        self._sweeper.start()

    def _sweep_anomalies(self) -> None:
        from projections.anomalies import sweep_now

        while not self._sweeper_stop.wait(self.settings.anomaly_sweep_seconds):
            try:
                sweep_now(self)
            except Exception:  # keep sweeping; the next round retries
                logging.getLogger("esup").exception("anomaly sweep failed")

    def close(self) -> None:
        sweeper = getattr(self, "_sweeper", None)
        if sweeper is not None:
            self._sweeper_stop.set()
            sweeper.join(10)
        if self.warnings is not None:
            self.warnings.scheduler.stop()
        timer = getattr(self, "_checkpoint_timer", None)
        if timer is not None:
            timer.stop()
        self.runner.stop()  # join followers before closing stores (SQLite must not close under a reader)
        self.views.close()
        for app in (self.ledger, self.reference_app, self.access_app):
            app.close()

"""Wiring: settings in, a ready set of services out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from domain.case import IngestPolicy
from domain.clock import Clock
from infra.pii import Sealer
from infra.settings import Settings
from services.access import AccessService
from services.apps import Access, Ledger, Reference
from services.cases import CaseQueries
from services.ingest import IngestService
from services.reference import ReferenceService


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
            ledger, reference, clock, sealer, IngestPolicy(late_entry_after=settings.late_entry_after), settings.max_batch
        )
        return cls(
            settings, ledger, reference_app, access_app, reference, ingest, CaseQueries(ledger),
            AccessService(access_app, reference, clock), sealer, clock,
        )

    def close(self) -> None:
        for app in (self.ledger, self.reference_app, self.access_app):
            app.close()

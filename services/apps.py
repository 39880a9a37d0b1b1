"""The eventsourcing applications (one store and one notification log each)."""

from __future__ import annotations

from eventsourcing.application import Application


class Ledger(Application):
    """Every step of every case (办件), the idempotency keys and the refusals."""

    name = "ledger"


class Reference(Application):
    """The item catalogue, the organisation and published working calendars."""

    name = "reference"


class Access(Application):
    """API keys (stored as digests) and their roles."""

    name = "access"

"""Officers' reads, logged (查阅留痕): who read an applicant's personal data, exported, or replayed
a case, when, what, and from where. Each read is an event of its own in the ledger (an aggregate
per read: a save is one row and never waits on another read), and the reads form a second Merkle
tree with its own signed checkpoints (origin ``esup.<district>/access``), so a deleted or edited
entry shows like a deleted or edited case event does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.canonical import canonical_bytes

ACTIONS = ("personal_data", "replay", "export", "history")


class AccessRecord(Aggregate):
    TOPIC = "esup.access_log:AccessRecord"

    class Event(Aggregate.Event):
        TOPIC = "esup.access_log:AccessRecord.Event"

    class Recorded(Aggregate.Created, Event):
        TOPIC = "esup.access_log:AccessRecord.Recorded"
        actor: dict[str, Any]  # {"key": public key id, "role": ..., "label": ...}
        action: str
        case_no: str | None
        detail: dict[str, Any]  # what exactly: the path, the instant replayed, the export's name
        remote: str | None  # the client's address

    Created = Recorded

    def __init__(self, actor: dict[str, Any], action: str, case_no: str | None, detail: dict[str, Any],
                 remote: str | None) -> None:
        self.actor = actor
        self.action = action
        self.case_no = case_no
        self.detail = detail
        self.remote = remote

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @classmethod
    def record(cls, *, actor: dict[str, Any], action: str, case_no: str | None, detail: dict[str, Any],
               remote: str | None, at: datetime) -> AccessRecord:
        if action not in ACTIONS:
            raise ValueError(f"unknown access action {action!r}")
        return cls._create(cls.Recorded, actor=actor, action=action, case_no=case_no, detail=detail, remote=remote,
                           timestamp=at)


def access_leaf_data(event: AccessRecord.Recorded) -> bytes:
    """What a read's leaf covers: SHA-256 of the canonical form of everything it records."""
    body = {"id": str(event.originator_id), "at": event.timestamp, "actor": event.actor, "action": event.action,
            "case_no": event.case_no, "detail": event.detail, "remote": event.remote}
    return hashlib.sha256(canonical_bytes(body)).digest()


ACCESS_TOPICS = (AccessRecord.Recorded.TOPIC,)

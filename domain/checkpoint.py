"""A signed checkpoint, recorded: the tree head (size, root) of one of the district's logs as the
district's key signed it (a C2SP tlog-checkpoint note).

Each checkpoint is an aggregate of its own in the ledger, with an id derived from the tree and
its size: recording the same tree head twice (two processes, a timer and an officer at once)
collides in the store instead of recording it twice, and a save is one row however many
checkpoints came before. Being in the ledger, checkpoints are backed up and replicated with the
events they cover; the Merkle views index them for lookups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.catalogue import NAMESPACE

TREES = ("ledger", "access")  # the case-event log, and the log of officers' reads


def checkpoint_id(tree: str, size: int) -> UUID:
    return uuid5(NAMESPACE, f"checkpoint:{tree}:{size}")


class SignedCheckpoint(Aggregate):
    TOPIC = "esup.checkpoint:SignedCheckpoint"

    class Event(Aggregate.Event):
        TOPIC = "esup.checkpoint:SignedCheckpoint.Event"

    class Recorded(Aggregate.Created, Event):
        TOPIC = "esup.checkpoint:SignedCheckpoint.Recorded"
        tree: str
        origin: str
        size: int
        root: str  # hex
        note: str  # the signed note, exactly as served
        position: int  # the ledger notification id of the last covered leaf (0 for size 0)

    Created = Recorded

    def __init__(self, tree: str, origin: str, size: int, root: str, note: str, position: int) -> None:
        self.tree = tree
        self.origin = origin
        self.size = size
        self.root = root
        self.note = note
        self.position = position

    @staticmethod
    def create_id(tree: str, size: int, **_: Any) -> UUID:
        return checkpoint_id(tree, size)

    @classmethod
    def record(cls, *, tree: str, origin: str, size: int, root: bytes, note: str, position: int,
               at: datetime) -> SignedCheckpoint:
        if tree not in TREES:
            raise ValueError(f"no tree {tree!r}")
        return cls._create(cls.Recorded, tree=tree, origin=origin, size=size, root=root.hex(), note=note,
                           position=position, timestamp=at)


CHECKPOINT_TOPICS = (SignedCheckpoint.Recorded.TOPIC,)

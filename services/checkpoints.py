"""Signed checkpoints of the district's logs, and the proofs that go with them.

``CheckpointService`` signs the tree head the Merkle view holds (projections/merkle.py) as a
C2SP tlog-checkpoint with the district's Ed25519 key, records it in the ledger (one aggregate
per checkpoint: domain/checkpoint.py) and answers the latest, one of a given size, inclusion
proofs (a case event in the tree of a checkpoint) and consistency proofs (one checkpoint's tree
is a prefix of another's). Before it signs a new head it checks that the head extends the last
one it signed (the root at the old size, recomputed from the stored nodes, must equal the old
root): a log must never sign two checkpoints that no consistency proof joins.

The key: ``ESUP_CHECKPOINT_KEY`` (base64 of a 32-byte seed, or a ``PRIVATE+KEY+...`` note key),
else ``checkpoint.key`` in the data directory, generated on first use like the personal-data
key. The key's name in notes is the checkpoint's origin, ``esup.<district>/ledger``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from eventsourcing.persistence import IntegrityError

from domain import merkle, note
from domain.case import case_id
from domain.checkpoint import SignedCheckpoint
from domain.clock import Clock
from domain.errors import DomainError, InvalidInput, NotFound
from projections import merkle as tree_view
from projections.instants import from_us

log = logging.getLogger("esup.checkpoints")


@dataclass(frozen=True)
class Checkpoint:
    size: int  # number of leaves covered
    root: bytes  # 32-byte RFC 6962 root of the first `size` leaves
    note: str  # the signed note text (C2SP tlog-checkpoint)
    issued_at: datetime
    position: int  # ledger notification id of the last covered leaf (0 if size == 0)

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": base64.b64encode(self.root).decode(), "note": self.note,
                "issued_at": self.issued_at, "position": self.position}


class TreeRewritten(DomainError):
    """The tree the view holds does not extend the last signed checkpoint: never sign it."""

    code = "tree_inconsistent"
    status = 500


def signer_from(key: str, origin: str) -> note.Signer:
    if key.startswith("PRIVATE+KEY+"):
        return note.Signer.parse(key)
    try:
        seed = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("ESUP_CHECKPOINT_KEY must be base64 of 32 bytes or a PRIVATE+KEY+... key") from None
    return note.Signer(origin, seed)


def district_code(reference: Any, configured: str | None) -> str:
    """The district's code for origin lines: the configured one, else the first center's."""
    if configured:
        return configured.lower()
    try:
        from domain.organisation import UnitKind

        centers = sorted(u.code for u in reference.units(UnitKind.CENTER))
    except Exception:  # reference data unreadable: the fallback still signs
        centers = []
    return centers[0].lower() if centers else "esup"


class CheckpointService:
    def __init__(self, ledger: Any, views: Any, runner: Any, clock: Clock, key: str, district: Callable[[], str],
                 tree: str = "ledger", prefix: str = "merkle", view: str = "merkle") -> None:
        self.ledger = ledger
        self.views = views
        self.runner = runner
        self.clock = clock
        self._key = key
        self._district = district
        self.tree = tree
        self.prefix = prefix
        self.view = view
        self._lock = threading.Lock()
        self._origin: str | None = None

    # -- the key ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        if self._origin is None:
            self._origin = f"esup.{self._district()}/{self.tree}"
        return self._origin

    @property
    def signer(self) -> note.Signer:
        return signer_from(self._key, self.origin)

    @property
    def verifier(self) -> note.Verifier:
        return self.signer.verifier

    def verifier_key(self) -> str:
        """``name+keyid+base64(0x01 ‖ public key)``."""
        return self.verifier.text()

    # -- checkpoints -----------------------------------------------------------------------------

    def _checkpoint(self, row: tuple[Any, ...] | None) -> Checkpoint | None:
        if row is None:
            return None
        size, root, text, issued, position = row
        return Checkpoint(size, root, text, from_us(issued), position)  # type: ignore[arg-type]

    def latest(self) -> Checkpoint | None:
        return self._checkpoint(tree_view.latest_checkpoint(self.views, self.prefix))

    def at_size(self, size: int) -> Checkpoint | None:
        return self._checkpoint(tree_view.checkpoint_at(self.views, size, self.prefix))

    def all(self) -> list[Checkpoint]:
        return [self._checkpoint(r) for r in tree_view.checkpoints(self.views, self.prefix)]  # type: ignore[misc]

    def issue(self) -> Checkpoint:
        """Sign the tree head now and record it; the latest one again if the log has not moved."""
        with self._lock:
            self.runner.catch_up([self.view])
            head = tree_view.head(self.views, self.prefix, self.tree)
            latest = self.latest()
            if latest is not None and latest.size >= head.size:
                if latest.size == head.size and latest.root != head.root:
                    raise TreeRewritten(f"the {self.tree} tree of {head.size} leaves has another root than its "
                                        "signed checkpoint: see esup verify")
                return latest
            if latest is not None and latest.size > 0:
                old = tree_view.root_at(self.views, latest.size, self.prefix)
                if old != latest.root:
                    raise TreeRewritten(f"the {self.tree} tree does not extend its checkpoint of size {latest.size}: "
                                        "not signing; see esup verify")
            body = note.CheckpointBody(self.origin, head.size, head.root)
            text = note.sign_checkpoint(body, self.signer)
            at = self.clock.now()
            record = SignedCheckpoint.record(tree=self.tree, origin=self.origin, size=head.size, root=head.root,
                                             note=text, position=head.position, at=at)
            try:
                self.ledger.save(record)
            except IntegrityError:  # another process signed the same head meanwhile: the same note
                pass
            self.runner.catch_up([self.view])
            made = self.at_size(head.size)
            if made is None:  # the view is stuck (a fault): answer what was signed
                made = Checkpoint(head.size, head.root, text, at, head.position)
            log.info("checkpoint %s size %s", self.origin, head.size)
            return made

    def issue_if_moved(self) -> Checkpoint | None:
        latest = self.latest()
        self.runner.catch_up([self.view])
        if latest is not None and tree_view.head(self.views, self.prefix, self.tree).size == latest.size:
            return None
        return self.issue()

    # -- proofs ------------------------------------------------------------------------------------

    def _size(self, size: int | None) -> tuple[int, Checkpoint | None]:
        if size is None:
            latest = self.latest()
            if latest is None:
                raise NotFound("no checkpoint has been signed yet", code="no_checkpoint")
            return latest.size, latest
        if size < 1:
            raise InvalidInput("size must be at least 1", code="invalid_size")
        head = tree_view.head(self.views, self.prefix, self.tree)
        if size > head.size:
            raise InvalidInput(f"the tree has {head.size} leaves, not {size}", code="invalid_size")
        return size, self.at_size(size)

    def inclusion(self, case_no: str, version: int, size: int | None = None) -> dict[str, Any]:
        """Where case ``case_no``'s event ``version`` sits in the tree of ``size`` leaves (default:
        the latest checkpoint's), with its audit path."""
        if version < 1:
            raise InvalidInput("version must be at least 1", code="invalid_version")
        found = tree_view.leaf(self.views, str(case_id(case_no)), version, self.prefix)
        if found is None:
            raise NotFound(f"case {case_no} has no event {version} in the tree", code="unknown_event")
        index, position, leaf = found
        size, cp = self._size(size)
        if index >= size:
            raise InvalidInput(f"case {case_no} v{version} is leaf {index}: not in a tree of {size}",
                               code="not_yet_covered")
        proof = tree_view.inclusion_proof(self.views, index, size, self.prefix)
        root = cp.root if cp is not None else tree_view.root_at(self.views, size, self.prefix)
        return {"case_no": case_no, "version": version, "leaf_index": index, "position": position,
                "tree_size": size, "leaf_hash": _b64(leaf), "root": _b64(root),
                "proof": [_b64(h) for h in proof], "checkpoint": cp.note if cp is not None else None}

    def consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        second_size, cp2 = self._size(second)
        if first < 0 or first > second_size:
            raise InvalidInput(f"from must be between 0 and {second_size}", code="invalid_size")
        proof = tree_view.consistency_proof(self.views, first, second_size, self.prefix)
        cp1 = self.at_size(first) if first else None
        first_root = tree_view.root_at(self.views, first, self.prefix)
        second_root = cp2.root if cp2 is not None else tree_view.root_at(self.views, second_size, self.prefix)
        return {"from": first, "to": second_size, "from_root": _b64(first_root), "to_root": _b64(second_root),
                "proof": [_b64(h) for h in proof],
                "from_checkpoint": cp1.note if cp1 else None, "to_checkpoint": cp2.note if cp2 else None}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def check_inclusion(answer: dict[str, Any]) -> bool:
    """Verify an inclusion answer on its own (leaf, path, root)."""
    return merkle.verify_inclusion(answer["leaf_index"], answer["tree_size"], base64.b64decode(answer["leaf_hash"]),
                                   [base64.b64decode(h) for h in answer["proof"]], base64.b64decode(answer["root"]))


class CheckpointTimer:
    """A serving process signs each log's head every ``seconds`` when it has moved."""

    def __init__(self, services: list[CheckpointService], seconds: float) -> None:
        self.services = services
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self.seconds <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="esup-checkpoints", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self.tick()

    def tick(self) -> None:
        for service in self.services:
            try:
                service.issue_if_moved()
            except Exception:  # the next round retries; a rewritten tree is logged each time
                log.exception("signing a %s checkpoint failed", service.tree)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

"""Signed checkpoints of the ledger's case events (C2SP tlog-checkpoint, signed note, Ed25519).

PLACEHOLDER written by the audit-samples branch against the agreed interface
(``Checkpoint``, ``CheckpointService.latest/issue/at_size``); to be REPLACED by the audit-log
branch's ``services/checkpoints.py`` at merge (theirs maintains the tree incrementally in the
store, records checkpoints in the ledger and runs the timer). This one is minimal but correct:

- leaves: one per case event (``domain.case.CASE_TOPICS``) in notification-log order, leaf data =
  the 32 raw bytes of the event's chain hash; root = RFC 6962 over them (``domain.merkle``);
- the note: ``<origin>\\n<size>\\n<base64 root>\\n\\n— <origin> <base64(key id ‖ signature)>\\n``,
  key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4], Ed25519 over the body;
- the key: 32 bytes (base64) in ``$ESUP_DATA_DIR/checkpoint.key``, generated on first use;
- recorded checkpoints: one JSON line each in ``$ESUP_DATA_DIR/checkpoints.jsonl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.case import CASE_TOPICS
from domain.merkle import leaf_hash, root
from services.logs import notifications_after


@dataclass(frozen=True)
class Checkpoint:
    size: int  # number of leaves covered
    root: bytes  # 32-byte RFC 6962 root of the first `size` leaves
    note: str  # the signed note text (C2SP tlog-checkpoint)
    issued_at: datetime
    position: int  # ledger notification id of the last covered leaf (0 if size == 0)


class CheckpointService:
    def __init__(self, ledger: Any, data_dir: Path, origin: str, clock: Any) -> None:
        self.ledger = ledger
        self.dir = Path(data_dir)
        self.origin = origin
        self.clock = clock
        self._lock = threading.Lock()
        self._leaves: list[bytes] = []
        self._positions: list[int] = []
        self._scanned = 0
        self._key = self._load_key()

    def _load_key(self) -> Ed25519PrivateKey:
        path = self.dir / "checkpoint.key"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))

    def _public(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def key_id(self) -> bytes:
        return hashlib.sha256(self.origin.encode() + b"\n\x01" + self._public()).digest()[:4]

    def verifier_key(self) -> str:
        typed = base64.b64encode(b"\x01" + self._public()).decode()
        return f"{self.origin}+{self.key_id().hex()}+{typed}"

    def _catch_up(self) -> None:
        for n in notifications_after(self.ledger.recorder, self._scanned, CASE_TOPICS):
            event = self.ledger.mapper.to_domain_event(n)
            self._leaves.append(leaf_hash(bytes.fromhex(event.hash)))
            self._positions.append(n.id)
        head = self.ledger.recorder.max_notification_id() or 0
        self._scanned = max(self._scanned, self._positions[-1] if self._positions else 0, head)

    def _recorded(self) -> list[Checkpoint]:
        path = self.dir / "checkpoints.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                out.append(Checkpoint(d["size"], bytes.fromhex(d["root"]), d["note"],
                                      datetime.fromisoformat(d["issued_at"]), d["position"]))
        return out

    def latest(self) -> Checkpoint | None:
        recorded = self._recorded()
        return recorded[-1] if recorded else None

    def at_size(self, size: int) -> Checkpoint | None:
        return next((c for c in reversed(self._recorded()) if c.size == size), None)

    def issue(self) -> Checkpoint:
        with self._lock:
            self._catch_up()
            size = len(self._leaves)
            last = self.latest()
            if last is not None and last.size == size:
                return last
            head = root(self._leaves)
            body = f"{self.origin}\n{size}\n{base64.b64encode(head).decode()}\n"
            signature = self._key.sign(body.encode())
            note = body + "\n" + f"\u2014 {self.origin} {base64.b64encode(self.key_id() + signature).decode()}\n"
            cp = Checkpoint(size, head, note, self.clock.now(), self._positions[-1] if size else 0)
            with open(self.dir / "checkpoints.jsonl", "a") as f:
                f.write(json.dumps({"size": cp.size, "root": cp.root.hex(), "note": cp.note,
                                    "issued_at": cp.issued_at.isoformat(), "position": cp.position}) + "\n")
            return cp


def origin_for(reference: Any) -> str:
    """``esup.<district code lowercase>/ledger``: the first center's code, else ESUP_DISTRICT."""
    try:
        from domain.organisation import UnitKind

        centers = sorted(u.code for u in reference.units(UnitKind.CENTER))
    except Exception:  # pragma: no cover - reference data unreadable: fall back
        centers = []
    code = centers[0] if centers else os.environ.get("ESUP_DISTRICT", "esup")
    return f"esup.{code.lower()}/ledger"

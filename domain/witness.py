"""The province as a witness of each district's log: pure rules, no I/O.

A district publishes signed checkpoints (C2SP tlog-checkpoint notes, ``domain/note.py``) with a
consistency proof from the last checkpoint it published. The province accepts a checkpoint when
the district's signature verifies and the proof shows its tree extends the last one the province
accepted (RFC 9162 §2.1.4.2, ``domain/merkle.py``); it then cosigns it (C2SP tlog-cosignature,
``cosignature/v1``). Anything else is an alarm with its evidence: the accepted note, the new
note and the proof. A district whose log was rewritten after the province acknowledged a head
cannot produce a proof that joins them.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

from domain import merkle, note

ALG_COSIGNATURE_V1 = 0x04


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key id for an Ed25519 cosignature/v1 key: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()[:4]


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a tlog-cosignature/v1 signs: the header lines and the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_text.encode()


def cosign(checkpoint_text: str, signer: note.Signer, timestamp: int) -> str:
    """The witness's signature line for a checkpoint body (``— name base64(keyid ‖ u64 time ‖ sig)``)."""
    sig = signer.sign(cosigned_message(checkpoint_text, timestamp))
    blob = cosignature_key_id(signer.name, signer.public_key) + struct.pack(">Q", timestamp) + sig
    return f"\u2014 {signer.name} {base64.b64encode(blob).decode()}\n"


def verify_cosignature(checkpoint_text: str, line: str, verifier: note.Verifier) -> bool:
    try:
        name, b64 = line.rstrip("\n").split(" ")[1:3]
        blob = base64.b64decode(b64)
    except (ValueError, IndexError):
        return False
    if name != verifier.name or blob[:4] != cosignature_key_id(verifier.name, verifier.public_key):
        return False
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    return verifier.verify(cosigned_message(checkpoint_text, timestamp), blob[12:])


@dataclass(frozen=True)
class Accepted:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class Verdict:
    decision: str  # accept | same | alarm
    code: str = ""  # bad_signature | not_an_extension | shrunk | wrong_origin
    detail: str = ""
    body: note.CheckpointBody | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def judge(signed: str, verifier: note.Verifier, origin: str, last: Accepted | None, proof_from: int,
          proof: Sequence[bytes]) -> Verdict:
    """Should the witness accept ``signed`` (a district's checkpoint note) after ``last``?"""
    try:
        body = note.verify_checkpoint(signed, verifier, origin)
    except note.NoteError as exc:
        return Verdict("alarm", "bad_signature", f"签名无效 (the district's signature does not verify: {exc})",
                       evidence={"note": signed})
    if last is None:
        return Verdict("accept", body=body)
    evidence = {"accepted_note": last.note, "note": signed, "accepted_size": last.size, "size": body.size,
                "proof_from": proof_from, "proof": [base64.b64encode(p).decode() for p in proof]}
    if body.size < last.size:
        return Verdict("alarm", "shrunk", f"日志变短：已确认 {last.size} 条，新树头 {body.size} 条 (the log shrank)",
                       body, evidence)
    if body.size == last.size:
        if body.root == last.root:
            return Verdict("same", body=body)
        return Verdict("alarm", "not_an_extension", "同一长度的两个不同树头：历史被改写 (two heads of one size: "
                       "history rewritten)", body, evidence)
    if proof_from != last.size or not merkle.verify_consistency(last.size, body.size, last.root, body.root, proof):
        return Verdict("alarm", "not_an_extension",
                       f"新树头 ({body.size}) 不是已确认树头 ({last.size}) 的延伸：历史被改写 "
                       "(the district's log is not an extension of what the province acknowledged)", body, evidence)
    return Verdict("accept", body=body)

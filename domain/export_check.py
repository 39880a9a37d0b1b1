"""Checking a case export (``esup audit export``) with nothing but the file: no database, no key
store, no network. Pure: the file's JSON in, the list of what does not hold out (empty: verified).

An export holds the case's events (each event's hashed body exactly as the chain hash covers
it, its ``prev_hash`` and ``hash``, its leaf index and audit path), the signed checkpoint the
paths lead to, and the district's verifier key. It is verified when

1. the checkpoint's signature verifies with the key (and names the key's origin);
2. each event's hash is SHA-256 over the previous hash and its canonical body, versions 1, 2, ...
   follow each other from the genesis hash, and each body names the case and its version;
3. each event's leaf (SHA-256(0x00 ‖ hash bytes)) with its audit path leads to the checkpoint's
   root at its leaf index (RFC 9162 §2.1.3.2).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from domain import merkle, note
from domain.canonical import GENESIS_HASH, chain_hash

FORMAT = "esup-case-export/1"


def check_export(doc: Any, trusted_key: str | None = None) -> list[str]:
    """What does not hold in the export (empty: it verifies). ``trusted_key``: a verifier key
    obtained elsewhere (the district's published one) to use instead of the file's own."""
    problems: list[str] = []
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return [f"not an {FORMAT} file"]
    try:
        verifier = note.Verifier.parse(trusted_key or doc["key"])
        body = note.verify_checkpoint(doc["checkpoint"], verifier)
    except (KeyError, TypeError, note.NoteError) as exc:
        return [f"the checkpoint does not verify: {exc}"]
    if trusted_key and doc.get("key") != trusted_key:
        problems.append("the file's key is not the trusted key (the trusted one verified the checkpoint)")
    case_no = doc.get("case_no")
    events = doc.get("events")
    if not isinstance(events, list) or not events:
        return problems + ["no events"]
    prev = GENESIS_HASH
    for i, e in enumerate(events, start=1):
        where = f"event {i}"
        try:
            hashed, given_prev, digest = e["body"], e["prev_hash"], e["hash"]
            if hashed.get("case_no") != case_no or hashed.get("version") != i:
                problems.append(f"{where}: its body is not case {case_no} version {i}")
            if given_prev != prev:
                problems.append(f"{where}: prev_hash is not the previous event's hash")
            if chain_hash(given_prev, hashed) != digest:
                problems.append(f"{where}: its hash is not SHA-256 of the previous hash and its body")
            leaf = merkle.leaf_hash(bytes.fromhex(digest))
            proof = [base64.b64decode(h, validate=True) for h in e["proof"]]
            if e.get("tree_size") != body.size:
                problems.append(f"{where}: its path is for a tree of {e.get('tree_size')}, the checkpoint's is {body.size}")
            elif not merkle.verify_inclusion(int(e["leaf_index"]), body.size, leaf, proof, body.root):
                problems.append(f"{where}: its audit path does not lead to the checkpoint's root")
            prev = digest
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            problems.append(f"{where}: malformed ({type(exc).__name__}: {exc})")
    return problems

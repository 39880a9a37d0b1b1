"""RFC 6962 / RFC 9162 Merkle tree hashing: the minimum the audit samples need (the root).

PLACEHOLDER, to be replaced by the audit-log branch's ``domain/merkle.py`` at merge (same
``leaf_hash``, ``node_hash`` and ``root`` functions; theirs also has proofs and the incremental
compact range). Leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), split at the
largest power of two smaller than n; the empty tree's root is SHA-256(b"").
"""

from __future__ import annotations

import hashlib
from typing import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root over leaf hashes (already ``leaf_hash``-ed), bottom-up without recursion: pairing
    left to right and carrying an odd last node up unchanged gives the RFC's split tree."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]

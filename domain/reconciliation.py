"""Daily reconciliation of the provincial feed (日对账): pure rules, no I/O.

A district's day is the feed records of its ledger events (case steps and warning acts) recorded
that China-time day, in log order. Its digest is their count and an RFC 6962 Merkle root over
the records' value bytes (leaf = SHA-256(0x00 || value), node = SHA-256(0x01 || left || right),
the empty tree's root = SHA-256 of nothing), so the province, holding the same bytes, computes
the same root. When ``domain/merkle.py`` (the audit toolkit) is present its ``root`` is the same
function; this module keeps the one small definition the feed needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of the leaf hashes ``leaves`` (split at the largest power of two
    smaller than n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def day_root(values: Iterable[bytes]) -> bytes:
    return merkle_root([leaf_hash(v) for v in values])


@dataclass(frozen=True)
class DayReport:
    """What the province found for one district and day."""

    district: str
    day: str
    expected_count: int
    held_count: int
    expected_root: str
    held_root: str
    missing: tuple[int, ...] = ()  # log positions the district sent that the province lacks
    extra: tuple[int, ...] = ()  # positions the province holds that the district's day does not list
    differing: tuple[int, ...] = field(default=())  # same position, other bytes

    @property
    def status(self) -> str:
        if self.expected_root == self.held_root and self.expected_count == self.held_count:
            return "ok"
        return "mismatch"


def compare(district: str, day: str, expected_count: int, expected_root: str, expected_positions: Sequence[int],
            held: Sequence[tuple[int, bytes]]) -> DayReport:
    """The district's digest against what the province holds (``held``: (position, value) in any order)."""
    held = sorted(held)
    held_root = day_root([v for _, v in held]).hex()
    want, have = set(expected_positions), {p for p, _ in held}
    missing = tuple(sorted(want - have))
    extra = tuple(sorted(have - want))
    differing: tuple[int, ...] = ()
    if not missing and not extra and held_root != expected_root:
        differing = tuple(p for p, _ in held)  # same positions, other content: every one is suspect
    return DayReport(district, day, expected_count, len(held), expected_root, held_root, missing, extra, differing)

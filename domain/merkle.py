"""Merkle trees as RFC 6962 / RFC 9162 §2.1 define them (the C2SP transparency-log tree).

Leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖ right), the tree over n > 1
leaves split at the largest power of two below n, the empty tree's root SHA-256(""). Leaves are
indexed from 0. Proofs are lists of 32-byte hashes in the RFC's order; verification follows the
RFC 9162 algorithms (§2.1.3.2 inclusion, §2.1.4.2 consistency) step by step.

Pure: no I/O. Proof generation is written over ``get(level, index)``, the hash of the complete
subtree of 2**level leaves starting at leaf ``index << level``, so the same code serves an
in-memory list of leaf hashes and a store that keeps some levels of nodes (projections/merkle.py).
``CompactRange`` is the incremental frontier: appending a leaf is O(log n) and tells its caller
each complete node it finished, which is how a store keeps its nodes.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Getter = Callable[[int, int], bytes]  # (level, index) -> hash of that complete subtree


class ProofError(ValueError):
    """A request for a proof that cannot exist (an index past the tree, sizes out of order)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    if n < 2:
        raise ValueError("split_point needs n >= 2")
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root over leaf hashes (already leaf_hash()ed), iteratively, via the frontier."""
    if not leaf_hashes:
        return EMPTY_ROOT
    cr = CompactRange()
    for h in leaf_hashes:
        cr.append(h)
    return cr.root()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree (len a power of two) over its leaf hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# -- proofs as ranges of leaves --------------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees [start, end) whose hashes make up the audit path of leaf ``index`` in a tree
    of ``size`` leaves, in proof order (RFC 6962 §2.1.1 PATH, bottom-up)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start = start + k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees of the consistency proof from ``first`` to ``second`` leaves (RFC 6962
    §2.1.2 SUBPROOF), in proof order."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from {first} to {second}")
    if first == 0 or first == second:
        return []
    out: list[tuple[int, int]] = []
    start, m, n, whole = 0, first, second, True
    while m != n:
        k = split_point(n)
        if m <= k:
            out.append((start + k, start + n))
            n = k
        else:
            out.append((start, start + k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        out.append((start, start + m))
    out.reverse()
    return out


def range_hash(get: Getter, start: int, end: int) -> bytes:
    """The hash of the RFC subtree over leaves [start, end) (as the proofs' ranges are)."""
    n = end - start
    if n <= 0:
        raise ProofError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        return get(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(range_hash(get, start, start + k), range_hash(get, start + k, end))


def list_getter(leaf_hashes: Sequence[bytes]) -> Getter:
    def get(level: int, index: int) -> bytes:
        return perfect_root(leaf_hashes[index << level:(index + 1) << level])
    return get


def inclusion_proof(leaf_hashes: Sequence[bytes] | Getter, index: int, size: int | None = None) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
    get, size = _getter(leaf_hashes, size)
    return [range_hash(get, a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(leaf_hashes: Sequence[bytes] | Getter, first: int, second: int | None = None) -> list[bytes]:
    get, second = _getter(leaf_hashes, second)
    return [range_hash(get, a, b) for a, b in consistency_ranges(first, second)]


def _getter(source: Sequence[bytes] | Getter, size: int | None) -> tuple[Getter, int]:
    if callable(source):
        if size is None:
            raise ProofError("a getter needs the tree size")
        return source, size
    if size is None:
        size = len(source)
    if size > len(source):
        raise ProofError(f"a tree of {size} leaves from {len(source)}")
    return list_getter(source), size


# -- verification (RFC 9162) ---------------------------------------------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the path leads to, or None if the path has the wrong shape."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """Does leaf hash ``leaf`` sit at ``index`` of the tree of ``size`` leaves with ``root_hash``?"""
    return root_from_inclusion(index, size, leaf, proof) == root_hash


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``first`` leaves a prefix of the tree of ``second``?"""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # every tree extends the empty one
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: its root is a node of the second tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# -- the frontier -------------------------------------------------------------------------------------


class CompactRange:
    """The perfect subtrees covering leaves [0, size): one per set bit of size, largest first.

    ``append`` adds a leaf hash in O(log n) and returns the complete nodes it finished as
    (level, index, hash), level >= 1, so a store can keep them for proofs."""

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError(f"a frontier of {size} leaves has {bin(size).count('1')} hashes of 32 bytes")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        finished: list[tuple[int, int, bytes]] = []
        h = leaf
        index = self.size
        level = 0
        while index & 1:  # the right child of a node: merge with the subtree on its left
            h = node_hash(self.hashes.pop(), h)
            level += 1
            index >>= 1
            finished.append((level, index, h))
        self.hashes.append(h)
        self.size += 1
        return finished

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def dump(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def load(cls, size: int, blob: bytes) -> CompactRange:
        return cls(size, [bytes(blob[i:i + HASH_SIZE]) for i in range(0, len(blob), HASH_SIZE)])

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)

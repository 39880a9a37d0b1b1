"""Canonical encoding for hashing: the same facts always give the same bytes.

JSON with sorted keys, no insignificant whitespace, UTF-8; instants as ISO 8601 in UTC
with microseconds; Decimals and dates as strings. Stdlib only, so anyone can re-verify a
chain with nothing but Python (or any JSON library that follows these rules).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Callable
from uuid import UUID

GENESIS_HASH = "0" * 64


def _normalise(value: Any) -> Any:
    # Exact-type checks first: this runs for every field of every event (a hot path).
    t = type(value)
    if t is str or t is int or t is bool or t is float or value is None:
        return value
    if t is dict:
        return {k if type(k) is str else str(k): _normalise(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_normalise(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime cannot be canonicalised")
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, Enum):
        return _normalise(value.value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, (str, int, float)):  # subclasses (e.g. str enums were handled above)
        return value
    raise TypeError(f"cannot canonicalise {t.__name__}")


def reference_bytes(obj: Any) -> bytes:
    """The definition: the stdlib's encoder over the normalised value."""
    return json.dumps(_normalise(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# An encoder giving exactly ``reference_bytes`` faster (or None to say "use the definition"),
# installed by the infrastructure (``infra.canonical.install``): the domain stays stdlib only.
_accelerated: Callable[[Any], bytes | None] | None = None


def accelerate(encoder: Callable[[Any], bytes | None] | None) -> None:
    """Use ``encoder`` first; it returns the bytes, or None where only the definition decides."""
    global _accelerated
    _accelerated = encoder


def canonical_bytes(obj: Any) -> bytes:
    fast = _accelerated
    if fast is not None:
        out = fast(obj)
        if out is not None:
            return out
    return reference_bytes(obj)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and this event's canonical body."""
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical_bytes(body))
    return h.hexdigest()

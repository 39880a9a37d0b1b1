"""A faster encoder for ``domain.canonical``: orjson, wherever it writes the definition's bytes.

The definition (``domain.canonical.reference_bytes``) is the stdlib's ``json.dumps`` of the
normalised value, sorted keys, compact separators, ``ensure_ascii=False``. orjson writes the same
bytes for dicts with str keys (sorted by code point either way), lists, tuples, str (same escapes),
int, bool and None, about ten times faster, and this module turns instants, dates, Decimals and
UUIDs into the definition's strings. It declines (returns None, and the definition decides) for
anything else: floats (orjson's shortest form differs from ``repr``: ``1e-05`` vs ``1e-5``,
``7.4e-05`` vs ``0.000074``), enums, subclasses of builtins, non-str keys, ints beyond 64 bits
and lone surrogates. tests/unit/test_canonical.py compares the two on the stored shapes and on
those edges.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from collections.abc import Callable, Collection
from typing import Any
from uuid import UUID

import orjson

from domain import canonical

_UTC = timezone.utc
_LEAVES = frozenset({str, int, bool, type(None), datetime, date, Decimal, UUID})
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_dumps = orjson.dumps


_instants: dict[datetime, str] = {}  # equal aware instants have one UTC text: a batch repeats its own


def _utc_text(utc: datetime) -> str:
    """``utc.isoformat(timespec="microseconds")`` for a UTC datetime, a third of its time: orjson
    writes the same text except that it leaves out a zero fraction (tests/unit/test_canonical.py
    compares the two). Most instants are new to the kept texts (every step's occurred_at is)."""
    text = _dumps(utc)
    if utc.microsecond:
        return text[1:-1].decode()
    return text[1:-7].decode() + ".000000+00:00"


def _default(value: Any) -> Any:
    t = type(value)
    if t is datetime:
        text = _instants.get(value)
        if text is None:
            if value.tzinfo is None:
                raise ValueError("naive datetime cannot be canonicalised")
            if len(_instants) > 8192:
                _instants.clear()
            text = _instants[value] = _utc_text(value.astimezone(_UTC))
        return text
    if t is date:
        return value.isoformat()
    if t is Decimal:
        return str(value)
    raise TypeError  # not admitted by _plain; never reached


def plain_check(leaves: Collection[type], containers: Collection[type]) -> Callable[[Any], bool]:
    """Whether a value is of an exact type in ``leaves``, or a container of an exact type in
    ``containers`` (dict among them: its values are looked at, not its keys) holding only such
    values, all the way down. ``leaves`` may be a set its owner changes later: it is read at
    each call. Here, and before the transcoder's walk, it says that orjson may write the value
    as it is."""

    def plain(value: Any) -> bool:
        t = type(value)
        if t is dict:
            values = value.values()
        elif t in containers:
            values = value
        else:
            return t in leaves
        for v in values:
            tv = type(v)
            if tv in leaves:
                continue
            if tv in containers and plain(v):
                continue
            return False
        return True

    return plain


# Whether ``value`` holds only what orjson writes as the definition does. Keys are not looked
# at: orjson refuses any key that is not exactly ``str`` (and then the definition decides), as
# it refuses ints beyond 64 bits and lone surrogates. A naive datetime reaches ``_default``,
# whose error sends it to the definition too (which raises).
_plain = plain_check(_LEAVES, frozenset({dict, list, tuple}))


def encode(obj: Any) -> bytes | None:
    """``domain.canonical.reference_bytes(obj)``, or None where only the definition decides."""
    if not _plain(obj):
        return None
    try:
        return _dumps(obj, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # an int beyond 64 bits, a lone surrogate
        return None


def install() -> None:
    canonical.accelerate(encode)

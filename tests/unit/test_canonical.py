"""The hash's canonical bytes: the accelerated encoder writes exactly the definition's bytes."""

from __future__ import annotations

import random
import string
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID

import pytest

from domain import canonical
from domain.calendar import CHINA_TZ
from infra import canonical as fast


class Colour(str, Enum):
    RED = "red"


class Plain(Enum):
    ONE = 1


def _random_tree(rng: random.Random, depth: int = 0):
    kind = rng.randrange(11 if depth < 4 else 8)
    if kind == 0:
        return "".join(rng.choice(string.printable + "同意办结\u2028\x00\x1f\x7f\"\\") for _ in range(rng.randrange(12)))
    if kind == 1:
        return rng.randrange(-10**12, 10**12)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return datetime(2008, 1, 1, tzinfo=CHINA_TZ) + timedelta(seconds=rng.randrange(10**8), microseconds=rng.choice([0, rng.randrange(10**6)]))
    if kind == 4:
        return date(2008, 1, 1) + timedelta(days=rng.randrange(4000))
    if kind == 5:
        return Decimal(rng.randrange(10**6)) / 100
    if kind == 6:
        return UUID(int=rng.getrandbits(128))
    if kind == 7:
        return datetime(2020, 5, 5, 1, 2, 3, tzinfo=timezone(timedelta(hours=rng.randrange(-12, 13))))
    if kind == 8:
        return [_random_tree(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 9:
        return tuple(_random_tree(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {"".join(rng.choice("abcé同_") for _ in range(rng.randrange(1, 5))): _random_tree(rng, depth + 1)
            for _ in range(rng.randrange(5))}


def test_the_accelerated_encoder_writes_the_definitions_bytes():
    rng = random.Random(7)
    taken = 0
    for _ in range(3000):
        tree = {"case_no": "C1", "version": 2, "data": _random_tree(rng), "derived": _random_tree(rng)}
        got = fast.encode(tree)
        if got is not None:
            taken += 1
            assert got == canonical.reference_bytes(tree), tree
    assert taken > 2500  # the fast path is the common one, not a fallback that always declines


@pytest.mark.parametrize("value", [
    {"f": 1e-05}, {"f": 7.4e-05}, {"f": 1e16}, {"f": 2.5}, {"f": float("nan")}, {"e": Colour.RED}, {"e": Plain.ONE},
    {1: "int key"}, {True: "bool key"}, {"big": 2**70}, {"s": "\ud800"}, {"n": datetime(2008, 1, 1)},
    [Colour.RED, 1.5],
])
def test_the_edges_are_left_to_the_definition(value):
    assert fast.encode(value) is None
    fast.install()
    try:
        try:
            expected = canonical.reference_bytes(value)
        except (ValueError, UnicodeEncodeError) as exc:
            with pytest.raises(type(exc)):
                canonical.canonical_bytes(value)
        else:
            assert canonical.canonical_bytes(value) == expected
    finally:
        canonical.accelerate(None)


def test_a_stored_shape_hashes_alike_with_and_without_the_accelerator():
    body = {"case_no": "CDGX20080000001", "version": 3, "step": "accepted",
            "recorded_at": datetime(2008, 1, 2, 9, tzinfo=CHINA_TZ), "source_event_id": "X-1",
            "occurred_at": datetime(2008, 1, 2, 8, 59, 1, 5, tzinfo=CHINA_TZ),
            "actor": {"department": "GSJ", "window": "S001", "staff": None},
            "data": {"opinion": "同意"}, "flags": [{"code": "late_entry", "lag_seconds": 3}],
            "derived": {"terms": {"code": "GSJ-001", "fee": "20.00"}, "promised_due_at": datetime(2008, 1, 3, tzinfo=timezone.utc)}}
    plain = canonical.chain_hash(canonical.GENESIS_HASH, body)
    fast.install()
    try:
        assert fast.encode(body) is not None
        assert canonical.chain_hash(canonical.GENESIS_HASH, body) == plain
    finally:
        canonical.accelerate(None)


def test_the_fast_utc_text_is_isoformat_with_microseconds():
    rng = random.Random(2026)
    zones = [timezone.utc, CHINA_TZ, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=5, seconds=17))]
    for _ in range(5000):
        dt = datetime(
            rng.randint(2, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.choice([0, 0, 1, 999, 123456, 999999, rng.randint(0, 999999)]), tzinfo=rng.choice(zones))
        utc = dt.astimezone(timezone.utc)
        assert fast._utc_text(utc) == utc.isoformat(timespec="microseconds"), repr(dt)
        assert fast.encode({"at": dt}) == canonical.reference_bytes({"at": dt}), repr(dt)

"""How views hold instants (integer µs since the epoch) and amounts of time (exact fraction text)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

from domain.calendar import CHINA_TZ
from projections.instants import fraction, from_us, us

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_an_instant_comes_back_exactly_in_the_zone_asked_for():
    rng = random.Random(7)
    # China time, UTC, and zones with summer time (China kept it 1986-1991; Berlin's autumn fold).
    for tz in (CHINA_TZ, timezone.utc, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")):
        for _ in range(5000):
            value = rng.randrange(-2 * 10**15, 4 * 10**15)  # 1906 to 2096
            got = from_us(value, tz)
            want = (EPOCH + timedelta(microseconds=value)).astimezone(tz)  # the definition
            assert (got, got.isoformat(), got.fold, got.tzinfo) == (want, want.isoformat(), want.fold, want.tzinfo)
            assert us(got) == value


def test_the_first_of_two_equal_local_hours_keeps_its_fold():
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)  # 02:30 CEST; an hour later 02:30 CET
    assert (from_us(us(first), berlin).fold, from_us(us(first + timedelta(hours=1)), berlin).fold) == (0, 1)


def test_no_instant_stays_none():
    assert from_us(None) is None and us(None) is None


def test_an_amount_of_time_is_read_exactly_from_its_text():
    assert fraction("0") == 0 and fraction("3/2") == Fraction(3, 2) and fraction("-7/4") == Fraction(-7, 4)
    assert fraction("3/2") is fraction("3/2")  # parsed once: Fractions are immutable

"""A calendar remembers the answers of its pure functions (``WorkingCalendar.memo``): a replay
asks the same ones again and again. Remembered or not, every answer is the same, refusals too."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from domain.calendar import WorkingCalendar
from domain.errors import CalendarUnknown, InvalidInput
from domain.limits import Unit
from domain.thresholds import _instant_before, instant_before
from infra.calendar_source import default_calendar
from tests.unit.test_case import at

UNITS = (Unit.WORKING_DAYS, Unit.WORKING_HOURS)


def fresh() -> WorkingCalendar:
    return default_calendar()


def outcome(f, *args):
    try:
        return f(*args)
    except CalendarUnknown as exc:
        return ("refused", exc.code)


def test_instant_before_remembered_equals_worked_out_every_time():
    rng = random.Random(7)
    cal = fresh()
    base = at("2008-09-20 00:00")
    ends = [base + timedelta(hours=rng.randrange(0, 24 * 40)) for _ in range(25)]
    asked = []
    for _ in range(3000):
        end = rng.choice(ends)
        amount = Fraction(rng.randrange(1, 12), rng.choice((1, 2, 4)))
        unit = rng.choice(UNITS)
        not_before = rng.choice((None, end - timedelta(hours=rng.randrange(1, 24 * 15))))
        asked.append((end, amount, unit, not_before))
    for end, amount, unit, not_before in asked:
        assert instant_before(cal, end, amount, unit, not_before) == _instant_before(
            fresh(), end, amount, unit, not_before), (end, amount, unit, not_before)
    assert any(k[0] == "instant_before" for k in cal.memo)  # it did remember


def test_the_same_instant_in_another_zone_has_the_same_answer_in_the_calendars_zone():
    cal = fresh()
    end = at("2008-10-07 00:00")
    first = instant_before(cal, end, 1, Unit.WORKING_DAYS)
    again = instant_before(cal, end.astimezone(timezone.utc), 1, Unit.WORKING_DAYS)
    assert again == first and again.utcoffset() == first.utcoffset() == timedelta(hours=8)


def test_a_walk_cut_short_is_not_remembered_as_an_answer():
    # From 10 Jan 2004 back 20 working days runs into 2003, which has no schedule: cut short by
    # not_before the answer is None; asked without it, the calendar still refuses.
    cal = fresh()
    end = at("2004-01-10 00:00")
    assert instant_before(cal, end, 20, Unit.WORKING_DAYS, not_before=end - timedelta(days=2)) is None
    with pytest.raises(CalendarUnknown):
        instant_before(cal, end, 20, Unit.WORKING_DAYS)
    with pytest.raises(CalendarUnknown):
        instant_before(cal, end, 20, Unit.WORKING_DAYS)


def test_a_remembered_answer_still_respects_each_callers_not_before():
    cal = fresh()
    end = at("2008-10-07 00:00")
    found = instant_before(cal, end, 1, Unit.WORKING_DAYS)  # remembered
    assert instant_before(cal, end, 1, Unit.WORKING_DAYS, not_before=found) is None
    assert instant_before(cal, end, 1, Unit.WORKING_DAYS, not_before=found - timedelta(microseconds=1)) == found


def test_elapsed_remembered_equals_worked_out_every_time():
    rng = random.Random(11)
    cal = fresh()
    base = at("2008-09-20 00:00")
    points = [base + timedelta(minutes=rng.randrange(0, 60 * 24 * 40)) for _ in range(30)]
    for _ in range(3000):
        a, b = rng.choice(points), rng.choice(points)
        unit = rng.choice((*UNITS, Unit.CALENDAR_DAYS))
        assert cal.elapsed(a, b, unit) == fresh()._elapsed(a, b, unit)
    span = (at("2026-12-30 10:00"), at("2027-01-05 10:00"), Unit.WORKING_DAYS)
    assert outcome(cal.elapsed, *span) == outcome(cal.elapsed, *span) == ("refused", "calendar_unknown")


def test_elapsed_refuses_bad_input_as_before():
    cal = fresh()
    with pytest.raises(InvalidInput):
        cal.elapsed(datetime(2008, 10, 6, 9), at("2008-10-07 09:00"), Unit.WORKING_DAYS)  # no zone
    with pytest.raises(InvalidInput):
        cal.elapsed(at("2008-10-06 09:00"), at("2008-10-07 09:00"), ["working_days"])  # type: ignore[arg-type]


def test_a_new_calendar_from_an_old_one_starts_with_nothing_remembered():
    cal = fresh()
    instant_before(cal, at("2008-10-07 00:00"), 1, Unit.WORKING_DAYS)
    assert cal.memo and not cal.provisional().memo

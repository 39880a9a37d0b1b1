"""The working calendar, as specifications.

Every expected date below was counted by hand against the State Council General Office's
notice on the 2008 public holidays (国务院办公厅关于2008年部分节假日安排的通知,
国办发明电〔2007〕12号), which reads:

* 元旦 New Year: 1 Jan (Tue) off.
* 春节 Spring Festival: 6-12 Feb off; Sat 2 Feb and Sun 3 Feb worked.
* 清明节 Qingming: 4-6 Apr off (Fri 4 Apr plus the weekend).
* 劳动节 Labour Day: 1-3 May off (Thu-Sat); Sun 4 May worked.
* 端午节 Dragon Boat: 7-9 Jun off (the weekend plus Mon 9 Jun).
* 中秋节 Mid-Autumn: 13-15 Sep off (the weekend plus Mon 15 Sep).
* 国庆节 National Day: 29 Sep-5 Oct off; Sat 27 Sep and Sun 28 Sep worked.

Office hours are the default: winter (1 Oct-30 Apr) 09:00-12:00 and 13:00-17:00,
summer (1 May-30 Sep) 09:00-12:00 and 13:30-17:30. Day deadlines are the exclusive end of
the last day: local midnight starting the next day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from domain.calendar import (
    CHINA_TZ,
    DEFAULT_OFFICE_HOURS,
    OfficeHours,
    Session,
    WorkingCalendar,
    YearSchedule,
)
from domain.errors import CalendarUnknown, InvalidInput
from domain.limits import Limit, Unit
from infra.calendar_source import default_calendar, schedules_from_chinesecalendar

WD = Unit.WORKING_DAYS
CD = Unit.CALENDAR_DAYS
WH = Unit.WORKING_HOURS


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A local (Beijing time) instant."""
    return datetime(y, m, d, hh, mm, tzinfo=CHINA_TZ)


def end_of(y: int, m: int, d: int) -> datetime:
    """The exclusive end of a local day: midnight starting the next day."""
    return at(y, m, d) + timedelta(days=1)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return default_calendar()


# --- which days are worked: the 2008 notice ------------------------------------------------

HOLIDAYS_2008 = [
    date(2008, 1, 1),
    *(date(2008, 2, d) for d in (6, 7, 8, 11, 12)),  # Wed-Fri, Mon-Tue (9-10 Feb is a weekend)
    date(2008, 4, 4),
    date(2008, 5, 1),
    date(2008, 5, 2),
    date(2008, 6, 9),
    date(2008, 9, 15),
    date(2008, 9, 29),
    date(2008, 9, 30),
    *(date(2008, 10, d) for d in range(1, 4)),
]
MAKE_UP_WEEKEND_DAYS_2008 = [
    date(2008, 2, 2),  # Sat
    date(2008, 2, 3),  # Sun
    date(2008, 5, 4),  # Sun
    date(2008, 9, 27),  # Sat
    date(2008, 9, 28),  # Sun
]


@pytest.mark.parametrize("d", HOLIDAYS_2008, ids=str)
def test_2008_weekday_holidays_are_not_working_days(cal, d):
    assert d.weekday() < 5, "the list holds weekdays only: each is a day off by the notice"
    assert cal.is_working_day(d) is False


@pytest.mark.parametrize("d", MAKE_UP_WEEKEND_DAYS_2008, ids=str)
def test_2008_make_up_weekend_days_are_working_days(cal, d):
    assert d.weekday() >= 5
    assert cal.is_working_day(d) is True


def test_2008_has_exactly_the_notice_s_exceptions(cal):
    # Every day of 2008 is worked iff Mon-Fri, except the notice's holidays and make-up days.
    d = date(2008, 1, 1)
    off_weekdays, worked_weekends = [], []
    while d.year == 2008:
        if d.weekday() < 5 and not cal.is_working_day(d):
            off_weekdays.append(d)
        if d.weekday() >= 5 and cal.is_working_day(d):
            worked_weekends.append(d)
        d += timedelta(days=1)
    assert off_weekdays == HOLIDAYS_2008
    assert worked_weekends == MAKE_UP_WEEKEND_DAYS_2008
    # 366 days - 104 weekend days - 16 weekday holidays + 5 make-up days = 251 working days
    assert len(HOLIDAYS_2008) == 16
    assert cal.count_working_days(date(2007, 12, 31), date(2008, 12, 31)) == 251


def test_ordinary_days(cal):
    assert cal.is_working_day(date(2008, 3, 4)) is True  # a Tuesday
    assert cal.is_working_day(date(2008, 3, 8)) is False  # a Saturday
    assert cal.is_working_day(date(2008, 3, 9)) is False  # a Sunday


def test_weekend_holidays_in_the_schedule_change_nothing():
    package = schedules_from_chinesecalendar()[2008]
    stripped = YearSchedule(2008, frozenset(d for d in package.holidays if d.weekday() < 5), package.workdays)
    assert stripped.holidays != package.holidays  # the package does list weekend holidays
    with_weekends = WorkingCalendar({2008: package})
    without = WorkingCalendar({2008: stripped})
    days = [date(2008, 1, 1) + timedelta(days=i) for i in range(366)]
    assert [with_weekends.is_working_day(d) for d in days] == [without.is_working_day(d) for d in days]


def test_package_years_are_2004_to_2026():
    assert sorted(schedules_from_chinesecalendar()) == list(range(2004, 2027))


# --- working days deadlines ------------------------------------------------------------------


def test_five_working_days_across_national_day_count_the_worked_weekend(cal):
    # Accepted Fri 26 Sep 2008 (not counted): 1 Sat 27 Sep (worked), 2 Sun 28 Sep (worked),
    # 29 Sep-5 Oct off, 3 Mon 6 Oct, 4 Tue 7 Oct, 5 Wed 8 Oct -> end of Wed 8 Oct.
    assert cal.deadline(at(2008, 9, 26, 10), Limit(5, WD)) == end_of(2008, 10, 8)


def test_working_days_across_spring_festival(cal):
    # Accepted Fri 1 Feb 2008: 1 Sat 2 Feb, 2 Sun 3 Feb, 3 Mon 4 Feb -> end of Mon 4 Feb.
    assert cal.deadline(at(2008, 2, 1, 15), Limit(3, WD)) == end_of(2008, 2, 4)
    # ... 4 Tue 5 Feb, 6-12 Feb off, 5 Wed 13 Feb -> end of Wed 13 Feb.
    assert cal.deadline(at(2008, 2, 1, 15), Limit(5, WD)) == end_of(2008, 2, 13)


def test_twenty_working_days_after_the_spring_festival(cal):
    # Accepted Tue 5 Feb 2008: 6-12 Feb off; 1-3 = 13, 14, 15 Feb; 4-8 = 18-22 Feb;
    # 9-13 = 25-29 Feb (2008 is a leap year); 14-18 = 3-7 Mar; 19 = Mon 10 Mar, 20 = Tue 11 Mar.
    assert cal.deadline(at(2008, 2, 5, 9), Limit(20, WD)) == end_of(2008, 3, 11)


def test_working_days_across_qingming_labour_day_dragon_boat_mid_autumn(cal):
    # Qingming: accepted Thu 3 Apr; Fri 4 Apr off, weekend; 1 = Mon 7 Apr.
    assert cal.deadline(at(2008, 4, 3, 11), Limit(1, WD)) == end_of(2008, 4, 7)
    # Labour Day: accepted Wed 30 Apr; 1-3 May off; 1 = Sun 4 May (worked); 2 = Mon 5 May.
    assert cal.deadline(at(2008, 4, 30, 11), Limit(1, WD)) == end_of(2008, 5, 4)
    assert cal.deadline(at(2008, 4, 30, 11), Limit(2, WD)) == end_of(2008, 5, 5)
    # Dragon Boat: accepted Fri 6 Jun; weekend, Mon 9 Jun off; 1 = Tue 10 Jun.
    assert cal.deadline(at(2008, 6, 6, 11), Limit(1, WD)) == end_of(2008, 6, 10)
    # Mid-Autumn: accepted Fri 12 Sep; weekend, Mon 15 Sep off; 1 = Tue 16 Sep.
    assert cal.deadline(at(2008, 9, 12, 11), Limit(1, WD)) == end_of(2008, 9, 16)


def test_accepted_on_a_holiday_or_a_weekend(cal):
    # Accepted on Thu 2 Oct 2008 (National Day): 1 = Mon 6 Oct.
    assert cal.deadline(at(2008, 10, 2, 10), Limit(1, WD)) == end_of(2008, 10, 6)
    # Accepted on Sat 8 Mar 2008 (ordinary weekend): 1 = Mon 10 Mar, 2 = Tue 11 Mar.
    assert cal.deadline(at(2008, 3, 8, 10), Limit(2, WD)) == end_of(2008, 3, 11)
    # Accepted on a worked Saturday, Sat 27 Sep 2008: 1 = Sun 28 Sep, 2 = Mon 6 Oct.
    assert cal.deadline(at(2008, 9, 27, 10), Limit(2, WD)) == end_of(2008, 10, 6)


def test_zero_working_days_is_the_end_of_the_day_of_acceptance(cal):
    # 即办: concluded the same day, even on a holiday.
    assert cal.deadline(at(2008, 9, 26, 10), Limit(0, WD)) == end_of(2008, 9, 26)
    assert cal.deadline(at(2008, 10, 1, 10), Limit(0, WD)) == end_of(2008, 10, 1)


def test_the_local_date_counts_not_the_utc_date(cal):
    # 23:30 UTC on Thu 25 Sep is 07:30 Fri 26 Sep in Beijing: counted from Fri 26 Sep.
    start = datetime(2008, 9, 25, 23, 30, tzinfo=timezone.utc)
    result = cal.deadline(start, Limit(5, WD))
    assert result == end_of(2008, 10, 8)
    assert result.utcoffset() == timedelta(hours=8)
    assert (result.year, result.month, result.day, result.hour, result.minute) == (2008, 10, 9, 0, 0)


def test_working_days_across_the_new_year_into_2009(cal):
    # The 2009 notice (State Council General Office, Dec 2008): 1-3 Jan 2009 off, Sun 4 Jan worked.
    # Accepted Wed 31 Dec 2008: 1 = Sun 4 Jan 2009, 2 = Mon 5 Jan.
    assert cal.deadline(at(2008, 12, 31, 10), Limit(1, WD)) == end_of(2009, 1, 4)
    assert cal.deadline(at(2008, 12, 31, 10), Limit(2, WD)) == end_of(2009, 1, 5)


def test_legal_extension_and_many_days_cross_years(cal):
    # 20 + 10 (延期) working days from Tue 5 Feb 2008: 20 = Tue 11 Mar (above); 21-23 = 12-14 Mar,
    # 24-28 = Mon 17 - Fri 21 Mar, 29 = Mon 24 Mar, 30 = Tue 25 Mar.
    assert cal.deadline(at(2008, 2, 5, 9), Limit(20, WD).plus(10)) == end_of(2008, 3, 25)
    # 251 working days in 2008 (see above): the 251st after 31 Dec 2007 is Wed 31 Dec 2008,
    # the 252nd is Sun 4 Jan 2009 (worked; 1-3 Jan 2009 off).
    assert cal.working_days_after(date(2007, 12, 31), 251) == date(2008, 12, 31)
    assert cal.working_days_after(date(2007, 12, 31), 252) == date(2009, 1, 4)


def test_bisection_agrees_with_walking_day_by_day(cal):
    def walk(d: date, n: int) -> date:
        while n:
            d += timedelta(days=1)
            if cal.is_working_day(d):
                n -= 1
        return d

    for start in (date(2007, 12, 28), date(2008, 2, 1), date(2008, 9, 26), date(2008, 10, 3), date(2015, 6, 30)):
        for n in (0, 1, 2, 5, 7, 20, 60, 250, 400):
            assert cal.working_days_after(start, n) == walk(start, n), (start, n)


def test_next_working_day(cal):
    assert cal.next_working_day(date(2008, 9, 26)) == date(2008, 9, 27)
    assert cal.next_working_day(date(2008, 9, 28)) == date(2008, 10, 6)


# --- calendar days ---------------------------------------------------------------------------


def test_calendar_days_ending_on_a_holiday_roll_to_the_next_working_day(cal):
    # Accepted Fri 26 Sep 2008 + 3 days = Mon 29 Sep, a holiday: rolls to Mon 6 Oct.
    assert cal.deadline(at(2008, 9, 26, 10), Limit(3, CD)) == end_of(2008, 10, 6)


def test_calendar_days_ending_on_a_weekend_roll_but_not_on_a_worked_weekend(cal):
    # Accepted Mon 3 Mar 2008 + 6 days = Sun 9 Mar: rolls to Mon 10 Mar.
    assert cal.deadline(at(2008, 3, 3, 10), Limit(6, CD)) == end_of(2008, 3, 10)
    # Accepted Sat 20 Sep 2008 + 7 days = Sat 27 Sep, a worked Saturday: no roll.
    assert cal.deadline(at(2008, 9, 20, 10), Limit(7, CD)) == end_of(2008, 9, 27)
    # Accepted Tue 4 Mar 2008 + 30 days = Thu 3 Apr, a working day.
    assert cal.deadline(at(2008, 3, 4, 10), Limit(30, CD)) == end_of(2008, 4, 3)


def test_zero_calendar_days_is_the_end_of_the_day_of_acceptance(cal):
    assert cal.deadline(at(2008, 10, 1, 10), Limit(0, CD)) == end_of(2008, 10, 1)


# --- working hours ---------------------------------------------------------------------------


def test_four_hours_from_ten_crosses_lunch(cal):
    # Tue 4 Mar 2008 (winter): 10-12 = 2 h, lunch, 13-15 = 2 h.
    assert cal.deadline(at(2008, 3, 4, 10), Limit(4, WH)) == at(2008, 3, 4, 15)


def test_four_hours_from_sixteen_cross_the_night(cal):
    # Tue 4 Mar 2008: 16-17 = 1 h; Wed 5 Mar 9-12 = 3 h.
    assert cal.deadline(at(2008, 3, 4, 16), Limit(4, WH)) == at(2008, 3, 5, 12)


def test_hours_before_a_holiday_weekend_carry_to_the_next_working_day(cal):
    # Thu 3 Apr 2008 (winter) 16:00: 1 h; Fri 4 Apr Qingming and the weekend off;
    # Mon 7 Apr 9-12 = 3 h.
    assert cal.deadline(at(2008, 4, 3, 16), Limit(4, WH)) == at(2008, 4, 7, 12)
    # Fri 12 Sep 2008 (summer) 16:00: 16-17:30 = 1.5 h; weekend and Mon 15 Sep (Mid-Autumn) off;
    # Tue 16 Sep 9-11:30 = 2.5 h.
    assert cal.deadline(at(2008, 9, 12, 16), Limit(4, WH)) == at(2008, 9, 16, 11, 30)


def test_hours_starting_outside_office_time(cal):
    # Before opening, Tue 4 Mar 2008 08:00: 9-12 = 3 h, 13-14 = 1 h.
    assert cal.deadline(at(2008, 3, 4, 8), Limit(4, WH)) == at(2008, 3, 4, 14)
    # During lunch, 12:30: 13-17 = 4 h, ending exactly at closing time (not next morning).
    assert cal.deadline(at(2008, 3, 4, 12, 30), Limit(4, WH)) == at(2008, 3, 4, 17)
    # At 12:00 sharp the morning is over: 13-15.
    assert cal.deadline(at(2008, 3, 4, 12), Limit(2, WH)) == at(2008, 3, 4, 15)
    # After closing, 18:00: Wed 5 Mar 9-12 = 3 h, 13-14 = 1 h.
    assert cal.deadline(at(2008, 3, 4, 18), Limit(4, WH)) == at(2008, 3, 5, 14)
    # On an ordinary Saturday, Sat 8 Mar: Mon 10 Mar 9-12, 13-14.
    assert cal.deadline(at(2008, 3, 8, 10), Limit(4, WH)) == at(2008, 3, 10, 14)


def test_summer_and_winter_sessions(cal):
    # Summer, Tue 3 Jun 2008: 10-12 = 2 h, 13:30-15:30 = 2 h.
    assert cal.deadline(at(2008, 6, 3, 10), Limit(4, WH)) == at(2008, 6, 3, 15, 30)
    # Winter, Tue 4 Mar 2008: 10-12, 13-15.
    assert cal.deadline(at(2008, 3, 4, 10), Limit(4, WH)) == at(2008, 3, 4, 15)
    # Summer's last working day, Sun 28 Sep 2008 (worked) 16:00: 16-17:30 = 1.5 h;
    # holidays; winter Mon 6 Oct 9-11:30 = 2.5 h.
    assert cal.deadline(at(2008, 9, 28, 16), Limit(4, WH)) == at(2008, 10, 6, 11, 30)


def test_a_make_up_saturday_has_office_hours(cal):
    # Sat 27 Sep 2008 is worked (summer hours): 10-12, 13:30-15:30.
    assert cal.deadline(at(2008, 9, 27, 10), Limit(4, WH)) == at(2008, 9, 27, 15, 30)
    # Fri 26 Sep 16:00: 16-17:30 = 1.5 h, Sat 27 Sep 9-11:30 = 2.5 h.
    assert cal.deadline(at(2008, 9, 26, 16), Limit(4, WH)) == at(2008, 9, 27, 11, 30)


def test_zero_and_fractional_hours(cal):
    assert cal.deadline(at(2008, 3, 4, 10, 17), Limit(0, WH)) == at(2008, 3, 4, 10, 17)
    # A suspension can leave fractional hours: 1.5 h from 11:00 = 11-12 + 13-13:30.
    assert cal.deadline_for(at(2008, 3, 4, 11), Fraction(3, 2), WH) == at(2008, 3, 4, 13, 30)
    assert cal.deadline_for(at(2008, 3, 4, 11), Decimal("0.25"), WH) == at(2008, 3, 4, 11, 15)
    # One hour from 11:00 ends at 12:00 sharp, when the morning session ends.
    assert cal.instant_after(at(2008, 3, 4, 11), 1, WH) == at(2008, 3, 4, 12)


def test_hours_from_a_utc_instant(cal):
    # 02:00 UTC = 10:00 Beijing; 4 h -> 15:00 Beijing = 07:00 UTC.
    result = cal.deadline(datetime(2008, 3, 4, 2, tzinfo=timezone.utc), Limit(4, WH))
    assert result == datetime(2008, 3, 4, 7, tzinfo=timezone.utc)
    assert result.utcoffset() == timedelta(hours=8)


# --- elapsed time: suspensions (特别程序) ----------------------------------------------------


def test_suspension_across_national_day_in_all_units(cal):
    a, b = at(2008, 9, 25, 16), at(2008, 10, 7, 10)  # Thu 25 Sep 16:00 to Tue 7 Oct 10:00
    # Working days after Thu 25 Sep through Tue 7 Oct: Fri 26, Sat 27, Sun 28 Sep, Mon 6, Tue 7 Oct.
    assert cal.elapsed(a, b, WD) == 5
    assert cal.elapsed(a, b, CD) == 12
    # Office hours: Thu 25 Sep 16-17:30 = 1.5; Fri 26, Sat 27, Sun 28 Sep (summer) 7 each = 21;
    # Mon 6 Oct (winter) 7; Tue 7 Oct 9-10 = 1. Total 30.5.
    assert cal.elapsed(a, b, WH) == Fraction(61, 2)


def test_suspension_across_an_ordinary_weekend_and_qingming(cal):
    a, b = at(2008, 4, 3, 11), at(2008, 4, 7, 14)  # Thu 3 Apr 11:00 to Mon 7 Apr 14:00
    assert cal.elapsed(a, b, WD) == 1  # Fri 4 off, weekend, Mon 7 Apr
    assert cal.elapsed(a, b, CD) == 4
    # Thu 11-12 + 13-17 = 5 h; Mon 9-12 + 13-14 = 4 h.
    assert cal.elapsed(a, b, WH) == 9


def test_elapsed_edge_cases(cal):
    a = at(2008, 3, 4, 10)
    assert cal.elapsed(a, a, WD) == 0
    assert cal.elapsed(at(2008, 3, 5, 10), a, CD) == 0
    assert cal.elapsed(at(2008, 3, 5, 10), a, WH) == 0
    assert cal.elapsed(a, at(2008, 3, 4, 10, 20), WH) == Fraction(1, 3)
    assert cal.elapsed(at(2008, 3, 4, 12, 10), at(2008, 3, 4, 12, 50), WH) == 0  # lunch
    assert cal.elapsed(a, at(2008, 3, 4, 23), WD) == 0  # same day
    assert cal.elapsed(at(2008, 10, 1, 9), at(2008, 10, 5, 18), WH) == 0  # all holiday


def test_a_suspension_extends_the_deadline(cal):
    # 5 working days from Tue 23 Sep 2008: 24, 25, 26, 27, 28 Sep -> end of Sun 28 Sep.
    accepted = at(2008, 9, 23, 10)
    assert cal.deadline(accepted, Limit(5, WD)) == end_of(2008, 9, 28)
    # Suspended Thu 25 Sep 10:00 to Tue 7 Oct 10:00: 5 working days (26, 27, 28 Sep, 6, 7 Oct).
    suspended = cal.elapsed(at(2008, 9, 25, 10), at(2008, 10, 7, 10), WD)
    assert suspended == 5
    # 10 working days from 23 Sep: 24-28 Sep (5), 6-10 Oct (10) -> end of Fri 10 Oct.
    assert cal.deadline(accepted, Limit(5, WD).plus(suspended)) == end_of(2008, 10, 10)
    # In hours: 4 h from Tue 4 Mar 10:00, suspended 11:00-11:20 -> 4 h 20 min -> 15:20.
    hours = cal.elapsed(at(2008, 3, 4, 11), at(2008, 3, 4, 11, 20), WH)
    assert cal.deadline_for(at(2008, 3, 4, 10), 4 + hours, WH) == at(2008, 3, 4, 15, 20)


# --- unknown years and published schedules ------------------------------------------------


def test_a_year_without_a_schedule_is_never_guessed(cal):
    with pytest.raises(CalendarUnknown) as e:
        cal.is_working_day(date(2027, 1, 4))
    assert "2027" in e.value.detail and "publish" in e.value.detail
    assert e.value.code == "calendar_unknown"
    with pytest.raises(CalendarUnknown):
        cal.is_working_day(date(2003, 6, 2))
    # Thu 31 Dec 2026 is the first working day after Wed 30 Dec; the next one is in 2027.
    assert cal.deadline(at(2026, 12, 30, 10), Limit(1, WD)) == end_of(2026, 12, 31)
    with pytest.raises(CalendarUnknown, match="2027"):
        cal.deadline(at(2026, 12, 30, 10), Limit(2, WD))
    with pytest.raises(CalendarUnknown):
        cal.deadline(at(2026, 12, 30, 10), Limit(5, CD))
    with pytest.raises(CalendarUnknown):
        cal.deadline(at(2026, 12, 31, 16), Limit(4, WH))
    with pytest.raises(CalendarUnknown):
        cal.elapsed(at(2026, 12, 30, 10), at(2027, 1, 5, 10), WD)


def test_a_provisional_calendar_assumes_weekdays_in_unpublished_years_and_says_which(cal):
    prov = cal.provisional()
    assert prov.is_provisional and not cal.is_provisional and prov.years == cal.years
    # Wed 30 Dec 2026 + 2 working days: Thu 31 Dec, then Fri 1 Jan 2027 (assumed worked).
    due = prov.deadline(at(2026, 12, 30, 10), Limit(2, WD))
    assert due == end_of(2027, 1, 1)
    assert prov.unpublished_years(at(2026, 12, 30, 10), due) == (2027,)
    assert prov.unpublished_years(date(2026, 1, 1), date(2026, 12, 31)) == ()
    assert prov.is_working_day(date(2027, 1, 4)) and not prov.is_working_day(date(2027, 1, 9))  # Mon yes, Sat no
    assert prov.elapsed(at(2026, 12, 30, 10), at(2027, 1, 5, 10), WD) == 4  # 31 Dec, 1, 4, 5 Jan
    # The year's schedule itself is still never guessed, and publishing it replaces the assumption.
    with pytest.raises(CalendarUnknown):
        prov.schedule(2027)
    published = prov.with_schedule(SCHEDULE_2027)
    assert published.is_provisional and published.deadline(at(2026, 12, 30, 10), Limit(2, WD)) == end_of(2027, 1, 4)
    assert published.unpublished_years(at(2026, 12, 30, 10), end_of(2027, 1, 4)) == ()


# An ILLUSTRATIVE 2027 schedule (the real one is published in late 2026): New Year's Day
# Fri 1 Jan 2027 off, and a made-up Sat 9 Jan worked, to show both kinds of exception.
SCHEDULE_2027 = YearSchedule(2027, frozenset({date(2027, 1, 1)}), frozenset({date(2027, 1, 9)}))


def test_a_new_year_becomes_usable_once_published(cal):
    published = cal.with_schedule(SCHEDULE_2027)
    assert 2027 in published.years and 2027 not in cal.years  # the original is unchanged
    # Accepted Wed 30 Dec 2026: 1 = Thu 31 Dec, Fri 1 Jan off, weekend, 2 = Mon 4 Jan 2027.
    assert published.deadline(at(2026, 12, 30, 10), Limit(2, WD)) == end_of(2027, 1, 4)
    # Mon 4 - Fri 8 Jan are 2-6; 7 = Sat 9 Jan (made-up workday).
    assert published.deadline(at(2026, 12, 30, 10), Limit(7, WD)) == end_of(2027, 1, 9)
    # The infra entry point does the same.
    assert default_calendar([SCHEDULE_2027]).deadline(at(2026, 12, 30, 10), Limit(7, WD)) == end_of(2027, 1, 9)
    with pytest.raises(CalendarUnknown, match="2028"):
        published.is_working_day(date(2028, 1, 3))


def test_a_published_schedule_overrides_the_package_year(cal):
    # Suppose a correction is published for 2008 making Fri 26 Sep a day off and dropping
    # the make-up Sat 27 Sep (illustrative only, not a real notice).
    package = schedules_from_chinesecalendar()[2008]
    corrected = YearSchedule(
        2008,
        package.holidays | {date(2008, 9, 26)},
        package.workdays - {date(2008, 9, 27)},
    )
    for new in (cal.with_schedule(corrected), default_calendar([corrected])):
        assert new.is_working_day(date(2008, 9, 26)) is False
        assert new.is_working_day(date(2008, 9, 27)) is False
        # Accepted Thu 25 Sep: 1 = Sun 28 Sep, 2 = Mon 6 Oct.
        assert new.deadline(at(2008, 9, 25, 10), Limit(2, WD)) == end_of(2008, 10, 6)
    # The base calendar is untouched: 1 = Fri 26, 2 = Sat 27 Sep.
    assert cal.deadline(at(2008, 9, 25, 10), Limit(2, WD)) == end_of(2008, 9, 27)
    # Later publications win.
    assert default_calendar([corrected, package]).is_working_day(date(2008, 9, 26)) is True


# --- refusals and storage --------------------------------------------------------------------


def test_naive_datetimes_are_refused(cal):
    naive = datetime(2008, 3, 4, 10)
    for call in (
        lambda: cal.deadline(naive, Limit(1, WD)),
        lambda: cal.deadline_for(naive, 1, WH),
        lambda: cal.elapsed(naive, at(2008, 3, 5), WD),
        lambda: cal.elapsed(at(2008, 3, 3), naive, WH),
    ):
        with pytest.raises(InvalidInput) as e:
            call()
        assert e.value.code == "naive_datetime"


def test_day_amounts_must_be_whole_and_amounts_non_negative(cal):
    with pytest.raises(InvalidInput) as e:
        cal.deadline_for(at(2008, 3, 4, 10), Fraction(1, 2), WD)
    assert e.value.code == "invalid_amount"
    with pytest.raises(InvalidInput):
        cal.deadline_for(at(2008, 3, 4, 10), -1, WH)
    assert cal.deadline_for(at(2008, 3, 4, 10), Fraction(4, 2), WD) == end_of(2008, 3, 6)


def test_year_schedule_validation_and_round_trip():
    with pytest.raises(InvalidInput) as e:
        YearSchedule(2008, frozenset({date(2009, 1, 1)}), frozenset())
    assert e.value.code == "invalid_schedule"
    with pytest.raises(InvalidInput) as e:
        YearSchedule(2008, frozenset({date(2008, 9, 27)}), frozenset({date(2008, 9, 27)}))
    assert e.value.code == "invalid_schedule"
    package = schedules_from_chinesecalendar()[2008]
    raw = package.as_dict()
    assert raw["year"] == 2008
    assert raw["workdays"] == ["2008-02-02", "2008-02-03", "2008-05-04", "2008-09-27", "2008-09-28"]
    assert raw["holidays"] == sorted(raw["holidays"]) and "2008-10-01" in raw["holidays"]
    assert YearSchedule.from_dict(raw) == package
    with pytest.raises(InvalidInput) as e:
        YearSchedule.from_dict({"year": 2027, "holidays": ["2027-13-01"], "workdays": []})
    assert e.value.code == "invalid_schedule"


def test_office_hours_validation_and_round_trip():
    assert DEFAULT_OFFICE_HOURS.sessions_on(date(2008, 4, 30)) == (
        Session(time(9), time(12)),
        Session(time(13), time(17)),
    )
    assert DEFAULT_OFFICE_HOURS.sessions_on(date(2008, 5, 1)) == (
        Session(time(9), time(12)),
        Session(time(13, 30), time(17, 30)),
    )
    assert DEFAULT_OFFICE_HOURS.sessions_on(date(2008, 9, 30))[1].start == time(13, 30)
    assert DEFAULT_OFFICE_HOURS.sessions_on(date(2008, 10, 1))[1].start == time(13)
    with pytest.raises(InvalidInput):
        Session(time(12), time(9))
    with pytest.raises(InvalidInput):
        OfficeHours(winter=(Session(time(9), time(12)), Session(time(11), time(17))))
    with pytest.raises(InvalidInput):
        OfficeHours(winter=(Session(time(13), time(17)), Session(time(9), time(12))))
    raw = DEFAULT_OFFICE_HOURS.as_dict()
    assert raw == {
        "winter": [["09:00", "12:00"], ["13:00", "17:00"]],
        "summer": [["09:00", "12:00"], ["13:30", "17:30"]],
        "summer_start": "05-01",
        "summer_end": "09-30",
    }
    assert OfficeHours.from_dict(raw) == DEFAULT_OFFICE_HOURS


def test_custom_office_hours_change_working_hours():
    # One session all year, 08:30-17:30 with no lunch break.
    hours = OfficeHours(winter=(Session(time(8, 30), time(17, 30)),), summer=(Session(time(8, 30), time(17, 30)),))
    cal = default_calendar(office_hours=hours)
    # Tue 4 Mar 2008 16:00: 16-17:30 = 1.5 h; Wed 5 Mar 8:30-11:00 = 2.5 h.
    assert cal.deadline(at(2008, 3, 4, 16), Limit(4, WH)) == at(2008, 3, 5, 11)
    assert cal.office_seconds(date(2008, 3, 4)) == 9 * 3600
    assert cal.office_seconds(date(2008, 3, 8)) == 0

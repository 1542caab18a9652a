"""The loss hotline's schedules on the Japanese calendar (smartphone-service.md 9.1).

Expected instants are derived by hand in the comments from the published hours (weekdays
9:30–20:00, weekends and national holidays 9:30–17:30 JST, ITM-2305) and the Cabinet Office's
list of national holidays (内閣府「国民の祝日」について), not from the code under test. JST is
UTC+9 with no daylight saving time, so 09:30 JST is 00:30Z on the same day.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.lifecycle.calendar import (
    HOLIDAY_YEARS,
    SCHEDULES,
    CalendarError,
    HotlineSchedule,
    holiday_name,
    is_national_holiday,
    schedule,
)
from workbench.pki.clock import JST

ITM = schedule("itmedia-2023")
H24 = schedule("jlis-24h")
EST = timezone(timedelta(hours=-5), "EST")


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- national holidays: an independent list ------------------------------------------------

#: The Cabinet Office's published lists. 2023: 1 Jan was a Sunday, so 2 Jan is 振替休日.
#: 2025: 23 Feb, 4 May (a Sunday) and 23 Nov fall on Sundays → 24 Feb, 6 May, 24 Nov.
#: 2026: 3 May is a Sunday → 6 May (4 and 5 May are holidays already); 22 Sep lies between
#: two holidays (敬老の日 21 Sep, 秋分の日 23 Sep) → 国民の休日.
HOLIDAYS = {
    2023: ["01-01", "01-02", "01-09", "02-11", "02-23", "03-21", "04-29", "05-03", "05-04",
           "05-05", "07-17", "08-11", "09-18", "09-23", "10-09", "11-03", "11-23"],
    2025: ["01-01", "01-13", "02-11", "02-23", "02-24", "03-20", "04-29", "05-03", "05-04",
           "05-05", "05-06", "07-21", "08-11", "09-15", "09-23", "10-13", "11-03", "11-23",
           "11-24"],
    2026: ["01-01", "01-12", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
           "05-06", "07-20", "08-11", "09-21", "09-22", "09-23", "10-12", "11-03", "11-23"],
}


@pytest.mark.parametrize("year", sorted(HOLIDAYS))
def test_national_holidays_match_the_cabinet_office_list(year: int) -> None:
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(365)]
    found = [d.strftime("%m-%d") for d in days if is_national_holiday(d)]
    assert found == HOLIDAYS[year]


def test_holiday_names_in_japanese_and_english() -> None:
    assert holiday_name(date(2025, 1, 1)) == "元日"
    assert holiday_name(date(2025, 5, 6)) == "振替休日"  # substitute for 4 May (a Sunday)
    assert holiday_name(date(2025, 5, 6), language="en") == "Substitute Holiday"
    assert holiday_name(date(2026, 9, 22)) == "国民の休日"
    assert holiday_name(date(2025, 5, 7)) is None
    assert holiday_name(date(2025, 1, 2)) is None  # 2 January is not a national holiday


def test_an_aware_datetime_counts_as_its_japanese_day() -> None:
    # 2024-12-31 15:00Z is 2025-01-01 00:00 JST: New Year's Day in Japan
    assert is_national_holiday(utc(2024, 12, 31, 15, 0))
    assert not is_national_holiday(utc(2024, 12, 31, 14, 59))
    with pytest.raises(CalendarError, match="no timezone"):
        is_national_holiday(datetime(2025, 1, 1, 12, 0))


@pytest.mark.parametrize("day", [date(1948, 12, 31), date(2100, 1, 1)])
def test_years_without_holiday_data_are_refused_not_answered(day: date) -> None:
    assert day.year not in HOLIDAY_YEARS
    with pytest.raises(CalendarError, match="1949–2099"):
        is_national_holiday(day)


# --- itmedia-2023: hand-derived cases ----------------------------------------------------

CASES = [
    # (what, reported at, next opening in JST)
    # 2025-03-08 is a Saturday: weekend hours end 17:30, Sunday opens 9:30.
    ("Saturday 18:00 → Sunday 9:30", jst(2025, 3, 8, 18, 0), jst(2025, 3, 9, 9, 30)),
    # 2025-02-10 (Mon) after 20:00; 2025-02-11 建国記念の日 opens on holiday hours at 9:30.
    ("eve of a holiday → the holiday 9:30", jst(2025, 2, 10, 21, 0), jst(2025, 2, 11, 9, 30)),
    # the holiday itself is a Tuesday but keeps holiday hours: closed after 17:30
    ("holiday 18:00 → next weekday", jst(2025, 2, 11, 18, 0), jst(2025, 2, 12, 9, 30)),
    # closing time is exclusive: a call at 20:00:00 on a Wednesday waits for Thursday 9:30
    ("weekday 20:00:00 exactly", jst(2025, 3, 5, 20, 0), jst(2025, 3, 6, 9, 30)),
    ("weekday before opening", jst(2025, 3, 5, 7, 0), jst(2025, 3, 5, 9, 30)),
    # 2025-05-06 (Tue) is 振替休日 for 4 May: holiday hours, so 18:00 is closed
    ("substitute holiday 18:00", jst(2025, 5, 6, 18, 0), jst(2025, 5, 7, 9, 30)),
    # 2025-05-03 is Saturday and 憲法記念日: closes 17:30 (exclusive), Sunday 4 May opens 9:30
    ("Saturday holiday 17:30:00", jst(2025, 5, 3, 17, 30), jst(2025, 5, 4, 9, 30)),
    # New Year 2023: 1 Jan a Sunday, 2 Jan its substitute holiday (holiday hours)
    ("New Year's Day evening", jst(2023, 1, 1, 18, 0), jst(2023, 1, 2, 9, 30)),
    ("2 Jan 2023 after 17:30", jst(2023, 1, 2, 17, 45), jst(2023, 1, 3, 9, 30)),
    # 2025-12-31 (Wed) 20:00 → 2026-01-01 (Thu, 元日) on holiday hours
    ("New Year's Eve 20:00", jst(2025, 12, 31, 20, 0), jst(2026, 1, 1, 9, 30)),
    # 2026 silver week: 21 Sep 敬老の日 (Mon), 22 Sep 国民の休日, 23 Sep 秋分の日
    ("Respect for the Aged Day 19:00", jst(2026, 9, 21, 19, 0), jst(2026, 9, 22, 9, 30)),
    # 2025-03-07T15:30Z is Saturday 00:30 JST although it is still Friday in UTC
    ("Friday in UTC, Saturday in Japan", utc(2025, 3, 7, 15, 30), jst(2025, 3, 8, 9, 30)),
    # 2025-03-05 06:00 EST (UTC-5) = 11:00Z = 20:00 JST on Wednesday: just closed
    ("another time zone", datetime(2025, 3, 5, 6, 0, tzinfo=EST), jst(2025, 3, 6, 9, 30)),
]


@pytest.mark.parametrize(("what", "reported", "expected"), CASES, ids=[c[0] for c in CASES])
def test_itmedia_2023_next_opening(what: str, reported: datetime, expected: datetime) -> None:
    assert not ITM.is_open(reported)
    got = ITM.next_opening(reported)
    assert got == expected
    assert got.tzinfo is UTC
    assert ITM.is_open(got)


OPEN = [
    # weekday hours
    ("weekday 9:30:00 (opening is inclusive)", jst(2025, 3, 5, 9, 30)),
    ("weekday 19:59:59.999999", jst(2025, 3, 5, 19, 59, 59, 999999)),
    # holiday hours on a Tuesday (substitute holiday)
    ("substitute holiday 17:00", jst(2025, 5, 6, 17, 0)),
    # 3 Jan is an ordinary Tuesday in 2023 (MODEL: no year-end closure)
    ("3 Jan 2023 19:00", jst(2023, 1, 3, 19, 0)),
]


@pytest.mark.parametrize(("what", "t"), OPEN, ids=[c[0] for c in OPEN])
def test_itmedia_2023_open_instants_are_acted_on_at_once(what: str, t: datetime) -> None:
    assert ITM.is_open(t)
    assert ITM.next_opening(t) == t


def test_open_intervals_over_golden_week() -> None:
    # 5 May (Mon, こどもの日) and 6 May (Tue, 振替休日) 9:30–17:30; 7 May (Wed) 9:30–20:00
    got = ITM.open_intervals(jst(2025, 5, 5), jst(2025, 5, 8))
    assert got == [
        (jst(2025, 5, 5, 9, 30), jst(2025, 5, 5, 17, 30)),
        (jst(2025, 5, 6, 9, 30), jst(2025, 5, 6, 17, 30)),
        (jst(2025, 5, 7, 9, 30), jst(2025, 5, 7, 20, 0)),
    ]
    assert [b - a for a, b in got] == [timedelta(hours=8)] * 2 + [timedelta(hours=10.5)]
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in got)


def test_open_intervals_are_clipped_to_the_window() -> None:
    assert ITM.open_intervals(jst(2025, 5, 7, 12), jst(2025, 5, 7, 19)) == [
        (jst(2025, 5, 7, 12), jst(2025, 5, 7, 19))
    ]
    assert ITM.open_intervals(jst(2025, 5, 7, 21), jst(2025, 5, 8, 9)) == []
    assert H24.open_intervals(jst(2025, 5, 7), jst(2025, 5, 9)) == [
        (jst(2025, 5, 7), jst(2025, 5, 9))
    ]
    with pytest.raises(CalendarError, match="before start"):
        ITM.open_intervals(jst(2025, 5, 8), jst(2025, 5, 7))


def test_a_schedule_closed_on_holidays_skips_all_of_golden_week() -> None:
    office = HotlineSchedule(
        "office", "office hours", "平日のみ", weekday_hours=(time(9), time(17)))
    # Friday 2025-05-02 18:00; 3–6 May are Saturday, Sunday, holiday, substitute holiday
    assert office.next_opening(jst(2025, 5, 2, 18)) == jst(2025, 5, 7, 9)


# --- properties --------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2023, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from([UTC, JST, EST]),
)


@given(t=instants, data=st.data())
def test_next_opening_is_the_first_open_instant(t: datetime, data: st.DataObject) -> None:
    n = ITM.next_opening(t)
    assert n >= t
    assert ITM.is_open(n)
    # the longest closed stretch is a weekend or holiday night, 17:30 → 9:30 = 16 hours
    assert n - t <= timedelta(hours=16)
    if n > t:
        gap = (n - t) // timedelta(microseconds=1)
        k = data.draw(st.integers(min_value=0, max_value=gap - 1), label="µs after t")
        assert not ITM.is_open(t + timedelta(microseconds=k))
        assert not ITM.is_open(n - timedelta(microseconds=1))


@given(t=instants)
def test_is_open_agrees_with_open_intervals(t: datetime) -> None:
    intervals = ITM.open_intervals(t - timedelta(days=1), t + timedelta(days=1))
    assert ITM.is_open(t) == any(a <= t < b for a, b in intervals)


@given(t=instants)
def test_the_24h_line_acts_at_once(t: datetime) -> None:
    assert H24.is_open(t)
    n = H24.next_opening(t)
    assert n == t
    assert n.tzinfo is UTC


# --- errors and description ----------------------------------------------------------------

def test_naive_datetimes_are_refused_with_one_line() -> None:
    for call in (ITM.is_open, ITM.next_opening, H24.is_open, H24.next_opening):
        with pytest.raises(CalendarError) as exc:
            call(datetime(2025, 3, 5, 12, 0))
        assert "no timezone" in str(exc.value)
        assert "\n" not in str(exc.value)
        assert isinstance(exc.value, WorkbenchError)


def test_unknown_schedule_lists_the_allowed_names() -> None:
    with pytest.raises(CalendarError) as exc:
        schedule("weekdays-only")
    message = str(exc.value)
    assert "'weekdays-only'" in message and "itmedia-2023" in message and "jlis-24h" in message
    assert "\n" not in message
    assert set(SCHEDULES) == {"itmedia-2023", "jlis-24h"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekday_hours": (time(20), time(9, 30))},  # opens after it closes
        {"weekday_hours": (time(9), time(9))},  # empty day
        {"always_open": True, "weekday_hours": (time(9), time(17))},
        {},  # never open
    ],
)
def test_malformed_schedules_are_refused(kwargs: dict) -> None:
    with pytest.raises(CalendarError):
        HotlineSchedule("bad", "bad", "不正", **kwargs)


def test_schedules_are_frozen_and_readable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ITM.always_open = True  # type: ignore[misc]
    assert "weekdays 09:30–20:00" in str(ITM)
    assert "weekends and national holidays 09:30–17:30 JST" in str(ITM)
    assert "0120-95-0178" in str(ITM)
    assert "24 hours, 365 days" in str(H24)
    assert ITM.hours_on(date(2025, 5, 6)) == (time(9, 30), time(17, 30))
    assert ITM.hours_on(date(2025, 5, 7)) == (time(9, 30), time(20, 0))
    with pytest.raises(CalendarError, match="always open"):
        H24.hours_on(date(2025, 5, 7))

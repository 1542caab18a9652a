"""Validity rules and the controllable clock (jpki-card.md 9.7, smartphone-service.md 6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from workbench.errors import PkiError
from workbench.pki import (
    JST,
    FixedClock,
    SystemClock,
    card_expiry,
    certificate_not_after,
    end_of_day_jst,
)
from workbench.pki.profiles import age_on, birthday_in_year, nth_birthday_after

# --- clock -----------------------------------------------------------------------------------


def test_end_of_day_jst_is_14_59_59z() -> None:
    """9.7: Not After = 23:59:59 JST = 14:59:59Z on the same date."""
    t = end_of_day_jst(date(2029, 2, 17))
    assert t == datetime(2029, 2, 17, 14, 59, 59, tzinfo=UTC)
    assert t.astimezone(JST).replace(tzinfo=None) == datetime(2029, 2, 17, 23, 59, 59)


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2025, 4, 1, 9, 0, tzinfo=JST))
    assert clock.now() == datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert clock.advance(timedelta(days=1)) == datetime(2025, 4, 2, 0, 0, tzinfo=UTC)
    clock.set(datetime(2020, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2020, 1, 1, tzinfo=UTC)


def test_clocks_refuse_naive_times_and_return_aware_utc() -> None:
    with pytest.raises(PkiError):
        FixedClock(datetime(2025, 1, 1))
    with pytest.raises(PkiError):
        FixedClock(datetime(2025, 1, 1, tzinfo=UTC)).set(datetime(2025, 1, 2))
    assert SystemClock().now().utcoffset() == timedelta(0)


# --- birthdays -------------------------------------------------------------------------------


def test_leap_day_birthday_rule() -> None:
    """MODEL: a 29 Feb birthday is 28 Feb in common years (default); 1 Mar if chosen."""
    born = date(2000, 2, 29)
    assert birthday_in_year(born, 2023) == date(2023, 2, 28)
    assert birthday_in_year(born, 2023, leap_day="mar1") == date(2023, 3, 1)
    assert birthday_in_year(born, 2024) == date(2024, 2, 29)


def test_birthday_on_the_issue_day_does_not_count() -> None:
    """MODEL reading of 発行日後: the n-th birthday strictly after the issue date."""
    assert nth_birthday_after(date(1980, 6, 1), date(2024, 6, 1), 1) == date(2025, 6, 1)
    assert nth_birthday_after(date(1980, 6, 2), date(2024, 6, 1), 1) == date(2024, 6, 2)


def test_age_on() -> None:
    assert age_on(date(2006, 6, 1), date(2024, 5, 31)) == 17
    assert age_on(date(2006, 6, 1), date(2024, 6, 1)) == 18


# --- card expiry (9.7 MODEL) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "issued", "expected"),
    [
        # adult: 10th birthday after issue
        (date(1980, 2, 17), date(2024, 6, 1), date(2034, 2, 17)),
        # 17 on the issue day → minor → 5th birthday (the 1st is the very next day)
        (date(2006, 6, 2), date(2024, 6, 1), date(2028, 6, 2)),
        # 18 on the issue day (birthday) → adult; the birthday itself does not count
        (date(2006, 6, 1), date(2024, 6, 1), date(2034, 6, 1)),
        # 29 Feb: 28 Feb in the common year 2034
        (date(2000, 2, 29), date(2024, 3, 1), date(2034, 2, 28)),
    ],
)
def test_card_expiry(birth: date, issued: date, expected: date) -> None:
    """Card valid to the 10th birthday after issue, the 5th for holders under 18 (9.7)."""
    assert card_expiry(birth, issued) == expected


def test_card_expiry_counts_are_parameters() -> None:
    assert card_expiry(date(1980, 2, 17), date(2024, 6, 1), years=20) == date(2044, 2, 17)


def test_card_expiry_refuses_birth_after_issue() -> None:
    with pytest.raises(PkiError):
        card_expiry(date(2025, 1, 1), date(2024, 6, 1))


# --- certificate Not After (9.7) -------------------------------------------------------------

ISSUED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)  # 2024-06-01 12:00 JST


def test_not_after_is_the_fifth_birthday_at_end_of_day_jst() -> None:
    born = date(1980, 2, 17)
    na = certificate_not_after(born, ISSUED, card_expiry(born, ISSUED.date()))
    assert na == datetime(2029, 2, 17, 14, 59, 59, tzinfo=UTC)


def test_renewal_gives_the_sixth_birthday() -> None:
    """9.7: renewed within the 3 months before expiry → 6th birthday."""
    born = date(1980, 2, 17)
    na = certificate_not_after(born, ISSUED, date(2034, 2, 17), renewal=True)
    assert na == datetime(2030, 2, 17, 14, 59, 59, tzinfo=UTC)


def test_not_after_is_capped_at_the_card_expiry() -> None:
    """9.7: '…capped by the card's own expiry' (end of that day, JST)."""
    born = date(1980, 2, 17)
    assert certificate_not_after(born, ISSUED, date(2027, 1, 10)) == end_of_day_jst(
        date(2027, 1, 10)
    )
    # a minor's 5-year card caps even a renewal's 6th birthday
    minor = date(2010, 3, 10)
    expiry = card_expiry(minor, ISSUED.date())
    assert expiry == date(2029, 3, 10)
    assert certificate_not_after(minor, ISSUED, expiry, renewal=True) == end_of_day_jst(expiry)


def test_leap_day_holder_not_after() -> None:
    """29 Feb birthdays: 28 Feb in common years (documented MODEL rule)."""
    born = date(2000, 2, 29)
    after_birthday = datetime(2024, 3, 1, 3, 0, tzinfo=UTC)
    assert certificate_not_after(born, after_birthday, date(2040, 1, 1)) == end_of_day_jst(
        date(2029, 2, 28)
    )
    assert certificate_not_after(born, after_birthday, date(2040, 1, 1), renewal=True) == (
        end_of_day_jst(date(2030, 2, 28))
    )
    # issued the day before a real 29 Feb: that 29 Feb is the 1st birthday, the 5th is 2028-02-29
    before = datetime(2024, 2, 28, 3, 0, tzinfo=UTC)
    assert certificate_not_after(born, before, date(2040, 1, 1)) == end_of_day_jst(
        date(2028, 2, 29)
    )


def test_issue_date_is_the_jst_day() -> None:
    """2024-05-31 16:00Z is already 2024-06-01 in Japan: a 1 June birthday then does not count."""
    born = date(1980, 6, 1)
    late_utc = datetime(2024, 5, 31, 16, 0, tzinfo=UTC)
    early_utc = datetime(2024, 5, 31, 14, 0, tzinfo=UTC)  # 23:00 JST on 31 May
    assert certificate_not_after(born, late_utc, date(2040, 1, 1)) == end_of_day_jst(
        date(2029, 6, 1)
    )
    assert certificate_not_after(born, early_utc, date(2040, 1, 1)) == end_of_day_jst(
        date(2028, 6, 1)
    )


def test_not_after_refuses_bad_input() -> None:
    born = date(1980, 2, 17)
    with pytest.raises(PkiError):
        certificate_not_after(born, datetime(2024, 6, 1), date(2034, 2, 17))  # naive
    with pytest.raises(PkiError):
        certificate_not_after(born, ISSUED, date(2024, 5, 1))  # card already expired

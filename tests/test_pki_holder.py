"""Holder facts and their encodings: 個人番号 check digit, sex codes, eras (jpki-card.md 3.3,
3.4, 9.5). All people here are synthetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import PkiError
from workbench.pki import Holder, Sex, synthetic_holder
from workbench.pki.holder import (
    ERAS,
    individual_number_check_digit,
    is_valid_individual_number,
    japanese_era,
)

# --- 個人番号 check digit ---------------------------------------------------------------------

# Worked by hand with P_n = n-th digit from the right, Q_n = n+1 (n ≤ 6) / n-5 (n ≥ 7):
#   12345678901: 1·2+0·3+9·4+8·5+7·6+6·7 + 5·2+4·3+3·4+2·5+1·6 = 212; 212 mod 11 = 3 → 8
#   11111111111: (2+3+4+5+6+7)+(2+3+4+5+6) = 47; 47 mod 11 = 3 → 8
#   98765432109: 9·2+0·3+1·4+2·5+3·6+4·7 + 5·2+6·3+7·4+8·5+9·6 = 228; 228 mod 11 = 8 → 3
#   00000000005: 5·2 = 10 → r = 10 → 1
#   00000000006: 6·2 = 12 → r = 1 → 0 (r ≤ 1)
#   00000000000: r = 0 → 0
HAND_COMPUTED = [
    ("12345678901", 8),
    ("11111111111", 8),
    ("98765432109", 3),
    ("00000000005", 1),
    ("00000000006", 0),
    ("00000000000", 0),
]


@pytest.mark.parametrize(("first11", "check"), HAND_COMPUTED)
def test_check_digit_matches_hand_computation(first11: str, check: int) -> None:
    """個人番号 check digit rule (weights 2..7, 2..6 from the right, mod 11)."""
    assert individual_number_check_digit(first11) == check
    assert is_valid_individual_number(first11 + str(check))


@pytest.mark.parametrize(
    "bad",
    ["123456789017", "123456789019", "12345678901", "1234567890188", "12345678901a",
     "１２３４５６７８９０１８", "", "12345678901 "],
)
def test_invalid_individual_numbers_are_rejected(bad: str) -> None:
    """Only 12 ASCII digits with the right check digit are a 個人番号."""
    assert not is_valid_individual_number(bad)


@pytest.mark.parametrize("bad", ["1234567890", "123456789012", "1234567890a", 12345678901])
def test_check_digit_needs_eleven_ascii_digits(bad: object) -> None:
    with pytest.raises(PkiError):
        individual_number_check_digit(bad)  # type: ignore[arg-type]


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(0, 9))
def test_exactly_one_check_digit_is_valid(first11: str, last: int) -> None:
    """For any 11 digits, the computed digit validates and every other digit does not."""
    check = individual_number_check_digit(first11)
    assert is_valid_individual_number(first11 + str(last)) == (last == check)


# --- sex codes (3.3 text AP vs 9.5 certificate) ----------------------------------------------


def test_sex_codes_differ_between_text_ap_and_certificate() -> None:
    """Text AP uses ISO 5218 1/2/9; the certificate 1/2/3 with 3 = unknown (9.5, 12.5)."""
    assert [s.text_ap_code() for s in Sex] == ["1", "2", "9"]
    assert [s.certificate_code() for s in Sex] == ["1", "2", "3"]
    for s in Sex:
        assert Sex.from_certificate_code(s.certificate_code()) is s
        assert Sex.from_text_ap_code(s.text_ap_code()) is s
    with pytest.raises(PkiError):
        Sex.from_certificate_code("9")
    with pytest.raises(PkiError):
        Sex.from_text_ap_code("3")


# --- Japanese eras (9.5 EYYYYMMDD, 3.4 era YYMMDD) --------------------------------------------

ERA_BOUNDARIES = [
    # (day, era digit, era YYMMDD)
    (date(1912, 7, 29), 1, "450729"),  # 明治45
    (date(1912, 7, 30), 2, "010730"),  # 大正元年
    (date(1926, 12, 24), 2, "151224"),  # 大正15
    (date(1926, 12, 25), 3, "011225"),  # 昭和元年
    (date(1989, 1, 7), 3, "640107"),  # 昭和64
    (date(1989, 1, 8), 4, "010108"),  # 平成元年
    (date(2019, 4, 30), 4, "310430"),  # 平成31
    (date(2019, 5, 1), 5, "010501"),  # 令和元年
    (date(1980, 2, 17), 3, "550217"),  # the jpki-card.md 3.4 照合番号B example (昭和55)
]


@pytest.mark.parametrize(("day", "era_digit", "yymmdd"), ERA_BOUNDARIES)
def test_era_forms_at_boundaries(day: date, era_digit: int, yymmdd: str) -> None:
    """9.5 OID .4: era digit + Gregorian date; 3.4: era-year YYMMDD for 照合番号B."""
    holder = synthetic_holder(3, birth_date=day)
    assert holder.era_birth_date() == f"{era_digit}{day:%Y%m%d}"
    assert holder.era_yymmdd() == yymmdd


def test_eras_are_ordered_and_dates_before_meiji_refused() -> None:
    assert [e.code for e in ERAS] == [1, 2, 3, 4, 5]
    assert [e.name for e in ERAS] == ["明治", "大正", "昭和", "平成", "令和"]
    with pytest.raises(PkiError):
        japanese_era(date(1868, 1, 24))


# --- the Holder value object -----------------------------------------------------------------


@pytest.fixture(scope="module")
def holder() -> Holder:
    return Holder(
        family_name="山田",
        given_name="花子",
        birth_date=date(1980, 2, 17),
        sex=Sex.FEMALE,
        prefecture="東京都",
        municipality="千代田区",
        street="本町１丁目２番３号",
        municipality_code="13101",
        individual_number="123456789018",
        security_code="2285",
    )


def test_holder_encodings(holder: Holder) -> None:
    """Name with U+3000 (3.3 DF 22, 9.5 .1); address from the prefecture (9.5 .5); flags one
    "0" per character (9.5 .2/.6)."""
    assert holder.name == "山田\u3000花子"
    assert holder.address == "東京都千代田区本町１丁目２番３号"
    assert holder.name_flags == "00000"
    assert holder.address_flags == "0" * len(holder.address)
    assert holder.birth_yyyymmdd() == "19800217"


def test_repr_masks_the_individual_number_and_security_code(holder: Holder) -> None:
    """CONVENTIONS: secrets never in reprs; only the last 4 digits of the number show."""
    text = repr(holder)
    assert "123456789018" not in text
    assert "********9018" in text
    assert "2285" not in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("individual_number", "123456789017"),  # wrong check digit
        ("individual_number", "12345678901"),
        ("municipality_code", "1310"),
        ("municipality_code", "99101"),  # no prefecture 99
        ("security_code", "12345"),
        ("prefecture", "東京"),
        ("family_name", "山 田"),
        ("given_name", ""),
        ("street", "本町" + "１" * 200),  # address over 200 characters (9.5 .5)
        ("birth_date", datetime(1980, 2, 17)),
        ("birth_date", date(1850, 1, 1)),
        ("sex", 1),
    ],
)
def test_holder_validation(holder: Holder, field: str, value: object) -> None:
    with pytest.raises(PkiError):
        replace(holder, **{field: value})


def test_invalid_individual_number_is_not_echoed(holder: Holder) -> None:
    with pytest.raises(PkiError) as info:
        replace(holder, individual_number="123456789017")
    assert "123456789017" not in str(info.value)


# --- synthetic holders -----------------------------------------------------------------------


def test_synthetic_holder_is_deterministic_for_a_seed() -> None:
    assert synthetic_holder(42) == synthetic_holder(42)
    assert synthetic_holder(b"x") == synthetic_holder(b"x")
    assert len({synthetic_holder(i) for i in range(20)}) == 20


def test_synthetic_holder_golden() -> None:
    """Reproducible across machines and Python versions (no use of the random module)."""
    h = synthetic_holder(1)
    assert (h.name, h.birth_date, h.sex, h.address, h.individual_number) == (
        "高橋\u3000由美", date(1975, 6, 7), Sex.FEMALE, "北海道札幌市中央区中央５丁目１４番１号",
        "279515320665",
    )


def test_synthetic_holder_overrides() -> None:
    h = synthetic_holder(5, birth_date=date(2001, 2, 3), sex=Sex.NOT_APPLICABLE)
    assert h.birth_date == date(2001, 2, 3)
    assert h.sex is Sex.NOT_APPLICABLE


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**64))
def test_synthetic_holders_are_well_formed(seed: int) -> None:
    """Any seed gives a valid holder: check digit, no leading 0, full-width block numbers."""
    h = synthetic_holder(seed)
    assert is_valid_individual_number(h.individual_number)
    assert h.individual_number[0] != "0"
    assert not any(c.isascii() and c.isdigit() for c in h.street)
    assert any("０" <= c <= "９" for c in h.street)
    assert len(h.municipality_code) == 5
    assert len(h.security_code) == 4


def test_unseeded_synthetic_holders_vary() -> None:
    assert len({synthetic_holder().individual_number for _ in range(5)}) > 1

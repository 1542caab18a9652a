"""Synthetic card holders: made-up but well-formed people for cards and certificates.

The facts themselves (:class:`~workbench.holder.Holder`, :class:`~workbench.holder.Sex`, eras,
the 個人番号 check digit) live in :mod:`workbench.holder`, below every layer; this module only
makes people. Only synthetic people: :func:`synthetic_holder` combines common names and public
municipality codes with random block numbers and a random (check-digit-valid) individual number.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date

from workbench.errors import PkiError
from workbench.holder import (
    ERAS,
    IDEOGRAPHIC_SPACE,
    MAX_ADDRESS_CHARS,
    Era,
    Holder,
    Sex,
    holder_from_json,
    holder_to_json,
    individual_number_check_digit,
    is_valid_individual_number,
    japanese_era,
    mask_individual_number,
    to_fullwidth_digits,
)
from workbench.pki.drbg import HashStream

__all__ = [
    "ERAS",
    "IDEOGRAPHIC_SPACE",
    "MAX_ADDRESS_CHARS",
    "Era",
    "Holder",
    "Sex",
    "holder_from_json",
    "holder_to_json",
    "individual_number_check_digit",
    "is_valid_individual_number",
    "japanese_era",
    "mask_individual_number",
    "synthetic_holder",
    "synthetic_individual_number",
    "to_fullwidth_digits",
]


# --- synthetic holders -----------------------------------------------------------------------

_FAMILY_NAMES = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
                 "吉田", "山田", "佐々木", "山口", "松本", "井上")
_GIVEN_NAMES = {
    Sex.MALE: ("太郎", "一郎", "健一", "大輔", "翔太", "拓也", "浩二", "蓮", "悠真", "誠"),
    Sex.FEMALE: ("花子", "陽子", "恵子", "美咲", "結衣", "葵", "由美", "真由美", "陽菜", "愛"),
    Sex.NOT_APPLICABLE: ("薫", "翼", "真琴", "遥", "渚", "光"),
}

#: (prefecture, municipality, 5-digit 全国地方公共団体コード) — public administrative data.
_MUNICIPALITIES: tuple[tuple[str, str, str], ...] = (
    ("北海道", "札幌市中央区", "01101"),
    ("宮城県", "仙台市青葉区", "04101"),
    ("東京都", "千代田区", "13101"),
    ("神奈川県", "横浜市西区", "14103"),
    ("長野県", "松本市", "20202"),
    ("愛知県", "名古屋市中区", "23106"),
    ("京都府", "京都市中京区", "26104"),
    ("大阪府", "大阪市北区", "27127"),
    ("広島県", "広島市中区", "34101"),
    ("福岡県", "福岡市博多区", "40132"),
    ("沖縄県", "那覇市", "47201"),
)

#: Generic town names; combined with random block numbers the address is synthetic.
_TOWNS = ("本町", "中央", "緑町", "栄町", "桜台", "旭町", "若葉", "東雲", "松原", "新町")

_BIRTH_RANGE = (date(1940, 1, 1), date(2005, 12, 31))


def _holder_stream(seed: int | bytes | None) -> HashStream:
    if seed is None:
        return HashStream(secrets.token_bytes(32))
    if isinstance(seed, bool) or not isinstance(seed, int | bytes | bytearray):
        raise PkiError(f"holder seed must be an int or bytes, not {type(seed).__name__}")
    if isinstance(seed, int):
        if seed < 0:
            raise PkiError(f"holder seed must be ≥ 0, got {seed}")
        raw = b"i" + seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "big")
    else:
        raw = b"b" + bytes(seed)
    return HashStream(hashlib.sha256(b"jpki-workbench/synthetic-holder/v1" + raw).digest())


def synthetic_individual_number(stream: HashStream) -> str:
    """11 random digits (no leading 0) plus the check digit."""
    first11 = str(stream.randint(1, 9)) + "".join(str(stream.randbelow(10)) for _ in range(10))
    return first11 + str(individual_number_check_digit(first11))


def synthetic_holder(
    seed: int | bytes | None = None,
    *,
    birth_date: date | None = None,
    sex: Sex | None = None,
) -> Holder:
    """A made-up but well-formed holder; the same ``seed`` always gives the same person.

    Names come from short lists of common names, places from a handful of real
    prefecture/municipality pairs with their public codes, the street from generic town names
    and random 丁目/番/号 numbers (full-width, as on the card). The individual number is random
    with a valid check digit and never starts with 0. Without ``seed`` the holder is random.
    """
    stream = _holder_stream(seed)
    chosen_sex = sex if sex is not None else stream.choice((Sex.MALE, Sex.FEMALE))
    if not isinstance(chosen_sex, Sex):
        raise PkiError(f"sex must be a Sex member, not {chosen_sex!r}")
    if birth_date is None:
        low, high = _BIRTH_RANGE
        birth_date = date.fromordinal(stream.randint(low.toordinal(), high.toordinal()))
    prefecture, municipality, code = stream.choice(_MUNICIPALITIES)
    town = stream.choice(_TOWNS)
    chome, ban, go = stream.randint(1, 5), stream.randint(1, 30), stream.randint(1, 20)
    street = to_fullwidth_digits(f"{town}{chome}丁目{ban}番{go}号")
    family_name = stream.choice(_FAMILY_NAMES)
    given_name = stream.choice(_GIVEN_NAMES[chosen_sex])
    individual_number = synthetic_individual_number(stream)
    security_code = f"{stream.randbelow(10000):04d}"
    return Holder(
        family_name=family_name,
        given_name=given_name,
        birth_date=birth_date,
        sex=chosen_sex,
        prefecture=prefecture,
        municipality=municipality,
        street=street,
        municipality_code=code,
        individual_number=individual_number,
        security_code=security_code,
    )

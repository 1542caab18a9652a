"""The holder: the facts a My Number Card and its certificates carry about a person.

One :class:`Holder` feeds every place the same person appears: the text AP's 基本4情報 and
個人番号 (jpki-card.md 3.3), the surface AP's 照合番号B and birth-date key (3.4), and the signing
certificate's SubjectAltName (9.5). Each place encodes the facts differently (sex codes 1/2/9 vs
1/2/3, Gregorian vs Japanese-era dates), so the encodings live here next to the facts.

The facts sit below every layer (ARCHITECTURE): the card lays them out in its EFs, the
authority writes them into certificates, the service checks them, and none of those layers
owns them. Only synthetic people are ever made: see :func:`workbench.pki.synthetic_holder`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from typing import Any

from workbench.errors import PkiError

#: Separator between family and given name in 氏名 (jpki-card.md 3.3 DF 22, 9.5 OID .1).
IDEOGRAPHIC_SPACE = "\u3000"

#: Maximum length of the certificate's 住所 value (jpki-card.md 9.5, OID .5).
MAX_ADDRESS_CHARS = 200

_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def to_fullwidth_digits(text: str) -> str:
    """Replace ASCII digits by full-width ones, the form used for block numbers (3.3 DF 23)."""
    return text.translate(_FULLWIDTH_DIGITS)


class Sex(IntEnum):
    """性別 as ISO 5218, the code the text AP stores (jpki-card.md 3.3, DF 25).

    The signing certificate uses a different list (9.5, OID .3): 1 male, 2 female, 3 unknown;
    see :meth:`certificate_code`.
    """

    MALE = 1
    FEMALE = 2
    NOT_APPLICABLE = 9

    def text_ap_code(self) -> str:
        """One ASCII digit for text AP EF 0002 DF 25: "1", "2" or "9" (jpki-card.md 3.3)."""
        return str(int(self))

    def certificate_code(self) -> str:
        """The SAN sex value "1", "2" or "3" (jpki-card.md 9.5; 3 = unknown stands for 9)."""
        return {Sex.MALE: "1", Sex.FEMALE: "2", Sex.NOT_APPLICABLE: "3"}[self]

    @classmethod
    def from_certificate_code(cls, code: str) -> Sex:
        """Inverse of :meth:`certificate_code`; PkiError for anything but "1", "2", "3"."""
        mapping = {"1": cls.MALE, "2": cls.FEMALE, "3": cls.NOT_APPLICABLE}
        if code not in mapping:
            raise PkiError(f"certificate sex code must be '1', '2' or '3', got {code!r}")
        return mapping[code]

    @classmethod
    def from_text_ap_code(cls, code: str) -> Sex:
        """Inverse of :meth:`text_ap_code`; "0" (unknown, decoded by some readers) is refused."""
        try:
            return cls(int(code))
        except ValueError:
            raise PkiError(f"text AP sex code must be '1', '2' or '9', got {code!r}") from None


# --- 個人番号 (individual number) -------------------------------------------------------------


def individual_number_check_digit(first11: str) -> int:
    """The 12th digit of a 個人番号, from the first 11 (個人番号の検査用数字).

    P_n is the n-th digit counted from the right of the 11, Q_n = n + 1 for n ≤ 6 and n − 5
    for 7 ≤ n ≤ 11; r = Σ P_n·Q_n mod 11; the check digit is 0 when r ≤ 1, otherwise 11 − r.
    The text AP stores the 12 digits (jpki-card.md 3.3 EF 0001) and they are 照合番号A (3.3, 3.4),
    so a simulator must only ever create numbers that pass this check.
    """
    if not (isinstance(first11, str) and len(first11) == 11 and first11.isascii()
            and first11.isdigit()):
        raise PkiError(f"the check digit needs exactly 11 ASCII digits, got {first11!r}")
    total = 0
    for n, char in enumerate(reversed(first11), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(char) * weight
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_individual_number(s: str) -> bool:
    """True for 12 ASCII digits whose last digit is the check digit of the first 11."""
    if not (isinstance(s, str) and len(s) == 12 and s.isascii() and s.isdigit()):
        return False
    return individual_number_check_digit(s[:11]) == int(s[11])


def mask_individual_number(s: str) -> str:
    """All but the last four characters replaced by '*', for reprs and logs."""
    return "*" * max(0, len(s) - 4) + s[-4:]


# --- Japanese eras ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Era:
    """A Japanese era (元号) with its certificate digit (jpki-card.md 9.5, OID .4)."""

    code: int
    name: str
    start: date


#: Eras from 明治 on, newest last. 明治 is taken from 1868-01-25 (慶応4年1月1日, to which the
#: change of era was made retroactive); the later starts are the days of accession.
ERAS: tuple[Era, ...] = (
    Era(1, "明治", date(1868, 1, 25)),
    Era(2, "大正", date(1912, 7, 30)),
    Era(3, "昭和", date(1926, 12, 25)),
    Era(4, "平成", date(1989, 1, 8)),
    Era(5, "令和", date(2019, 5, 1)),
)


def japanese_era(d: date) -> tuple[Era, int]:
    """The era of day ``d`` and the year within it (1 = 元年).

    PkiError before 明治: the certificate's era digit 0 ("unknown") exists but no living holder
    needs it.
    """
    for era in reversed(ERAS):
        if d >= era.start:
            return era, d.year - era.start.year + 1
    raise PkiError(f"{d.isoformat()} is before the 明治 era; no era digit for it")


# --- the holder ------------------------------------------------------------------------------

_DIGITS_RE = re.compile(r"[0-9]+")
_PREFECTURE_SUFFIXES = ("都", "道", "府", "県")


def _require_digits(value: object, count: int, what: str) -> None:
    # The value itself is never echoed: it may be an individual number or a security code.
    if not (isinstance(value, str) and len(value) == count and _DIGITS_RE.fullmatch(value)):
        raise PkiError(f"{what} must be a str of exactly {count} ASCII digits")


def _require_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise PkiError(f"{what} must be a non-empty string")
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        raise PkiError(f"{what} {value!r} must not contain spaces or control characters "
                       "(U+3000 is the name separator)")


@dataclass(frozen=True, repr=False)
class Holder:
    """The person on a card: 基本4情報 plus the card-only numbers.

    Names are kanji; ``street`` writes block numbers in full-width digits as the card does
    (jpki-card.md 3.3 DF 23). ``municipality_code`` is the 5-digit 全国地方公共団体コード
    without its check digit (the surface AP stores it, 3.4 EF 0003 DF 34). ``individual_number``
    (12 digits, check digit verified) and ``security_code`` (the 4-digit セキュリティコード printed
    on the card, part of 照合番号B, 3.4) are secrets of the holder: :meth:`__repr__` masks them.
    """

    family_name: str
    given_name: str
    birth_date: date
    sex: Sex
    prefecture: str
    municipality: str
    street: str
    municipality_code: str
    individual_number: str
    security_code: str

    def __post_init__(self) -> None:
        _require_text(self.family_name, "family_name")
        _require_text(self.given_name, "given_name")
        if not isinstance(self.birth_date, date) or isinstance(self.birth_date, datetime):
            raise PkiError("birth_date must be a datetime.date (not a datetime)")
        japanese_era(self.birth_date)  # refuses dates before 明治
        if not isinstance(self.sex, Sex):
            raise PkiError(f"sex must be a Sex member, not {self.sex!r}")
        _require_text(self.prefecture, "prefecture")
        if not self.prefecture.endswith(_PREFECTURE_SUFFIXES):
            raise PkiError(f"prefecture {self.prefecture!r} must end with 都, 道, 府 or 県")
        _require_text(self.municipality, "municipality")
        _require_text(self.street, "street")
        if len(self.address) > MAX_ADDRESS_CHARS:
            raise PkiError(f"address has {len(self.address)} characters; the certificate allows "
                           f"at most {MAX_ADDRESS_CHARS} (jpki-card.md 9.5)")
        _require_digits(self.municipality_code, 5, "municipality_code")
        if not 1 <= int(self.municipality_code[:2]) <= 47:
            raise PkiError("municipality_code must start with a prefecture number 01..47")
        _require_digits(self.individual_number, 12, "individual_number")
        if not is_valid_individual_number(self.individual_number):
            raise PkiError("individual_number fails the 個人番号 check digit; build one with "
                           "individual_number_check_digit()")
        _require_digits(self.security_code, 4, "security_code")

    # -- encodings ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """氏名: family name, U+3000, given name (jpki-card.md 3.3 DF 22, 9.5 OID .1)."""
        return f"{self.family_name}{IDEOGRAPHIC_SPACE}{self.given_name}"

    @property
    def address(self) -> str:
        """住所 from the prefecture, no postal code (jpki-card.md 3.3 DF 23, 9.5 OID .5)."""
        return f"{self.prefecture}{self.municipality}{self.street}"

    @property
    def name_flags(self) -> str:
        """氏名の代替文字使用位置情報: one "0" per character of :attr:`name` (9.5 OID .2).

        Synthetic names use only common kanji, so no substitute characters are ever flagged.
        """
        return "0" * len(self.name)

    @property
    def address_flags(self) -> str:
        """住所の代替文字使用位置情報: one "0" per character of :attr:`address` (9.5 OID .6)."""
        return "0" * len(self.address)

    def era_birth_date(self) -> str:
        """Certificate birth date ``EYYYYMMDD``: era digit + Gregorian date (9.5 OID .4)."""
        era, _ = japanese_era(self.birth_date)
        return f"{era.code}{self.birth_date:%Y%m%d}"

    def era_yymmdd(self) -> str:
        """Japanese-era YYMMDD, e.g. 1980-02-17 → 昭和55 → "550217" (照合番号B, 3.4)."""
        _, year = japanese_era(self.birth_date)
        return f"{year:02d}{self.birth_date:%m%d}"

    def birth_yyyymmdd(self) -> str:
        """Gregorian ``YYYYMMDD``, the text AP form (jpki-card.md 3.3 DF 24)."""
        return f"{self.birth_date:%Y%m%d}"

    def __repr__(self) -> str:
        return (
            f"Holder(name={self.name!r}, birth_date={self.birth_date.isoformat()}, "
            f"sex={self.sex.name}, address={self.address!r}, "
            f"municipality_code={self.municipality_code!r}, "
            f"individual_number={mask_individual_number(self.individual_number)!r}, "
            "security_code='****')"
        )


def holder_to_json(holder: Holder) -> dict[str, Any]:
    """The holder as a JSON object (card images and traces keep it this way)."""
    d = dataclasses.asdict(holder)
    d["birth_date"] = holder.birth_date.isoformat()
    d["sex"] = int(holder.sex)
    return d


def holder_from_json(d: dict[str, Any]) -> Holder:
    """Inverse of :func:`holder_to_json`; the holder's checks run again."""
    d = dict(d)
    d["birth_date"] = date.fromisoformat(d["birth_date"])
    d["sex"] = Sex(d["sex"])
    return Holder(**d)

"""PINs and passwords of the card: format rules, retry counters, masking.

jpki-card.md sections 4.3 (VERIFY), 4.4 (CHANGE REFERENCE DATA) and 6 (rules). The card
compares bytes only (MODEL, 4.3): a value of the wrong format simply does not match and costs
a try. Format rules are enforced where the card sets a value: at issuance and on CHANGE.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from workbench.errors import PinFormatError

DIGITS = frozenset(b"0123456789")
UPPER_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class PinPolicy:
    """The rules of one credential: who it is, its format and its retry limit."""

    name: str  # short machine name, e.g. "auth"
    label: str  # human name with the official Japanese term
    min_length: int
    max_length: int
    charset: frozenset[int]
    max_tries: int
    letter_and_digit: bool = False  # sign password: at least one letter and one digit (6)
    changeable: bool = True  # 照合番号 keys are facts of the card, not user secrets
    always_blocked: bool = False  # text AP 0012: blocked on every card examined (3.3)

    def check(self, value: bytes) -> None:
        """Raise :class:`PinFormatError` (never echoing the value) if ``value`` breaks the rules."""
        n = len(value)
        if not self.min_length <= n <= self.max_length:
            span = (
                f"exactly {self.min_length}"
                if self.min_length == self.max_length
                else f"{self.min_length} to {self.max_length}"
            )
            raise PinFormatError(f"the {self.label} must be {span} characters long (got {n})")
        if not set(value) <= self.charset:
            allowed = "digits 0-9" if self.charset == DIGITS else "uppercase letters A-Z and digits"
            raise PinFormatError(f"the {self.label} may contain only {allowed}")
        if self.letter_and_digit and (set(value) <= DIGITS or not set(value) & DIGITS):
            raise PinFormatError(f"the {self.label} needs at least one letter and one digit")


# jpki-card.md 6: the rules of each credential. Retry limits for 照合番号 are not public
# (MODEL: 10, configurable at personalisation, ``collation_tries``).
AUTH_PIN = PinPolicy("auth", "auth PIN (利用者証明用暗証番号)", 4, 4, DIGITS, 3)
SIGN_PASSWORD = PinPolicy(
    "sign", "sign password (署名用パスワード)", 6, 16, UPPER_ALNUM, 5, letter_and_digit=True
)
TEXT_PIN = PinPolicy("text", "text AP PIN (券面事項入力補助用暗証番号)", 4, 4, DIGITS, 3)
JUKI_PIN = PinPolicy("juki", "住基 PIN (住民基本台帳用暗証番号)", 4, 4, DIGITS, 3)
#: 共通AP's own key reference 001C (jpki-card.md 3.5: user interfaces show one PIN for both).
COMMON_PIN = PinPolicy("common", "共通AP PIN (個人番号カード用暗証番号)", 4, 4, DIGITS, 3)


def collation_policy(name: str, label: str, length_min: int, length_max: int, tries: int) -> PinPolicy:
    """A 照合番号 / birth-date key: digits only, set by the card's facts, not changeable."""
    return PinPolicy(name, label, length_min, length_max, DIGITS, tries, changeable=False)


def blocked_policy(name: str, label: str) -> PinPolicy:
    return PinPolicy(name, label, 1, 16, DIGITS, 0, changeable=False, always_blocked=True)


def normalize_password(value: str) -> bytes:
    """Clients uppercase the sign password before sending it (jpki-card.md 4.3)."""
    return value.upper().encode("ascii", "replace")


def pin_bytes(policy: PinPolicy, value: str | bytes) -> bytes:
    """What goes into VERIFY / CHANGE for ``policy``: raw ASCII, the sign password uppercased
    first as every client does (jpki-card.md 4.3). Characters outside ASCII become ``?`` and
    simply fail the format check or the compare; they are never echoed."""
    if isinstance(value, bytes):
        return value
    if policy is SIGN_PASSWORD or policy.letter_and_digit:
        return normalize_password(value)
    return value.encode("ascii", "replace")


def pin_digest(salt: bytes, value: bytes) -> bytes:
    """What the card image stores instead of the PIN: HMAC-SHA256 under a per-card salt."""
    return hmac.new(salt, value, hashlib.sha256).digest()


def pin_matches(salt: bytes, digest: bytes, value: bytes) -> bool:
    return hmac.compare_digest(pin_digest(salt, value), digest)

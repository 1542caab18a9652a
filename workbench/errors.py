"""Typed errors of the workbench.

Every error a user can cause derives from :class:`WorkbenchError`; its message is one line
that says what went wrong and what to do. Messages never carry a PIN or password.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of all errors the workbench raises on purpose."""


class APDUError(WorkbenchError, ValueError):
    """A byte string or field values that cannot form a valid ISO 7816-4 APDU."""


class TLVError(WorkbenchError, ValueError):
    """Malformed BER-TLV data."""


class PinFormatError(WorkbenchError, ValueError):
    """A PIN or password that breaks the format rules (jpki-card.md section 6)."""


class CardImageError(WorkbenchError):
    """A card image file that is missing, unreadable, corrupt or of an unknown version."""


class PkiError(WorkbenchError):
    """The simulated authority cannot do what was asked (no CA for the date, bad holder, ...)."""


class TransportError(WorkbenchError):
    """The transport could not deliver an APDU (not connected, card removed, ...)."""


class CardError(WorkbenchError):
    """The card answered a client command with an error status word.

    ``sw`` is the two-byte status word as an int (e.g. ``0x6982``).
    """

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(message)
        self.sw = sw


class SecurityStatusError(CardError):
    """SW 6982: the object needs a PIN or password that has not been verified."""


class PinBlockedError(CardError):
    """SW 6984 or 63C0: the PIN or password is blocked (no tries left)."""


class WrongPinError(CardError):
    """SW 63Cx after a VERIFY: the value was wrong; ``tries_left`` says how many remain."""

    def __init__(self, message: str, sw: int, tries_left: int) -> None:
        super().__init__(message, sw)
        self.tries_left = tries_left


class FileNotFoundOnCardError(CardError):
    """SW 6A82: application or file not on this card (or this token profile)."""


class LastTryError(WorkbenchError):
    """A VERIFY on a real card was refused because one try or fewer remains.

    The client checks the retry counter first (empty VERIFY, jpki-card.md 4.3) and stops here
    unless the caller passes ``force=True``: one more wrong value would block the credential,
    and only the municipal office or the JPKI PIN reset procedure can unblock it
    (jpki-card.md 6). ``pin`` names the credential (``"auth"``, ``"sign"``, ``"text"``), never
    its value.
    """

    def __init__(self, message: str, pin: str, tries_left: int) -> None:
        super().__init__(message)
        self.pin = pin
        self.tries_left = tries_left


class TraceFormatError(WorkbenchError):
    """A trace file that is not a JSON Lines trace of a schema version this workbench reads."""


class TraceDivergenceError(TransportError):
    """A replayed client sent something other than the recorded command.

    ``line`` is the 1-based line of the expected record in the trace file, ``seq`` its
    sequence number, ``expected`` and ``got`` the masked hex of both commands and ``offset``
    the first byte where they differ (``None`` when the trace expected no command at all).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int,
        seq: int | None,
        expected: str,
        got: str,
        offset: int | None,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.seq = seq
        self.expected = expected
        self.got = got
        self.offset = offset

"""ATR profiles of the simulated card and phone token (jpki-card.md section 7)."""

from __future__ import annotations

from functools import reduce

from workbench.card.constants import ATR_CONTACT, ATR_CONTACTLESS
from workbench.errors import WorkbenchError


def contactless_atr(historical: bytes) -> bytes:
    """PC/SC Part 3 ATR for an ISO 14443-4 card: ``3B 8n 80 01 <historical> TCK``.

    TCK is the XOR of every byte from T0 to the last historical byte (ISO 7816-3 8.2.5).
    """
    if not 0 < len(historical) <= 15:
        raise WorkbenchError("historical bytes must be 1 to 15 bytes long")
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    return b"\x3b" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


#: MODEL: the phone token's ATR is not public (jpki-card.md 7, 8). A contactless Part 3 ATR
#: whose historical bytes read "WBGPSE" marks it as synthetic and can never be confused with the
#: plastic card's ATRs.
ATR_GPSE = contactless_atr(b"WBGPSE")

#: Named ATR profiles; ``card new --atr NAME`` and ``VirtualCard.create(atr=...)`` take these.
ATR_PROFILES: dict[str, bytes] = {
    "contact": ATR_CONTACT,
    "contactless": ATR_CONTACTLESS,
    "juki-listed": bytes.fromhex("3BE000FF8131FE4514"),
    "gpse": ATR_GPSE,
}

DEFAULT_ATR = {"icc": "contact", "gpse": "gpse"}


def resolve_atr(profile: str, atr: str | bytes | None) -> bytes:
    """Return the ATR bytes for a token profile and an optional ATR profile name or raw bytes."""
    if atr is None:
        return ATR_PROFILES[DEFAULT_ATR[profile]]
    if isinstance(atr, bytes):
        if not 2 <= len(atr) <= 33 or atr[0] not in (0x3B, 0x3F):
            raise WorkbenchError("an ATR is 2 to 33 bytes starting with 3B or 3F")
        return atr
    try:
        value = ATR_PROFILES[atr]
    except KeyError:
        names = ", ".join(sorted(ATR_PROFILES))
        raise WorkbenchError(f"unknown ATR profile {atr!r}; choose one of {names}") from None
    if profile == "gpse" and value != ATR_GPSE:
        raise WorkbenchError("a phone token never carries a plastic-card ATR (jpki-card.md 7)")
    return value


def contact_atr_data(atr: bytes) -> bytes:
    """What GET DATA ``5F51`` answers for a card presenting ``atr``: its contact ATR without
    the initial ``3B`` (jpki-card.md 3.6).

    A card presenting a contact ATR reports that one (the juki-listed profile its own, 7, 12
    item 7). MODEL: a card presenting a contactless PC/SC ATR reports the default contact ATR
    of the same chip (the plastic card has both interfaces and ``5F51`` is the contact one).
    """
    if atr == ATR_CONTACTLESS or (len(atr) > 3 and atr[1] & 0xF0 == 0x80 and atr[2:4] == b"\x80\x01"):
        atr = ATR_CONTACT
    return atr[1:]

"""What every transport is, and what a transport may tell about the card behind it.

The card side and the host side never share objects: they meet only as bytes through a
:class:`Transport` (ARCHITECTURE, rules of the house). Some questions still need an answer
without asking the card: may a wrong VERIFY lock a real credential (the client's last-try
guard, jpki-card.md 4.3, 6)? Which token profile does a recorded trace come from? A transport
answers them by implementing :class:`TransportInfo`; one that does not is treated as a real
card of unknown kind, the safe assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["TokenFacts", "Transport", "TransportInfo", "describes", "needs_pin_guard"]


@runtime_checkable
class Transport(Protocol):
    """connect() → ATR, transmit(command bytes) → response bytes, disconnect()."""

    def connect(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def disconnect(self) -> None: ...


@dataclass(frozen=True)
class TokenFacts:
    """What is known of the token without asking it: profile (``icc``/``gpse``) and the EF
    0006 label (jpki-card.md 3.2)."""

    profile: str | None = None
    label: str | None = None


@runtime_checkable
class TransportInfo(Protocol):
    """Optional facts a transport declares about the card behind it.

    ``is_virtual``: True when no real credential can be harmed (the in-process card, a
    replay). ``pin_guard``: an explicit answer to "should a client ask the retry counter
    before every VERIFY?", or None to decide by ``is_virtual`` (a replay of a real-card trace
    says True, so the replayed client sends the same queries the recorded one did).
    ``token``: the token's facts when the transport knows them.
    """

    @property
    def is_virtual(self) -> bool: ...

    @property
    def pin_guard(self) -> bool | None: ...

    @property
    def token(self) -> TokenFacts | None: ...


def describes(transport: object) -> TransportInfo | None:
    """The transport's declared facts, or None when it declares none."""
    return transport if isinstance(transport, TransportInfo) else None


def needs_pin_guard(transport: object) -> bool:
    """True when a wrong VERIFY on ``transport`` could lock a real credential.

    A transport that declares nothing is treated as a real card.
    """
    info = describes(transport)
    if info is None:
        return True
    if info.pin_guard is not None:
        return bool(info.pin_guard)
    return not info.is_virtual

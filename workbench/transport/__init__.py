"""How APDUs travel between a host client and a card: bytes only.

The card side and the host side never share objects: they meet only as bytes through a
:class:`Transport` (ARCHITECTURE, rules of the house). The same client code talks to the
in-process virtual card (:class:`VirtualCardTransport`), to PC/SC readers
(:mod:`workbench.transport.pcsc`), to recorded traces (:class:`ReplayTransport`, recorded by
:class:`RecordingTransport`; format in :mod:`workbench.transport.trace`).

Layering: ``transport`` imports ``apdu``, ``errors`` and (for the in-process card and the
vpcd server) ``card``; nothing from ``client``, ``pki``, ``analysis`` or ``cli``. Decoding a
trace and turning it into DataFrames happens above, in :mod:`workbench.analysis`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.errors import TransportError
from workbench.transport.base import (
    TokenFacts,
    Transport,
    TransportInfo,
    describes,
    needs_pin_guard,
)
from workbench.transport.recorder import Exchange, RecordingTransport
from workbench.transport.replay import ReplayTransport
from workbench.transport.trace import (
    TRACE_SCHEMA_VERSION,
    TraceHeader,
    TraceRecord,
    load_trace,
    write_trace,
)

if TYPE_CHECKING:
    from workbench.card import Token

__all__ = [
    "TRACE_SCHEMA_VERSION",
    "Exchange",
    "RecordingTransport",
    "ReplayTransport",
    "TokenFacts",
    "TraceHeader",
    "TraceRecord",
    "Transport",
    "TransportInfo",
    "VirtualCardTransport",
    "describes",
    "load_trace",
    "needs_pin_guard",
    "write_trace",
]


class VirtualCardTransport:
    """A simulated token in this process: the virtual card or a phone's secure element
    (:class:`workbench.card.Token`). ``connect`` powers it (cold reset), ``disconnect`` powers
    it off, which clears every verified PIN as taking a card out of the field does."""

    is_virtual = True
    pin_guard = None

    def __init__(self, card: Token) -> None:
        self.card = card
        self._connected = False

    @property
    def token(self) -> TokenFacts:
        return TokenFacts(self.card.profile, self.card.label)

    def connect(self) -> bytes:
        self._connected = True
        return self.card.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        if not self._connected:
            raise TransportError("transport is not connected; call connect() first")
        return self.card.transmit(apdu)

    def disconnect(self) -> None:
        if self._connected:
            self.card.power_off()
        self._connected = False

    def __enter__(self) -> VirtualCardTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        return f"VirtualCardTransport({self.card!r})"

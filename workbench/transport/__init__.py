"""How APDUs travel between a host client and a card.

The card side and the host side never share objects: they meet only as bytes through a
:class:`Transport` (ARCHITECTURE, rules of the house). The same client code talks to the
in-process virtual card here, to recorded traces (:class:`ReplayTransport`, recorded by
:class:`TracingTransport`; schema in :mod:`workbench.transport.trace`), and later to PC/SC
readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workbench.errors import TransportError

if TYPE_CHECKING:
    from workbench.card import VirtualCard


@runtime_checkable
class Transport(Protocol):
    """connect() → ATR, transmit(command bytes) → response bytes, disconnect()."""

    def connect(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def disconnect(self) -> None: ...


class VirtualCardTransport:
    """The virtual card in this process. ``connect`` powers it (cold reset), ``disconnect``
    powers it off, which clears every verified PIN as taking a card out of the field does."""

    is_virtual = True

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self._connected = False

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


# Imported last: the trace module refers back to the protocol above for its type hints.
from workbench.transport.trace import (  # noqa: E402
    TRACE_SCHEMA_VERSION,
    Exchange,
    ReplayTransport,
    TraceHeader,
    TraceRecord,
    TracingTransport,
    decode_trace,
    load_trace,
    write_trace,
)

__all__ = [
    "TRACE_SCHEMA_VERSION",
    "Exchange",
    "ReplayTransport",
    "TraceHeader",
    "TraceRecord",
    "TracingTransport",
    "Transport",
    "VirtualCardTransport",
    "decode_trace",
    "load_trace",
    "write_trace",
]

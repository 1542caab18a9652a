"""How APDUs travel between a host client and a card.

The card side and the host side never share objects: they meet only as bytes through a
:class:`Transport` (ARCHITECTURE, rules of the house). The same client code talks to the
in-process virtual card here, and later to PC/SC readers and recorded traces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workbench.apdu import CommandAPDU, ResponseAPDU
from workbench.errors import APDUError, TransportError

if TYPE_CHECKING:
    import pandas as pd

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


@dataclass(frozen=True)
class Exchange:
    """One command/response pair as a tracing transport saw it. ``command`` is the masked
    hex of the command (VERIFY / CHANGE data replaced by ``*``), never the raw bytes."""

    seq: int
    command: str
    description: str
    response_length: int
    sw: int
    status: str
    wall_ms: float


class TracingTransport:
    """Wraps a transport and keeps a masked log of every exchange (for tables and plots)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    @property
    def is_virtual(self) -> bool:
        return bool(getattr(self.inner, "is_virtual", False))

    def connect(self) -> bytes:
        return self.inner.connect()

    def disconnect(self) -> None:
        self.inner.disconnect()

    def transmit(self, apdu: bytes) -> bytes:
        start = time.perf_counter()
        response = self.inner.transmit(apdu)
        elapsed = (time.perf_counter() - start) * 1000
        try:
            cmd = CommandAPDU.from_bytes(apdu)
            masked, description = cmd.masked_hex(), str(cmd)
        except APDUError:
            masked, description = apdu[:4].hex().upper() + "…", "malformed command"
        try:
            rsp = ResponseAPDU.from_bytes(response)
            sw, status, length = rsp.sw, str(rsp.status), len(rsp.data)
        except APDUError:
            sw, status, length = -1, "malformed response", len(response)
        self.exchanges.append(
            Exchange(len(self.exchanges) + 1, masked, description, length, sw, status, elapsed)
        )
        return response

    def clear(self) -> None:
        self.exchanges.clear()

    def to_dataframe(self, *, wall_clock: bool = False) -> pd.DataFrame:
        """The log as a DataFrame; wall-clock times only when asked (they vary run to run)."""
        import pandas as pd

        rows = [
            {
                "seq": e.seq,
                "command": e.description,
                "apdu": e.command,
                "resp_bytes": e.response_length,
                "sw": f"{e.sw:04X}" if e.sw >= 0 else "----",
                "status": e.status.split(" ", 1)[1] if " " in e.status else e.status,
                **({"wall_ms": round(e.wall_ms, 3)} if wall_clock else {}),
            }
            for e in self.exchanges
        ]
        return pd.DataFrame(rows).set_index("seq") if rows else pd.DataFrame()


__all__ = ["Exchange", "TracingTransport", "Transport", "VirtualCardTransport"]

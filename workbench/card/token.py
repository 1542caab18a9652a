"""What every simulated token is, whatever holds it: the plastic card (:class:`VirtualCard`)
or the phone's secure element hosting the JPKI applet (:class:`workbench.se.SecureElement`).

Transports, servers and inspection code take a :class:`Token`, so a phone token goes wherever
a card goes: in process, through pcscd (``card serve``), in traces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography import x509

__all__ = ["Token"]


@runtime_checkable
class Token(Protocol):
    """Power, APDUs, and the out-of-band facts ``card show`` prints (never a secret)."""

    profile: str
    atr: bytes

    @property
    def label(self) -> str: ...

    @property
    def path(self) -> Path | None: ...

    @property
    def meta(self) -> dict[str, Any]: ...

    def power_on(self) -> bytes: ...

    def reset(self) -> bytes: ...

    def power_off(self) -> None: ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def certificates(self) -> dict[str, x509.Certificate]: ...

    def pin_status(self) -> dict[str, int]: ...

    def close(self) -> None: ...

"""What ``card show`` and ``card info`` report: a card image, or any card in a reader.

Domain functions the command line calls (it only prints what they return). Nothing here
sends a PIN or spends a try: certificates are read where they are free, tries are read with
the empty VERIFY (jpki-card.md 4.3, 10 item 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.client import JpkiClient, TextApClient
from workbench.errors import (
    CardError,
    FileNotFoundOnCardError,
    PinBlockedError,
    SecurityStatusError,
    WorkbenchError,
)
from workbench.holder import mask_individual_number
from workbench.pki import describe_certificate
from workbench.pki.describe import revocation_pointers
from workbench.se import load_token

__all__ = ["CERTIFICATE_ORDER", "describe_card", "inspect_card"]

#: the order in which `card info` reads and prints certificates
CERTIFICATE_ORDER = ("auth", "auth_ca", "sign", "sign_ca")


def describe_card(path: str | Path) -> dict[str, Any]:
    """Everything ``card show`` prints about a card image: holder facts (the individual number
    masked), certificates, tries left. Never a PIN or a key."""
    with load_token(path) as card:
        meta = card.meta
        holder = card.holder
        certs = {name: describe_certificate(cert) | revocation_pointers(cert)
                 for name, cert in card.certificates().items()}
        return {
            "path": str(path),
            "profile": card.profile,
            "token_label": card.label,
            "atr": card.atr.hex().upper(),
            "serial_number": meta["serial_number"],
            "issued_at": meta["issued_at"],
            "card_expiry": meta["card_expiry"],
            "holder": {
                "name": holder.name,
                "address": holder.address,
                "birth_date": holder.birth_date.isoformat(),
                "sex": holder.sex.name.lower(),
                "individual_number": mask_individual_number(holder.individual_number),
            },
            "certificates": certs,
            "tries_left": card.pin_status(),
        }


def inspect_card(reader: str | int | None = None, *, wait: float = 5.0) -> dict[str, Any]:
    """Everything ``card info`` shows of the card in a PC/SC reader, as a dict; no PIN is sent
    and no try is spent."""
    from workbench.transport.pcsc import PcscTransport

    if wait < 0:
        raise WorkbenchError("--wait must be 0 or more seconds")
    transport = PcscTransport(reader, wait_timeout=wait)
    atr = transport.connect()
    protocol = transport.active_protocol
    try:
        jpki = JpkiClient(transport)
        try:
            token = jpki.token_type()
        except FileNotFoundOnCardError:
            raise WorkbenchError(
                f"the card in {transport.reader_name!r} has no JPKI application (SELECT answered "
                "6A82)") from None
        certificates: dict[str, Any] = {}
        needs_pin: dict[str, str] = {}
        for name in CERTIFICATE_ORDER:
            try:
                cert = jpki.read_certificate(name)
                certificates[name] = describe_certificate(cert) | revocation_pointers(cert)
            except SecurityStatusError:
                needs_pin[name] = "sign password" if name == "sign" else "auth PIN"
            except FileNotFoundOnCardError:
                continue
            except (CardError, ValueError) as exc:
                needs_pin[name] = f"unreadable ({str(exc).splitlines()[0]})"
        tries: dict[str, int | None] = {}
        for name in ("auth", "sign"):
            tries[name] = _tries(lambda n=name: jpki.tries_left(n))
        try:
            tries["text"] = _tries(TextApClient(transport).tries_left)
        except FileNotFoundOnCardError:
            pass  # the phone tokens carry no text AP (jpki-card.md 8)
    finally:
        transport.disconnect()
    return {
        "reader": transport.reader_name,
        "atr": atr.hex().upper(),
        "protocol": protocol,
        "token_type": token.value,
        "token": token.description,
        "certificates": certificates,
        "needs_pin": needs_pin,
        "tries_left": tries,
    }


def _tries(query: Any) -> int:
    try:
        return int(query())
    except PinBlockedError:
        return 0

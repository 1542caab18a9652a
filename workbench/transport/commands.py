"""``card serve`` and ``card info``: the virtual card on the real PC/SC stack, and any card in
any PC/SC reader inspected without a PIN.

``jpki-workbench card serve CARD [CARD2] [--host 127.0.0.1] [--port 35963]`` puts CARD in
vpcd's first slot (PORT) and CARD2, if given, in its second slot (PORT + 1): the Debian vpcd
opens two slots on consecutive ports (see :mod:`workbench.transport.vpcd`), so a plastic card
and a phone token can be in "Virtual PCD 00 00" and "Virtual PCD 00 01" at the same time. It
runs until SIGINT or SIGTERM, then closes the card images.

``jpki-workbench card info [--reader NAME|INDEX] [--wait SECONDS] [--json]`` reads, without
any PIN and without spending a try: the token type from EF 0006 (jpki-card.md 3.2), every
certificate the card hands out without a PIN (3.1, 8), and the tries left of each PIN via the
empty VERIFY (4.3, 10 item 3).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.errors import (
    CardError,
    FileNotFoundOnCardError,
    PinBlockedError,
    SecurityStatusError,
    WorkbenchError,
)

#: the order in which `card info` reads and prints certificates
_CERTIFICATE_ORDER = ("auth", "auth_ca", "sign", "sign_ca")


class CommandError(WorkbenchError):
    """A bad argument to ``card serve`` / ``card info`` (one line, exit status 2)."""


def register(top: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add ``card serve`` and ``card info`` to the ``card`` group (see workbench/cli.py)."""
    card = groups["card"]

    serve = card.add_parser(
        "serve",
        help="serve card images to pcscd through vpcd (one or two cards, vpcd slots 0 and 1)",
        description="Connect to vpcd (the virtual reader loaded by pcscd) and serve the card image(s) "
        "until SIGINT/SIGTERM. The first card goes to PORT (vpcd slot 0), a second one to PORT+1 (slot 1).",
    )
    serve.add_argument("paths", type=Path, nargs="+", metavar="CARD", help="card image(s): one or two")
    serve.add_argument("--host", default="127.0.0.1", help="where vpcd listens (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="vpcd port of slot 0 (default 35963); slot 1 is PORT+1")
    serve.add_argument("--quiet", action="store_true", help="do not log insertions and removals")
    serve.set_defaults(func=_card_serve)

    info = card.add_parser(
        "info",
        help="inspect the card in a PC/SC reader (real or virtual) without a PIN",
        description="Token type, certificates readable without a PIN, and the tries left of each PIN. "
        "Never sends a PIN; the tries are read with the empty VERIFY, which spends nothing.",
    )
    info.add_argument(
        "--reader",
        default=None,
        help="reader number (0 = first) or a part of its name (default: the first reader with a card)",
    )
    info.add_argument("--wait", type=float, default=5.0, help="seconds to wait for a card (default 5)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_card_info)


# --- card serve -----------------------------------------------------------------------------


def _card_serve(args: argparse.Namespace) -> int:
    from workbench.transport.vpcd import VPCD_PORT, VPCD_SLOTS, VpcdServer

    paths: list[Path] = args.paths
    if len(paths) > VPCD_SLOTS:
        raise CommandError(f"vpcd has {VPCD_SLOTS} slots; give at most {VPCD_SLOTS} card images (got {len(paths)})")
    if len(set(p.resolve() for p in paths)) != len(paths):
        raise CommandError("the same card image cannot sit in two slots at once")
    port = VPCD_PORT if args.port is None else args.port
    if not 0 < port <= 0xFFFF - (len(paths) - 1):
        raise CommandError(f"--port must be 1..{0xFFFF - (len(paths) - 1)}, got {port}")
    if not args.quiet:
        _log_to_stderr()

    servers: list[VpcdServer] = []
    try:
        for slot, path in enumerate(paths):
            servers.append(VpcdServer(path, host=args.host, port=port + slot))
    except BaseException:
        for server in servers:
            server.stop()
        raise

    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for slot, (path, server) in enumerate(zip(paths, servers, strict=True)):
            card = server.card
            label = getattr(card, "label", "?")
            print(f"serving {path} ({label}) to vpcd at {args.host}:{server.port} (slot {slot})", flush=True)
            server.start()
        while not done.wait(0.5):
            if not any(server.running for server in servers):
                break
    finally:
        for server in servers:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped; card image(s) closed", flush=True)
    return 0


def _log_to_stderr() -> None:
    logger = logging.getLogger("workbench.transport.vpcd")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# --- card info ------------------------------------------------------------------------------


def _reader_arg(text: str | None) -> str | int | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise CommandError("--reader is empty; give a reader number or part of its name")
    return int(text) if text.isdigit() else text


def inspect_card(reader: str | int | None = None, *, wait: float = 5.0) -> dict[str, Any]:
    """Everything ``card info`` shows, as a dict; no PIN is sent and no try is spent."""
    from workbench.client import JpkiClient, TextApClient
    from workbench.pki import describe_certificate
    from workbench.transport.pcsc import PcscTransport

    if wait < 0:
        raise CommandError("--wait must be 0 or more seconds")
    transport = PcscTransport(reader, wait_timeout=wait)
    atr = transport.connect()
    protocol = transport.active_protocol
    try:
        jpki = JpkiClient(transport)
        try:
            token = jpki.token_type()
        except FileNotFoundOnCardError:
            raise CommandError(
                f"the card in {transport.reader_name!r} has no JPKI application (SELECT answered 6A82)"
            ) from None
        certificates: dict[str, Any] = {}
        needs_pin: dict[str, str] = {}
        for name in _CERTIFICATE_ORDER:
            try:
                certificates[name] = describe_certificate(jpki.read_certificate(name))
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


def _card_info(args: argparse.Namespace) -> int:
    from workbench.cli import print_certificates

    info = inspect_card(_reader_arg(args.reader), wait=args.wait)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"reader       {info['reader']}")
    print(f"ATR          {info['atr']}  ({info['protocol']})")
    print(f"token        {info['token_type']}: {info['token']}")
    print("certificates (read without a PIN)")
    print_certificates(info["certificates"])
    for name, why in info["needs_pin"].items():
        print(f"  [{name}]  not shown: needs the {why}" if not why.startswith("unreadable") else f"  [{name}]  {why}")
    print("tries left")
    for name, left in info["tries_left"].items():
        print(f"  {name:<6} {left}")
    return 0


__all__ = ["CommandError", "inspect_card", "register"]

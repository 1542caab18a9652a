"""``jpki-workbench card …``: issue, inspect, exercise and serve virtual cards.

``card new`` issues a card image (:func:`workbench.lifecycle.create_card`), ``card show``
prints it (:func:`workbench.analysis.describe_card`), ``card apdu`` sends raw APDUs to it in
one power session, ``card serve`` puts images on the real PC/SC stack through vsmartcard's
vpcd (:class:`workbench.transport.vpcd.VpcdServer`), ``card info`` inspects any card in any
reader without a PIN (:func:`workbench.analysis.inspect_card`).

Every command that takes an image opens it with :func:`workbench.se.load_token`: a plastic
card's image or a phone token's SE image (``card new --profile gpse``), and anything else ends
with the loader's one-line error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    CliError,
    parse_hex,
    parse_time,
    print_certificates,
    write_atomically,
)

__all__ = ["add_commands"]


def add_commands(group: argparse.ArgumentParser) -> None:
    """The ``card`` group's commands."""
    sub = group.add_subparsers(dest="command", required=True, metavar="COMMAND",
                               parser_class=type(group))

    new = sub.add_parser("new", help="issue a virtual card or phone token for a synthetic holder")
    new.add_argument("path", type=Path, help="card image file to create")
    new.add_argument("--profile", default="icc",
                     help="icc (plastic card, default) or gpse (Android token)")
    new.add_argument("--auth-pin", default=None, help="4-digit auth PIN (default 1234)")
    new.add_argument("--sign-password", default=None,
                     help="6-16 chars A-Z/0-9 with a letter and a digit (default ABC123)")
    new.add_argument("--text-pin", default=None, help="4-digit text AP PIN (default: the auth PIN)")
    new.add_argument("--seed", type=int, default=None,
                     help="make holder, keys and serials reproducible")
    new.add_argument("--atr", default=None,
                     help="ATR profile: contact, contactless, juki-listed (icc) / gpse")
    new.add_argument("--issued-at", default=None,
                     help="issue time, ISO 8601 (default: now); with --seed gives identical cards")
    new.add_argument("--force", action="store_true", help="replace an existing image")
    new.add_argument("--authority", type=Path, default=None, metavar="PATH",
                     help="issue with the authority stored at PATH (created on first use) and "
                          "register the certificates there")
    new.add_argument("--clock", type=Path, default=None, metavar="FILE",
                     help="with --authority: take 'now' from FILE (ISO 8601), as `pki --clock`")
    new.set_defaults(func=_new)

    export = sub.add_parser(
        "export", help="write one of the card's certificates (DER or PEM), read as a reader does",
        description="Read a certificate from the card image through the card's own access "
                    "rules: the sign certificate needs the sign password (and, on a phone token, "
                    "the auth certificate the auth PIN). The secret is read without echo from "
                    "the terminal, or from the environment variable named by --pin-env; never "
                    "from the command line.")
    export.add_argument("path", type=Path, help="card image")
    export.add_argument("--cert", required=True, choices=("auth", "sign", "auth_ca", "sign_ca"),
                        help="which certificate")
    export.add_argument("--pem", action="store_true", help="PEM instead of DER")
    export.add_argument("--out", type=Path, default=None,
                        help="file to write (atomically); default standard output")
    export.add_argument("--pin-env", default=None, metavar="VAR",
                        help="environment variable holding the PIN or password, if one is needed")
    export.set_defaults(func=_export)

    show = sub.add_parser("show", help="print what is on a card (never a secret)")
    show.add_argument("path", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    apdu = sub.add_parser("apdu", help="send raw APDUs (hex) in one power session and decode "
                                       "the answers")
    apdu.add_argument("path", type=Path)
    apdu.add_argument("hex", nargs="+",
                      help="one APDU per argument, e.g. 00A4040C0AD392F000260100000001")
    apdu.set_defaults(func=_apdu)

    serve = sub.add_parser(
        "serve",
        help="serve card images to pcscd through vpcd (one or two cards, vpcd slots 0 and 1)",
        description="Connect to vpcd (the virtual reader loaded by pcscd) and serve the card "
                    "image(s) until SIGINT/SIGTERM. The first card goes to PORT (vpcd slot 0), a "
                    "second one to PORT+1 (slot 1).",
    )
    serve.add_argument("paths", type=Path, nargs="+", metavar="CARD",
                       help="card image(s): one or two, plastic card or phone token (SE image)")
    serve.add_argument("--host", default="127.0.0.1", help="where vpcd listens (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None,
                       help="vpcd port of slot 0 (default 35963); slot 1 is PORT+1")
    serve.add_argument("--quiet", action="store_true", help="do not log insertions and removals")
    serve.set_defaults(func=_serve)

    info = sub.add_parser(
        "info",
        help="inspect the card in a PC/SC reader (real or virtual) without a PIN",
        description="Token type, certificates readable without a PIN, and the tries left of "
                    "each PIN. Never sends a PIN; the tries are read with the empty VERIFY, "
                    "which spends nothing.",
    )
    info.add_argument("--reader", default=None,
                      help="reader number (0 = first) or a part of its name (default: the first "
                           "reader with a card)")
    info.add_argument("--wait", type=float, default=5.0,
                      help="seconds to wait for a card (default 5)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)


# --- card new / show / apdu --------------------------------------------------------------------


def _new(args: argparse.Namespace) -> int:
    from workbench.lifecycle import DEFAULT_AUTH_PIN, DEFAULT_SIGN_PASSWORD, create_card, issue_card

    path: Path = args.path
    if path.exists() or path.is_symlink():
        if not args.force:
            raise CliError(f"{path} already exists; pass --force to replace it")
        _require_card_image(path)
    options: dict[str, Any] = dict(
        seed=args.seed,
        auth_pin=args.auth_pin or DEFAULT_AUTH_PIN,
        sign_password=args.sign_password or DEFAULT_SIGN_PASSWORD,
        text_pin=args.text_pin,
        atr=args.atr,
        issued_at=parse_time(args.issued_at) if args.issued_at else None,
    )
    if args.authority is not None:
        from workbench.pki import FileClock
        from workbench.pki.store import AuthorityStore

        clock = FileClock(args.clock) if args.clock is not None else None
        with AuthorityStore.open(args.authority, create=True, clock=clock) as store:
            card = issue_card(store, args.profile, **options)
    else:
        card = create_card(args.profile, **options)
    card.save(path)
    card.close()
    holder = card.holder
    print(f"created {path}: {card.label} ({args.profile}) for synthetic holder {holder.name}")
    if args.authority is not None:
        serials = ", ".join(f"{k} {v}" for k, v in card.meta["certificate_serials"].items())
        print(f"registered with the authority at {args.authority}: {serials}")
    if not (args.auth_pin and args.sign_password):
        print("PINs: the documented defaults were used where none was given (see README)")
    return 0


def _require_card_image(path: Path) -> None:
    """``--force`` replaces a card image and nothing else: a text file, another application's
    database or a folder given by mistake is refused and left untouched."""
    from workbench.errors import CardImageError
    from workbench.se import SeImageError, load_token

    try:
        load_token(path).close()
    except (CardImageError, SeImageError):
        raise CliError(f"{path} is not a card image; --force replaces only card images, and "
                       "this file was left untouched") from None


def _export(args: argparse.Namespace) -> int:
    import getpass

    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import load_der_x509_certificate

    from workbench.client import JpkiClient
    from workbench.errors import SecurityStatusError
    from workbench.se import load_token
    from workbench.transport import VirtualCardTransport

    def secret(what: str) -> str:
        if args.pin_env:
            value = os.environ.get(args.pin_env)
            if value is None:
                raise CliError(f"environment variable {args.pin_env} is not set (it should hold "
                               f"the {what})")
            return value
        if not sys.stdin.isatty():
            raise CliError(f"the {args.cert} certificate needs the {what}: give --pin-env VAR, "
                           "or run in a terminal to be asked")
        return getpass.getpass(f"{what}: ")

    with load_token(args.path) as card, VirtualCardTransport(card) as transport:
        client = JpkiClient(transport)
        needs = None
        if args.cert == "sign":
            needs = "sign password"
        elif args.cert == "auth" and card.profile == "gpse":
            needs = "auth PIN"
        try:
            der = client.read_certificate_der(args.cert,
                                              pin=secret(needs) if needs is not None else None)
        except SecurityStatusError:
            raise CliError(f"the {args.cert} certificate needs the {needs}") from None
    data = load_der_x509_certificate(der).public_bytes(Encoding.PEM) if args.pem else der
    if args.out is None:
        if not args.pem and sys.stdout.isatty():
            raise CliError("DER is binary: give --out FILE or --pem")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    write_atomically(args.out, data)
    print(f"wrote {args.out}: {args.cert} certificate ({'PEM' if args.pem else 'DER'}, "
          f"{len(der)} bytes DER)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from workbench.analysis import describe_card

    info = describe_card(args.path)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"card image   {info['path']}")
    print(f"token        {info['token_label']} (profile {info['profile']})")
    print(f"ATR          {info['atr']}")
    print(f"card serial  {info['serial_number']}   expires {info['card_expiry']}")
    h = info["holder"]
    print("holder (synthetic)")
    for key in ("name", "address", "birth_date", "sex", "individual_number"):
        print(f"  {key:<18} {h[key]}")
    print("certificates")
    print_certificates(info["certificates"])
    print("tries left")
    for name, left in info["tries_left"].items():
        print(f"  {name:<18} {left}")
    return 0


def _apdu(args: argparse.Namespace) -> int:
    from workbench.apdu import CommandAPDU, ResponseAPDU, mask_command, response_meaning
    from workbench.errors import APDUError
    from workbench.se import load_token

    commands = [parse_hex(h) for h in args.hex]  # validate everything before sending anything
    with load_token(args.path) as card:
        card.power_on()
        for raw in commands:
            cmd: CommandAPDU | None
            try:
                cmd = CommandAPDU.from_bytes(raw)
                what = str(cmd)
            except APDUError as exc:
                cmd, what = None, f"malformed ({exc})"
            rsp = ResponseAPDU.from_bytes(card.transmit(raw))
            print(f"> {mask_command(raw)}  {what}")
            data = f"{rsp.data.hex().upper()} " if rsp.data else ""
            _, english, japanese = response_meaning(cmd, rsp.sw)
            print(f"< {data}{rsp.sw:04X}  {english} / {japanese}")
        card.power_off()
    return 0


# --- card serve (vpcd) -----------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from workbench.se import load_token
    from workbench.transport.vpcd import VPCD_PORT, VPCD_SLOTS, VpcdServer

    paths: list[Path] = args.paths
    if len(paths) > VPCD_SLOTS:
        raise CliError(f"vpcd has {VPCD_SLOTS} slots; give at most {VPCD_SLOTS} card images "
                       f"(got {len(paths)})")
    if len({_file_identity(p) for p in paths}) != len(paths):
        raise CliError("the same card image cannot sit in two slots at once")
    port = VPCD_PORT if args.port is None else args.port
    if not 0 < port <= 0xFFFF - (len(paths) - 1):
        raise CliError(f"--port must be 1..{0xFFFF - (len(paths) - 1)}, got {port}")
    if not args.quiet:
        _log_to_stderr()

    servers: list[VpcdServer] = []
    try:
        for slot, path in enumerate(paths):
            # a plastic card's image or a phone's SE image: the transport cannot tell them
            # apart (it sits below ``se``), the loader can
            servers.append(VpcdServer(path, host=args.host, port=port + slot, loader=load_token))
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
            token = server.token
            what = f"{token.label}, profile {token.profile}" if token is not None else "?"
            print(f"serving {path} ({what}) to vpcd at {args.host}:{server.port} "
                  f"(slot {slot})", flush=True)
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


def _file_identity(path: Path) -> object:
    """The same file under two names (a symlink, a hard link) is one image: two connections to
    one SQLite file in one process would drop each other's locks when one closes (ARCHITECTURE,
    "one helper"). A path that cannot be stat'ed (missing, a symlink loop) is told apart by its
    real path and reaches the loader's one-line error."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def _log_to_stderr() -> None:
    logger = logging.getLogger("workbench.transport.vpcd")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# --- card info (any PC/SC reader) ------------------------------------------------------------


def _reader_arg(text: str | None) -> str | int | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise CliError("--reader is empty; give a reader number or part of its name")
    return int(text) if text.isdigit() else text


def _info(args: argparse.Namespace) -> int:
    from workbench.analysis import inspect_card

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
        if why.startswith("unreadable"):
            print(f"  [{name}]  {why}")
        else:
            print(f"  [{name}]  not shown: needs the {why}")
    print("tries left")
    for name, left in info["tries_left"].items():
        print(f"  {name:<6} {left}")
    return 0

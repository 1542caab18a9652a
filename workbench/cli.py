"""The command line: ``jpki-workbench`` (also ``python -m workbench``).

User mistakes (bad hex, unknown profile, a PIN that breaks the rules, a missing or corrupt
card image) end with one line on stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.errors import WorkbenchError

EXIT_USAGE = 2


class CliError(WorkbenchError):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jpki-workbench",
        description="Protocol workbench for the My Number Card PKI (JPKI): simulated cards and tools.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top = p.add_subparsers(dest="group", required=True, metavar="GROUP")

    card = top.add_parser("card", help="create, inspect, serve and talk to cards")
    sub = card.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = sub.add_parser("new", help="issue a virtual card or phone token for a synthetic holder")
    new.add_argument("path", type=Path, help="card image file to create")
    new.add_argument("--profile", default="icc", help="icc (plastic card, default) or gpse (Android token)")
    new.add_argument("--auth-pin", default=None, help="4-digit auth PIN (default 1234)")
    new.add_argument("--sign-password", default=None, help="6-16 chars A-Z/0-9 with a letter and a digit (default ABC123)")
    new.add_argument("--text-pin", default=None, help="4-digit text AP PIN (default: the auth PIN)")
    new.add_argument("--seed", type=int, default=None, help="make holder, keys and serials reproducible")
    new.add_argument("--atr", default=None, help="ATR profile: contact, contactless, juki-listed (icc) / gpse")
    new.add_argument("--issued-at", default=None, help="issue time, ISO 8601 (default: now); with --seed gives identical cards")
    new.add_argument("--force", action="store_true", help="replace an existing image")
    new.add_argument("--authority", type=Path, default=None, metavar="PATH",
                     help="issue with the authority stored at PATH (created on first use) and register the certificates there")

    show = sub.add_parser("show", help="print what is on a card (never a secret)")
    show.add_argument("path", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")

    apdu = sub.add_parser("apdu", help="send raw APDUs (hex) in one power session and decode the answers")
    apdu.add_argument("path", type=Path)
    apdu.add_argument("hex", nargs="+", help="one APDU per argument, e.g. 00A4040C0AD392F000260100000001")
    new.set_defaults(func=_card_new)
    show.set_defaults(func=_card_show)
    apdu.set_defaults(func=_card_apdu)
    groups = {"card": sub}
    for module_name in _EXTENSIONS:
        # each extension adds its commands: register(top, groups) -> None; handlers are set
        # with set_defaults(func=...) and take the parsed Namespace, returning the exit status
        importlib.import_module(module_name).register(top, groups)
    return p


def _parse_hex(text: str) -> bytes:
    cleaned = re.sub(r"[\s:]", "", text)
    if not cleaned or len(cleaned) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", cleaned):
        raise CliError(f"not an APDU in hex: {text[:40]!r} (use pairs of hex digits, e.g. 00A4040C02...)")
    return bytes.fromhex(cleaned)


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time for any command; a naive value is read as JST, the card's
    home time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"not an ISO 8601 time: {text!r} (e.g. 2025-04-01 or 2025-04-01T10:00+09:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone(timedelta(hours=9)))


def _card_new(args: argparse.Namespace) -> int:
    from workbench.card import DEFAULT_AUTH_PIN, DEFAULT_SIGN_PASSWORD, create_card

    path: Path = args.path
    if path.exists() and not args.force:
        raise CliError(f"{path} already exists; pass --force to replace it")
    options: dict[str, Any] = dict(
        seed=args.seed,
        auth_pin=args.auth_pin or DEFAULT_AUTH_PIN,
        sign_password=args.sign_password or DEFAULT_SIGN_PASSWORD,
        text_pin=args.text_pin,
        atr=args.atr,
        issued_at=parse_time(args.issued_at) if args.issued_at else None,
    )
    if args.authority is not None:
        from workbench.pki.store import AuthorityStore

        with AuthorityStore.open(args.authority, create=True) as store:
            card = store.issue_card(args.profile, **options)
    else:
        card = create_card(args.profile, **options)
    card.save(path)
    card.close()
    holder = card.meta["holder"]
    print(f"created {path}: {card.label} ({args.profile}) for synthetic holder "
          f"{holder['family_name']}\u3000{holder['given_name']}")
    if args.authority is not None:
        serials = ", ".join(f"{k} {v}" for k, v in card.meta["certificate_serials"].items())
        print(f"registered with the authority at {args.authority}: {serials}")
    if not (args.auth_pin and args.sign_password):
        print("PINs: the documented defaults were used where none was given (see README)")
    return 0


def describe_card(path: Path) -> dict[str, Any]:
    from workbench.card import VirtualCard, holder_from_json
    from workbench.pki import describe_certificate

    with VirtualCard.load(path) as card:
        meta = card.meta
        holder = holder_from_json(meta["holder"])
        certs = {name: describe_certificate(cert) for name, cert in card.certificates().items()}
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
                "individual_number": "*" * 8 + holder.individual_number[-4:],
            },
            "certificates": certs,
            "tries_left": card.pin_status(),
        }


def print_certificates(certificates: dict[str, dict[str, Any]]) -> None:
    """The certificate part of ``card show`` and ``card info``: one block per certificate."""
    for name, cert in certificates.items():
        print(f"  [{name}]")
        print(f"    subject    {cert['subject']}")
        print(f"    issuer     {cert['issuer']}")
        print(f"    serial     {cert['serial_hex']} ({cert['serial_decimal']})")
        print(f"    valid      {cert['not_before']} .. {cert['not_after']}")


def _card_show(args: argparse.Namespace) -> int:
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


def _card_apdu(args: argparse.Namespace) -> int:
    from workbench.apdu import CommandAPDU, ResponseAPDU
    from workbench.card import VirtualCard
    from workbench.errors import APDUError

    commands = [_parse_hex(h) for h in args.hex]  # validate everything before sending anything
    with VirtualCard.load(args.path) as card:
        card.power_on()
        for raw in commands:
            try:
                cmd = CommandAPDU.from_bytes(raw)
                shown, what = cmd.masked_hex(), str(cmd)
            except APDUError as exc:
                shown, what = raw.hex().upper() if len(raw) <= 4 else raw[:4].hex().upper() + "…", f"malformed ({exc})"
            rsp = ResponseAPDU.from_bytes(card.transmit(raw))
            print(f"> {shown}  {what}")
            data = f"{rsp.data.hex().upper()} " if rsp.data else ""
            print(f"< {data}{rsp.sw:04X}  {rsp.status.meaning} / {rsp.status.meaning_ja}")
        card.power_off()
    return 0


#: Modules that add command groups or commands (one line each; see _parser()).
_EXTENSIONS: tuple[str, ...] = (
    "workbench.pki.commands",
    "workbench.pki.server_commands",  # after pki.commands: adds `pki serve` to its group
    "workbench.transport.commands",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WorkbenchError as exc:
        print(f"jpki-workbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

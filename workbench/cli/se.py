"""``jpki-workbench se …``: the phone's secure element from the shell.

``se new`` makes an SE image as a supported phone leaves the factory (ISD, the JPKI load file,
the JPKI security domain with its test keys); ``card new --profile gpse`` makes one with the
JPKI applet installed and personalised. ``se show`` prints its registry, life cycles,
privileges, key versions and the applet's certificates and tries — never a key or a PIN.
``se apdu`` sends APDUs, optionally inside an SCP03 session opened with the SE's own test keys,
and prints each exchange decoded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workbench.cli.common import CliError, parse_hex

__all__ = ["add_commands"]

_LEVELS = {"00": 0x00, "01": 0x01, "03": 0x03, "11": 0x11, "13": 0x13, "33": 0x33}


def add_commands(group: argparse.ArgumentParser) -> None:
    """The ``se`` group's commands."""
    sub = group.add_subparsers(dest="command", required=True, metavar="COMMAND",
                               parser_class=type(group))

    new = sub.add_parser("new", help="an SE image as a supported phone leaves the factory")
    new.add_argument("path", type=Path, help="SE image file to create")
    new.add_argument("--seed", type=int, default=None,
                     help="make its identity and the JPKI security domain's keys reproducible")
    new.add_argument("--force", action="store_true", help="replace an existing SE image")
    new.set_defaults(func=_new)

    show = sub.add_parser("show", help="registry, life cycles, privileges, keys' versions, the "
                                       "applet's certificates and tries (never a secret)")
    show.add_argument("path", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    apdu = sub.add_parser("apdu", help="send APDUs (hex), optionally inside an SCP03 session")
    apdu.add_argument("path", type=Path)
    apdu.add_argument("hex", nargs="+", help="one plain APDU per argument")
    apdu.add_argument("--scp03", default=None, choices=sorted(_LEVELS), metavar="LEVEL",
                      help="open SCP03 at LEVEL (00, 01, 03, 11, 13, 33) with the SE's test keys "
                           "and wrap every APDU")
    apdu.add_argument("--sd", choices=("ssd", "isd"), default="ssd",
                      help="the security domain of the session (default: the JPKI SSD)")
    apdu.set_defaults(func=_apdu)


def _new(args: argparse.Namespace) -> int:
    from workbench.se import SecureElement

    path: Path = args.path
    if path.exists() or path.is_symlink():
        if not args.force:
            raise CliError(f"{path} already exists; pass --force to replace it")
        _require_se_image(path)
    seed = None if args.seed is None else f"se-new/{args.seed}".encode()
    se = SecureElement.factory(seed=seed)
    se.save(path)
    se.close()
    print(f"created {path}: a phone secure element with the JPKI security domain (test keys), "
          "no JPKI applet yet")
    return 0


def _require_se_image(path: Path) -> None:
    from workbench.se import SecureElement, SeImageError

    try:
        SecureElement.load(path).close()
    except SeImageError:
        raise CliError(f"{path} is not an SE image; --force replaces only SE images, and this "
                       "file was left untouched") from None


def describe_se(path: Path) -> dict[str, Any]:
    """What ``se show`` prints, as a dict."""
    from workbench.pki import describe_certificate
    from workbench.se import SecureElement, gp, key_check_value

    with SecureElement.load(path) as se:
        entries = []
        for e in se.registry:
            entries.append({
                "aid": e.aid.hex().upper(),
                "kind": e.kind.value,
                "life_cycle": f"{e.life_cycle:02X}",
                "state": _state_name(e),
                "privileges": f"{e.privileges:06X}",
                "privilege_names": gp.describe_privileges(e.privileges),
                "security_domain": e.sd_aid.hex().upper() if e.sd_aid else None,
            })
        keys = {aid.hex().upper(): [{"kvn": f"{k.kvn:02X}", "aes_bits": 8 * len(k.enc),
                                     "kcv": {n: key_check_value(getattr(k, n)).hex().upper()
                                             for n in ("enc", "mac", "dek")}}
                                    for k in sets]
                for aid, sets in se.key_sets.items()}
        certificates = {name: describe_certificate(cert)
                        for name, cert in se.certificates().items()}
        return {
            "path": str(path),
            "card_state": f"{se.card_state:02X}",
            "registry": entries,
            "key_sets": keys,
            "jpki_applet": {
                "installed": se.jpki is not None,
                "certificates": certificates,
                "tries_left": se.pin_status(),
            },
            "token": {k: v for k, v in se.meta.items()
                      if k in ("label", "issued_at", "card_expiry", "certificate_serials")},
        }


def _state_name(entry: Any) -> str:
    from workbench.se import gp

    state = entry.life_cycle
    locked = " (locked)" if gp.is_locked(state) and entry.kind is not gp.EntryKind.ISD else ""
    base = gp.unlock(state) if locked else state
    names = {
        gp.EntryKind.ISD: {s.value: s.name for s in gp.CardState},
        gp.EntryKind.SSD: {s.value: s.name for s in gp.SdState},
        gp.EntryKind.APPLICATION: {s.value: s.name for s in gp.ApplicationState},
        gp.EntryKind.ELF: {gp.LOADED: "LOADED"},
    }[entry.kind]
    return names.get(base, "application specific") + locked


def _show(args: argparse.Namespace) -> int:
    info = describe_se(args.path)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"SE image     {info['path']}")
    print(f"card state   {info['card_state']}")
    print("registry")
    for e in info["registry"]:
        privs = ", ".join(e["privilege_names"]) or "-"
        print(f"  {e['aid']:<34} {e['kind']:<12} {e['life_cycle']} {e['state']:<22} "
              f"privileges {e['privileges']} ({privs})")
    print("key sets (test keys; check values only)")
    for aid, sets in info["key_sets"].items():
        for k in sets:
            kcv = " ".join(f"{n} {v}" for n, v in k["kcv"].items())
            print(f"  {aid:<34} KVN {k['kvn']}  AES-{k['aes_bits']}  KCV {kcv}")
    applet = info["jpki_applet"]
    if not applet["installed"]:
        print("JPKI applet  not installed")
        return 0
    print("JPKI applet certificates")
    for name, cert in applet["certificates"].items():
        print(f"  [{name}] {cert['subject']}  serial {cert['serial_hex']}  valid to "
              f"{cert['not_after']}")
    print("tries left")
    for name, left in applet["tries_left"].items():
        print(f"  {name:<6} {left}")
    return 0


def _apdu(args: argparse.Namespace) -> int:
    from workbench.apdu import CommandAPDU, ResponseAPDU, mask_command, response_meaning
    from workbench.errors import APDUError
    from workbench.se import SecureElement, TsmError, TsmSession, gp

    commands = [parse_hex(h) for h in args.hex]  # validate everything before sending anything
    with SecureElement.load(args.path) as se:
        se.power_on()
        session = None
        if args.scp03 is not None:
            sd = gp.JPKI_SSD_AID if args.sd == "ssd" else gp.ISD_AID
            keys = se.key_sets.get(sd)
            if not keys:
                raise CliError(f"the SE has no keys for {args.sd}")
            session = TsmSession(se.transmit, keys[0], sd_aid=sd, level=_LEVELS[args.scp03])
            try:
                session.open()
            except TsmError as exc:
                raise CliError(f"cannot open SCP03: {exc}") from None
            print(f"SCP03 open to {sd.hex().upper()} at level {args.scp03}")
        for raw in commands:
            cmd: CommandAPDU | None
            try:
                cmd = CommandAPDU.from_bytes(raw)
                what = str(cmd)
            except APDUError as exc:
                cmd, what = None, f"malformed ({exc})"
            if session is not None:
                try:
                    data, sw = session.send(raw)
                except (TsmError, APDUError) as exc:
                    raise CliError(f"{mask_command(raw)}: {exc}") from None
                rsp = ResponseAPDU(data, sw)
            else:
                rsp = ResponseAPDU.from_bytes(se.transmit(raw))
            print(f"> {mask_command(raw)}  {what}")
            shown = f"{rsp.data.hex().upper()} " if rsp.data else ""
            _, english, japanese = response_meaning(cmd, rsp.sw)
            print(f"< {shown}{rsp.sw:04X}  {english} / {japanese}")
        se.power_off()
    return 0

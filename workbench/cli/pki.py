"""``jpki-workbench pki …``: run the simulated authority's revocation side from the shell.

Suspension, lifting and revocation are the events of smartphone-service.md 8–10 (reasons as in
15.8); ``pki crl`` writes the CRL a relying party would download (11.3, jpki-card.md 9.7).
Every command works on an authority database (:mod:`workbench.pki.store`) named by ``--db``;
``card new --authority`` creates one on first use, ``pki init`` with chosen settings.
``pki serve`` runs the HTTP repository (CRLs, ARLs, CA certificates, OCSP;
:mod:`workbench.pki.server`). Mistakes end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.cli.common import CliError, parse_time, write_atomically
from workbench.pki.clock import Clock, FileClock
from workbench.pki.crl import LoadedCrl
from workbench.pki.profiles import AuthorityProfile
from workbench.pki.registry import RegistryEvent
from workbench.pki.status import CertState, RevocationReason
from workbench.pki.store import AuthorityStore

__all__ = ["add_commands", "parse_serial"]

DEFAULT_PORT = 8080

_SERIAL_RE = re.compile(r"0[xX][0-9A-Fa-f]+|[0-9]+")
_INTERVAL_RE = re.compile(r"([0-9]+)\s*([smhd]?)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}


def parse_serial(text: str) -> int:
    """A serial as ``card show`` prints it: ``0x…`` hex, or decimal."""
    cleaned = text.strip().replace(":", "") if text.lower().startswith("0x") else text.strip()
    if not _SERIAL_RE.fullmatch(cleaned):
        raise CliError(f"not a serial number: {text[:40]!r} (decimal, or hex with 0x as "
                       "`card show` prints it)")
    return int(cleaned, 0) if cleaned.lower().startswith("0x") else int(cleaned, 10)


def _parse_reason(text: str) -> RevocationReason:
    try:
        return RevocationReason.parse(text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _parse_interval(text: str) -> timedelta:
    match = _INTERVAL_RE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CliError(f"not a CRL interval: {text!r} (e.g. 24h, 90m, 1d; a bare number is hours)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _parse_key_id(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        value = bytes.fromhex(text.replace(":", ""))
    except ValueError:
        value = b""
    if not value:
        raise CliError(f"not an issuer key id in hex: {text[:60]!r}")
    return value


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(args: argparse.Namespace) -> Clock | None:
    """``--clock FILE``: a clock shared with other processes (:class:`FileClock`)."""
    path = getattr(args, "clock", None)
    return None if path is None else FileClock(path)


def _open(args: argparse.Namespace) -> AuthorityStore:
    return AuthorityStore.open(args.db, clock=_clock(args))


def _print_event(verb: str, event: RegistryEvent) -> None:
    reason = f" reason {event.reason.value}" if event.reason is not None else ""
    print(f"{verb} 0x{event.serial:X} (issuer key id {event.issuer_key_id.hex()}){reason} at "
          f"{_iso(event.at)}")


# --- handlers --------------------------------------------------------------------------------

def _init(args: argparse.Namespace) -> int:
    if args.db.exists():
        raise CliError(f"{args.db} already exists; an authority's settings are fixed at creation")
    profile = AuthorityProfile(
        repository_url=args.repository_url,
        ocsp_aia=args.ocsp_aia,
        crl_interval=_parse_interval(args.crl_interval),
        crl_url_scope=args.crl_url_scope,
    )
    with AuthorityStore.open(args.db, create=True, profile=profile, seed=args.seed,
                             clock=_clock(args)) as store:
        p = store.authority.profile
        every = int(p.crl_interval.total_seconds())
        shown = f"{every // 3600} h" if every % 3600 == 0 else f"{every} s"
        print(f"created authority {args.db} (CRL every {shown}, repository "
              f"{p.repository_url or 'none'}, OCSP AIA {'on' if p.ocsp_aia else 'off'})")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    reason = _parse_reason(args.reason)
    at = parse_time(args.at) if args.at else None
    invalid = parse_time(args.invalidity_date) if args.invalidity_date else None
    with _open(args) as store:
        event = store.registry.revoke(serial, reason, issuer_key_id=_parse_key_id(args.issuer_key_id),
                                      at=at, invalidity_date=invalid)
    _print_event("revoked", event)
    return 0


def _hold(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    at = parse_time(args.at) if args.at else None
    with _open(args) as store:
        event = store.registry.hold(serial, issuer_key_id=_parse_key_id(args.issuer_key_id), at=at)
    _print_event("held", event)
    return 0


def _release(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    at = parse_time(args.at) if args.at else None
    with _open(args) as store:
        event = store.registry.release(serial, issuer_key_id=_parse_key_id(args.issuer_key_id),
                                       at=at)
    _print_event("released", event)
    return 0


def _status(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    at = parse_time(args.at) if args.at else None
    with _open(args) as store:
        reg = store.registry
        history = reg.history(serial, _parse_key_id(args.issuer_key_id))
        ikid = history[0].issuer_key_id
        (cert,) = reg.certificates(issuer_key_id=ikid, serial=serial)
        status = reg.status(ikid, serial, at)
    print(f"certificate 0x{serial:X} ({cert.kind}, hierarchy {cert.hierarchy or '-'}, token "
          f"{cert.token or '-'}, partition {cert.partition or '-'})")
    print(f"  issuer key id  {ikid.hex()}")
    print(f"  subject        {cert.subject}")
    print(f"  valid          {_iso(cert.not_before)} .. {_iso(cert.not_after)}")
    state = status.state.value
    if status.state in (CertState.REVOKED, CertState.HELD):
        state += f" since {_iso(status.since)} ({status.reason.value if status.reason else ''})"
    print(f"  status         {state} as of {_iso(status.at)}")
    print("history")
    print(f"  {'seq':>5}  {'action':<8} {'at':<21} {'reason':<21} recorded")
    for ev in history:
        reason = ev.reason.value if ev.reason is not None else ""
        print(f"  {ev.seq:>5}  {ev.action.value:<8} {_iso(ev.at):<21} {reason:<21} "
              f"{_iso(ev.recorded_at)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        rows = store.registry.certificates(partition=args.partition, hierarchy=args.ca,
                                           state=args.state)
    print(f"{'serial':<20} {'kind':<5} {'token':<5} {'partition':<10} {'state':<8} "
          f"issuer key id")
    for c in rows:
        print(f"0x{c.serial:<18X} {c.kind:<5} {c.token or '-':<5} {c.partition or '-':<10} "
              f"{c.state.value:<8} {c.issuer_key_id.hex()}")
    return 0


def _crl(args: argparse.Namespace) -> int:
    at = parse_time(args.at) if args.at else None
    if args.arl and args.partition is not None:
        raise CliError("--arl and --partition exclude each other: the ARL lists CA certificates")
    with _open(args) as store:
        published = store.publish(args.ca, args.generation, args.partition, at, arl=args.arl)
    der = published.der
    data = der
    if args.pem:
        body = base64.encodebytes(der).decode("ascii").replace("\n", "")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        data = ("-----BEGIN X509 CRL-----\n" + "\n".join(lines)
                + "\n-----END X509 CRL-----\n").encode("ascii")
    write_atomically(args.out, data)
    what = "ARL" if args.arl else ("full CRL" if args.partition is None else
                                   f"CRL of partition {args.partition}")
    print(f"wrote {args.out}: {what} of the {args.ca} CA, number {published.number}, "
          f"thisUpdate {_iso(published.this_update)}, nextUpdate {_iso(published.next_update)}, "
          f"{len(LoadedCrl.from_der(der))} entries")
    print("changes after thisUpdate appear in the next publication (OCSP shows them at once)")
    return 0


def _defaults(repository_url: str | None) -> tuple[str | None, int | None]:
    """Host and port named by the store's repository URL, which its certificates carry."""
    if not repository_url:
        return None, None
    parts = urlsplit(repository_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port


def _serve(args: argparse.Namespace) -> int:
    from workbench.pki.server import default_workers, is_loopback, serve_workers

    db: Path = args.db
    if not db.exists():
        raise CliError(f"{db} does not exist; create an authority store first "
                       "(jpki-workbench pki --help)")
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise CliError(f"--workers must be 1 or more, got {workers}")
    with _open(args) as store:  # read the settings; every worker opens the store itself
        named = store.authority.profile.repository_url
    url_host, url_port = _defaults(named)
    host = args.host or (url_host if url_host and is_loopback(url_host) else "127.0.0.1")
    port = args.port if args.port is not None else (url_port or DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise CliError(f"--port must be 0..65535, got {port}")

    def ready(base_url: str) -> None:
        plural = "worker" if workers == 1 else "workers"
        api = ("off" if args.no_api else f"{base_url}/v1/" if workers == 1
               else "needs --workers 1")
        print(f"serving {db} at {base_url} (OCSP {base_url}/ocsp, signer {args.ocsp_signer}, "
              f"{workers} {plural}, application API {api}); Ctrl-C or SIGTERM stops",
              flush=True)
        if named and named.rstrip("/") != base_url:
            print(f"note: the certificates name {named}, not {base_url}",
                  file=sys.stderr, flush=True)

    if args.issuance_delay < 0:
        raise CliError(f"--issuance-delay must be 0 or more minutes, got {args.issuance_delay}")

    def application_api(store: AuthorityStore) -> Any:
        from workbench.lifecycle.authority import ServiceAuthority

        delay = timedelta(minutes=args.issuance_delay)
        return ServiceAuthority(store, issuance_delay=delay).handle

    serve_workers(lambda: _open(args), host=host, port=port, workers=workers, ready=ready,
                  allow_remote=args.allow_remote, ocsp_signer=args.ocsp_signer,
                  api_factory=None if args.no_api else application_api)
    print("stopped", flush=True)
    return 0


# --- the command tree --------------------------------------------------------------------------

def add_commands(group: argparse.ArgumentParser) -> None:
    """The ``pki`` group's commands."""
    sub = group.add_subparsers(dest="command", required=True, metavar="COMMAND",
                               parser_class=type(group))

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", type=Path, required=True,
                       help="authority database (created by `card new --authority` or `pki init`)")
        p.add_argument("--clock", type=Path, default=None, metavar="FILE",
                       help="take 'now' from FILE (an ISO 8601 time) instead of the system clock, "
                            "shared with other processes (tests, scenarios)")

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("serial", help="certificate serial, decimal or 0x-hex as `card show` prints")
        db(p)
        p.add_argument("--issuer-key-id", default=None,
                       help="issuing CA key id (hex), when the serial exists under several CAs")
        p.add_argument("--at", default=None,
                       help="when it takes effect, ISO 8601 (default now; naive = JST)")
    init = sub.add_parser("init", help="create an authority database with chosen settings")
    db(init)
    init.add_argument("--seed", default=None, help="derive every CA key from this text "
                      "(reproducible, test only); default random")
    init.add_argument("--repository-url", default=None,
                      help="base URL of `pki serve`; adds HTTP CRL URIs to certificates")
    init.add_argument("--ocsp-aia", action="store_true", help="add an OCSP AIA to end-entity "
                      "certificates (needs --repository-url)")
    init.add_argument("--crl-interval", default="24h", help="CRL publication interval (default 24h)")
    init.add_argument("--crl-url-scope", choices=("partition", "full"), default="partition",
                      help="which CRL the EE certificates' HTTP URI names (default partition)")
    init.set_defaults(func=_init)

    revoke = sub.add_parser("revoke", help="revoke a certificate for good (失効)")
    target(revoke)
    revoke.add_argument("--reason", default="unspecified",
                        help="RFC 5280 reason, e.g. keyCompromise, superseded, "
                             "cessationOfOperation (default unspecified)")
    revoke.add_argument("--invalidity-date", default=None,
                        help="when the key became unusable, ISO 8601 (optional)")
    revoke.set_defaults(func=_revoke)

    hold = sub.add_parser("hold", help="suspend a certificate (一時利用停止, certificateHold)")
    target(hold)
    hold.set_defaults(func=_hold)

    release = sub.add_parser("release", help="lift a hold (一時利用停止の解除)")
    target(release)
    release.set_defaults(func=_release)

    status = sub.add_parser("status", help="a certificate's status and history")
    target(status)
    status.set_defaults(func=_status)

    listing = sub.add_parser("list", help="registered certificates and their states")
    db(listing)
    listing.add_argument("--ca", choices=("sign", "auth"), default=None)
    listing.add_argument("--partition", default=None, help="municipality code")
    listing.add_argument("--state", choices=("good", "held", "revoked"), default=None)
    listing.set_defaults(func=_list)

    crl = sub.add_parser("crl", help="write the CRL (or ARL) in force now, DER or PEM")
    db(crl)
    crl.add_argument("--ca", choices=("sign", "auth"), default="sign",
                     help="hierarchy (default sign)")
    crl.add_argument("--generation", type=int, default=None,
                     help="CA generation (default: the one issuing now)")
    crl.add_argument("--partition", default=None,
                     help="municipality code: that municipality's CRL instead of the full one")
    crl.add_argument("--arl", action="store_true", help="the authority revocation list instead")
    crl.add_argument("--at", default=None, help="the moment, ISO 8601 (default now)")
    crl.add_argument("--out", type=Path, required=True, help="file to write (atomically)")
    crl.add_argument("--pem", action="store_true", help="PEM instead of DER")
    crl.set_defaults(func=_crl)

    serve = sub.add_parser(
        "serve",
        help="serve CRLs, ARLs, CA certificates and OCSP over HTTP (loopback by default)",
        description="Serve the authority store's CRLs (/crl/...), ARLs (/arl/...), CA "
                    "certificates (/ca/...), OCSP (/ocsp) and, with --workers 1, the "
                    "smartphone service's application API (/v1/...) until Ctrl-C or SIGTERM.",
    )
    db(serve)
    serve.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the port (default: the number of cores)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default: the host of the store's repository "
                            "URL if it is loopback, else 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None,
                       help="port (default: the port of the store's repository URL, else "
                            f"{DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--ocsp-signer", choices=("direct", "delegated"), default="direct",
                       help="who signs OCSP responses: the CA key (direct, default) or a "
                            "delegated responder certificate issued by the CA (RFC 6960 4.2.2.2)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback --host (the simulator's keys are test keys; "
                            "do not expose it)")
    serve.add_argument("--issuance-delay", type=float, default=2.0, metavar="MINUTES",
                       help="server-side issuance time of the application API (default 2)")
    serve.add_argument("--no-api", action="store_true",
                       help="do not serve the smartphone service's application API at /v1/ "
                            "(it is served with --workers 1 only)")
    serve.set_defaults(func=_serve)

"""``jpki-workbench pki serve``: the authority's HTTP repository (CRLs, ARLs, CA certs, OCSP).

Registered into the ``pki`` command group that :mod:`workbench.pki.commands` creates (see
``_EXTENSIONS`` in :mod:`workbench.cli`). The server itself is :mod:`workbench.pki.server`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import WorkbenchError

DEFAULT_PORT = 8080


class ServeError(WorkbenchError):
    """``pki serve`` cannot start (missing store, port in use, remote host refused)."""


def register(top: Any, groups: dict[str, Any]) -> None:
    """Add ``serve`` to the ``pki`` group (created here if no other module made it)."""
    pki = groups.get("pki")
    if pki is None:
        parser = top.add_parser("pki", help="the simulated authority: registry, CRLs, OCSP")
        pki = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        groups["pki"] = pki
    serve = pki.add_parser(
        "serve",
        help="serve CRLs, ARLs, CA certificates and OCSP over HTTP (loopback by default)",
        description="Serve the authority store's CRLs (/crl/...), ARLs (/arl/...), CA "
                    "certificates (/ca/...) and OCSP (/ocsp) until Ctrl-C or SIGTERM.",
    )
    serve.add_argument("--db", type=Path, required=True, help="authority store (SQLite file)")
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
    serve.set_defaults(func=_serve)


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
    from workbench.pki.server import RepositoryServer, is_loopback
    from workbench.pki.store import AuthorityStore

    db: Path = args.db
    if not db.exists():
        raise ServeError(f"{db} does not exist; create an authority store first "
                         "(jpki-workbench pki --help)")
    store = AuthorityStore.open(db)
    try:
        url_host, url_port = _defaults(store.authority.profile.repository_url)
        host = args.host or (url_host if url_host and is_loopback(url_host) else "127.0.0.1")
        port = args.port if args.port is not None else (url_port or DEFAULT_PORT)
        if not 0 <= port <= 65535:
            raise ServeError(f"--port must be 0..65535, got {port}")
        server = RepositoryServer(store, host, port, ocsp_signer=args.ocsp_signer,
                                  allow_remote=args.allow_remote)

        def ready(base_url: str) -> None:
            print(f"serving {db} at {base_url} (OCSP {base_url}/ocsp, signer "
                  f"{args.ocsp_signer}); Ctrl-C or SIGTERM stops", flush=True)
            named = store.authority.profile.repository_url
            if named and named.rstrip("/") != base_url:
                print(f"note: the certificates name {named}, not {base_url}",
                      file=sys.stderr, flush=True)

        server.serve_forever(ready)
        print("stopped", flush=True)
        return 0
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()

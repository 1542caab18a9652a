"""What every command group shares: the one error type, the one-line argument errors, the
time and hex parsers and the certificate printout."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from workbench.errors import WorkbenchError

__all__ = ["EXIT_USAGE", "PROG", "CliError", "Parser", "parse_hex", "parse_time",
           "print_certificates", "write_atomically"]

EXIT_USAGE = 2
PROG = "jpki-workbench"


class CliError(WorkbenchError):
    """A bad argument or a refused action on the command line (one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported as one line naming the command, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time for any command; a naive value is read as JST, the card's
    home time zone."""
    from workbench.pki.clock import JST

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"not an ISO 8601 time: {text!r} (e.g. 2025-04-01 or "
                       "2025-04-01T10:00+09:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=JST)


def parse_hex(text: str) -> bytes:
    """An APDU given in hex on the command line (spaces and colons allowed)."""
    cleaned = re.sub(r"[\s:]", "", text)
    if not cleaned or len(cleaned) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", cleaned):
        raise CliError(f"not an APDU in hex: {text[:40]!r} (use pairs of hex digits, e.g. "
                       "00A4040C02...)")
    return bytes.fromhex(cleaned)


def print_certificates(certificates: dict[str, dict[str, Any]]) -> None:
    """The certificate part of ``card show`` and ``card info``: one block per certificate."""
    for name, cert in certificates.items():
        print(f"  [{name}]")
        print(f"    subject    {cert['subject']}")
        print(f"    issuer     {cert['issuer']}")
        print(f"    serial     {cert['serial_hex']} ({cert['serial_decimal']})")
        print(f"    valid      {cert['not_before']} .. {cert['not_after']}")
        for key, label in (("crl_distribution_points", "CRL DP"), ("ocsp_urls", "OCSP")):
            for value in cert.get(key) or ():
                print(f"    {label:<10} {value}")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers never see half a
    file, and a crash leaves the old file or the new one."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise CliError(f"cannot write {path}: it is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

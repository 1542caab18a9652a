"""The command line: ``jpki-workbench`` (also ``python -m workbench``).

One module per command group (:mod:`workbench.cli.card`, :mod:`workbench.cli.pki`,
:mod:`workbench.cli.se`, :mod:`workbench.cli.scenario`, :mod:`workbench.cli.lab`). The CLI holds no domain
logic: it parses, calls the domain packages and prints. User mistakes (bad hex, an unknown
profile, a PIN that breaks the rules, a missing or corrupt file, a bad option value) end with
one line on stderr and exit status 2, never a traceback; every such error is a
:class:`~workbench.errors.WorkbenchError`, and :class:`CliError` is the one the CLI itself
raises.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from workbench import __version__
from workbench.cli.common import (
    EXIT_USAGE,
    PROG,
    CliError,
    Parser,
    parse_hex,
    parse_time,
    print_certificates,
)
from workbench.errors import WorkbenchError

__all__ = ["EXIT_USAGE", "CliError", "main", "parse_hex", "parse_time", "print_certificates"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each group module adds its own commands."""
    from workbench.cli import card, lab, pki, scenario, se

    parser = Parser(
        prog=PROG,
        description="Protocol workbench for the My Number Card PKI (JPKI): simulated cards, "
                    "the simulated authority and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP",
                                   parser_class=Parser)
    card.add_commands(groups.add_parser(
        "card", help="create, inspect, serve and talk to cards"))
    pki.add_commands(groups.add_parser(
        "pki", help="the simulated authority: registry, CRLs, OCSP, the repository server"))
    se.add_commands(groups.add_parser(
        "se", help="the phone's secure element: GlobalPlatform registry, SCP03, JPKI applet"))
    scenario.add_commands(groups.add_parser(
        "scenario", help="the smartphone service's procedures: run, replay, exposure windows"))
    lab.add_commands(groups.add_parser(
        "lab", help="JupyterLab on the workbench's notebooks"))
    return parser


def _warn_in_one_line(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: object = None, line: str | None = None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _warn_in_one_line  # e.g. a key file others can read: one line
    try:
        return int(args.func(args))
    except WorkbenchError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

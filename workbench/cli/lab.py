"""``jpki-workbench lab``: JupyterLab on the workbench's notebooks, from a checkout or from
an installed package.

In a checkout it opens ``notebooks/``. From an installed package it copies the notebooks it
ships into a folder (default ``./jpki-workbench-notebooks``) without overwriting any that are
already there (a user's edits stay), then opens that folder. JupyterLab's news pop-up and
update check are switched off for the session (they interrupt newcomers and screenshots).
As root (containers, CI machines) ``--allow-root`` is passed, as ``make lab`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from workbench.cli.common import CliError

__all__ = ["add_commands", "notebooks_folder", "prepare"]

_REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def add_commands(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", type=Path, default=None,
                        help="where the notebooks are (default: notebooks/ of a checkout, else "
                             "./jpki-workbench-notebooks, filled from the package)")
    parser.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare the folder and print the command instead of running it")
    parser.set_defaults(func=_lab)


def notebooks_folder(folder: Path | None) -> Path:
    """The folder to open: the given one, a checkout's notebooks/, or the default copy."""
    if folder is not None:
        return folder
    if (_REPO_NOTEBOOKS / "00_start_here.ipynb").is_file():
        return _REPO_NOTEBOOKS
    return Path("jpki-workbench-notebooks")


def prepare(folder: Path, *, dry_run: bool = False) -> list[str]:
    """Copy the packaged notebooks that are missing from ``folder``; returns their names
    (``dry_run``: the names it would copy, writing nothing)."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder} exists and is not a folder")
    if not dry_run:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {folder}: {exc.strerror or exc}") from None
    shipped = resources.files("workbench") / "notebooks"
    copied = []
    for item in sorted(shipped.iterdir(), key=lambda i: i.name):
        if not (item.name.endswith(".ipynb") or item.name == "nbval_sanitize.cfg"):
            continue
        target = folder / item.name
        if target.exists() or target.resolve() == Path(str(item)).resolve():
            continue
        if not dry_run:
            with resources.as_file(item) as source:
                shutil.copyfile(source, target)
        copied.append(item.name)
    return copied


def _lab(args: argparse.Namespace) -> int:
    folder = notebooks_folder(args.folder)
    if args.folder is None:
        why = ("the checkout's notebooks/ (an editable install)" if folder == _REPO_NOTEBOOKS
               else "the default folder for copies")
        print(f"opening {folder}: {why}")
    copied = prepare(folder, dry_run=args.dry_run)
    notebooks = sum(1 for name in copied if name.endswith(".ipynb"))
    if notebooks:
        print(f"{'would copy' if args.dry_run else 'copied'} {notebooks} notebooks into {folder}")
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={folder}",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if args.port is not None:
        command.append(f"--port={args.port}")
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    if args.dry_run:
        print(" ".join(command))
        return 0
    if shutil.which("jupyter") is None and not _has_jupyterlab():
        raise CliError("JupyterLab is not installed: pip install 'jpki-workbench[lab]'")
    os.execv(sys.executable, command)
    return 0  # pragma: no cover - execv does not return


def _has_jupyterlab() -> bool:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return False
    return True

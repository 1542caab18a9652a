"""One way to open an SQLite file: card images, SE images, the registry and the authority store.

Every persistent thing in the workbench is one SQLite file, and they all need the same care:

- **Refuse foreign files without touching them.** A text file, another application's
  database or a truncated file gets one typed, one-line error and stays byte-identical.
- **Never open and close the file behind a live connection.** On Linux, closing *any*
  descriptor of a file drops every POSIX lock the process holds on it (SQLite's "How To
  Corrupt An SQLite Database File", section 2.2). If the process already has a connection to
  the database and then reads its header with ``open()``/``close()``, the locks of that
  connection vanish; another process (``pki hold`` run from a shell) then believes it is the
  only user, checkpoints and deletes the WAL, and the first process keeps reading a stale
  WAL index: a running OCSP responder answered from the state at its start. So this module
  tracks which files (by device and inode) the process has open, and reads the header only
  of files it does not hold yet.
- **Create secrets private.** Files are created with mode 0600 before SQLite touches them
  (SQLite gives its ``-wal`` and ``-shm`` files the database's mode), because card images
  and the authority store hold private keys.
- **Write whole images atomically**: a temporary file in the same folder, fsync, ``os.replace``.

Callers pass the error class to raise (``CardImageError``, ``RegistryError``, ...) so a user
sees the error of the thing they asked for.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

__all__ = [
    "SQLITE_HEADER",
    "InsecureFileWarning",
    "atomic_write",
    "check_file",
    "connect",
    "insecure_mode",
    "is_open_here",
    "warn_if_readable",
]

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"

ErrorType = Callable[[str], Exception]


class InsecureFileWarning(UserWarning):
    """A file holding private keys is readable by other users (it should be mode 0600)."""

_lock = threading.Lock()
_open_files: Counter[tuple[int, int]] = Counter()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def is_open_here(path: str | os.PathLike[str]) -> bool:
    """True when a connection of this process made by :func:`connect` holds ``path``."""
    ident = _identity(Path(path))
    with _lock:
        return ident is not None and _open_files[ident] > 0


class _TrackedConnection(sqlite3.Connection):
    """A connection that tells the module when it closes (see the module docstring)."""

    _wb_ident: tuple[int, int] | None = None

    def close(self) -> None:
        ident, self._wb_ident = self._wb_ident, None
        try:
            super().close()
        finally:
            if ident is not None:
                with _lock:
                    _open_files[ident] -= 1
                    if _open_files[ident] <= 0:
                        del _open_files[ident]

    def __del__(self) -> None:  # a connection dropped without close() still releases its entry
        with suppress(Exception):
            self.close()


def check_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: ErrorType,
    allow_empty: bool = False,
) -> None:
    """Refuse, without writing anything, a ``path`` that is not an SQLite database file.

    ``what`` names the thing for the message ("card image", "registry"). A file this process
    already holds through :func:`connect` is known to be SQLite and is not opened again.
    ``allow_empty``: a zero-byte file counts as a new database (SQLite's own view).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p} is a directory, not {_a(what)} file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p} is not a regular file; give the path of {_a(what)}")
    with _lock:
        if _open_files[(st.st_dev, st.st_ino)] > 0:
            return
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if not head and allow_empty:
        return
    if head != SQLITE_HEADER:
        raise error(f"{p} is not {_a(what)} (not an SQLite file); it was left untouched")


def connect(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: ErrorType,
    create: bool = False,
    readonly: bool = False,
    allow_empty: bool = False,
    pragmas: Iterable[str] = (),
    mode: int = 0o600,
) -> sqlite3.Connection:
    """Open ``path`` safely (module docstring) and return an autocommit connection.

    ``create``: make a missing file, with permissions ``mode``; otherwise a missing file is an
    error. ``pragmas`` are statements such as ``"journal_mode = WAL"`` run in order after
    opening. The connection is in autocommit mode (``isolation_level=None``): callers write
    ``BEGIN IMMEDIATE`` / ``COMMIT`` themselves, so each transaction is visible in the code.
    It may be used from several threads (the caller serialises with its own lock).
    """
    p = Path(path)
    exists = os.path.lexists(p)
    if exists:
        check_file(p, what=what, error=error, allow_empty=allow_empty)
    else:
        if not create:
            raise error(f"{what} {p} does not exist")
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise error(f"cannot create {p}: folder {folder} does not exist")
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
            os.close(fd)  # no connection holds the new file yet: closing drops nothing
        except FileExistsError:
            check_file(p, what=what, error=error, allow_empty=True)
        except OSError as exc:
            raise error(f"cannot create {what} {p}: {exc.strerror or exc}") from None
    uri_mode = "ro" if readonly else "rw"
    try:
        conn = sqlite3.connect(
            f"file:{p.absolute()}?mode={uri_mode}",
            uri=True,
            check_same_thread=False,
            isolation_level=None,
            factory=_TrackedConnection,
        )
    except sqlite3.Error as exc:
        raise error(f"cannot open {what} {p}: {exc}") from None
    ident = _identity(p)
    assert isinstance(conn, _TrackedConnection)
    if ident is not None:
        with _lock:
            _open_files[ident] += 1
        conn._wb_ident = ident
    try:
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise error(f"{p} is not a readable {what} ({exc}); it was left untouched") from None
    return conn


def atomic_write(
    path: str | os.PathLike[str],
    build: Callable[[sqlite3.Connection], None],
    *,
    what: str,
    error: ErrorType,
    mode: int = 0o600,
) -> None:
    """Write a complete database to ``path`` atomically: ``build`` fills a temporary file in
    the same folder, which is synced and moved into place with ``os.replace``.

    ``build`` gets an autocommit connection and runs its own transaction(s); the file only
    becomes visible under ``path`` after ``build`` returned and the connection was closed.

    A reader never sees half a file and an existing file is never left half-written. A stale
    ``-wal`` / ``-shm`` of the replaced file is removed so SQLite cannot replay it onto the new
    one.
    """
    p = Path(path)
    if p.is_dir():
        raise error(f"{p} is a directory, not {_a(what)} file")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise error(f"folder {folder} does not exist")
    tmp = folder / f".{p.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    with suppress(FileNotFoundError):
        tmp.unlink()
    try:
        conn = connect(tmp, what=what, error=error, create=True, mode=mode)
        try:
            build(conn)
        finally:
            conn.close()
        with open(tmp, "rb") as fh:  # the connection is closed: no lock to lose
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        for side in ("-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(f"{p}{side}")
        with suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise error(f"cannot write {what} {p}: {exc.strerror or exc}") from None
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def warn_if_readable(path: str | os.PathLike[str]) -> None:
    """Raise an :class:`InsecureFileWarning` when a file that holds private keys, known to be
    ours, can be read by other users (the command line shows it as one line)."""
    problem = insecure_mode(path)
    if problem is not None:
        warnings.warn(problem, InsecureFileWarning, stacklevel=3)


def insecure_mode(path: str | os.PathLike[str]) -> str | None:
    """A sentence when ``path`` can be read by its group or by others, else None.

    Files holding private keys (card images, SE images, the authority store) must be 0600.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):04o}) but "
                f"holds private keys; run: chmod 600 {path}")
    return None

"""The one SQLite helper: foreign files refused untouched, secrets created 0600, and no
open/close of a database file behind a live connection (which would drop the process's POSIX
locks: SQLite's "How To Corrupt An SQLite Database File" 2.2)."""

from __future__ import annotations

import builtins
import os
import sqlite3
import stat
import warnings

import pytest

from workbench import sqlitefile
from workbench.errors import CardImageError, WorkbenchError


class Refused(WorkbenchError):
    pass


def test_new_files_are_private_and_refused_files_stay_untouched(tmp_path) -> None:
    path = tmp_path / "new.db"
    conn = sqlitefile.connect(path, what="test database", error=Refused, create=True)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    with pytest.raises(Refused, match="not a test database .*untouched"):
        sqlitefile.connect(text, what="test database", error=Refused)
    assert text.read_text() == "not a database"
    with pytest.raises(Refused, match="does not exist"):
        sqlitefile.connect(tmp_path / "missing.db", what="test database", error=Refused)
    assert not (tmp_path / "missing.db").exists()


def test_the_header_is_not_read_behind_a_live_connection(tmp_path, monkeypatch) -> None:
    path = tmp_path / "shared.db"
    first = sqlitefile.connect(path, what="db", error=Refused, create=True)
    first.execute("CREATE TABLE t (x)")
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    second = sqlitefile.connect(path, what="db", error=Refused)  # the file is held: no open()
    assert str(path) not in opened
    first.close()
    second.close()
    assert not sqlitefile.is_open_here(path)
    third = sqlitefile.connect(path, what="db", error=Refused)  # nobody holds it: header read
    assert str(path) in opened
    third.close()


def test_a_key_file_others_can_read_is_reported(tmp_path) -> None:
    path = tmp_path / "keys.db"
    conn = sqlitefile.connect(path, what="db", error=Refused, create=True)
    conn.execute("CREATE TABLE k (x)")
    conn.close()
    os.chmod(path, 0o644)
    with pytest.warns(sqlitefile.InsecureFileWarning, match="chmod 600"):
        sqlitefile.warn_if_readable(path)
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sqlitefile.warn_if_readable(path)


def test_atomic_write_leaves_the_old_file_when_the_build_fails(tmp_path) -> None:
    path = tmp_path / "image.db"

    def good(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (x)")

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE u (y)")
        raise CardImageError("build failed")

    sqlitefile.atomic_write(path, good, what="image", error=CardImageError)
    before = path.read_bytes()
    with pytest.raises(CardImageError, match="build failed"):
        sqlitefile.atomic_write(path, bad, what="image", error=CardImageError)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.db"]

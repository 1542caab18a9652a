"""SE image files: a phone secure element's whole state in one SQLite file.

The same rules as the card image (:mod:`workbench.card.image`), through the same helper
(:mod:`workbench.sqlitefile`): written atomically, created 0600 (the file holds the security
domains' keys and the applet's private keys; they are synthetic test keys stored
unencrypted), refused untouched when foreign or corrupt. Changes are committed as they
happen: a registry change (INSTALL, DELETE, SET STATUS, PUT KEY) in one transaction, a retry
counter spent before the PIN is compared, a personalisation sequence (STORE DATA blocks up to
the last one) in one transaction, and each SCP03 sequence counter as it counts.

Tables: ``meta`` (format, version, SE facts, the token's issuance facts), ``key_sets`` (static
SCP03 keys per security domain and KVN), ``counters`` (the SCP03 sequence counter per security
domain), ``registry`` (globalplatform.md 3), ``applets`` (each applet instance's salt and
facts), ``nodes`` (each applet's objects, in the card image's row format).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from workbench import hooks, sqlitefile
from workbench.card.image import CardStore, node_from_row, node_row
from workbench.card.model import Node, PinRef
from workbench.errors import WorkbenchError
from workbench.se.gp import EntryKind, RegistryEntry
from workbench.se.scp03 import StaticKeys

__all__ = ["FORMAT", "FORMAT_VERSION", "SeImageError", "SeImage", "SeStore", "read_image",
           "write_image"]

FORMAT = "jpki-workbench-se-image"
FORMAT_VERSION = 1


class SeImageError(WorkbenchError):
    """An SE image that is missing, unreadable, foreign or of an unknown version."""


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE key_sets (
    sd_aid TEXT NOT NULL, kvn INTEGER NOT NULL, enc BLOB NOT NULL, mac BLOB NOT NULL,
    dek BLOB NOT NULL, PRIMARY KEY (sd_aid, kvn)
);
CREATE TABLE counters (sd_aid TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE registry (
    aid TEXT PRIMARY KEY, ord INTEGER NOT NULL, kind TEXT NOT NULL, life_cycle INTEGER NOT NULL,
    privileges INTEGER NOT NULL, sd_aid TEXT, elf_aid TEXT, module_aid TEXT, modules TEXT
);
CREATE TABLE applets (aid TEXT PRIMARY KEY, salt BLOB NOT NULL, meta TEXT NOT NULL);
CREATE TABLE nodes (
    aid TEXT NOT NULL, fid INTEGER NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    data BLOB, access TEXT, extra TEXT, tries INTEGER,
    PRIMARY KEY (aid, fid)
)
"""


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex().upper()


def _bytes(h: str | None) -> bytes | None:
    return None if h is None else bytes.fromhex(h)


def _entry_row(i: int, e: RegistryEntry) -> tuple[Any, ...]:
    return (_hex(e.aid), i, e.kind.value, e.life_cycle, e.privileges, _hex(e.sd_aid),
            _hex(e.elf_aid), _hex(e.module_aid), json.dumps([m.hex() for m in e.modules]))


def _entry(row: tuple[Any, ...]) -> RegistryEntry:
    aid, _, kind, life_cycle, privileges, sd, elf, module, modules = row
    return RegistryEntry(bytes.fromhex(aid), EntryKind(kind), int(life_cycle), int(privileges),
                         _bytes(sd), _bytes(elf), _bytes(module),
                         tuple(bytes.fromhex(m) for m in json.loads(modules or "[]")))


class SeImage:
    """Everything an SE image holds, in memory (what :func:`read_image` returns and
    :func:`write_image` takes)."""

    def __init__(self, meta: dict[str, Any], key_sets: dict[bytes, list[StaticKeys]],
                 counters: dict[bytes, int], registry: list[RegistryEntry],
                 applets: dict[bytes, tuple[bytes, dict[str, Any], dict[int, Node]]]) -> None:
        self.meta = meta
        self.key_sets = key_sets
        self.counters = counters
        self.registry = registry
        self.applets = applets  # instance AID -> (salt, applet meta, nodes)


class SeStore:
    """Where a secure element keeps its state; the base class keeps it in memory only.

    Every method must be durable on return (the SE answers the APDU only afterwards).
    """

    path: Path | None = None

    def registry_changed(self, registry: list[RegistryEntry],
                         removed_applets: tuple[bytes, ...] = ()) -> None: ...

    def counter_changed(self, sd_aid: bytes, value: int) -> None: ...

    def meta_changed(self, facts: dict[str, Any]) -> None: ...

    def key_sets_changed(self, sd_aid: bytes, key_sets: list[StaticKeys]) -> None: ...

    def applet_added(self, aid: bytes, salt: bytes, meta: dict[str, Any],
                     nodes: dict[int, Node]) -> None: ...

    def applet_store(self, aid: bytes) -> CardStore:
        """The card store of one applet instance (its PINs and personalisation)."""
        return CardStore()

    def close(self) -> None:
        pass


class _AppletStore(CardStore):
    """The :class:`CardStore` of one applet instance inside an SE image."""

    def __init__(self, owner: _SqliteSeStore, aid: bytes) -> None:
        self._owner = owner
        self._aid = aid
        self.path = owner.path

    def pin_changed(self, aid: bytes, fid: int, pin: PinRef) -> None:
        with self._owner._lock:  # autocommit: this UPDATE is its own transaction
            self._owner._conn.execute(
                "UPDATE nodes SET data = ?, tries = ? WHERE aid = ? AND fid = ?",
                (pin.digest, pin.tries_left, aid.hex().upper(), fid))

    def nodes_changed(self, aid: bytes, nodes: dict[int, Node | None]) -> None:
        """One personalisation sequence in one transaction (the same kill point as the card
        image's, ``card:nodes:row-written``, after each row and before the COMMIT)."""
        owner = self._owner
        key = aid.hex().upper()
        with owner._lock, owner._transaction() as conn:
            for fid, node in nodes.items():
                conn.execute("DELETE FROM nodes WHERE aid = ? AND fid = ?", (key, fid))
                if node is not None:
                    conn.execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 node_row(key, fid, node))
                hooks.reached("card:nodes:row-written")


class _SqliteSeStore(SeStore):
    """An SE bound to its image file: every change committed as it happens."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()

    def _transaction(self) -> _Tx:
        return _Tx(self._conn)

    def registry_changed(self, registry: list[RegistryEntry],
                         removed_applets: tuple[bytes, ...] = ()) -> None:
        with self._lock, self._transaction() as conn:
            conn.execute("DELETE FROM registry")
            conn.executemany("INSERT INTO registry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [_entry_row(i, e) for i, e in enumerate(registry)])
            for aid in removed_applets:
                key = aid.hex().upper()
                conn.execute("DELETE FROM nodes WHERE aid = ?", (key,))
                conn.execute("DELETE FROM applets WHERE aid = ?", (key,))

    def counter_changed(self, sd_aid: bytes, value: int) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)",
                               (sd_aid.hex().upper(), value))

    def meta_changed(self, facts: dict[str, Any]) -> None:
        with self._lock, self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v, ensure_ascii=False)) for k, v in facts.items()])

    def key_sets_changed(self, sd_aid: bytes, key_sets: list[StaticKeys]) -> None:
        key = sd_aid.hex().upper()
        with self._lock, self._transaction() as conn:
            conn.execute("DELETE FROM key_sets WHERE sd_aid = ?", (key,))
            conn.executemany("INSERT INTO key_sets VALUES (?, ?, ?, ?, ?)",
                             [(key, k.kvn, k.enc, k.mac, k.dek) for k in key_sets])

    def applet_added(self, aid: bytes, salt: bytes, meta: dict[str, Any],
                     nodes: dict[int, Node]) -> None:
        key = aid.hex().upper()
        with self._lock, self._transaction() as conn:
            conn.execute("DELETE FROM nodes WHERE aid = ?", (key,))
            conn.execute("INSERT OR REPLACE INTO applets VALUES (?, ?, ?)",
                         (key, salt, json.dumps(meta, ensure_ascii=False)))
            conn.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [node_row(key, fid, n) for fid, n in nodes.items()])

    def applet_store(self, aid: bytes) -> CardStore:
        return _AppletStore(self, aid)

    def close(self) -> None:
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error) on an autocommit
    connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


def write_image(path: str | os.PathLike[str], image: SeImage) -> None:
    """Write a complete SE image atomically (mode 0600)."""

    def build(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        rows = [("format", FORMAT), ("version", str(FORMAT_VERSION))]
        rows += [(k, json.dumps(v, ensure_ascii=False)) for k, v in image.meta.items()]
        conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
        for sd, sets in image.key_sets.items():
            conn.executemany("INSERT INTO key_sets VALUES (?, ?, ?, ?, ?)",
                             [(sd.hex().upper(), k.kvn, k.enc, k.mac, k.dek) for k in sets])
        conn.executemany("INSERT INTO counters VALUES (?, ?)",
                         [(sd.hex().upper(), v) for sd, v in image.counters.items()])
        conn.executemany("INSERT INTO registry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [_entry_row(i, e) for i, e in enumerate(image.registry)])
        for aid, (salt, meta, nodes) in image.applets.items():
            key = aid.hex().upper()
            conn.execute("INSERT INTO applets VALUES (?, ?, ?)",
                         (key, salt, json.dumps(meta, ensure_ascii=False)))
            conn.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [node_row(key, fid, n) for fid, n in nodes.items()])
        conn.execute("COMMIT")

    sqlitefile.atomic_write(Path(path), build, what="SE image", error=SeImageError)


def is_se_image(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an SQLite file whose meta says it is an SE image (read only)."""
    try:
        conn = sqlitefile.connect(path, what="SE image", error=SeImageError, readonly=True)
    except SeImageError:
        return False
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        return row is not None and row[0] == FORMAT
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def read_image(path: str | os.PathLike[str]) -> tuple[SeImage, SeStore]:
    """Open an SE image for use; the returned store writes every change back to it."""
    p = Path(path)
    if not os.path.lexists(p):
        raise SeImageError(f"SE image {p} does not exist (create one with 'se new')")
    conn = sqlitefile.connect(p, what="SE image", error=SeImageError)
    try:
        conn.execute("PRAGMA query_only = ON")
        status = conn.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise SeImageError(f"SE image {p} is corrupt ({status}); it was left untouched")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "key_sets", "counters", "registry", "applets", "nodes"} <= tables:
            raise SeImageError(f"{p} is an SQLite file but not an SE image; it was left "
                               "untouched")
        raw_meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if raw_meta.get("format") != FORMAT:
            raise SeImageError(f"{p} is an SQLite file but not an SE image; it was left "
                               "untouched")
        if raw_meta.get("version") != str(FORMAT_VERSION):
            raise SeImageError(f"SE image {p} has format version {raw_meta.get('version')}, "
                               f"this workbench reads version {FORMAT_VERSION}")
        meta = {k: json.loads(v) for k, v in raw_meta.items() if k not in ("format", "version")}
        sqlitefile.warn_if_readable(p)  # ours, and it holds keys
        key_sets: dict[bytes, list[StaticKeys]] = {}
        for sd, kvn, enc, mac, dek in conn.execute(
                "SELECT sd_aid, kvn, enc, mac, dek FROM key_sets ORDER BY sd_aid, kvn"):
            key_sets.setdefault(bytes.fromhex(sd), []).append(
                StaticKeys(bytes(enc), bytes(mac), bytes(dek), kvn=int(kvn)))
        counters = {bytes.fromhex(sd): int(v)
                    for sd, v in conn.execute("SELECT sd_aid, value FROM counters")}
        registry = [_entry(r) for r in conn.execute("SELECT * FROM registry ORDER BY ord")]
        applets: dict[bytes, tuple[bytes, dict[str, Any], dict[int, Node]]] = {}
        for aid, salt, ameta in conn.execute("SELECT aid, salt, meta FROM applets"):
            nodes = {row[0]: node_from_row(*row[1:]) for row in conn.execute(
                "SELECT fid, kind, label, data, access, extra, tries FROM nodes WHERE aid = ? "
                "ORDER BY fid", (aid,))}
            applets[bytes.fromhex(aid)] = (bytes(salt), json.loads(ameta), nodes)
        conn.execute("PRAGMA query_only = OFF")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except SeImageError:
        conn.close()
        raise
    except (sqlite3.Error, ValueError, KeyError, TypeError, WorkbenchError) as exc:
        conn.close()
        raise SeImageError(f"SE image {p} is corrupt ({exc}); it was left untouched") from None
    return SeImage(meta, key_sets, counters, registry, applets), _SqliteSeStore(p, conn)

"""Card image files: a card's whole state in one SQLite file (stdlib ``sqlite3``).

Why SQLite: a VERIFY must persist the decremented retry counter *before* the PIN is compared
(real cards do this against tearing, issue 2), and that write must be small, atomic and
survive a killed process. SQLite gives exactly that: one UPDATE in a transaction. The image
runs in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed
(it is in the OS), not necessarily a power cut.

A new image is written to a temporary file in the same folder and moved into place with
``os.replace``, so a reader never sees half an image and an existing file is never left
half-written. An unreadable or foreign file raises :class:`CardImageError` and is never
written to.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from workbench import hooks, sqlitefile
from workbench.card.model import Application, BinaryEF, KeyRef, Node, PinRef, RecordEF
from workbench.card.pin import PinPolicy
from workbench.errors import CardImageError

FORMAT = "jpki-workbench-card-image"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apps (
    aid TEXT PRIMARY KEY, ord INTEGER NOT NULL, name TEXT NOT NULL,
    own_key BLOB, session_key_sw INTEGER NOT NULL
);
CREATE TABLE nodes (
    aid TEXT NOT NULL, fid INTEGER NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    data BLOB, access TEXT, extra TEXT, tries INTEGER,
    PRIMARY KEY (aid, fid)
);
"""


def _key_der(key: rsa.RSAPrivateKey | None) -> bytes | None:
    if key is None:
        return None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(der: bytes | None) -> rsa.RSAPrivateKey | None:
    if der is None:
        return None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CardImageError("card image holds a key that is not RSA")
    return key


def _policy_json(policy: PinPolicy) -> str:
    return json.dumps(
        {
            "name": policy.name,
            "label": policy.label,
            "min_length": policy.min_length,
            "max_length": policy.max_length,
            "charset": bytes(sorted(policy.charset)).decode("ascii"),
            "max_tries": policy.max_tries,
            "letter_and_digit": policy.letter_and_digit,
            "changeable": policy.changeable,
            "always_blocked": policy.always_blocked,
        },
        ensure_ascii=False,
    )


def _policy_from_json(text: str) -> PinPolicy:
    d = json.loads(text)
    d["charset"] = frozenset(d["charset"].encode("ascii"))
    return PinPolicy(**d)


def node_row(aid: str, fid: int, node: Node) -> tuple[Any, ...]:
    access = None if getattr(node, "access", None) is None else json.dumps(list(node.access))
    if isinstance(node, BinaryEF):
        return (aid, fid, "binary", node.label, node.data, access, None, None)
    if isinstance(node, RecordEF):
        return (aid, fid, "record", node.label, None, access, json.dumps([r.hex() for r in node.records]), None)
    if isinstance(node, KeyRef):
        return (aid, fid, "key", node.label, _key_der(node.key), access, json.dumps({"usage": node.usage}), None)
    return (aid, fid, "pin", node.label, node.digest, None, _policy_json(node.policy), node.tries_left)


def node_from_row(kind: str, label: str, data: bytes | None, access: str | None, extra: str | None, tries: int | None) -> Node:
    acc = None if access is None else tuple(json.loads(access))
    if kind == "binary":
        return BinaryEF(bytes(data or b""), acc, label)
    if kind == "record":
        return RecordEF([bytes.fromhex(r) for r in json.loads(extra or "[]")], acc, label)
    if kind == "key":
        return KeyRef(_load_key(data), acc, json.loads(extra or "{}").get("usage", "sign"), label)
    if kind == "pin":
        return PinRef(_policy_from_json(extra or "{}"), bytes(data or b""), int(tries or 0), label)
    raise CardImageError(f"card image has a node of unknown kind {kind!r}")


class CardStore:
    """Where a card keeps its state. The base class keeps it in memory only."""

    path: Path | None = None

    def pin_changed(self, aid: bytes, fid: int, pin: PinRef) -> None:
        """Persist a PIN reference's digest and counter. Must be durable on return."""

    def nodes_changed(self, aid: bytes, nodes: dict[int, Node | None]) -> None:
        """Persist new or replaced objects of application ``aid`` (``None``: removed) in one
        transaction: all of them or none (a personalisation step, see
        :class:`workbench.card.virtual_card.Personalisation`)."""

    def close(self) -> None:
        pass


class SqliteStore(CardStore):
    """A card bound to an image file: every PIN change is committed as it happens."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()

    def pin_changed(self, aid: bytes, fid: int, pin: PinRef) -> None:
        # The connection is in autocommit mode: this one UPDATE is its own transaction,
        # committed (to the WAL) when execute() returns.
        with self._lock:
            self._conn.execute(
                "UPDATE nodes SET data = ?, tries = ? WHERE aid = ? AND fid = ?",
                (pin.digest, pin.tries_left, aid.hex().upper(), fid),
            )

    def nodes_changed(self, aid: bytes, nodes: dict[int, Node | None]) -> None:
        key = aid.hex().upper()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for fid, node in nodes.items():
                    self._conn.execute("DELETE FROM nodes WHERE aid = ? AND fid = ?", (key, fid))
                    if node is not None:
                        self._conn.execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                           node_row(key, fid, node))
                    hooks.reached("card:nodes:row-written")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()


def write_image(
    path: Path,
    meta: dict[str, Any],
    apps: list[Application],
) -> None:
    """Write a complete image atomically (:func:`workbench.sqlitefile.atomic_write`, mode 0600:
    the image holds private keys)."""

    def build(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        rows = [("format", FORMAT), ("version", str(FORMAT_VERSION))]
        rows += [(k, json.dumps(v, ensure_ascii=False)) for k, v in meta.items()]
        conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
        for i, app in enumerate(apps):
            aid = app.aid.hex().upper()
            conn.execute(
                "INSERT INTO apps VALUES (?, ?, ?, ?, ?)",
                (aid, i, app.name, _key_der(app.own_key), app.session_key_sw),
            )
            conn.executemany(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [node_row(aid, fid, node) for fid, node in app.nodes.items()],
            )
        conn.execute("COMMIT")

    sqlitefile.atomic_write(Path(path), build, what="card image", error=CardImageError)


def read_image(path: Path) -> tuple[dict[str, Any], list[Application], SqliteStore]:
    """Open an image for use; the returned store writes PIN changes back to it."""
    path = Path(path)
    if not os.path.lexists(path):
        raise CardImageError(f"card image {path} does not exist (create one with 'card new')")
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlitefile.connect(path, what="card image", error=CardImageError)
        conn.execute("PRAGMA query_only = ON")
        status = conn.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise CardImageError(f"card image {path} is corrupt ({status}); it was left untouched")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"meta", "apps", "nodes"} <= tables:
            raise CardImageError(f"{path} is an SQLite file but not a card image; it was left untouched")
        meta_rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta_rows.get("format") != FORMAT:
            raise CardImageError(f"{path} is an SQLite file but not a card image; it was left untouched")
        if meta_rows.get("version") != str(FORMAT_VERSION):
            raise CardImageError(
                f"card image {path} has format version {meta_rows.get('version')}, "
                f"this workbench reads version {FORMAT_VERSION}"
            )
        meta = {k: json.loads(v) for k, v in meta_rows.items() if k not in ("format", "version")}
        sqlitefile.warn_if_readable(path)  # ours, and it holds private keys
        apps: list[Application] = []
        for aid, name, own_key, sw in conn.execute(
            "SELECT aid, name, own_key, session_key_sw FROM apps ORDER BY ord"
        ):
            app = Application(bytes.fromhex(aid), name, {}, _load_key(own_key), sw)
            for row in conn.execute(
                "SELECT fid, kind, label, data, access, extra, tries FROM nodes WHERE aid = ? ORDER BY fid",
                (aid,),
            ):
                app.nodes[row[0]] = node_from_row(*row[1:])
            apps.append(app)
        conn.execute("PRAGMA query_only = OFF")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except CardImageError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        if conn is not None:
            conn.close()
        raise CardImageError(f"card image {path} is corrupt ({exc}); it was left untouched") from None
    return meta, apps, SqliteStore(path, conn)


def iter_pin_rows(path: Path) -> Iterator[tuple[str, int, int]]:
    """(aid, fid, tries) of every PIN in an image, read without opening the card (for tests)."""
    conn = sqlitefile.connect(path, what="card image", error=CardImageError, readonly=True)
    try:
        yield from conn.execute("SELECT aid, fid, tries FROM nodes WHERE kind = 'pin'")
    finally:
        conn.close()

"""A simulated authority that survives restarts: identity, settings and registry in one file.

The CLI (``card new --authority``, ``pki revoke``, ``pki crl``) and the HTTP repository run as
separate processes, yet must act as one authority: the same CA keys signing CRLs and OCSP
responses, the same profile options (repository URL, CRL interval, jpki-card.md 9.7 MODEL), and
one revocation registry. So the store keeps, in the registry's SQLite file:

- the authority's **seed** (random 32 bytes when none is given): every CA key, CA serial and
  card-verifiable issuer key is derived from it, so the authority is the same after a restart;
- the **profile** (every :class:`AuthorityProfile` field, as JSON), fixed at creation;
- the CA keys and certificates once made, as a cache: seeded keys cost about half a second
  each to derive in pure Python. They are synthetic, test-only keys stored unencrypted.

A missing file (without ``create=True``), a file that is not SQLite, or a SQLite file of
another application is refused with one line, and the file is not modified.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ObjectIdentifier

from workbench import sqlitefile
from workbench.errors import PkiError
from workbench.pki.authority import Authority, CertificateAuthority
from workbench.pki.clock import Clock, SystemClock
from workbench.pki.crl import publish
from workbench.pki.profiles import AuthorityProfile, Generation, Hierarchy
from workbench.pki.registry import PublishedCrl, Registry, RegistryError

__all__ = ["STORE_SCHEMA", "AuthorityStore", "StoreError"]

STORE_SCHEMA = "jpki-workbench-authority/1"

_STORE_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS authority (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seed       TEXT NOT NULL,
    profile    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ca_keys (
    hierarchy  TEXT NOT NULL,
    generation INTEGER NOT NULL,
    key_der    BLOB NOT NULL,
    cert_der   BLOB NOT NULL,
    PRIMARY KEY (hierarchy, generation)
)
"""


class StoreError(PkiError):
    """The authority database is missing, not ours, or disagrees with what was asked."""


# --- settings as JSON ------------------------------------------------------------------------

def _seed_to_json(seed: bytes | int | str) -> str:
    if isinstance(seed, bytes | bytearray):
        return json.dumps({"type": "bytes", "hex": bytes(seed).hex()})
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        raise StoreError(f"a seed must be bytes, int or str, not {type(seed).__name__}")
    return json.dumps({"type": type(seed).__name__, "value": seed}, ensure_ascii=False)


def _seed_from_json(text: str) -> bytes | int | str:
    data = json.loads(text)
    if data["type"] == "bytes":
        return bytes.fromhex(data["hex"])
    if data["type"] in ("int", "str"):
        return data["value"]
    raise ValueError(f"unknown seed type {data['type']!r}")


def _profile_to_json(profile: AuthorityProfile) -> str:
    out: dict[str, Any] = {}
    for f in fields(profile):
        value = getattr(profile, f.name)
        if isinstance(value, ObjectIdentifier):
            value = {"oid": value.dotted_string}
        elif isinstance(value, timedelta):
            value = {"seconds": int(value.total_seconds())}
        elif f.name == "generations":
            value = [[g.number, g.not_before.isoformat(), g.not_after.isoformat()] for g in value]
        out[f.name] = value
    return json.dumps(out, ensure_ascii=False, sort_keys=True)


def _profile_from_json(text: str) -> AuthorityProfile:
    data = json.loads(text)
    known = {f.name for f in fields(AuthorityProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"profile fields {unknown} are unknown to this version")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and "oid" in value:
            value = ObjectIdentifier(value["oid"])
        elif isinstance(value, dict) and "seconds" in value:
            value = timedelta(seconds=value["seconds"])
        elif name == "generations":
            value = tuple(Generation(n, datetime.fromisoformat(a), datetime.fromisoformat(b))
                          for n, a, b in value)
        kwargs[name] = value
    return AuthorityProfile(**kwargs)


def _read_settings(conn: sqlite3.Connection, path: Path) -> tuple[str, str] | None:
    """(seed JSON, profile JSON) of an existing authority database; None if it has none yet.

    Reads only: a file that turns out not to be ours is left exactly as it was.
    """
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        schema = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'authority_schema'").fetchone()
            schema = row[0] if row else None
        if schema is None:
            raise StoreError(f"{path} is a SQLite database but not a jpki-workbench authority "
                             "database; it was left untouched")
        if schema != STORE_SCHEMA:
            raise StoreError(f"{path} has authority schema {schema!r}; this version reads "
                             f"{STORE_SCHEMA!r}")
        row = conn.execute("SELECT seed, profile FROM authority WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable authority database ({exc}); it was left "
                         "untouched") from None
    if row is None:
        raise StoreError(f"{path} has no authority settings (an interrupted creation?); "
                         "delete it and create the authority again")
    return row[0], row[1]


class AuthorityStore:
    """An :class:`Authority` and its :class:`Registry`, persisted in one SQLite file.

    Use :meth:`open`. Attributes: ``authority``, ``registry``, ``clock`` (shared by both),
    ``path``. Cards are issued through it by :func:`workbench.lifecycle.issue_card`, which
    registers the new certificates here, so OCSP and CRLs know them at once.
    """

    def __init__(self, path: Path, authority: Authority, registry: Registry,
                 conn: sqlite3.Connection) -> None:
        self.path = path
        self.authority = authority
        self.registry = registry
        self.clock: Clock = authority.clock
        self._conn: sqlite3.Connection | None = conn
        self._stored_cas: set[tuple[str, int]] = set()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = False,
        profile: AuthorityProfile | None = None,
        clock: Clock | None = None,
        seed: bytes | int | str | None = None,
    ) -> AuthorityStore:
        """Open the authority stored at ``path``; with ``create=True`` make it if missing.

        On creation ``profile`` (default :class:`AuthorityProfile`) and ``seed`` (default:
        fresh random bytes) are stored for good. Opening an existing store with a different
        ``profile`` or ``seed`` is an error rather than a silent switch of identity.
        """
        path = Path(path)
        clock = clock if clock is not None else SystemClock()
        if profile is not None and not isinstance(profile, AuthorityProfile):
            raise StoreError(f"profile must be an AuthorityProfile, not {type(profile).__name__}")
        settings = None
        if not path.exists() and not create:
            raise StoreError(f"no authority database at {path}; create one first (e.g. "
                             f"`jpki-workbench pki init --db {path}`)")
        # The one SQLite helper refuses foreign files untouched, creates new ones 0600 (the
        # store holds CA keys) and never re-reads the header behind a live connection.
        conn = sqlitefile.connect(path, what="authority database", error=StoreError,
                                  create=create, pragmas=("busy_timeout = 10000",))
        try:
            settings = _read_settings(conn, path)
        except BaseException:
            conn.close()
            raise
        if settings is not None:
            sqlitefile.warn_if_readable(path)  # an authority store: it holds the CA keys
        try:
            if settings is None:
                if not create:
                    raise StoreError(f"{path} is an empty database, not an authority; open it "
                                     "with create=True to make one there")
                chosen_profile = profile if profile is not None else AuthorityProfile()
                chosen_seed = seed if seed is not None else secrets.token_bytes(32)
                settings = (_seed_to_json(chosen_seed), _profile_to_json(chosen_profile))
                cls._create(conn, *settings, clock)
            seed_json, profile_json = settings
            try:
                stored_seed = _seed_from_json(seed_json)
                stored_profile = _profile_from_json(profile_json)
            except (ValueError, KeyError, TypeError, PkiError) as exc:
                raise StoreError(f"{path}: unreadable authority settings ({exc})") from None
            if profile is not None and profile != stored_profile:
                raise StoreError(f"{path} already holds an authority with a different profile; "
                                 "its profile is fixed at creation")
            if seed is not None and _seed_to_json(seed) != seed_json:
                raise StoreError(f"{path} already holds an authority with a different seed")
            authority = Authority(seed=stored_seed, profile=stored_profile, clock=clock)
            stored = cls._load_cas(conn, authority, path)
            registry = Registry(path, clock)
        except BaseException:
            conn.close()
            raise
        store = cls(path, authority, registry, conn)
        store._stored_cas = stored
        return store

    @staticmethod
    def _create(conn: sqlite3.Connection, seed_json: str, profile_json: str,
                clock: Clock) -> None:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _STORE_TABLES.split(";\n"):
                conn.execute(statement)
            conn.execute("INSERT INTO authority (id, seed, profile, created_at) VALUES "
                         "(1, ?, ?, ?)",
                         (seed_json, profile_json, clock.now().astimezone(UTC).isoformat()))
            conn.execute("INSERT INTO meta (key, value) VALUES ('authority_schema', ?)",
                         (STORE_SCHEMA,))
            conn.execute("INSERT INTO meta (key, value) VALUES ('key_material', 'synthetic "
                         "simulated CA keys, test only, stored unencrypted')")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot create the authority database: {exc}") from None

    @staticmethod
    def _load_cas(conn: sqlite3.Connection, authority: Authority,
                  path: Path) -> set[tuple[str, int]]:
        loaded: set[tuple[str, int]] = set()
        try:
            rows = conn.execute("SELECT hierarchy, generation, key_der, cert_der FROM ca_keys")
            for h, n, key_der, cert_der in rows:
                key = serialization.load_der_private_key(bytes(key_der), password=None)
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise ValueError("not an RSA key")
                cert = x509.load_der_x509_certificate(bytes(cert_der))
                gen = authority.profile.generation(n)
                authority.adopt_ca(CertificateAuthority(Hierarchy(h), gen, key, cert))
                loaded.add((h, n))
        except (sqlite3.DatabaseError, ValueError, PkiError) as exc:
            raise StoreError(f"{path}: stored CA keys are unreadable ({exc})") from None
        return loaded

    def _persist_cas(self) -> None:
        """Cache newly made CA keys and certificates (derived from the seed, so this is only
        about speed; a lost cache entry is derived again)."""
        conn = self._connection()
        new = [ca for ca in self.authority.created_cas
               if (ca.hierarchy.value, ca.generation.number) not in self._stored_cas]
        if not new:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            for ca in new:
                key_der = ca.private_key.private_bytes(
                    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption())
                conn.execute("INSERT OR IGNORE INTO ca_keys (hierarchy, generation, key_der, "
                             "cert_der) VALUES (?, ?, ?, ?)",
                             (ca.hierarchy.value, ca.generation.number, key_der,
                              ca.certificate.public_bytes(serialization.Encoding.DER)))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot store CA keys in {self.path}: {exc}") from None
        self._stored_cas.update((ca.hierarchy.value, ca.generation.number) for ca in new)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the authority store {self.path} is closed")
        return self._conn

    # -- the authority's work ---------------------------------------------------------------

    def ca(self, hierarchy: Hierarchy | str, generation: int) -> CertificateAuthority:
        """The CA of ``hierarchy`` in ``generation``, registered so OCSP and the ARL know it."""
        ca = self.authority.ca(hierarchy, generation)
        self.registry.register(ca.certificate)
        self._persist_cas()
        return ca

    def register_issued(self, certificates: list[x509.Certificate], *, partition: str | None,
                        token: str | None) -> None:
        """Register a token's freshly issued certificates (end-entity and CA) in one
        transaction, and keep any CA key made for them (see :func:`workbench.lifecycle.issue_card`).
        """
        self._connection()
        self.registry.register_many(certificates, partition=partition, token=token)
        self._persist_cas()

    def publish(self, hierarchy: Hierarchy | str, generation: int | None = None,
                partition: str | None = None, at: datetime | None = None, *,
                arl: bool = False) -> PublishedCrl:
        """The CRL (or ARL) publication in force at ``at``; see :func:`workbench.pki.crl.publish`."""
        published = publish(self, hierarchy, generation, partition, at, arl=arl)
        self._persist_cas()
        return published

    def crl(self, hierarchy: Hierarchy | str, generation: int | None = None,
            partition: str | None = None, at: datetime | None = None) -> bytes:
        """DER of the full or partitioned CRL in force at ``at``."""
        return self.publish(hierarchy, generation, partition, at).der

    def arl(self, hierarchy: Hierarchy | str, generation: int | None = None,
            at: datetime | None = None) -> bytes:
        """DER of the ARL in force at ``at``."""
        return self.publish(hierarchy, generation, None, at, arl=True).der

    # -- life cycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Persist any new CA keys and close the database."""
        if self._conn is None:
            return
        try:
            self._persist_cas()
        except (StoreError, RegistryError):
            pass  # only a cache; closing must not fail because of it
        finally:
            self.registry.close()
            self._conn.close()
            self._conn = None

    def __enter__(self) -> AuthorityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuthorityStore({self.path}, {self.authority!r})"

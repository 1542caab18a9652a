"""The revocation registry: which certificate the authority issued, held, released or revoked, when.

It is the single source both revocation channels publish from (smartphone-service.md 11.3):
OCSP reads :meth:`Registry.status` the moment a change is recorded, CRLs read
:meth:`Registry.entries_for_crl` at their next publication (:mod:`workbench.pki.crl`).

State machine (smartphone-service.md 8, 9, 10 and the MODEL of 15.8)::

    issue → good ──hold (一時利用停止, hotline)──→ held ──release (解除)──→ good
            good | held ──revoke──→ revoked   (final: a revoked certificate never comes back)

Storage is SQLite from the standard library, in WAL mode with ``synchronous=FULL``. Every change
is one ``BEGIN IMMEDIATE … COMMIT`` transaction that appends to an append-only event log (UPDATE
and DELETE are refused by triggers) and updates the certificate's current-state row, so a
process killed between the two statements leaves neither a lost nor a half-written revocation:
SQLite rolls the open transaction back when the database is next opened.

Times are aware UTC datetimes with whole seconds, as X.509 carries them (RFC 5280 4.1.2.5,
5.1.2.4); anything finer is truncated. :meth:`Registry.status` is history-aware: it answers as of
any moment, so a certificate revoked at T is good at T − 1 s. Expiry is not a registry state:
the registry keeps answering for an expired certificate exactly as it did before Not After (a
relying party checks validity separately; RFC 5280 6.1.3), and CRLs keep listing revoked
entries after expiry, which RFC 5280 5.1.2.6 allows.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from workbench import hooks, sqlitefile
from workbench.errors import PkiError
from workbench.pki.clock import Clock, SystemClock, as_utc
from workbench.pki.describe import certificate_kind, format_name
from workbench.pki.profiles import OU_AUTH, OU_SIGN, Hierarchy, check_partition
from workbench.pki.status import CertState, CertStatus, RevocationReason

__all__ = [
    "CrlEntry",
    "PublishedCrl",
    "RegisteredCertificate",
    "Registry",
    "RegistryAction",
    "RegistryError",
    "RegistryEvent",
    "RegistryWatch",
]

#: Written into the ``meta`` table; a file with another value is not opened.
REGISTRY_SCHEMA = "jpki-workbench-registry/1"

#: RFC 5280 4.1.2.2: a serial is at most 20 octets. Stored fixed-width, big-endian, so that
#: SQLite's byte-wise BLOB order is numeric order.
SERIAL_OCTETS = 20

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

#: Scopes of revocation lists and of their distribution points (see :mod:`workbench.pki.crl`).
SCOPE_FULL = "full"
SCOPE_ARL = "arl"
_PARTITION_PREFIX = "partition:"


def partition_scope(partition: str) -> str:
    """The scope key of one municipality's partitioned CRL (jpki-card.md 9.7)."""
    return _PARTITION_PREFIX + check_partition(partition)


class RegistryError(PkiError):
    """A registry operation that the revocation rules or the database refuse."""


class RegistryAction(StrEnum):
    """What an event did to a certificate (smartphone-service.md 15.8)."""

    ISSUE = "issue"
    HOLD = "hold"  # 一時利用停止 (loss/theft hotline, 9.1): listed with certificateHold
    RELEASE = "release"  # 一時利用停止の解除 (9.2): removeFromCRL in a delta CRL, good again
    REVOKE = "revoke"  # 失効: final


@dataclass(frozen=True)
class RegistryEvent:
    """One line of a certificate's append-only history.

    ``at`` is when the change takes effect (what status, OCSP and CRLs use); ``recorded_at`` is
    when the registry wrote it (the clock at that moment). ``reason`` is set for hold
    (certificateHold) and revoke.
    """

    seq: int
    serial: int
    issuer_key_id: bytes
    action: RegistryAction
    reason: RevocationReason | None
    at: datetime
    recorded_at: datetime
    invalidity_date: datetime | None = None


@dataclass(frozen=True)
class RegisteredCertificate:
    """What the registry knows about one certificate, with its current state."""

    serial: int
    issuer_key_id: bytes
    subject: str
    not_before: datetime
    not_after: datetime
    kind: str  # "ca", "sign", "auth" or "unknown" (describe.certificate_kind)
    hierarchy: Hierarchy | None
    token: str | None  # "icc", "gpse" when known
    partition: str | None  # municipality code (or name) of its CRL distribution point
    fingerprint: bytes | None  # SHA-256 of the DER; None for bulk-registered serials
    state: CertState
    since: datetime | None
    reason: RevocationReason | None


class CrlEntry(NamedTuple):
    """One revokedCertificates entry: serial, revocationDate, reason (RFC 5280 5.1.2.6)."""

    serial: int
    since: datetime
    reason: RevocationReason


@dataclass(frozen=True, repr=False)
class PublishedCrl:
    """A CRL as published: immutable once stored, so every later fetch gets the same bytes."""

    issuer_key_id: bytes
    scope: str
    number: int
    this_update: datetime
    next_update: datetime
    der: bytes

    def __repr__(self) -> str:
        return (f"PublishedCrl({self.scope}, number={self.number}, "
                f"this_update={self.this_update.isoformat()}, {len(self.der)} bytes)")


def _checkpoint(point: str) -> None:
    """A named point inside a write transaction (:mod:`workbench.hooks`): tests kill a real
    child process here and check that nothing half-written survives."""
    hooks.reached(f"registry:{point}")


# --- conversions -----------------------------------------------------------------------------

def _seconds(t: datetime, what: str = "time") -> int:
    """Whole seconds since 1970 (floor), the registry's time unit."""
    return (as_utc(t, what) - _EPOCH) // _SECOND


def _time(s: int | None) -> datetime | None:
    return None if s is None else _EPOCH + timedelta(seconds=s)


def _serial_key(serial: object) -> bytes:
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise RegistryError(f"serial must be an int, not {type(serial).__name__}")
    if not 0 <= serial < 1 << (8 * SERIAL_OCTETS):
        raise RegistryError(f"serial {serial} is outside 0 .. 2^160 - 1 (RFC 5280 4.1.2.2)")
    return serial.to_bytes(SERIAL_OCTETS, "big")


def _serial_int(key: bytes) -> int:
    return int.from_bytes(key, "big")


def _hex(serial: int) -> str:
    return f"0x{serial:X}"


def _key_id(value: object, what: str = "issuer_key_id") -> bytes:
    if not isinstance(value, bytes | bytearray) or not value:
        raise RegistryError(f"{what} must be non-empty bytes (the issuing CA's key identifier)")
    return bytes(value)


def _reason(value: str | None) -> RevocationReason | None:
    return None if value is None else RevocationReason(value)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    issuer_key_id   BLOB NOT NULL,
    serial          BLOB NOT NULL,
    fingerprint     BLOB,
    subject         TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    hierarchy       TEXT,
    token           TEXT,
    partition       TEXT,
    state           TEXT NOT NULL CHECK (state IN ('good', 'held', 'revoked')),
    since           INTEGER,
    reason          TEXT,
    invalidity_date INTEGER,
    last_at         INTEGER NOT NULL,
    PRIMARY KEY (issuer_key_id, serial)
);
CREATE INDEX IF NOT EXISTS certificates_by_serial ON certificates (serial);
CREATE INDEX IF NOT EXISTS certificates_flagged
    ON certificates (issuer_key_id, serial) WHERE state != 'good';
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer_key_id   BLOB NOT NULL,
    serial          BLOB NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('issue', 'hold', 'release', 'revoke')),
    reason          TEXT,
    at              INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    invalidity_date INTEGER,
    FOREIGN KEY (issuer_key_id, serial) REFERENCES certificates (issuer_key_id, serial)
);
CREATE INDEX IF NOT EXISTS events_by_certificate ON events (issuer_key_id, serial, seq);
CREATE INDEX IF NOT EXISTS events_changes ON events (issuer_key_id, at) WHERE action != 'issue';
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the revocation history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the revocation history is append-only'); END;
CREATE TABLE IF NOT EXISTS distribution_points (
    issuer_key_id BLOB NOT NULL,
    scope         TEXT NOT NULL,
    dp_name       BLOB NOT NULL,
    PRIMARY KEY (issuer_key_id, scope)
);
CREATE TABLE IF NOT EXISTS crl_publications (
    issuer_key_id BLOB NOT NULL,
    scope         TEXT NOT NULL,
    this_update   INTEGER NOT NULL,
    next_update   INTEGER NOT NULL,
    number        INTEGER NOT NULL,
    der           BLOB NOT NULL,
    published_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer_key_id, scope, this_update)
);
"""

#: Tables this module creates; a database holding other tables belongs to someone else unless
#: our ``meta`` row says otherwise (the authority store adds its own next to these).
_OWN_TABLES = {"meta", "certificates", "events", "distribution_points", "crl_publications",
               "sqlite_sequence"}


@dataclass(frozen=True)
class _Record:
    """A certificate row about to be inserted (internal)."""

    issuer_key_id: bytes
    serial: bytes
    fingerprint: bytes | None
    subject: str
    not_before: int
    not_after: int
    kind: str
    hierarchy: str | None
    token: str | None
    partition: str | None
    dp_scope: str | None
    dp_name: bytes | None


def _hierarchy_of(issuer: x509.Name) -> str | None:
    """sign or auth from the issuer DN's OU (jpki-card.md 9.2); None for foreign issuers."""
    ous = {a.value for a in issuer.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)}
    if OU_SIGN in ous:
        return Hierarchy.SIGN.value
    if OU_AUTH in ous:
        return Hierarchy.AUTH.value
    return None


def _distribution_point_name(der: bytes) -> bytes | None:
    """DER of the DistributionPointName that a partitioned CRL's IDP must repeat.

    The first distribution point holding a directoryName (the real profile's shape, 9.7),
    else the first one with a name; ``None`` if the certificate has no CRLDP.
    """
    cert = asn1_x509.Certificate.load(der)
    points = cert.crl_distribution_points_value
    if points is None:
        return None
    chosen = None
    for point in points:
        name = point["distribution_point"]
        if name.native is None:
            continue
        if chosen is None:
            chosen = name
        if name.name == "full_name" and any(g.name == "directory_name" for g in name.chosen):
            chosen = name
            break
    if chosen is None:
        return None
    # The field is [0] EXPLICIT (DistributionPointName is a CHOICE); keep only the choice itself.
    return asn1_parser.parse(chosen.dump(force=True))[4]


class RegistryWatch:
    """Tells whether the registry's database changed, without reading any certificate.

    SQLite's ``PRAGMA data_version`` on a connection of our own changes whenever any *other*
    connection commits (https://sqlite.org/pragma.html#pragma_data_version): the registry's
    own connection in this process, or ``pki revoke`` in another process. It costs
    microseconds where a status lookup costs tens, so the OCSP responder checks it on every
    request. It only works while every connection keeps its POSIX locks, which is why every
    connection is made by :mod:`workbench.sqlitefile`.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlitefile.connect(path, what="registry database", error=RegistryError)
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Registry:
    """The authority's revocation registry (see the module docstring for the rules).

    ``path``: a SQLite file, created if missing; ``None`` keeps everything in memory. ``clock``
    supplies "now" (default time of changes, ``recorded_at``, and status queries without
    ``at``); pass the authority's clock so that the whole simulation shares one time.

    One instance may be shared by threads (an HTTP server's handlers); several processes may
    open the same file (WAL), writes are serialized by SQLite.
    """

    def __init__(self, path: str | Path | None, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.path: Path | None = None if path is None else Path(path)
        self._lock = threading.RLock()
        self._published: OrderedDict[tuple[bytes, str, int], PublishedCrl] = OrderedDict()
        self._conn: sqlite3.Connection | None = self._open()

    # -- opening ----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            # Through the one SQLite helper: it never re-reads the header of a file this
            # process already holds (the authority store opens it first), because closing any
            # descriptor of a database file drops the process's locks on it (sqlitefile).
            conn = sqlitefile.connect(self.path, what="registry database", error=RegistryError,
                                      create=True, allow_empty=True)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        where = "in-memory registry" if self.path is None else str(self.path)
        try:
            # Read before writing anything: a file that is not ours stays byte-identical.
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            schema = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key = 'registry_schema'").fetchone()
                schema = row[0] if row else None
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"{where} is not a readable registry database ({exc}); it was "
                                "left untouched") from None
        if schema is not None and schema != REGISTRY_SCHEMA:
            raise RegistryError(f"{where} has registry schema {schema!r}; this version reads "
                                f"{REGISTRY_SCHEMA!r}")
        if schema is None and tables and "meta" not in tables:
            raise RegistryError(f"{where} is a SQLite database of another application (tables "
                                f"{', '.join(sorted(tables))}); it was left untouched")
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if schema is None:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES "
                             "('registry_schema', ?)", (REGISTRY_SCHEMA,))
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RegistryError(f"cannot prepare registry {where}: {exc}") from None

    def close(self) -> None:
        """Close the database; the registry cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"Registry({where}, closed={self._conn is None})"

    # -- transactions -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RegistryError("the registry is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all statements inside commit together or not at all."""
        with self._lock:
            conn = self._connection()
            if conn.in_transaction:  # nested call from inside a transaction: join it
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise RegistryError(f"cannot write to the registry: {exc}") from None
            try:
                yield conn
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise RegistryError(f"registry write failed: {exc}") from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise RegistryError(f"registry write failed at commit: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction shared with a caller that keeps its own tables in the same
        file (the smartphone service's pairs and applications, :mod:`workbench.lifecycle`):
        the registry's changes made inside join it, so a service event and the revocations
        it causes commit together or not at all. Yields the connection for the caller's own
        statements (tables of its own, never the registry's)."""
        with self._write() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for queries made of several statements."""
        with self._lock:
            conn = self._connection()
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            except sqlite3.DatabaseError as exc:
                raise RegistryError(f"registry read failed: {exc}") from None
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _now(self) -> int:
        return _seconds(self.clock.now(), "clock time")

    # -- registration -----------------------------------------------------------------------

    def _record(self, cert: x509.Certificate, issuer_key_id: bytes | None,
                partition: str | None, token: str | None) -> _Record:
        if not isinstance(cert, x509.Certificate):
            raise RegistryError(f"register() needs an x509.Certificate, not {type(cert).__name__}")
        try:
            aki = cert.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            aki = None
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            ski = None
        serial = cert.serial_number
        if issuer_key_id is not None:
            ikid = _key_id(issuer_key_id)
            if aki is not None and aki != ikid:
                raise RegistryError(f"certificate {_hex(serial)} names issuer key id {aki.hex()} "
                                    f"in its AuthorityKeyIdentifier, not {ikid.hex()}")
        elif aki is not None:
            ikid = aki
        elif cert.issuer == cert.subject and ski is not None:
            ikid = ski  # a self-issued CA certificate (jpki-card.md 9.2 roots carry no AKI)
        else:
            raise RegistryError(f"certificate {_hex(serial)} has no AuthorityKeyIdentifier; pass "
                                "issuer_key_id (the issuing CA's key identifier)")
        kind = certificate_kind(cert)
        if partition is not None:
            check_partition(partition)
            if kind == "ca":
                raise RegistryError("CA certificates are listed on the ARL, not on a "
                                    "municipality's partitioned CRL; register them without "
                                    "partition")
        if token is not None and not isinstance(token, str):
            raise RegistryError(f"token must be a str such as 'icc' or 'gpse', not {token!r}")
        der = cert.public_bytes(Encoding.DER)
        scope = SCOPE_ARL if kind == "ca" else (
            partition_scope(partition) if partition is not None else None)
        return _Record(
            issuer_key_id=ikid,
            serial=_serial_key(serial),
            fingerprint=hashlib.sha256(der).digest(),
            subject=format_name(cert.subject),
            not_before=_seconds(cert.not_valid_before_utc),
            not_after=_seconds(cert.not_valid_after_utc),
            kind=kind,
            hierarchy=_hierarchy_of(cert.issuer),
            token=token,
            partition=partition,
            dp_scope=scope,
            dp_name=_distribution_point_name(der) if scope is not None else None,
        )

    def _insert(self, conn: sqlite3.Connection, rec: _Record, now: int) -> bool:
        """Insert one certificate with its issue event; False if it was already there."""
        row = conn.execute("SELECT fingerprint FROM certificates WHERE issuer_key_id = ? AND "
                           "serial = ?", (rec.issuer_key_id, rec.serial)).fetchone()
        if row is not None:
            if rec.fingerprint is not None and row[0] == rec.fingerprint:
                return False  # registering the same certificate again changes nothing
            raise RegistryError(f"serial {_hex(_serial_int(rec.serial))} of issuer key "
                                f"{rec.issuer_key_id.hex()} is already registered for another "
                                "certificate; serials must be unique per CA (RFC 5280 4.1.2.2)")
        conn.execute(
            "INSERT INTO certificates (issuer_key_id, serial, fingerprint, subject, not_before, "
            "not_after, kind, hierarchy, token, partition, state, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'good', ?)",
            (rec.issuer_key_id, rec.serial, rec.fingerprint, rec.subject, rec.not_before,
             rec.not_after, rec.kind, rec.hierarchy, rec.token, rec.partition, rec.not_before))
        conn.execute("INSERT INTO events (issuer_key_id, serial, action, at, recorded_at) "
                     "VALUES (?, ?, 'issue', ?, ?)",
                     (rec.issuer_key_id, rec.serial, rec.not_before, now))
        if rec.dp_scope is not None and rec.dp_name is not None:
            conn.execute("INSERT OR IGNORE INTO distribution_points (issuer_key_id, scope, "
                         "dp_name) VALUES (?, ?, ?)", (rec.issuer_key_id, rec.dp_scope,
                                                       rec.dp_name))
        return True

    def register(self, cert: x509.Certificate, *, issuer_key_id: bytes | None = None,
                 partition: str | None = None, token: str | None = None) -> None:
        """Record an issued certificate (state good from its Not Before).

        The issuer key id is the certificate's AuthorityKeyIdentifier (generations share one
        DN, jpki-card.md 9.2), or its own SubjectKeyIdentifier for a self-issued CA
        certificate. ``partition`` is the municipality code (or name) of its CRL distribution
        point (9.7); ``token`` "icc" or "gpse" when known. Registering the same certificate
        twice is a no-op; another certificate with a taken serial is an error.
        """
        rec = self._record(cert, issuer_key_id, partition, token)
        now = self._now()
        with self._write() as conn:
            self._insert(conn, rec, now)

    def register_many(self, certs: Iterable[x509.Certificate], *,
                      partition: str | None = None, token: str | None = None) -> int:
        """Register several certificates in one transaction (all or none); returns how many
        were new. Used for a card's certificate pair."""
        records = []
        for cert in certs:
            ee = certificate_kind(cert) != "ca"  # the CA certificate is not on the card's partition
            records.append(self._record(cert, None, partition if ee else None,
                                        token if ee else None))
        now = self._now()
        with self._write() as conn:
            return sum(self._insert(conn, rec, now) for rec in records)

    def register_serials(self, issuer_key_id: bytes, serials: Iterable[int], *,
                         not_before: datetime, not_after: datetime, subject: str = "",
                         kind: str = "unknown", hierarchy: Hierarchy | str | None = None,
                         token: str | None = None, partition: str | None = None) -> int:
        """Register serials without their certificates, in one transaction.

        For bulk imports, load tests and benchmarks, where making a million certificates is
        not the point. Serials already registered are an error (nothing is written then).
        """
        ikid = _key_id(issuer_key_id)
        nb, na = _seconds(not_before, "not_before"), _seconds(not_after, "not_after")
        if partition is not None:
            check_partition(partition)
        h = None if hierarchy is None else Hierarchy(hierarchy).value
        now = self._now()
        rows = [(ikid, _serial_key(s), subject, nb, na, kind, h, token, partition, nb)
                for s in serials]
        with self._write() as conn:
            try:
                conn.executemany(
                    "INSERT INTO certificates (issuer_key_id, serial, subject, not_before, "
                    "not_after, kind, hierarchy, token, partition, state, last_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'good', ?)", rows)
            except sqlite3.IntegrityError:
                raise RegistryError("some of these serials are already registered for this "
                                    "issuer; nothing was registered") from None
            conn.executemany("INSERT INTO events (issuer_key_id, serial, action, at, "
                             "recorded_at) VALUES (?, ?, 'issue', ?, ?)",
                             [(ikid, r[1], nb, now) for r in rows])
        return len(rows)

    # -- changes ----------------------------------------------------------------------------

    def _find(self, conn: sqlite3.Connection, serial: int,
              issuer_key_id: bytes | None) -> tuple[bytes, tuple[str, int]]:
        """(issuer key id, (state, last_at)) of one registered certificate, or an error."""
        key = _serial_key(serial)
        if issuer_key_id is not None:
            ikid = _key_id(issuer_key_id)
            row = conn.execute("SELECT state, last_at FROM certificates WHERE issuer_key_id = ? "
                               "AND serial = ?", (ikid, key)).fetchone()
            if row is None:
                raise RegistryError(f"serial {_hex(serial)} was never registered for issuer key "
                                    f"id {ikid.hex()}")
            return ikid, (row[0], row[1])
        rows = conn.execute("SELECT issuer_key_id, state, last_at FROM certificates WHERE "
                            "serial = ?", (key,)).fetchall()
        if not rows:
            raise RegistryError(f"serial {_hex(serial)} was never registered with this authority")
        if len(rows) > 1:
            ids = ", ".join(bytes(r[0]).hex() for r in rows)
            raise RegistryError(f"serial {_hex(serial)} is registered under {len(rows)} issuing "
                                f"CAs (key ids {ids}); pass issuer_key_id to say which")
        return bytes(rows[0][0]), (rows[0][1], rows[0][2])

    @staticmethod
    def _next_state(state: str, action: RegistryAction, reason: RevocationReason | None,
                    serial: int) -> tuple[str, RevocationReason | None]:
        """The state-machine of the module docstring; errors say why the step is refused."""
        s = _hex(serial)
        if state == CertState.REVOKED:
            if action is RegistryAction.REVOKE:
                raise RegistryError(f"certificate {s} is already revoked; revocation is final")
            done = "held" if action is RegistryAction.HOLD else "released"
            raise RegistryError(f"certificate {s} is revoked and cannot be {done}; a revoked "
                                "certificate never comes back")
        if action is RegistryAction.REVOKE:
            assert reason is not None
            return CertState.REVOKED.value, reason
        if action is RegistryAction.HOLD:
            if state == CertState.HELD:
                raise RegistryError(f"certificate {s} is already on hold; release or revoke it")
            return CertState.HELD.value, RevocationReason.CERTIFICATE_HOLD
        if state != CertState.HELD:
            raise RegistryError(f"certificate {s} is not on hold, so there is nothing to release")
        return CertState.GOOD.value, None

    @staticmethod
    def _check_revocation_reason(reason: object) -> RevocationReason:
        if isinstance(reason, str) and not isinstance(reason, RevocationReason):
            try:
                reason = RevocationReason.parse(reason)
            except ValueError as exc:
                raise RegistryError(str(exc)) from None
        if not isinstance(reason, RevocationReason):
            raise RegistryError(f"reason must be a RevocationReason, not {reason!r}")
        if reason is RevocationReason.CERTIFICATE_HOLD:
            raise RegistryError("certificateHold is not a revocation; use hold() (一時利用停止)")
        if reason is RevocationReason.REMOVE_FROM_CRL:
            raise RegistryError("removeFromCRL only appears in delta CRLs; use release() to "
                                "lift a hold")
        return reason

    def _change(self, serial: int, action: RegistryAction, reason: RevocationReason | None,
                issuer_key_id: bytes | None, at: datetime | None,
                invalidity_date: datetime | None) -> RegistryEvent:
        now = self._now()
        when = now if at is None else _seconds(at, "at")
        invalid = None if invalidity_date is None else _seconds(invalidity_date, "invalidity_date")
        with self._write() as conn:
            ikid, (state, last_at) = self._find(conn, serial, issuer_key_id)
            new_state, new_reason = self._next_state(state, action, reason, serial)
            if when < last_at:
                raise RegistryError(
                    f"cannot {action.value} {_hex(serial)} at {_time(when):%Y-%m-%dT%H:%M:%SZ}: "
                    f"its history already has an event at {_time(last_at):%Y-%m-%dT%H:%M:%SZ} "
                    "(before issuance or a later change); events are recorded in time order")
            cur = conn.execute(
                "INSERT INTO events (issuer_key_id, serial, action, reason, at, recorded_at, "
                "invalidity_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ikid, _serial_key(serial), action.value,
                 None if new_reason is None else new_reason.value, when, now, invalid))
            seq = int(cur.lastrowid or 0)
            _checkpoint(f"{action.value}:event-recorded")
            conn.execute(
                "UPDATE certificates SET state = ?, since = ?, reason = ?, invalidity_date = ?, "
                "last_at = ? WHERE issuer_key_id = ? AND serial = ?",
                (new_state, None if new_state == CertState.GOOD else when,
                 None if new_reason is None else new_reason.value, invalid, when, ikid,
                 _serial_key(serial)))
            _checkpoint(f"{action.value}:state-updated")
        return RegistryEvent(seq, serial, ikid, action, new_reason, _time(when),  # type: ignore[arg-type]
                             _time(now), _time(invalid))  # type: ignore[arg-type]

    def revoke(self, serial: int, reason: RevocationReason = RevocationReason.UNSPECIFIED, *,
               issuer_key_id: bytes | None = None, at: datetime | None = None,
               invalidity_date: datetime | None = None) -> RegistryEvent:
        """Revoke a good or held certificate for good (失効; smartphone-service.md 8, 10, 15.8).

        ``at`` (default: the clock's now) is the revocation time; it may not precede the
        certificate's last recorded event. ``invalidity_date`` (RFC 5280 5.3.2) is when the key
        is known or suspected to have become unusable, e.g. when the phone was lost.
        """
        r = self._check_revocation_reason(reason)
        return self._change(serial, RegistryAction.REVOKE, r, issuer_key_id, at, invalidity_date)

    def hold(self, serial: int, *, issuer_key_id: bytes | None = None,
             at: datetime | None = None) -> RegistryEvent:
        """Suspend a good certificate (一時利用停止, smartphone-service.md 9.1): certificateHold."""
        return self._change(serial, RegistryAction.HOLD, None, issuer_key_id, at, None)

    def release(self, serial: int, *, issuer_key_id: bytes | None = None,
                at: datetime | None = None) -> RegistryEvent:
        """Lift a hold (一時利用停止の解除, smartphone-service.md 9.2, 15.5 R2): good again."""
        return self._change(serial, RegistryAction.RELEASE, None, issuer_key_id, at, None)

    def revoke_many(self, serials: Iterable[int],
                    reason: RevocationReason = RevocationReason.UNSPECIFIED, *,
                    issuer_key_id: bytes | None = None, at: datetime | None = None) -> int:
        """Revoke many certificates in one transaction: all of them, or (on any error) none.

        For mass events (a CA incident, smartphone-service.md 15.8 "cACompromise") and load
        tests. Each serial follows the rules of :meth:`revoke`.
        """
        r = self._check_revocation_reason(reason)
        now = self._now()
        when = now if at is None else _seconds(at, "at")
        wanted = list(serials)
        with self._write() as conn:
            targets = []
            seen: set[tuple[bytes, int]] = set()
            for serial in wanted:
                ikid, (state, last_at) = self._find(conn, serial, issuer_key_id)
                if (ikid, serial) in seen:
                    raise RegistryError(f"serial {_hex(serial)} is listed twice")
                seen.add((ikid, serial))
                self._next_state(state, RegistryAction.REVOKE, r, serial)
                if when < last_at:
                    raise RegistryError(f"cannot revoke {_hex(serial)} before its last recorded "
                                        "event; nothing was revoked")
                targets.append((ikid, _serial_key(serial)))
            conn.executemany(
                "INSERT INTO events (issuer_key_id, serial, action, reason, at, recorded_at) "
                "VALUES (?, ?, 'revoke', ?, ?, ?)",
                [(ikid, key, r.value, when, now) for ikid, key in targets])
            _checkpoint("revoke_many:events-recorded")
            conn.executemany(
                "UPDATE certificates SET state = 'revoked', since = ?, reason = ?, "
                "invalidity_date = NULL, last_at = ? WHERE issuer_key_id = ? AND serial = ?",
                [(when, r.value, when, ikid, key) for ikid, key in targets])
            _checkpoint("revoke_many:states-updated")
        return len(targets)

    # -- queries ----------------------------------------------------------------------------

    def status(self, issuer_key_id: bytes, serial: int, at: datetime | None = None) -> CertStatus:
        """The state of (issuer, serial) as of ``at`` (default: now), for OCSP and verification.

        UNKNOWN for a serial this authority never registered, and for a registered one at a
        moment before its Not Before (it did not exist yet). Expired certificates keep their
        answer (see the module docstring).
        """
        ikid = _key_id(issuer_key_id)
        key = _serial_key(serial)
        q = self._now() if at is None else _seconds(at, "at")
        moment = _time(q)
        assert moment is not None
        with self._read() as conn:
            row = conn.execute("SELECT state, since, reason, last_at FROM certificates WHERE "
                               "issuer_key_id = ? AND serial = ?", (ikid, key)).fetchone()
            if row is None:
                return CertStatus(serial, ikid, CertState.UNKNOWN, moment)
            state, since, reason, last_at = row
            if q < last_at:  # a past moment: replay the history up to it
                state, since, reason = None, None, None
                for action, ev_reason, ev_at in conn.execute(
                        "SELECT action, reason, at FROM events WHERE issuer_key_id = ? AND "
                        "serial = ? AND at <= ? ORDER BY at, seq", (ikid, key, q)):
                    state, since, reason = _fold(action, ev_reason, ev_at)
                if state is None:
                    return CertStatus(serial, ikid, CertState.UNKNOWN, moment)
        if state == CertState.GOOD:
            return CertStatus(serial, ikid, CertState.GOOD, moment)
        return CertStatus(serial, ikid, CertState(state), moment, _time(since), _reason(reason))

    def watch(self) -> RegistryWatch | None:
        """A change counter over this registry's file, for caches (see :class:`RegistryWatch`);
        None for an in-memory registry, whose changes only this object makes."""
        if self.path is None:
            return None
        return RegistryWatch(self.path)

    def next_change(self, issuer_key_id: bytes, serial: int, after: datetime) -> datetime | None:
        """When the next recorded event of (issuer, serial) takes effect after ``after``.

        A revocation may be recorded for a later moment (``revoke(at=...)``); a cache of
        answers must not outlive it even though nothing is written when the moment comes.
        """
        with self._read() as conn:
            row = conn.execute("SELECT min(at) FROM events WHERE issuer_key_id = ? AND serial = ? "
                               "AND at > ?", (_key_id(issuer_key_id), _serial_key(serial),
                                              _seconds(after, "after"))).fetchone()
        return _time(row[0]) if row else None

    def history(self, serial: int, issuer_key_id: bytes | None = None) -> list[RegistryEvent]:
        """Every recorded event of one certificate, oldest first (append-only)."""
        with self._read() as conn:
            ikid, _ = self._find(conn, serial, issuer_key_id)
            rows = conn.execute(
                "SELECT seq, action, reason, at, recorded_at, invalidity_date FROM events "
                "WHERE issuer_key_id = ? AND serial = ? ORDER BY seq",
                (ikid, _serial_key(serial))).fetchall()
        return [RegistryEvent(seq, serial, ikid, RegistryAction(action), _reason(reason),
                              _time(at), _time(rec), _time(inv))  # type: ignore[arg-type]
                for seq, action, reason, at, rec, inv in rows]

    def crl_rows(self, issuer_key_id: bytes, at: datetime, scope: str = SCOPE_FULL
                 ) -> list[tuple[int, int, str, int | None]]:
        """Raw CRL rows ``(serial, since seconds, reason, invalidity seconds)`` as of ``at``.

        The fast path of :meth:`entries_for_crl` for the CRL encoder: no datetime objects for a
        million entries. ``scope``: ``"full"`` (every certificate of the CA), ``"arl"`` (CA
        certificates only) or :func:`partition_scope` (one municipality's EE certificates).
        """
        ikid = _key_id(issuer_key_id)
        q = _seconds(at, "at")
        if scope == SCOPE_FULL:
            where, args = "", ()
        elif scope == SCOPE_ARL:
            where, args = " AND c.kind = 'ca'", ()
        elif scope.startswith(_PARTITION_PREFIX):
            where, args = " AND c.partition = ?", (scope[len(_PARTITION_PREFIX):],)
        else:
            raise RegistryError(f"unknown CRL scope {scope!r}")
        with self._read() as conn:
            latest = conn.execute("SELECT max(at) FROM events WHERE issuer_key_id = ? AND "
                                  "action != 'issue'", (ikid,)).fetchone()[0]
            if latest is None:
                return []
            if q >= latest:  # every change is in the past: the current-state rows answer
                rows = conn.execute(
                    "SELECT c.serial, c.since, c.reason, c.invalidity_date FROM certificates c "
                    f"WHERE c.issuer_key_id = ? AND c.state != 'good'{where} ORDER BY c.serial",
                    (ikid, *args)).fetchall()
                return [(_serial_int(s), since, reason, inv) for s, since, reason, inv in rows]
            last: dict[bytes, tuple[str, int, str, int | None]] = {}
            for s, action, reason, ev_at, inv in conn.execute(
                    "SELECT e.serial, e.action, e.reason, e.at, e.invalidity_date FROM events e "
                    "JOIN certificates c ON c.issuer_key_id = e.issuer_key_id AND "
                    "c.serial = e.serial WHERE e.issuer_key_id = ? AND e.action != 'issue' AND "
                    f"e.at <= ?{where} ORDER BY e.at, e.seq", (ikid, q, *args)):
                last[s] = (action, ev_at, reason, inv)
        return [(_serial_int(s), ev_at, reason, inv)
                for s, (action, ev_at, reason, inv) in sorted(last.items())
                if action in (RegistryAction.REVOKE, RegistryAction.HOLD)]

    def entries_for_crl(self, issuer_key_id: bytes, at: datetime,
                        partition: str | None = None) -> list[CrlEntry]:
        """What a CRL of this issuer lists as of ``at``: revoked and currently held certificates.

        ``partition``: only that municipality's certificates (jpki-card.md 9.7). A released
        hold is simply absent (removeFromCRL belongs to delta CRLs, which are not published).
        Ordered by serial. CA certificates of the issuer appear in the full list; the ARL
        (:meth:`crl_rows` with scope ``"arl"``) lists only them.
        """
        scope = SCOPE_FULL if partition is None else partition_scope(partition)
        return [CrlEntry(serial, _time(since), RevocationReason(reason))  # type: ignore[arg-type]
                for serial, since, reason, _ in self.crl_rows(issuer_key_id, at, scope)]

    def certificates(self, *, issuer_key_id: bytes | None = None, partition: str | None = None,
                     hierarchy: Hierarchy | str | None = None, kind: str | None = None,
                     state: CertState | str | None = None,
                     serial: int | None = None) -> list[RegisteredCertificate]:
        """Registered certificates with their current state, filtered, ordered by issuer+serial."""
        clauses: list[str] = []
        args: list[object] = []
        if serial is not None:
            clauses.append("serial = ?")
            args.append(_serial_key(serial))
        if issuer_key_id is not None:
            clauses.append("issuer_key_id = ?")
            args.append(_key_id(issuer_key_id))
        if partition is not None:
            clauses.append("partition = ?")
            args.append(partition)
        if hierarchy is not None:
            clauses.append("hierarchy = ?")
            args.append(Hierarchy(hierarchy).value)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if state is not None:
            clauses.append("state = ?")
            args.append(CertState(state).value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT serial, issuer_key_id, subject, not_before, not_after, kind, hierarchy, "
                "token, partition, fingerprint, state, since, reason FROM certificates"
                f"{where} ORDER BY issuer_key_id, serial", args).fetchall()
        return [RegisteredCertificate(
            serial=_serial_int(r[0]), issuer_key_id=bytes(r[1]), subject=r[2],
            not_before=_time(r[3]), not_after=_time(r[4]),  # type: ignore[arg-type]
            kind=r[5], hierarchy=None if r[6] is None else Hierarchy(r[6]), token=r[7],
            partition=r[8], fingerprint=None if r[9] is None else bytes(r[9]),
            state=CertState(r[10]), since=_time(r[11]), reason=_reason(r[12]),
        ) for r in rows]

    def distribution_point(self, issuer_key_id: bytes, scope: str) -> bytes | None:
        """DER of the DistributionPointName the certificates of ``scope`` carry (for the IDP)."""
        with self._read() as conn:
            row = conn.execute("SELECT dp_name FROM distribution_points WHERE issuer_key_id = ? "
                               "AND scope = ?", (_key_id(issuer_key_id), scope)).fetchone()
        return None if row is None else bytes(row[0])

    # -- CRL publications (used by workbench.pki.crl) -----------------------------------------

    def publish_crl(self, issuer_key_id: bytes, scope: str, this_update: datetime,
                    next_update: datetime, number: int,
                    build: Callable[[], bytes]) -> PublishedCrl:
        """The CRL of (issuer, scope) published at ``this_update``, building it once.

        A publication, once stored, is returned byte for byte on every later call, in this
        process or after a restart, so every fetch between two publications sees the same CRL
        (and the same CRL number). ``build`` runs inside the write transaction, so two
        processes cannot publish different CRLs for the same moment. CRL numbers must grow
        with thisUpdate (RFC 5280 5.2.3); a conflict (e.g. a changed interval) is an error.
        """
        ikid = _key_id(issuer_key_id)
        tu = _seconds(this_update, "this_update")
        key = (ikid, scope, tu)
        with self._lock:
            cached = self._published.get(key)
            if cached is not None:
                self._published.move_to_end(key)
                return cached
            with self._write() as conn:
                row = conn.execute("SELECT number, next_update, der FROM crl_publications WHERE "
                                   "issuer_key_id = ? AND scope = ? AND this_update = ?",
                                   key).fetchone()
                if row is None:
                    before = conn.execute(
                        "SELECT max(number) FROM crl_publications WHERE issuer_key_id = ? AND "
                        "scope = ? AND this_update < ?", key).fetchone()[0]
                    after = conn.execute(
                        "SELECT min(number) FROM crl_publications WHERE issuer_key_id = ? AND "
                        "scope = ? AND this_update > ?", key).fetchone()[0]
                    if (before is not None and before >= number) or (
                            after is not None and after <= number):
                        raise RegistryError(
                            f"CRL number {number} for {scope} at {this_update.isoformat()} "
                            "would not grow with thisUpdate; was the publication interval "
                            "changed?")
                    der = build()
                    nu = _seconds(next_update, "next_update")
                    conn.execute("INSERT INTO crl_publications (issuer_key_id, scope, "
                                 "this_update, next_update, number, der, published_at) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?)", (*key, nu, number, der, self._now()))
                    row = (number, nu, der)
            published = PublishedCrl(ikid, scope, int(row[0]), _time(tu),  # type: ignore[arg-type]
                                     _time(row[1]), bytes(row[2]))  # type: ignore[arg-type]
            self._published[key] = published
            while len(self._published) > 16:
                self._published.popitem(last=False)
            return published

    # -- consistency ------------------------------------------------------------------------

    def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): SQLite's own check, and for every
        certificate that replaying its history gives the stored current state and that the
        history starts with its issue and has nothing after a revocation."""
        problems: list[str] = []
        with self._read() as conn:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.extend(f"sqlite: {r}" for r in result)
            current: dict[tuple[bytes, bytes], tuple] = {
                (bytes(r[0]), bytes(r[1])): tuple(r[2:])
                for r in conn.execute("SELECT issuer_key_id, serial, state, since, reason, "
                                      "last_at FROM certificates")}
            replay: dict[tuple[bytes, bytes], list] = {}
            for ikid, key, action, reason, at in conn.execute(
                    "SELECT issuer_key_id, serial, action, reason, at FROM events ORDER BY seq"):
                k = (bytes(ikid), bytes(key))
                entry = replay.get(k)
                serial = _hex(_serial_int(k[1]))
                if entry is None:
                    if action != RegistryAction.ISSUE:
                        problems.append(f"{serial}: history does not start with its issue")
                    replay[k] = [*_fold(action, reason, at), at]
                    continue
                if entry[0] == CertState.REVOKED:
                    problems.append(f"{serial}: event {action} after its revocation")
                if at < entry[3]:
                    problems.append(f"{serial}: events out of time order")
                replay[k] = [*_fold(action, reason, at), at]
        for k, row in current.items():
            serial = _hex(_serial_int(k[1]))
            got = replay.get(k)
            if got is None:
                problems.append(f"{serial}: registered without an issue event")
                continue
            state, since, reason, last = got
            if state == CertState.GOOD:
                since, reason = None, None
            if (state, since, reason, last) != row:
                problems.append(f"{serial}: stored state {row} differs from its history "
                                f"{(state, since, reason, last)}")
        if len(replay) != len(current):
            problems.append("events of unregistered certificates")
        return problems


def _fold(action: str, reason: str | None, at: int) -> tuple[str, int | None, str | None]:
    """The state after one event: (state, since, reason)."""
    if action == RegistryAction.REVOKE:
        return CertState.REVOKED.value, at, reason
    if action == RegistryAction.HOLD:
        return CertState.HELD.value, at, RevocationReason.CERTIFICATE_HOLD.value
    return CertState.GOOD.value, None, None

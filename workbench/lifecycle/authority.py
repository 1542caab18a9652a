"""The J-LIS-like side of the smartphone certificate service: application front end (RA),
issuance, the TSM, and what each service event does to the revocation registry.

smartphone-service.md 15.2 (phases A, B, C), 15.4-15.7, 15.8. The application API is a set of
plain handlers: :meth:`ServiceAuthority.handle` routes ``(method, path, body)`` to them, so a
scenario calls them in process and ``pki serve`` exposes the very same handlers over HTTP as
JSON (:data:`API` lists them). It builds on :class:`workbench.pki.AuthorityStore`: keys, CA
generations and the registry that OCSP and CRLs publish from.

State lives in the authority's SQLite file, beside the registry, in tables of its own
(``svc_*``): the person registry, the SEs the TSM can reach, every phone's certificate pair
with its history, applications, and jobs waiting for a phone to connect. Each service event
is one transaction that also makes the registry changes it causes
(:meth:`workbench.pki.Registry.transaction`), so "pair superseded" and "its certificates
revoked" commit together, and a second process (``pki serve`` while a notebook runs the
hotline) sees the same state.

What the authority knows (MODEL): a person registry, filled when a card is issued (each card
certificate maps to a person id, an HMAC of the holder's 個人番号 under an authority secret:
the real J-LIS knows whose card a certificate belongs to); and, from the SE issuer, each phone
SE's id and the SCP03 keys of its JPKI security domain (synthetic test keys, stored as they
are). It never learns a PIN or a password: the app sets them on the SE itself (15.2 A5, C11).

TSM sessions run the scripts of :mod:`workbench.se.tsm` one APDU at a time: the app relays
each command to its SE and posts the answer back (``POST /v1/tsm/{session}/exchange``). A
session lives in the memory of the process that opened it, so the HTTP application API needs
``pki serve --workers 1`` (more workers answer 503 on ``/v1``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import random
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.card.constants import LABEL_GPSE, PIN_AUTH, PIN_SIGN
from workbench.card.content import certificate_presence, token_info
from workbench.errors import PkiError, WorkbenchError
from workbench.holder import Holder, holder_from_json, holder_to_json
from workbench.lifecycle.states import EVENTS, LIVE_STATES, Event, PairState, next_state
from workbench.pki import AuthorityStore, CertState, Hierarchy, RevocationReason
from workbench.pki.clock import as_utc
from workbench.se import StaticKeys, TsmError, TsmSession, gp

__all__ = [
    "API",
    "MIN_APP_VERSION",
    "NONCE_LIFETIME",
    "Application",
    "Pair",
    "ServiceAuthority",
    "ServiceError",
    "person_id",
    "tbs_application",
    "tbs_request",
]

#: How long an application challenge stays fresh (15.2 A7, MODEL).
NONCE_LIFETIME = timedelta(minutes=10)
#: Mynaportal app version that brings the smartphone certificate (smartphone-service.md 3).
MIN_APP_VERSION = 54
#: Purposes of a challenge: issuance (15.2), release (15.5 R1), user revocation (15.6), PIN
#: reset with the card (15.7).
PURPOSES = ("issue", "release", "revoke", "pin-reset-auth", "pin-reset-sign")

#: The application API: (method, path pattern, what it does). ``{id}`` parts are path values.
API: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/applications/challenge", "A3: application id and nonce for a purpose"),
    ("POST", "/v1/applications", "A6-A8: the card-signed application"),
    ("GET", "/v1/applications/{id}", "B3: the application's state"),
    ("POST", "/v1/tsm", "C1-C10: open the registration TSM session"),
    ("POST", "/v1/tsm/{session}/exchange", "relay: the SE's answer in, the next command out"),
    ("POST", "/v1/applications/{id}/complete", "C12-C13: registration receipt, pair active"),
    ("POST", "/v1/releases", "R1-R2: lift the hold of a found phone (card-signed)"),
    ("POST", "/v1/revocations", "15.6: user revocation (signed on the phone)"),
    ("POST", "/v1/pin-resets", "15.7: reset a phone PIN with the card"),
    ("GET", "/v1/phones/{se_id}/jobs", "SE jobs waiting for this phone"),
    ("POST", "/v1/phones/{se_id}/jobs", "run one waiting job (a TSM session)"),
)

_TABLES = """
CREATE TABLE IF NOT EXISTS svc_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS svc_persons (
    pid            TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    alive          INTEGER NOT NULL DEFAULT 1,
    sign_not_after TEXT,
    auth_not_after TEXT
);
CREATE TABLE IF NOT EXISTS svc_card_certs (
    issuer_key_id TEXT NOT NULL,
    serial        TEXT NOT NULL,
    pid           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    PRIMARY KEY (issuer_key_id, serial)
);
CREATE TABLE IF NOT EXISTS svc_se (
    se_id TEXT PRIMARY KEY,
    keys  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS svc_pairs (
    pair_id      TEXT PRIMARY KEY,
    pid          TEXT NOT NULL,
    se_id        TEXT NOT NULL,
    device_model TEXT NOT NULL,
    state        TEXT NOT NULL,
    sign_serial  TEXT,
    auth_serial  TEXT,
    not_after    TEXT,
    created      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS svc_pairs_pid ON svc_pairs (pid);
CREATE INDEX IF NOT EXISTS svc_pairs_se ON svc_pairs (se_id);
CREATE INDEX IF NOT EXISTS svc_pairs_sign ON svc_pairs (sign_serial);
CREATE TABLE IF NOT EXISTS svc_history (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    pair_id TEXT NOT NULL,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    state   TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS svc_history_pair ON svc_history (pair_id);
CREATE TABLE IF NOT EXISTS svc_applications (
    application_id TEXT PRIMARY KEY,
    nonce          TEXT NOT NULL,
    created        TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    state          TEXT NOT NULL,
    pid            TEXT,
    se_id          TEXT,
    types          TEXT NOT NULL DEFAULT 'sign,auth',
    device_model   TEXT NOT NULL DEFAULT '',
    pair_id        TEXT,
    ready_at       TEXT,
    detail         TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS svc_pair_certs (
    serial  TEXT NOT NULL,
    pair_id TEXT NOT NULL,
    kind    TEXT NOT NULL,
    issued  TEXT NOT NULL,
    PRIMARY KEY (pair_id, serial)
);
CREATE TABLE IF NOT EXISTS svc_jobs (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    se_id  TEXT NOT NULL,
    job    TEXT NOT NULL,
    queued TEXT NOT NULL,
    done   TEXT
);
CREATE INDEX IF NOT EXISTS svc_jobs_se ON svc_jobs (se_id, done)
"""


class ServiceError(WorkbenchError):
    """The service refuses an operation; the message says which rule (one line).
    ``status`` is the HTTP status the application API answers with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def person_id(secret: bytes, holder: Holder) -> str:
    """The authority's stable id of a person (MODEL): an HMAC of the 個人番号."""
    return hmac.new(secret, holder.individual_number.encode(), hashlib.sha256).hexdigest()[:16]


def tbs_application(application_id: str, nonce: bytes, se_id: str, types: tuple[str, ...],
                    app_version: int) -> bytes:
    """What the card signs to apply (15.2 A4): application id ‖ nonce ‖ SHA-256(se id ‖
    requested types ‖ app version)."""
    inner = hashlib.sha256(f"{se_id}|{','.join(types)}|{app_version}".encode()).digest()
    return application_id.encode() + nonce + inner


def tbs_request(application_id: str, nonce: bytes, purpose: str, se_id: str) -> bytes:
    """What is signed to ask for a release, a revocation or a PIN reset (MODEL, shaped like
    A4): application id ‖ nonce ‖ SHA-256(purpose ‖ se id)."""
    return application_id.encode() + nonce + hashlib.sha256(f"{purpose}|{se_id}".encode()).digest()


def _iso(t: datetime | None) -> str | None:
    return None if t is None else as_utc(t).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _hex_serial(serial: int | None) -> str | None:
    return None if serial is None else f"{serial:X}"


def _int_serial(text: str | None) -> int | None:
    return None if text is None else int(text, 16)


@dataclass
class Pair:
    """One phone's certificate pair at the authority (15.8), as its row says."""

    pair_id: str
    person: str
    se_id: str
    device_model: str
    state: PairState
    sign_serial: int | None
    auth_serial: int | None
    not_after: datetime | None
    created: datetime

    def serials(self) -> list[int]:
        return [s for s in (self.sign_serial, self.auth_serial) if s is not None]

    @property
    def live(self) -> bool:
        """Holding (possibly held) certificates: ACTIVE, ON_HOLD or waiting for its new
        signing certificate."""
        return self.state in LIVE_STATES


@dataclass
class Application:
    """An application for phone certificates (15.2 A3-A8, B) or a card-signed request."""

    application_id: str
    nonce: bytes
    created: datetime
    purpose: str
    state: str
    person: str | None
    se_id: str | None
    types: tuple[str, ...]
    device_model: str
    pair_id: str | None
    ready_at: datetime | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class PersonRecord:
    """What the person registry holds about one person (MODEL)."""

    pid: str
    holder: Holder
    alive: bool
    sign_not_after: datetime | None
    auth_not_after: datetime | None


class _TsmRun:
    """A TSM script on its own thread, driven one APDU at a time by the relay."""

    def __init__(self, script: Callable[[TsmSession], Any], keys: StaticKeys,
                 host_challenge: bytes | None) -> None:
        self._to_relay: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._from_relay: queue.Queue[bytes | None] = queue.Queue()
        self.result: Any = None
        self.error: str | None = None
        self.session: TsmSession | None = None

        def transmit(command: bytes) -> bytes:
            assert self.session is not None
            what, operation = self.session.sending
            self._to_relay.put(("command", (command, what, operation)))
            answer = self._from_relay.get(timeout=120)
            if answer is None:
                raise TsmError("the relay abandoned the session")
            return answer

        def run() -> None:
            try:
                self.session = TsmSession(transmit, keys, host_challenge=host_challenge)
                self.session.open()
                self.result = script(self.session)
                self._to_relay.put(("done", None))
            except (WorkbenchError, queue.Empty) as exc:
                self.error = str(exc) or "the relay stopped answering"
                self._to_relay.put(("error", self.error))
            except Exception as exc:  # noqa: BLE001 - a bug: reported to the relay, not lost
                self.error = f"{type(exc).__name__}: {exc}"
                self._to_relay.put(("error", self.error))

        self._thread = threading.Thread(target=run, name="tsm-session", daemon=True)
        self._thread.start()

    def step(self, response: bytes | None) -> tuple[str, Any]:
        if response is not None:
            self._from_relay.put(response)
        kind, value = self._to_relay.get(timeout=300)
        if kind != "command":
            self._thread.join(timeout=10)
        return kind, value

    def abandon(self) -> None:
        self._from_relay.put(None)


class ServiceAuthority:
    """The authority's service side (module docstring).

    ``issuance_delay``: how long the server-side issuance procedure (phase B) takes before an
    application is ready for registration (spec 15.2 B3: "seconds to minutes", MODEL).
    ``seed`` makes TSM host challenges and ids reproducible for demos (never for security).
    """

    def __init__(self, store: AuthorityStore, *, seed: bytes | int | str | None = None,
                 issuance_delay: timedelta = timedelta(seconds=30)) -> None:
        if not isinstance(store, AuthorityStore):
            raise ServiceError(f"need an AuthorityStore, not {type(store).__name__}", 500)
        if issuance_delay < timedelta(0):
            raise ServiceError("issuance_delay cannot be negative", 500)
        self.store = store
        self.clock = store.clock
        self.issuance_delay = issuance_delay
        self._lock = threading.RLock()
        self._tsm: dict[str, tuple[_TsmRun, Callable[[Any], dict[str, Any]]]] = {}
        self._seed = None if seed is None else hashlib.sha256(
            b"jpki-workbench/service/" + str(seed).encode()).digest()
        self._counter = 0
        with self._tx() as conn:
            for statement in _TABLES.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM svc_meta WHERE key = 'person-secret'").fetchone()
            if row is None:
                secret = (secrets.token_bytes(32) if self._seed is None
                          else hashlib.sha256(self._seed + b"person").digest())
                conn.execute("INSERT INTO svc_meta (key, value) VALUES ('person-secret', ?)",
                             (secret.hex(),))
            else:
                secret = bytes.fromhex(row[0])
        self._secret = secret

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self.store.registry.transaction() as conn:
            yield conn

    def _random(self, n: int, label: str) -> bytes:
        if self._seed is None:
            return secrets.token_bytes(n)
        self._counter += 1
        return hashlib.sha256(self._seed + f"{label}/{self._counter}".encode()).digest()[:n]

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{self._random(6, prefix).hex()}"

    def _issue_options(self) -> dict[str, Any]:
        """Serial and identifier randomness of a certificate: seeded when the service is."""
        if self._seed is None:
            return {}
        return {"rng": random.Random(self._random(16, "certificate"))}

    # -- what the authority knows out of band ------------------------------------------------

    def enrol_card(self, holder: Holder, certificates: dict[str, x509.Certificate]) -> str:
        """Remember whose card this is (at card issuance or renewal): the person registry
        (MODEL). Returns the person id; the newest card's validity is what a phone pair
        follows (spec 6)."""
        pid = person_id(self._secret, holder)
        sign, auth = certificates.get("sign"), certificates.get("auth")
        with self._tx() as conn:
            row = conn.execute("SELECT alive FROM svc_persons WHERE pid = ?", (pid,)).fetchone()
            alive = 1 if row is None else int(row[0])
            conn.execute(
                "INSERT OR REPLACE INTO svc_persons (pid, holder, alive, sign_not_after, "
                "auth_not_after) VALUES (?, ?, ?, ?, ?)",
                (pid, json.dumps(holder_to_json(holder), ensure_ascii=False), alive,
                 _iso(sign.not_valid_after_utc) if sign else None,
                 _iso(auth.not_valid_after_utc) if auth else None))
            for kind, cert in (("sign", sign), ("auth", auth)):
                if cert is None:
                    continue
                conn.execute("INSERT OR REPLACE INTO svc_card_certs (issuer_key_id, serial, pid, "
                             "kind) VALUES (?, ?, ?, ?)",
                             (_aki(cert).hex(), _hex_serial(cert.serial_number), pid, kind))
        return pid

    def enrol_se(self, se_id: str, keys: StaticKeys) -> None:
        """The SE issuer hands the TSM the keys of a phone's JPKI security domain."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO svc_se (se_id, keys) VALUES (?, ?)",
                         (se_id, json.dumps({"enc": keys.enc.hex(), "mac": keys.mac.hex(),
                                             "dek": keys.dek.hex(), "kvn": keys.kvn})))

    def _se_keys(self, conn: sqlite3.Connection, se_id: str) -> StaticKeys | None:
        row = conn.execute("SELECT keys FROM svc_se WHERE se_id = ?", (se_id,)).fetchone()
        if row is None:
            return None
        k = json.loads(row[0])
        return StaticKeys(bytes.fromhex(k["enc"]), bytes.fromhex(k["mac"]),
                          bytes.fromhex(k["dek"]), int(k["kvn"]))

    def person(self, pid: str) -> PersonRecord:
        with self._tx() as conn:
            return self._person(conn, pid)

    @staticmethod
    def _person(conn: sqlite3.Connection, pid: str) -> PersonRecord:
        row = conn.execute("SELECT holder, alive, sign_not_after, auth_not_after FROM "
                           "svc_persons WHERE pid = ?", (pid,)).fetchone()
        if row is None:
            raise ServiceError("unknown person", 404)
        return PersonRecord(pid, holder_from_json(json.loads(row[0])), bool(row[1]),
                            _time(row[2]), _time(row[3]))

    def person_of(self, holder: Holder) -> str:
        """The person id of a holder (the authority's own key; MODEL)."""
        return person_id(self._secret, holder)

    # -- pairs ------------------------------------------------------------------------------

    @staticmethod
    def _pair_from(row: tuple[Any, ...]) -> Pair:
        return Pair(row[0], row[1], row[2], row[3], PairState(row[4]), _int_serial(row[5]),
                    _int_serial(row[6]), _time(row[7]), _time(row[8]))  # type: ignore[arg-type]

    _PAIR_COLUMNS = ("pair_id, pid, se_id, device_model, state, sign_serial, auth_serial, "
                     "not_after, created")

    def _pairs(self, conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Pair]:
        rows = conn.execute(f"SELECT {self._PAIR_COLUMNS} FROM svc_pairs WHERE {where} "
                            "ORDER BY created, rowid", args).fetchall()
        return [self._pair_from(r) for r in rows]

    def pairs(self) -> list[Pair]:
        """Every pair, oldest first."""
        with self._tx() as conn:
            return self._pairs(conn, "1", ())

    def pairs_of(self, pid: str) -> list[Pair]:
        with self._tx() as conn:
            return self._pairs(conn, "pid = ?", (pid,))

    def pair(self, pair_id: str) -> Pair:
        with self._tx() as conn:
            found = self._pairs(conn, "pair_id = ?", (pair_id,))
        if not found:
            raise ServiceError("unknown pair", 404)
        return found[0]

    def live_pair(self, pid: str) -> Pair | None:
        """The person's phone pair that holds certificates (ACTIVE, ON_HOLD, or waiting for
        its new signing certificate), if any: at most one (spec 5)."""
        with self._tx() as conn:
            return self._live(conn, pid)

    def _live(self, conn: sqlite3.Connection, pid: str) -> Pair | None:
        states = tuple(s.value for s in LIVE_STATES)
        found = self._pairs(conn, f"pid = ? AND state IN ({','.join('?' * len(states))})",
                            (pid, *states))
        return found[-1] if found else None

    def _remember(self, conn: sqlite3.Connection, pair_id: str, kind: str, serial: int) -> None:
        conn.execute("INSERT OR IGNORE INTO svc_pair_certs (serial, pair_id, kind, issued) "
                     "VALUES (?, ?, ?, ?)", (_hex_serial(serial), pair_id, kind,
                                             _iso(self.clock.now())))

    def certificates(self) -> list[dict[str, Any]]:
        """Every phone certificate the service ever issued: pair, person, SE, kind, serial —
        including the ones a release or a new application replaced."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT c.pair_id, p.pid, p.se_id, c.kind, c.serial, c.issued FROM "
                "svc_pair_certs c JOIN svc_pairs p USING (pair_id) ORDER BY c.issued, c.rowid"
            ).fetchall()
        return [{"pair": r[0], "person": r[1], "se_id": r[2], "kind": r[3],
                 "serial": int(r[4], 16), "issued": _time(r[5])} for r in rows]

    def last_history_seq(self) -> int:
        """The newest history row's sequence number (0 before any)."""
        with self._tx() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM svc_history")
                       .fetchone()[0])

    def history(self, pair_id: str | None = None) -> list[dict[str, Any]]:
        """Every state change (calendar time, pair, event, new state, detail), in order."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT h.seq, h.at, h.pair_id, p.pid, p.se_id, h.event, h.state, h.detail "
                "FROM svc_history h JOIN svc_pairs p USING (pair_id) "
                + ("WHERE h.pair_id = ? " if pair_id else "") + "ORDER BY h.seq",
                (pair_id,) if pair_id else ()).fetchall()
        return [{"seq": r[0], "at": _time(r[1]), "pair": r[2], "person": r[3], "se_id": r[4],
                 "event": r[5], "state": r[6], "detail": r[7]} for r in rows]

    def _save_pair(self, conn: sqlite3.Connection, pair: Pair) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO svc_pairs (pair_id, pid, se_id, device_model, state, "
            "sign_serial, auth_serial, not_after, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pair.pair_id, pair.person, pair.se_id, pair.device_model, pair.state.value,
             _hex_serial(pair.sign_serial), _hex_serial(pair.auth_serial), _iso(pair.not_after),
             _iso(pair.created)))

    def _event(self, conn: sqlite3.Connection, pair: Pair, event: Event, *,
               at: datetime | None = None, detail: str = "") -> None:
        """One state change: the registry changes of the event's rule, the pair's new state
        and its history row, in the caller's transaction (15.8)."""
        when = at or self.clock.now()
        rule = EVENTS[event]
        new_state = next_state(pair.state, event)
        reg = self.store.registry
        for kind in ("sign", "auth"):
            serial = pair.sign_serial if kind == "sign" else pair.auth_serial
            action = getattr(rule, kind)
            if serial is None or action in (None, "keep"):
                continue
            state = reg.certificates(serial=serial)[0].state
            if action == "hold" and state is CertState.GOOD:
                reg.hold(serial, at=when)
            elif action == "release" and state is CertState.HELD:
                reg.release(serial, at=when)
            elif action in ("revoke", "reissue") and state is not CertState.REVOKED:
                reg.revoke(serial, rule.reason or RevocationReason.UNSPECIFIED, at=when)
            if action == "reissue":
                pair.sign_serial = None
        pair.state = new_state
        self._save_pair(conn, pair)
        conn.execute("INSERT INTO svc_history (pair_id, at, event, state, detail) VALUES "
                     "(?, ?, ?, ?, ?)", (pair.pair_id, _iso(when), event.value, new_state.value,
                                          detail))

    # -- applications -------------------------------------------------------------------------

    _APP_COLUMNS = ("application_id, nonce, created, purpose, state, pid, se_id, types, "
                    "device_model, pair_id, ready_at, detail")

    def _application(self, conn: sqlite3.Connection, application_id: object) -> Application:
        if not isinstance(application_id, str):
            raise ServiceError("application_id must be a string", 400)
        row = conn.execute(f"SELECT {self._APP_COLUMNS} FROM svc_applications WHERE "
                           "application_id = ?", (application_id,)).fetchone()
        if row is None:
            raise ServiceError("unknown application id", 404)
        return Application(row[0], bytes.fromhex(row[1]), _time(row[2]),  # type: ignore[arg-type]
                           row[3], row[4], row[5], row[6],
                           tuple(t for t in row[7].split(",") if t), row[8], row[9],
                           _time(row[10]), json.loads(row[11]))

    @staticmethod
    def _save_application(conn: sqlite3.Connection, app: Application) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO svc_applications (application_id, nonce, created, purpose, "
            "state, pid, se_id, types, device_model, pair_id, ready_at, detail) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (app.application_id, app.nonce.hex(), _iso(app.created), app.purpose, app.state,
             app.person, app.se_id, ",".join(app.types), app.device_model, app.pair_id,
             _iso(app.ready_at), json.dumps(app.detail)))

    def application(self, application_id: str) -> Application:
        with self._tx() as conn:
            return self._application(conn, application_id)

    # -- the application API (15.2) -------------------------------------------------------

    def handle(self, method: str, path: str, body: dict[str, Any] | None = None
               ) -> tuple[int, dict[str, Any]]:
        """Route one request of the application API (:data:`API`). Errors are answers with
        a status and a one-line ``error``, never exceptions."""
        body = body if body is not None else {}
        try:
            if not isinstance(body, dict):
                raise ServiceError("the request body must be a JSON object", 400)
            return self._route(method.upper(), path, body)
        except ServiceError as exc:
            return exc.status, {"error": str(exc)}
        except WorkbenchError as exc:
            return 409, {"error": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            missing = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            return 400, {"error": f"malformed request: {missing}"}

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] != ["v1"] or len(parts) < 2:
            raise ServiceError(f"no such endpoint {method} {path}", 404)
        rest = parts[1:]
        if method == "POST" and rest == ["applications", "challenge"]:
            return 200, self.challenge(body.get("purpose", "issue"))
        if method == "POST" and rest == ["applications"]:
            return 202, self.apply(body)
        if method == "GET" and rest[0] == "applications" and len(rest) == 2 and rest[1] != \
                "challenge":
            return 200, self.status(rest[1])
        if method == "POST" and rest[0] == "applications" and rest[2:] == ["complete"]:
            return 200, self.complete(rest[1])
        if method == "POST" and rest == ["tsm"]:
            return 200, self.tsm_open(body["application_id"])
        if method == "POST" and rest[0] == "tsm" and rest[2:] == ["exchange"]:
            return 200, self.tsm_exchange(rest[1], body.get("response"))
        if method == "POST" and rest == ["releases"]:
            return 200, self.request_release(body)
        if method == "POST" and rest == ["revocations"]:
            return 200, self.request_revocation(body)
        if method == "POST" and rest == ["pin-resets"]:
            return 200, self.request_pin_reset(body)
        if rest[0] == "phones" and rest[2:] == ["jobs"] and len(rest) == 3:
            with self._tx() as conn:
                if self._se_keys(conn, rest[1]) is None:
                    raise ServiceError(f"unknown secure element {rest[1]!r}", 404)
            if method == "GET":
                return 200, {"jobs": self.jobs(rest[1])}
            if method == "POST":
                return 200, self.job_open(rest[1], body["job"])
        allowed = _allowed_methods(rest)
        if allowed and method not in allowed:
            raise ServiceError(f"{method} {path} is not served; use {' or '.join(allowed)}", 405)
        raise ServiceError(f"no such endpoint {method} {path}", 404)

    def challenge(self, purpose: str = "issue") -> dict[str, Any]:
        """A3: a fresh application id and 32-byte nonce for ``purpose``."""
        if purpose not in PURPOSES:
            raise ServiceError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}", 400)
        app = Application(self._new_id("app"), self._random(32, "nonce"), self.clock.now(),
                          purpose, "CHALLENGED", None, None, ("sign", "auth"), "", None, None, {})
        with self._tx() as conn:
            self._save_application(conn, app)
        return {"application_id": app.application_id, "nonce": app.nonce.hex(),
                "server_time": app.created.isoformat()}

    def _fresh(self, conn: sqlite3.Connection, body: dict[str, Any], purpose: str) -> Application:
        app = self._application(conn, body["application_id"])
        if app.state != "CHALLENGED" or app.purpose != purpose:
            raise ServiceError(f"application {app.application_id} is not a fresh {purpose} "
                               "challenge; ask for a new one", 409)
        if self.clock.now() - app.created > NONCE_LIFETIME:
            raise ServiceError("the challenge expired; ask for a new one", 410)
        app.state = "USED"
        return app

    def _card_signed(self, conn: sqlite3.Connection, body: dict[str, Any], tbs: bytes) -> str:
        """A7: the card's signature, its certificate's chain, validity and status → person."""
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(body["card_sign_cert"]))
            signature = base64.b64decode(body["signature"])
        except (ValueError, TypeError):
            raise ServiceError("card_sign_cert and signature must be base64 (DER, raw)",
                               400) from None
        now = self.clock.now()
        try:
            ca = self.store.authority.ca_for(cert)
        except PkiError:
            raise ServiceError("the card's signing certificate is not from this authority",
                               403) from None
        if ca.hierarchy is not Hierarchy.SIGN:
            raise ServiceError("that is not a signing certificate (署名用電子証明書 needed)", 403)
        try:
            ca_key = ca.certificate.public_key()
            assert isinstance(ca_key, rsa.RSAPublicKey)
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                          hashes.SHA256())
            key = cert.public_key()
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, AssertionError):
            raise ServiceError("the card's signature does not verify with its signing "
                               "certificate", 403) from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ServiceError("the card's signing certificate is not valid now (expired); "
                               "renew it at the municipal office first", 403)
        status = self.store.registry.status(_aki(cert), cert.serial_number, now)
        if not status.is_good:
            raise ServiceError(f"the card's signing certificate is {status.state.value}; a new "
                               "one is needed first (smartphone-service.md 4, 10)", 403)
        row = conn.execute("SELECT pid FROM svc_card_certs WHERE issuer_key_id = ? AND "
                           "serial = ?", (_aki(cert).hex(), _hex_serial(cert.serial_number))
                           ).fetchone()
        if row is None:
            raise ServiceError("this card is not one this authority issued to a registered "
                               "person", 403)
        person = self._person(conn, row[0])
        if not person.alive:
            raise ServiceError("the person's certificates are revoked (death or moving abroad)",
                               403)
        return person.pid

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """A6-A8: check everything, open the pair; phase B starts."""
        types = tuple(body["requested_types"])
        if not types or not set(types) <= {"sign", "auth"} or len(set(types)) != len(types):
            raise ServiceError("requested_types must name 'sign' and/or 'auth'", 400)
        if "auth" not in types:
            raise ServiceError("the phone auth certificate is always part of a phone pair "
                               "(each phone holds both certificates or the auth one; 14.2)", 400)
        version = int(body["app_version"])
        if version < MIN_APP_VERSION:
            raise ServiceError(f"Mynaportal app {version} is too old; {MIN_APP_VERSION} or later "
                               "is needed (smartphone-service.md 3)", 403)
        se_id = str(body["se_id"])
        with self._tx() as conn:
            app = self._fresh(conn, body, "issue")
            if self._se_keys(conn, se_id) is None:
                raise ServiceError("this phone's secure element is not one the TSM can reach "
                                   "(no GP-SE, or not a supported model)", 403)
            pid = self._card_signed(conn, body, tbs_application(
                app.application_id, app.nonce, se_id, types, version))
            self._refuse_other_owner(conn, Pair("", pid, se_id, "", PairState.NONE, None, None,
                                                None, self.clock.now()))
            app.state, app.person, app.se_id, app.types = "APPLIED", pid, se_id, types
            app.device_model = str(body.get("device_model", ""))
            pair = Pair(self._new_id("pair"), pid, se_id, app.device_model, PairState.NONE,
                        None, None, None, self.clock.now())
            app.pair_id = pair.pair_id
            app.ready_at = self.clock.now() + self.issuance_delay
            old = self._live(conn, pid)
            if old is not None:
                app.detail["supersedes"] = old.pair_id  # A7: noted, done at C13
            self._save_application(conn, app)
            self._event(conn, pair, Event.APPLY, detail=app.application_id)
        answer = {"application_id": app.application_id, "state": "APPLIED",
                  "ready_at": _iso(app.ready_at)}
        if old is not None:
            answer["supersedes"] = old.device_model or old.se_id
        return answer

    def _ready(self, conn: sqlite3.Connection, app: Application) -> None:
        """Phase B done (at ``ready_at``): READY_FOR_REGISTRATION, unless superseded meanwhile."""
        if (app.state == "APPLIED" and app.ready_at is not None
                and self.clock.now() >= app.ready_at):
            pair = self._pairs(conn, "pair_id = ?", (app.pair_id,))[0]
            if pair.state is PairState.APPLIED:
                app.state = "READY_FOR_REGISTRATION"
                self._event(conn, pair, Event.ISSUED, at=app.ready_at)
            else:  # superseded meanwhile by a newer application
                app.state = pair.state.value
            self._save_application(conn, app)

    def issue_due(self) -> int:
        """Run the server-side issuance procedure (phase B) of every application whose time
        has come, stamped at its ``ready_at``; how many became ready."""
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT application_id FROM svc_applications WHERE state = 'APPLIED' AND "
                "ready_at <= ? ORDER BY ready_at", (_iso(self.clock.now()),))]
            for application_id in ids:
                self._ready(conn, self._application(conn, application_id))
        return len(ids)

    def status(self, application_id: str) -> dict[str, Any]:
        """B3: READY_FOR_REGISTRATION once the server-side procedure has run."""
        with self._tx() as conn:
            app = self._application(conn, application_id)
            self._ready(conn, app)
            if app.state == "READY_FOR_REGISTRATION" and app.pair_id is not None:
                pair = self._pairs(conn, "pair_id = ?", (app.pair_id,))[0]
                if pair.state is not PairState.READY_FOR_REGISTRATION:  # superseded (C13)
                    app.state = pair.state.value
                    self._save_application(conn, app)
        answer = {"application_id": application_id, "state": app.state, **app.detail}
        if app.ready_at is not None:
            answer["ready_at"] = _iso(app.ready_at)
        return answer

    # -- the TSM (15.2 C1-C12, 15.4-15.7) ----------------------------------------------------

    def tsm_open(self, application_id: str) -> dict[str, Any]:
        """C1-C10 as one TSM session the app relays: clean state, install, key pairs made in
        the SE, certificates issued for them and written, SET STATUS 0F."""
        with self._tx() as conn:
            app = self._application(conn, application_id)
            if app.state != "READY_FOR_REGISTRATION":
                raise ServiceError(f"the application is {app.state}, not ready for registration",
                                   409)
            pair = self._pairs(conn, "pair_id = ?", (app.pair_id,))[0]
            if pair.state is not PairState.READY_FOR_REGISTRATION:  # superseded meanwhile (C13)
                raise ServiceError(f"this application was superseded by a newer registration "
                                   f"(its pair is {pair.state.value}); apply again", 409)
            person = self._person(conn, pair.person)
            now = self.clock.now()
            for kind, not_after in (("auth", person.auth_not_after),
                                    ("sign", person.sign_not_after)):
                if kind in app.types and not_after is not None and not_after <= now:
                    raise ServiceError(
                        f"the card's {kind} certificate expired on {not_after:%Y-%m-%d}; phone "
                        "certificates follow the card's validity (6): renew the card at the "
                        "municipality, then apply again", 409)
            self._refuse_other_owner(conn, pair)

        def script(tsm: TsmSession) -> dict[str, int]:
            tsm.delete_jpki(missing_ok=True)  # C3: a clean state
            tsm.install_jpki()  # C4
            tsm.personalise()  # C5
            return self._issue_into(tsm, pair, person, app.types)

        def done(serials: dict[str, int]) -> dict[str, Any]:
            with self._tx() as conn:
                # C3 wiped the SE: jobs queued for what it held before (a lock, a delete, a
                # re-issue of an older pair) must not act on the applet just registered
                conn.execute("UPDATE svc_jobs SET done = 'dropped' WHERE se_id = ? AND "
                             "done IS NULL", (pair.se_id,))
                fresh = self._application(conn, application_id)
                fresh.state = "REGISTERED_IN_SE"
                fresh.detail["serials"] = {k: f"{v:X}" for k, v in serials.items()}
                self._save_application(conn, fresh)
                row = self._pairs(conn, "pair_id = ?", (pair.pair_id,))[0]
                row.sign_serial, row.auth_serial = serials.get("sign"), serials.get("auth")
                row.not_after = person.auth_not_after
                self._save_pair(conn, row)
                for kind, serial in serials.items():
                    self._remember(conn, pair.pair_id, kind, serial)
            return {"state": "REGISTERED_IN_SE", "serials": fresh.detail["serials"]}

        return self._start(script, pair.se_id, done)

    def _refuse_other_owner(self, conn: sqlite3.Connection, pair: Pair) -> None:
        """One JPKI applet per SE (5, 15.2 C3): a phone holding another person's live pair
        is refused until that person revokes it in the app (8), rather than wiping keys whose
        certificates would stay good."""
        states = tuple(s.value for s in LIVE_STATES)
        others = self._pairs(conn, f"se_id = ? AND pid != ? AND state IN "
                                   f"({','.join('?' * len(states))})",
                             (pair.se_id, pair.person, *states))
        if others:
            raise ServiceError("this phone holds another person's phone certificates; they "
                               "must revoke them in the Mynaportal app first (8)", 409)

    def _issue_into(self, tsm: TsmSession, pair: Pair, person: PersonRecord,
                    types: tuple[str, ...]) -> dict[str, int]:
        """C6-C10: key pairs made in the SE, certificates issued over them (C8, Not After
        following the card's, spec 6) and written (C9), SET STATUS 0F (C10)."""
        authority = self.store.authority
        holder = person.holder
        now = self.clock.now()
        der = Encoding.DER
        serials: dict[str, int] = {}
        dgis: list[tuple[int, bytes]] = []
        issued: list[x509.Certificate] = []
        plan = (("auth", authority.issue_auth_certificate, person.auth_not_after,
                 gp.DGI.AUTH_CERTIFICATE),
                ("sign", authority.issue_signing_certificate, person.sign_not_after,
                 gp.DGI.SIGN_CERTIFICATE))
        for kind, issue, not_after, dgi in plan:
            if kind not in types:
                continue
            cert = issue(holder, tsm.generate_key(kind), at=now, not_after=not_after,
                         token="gpse", **self._issue_options())
            serials[kind] = cert.serial_number
            issued.append(cert)
            dgis.append((dgi, cert.public_bytes(der)))
        # C8: registered at once, so OCSP knows them; ACTIVE in the service only after C13
        self.store.register_issued(issued, partition=holder.municipality_code, token="gpse")
        for h, tag in ((Hierarchy.AUTH, gp.DGI.AUTH_CA_CERTIFICATE),
                       (Hierarchy.SIGN, gp.DGI.SIGN_CA_CERTIFICATE)):
            dgis.append((tag, authority.current_ca(h, now).certificate.public_bytes(der)))
        dgis.append((gp.DGI.TOKEN_INFO, token_info(LABEL_GPSE, pair.pair_id[-16:])))
        dgis.append((gp.DGI.CERTIFICATE_PRESENCE, certificate_presence("sign" in serials)))
        tsm.store(dgis, last=True)  # C9
        tsm.set_status(gp.ApplicationState.PERSONALIZED)  # C10
        return serials

    def _start(self, script: Callable[[TsmSession], Any], se_id: str,
               done: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        with self._tx() as conn:
            keys = self._se_keys(conn, se_id)
        if keys is None:
            raise ServiceError("the TSM has no keys for this SE", 403)
        run = _TsmRun(script, keys, None if self._seed is None else self._random(8, "host"))
        session_id = self._new_id("tsm")
        self._tsm[session_id] = (run, done)
        return self._answer(session_id, run.step(None))

    def _answer(self, session_id: str, step: tuple[str, Any]) -> dict[str, Any]:
        kind, value = step
        if kind == "command":
            command, what, operation = value
            return {"session": session_id, "command": command.hex().upper(), "what": what,
                    "operation": operation, "done": False}
        run, done = self._tsm.pop(session_id)
        if kind == "error":
            raise ServiceError(f"the TSM session failed: {value}", 502)
        return {"session": session_id, "done": True, **done(run.result)}

    def tsm_exchange(self, session_id: str, response: object) -> dict[str, Any]:
        """The relay posts the SE's answer to the last command and gets the next one."""
        entry = self._tsm.get(session_id)
        if entry is None:
            raise ServiceError("unknown or finished TSM session (the application API keeps "
                               "sessions in one process: pki serve --workers 1)", 404)
        if not isinstance(response, str):
            raise ServiceError("the exchange carries the SE's answer to the last command as "
                               "hex in 'response'", 400)
        try:
            raw = bytes.fromhex(response)
        except ValueError:
            raise ServiceError("'response' is not hex", 400) from None
        if len(raw) < 2:
            raise ServiceError("an SE answer ends with a 2-byte status word", 400)
        return self._answer(session_id, entry[0].step(raw))

    def complete(self, application_id: str) -> dict[str, Any]:
        """C12-C13: a TSM session reads the registration state (DF70: applet personalised,
        both PINs set by the app); when it is complete the pair becomes ACTIVE and the
        person's previous phone is superseded (its certificates revoked at once, its SE
        content deleted when it next connects)."""
        with self._tx() as conn:
            app = self._application(conn, application_id)
            if app.state != "REGISTERED_IN_SE":
                raise ServiceError(f"the application is {app.state}, not registered in the SE "
                                   "yet", 409)
            se_id = app.se_id
        assert se_id is not None

        def script(tsm: TsmSession) -> tuple[int, bool, bool]:
            return tsm.registration_state()

        def done(state: tuple[int, bool, bool]) -> dict[str, Any]:
            life_cycle, auth_set, sign_set = state
            wanted_sign = "sign" in app.types
            if life_cycle != gp.ApplicationState.PERSONALIZED or not auth_set or (
                    wanted_sign and not sign_set):
                raise ServiceError("the registration receipt says the phone PINs are not set "
                                   "yet (C11); set them and complete again", 409)
            with self._tx() as conn:
                fresh = self._application(conn, application_id)
                pair = self._pairs(conn, "pair_id = ?", (fresh.pair_id,))[0]
                if pair.state is not PairState.READY_FOR_REGISTRATION:
                    raise ServiceError(f"this application was superseded by a newer "
                                       f"registration (its pair is {pair.state.value}); apply "
                                       "again", 409)
                superseded = []
                for old in self._pairs(conn, "pid = ?", (pair.person,)):
                    if old.pair_id == pair.pair_id or old.state in (
                            PairState.REVOKED, PairState.EXPIRED, PairState.NONE):
                        continue
                    self._event(conn, old, Event.SUPERSEDED, detail=pair.pair_id)
                    superseded.append(old.pair_id)
                    if old.se_id != pair.se_id:
                        self._queue(conn, old.se_id, "delete")
                self._event(conn, pair, Event.REGISTERED, detail=application_id)
                fresh.state = "ACTIVE"
                self._save_application(conn, fresh)
            return {"state": "ACTIVE", "pair": pair.pair_id, "superseded": superseded}

        return self._start(script, se_id, done)

    def request_release(self, body: dict[str, Any]) -> dict[str, Any]:
        """R1-R2: the owner, re-authenticated with the card, lifts the hold of a found phone:
        the auth hold is removed, the signing certificate revoked; R3 (a job) brings the new
        one."""
        se_id = str(body["se_id"])
        with self._tx() as conn:
            app = self._fresh(conn, body, "release")
            pid = self._card_signed(conn, body, tbs_request(app.application_id, app.nonce,
                                                            "release", se_id))
            pair = self._live(conn, pid)
            if pair is None or pair.se_id != se_id or pair.state is not PairState.ON_HOLD:
                raise ServiceError("this phone's certificates are not on hold for this person",
                                   409)
            self._save_application(conn, app)
            self._release(conn, pair)
        return {"pair": pair.pair_id, "state": pair.state.value}

    def request_revocation(self, body: dict[str, Any]) -> dict[str, Any]:
        """15.6: revocation signed on the phone with its own signing key (phone password)."""
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(body["phone_sign_cert"]))
            signature = base64.b64decode(body["signature"])
        except (ValueError, TypeError):
            raise ServiceError("phone_sign_cert and signature must be base64", 400) from None
        with self._tx() as conn:
            app = self._fresh(conn, body, "revoke")
            found = self._pairs(conn, "sign_serial = ?", (_hex_serial(cert.serial_number),))
            pair = found[-1] if found else None
            if pair is None or pair.se_id != str(body["se_id"]):
                raise ServiceError("that signing certificate is not the current phone signing "
                                   "certificate of this SE", 403)
            try:
                self.store.authority.ca_for(cert)
                key = cert.public_key()
                assert isinstance(key, rsa.RSAPublicKey)
                key.verify(signature, tbs_request(app.application_id, app.nonce, "revoke",
                                                  pair.se_id), padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, AssertionError, PkiError):
                raise ServiceError("the revocation request's signature does not verify",
                                   403) from None
            if not pair.live:
                raise ServiceError(f"the phone's certificates are already {pair.state.value}",
                                   409)
            self._save_application(conn, app)
            self._event(conn, pair, Event.USER_REVOCATION, detail=str(body.get("why", "")))
            self._queue(conn, pair.se_id, "delete")
        return {"pair": pair.pair_id, "state": pair.state.value}

    def request_pin_reset(self, body: dict[str, Any]) -> dict[str, Any]:
        """15.7: a forgotten or blocked phone PIN (``which``: auth or sign), reset with the
        card: a job clears the PIN object; the app then sets the new value (C11)."""
        which = str(body["which"])
        if which not in ("auth", "sign"):
            raise ServiceError("which must be 'auth' or 'sign'", 400)
        se_id = str(body["se_id"])
        fid = PIN_AUTH if which == "auth" else PIN_SIGN
        with self._tx() as conn:
            app = self._fresh(conn, body, f"pin-reset-{which}")
            pid = self._card_signed(conn, body, tbs_request(app.application_id, app.nonce,
                                                            f"pin-reset-{which}", se_id))
            pair = self._live(conn, pid)
            if pair is None or pair.se_id != se_id or pair.state is PairState.ON_HOLD:
                raise ServiceError("this phone carries no active certificates of this person",
                                   409)
            self._save_application(conn, app)
            job = f"clear-pin:{fid:04X}"
            self._queue(conn, se_id, job)
        return {"pair": pair.pair_id, "job": job}

    # -- jobs for an SE when its phone connects (S3 lock, R3, 15.6 delete, 15.7 reset) --------

    def _queue(self, conn: sqlite3.Connection, se_id: str, job: str) -> None:
        pending = [r[0] for r in conn.execute("SELECT job FROM svc_jobs WHERE se_id = ? AND "
                                              "done IS NULL", (se_id,))]
        if job == "delete":  # nothing else matters for an SE whose applet goes
            conn.execute("UPDATE svc_jobs SET done = 'dropped' WHERE se_id = ? AND done IS NULL",
                         (se_id,))
            pending = []
        if job in pending:
            return
        conn.execute("INSERT INTO svc_jobs (se_id, job, queued) VALUES (?, ?, ?)",
                     (se_id, job, _iso(self.clock.now())))

    def jobs(self, se_id: str) -> list[str]:
        """The SE jobs waiting for this phone, in order."""
        with self._tx() as conn:
            return [r[0] for r in conn.execute("SELECT job FROM svc_jobs WHERE se_id = ? AND "
                                               "done IS NULL ORDER BY seq", (se_id,))]

    def job_open(self, se_id: str, job: str) -> dict[str, Any]:
        """Run one waiting job as a TSM session the app relays."""
        if job not in self.jobs(se_id):
            raise ServiceError(f"no pending job {job!r} for this SE", 404)
        script: Callable[[TsmSession], Any]
        if job == "lock":
            def script(tsm: TsmSession) -> None:
                tsm.lock()
        elif job == "delete":
            def script(tsm: TsmSession) -> bool:
                return tsm.delete_jpki(missing_ok=True)
        elif job.startswith("reissue-sign:"):
            pair = self.pair(job.split(":", 1)[1])

            def script(tsm: TsmSession) -> int:
                return self._reissue_sign(tsm, pair)
        elif job.startswith("clear-pin:"):
            fid = int(job.split(":", 1)[1], 16)

            def script(tsm: TsmSession) -> None:
                tsm.personalise()
                tsm.store([(gp.DGI.CLEAR_PIN, fid.to_bytes(2, "big"))], last=True)
        else:  # pragma: no cover - only the jobs above are ever queued
            raise ServiceError(f"unknown job {job!r}", 500)

        def done(result: Any) -> dict[str, Any]:
            with self._tx() as conn:
                conn.execute("UPDATE svc_jobs SET done = ? WHERE se_id = ? AND job = ? AND "
                             "done IS NULL", (_iso(self.clock.now()), se_id, job))
                if job.startswith("reissue-sign:"):
                    fresh = self._pairs(conn, "pair_id = ?", (pair.pair_id,))[0]
                    fresh.sign_serial = int(result)
                    self._remember(conn, pair.pair_id, "sign", int(result))
                    self._event(conn, fresh, Event.SIGN_REREGISTERED, detail=f"{result:X}")
            return {"job": job}

        return self._start(script, se_id, done)

    def _reissue_sign(self, tsm: TsmSession, pair: Pair) -> int:
        """R3: unlock (if the lock reached the phone), a new signing key pair made in the SE,
        a new signing certificate written to EF 0001. The phone signing password stays."""
        states = {aid: lc for aid, lc, _ in tsm.get_status(0x40)}
        if gp.is_locked(states.get(gp.JPKI_INSTANCE_AID, 0)):
            tsm.unlock()
        tsm.personalise()
        person = self.person(pair.person)
        cert = self.store.authority.issue_signing_certificate(
            person.holder, tsm.generate_key("sign"), at=self.clock.now(),
            not_after=person.sign_not_after, token="gpse", **self._issue_options())
        self.store.register_issued([cert], partition=person.holder.municipality_code,
                                   token="gpse")
        tsm.store([(gp.DGI.SIGN_CERTIFICATE, cert.public_bytes(Encoding.DER))], last=True)
        return cert.serial_number

    # -- events that do not come through the app -----------------------------------------

    def hotline(self, pid: str, *, revoke: bool = False, at: datetime | None = None,
                invalid_since: datetime | None = None) -> Pair | None:
        """S2: hold (or, phone not found, revoke) the person's phone certificates; S3 (lock)
        or the deletion waits as a job for the phone. None when nothing was live."""
        with self._tx() as conn:
            pair = self._live(conn, pid)
            if pair is None:
                return None
            if revoke:
                self._event(conn, pair, Event.HOTLINE_REVOKE, at=at,
                            detail=f"lost since {_iso(invalid_since)}" if invalid_since else "")
                self._queue(conn, pair.se_id, "delete")
            else:
                if pair.state is PairState.ON_HOLD:
                    raise ServiceError("the phone's certificates are already on hold", 409)
                self._event(conn, pair, Event.HOTLINE_HOLD, at=at)
                self._queue(conn, pair.se_id, "lock")
        return pair

    def _release(self, conn: sqlite3.Connection, pair: Pair) -> None:
        self._event(conn, pair, Event.RELEASE)
        conn.execute("UPDATE svc_jobs SET done = 'dropped' WHERE se_id = ? AND job = 'lock' AND "
                     "done IS NULL", (pair.se_id,))
        self._queue(conn, pair.se_id, f"reissue-sign:{pair.pair_id}")

    def card_event(self, pid: str, event: Event) -> Pair | None:
        """Spec 10, 15.7: a change on the card that reaches the phone pair (4 basic facts,
        death or moving abroad, a CA incident)."""
        if event not in (Event.BASIC_FACTS_CHANGED, Event.DEATH_OR_ABROAD, Event.CA_INCIDENT):
            raise ServiceError(f"{event.value} is not a card event", 400)
        with self._tx() as conn:
            if event is Event.DEATH_OR_ABROAD:
                conn.execute("UPDATE svc_persons SET alive = 0 WHERE pid = ?", (pid,))
            pair = self._live(conn, pid)
            if pair is not None:
                self._event(conn, pair, event)
                if EVENTS[event].auth == "revoke":
                    self._queue(conn, pair.se_id, "delete")
        return pair

    def expire_due(self) -> list[Pair]:
        """Pairs whose Not After has passed move to EXPIRED (15.8), stamped at Not After."""
        now = self.clock.now()
        out = []
        with self._tx() as conn:
            states = tuple(s.value for s in LIVE_STATES)
            for pair in self._pairs(conn, f"not_after < ? AND state IN "
                                    f"({','.join('?' * len(states))})", (_iso(now), *states)):
                self._event(conn, pair, Event.EXPIRY, at=pair.not_after)
                out.append(pair)
        return out


def _allowed_methods(rest: list[str]) -> tuple[str, ...]:
    """The methods :data:`API` serves on a path (after ``/v1``), for a 405. A literal segment
    beats a ``{placeholder}``: ``/applications/challenge`` is not ``/applications/{id}``."""
    best: tuple[int, list[str]] = (-1, [])
    for method, template, _ in API:
        parts = template.split("/")[2:]
        if len(parts) != len(rest) or any(
                p != r and not p.startswith("{") for p, r in zip(parts, rest, strict=True)):
            continue
        literal = sum(not p.startswith("{") for p in parts)
        if literal > best[0]:
            best = (literal, [method])
        elif literal == best[0]:
            best[1].append(method)
    return tuple(sorted(set(best[1])))


def _aki(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        raise ServiceError("the certificate has no AuthorityKeyIdentifier", 400) from None

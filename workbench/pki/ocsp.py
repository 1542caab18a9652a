"""The authority's OCSP responder (RFC 6960): real-time certificate status for relying parties.

smartphone-service.md 11.3: J-LIS publishes revocation information as CRLs (periodic) and over
OCSP (real time); the reasons in use include certificateHold, which is how a suspension
(一時利用停止, section 9) is published. This module answers OCSP requests about certificates of
the simulated authority from any :class:`~workbench.pki.status.StatusSource` (the registry, or a
test double). It has no network code: :mod:`workbench.pki.server` carries the bytes over HTTP.

What it does, and where the rule comes from:

- **Signers** (RFC 6960 4.2.2.2): ``"direct"`` signs with the CA key itself (responderID =
  the CA's key hash, no certificates attached); ``"delegated"`` signs with a responder key
  certified by that same CA (EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short validity), and
  attaches that certificate. Every CA generation has its own signer, because the three
  generations share one DN and only the key tells them apart (jpki-card.md 9.2).
- **CertIDs** with SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 (4.1.1), echoed unchanged;
  the issuer must match on both hashes. Several CertIDs of one CA in one request are answered
  together (at most :data:`MAX_REQUESTS_PER_OCSP_REQUEST`); CertIDs of several CAs cannot be
  signed by one authorized responder and are refused (malformedRequest).
- **Encoding**: requests are parsed by cryptography (asn1crypto for several CertIDs);
  responses are written as DER by this module and signed sha256WithRSAEncryption through
  cryptography (see the note above :func:`response_data` for why, with the measurement).
- **Status**: good, revoked (revocationTime + reason) or unknown (2.2); a hold is published as
  revoked with reason certificateHold and disappears when released (RFC 5280 5.3.1).
- **Errors** (2.3): bytes that are not an OCSPRequest, an empty or oversized nonce (RFC 8954
  2.1: 1..32 octets) → ``malformedRequest``; a CA this authority does not have, or one outside
  its validity at the current time → ``unauthorized``; a failing status source →
  ``internalError``. :meth:`OcspResponder.respond` never raises for what a client sends.
- **Nonce** (RFC 8954, RFC 6960 4.4.1): echoed in the response extensions when present.

Caching (the rule production responders follow, RFC 5019 section 6): a response to a request
*without* a nonce for one CertID is signed once and reused while it is young (``cache_for``,
default a quarter of the validity window) and still true. "Still true" is checked so that a
revocation, hold or release is visible in the very next response:

- when the registry lives in a SQLite file (the authority store), the responder watches its
  ``PRAGMA data_version`` through a connection of its own. SQLite changes that number whenever
  any other connection commits, whether the registry object in this process or ``pki revoke``
  in another one. While it is unchanged, and the clock is before the certificate's next
  recorded event (a revocation can be recorded for a later moment), the cached response is
  served without a registry lookup. After any change the certificate's status is asked again:
  unchanged → the same response is kept, changed → re-signed;
- for any other status source (an in-memory registry, a test double) the status is asked on
  every request and compared with the one the cached response was signed for.

Either way a clock moved back before a response's producedAt, or a renewed delegated
responder certificate, re-signs. Requests with a nonce are always signed afresh, since the
nonce is inside the signed data.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from workbench import tlv
from workbench.errors import PkiError
from workbench.pki.authority import Authority, CertificateAuthority
from workbench.pki.clock import Clock, as_utc
from workbench.pki.keys import generate_rsa_key
from workbench.pki.profiles import Hierarchy
from workbench.pki.status import (
    CertState,
    CertStatus,
    RevocationReason,
    StatusSource,
    WatchableStatusSource,
)

__all__ = [
    "HASH_ALGORITHMS",
    "MAX_NONCE_LENGTH",
    "MAX_REQUESTS_PER_OCSP_REQUEST",
    "CertQuery",
    "MalformedOcspRequest",
    "OcspRequestInfo",
    "OcspResponder",
    "ResponderMode",
    "issue_responder_certificate",
    "parse_request",
    "public_key_bits",
    "response_data",
]

log = logging.getLogger(__name__)

#: CertID hash algorithms answered (RFC 6960 4.1.1 allows any; these are the ones in use).
HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

#: RFC 8954 section 2.1: ``Nonce ::= OCTET STRING(SIZE(1..32))``.
MIN_NONCE_LENGTH = 1
MAX_NONCE_LENGTH = 32

#: More CertIDs than this in one request are refused: each costs a registry lookup, and no
#: relying party needs more than a chain's worth at once (MODEL, a guard against amplification).
MAX_REQUESTS_PER_OCSP_REQUEST = 32

#: Unsuccessful responses carry no signature (RFC 6960 4.2.1), so they are constants.
MALFORMED_REQUEST = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(Encoding.DER)
INTERNAL_ERROR = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.INTERNAL_ERROR).public_bytes(Encoding.DER)
UNAUTHORIZED = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(Encoding.DER)

#: A delegated responder certificate lives this long (RFC 6960 4.2.2.2.1: with ocsp-nocheck
#: "the CA SHOULD issue a certificate with a short lifetime") and is renewed before it ends.
RESPONDER_CERT_LIFETIME = timedelta(days=7)
RESPONDER_CERT_BACKDATE = timedelta(hours=1)
RESPONDER_CERT_RENEW_BEFORE = timedelta(days=1)


class ResponderMode(StrEnum):
    """Who signs the responses (RFC 6960 4.2.2.2)."""

    DIRECT = "direct"  # the CA key itself
    DELEGATED = "delegated"  # a responder key certified by the CA (id-kp-OCSPSigning)


class MalformedOcspRequest(PkiError):
    """Bytes that are not an OCSPRequest this responder can answer (``malformedRequest``)."""


@dataclass(frozen=True)
class CertQuery:
    """One CertID of a request (RFC 6960 4.1.1), echoed unchanged in its SingleResponse."""

    algorithm: str  # a key of HASH_ALGORITHMS
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


@dataclass(frozen=True)
class OcspRequestInfo:
    """What a request asks: the CertIDs and the nonce (``None`` when absent)."""

    queries: tuple[CertQuery, ...]
    nonce: bytes | None = None


def public_key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING value: what a CertID's issuerKeyHash hashes (4.1.1)."""
    der = certificate.public_bytes(Encoding.DER)
    return asn1_x509.Certificate.load(der).public_key["public_key"].contents[1:]


def _check_nonce(nonce: bytes) -> bytes:
    if not MIN_NONCE_LENGTH <= len(nonce) <= MAX_NONCE_LENGTH:
        raise MalformedOcspRequest(f"nonce of {len(nonce)} octets; RFC 8954 2.1 allows "
                                   f"{MIN_NONCE_LENGTH}..{MAX_NONCE_LENGTH}")
    return nonce


def _parse_single(request: ocsp.OCSPRequest) -> OcspRequestInfo:
    try:
        algorithm = request.hash_algorithm.name
    except UnsupportedAlgorithm as exc:
        raise MalformedOcspRequest(f"unsupported CertID hash algorithm ({exc})") from None
    if algorithm not in HASH_ALGORITHMS:
        raise MalformedOcspRequest(f"unsupported CertID hash algorithm {algorithm}")
    query = CertQuery(algorithm, request.issuer_name_hash, request.issuer_key_hash,
                      request.serial_number)
    nonce = None
    for ext in request.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            nonce = _check_nonce(ext.value.nonce)
        elif ext.critical:
            raise MalformedOcspRequest(f"unknown critical request extension {ext.oid.dotted_string}")
    return OcspRequestInfo((query,), nonce)


def _parse_multiple(der: bytes) -> OcspRequestInfo:
    """Several CertIDs in one request: cryptography only reads one, asn1crypto reads them all."""
    try:
        request = asn1_ocsp.OCSPRequest.load(der, strict=True)
        tbs = request["tbs_request"]
        queries = []
        for item in tbs["request_list"]:
            cert_id = item["req_cert"]
            algorithm = cert_id["hash_algorithm"]["algorithm"].native
            if algorithm not in HASH_ALGORITHMS:
                raise MalformedOcspRequest(f"unsupported CertID hash algorithm {algorithm}")
            queries.append(CertQuery(algorithm, cert_id["issuer_name_hash"].native,
                                     cert_id["issuer_key_hash"].native,
                                     cert_id["serial_number"].native))
        nonce = None
        for ext in tbs["request_extensions"]:
            if ext["extn_id"].native == "nonce":
                nonce = _check_nonce(ext["extn_value"].parsed.native)
            elif ext["critical"].native:
                raise MalformedOcspRequest("unknown critical request extension "
                                           f"{ext['extn_id'].dotted}")
    except MalformedOcspRequest:
        raise
    except Exception as exc:  # asn1crypto parses lazily and raises many types on bad input
        raise MalformedOcspRequest(f"not a DER OCSPRequest ({type(exc).__name__})") from None
    if not queries:
        raise MalformedOcspRequest("the request lists no certificate")
    return OcspRequestInfo(tuple(queries), nonce)


def parse_request(der: bytes) -> OcspRequestInfo:
    """Decode an OCSPRequest (RFC 6960 4.1.1); :class:`MalformedOcspRequest` if it is not one.

    The common single-CertID request goes through cryptography's DER parser (strict and fast);
    requests with several CertIDs fall back to asn1crypto. Signed requests are accepted and
    their signature ignored: the service does not authenticate OCSP clients (4.1.2 makes the
    signature optional). Requests longer than the HTTP layer's limit never get here.
    """
    if not isinstance(der, bytes | bytearray | memoryview):
        raise PkiError(f"an OCSP request is bytes, not {type(der).__name__}")
    der = bytes(der)
    if not der:
        raise MalformedOcspRequest("empty request")
    try:
        request = ocsp.load_der_ocsp_request(der)
    except NotImplementedError:  # "OCSP request contains more than one request"
        info = _parse_multiple(der)
    except ValueError as exc:
        raise MalformedOcspRequest(f"not a DER OCSPRequest ({exc})") from None
    else:
        try:
            info = _parse_single(request)
        except MalformedOcspRequest:
            raise
        except ValueError as exc:  # extensions are decoded lazily
            raise MalformedOcspRequest(f"bad request extension ({exc})") from None
    if len(info.queries) > MAX_REQUESTS_PER_OCSP_REQUEST:
        raise MalformedOcspRequest(f"{len(info.queries)} CertIDs in one request; at most "
                                   f"{MAX_REQUESTS_PER_OCSP_REQUEST} are answered")
    return info


def issue_responder_certificate(
    ca: CertificateAuthority,
    public_key: rsa.RSAPublicKey,
    *,
    not_before: datetime,
    not_after: datetime,
    organization: str,
    serial: int | None = None,
) -> x509.Certificate:
    """A delegated OCSP responder certificate issued directly by ``ca`` (RFC 6960 4.2.2.2).

    id-kp-OCSPSigning in ExtendedKeyUsage is what authorizes the key to sign for this CA;
    id-pkix-ocsp-nocheck (4.2.2.2.1) tells clients not to check the responder's own status,
    which is why the lifetime is kept short. The subject names the hierarchy and generation so
    a person reading a response can tell the six responders apart (jpki-card.md 9.2).
    """
    start = as_utc(not_before, "not_before").replace(microsecond=0)
    end = as_utc(not_after, "not_after").replace(microsecond=0)
    if end <= start:
        raise PkiError("the responder certificate's not_after must be after not_before")
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ca.hierarchy.organizational_unit),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           f"OCSP Responder {ca.hierarchy.value} g{ca.generation.number}"),
    ])
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.name)
        .public_key(public_key)
        .serial_number(serial if serial is not None else secrets.randbits(63) | 1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class _Signer:
    """The key that signs for one CA, and the certificate that names it."""

    ca: CertificateAuthority
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate  # the CA's own, or the delegated responder's
    key_hash: bytes  # SHA-1 of the signer's public key bits: ResponderID byKey (4.2.1)
    delegated: bool

    def usable_at(self, now: datetime) -> bool:
        if not self.delegated:
            return True
        return (self.certificate.not_valid_before_utc <= now
                < self.certificate.not_valid_after_utc - RESPONDER_CERT_RENEW_BEFORE)


@dataclass(frozen=True)
class _Issuer:
    """One CA as the hot path needs it (its properties re-read extensions on every call)."""

    ca: CertificateAuthority
    name_hash: bytes
    key_id: bytes  # SHA-1 of the CA key: the registry's issuer_key_id
    not_before: datetime
    not_after: datetime


@dataclass
class _CachedResponse:
    fingerprint: tuple[object, ...]
    produced_at: datetime
    signer: _Signer
    der: bytes
    version: int | None  # registry data_version when the status was last confirmed
    fresh_until: datetime  # reuse without asking the registry until then (see _cached)


@dataclass
class _KnownStatus:
    """A status read from the registry, reused for signing while the registry is unchanged."""

    status: CertStatus
    asked_at: datetime  # the moment it was asked for
    version: int  # registry data_version read before asking
    fresh_until: datetime | None = None  # the certificate's next recorded event; None: not
    #                                      looked up yet (only when the status is asked again)


def _fingerprint(status: CertStatus) -> tuple[object, ...]:
    return (status.state, status.since, status.reason)


@dataclass
class CacheStats:
    """Counters of the pre-signed response cache (read by tests and the benchmark)."""

    hits: int = 0
    misses: int = 0
    stale: int = 0  # entries found but re-signed: status changed, too old, or new signer
    signed: int = 0  # every signature made, including nonce requests
    statuses_reused: int = 0  # nonce requests answered without asking the registry again


@dataclass
class _Cache:
    entries: dict[CertQuery, _CachedResponse] = field(default_factory=dict)
    # DER of a nonce-less single-CertID request → its parse: such a request is the same bytes
    # every time a client asks about that certificate (RFC 5019 2.1.1), and parsing it again
    # cost more than the rest of a cache hit
    requests: dict[bytes, OcspRequestInfo] = field(default_factory=dict)
    # (issuer key id, serial) → the status last read, for requests that are signed afresh
    statuses: dict[tuple[bytes, int], _KnownStatus] = field(default_factory=dict)
    stats: CacheStats = field(default_factory=CacheStats)


def _bounded_put(table: dict, key: object, value: object, limit: int) -> None:
    """Insert, first dropping the oldest entries beyond ``limit`` (dicts keep insertion order)."""
    table.pop(key, None)
    while len(table) >= limit:
        try:
            table.pop(next(iter(table)))
        except (StopIteration, KeyError, RuntimeError):  # raced with another thread
            break
    table[key] = value


class OcspResponder:
    """Answers DER OCSP requests for every CA generation of ``authority`` (RFC 6960).

    ``status`` is what knows the certificates (the registry; any
    :class:`~workbench.pki.status.StatusSource`). ``clock`` defaults to the authority's:
    thisUpdate/producedAt are "now" on that clock and the status is asked *as of* now, so a
    scenario can query before and after a revocation without sleeping. ``validity`` is the
    window between thisUpdate and nextUpdate; ``cache_for`` how long a pre-signed response is
    reused (see the module docstring for the invalidation rule); ``max_cache_entries`` bounds
    memory (oldest entries go first). ``responder_key`` is the delegated signer's key (a fresh
    RSA-2048 key by default).

    Thread-safe for concurrent :meth:`respond` calls as far as ``status`` is.
    """

    def __init__(
        self,
        authority: Authority,
        status: StatusSource,
        *,
        clock: Clock | None = None,
        mode: ResponderMode | str = ResponderMode.DIRECT,
        validity: timedelta = timedelta(hours=1),
        cache_for: timedelta | None = None,
        max_cache_entries: int = 100_000,
        responder_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        if not isinstance(authority, Authority):
            raise PkiError(f"authority must be an Authority, not {type(authority).__name__}")
        if not isinstance(status, StatusSource):
            raise PkiError("status must have a status(issuer_key_id, serial, at) method "
                           "(a Registry or another StatusSource)")
        try:
            self.mode = ResponderMode(mode)
        except ValueError:
            raise PkiError(f"mode must be 'direct' or 'delegated', got {mode!r}") from None
        if not isinstance(validity, timedelta) or validity <= timedelta(0):
            raise PkiError("validity must be a positive timedelta")
        cache_for = validity / 4 if cache_for is None else cache_for
        if not isinstance(cache_for, timedelta) or not timedelta(0) <= cache_for <= validity:
            raise PkiError("cache_for must be a timedelta between 0 and validity")
        if max_cache_entries < 0:
            raise PkiError("max_cache_entries must be ≥ 0")
        self.authority = authority
        self.status_source = status
        self.clock: Clock = clock if clock is not None else authority.clock
        self.validity = validity
        self.cache_for = cache_for
        self.max_cache_entries = max_cache_entries
        self._responder_key = responder_key
        self._lock = threading.Lock()
        self._signers: dict[bytes, _Signer] = {}
        self._cache = _Cache()
        self._issuers = self._issuer_table()
        # isinstance() against a runtime-checkable Protocol costs ~10 µs: asked once, here
        self._watchable = isinstance(status, WatchableStatusSource)
        self._watch = status.watch() if self._watchable else None

    def close(self) -> None:
        """Release the registry watch's database connection (the responder stays usable,
        asking the registry on every request)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    def __repr__(self) -> str:
        return (f"OcspResponder(mode={self.mode.value}, validity={self.validity}, "
                f"cache_for={self.cache_for}, CAs={len(self.certificate_authorities())})")

    # -- issuers and signers -------------------------------------------------------------------

    def certificate_authorities(self) -> list[CertificateAuthority]:
        """Every CA this responder answers for: all generations of both hierarchies."""
        numbers = sorted(g.number for g in self.authority.profile.generations)
        return [self.authority.ca(h, n) for h in Hierarchy for n in numbers]

    def _issuer_table(self) -> dict[tuple[str, bytes], _Issuer]:
        """(hash algorithm, issuerKeyHash) → CA, for every algorithm a CertID may use (4.1.1)."""
        table: dict[tuple[str, bytes], _Issuer] = {}
        for ca in self.certificate_authorities():
            name_der = ca.certificate.subject.public_bytes()
            key_bits = public_key_bits(ca.certificate)
            key_id = hashlib.sha1(key_bits).digest()
            for algorithm in HASH_ALGORITHMS:
                name_hash = hashlib.new(algorithm, name_der).digest()
                key_hash = hashlib.new(algorithm, key_bits).digest()
                table[(algorithm, key_hash)] = _Issuer(
                    ca, name_hash, key_id, ca.generation.not_before, ca.generation.not_after)
        return table

    def _delegated_key(self) -> rsa.RSAPrivateKey:
        if self._responder_key is None:
            self._responder_key = generate_rsa_key(None, self.authority.profile.key_bits)
        return self._responder_key

    def _signer(self, ca: CertificateAuthority, now: datetime,
                key_id: bytes | None = None) -> _Signer:
        key_id = ca.key_identifier if key_id is None else key_id
        signer = self._signers.get(key_id)
        if signer is not None and signer.usable_at(now):
            return signer
        with self._lock:
            signer = self._signers.get(key_id)
            if signer is not None and signer.usable_at(now):
                return signer
            if self.mode is ResponderMode.DIRECT:
                signer = _Signer(ca, ca.private_key, ca.certificate, key_id, False)
            else:
                key = self._delegated_key()
                start = max(now - RESPONDER_CERT_BACKDATE, ca.certificate.not_valid_before_utc)
                end = min(now + RESPONDER_CERT_LIFETIME, ca.certificate.not_valid_after_utc)
                cert = issue_responder_certificate(
                    ca, key.public_key(), not_before=start, not_after=end,
                    organization=self.authority.profile.organization)
                key_hash = hashlib.sha1(public_key_bits(cert)).digest()
                signer = _Signer(ca, key, cert, key_hash, True)
            self._signers[key_id] = signer
            return signer

    def responder_certificate(self, hierarchy: Hierarchy | str, generation: int,
                              at: datetime | None = None) -> x509.Certificate:
        """The certificate whose key signs for that CA at ``at`` (the CA's own when direct).

        For ``openssl ocsp -VAfile`` and for relying parties that pin the responder.
        """
        ca = self.authority.ca(hierarchy, generation)
        return self._signer(ca, self._now(at)).certificate

    # -- answering -----------------------------------------------------------------------------

    @property
    def cache_stats(self) -> CacheStats:
        return self._cache.stats

    def clear_cache(self) -> None:
        """Forget every pre-signed response (they are re-signed on the next request)."""
        self._cache.entries.clear()
        self._cache.requests.clear()
        self._cache.statuses.clear()

    def _now(self, at: datetime | None = None) -> datetime:
        moment = self.clock.now() if at is None else at
        if moment.tzinfo is not UTC:
            moment = as_utc(moment, "at")
        return moment.replace(microsecond=0)

    def respond(self, request_der: bytes) -> bytes:
        """The DER OCSPResponse for ``request_der``; never raises for what a client sends.

        Unsuccessful answers follow RFC 6960 2.3 (see the module docstring for which is which).
        """
        memo = self._cache.requests
        info = memo.get(request_der) if type(request_der) is bytes else None
        if info is None:
            try:
                info = parse_request(request_der)
            except MalformedOcspRequest as exc:
                log.debug("malformed OCSP request: %s", exc)
                return MALFORMED_REQUEST
            if (info.nonce is None and len(info.queries) == 1 and self.max_cache_entries
                    and type(request_der) is bytes):
                _bounded_put(memo, request_der, info, self.max_cache_entries)
        try:
            return self.respond_to(info)
        except _Unauthorized as exc:
            log.debug("unauthorized OCSP request: %s", exc)
            return UNAUTHORIZED
        except MalformedOcspRequest as exc:
            log.debug("malformed OCSP request: %s", exc)
            return MALFORMED_REQUEST
        except Exception:  # a failing registry must not take the responder down (2.3)
            log.exception("OCSP responder failed")
            return INTERNAL_ERROR

    def respond_to(self, info: OcspRequestInfo, at: datetime | None = None) -> bytes:
        """Answer an already parsed request as of ``at`` (default: the clock's now).

        Raises :class:`MalformedOcspRequest` for CertIDs of several CAs; :meth:`respond` turns
        that and a foreign issuer into the matching unsuccessful response.
        """
        now = self._now(at)
        issuers = []
        for query in info.queries:
            issuer = self._issuers.get((query.algorithm, query.issuer_key_hash))
            if issuer is None or issuer.name_hash != query.issuer_name_hash:
                raise _Unauthorized(f"issuer key hash {query.issuer_key_hash.hex()} is not a CA "
                                    "of this authority")
            issuers.append(issuer)
        issuer = issuers[0]
        if any(i.ca is not issuer.ca for i in issuers[1:]):
            raise MalformedOcspRequest("CertIDs of several CAs in one request; one responder "
                                       "cannot sign for them all (RFC 6960 4.2.2.2)")
        if not issuer.not_before <= now <= issuer.not_after:
            raise _Unauthorized(f"{issuer.ca!r} is not valid at {now.isoformat()}")
        if info.nonce is not None or len(info.queries) != 1 or self.max_cache_entries == 0:
            statuses = [self._status(issuer, q.serial, now) for q in info.queries]
            return self._sign(self._signer(issuer.ca, now, issuer.key_id), info, statuses, now)
        return self._cached(info, issuer, now)

    def _cached(self, info: OcspRequestInfo, issuer: _Issuer, now: datetime) -> bytes:
        """One CertID without a nonce: reuse the pre-signed response while it is still true.

        Fast path (no registry lookup): the registry's SQLite data_version is what it was when
        the entry was last confirmed, the clock has not passed the certificate's next
        scheduled event, and the entry is young enough. Otherwise the status is asked again
        and the entry is kept (if the status is unchanged) or re-signed.
        """
        query = info.queries[0]
        stats = self._cache.stats
        entry = self._cache.entries.get(query)
        signer = self._signers.get(issuer.key_id)
        watch = self._watch
        if (entry is not None and watch is not None and entry.signer is signer
                and entry.produced_at <= now < entry.fresh_until and signer.usable_at(now)
                and entry.version == watch.version()):
            stats.hits += 1
            return entry.der
        version = watch.version() if watch is not None else None  # read before the status
        status = self.status_source.status(issuer.key_id, query.serial, at=now)
        signer = self._signer(issuer.ca, now, issuer.key_id)
        fingerprint = _fingerprint(status)
        if entry is None:
            stats.misses += 1
        elif (entry.fingerprint == fingerprint and entry.signer is signer
              and entry.produced_at <= now < entry.produced_at + self.cache_for):
            stats.hits += 1
            if watch is not None:
                entry.version = version
                entry.fresh_until = self._fresh_until(entry.produced_at, now, issuer,
                                                      query.serial)
            return entry.der
        else:
            stats.stale += 1
        der = self._sign(signer, info, [status], now)
        fresh_until = (self._fresh_until(now, now, issuer, query.serial) if watch is not None
                       else now + self.cache_for)
        _bounded_put(self._cache.entries, query,
                     _CachedResponse(fingerprint, now, signer, der, version, fresh_until),
                     self.max_cache_entries)
        return der

    def _status(self, issuer: _Issuer, serial: int, now: datetime) -> CertStatus:
        """The status for a response signed afresh (a nonce, several CertIDs).

        The same rule as the pre-signed cache, applied to the status alone: while the
        registry's data_version is what it was when the status was read, and the clock is
        between that moment and the certificate's next recorded event, the registry would give
        the same answer, so it is not asked again. The next event is looked up only when a
        status is asked for a second time, so a certificate asked about once costs no more
        than before. Without a watch (in-memory registry, test double), it is asked every time.
        """
        watch = self._watch
        if watch is None or self.max_cache_entries == 0:
            return self.status_source.status(issuer.key_id, serial, at=now)
        version = watch.version()  # read before the status, as in _cached
        key = (issuer.key_id, serial)
        known = self._cache.statuses.get(key)
        if known is not None and known.version == version and known.asked_at <= now:
            if known.fresh_until is None:
                known.fresh_until = self._fresh_until(known.asked_at, known.asked_at, issuer,
                                                      serial)
            if now < known.fresh_until:
                self._cache.stats.statuses_reused += 1
                return known.status
        status = self.status_source.status(issuer.key_id, serial, at=now)
        _bounded_put(self._cache.statuses, key, _KnownStatus(status, now, version),
                     self.max_cache_entries)
        return status

    def _fresh_until(self, produced_at: datetime, now: datetime, issuer: _Issuer,
                     serial: int) -> datetime:
        """End of the reuse window: ``cache_for``, or the certificate's next event if sooner.

        A revocation recorded for a later moment (``revoke(at=...)``) changes the status when
        the clock gets there, without any new write to the registry.
        """
        end = produced_at + self.cache_for
        if not self._watchable:
            return end
        source: WatchableStatusSource = self.status_source  # type: ignore[assignment]
        upcoming = source.next_change(issuer.key_id, serial, now)
        return end if upcoming is None else min(end, upcoming)

    def _sign(self, signer: _Signer, info: OcspRequestInfo, statuses: list[CertStatus],
              now: datetime) -> bytes:
        self._cache.stats.signed += 1
        return _sign(signer, info.queries, statuses, info.nonce, now, now + self.validity)


class _Unauthorized(Exception):
    """Internal: the request names a CA this responder does not answer for (2.3)."""


def _published(status: CertStatus) -> tuple[ocsp.OCSPCertStatus, datetime | None,
                                             RevocationReason | None]:
    """How a registry state is published: a hold is revoked/certificateHold (RFC 5280 5.3.1)."""
    if status.state is CertState.GOOD:
        return ocsp.OCSPCertStatus.GOOD, None, None
    if status.state is CertState.UNKNOWN:
        return ocsp.OCSPCertStatus.UNKNOWN, None, None
    since = status.since if status.since is not None else status.at
    since = as_utc(since, "revocation time").replace(microsecond=0)
    if status.state is CertState.HELD:
        return ocsp.OCSPCertStatus.REVOKED, since, RevocationReason.CERTIFICATE_HOLD
    reason = status.reason if status.reason is not None else RevocationReason.UNSPECIFIED
    return ocsp.OCSPCertStatus.REVOKED, since, reason


# -- DER of the response (RFC 6960 4.2.1) ------------------------------------------------------
#
# Written here rather than with asn1crypto: building a BasicOCSPResponse from asn1crypto
# objects costs about 2 ms of Python per response, seven times the RSA-2048 signature itself,
# and made every cache miss and every nonce request slower than OpenSSL's responder (the
# measurement is ``benchmarks/ocsp_load.py --encoders``). cryptography's OCSPResponseBuilder
# is fast but cannot be used: it takes one response per OCSPResponse and stamps producedAt
# with the host's wall clock, whereas every time in a response must come from the
# simulation's clock. tests/test_pki_ocsp.py checks this encoder byte for byte against an
# asn1crypto-built reference.

#: DER of the AlgorithmIdentifier of each CertID hash, with NULL parameters as OpenSSL and
#: asn1crypto write them.
_HASH_ALGORITHM_DER = {
    "sha1": bytes.fromhex("300906052b0e03021a0500"),
    "sha224": bytes.fromhex("300d06096086480165030402040500"),
    "sha256": bytes.fromhex("300d06096086480165030402010500"),
    "sha384": bytes.fromhex("300d06096086480165030402020500"),
    "sha512": bytes.fromhex("300d06096086480165030402030500"),
}
_SHA256_WITH_RSA_DER = bytes.fromhex("300d06092a864886f70d01010b0500")
_ID_PKIX_OCSP_BASIC_DER = bytes.fromhex("06092b0601050507300101")
_ID_PKIX_OCSP_NONCE_DER = bytes.fromhex("06092b0601050507300102")
_GOOD_DER = b"\x80\x00"  # [0] IMPLICIT NULL
_UNKNOWN_DER = b"\x82\x00"  # [2] IMPLICIT NULL


_tlv = tlv.der
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit
    return _tlv(0x02, value.to_bytes(size, "big", signed=True))


# The small caches below hold pieces that repeat from one response to the next (the time of
# this second, a certificate's CertID, the responder's ID): every nonce request is signed
# afresh, and the DER around the signature is most of the responder's own work.

@functools.lru_cache(maxsize=256)
def _generalized_time(t: datetime) -> bytes:
    return _tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


@functools.lru_cache(maxsize=4096)
def _cert_id(query: CertQuery) -> bytes:
    return _tlv(0x30, _HASH_ALGORITHM_DER[query.algorithm] + _tlv(0x04, query.issuer_name_hash)
                + _tlv(0x04, query.issuer_key_hash) + _integer(query.serial))


@functools.lru_cache(maxsize=64)
def _responder_id(key_hash: bytes) -> bytes:
    return _tlv(0xA2, _tlv(0x04, key_hash))  # ResponderID byKey [2] EXPLICIT KeyHash


def _single_response(query: CertQuery, status: CertStatus, this_update: bytes,
                     next_update: bytes) -> bytes:
    cert_id = _cert_id(query)
    cert_status, revoked_at, reason = _published(status)
    if cert_status is ocsp.OCSPCertStatus.GOOD:
        choice = _GOOD_DER
    elif cert_status is ocsp.OCSPCertStatus.UNKNOWN:
        choice = _UNKNOWN_DER
    else:  # [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT }
        assert revoked_at is not None and reason is not None
        choice = _tlv(0xA1, _generalized_time(revoked_at)
                      + _tlv(0xA0, _tlv(0x0A, bytes((reason.code,)))))
    return _tlv(0x30, cert_id + choice + this_update + next_update)


def response_data(responder_key_hash: bytes, queries: Iterable[CertQuery],
                  statuses: Iterable[CertStatus], nonce: bytes | None, produced_at: datetime,
                  next_update: datetime) -> bytes:
    """DER of ResponseData: responderID byKey, producedAt, responses, nonce (4.2.1, 4.4.1).

    Version is v1, the DEFAULT, so it is absent; every time is GeneralizedTime in whole
    seconds (4.2.2.1); nextUpdate is ``[0] EXPLICIT``.
    """
    this = _generalized_time(produced_at)
    nxt = _tlv(0xA0, _generalized_time(next_update))
    singles = b"".join(_single_response(q, st, this, nxt)
                       for q, st in zip(queries, statuses, strict=True))
    body = _responder_id(responder_key_hash) + this + _tlv(0x30, singles)
    if nonce is not None:
        nonce_ext = _tlv(0x30, _ID_PKIX_OCSP_NONCE_DER + _tlv(0x04, _tlv(0x04, nonce)))
        body += _tlv(0xA1, _tlv(0x30, nonce_ext))
    return _tlv(0x30, body)


def _sign(signer: _Signer, queries: Iterable[CertQuery], statuses: list[CertStatus],
          nonce: bytes | None, now: datetime, next_update: datetime) -> bytes:
    """The DER OCSPResponse: successful, id-pkix-ocsp-basic, signed with sha256WithRSA."""
    tbs = response_data(signer.key_hash, queries, statuses, nonce, now, next_update)
    signature = signer.key.sign(tbs, _PKCS1V15, _SHA256)
    basic = tbs + _SHA256_WITH_RSA_DER + _tlv(0x03, b"\x00" + signature)
    if signer.delegated:
        basic += _tlv(0xA0, _tlv(0x30, signer.certificate.public_bytes(Encoding.DER)))
    response_bytes = _tlv(0x30, _ID_PKIX_OCSP_BASIC_DER + _tlv(0x04, _tlv(0x30, basic)))
    return _tlv(0x30, b"\x0a\x01\x00" + _tlv(0xA0, response_bytes))

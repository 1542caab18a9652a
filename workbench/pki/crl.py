"""Certificate revocation lists of the simulated authority: build, publish, load and look up.

What is published (jpki-card.md 9.2, 9.7; smartphone-service.md 11.3):

- a **full CRL** per issuing CA generation: every revoked or held certificate of that CA key,
  no IssuingDistributionPoint (so it covers every certificate of the CA);
- a **partitioned CRL** per issuing municipality, the way the real profile distributes them:
  end-entity certificates name ``C=JP, O=…, OU=JPKI for …, OU=CRL Distribution Points,
  OU=<prefecture>, CN=<municipality>`` as their distribution point, and that municipality's
  CRL carries a critical IssuingDistributionPoint repeating exactly the certificates'
  DistributionPointName (directoryName, plus the HTTP URI when the profile has a repository),
  with onlyContainsUserCerts (RFC 5280 5.2.5);
- an **ARL** per CA generation: the CA certificates it revoked, IDP onlyContainsCACerts naming
  the CA certificate's own distribution point (its DN, 9.2).

MODEL publication (smartphone-service.md 11.3 says "updated periodically" and that a list may
be a day old): CRLs are published at the boundaries ``CRL_EPOCH + k · interval``
(``AuthorityProfile.crl_interval``, 24 h by default, counted from a JST midnight so daily CRLs
appear at 00:00 JST). The CRL published at boundary P has thisUpdate P, nextUpdate P + interval,
CRL number k (so numbers grow with thisUpdate, RFC 5280 5.2.3, and are the same for every
partition published at P), and lists the registry's state just before P: a change at T shows
in the first publication after T, while OCSP sees it at once. Publications are stored in the
registry database; a later fetch of the same publication returns the identical DER.

Encoding is done here rather than with ``cryptography.x509.CertificateRevocationListBuilder``:
the revokedCertificates sequence is written directly as DER (one short TLV per entry), and the
TBSCertList is signed with the CA key through cryptography. For a million entries this is the
difference between seconds and minutes (``benchmarks/crl_scale.py``). :class:`LoadedCrl` is the
matching reader: one pass over the DER builds a serial → offset index, after which a lookup is
a dictionary access.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from workbench import tlv
from workbench.errors import PkiError
from workbench.pki.authority import Authority, CertificateAuthority
from workbench.pki.clock import JST, as_utc
from workbench.pki.profiles import Hierarchy
from workbench.pki.registry import (
    SCOPE_ARL,
    SCOPE_FULL,
    PublishedCrl,
    Registry,
    RegistryError,
    partition_scope,
)
from workbench.pki.status import RevocationReason

__all__ = [
    "CRL_EPOCH",
    "RevocationSide",
    "RevocationSource",
    "CrlFormatError",
    "LoadedCrl",
    "RevokedEntry",
    "arl_for",
    "crl_for",
    "encode_crl",
    "publication_number",
    "publication_time",
    "publish",
]

#: Publication boundaries are counted from this instant (a JST midnight, MODEL).
CRL_EPOCH = datetime(1970, 1, 1, tzinfo=JST)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

# --- DER building blocks (X.690) ---------------------------------------------------------------

#: sha256WithRSAEncryption with NULL parameters (RFC 4055 5; jpki-card.md 9.1).
SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_V2 = bytes.fromhex("020101")  # Version v2 (RFC 5280 5.1.2.1: required with extensions)

# Extension OIDs (RFC 5280 5.2, 5.3), encoded with their 06 tag.
_OID_AKI = bytes.fromhex("0603551d23")
_OID_CRL_NUMBER = bytes.fromhex("0603551d14")
_OID_IDP = bytes.fromhex("0603551d1c")
_OID_REASON = bytes.fromhex("0603551d15")
_OID_INVALIDITY = bytes.fromhex("0603551d18")
_CRITICAL = bytes.fromhex("0101ff")

_SIGNATURE_HASHES: dict[bytes, type[hashes.HashAlgorithm]] = {
    bytes.fromhex("2a864886f70d01010b"): hashes.SHA256,
    bytes.fromhex("2a864886f70d01010c"): hashes.SHA384,
    bytes.fromhex("2a864886f70d01010d"): hashes.SHA512,
    bytes.fromhex("2a864886f70d010105"): hashes.SHA1,
}


class CrlFormatError(PkiError):
    """Bytes that are not a DER CRL this module can read."""


_length = tlv.encode_length
_tlv = tlv.der


def _integer(value: int) -> bytes:
    """DER INTEGER of a non-negative int (a leading 00 keeps the top bit clear)."""
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _time_text(seconds: int) -> tuple[int, bytes]:
    """(tag, text) for an instant: UTCTime before 2050, GeneralizedTime after (RFC 5280 5.1.2.4)."""
    t = time.gmtime(seconds)
    if 1950 <= t.tm_year < 2050:
        return 0x17, time.strftime("%y%m%d%H%M%SZ", t).encode("ascii")
    return 0x18, time.strftime("%Y%m%d%H%M%SZ", t).encode("ascii")


def _seconds(t: int | datetime) -> int:
    if isinstance(t, datetime):
        return (as_utc(t) - _UNIX_EPOCH) // _SECOND
    return t


def _time_der(t: int | datetime) -> bytes:
    tag, text = _time_text(_seconds(t))
    return bytes((tag, len(text))) + text


def _generalized_time_der(t: int | datetime) -> bytes:
    text = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(_seconds(t))).encode("ascii")
    return bytes((0x18, len(text))) + text


def _extension(oid: bytes, value: bytes, critical: bool = False) -> bytes:
    return _tlv(0x30, oid + (_CRITICAL if critical else b"") + _tlv(0x04, value))


def _reason_extension(reason: RevocationReason) -> bytes:
    """The reasonCode entry extension (RFC 5280 5.3.1), or nothing for unspecified (SHOULD be
    absent rather than carry 0)."""
    if reason is RevocationReason.UNSPECIFIED:
        return b""
    return _extension(_OID_REASON, bytes((0x0A, 0x01, reason.code)))


#: Pre-encoded reasonCode extensions, looked up by reason (a StrEnum, so its RFC name works too).
_REASON_EXT: dict[Any, bytes] = {r: _reason_extension(r) for r in RevocationReason}
#: The whole crlEntryExtensions SEQUENCE per reason (empty for unspecified and None).
_ENTRY_EXTENSIONS: dict[Any, bytes] = {r: _tlv(0x30, e) if e else b"" for r, e in _REASON_EXT.items()}
_ENTRY_EXTENSIONS[None] = b""
_CODE_REASON = {r.code: r for r in RevocationReason}
_INT_HEADER = [bytes((0x02, n)) for n in range(128)]
_SEQ_HEADER = [bytes((0x30, n)) for n in range(128)]


class RevokedEntry(tuple):
    """``(serial, revoked_at, reason[, invalidity_date])`` as :func:`encode_crl` takes them.

    Plain tuples work just as well; this only documents the positions. ``revoked_at`` and
    ``invalidity_date`` are aware datetimes or whole seconds since 1970 (UTC).
    """

    __slots__ = ()


_DAY = 86400
_ORDINAL_1970 = _UNIX_EPOCH.toordinal()
_TIME_OF_DAY: list[bytes] = []  # "HHMMSSZ" for every second of a day, built on first use
_DAY_PREFIX: dict[int, bytes] = {}  # tag, length and date digits of a time, per day ordinal


def _time_of_day() -> list[bytes]:
    if not _TIME_OF_DAY:
        _TIME_OF_DAY.extend(f"{h:02d}{m:02d}{sec:02d}Z".encode("ascii")
                            for h in range(24) for m in range(60) for sec in range(60))
    return _TIME_OF_DAY


def _day_prefix(ordinal: int) -> bytes:
    """``17 0D YYMMDD`` (UTCTime) or ``18 0F YYYYMMDD`` from 2050 on (RFC 5280 5.1.2.4)."""
    prefix = _DAY_PREFIX.get(ordinal)
    if prefix is None:
        d = datetime.fromordinal(ordinal)
        if 1950 <= d.year < 2050:
            prefix = b"\x17\x0d" + f"{d.year % 100:02d}{d.month:02d}{d.day:02d}".encode()
        else:
            prefix = b"\x18\x0f" + f"{d.year:04d}{d.month:02d}{d.day:02d}".encode()
        _DAY_PREFIX[ordinal] = prefix
    return prefix


def _encode_entries(entries: Iterable[tuple]) -> bytes | bytearray:
    """The revokedCertificates SEQUENCE OF (RFC 5280 5.1.2.6) in DER, written directly.

    This loop is the hot path of a million-entry CRL: every entry is one short TLV (below 128
    bytes, so its length is one byte) appended to one buffer; the time is a per-day prefix
    plus a precomputed time of day, and the crlEntryExtensions with the reasonCode are looked
    up, not encoded.
    """
    out = bytearray()
    wrapped = _ENTRY_EXTENSIONS
    int_header, seq_header = _INT_HEADER, _SEQ_HEADER
    tod = _time_of_day()
    days = _DAY_PREFIX
    entry: Any = None
    try:
        for entry in entries:
            invalidity = None
            if len(entry) == 3:
                serial, when, reason = entry
            else:
                serial, when, reason, invalidity = entry
            if serial < 0:
                raise OverflowError("negative serial")
            n = (serial.bit_length() >> 3) + 1
            if when.__class__ is int:
                day, second = divmod(when, _DAY)
                day += _ORDINAL_1970
            elif when.tzinfo is UTC:  # the common case: read the fields, no time zone arithmetic
                day = when.toordinal()
                second = when.hour * 3600 + when.minute * 60 + when.second
            elif when.tzinfo is None:
                raise TypeError("naive datetime: give an aware one (UTC or JST)")
            else:
                day, second = divmod(int(when.timestamp() // 1), _DAY)
                day += _ORDINAL_1970
            prefix = days.get(day)
            if prefix is None:
                prefix = _day_prefix(day)
            ext = wrapped[reason]
            if invalidity is not None:
                ext = _tlv(0x30, _REASON_EXT[reason] + _extension(
                    _OID_INVALIDITY, _generalized_time_der(invalidity)))
            size = n + len(prefix) + len(ext) + 9  # INTEGER header 2 + "HHMMSSZ" 7
            if size >= 0x80:
                out += b"\x30" + _length(size)
            else:
                out += seq_header[size]
            out += int_header[n]
            out += serial.to_bytes(n, "big")
            out += prefix
            out += tod[second]
            out += ext
    except (OverflowError, AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
        raise PkiError(f"bad CRL entry {entry!r}: need (positive serial, time, "
                       f"RevocationReason[, invalidity date]) ({exc})") from None
    if not out:
        return b""  # RFC 5280 5.1.2.6: absent when nothing is revoked
    return _tlv(0x30, out)


def encode_crl(
    *,
    issuer: x509.Name | bytes,
    signing_key: rsa.RSAPrivateKey,
    authority_key_id: bytes,
    this_update: datetime,
    next_update: datetime | None,
    number: int,
    entries: Iterable[tuple],
    issuing_distribution_point: bytes | None = None,
) -> bytes:
    """A signed v2 CRL in DER (RFC 5280 5.1), sha256WithRSAEncryption (jpki-card.md 9.1).

    ``entries``: ``(serial, revoked_at, reason[, invalidity_date])`` in the order they should
    appear. Extensions: AuthorityKeyIdentifier (required, and what tells the same-DN generations
    apart, 9.2), CRLNumber, and the critical IssuingDistributionPoint when given (its DER value,
    see :func:`issuing_distribution_point`).
    """
    if not isinstance(signing_key, rsa.RSAPrivateKey):
        raise PkiError("CRLs are signed with the CA's RSA key (jpki-card.md 9.1)")
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**159:
        raise PkiError("CRL number must be a non-negative int of at most 20 octets (RFC 5280 5.2.3)")
    issuer_der = issuer.public_bytes() if isinstance(issuer, x509.Name) else bytes(issuer)
    extensions = (
        _extension(_OID_AKI, _tlv(0x30, _tlv(0x80, authority_key_id)))
        + _extension(_OID_CRL_NUMBER, _integer(number))
    )
    if issuing_distribution_point is not None:
        extensions += _extension(_OID_IDP, issuing_distribution_point, critical=True)
    tbs = _tlv(0x30, b"".join((
        _V2,
        SHA256_WITH_RSA,
        issuer_der,
        _time_der(this_update),
        _time_der(next_update) if next_update is not None else b"",
        _encode_entries(entries),
        _tlv(0xA0, _tlv(0x30, extensions)),
    )))
    signature = signing_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return _tlv(0x30, tbs + SHA256_WITH_RSA + _tlv(0x03, b"\x00" + signature))


def issuing_distribution_point(dp_name: bytes | None, *, user_certs: bool = False,
                               ca_certs: bool = False) -> bytes:
    """DER value of an IssuingDistributionPoint (RFC 5280 5.2.5).

    ``dp_name`` is the DER of the DistributionPointName the certificates in scope carry (the
    registry keeps it from registration), so the names match byte for byte, as path validation
    requires (RFC 5280 6.3.3 (b)(2)).
    """
    value: dict[str, Any] = {}
    if dp_name is not None:
        value["distribution_point"] = asn1_x509.DistributionPointName.load(dp_name)
    if user_certs:
        value["only_contains_user_certs"] = True
    if ca_certs:
        value["only_contains_ca_certs"] = True
    return asn1_crl.IssuingDistributionPoint(value).dump()


# --- publication -------------------------------------------------------------------------------

def _check_interval(interval: timedelta) -> timedelta:
    if not isinstance(interval, timedelta) or interval < _SECOND or interval.microseconds:
        raise PkiError(f"the CRL interval must be whole seconds ≥ 1 s, got {interval!r}")
    return interval


def publication_number(at: datetime, interval: timedelta) -> int:
    """k of the latest publication boundary ``CRL_EPOCH + k · interval`` at or before ``at``."""
    return (as_utc(at, "at") - CRL_EPOCH) // _check_interval(interval)


def publication_time(at: datetime, interval: timedelta) -> datetime:
    """thisUpdate of the CRL in force at ``at``: the latest publication boundary ≤ ``at``."""
    return (CRL_EPOCH + publication_number(at, interval) * interval).astimezone(UTC)


@runtime_checkable
class RevocationSource(Protocol):
    """An authority with its revocation registry: what CRLs, OCSP and the repository publish.

    :class:`~workbench.pki.store.AuthorityStore` is one (persistent, shared by processes);
    :class:`RevocationSide` pairs an in-memory :class:`Authority` with a :class:`Registry`.
    """

    authority: Authority
    registry: Registry

    def publish(self, hierarchy: Hierarchy | str, generation: int | None = None,
                partition: str | None = None, at: datetime | None = None, *,
                arl: bool = False) -> PublishedCrl: ...


@dataclass(frozen=True)
class RevocationSide:
    """An :class:`Authority` and a :class:`Registry` used together without a store."""

    authority: Authority
    registry: Registry

    def publish(self, hierarchy: Hierarchy | str, generation: int | None = None,
                partition: str | None = None, at: datetime | None = None, *,
                arl: bool = False) -> PublishedCrl:
        """The CRL (or ARL) publication in force at ``at``; see :func:`publish`."""
        return publish(self.authority, hierarchy, generation, partition, at,
                       registry=self.registry, arl=arl)


def _resolve(source: RevocationSource | Authority,
             registry: Registry | None) -> tuple[Authority, Registry]:
    """(authority, registry) from a revocation source, or from an Authority plus a registry."""
    if isinstance(source, Authority):
        authority = source
    elif isinstance(source, RevocationSource):
        authority = source.authority
        registry = source.registry if registry is None else registry
    else:
        raise PkiError(f"need an AuthorityStore or an Authority, not {type(source).__name__}")
    if not isinstance(registry, Registry):
        raise PkiError("an Authority alone has no revocation registry; pass registry=Registry(…) "
                       "or use an AuthorityStore")
    return authority, registry


def _ca(authority: Authority, hierarchy: Hierarchy | str, generation: int | None,
        at: datetime) -> CertificateAuthority:
    if generation is None:
        return authority.current_ca(hierarchy, at)
    ca = authority.ca(hierarchy, generation)
    if at < ca.generation.not_before:
        raise PkiError(f"{ca.hierarchy.value} CA generation {generation} starts "
                       f"{ca.generation.not_before.isoformat()}; it published no CRL at "
                       f"{at.isoformat()}")
    return ca


def publish(
    source: RevocationSource | Authority,
    hierarchy: Hierarchy | str,
    generation: int | None = None,
    partition: str | None = None,
    at: datetime | None = None,
    *,
    registry: Registry | None = None,
    arl: bool = False,
) -> PublishedCrl:
    """The publication in force at ``at`` (default: the clock's now), built on first request.

    ``source``: an :class:`~workbench.pki.store.AuthorityStore`, or an :class:`Authority` with
    ``registry=``. ``generation`` ``None`` = the CA generation issuing at ``at``. ``partition``
    (a municipality code) selects that municipality's CRL; ``arl=True`` the ARL.
    """
    authority, reg = _resolve(source, registry)
    moment = as_utc(at if at is not None else authority.clock.now(), "at")
    ca = _ca(authority, hierarchy, generation, moment)
    if arl and partition is not None:
        raise PkiError("an ARL covers CA certificates and has no municipality partition")
    scope = SCOPE_ARL if arl else (SCOPE_FULL if partition is None else partition_scope(partition))
    interval = authority.profile.crl_interval
    number = publication_number(moment, interval)
    this_update = publication_time(moment, interval)
    next_update = this_update + interval
    ikid = ca.key_identifier

    def build() -> bytes:
        # Inside the registry's write transaction: the CA certificate is registered (so the
        # ARL knows its distribution point and OCSP can answer for it) and the entries are
        # read in the same snapshot that stores the publication.
        reg.register(ca.certificate)
        idp = None
        if scope == SCOPE_ARL:
            idp = issuing_distribution_point(reg.distribution_point(ikid, scope), ca_certs=True)
        elif scope != SCOPE_FULL:
            dp = reg.distribution_point(ikid, scope)
            if dp is None:
                raise RegistryError(
                    f"no certificate of the {ca.hierarchy.value} CA generation "
                    f"{ca.generation.number} is registered for partition {partition!r} (with a "
                    "CRL distribution point); there is no such CRL")
            idp = issuing_distribution_point(dp, user_certs=True)
        # The state just before thisUpdate: a change at exactly P waits for the next CRL.
        rows = reg.crl_rows(ikid, this_update - _SECOND, scope)
        return encode_crl(
            issuer=ca.name, signing_key=ca.private_key, authority_key_id=ikid,
            this_update=this_update, next_update=next_update, number=number, entries=rows,
            issuing_distribution_point=idp,
        )

    return reg.publish_crl(ikid, scope, this_update, next_update, number, build)


def crl_for(
    source: RevocationSource | Authority,
    hierarchy: Hierarchy | str,
    generation: int | None = None,
    partition: str | None = None,
    at: datetime | None = None,
    *,
    registry: Registry | None = None,
) -> bytes:
    """DER of the full (or ``partition``'s) CRL of one CA generation in force at ``at``.

    Repeated calls between two publication boundaries return identical bytes. See
    :func:`publish` for the arguments.
    """
    return publish(source, hierarchy, generation, partition, at, registry=registry).der


def arl_for(
    source: RevocationSource | Authority,
    hierarchy: Hierarchy | str,
    generation: int | None = None,
    at: datetime | None = None,
    *,
    registry: Registry | None = None,
) -> bytes:
    """DER of the authority revocation list (revoked CA certificates) in force at ``at``."""
    return publish(source, hierarchy, generation, None, at, registry=registry, arl=True).der


# --- reading -----------------------------------------------------------------------------------

def _header(der: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at ``pos``; definite lengths only."""
    if pos + 2 > end:
        raise CrlFormatError(f"truncated DER at offset {pos}")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise CrlFormatError(f"unsupported DER length at offset {pos - 1}")
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    if pos + length > end:
        raise CrlFormatError(f"DER element at offset {pos} runs past its container")
    return tag, pos, pos + length


def _parse_time(der: bytes, tag: int, start: int, end: int) -> datetime:
    """UTCTime ``YYMMDDHHMMSSZ`` or GeneralizedTime ``YYYYMMDDHHMMSSZ`` (RFC 5280 4.1.2.5)."""
    text = der[start:end]
    try:
        if tag == 0x17 and len(text) == 13 and text[12] == 0x5A:
            year = int(text[0:2])
            year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
            digits = text[2:12]
        elif tag == 0x18 and len(text) == 15 and text[14] == 0x5A:
            year = int(text[0:4])
            digits = text[4:14]
        else:
            raise ValueError
        if not digits.isdigit():
            raise ValueError
        return datetime(year, int(digits[0:2]), int(digits[2:4]), int(digits[4:6]),
                        int(digits[6:8]), int(digits[8:10]), tzinfo=UTC)
    except ValueError:
        shown = text.decode("ascii", "replace")
        raise CrlFormatError(f"bad time {shown!r} (tag {tag:#04x}) at offset {start}") from None


class LoadedCrl:
    """A parsed CRL with a serial index, for fast revocation lookups.

    :meth:`from_der` walks the DER once (a minimal X.690 reader, no object per entry) and maps
    every serial to its entry's offset; :meth:`is_revoked` decodes only the entry asked for.
    The signature is not checked on load; call :meth:`verify` with the issuer's key.
    """

    def __init__(self, der: bytes, index: dict[int, int], fields: dict[str, Any]) -> None:
        self.der = der
        self._index = index
        self.tbs: bytes = fields["tbs"]
        self.signature_algorithm: bytes = fields["sig_oid"]
        self.signature: bytes = fields["signature"]
        self.issuer_der: bytes = fields["issuer"]
        self.this_update: datetime = fields["this_update"]
        self.next_update: datetime | None = fields["next_update"]
        ext = fields["extensions"]
        self.number: int | None = ext.get("crl_number")
        self.authority_key_id: bytes | None = ext.get("authority_key_identifier")
        self.issuing_distribution_point: Any = ext.get("issuing_distribution_point")

    @classmethod
    def from_der(cls, der: bytes) -> LoadedCrl:
        """Parse a DER CRL (RFC 5280 5.1) and index its entries by serial."""
        if not isinstance(der, bytes | bytearray | memoryview):
            raise CrlFormatError(f"a CRL is DER bytes, not {type(der).__name__}")
        der = bytes(der)
        tag, start, end = _header(der, 0, len(der))
        if tag != 0x30 or end != len(der):
            raise CrlFormatError("not a DER CRL (outer SEQUENCE expected, nothing after it)")
        tag, tbs_start, tbs_end = _header(der, start, end)
        if tag != 0x30:
            raise CrlFormatError("not a DER CRL (TBSCertList SEQUENCE expected)")
        tbs_header_start = start
        pos = tbs_start
        tag, s, e = _header(der, pos, tbs_end)
        if tag == 0x02:  # version
            pos = e
            tag, s, e = _header(der, pos, tbs_end)
        if tag != 0x30:
            raise CrlFormatError("TBSCertList: signature AlgorithmIdentifier expected")
        pos = e
        tag, s, e = _header(der, pos, tbs_end)
        if tag != 0x30:
            raise CrlFormatError("TBSCertList: issuer Name expected")
        issuer = der[pos:e]
        pos = e
        tag, s, e = _header(der, pos, tbs_end)
        this_update = _parse_time(der, tag, s, e)
        pos = e
        next_update = None
        revoked = (0, 0)
        extensions: dict[str, Any] = {}
        if pos < tbs_end:
            tag, s, e = _header(der, pos, tbs_end)
            if tag in (0x17, 0x18):
                next_update = _parse_time(der, tag, s, e)
                pos = e
        if pos < tbs_end:
            tag, s, e = _header(der, pos, tbs_end)
            if tag == 0x30:
                revoked = (s, e)
                pos = e
        if pos < tbs_end:
            tag, s, e = _header(der, pos, tbs_end)
            if tag != 0xA0 or e != tbs_end:
                raise CrlFormatError("TBSCertList: unexpected data after the entries")
            extensions = _crl_extensions(der[s:e])
        tag, s, e = _header(der, tbs_end, end)
        if tag != 0x30:
            raise CrlFormatError("signatureAlgorithm expected after the TBSCertList")
        _, os_, oe = _header(der, s, e)
        sig_oid = der[os_:oe]
        tag, s, e = _header(der, e, end)
        if tag != 0x03 or e != end or s == e:
            raise CrlFormatError("signature BIT STRING expected at the end")
        fields = {
            "tbs": der[tbs_header_start:tbs_end], "sig_oid": sig_oid, "signature": der[s + 1:e],
            "issuer": issuer, "this_update": this_update, "next_update": next_update,
            "extensions": extensions,
        }
        return cls(der, _index_entries(der, *revoked), fields)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, serial: object) -> bool:
        return serial in self._index

    def __repr__(self) -> str:
        return (f"LoadedCrl(number={self.number}, this_update={self.this_update.isoformat()}, "
                f"{len(self)} entries)")

    def is_revoked(self, serial: int) -> tuple[RevocationReason, datetime] | None:
        """``(reason, revocation date)`` if ``serial`` is listed (held ones too, with
        certificateHold), else ``None``. An entry without reasonCode is ``unspecified``."""
        offset = self._index.get(serial)
        if offset is None:
            return None
        entry = self._entry(offset)
        return entry[2], entry[1]

    def entry(self, serial: int) -> RevokedEntry | None:
        """The full entry ``(serial, revoked_at, reason, invalidity_date)`` or ``None``."""
        offset = self._index.get(serial)
        return None if offset is None else self._entry(offset)

    def entries(self) -> Iterator[RevokedEntry]:
        """Every entry, in CRL order."""
        for offset in self._index.values():
            yield self._entry(offset)

    def serials(self) -> set[int]:
        return set(self._index)

    def _entry(self, offset: int) -> RevokedEntry:
        der = self.der
        _, start, end = _header(der, offset, len(der))
        _, s, e = _header(der, start, end)
        serial = int.from_bytes(der[s:e], "big", signed=True)
        tag, s, e = _header(der, e, end)
        revoked_at = _parse_time(der, tag, s, e)
        reason = RevocationReason.UNSPECIFIED
        invalidity = None
        if e < end:
            _, xs, xe = _header(der, e, end)
            pos = xs
            while pos < xe:
                _, es, ee = _header(der, pos, xe)
                _, os_, oe = _header(der, es, ee)
                oid = der[os_ - 2:oe]
                vtag, vs, ve = _header(der, oe, ee)
                if vtag == 0x01:  # critical flag
                    vtag, vs, ve = _header(der, ve, ee)
                if oid == _OID_REASON:
                    _, rs, re_ = _header(der, vs, ve)
                    code = int.from_bytes(der[rs:re_], "big")
                    if code not in _CODE_REASON:
                        raise CrlFormatError(f"unknown reason code {code} for serial {serial:#x}")
                    reason = _CODE_REASON[code]
                elif oid == _OID_INVALIDITY:
                    ttag, ts, te = _header(der, vs, ve)
                    invalidity = _parse_time(der, ttag, ts, te)
                pos = ee
        return RevokedEntry((serial, revoked_at, reason, invalidity))

    def verify(self, public_key: rsa.RSAPublicKey) -> None:
        """Check the signature with the issuer's RSA key; :class:`CrlFormatError` if it fails."""
        hash_cls = _SIGNATURE_HASHES.get(self.signature_algorithm)
        if hash_cls is None or not isinstance(public_key, rsa.RSAPublicKey):
            raise CrlFormatError("only RSA PKCS#1 v1.5 CRL signatures are checked here")
        try:
            public_key.verify(self.signature, self.tbs, padding.PKCS1v15(), hash_cls())
        except InvalidSignature:
            raise CrlFormatError("CRL signature does not verify with this key") from None


def _index_entries(der: bytes, start: int, end: int) -> dict[int, int]:
    """serial → offset of its entry, in one pass over revokedCertificates."""
    index: dict[int, int] = {}
    pos = start
    from_bytes = int.from_bytes
    try:
        while pos < end:
            if der[pos] != 0x30:
                raise CrlFormatError(f"CRL entry expected at offset {pos}")
            length = der[pos + 1]
            if length < 0x80:
                body = pos + 2
            else:
                n = length & 0x7F
                length = from_bytes(der[pos + 2:pos + 2 + n], "big")
                body = pos + 2 + n
            nxt = body + length
            if der[body] != 0x02 or nxt > end:
                raise CrlFormatError(f"malformed CRL entry at offset {pos}")
            size = der[body + 1]
            if size >= 0x80 or body + 2 + size > nxt:
                raise CrlFormatError(f"malformed serial at offset {body}")
            index.setdefault(from_bytes(der[body + 2:body + 2 + size], "big", signed=True), pos)
            pos = nxt
    except IndexError:
        raise CrlFormatError("truncated CRL entry list") from None
    return index


def _crl_extensions(explicit: bytes) -> dict[str, Any]:
    """crlExtensions ([0] EXPLICIT content) → {name: value} for the ones used here."""
    try:
        parsed = asn1_crl.TBSCertListExtensions.load(explicit)
        out: dict[str, Any] = {}
        for ext in parsed:
            name = ext["extn_id"].native
            value = ext["extn_value"].parsed
            if name == "crl_number":
                out[name] = value.native
            elif name == "authority_key_identifier":
                out[name] = value["key_identifier"].native
            elif name == "issuing_distribution_point":
                out[name] = value
    except (ValueError, TypeError) as exc:
        raise CrlFormatError(f"unreadable CRL extensions: {exc}") from None
    return out

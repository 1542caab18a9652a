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
matching reader: one pass over the DER builds a compact serial index (sorted 64-bit keys and
entry offsets in arrays, plus a one-byte-per-slot presence filter: about 40 bytes per entry and
no Python object per entry), and a lookup decodes only the entry it finds. Against a dict of
cryptography's entry objects it builds faster, takes about a fifth of the memory, and answers
about as fast (measured in the benchmark).
"""

from __future__ import annotations

import numbers
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, compress, islice, repeat
from operator import add, and_, eq, lshift, lt, rshift
from typing import Any, NamedTuple, Protocol, runtime_checkable

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
    """UTCTime ``YYMMDDHHMMSSZ`` or GeneralizedTime ``YYYYMMDDHHMMSSZ`` (RFC 5280 4.1.2.5).

    Only ASCII digits and the final ``Z`` are accepted (DER, X.690 11.7-11.8); the checked
    digits are handed to :meth:`datetime.fromisoformat` in its basic format, the quickest
    way from text to an aware datetime (this runs once per looked-up entry).
    """
    digits = der[start:end - 1]
    try:
        if not digits.isdigit() or der[end - 1] != 0x5A:
            raise ValueError
        if tag == 0x17 and end - start == 13:
            century = "19" if digits[0] >= 0x35 else "20"  # YY >= 50: 19YY (RFC 5280 4.1.2.5.1)
            return _from_iso(f"{century}{digits[:6].decode()}T{digits[6:].decode()}+00:00")
        if tag == 0x18 and end - start == 15:
            return _from_iso(f"{digits[:8].decode()}T{digits[8:].decode()}+00:00")
        raise ValueError
    except (ValueError, IndexError):
        shown = der[start:end].decode("ascii", "replace")
        raise CrlFormatError(f"bad time {shown!r} (tag {tag:#04x}) at offset {start}") from None


_from_iso = datetime.fromisoformat


#: The index keys a serial by its low 64 bits (an ``array("Q")``): RFC 5280 4.1.2.2 allows 20
#: octets, but the simulator issues 8 and the real profile 4, so in practice the key is the
#: serial itself ("exact" index); wider or negative serials still work, checked against the DER.
_KEY_MASK = (1 << 64) - 1
#: About this many sorted keys per bucket of the serial's top bits: a lookup reads its bucket's
#: bounds in the key array (two array reads), then bisects a stretch of at most about twice
#: this many keys (two cache lines) in one C call.
_BUCKET_KEYS = 8
#: The presence filter: one byte per slot, slot ``serial % modulus`` (an odd modulus, so serials
#: that share their low bits still spread). It is sized from the byte length of the entry list,
#: so that the walk over the entries can fill it: 3 slots per 5 bytes, about 24 per entry for
#: the ~40-byte entries of 8-byte serials. An absent serial then finds its slot empty with
#: probability ≈ e^(-1/24) ≈ 96 % and is answered after one memory access; only the others,
#: and the listed serials, go on to the key array. (A second, independent filter cut the
#: absent serials that go on from 4-6 % to under 1 %, but cost as much to fill as the first,
#: for about a tenth of the time of a lookup: not worth it here.)
_FILTER_SLOTS_PER_5_BYTES = 3
#: What follows revocationDate in an entry as this module writes it (nothing, or the
#: crlEntryExtensions with only a reasonCode), back to the reason: one dict lookup per entry.
_REASON_OF_TAIL: dict[bytes, RevocationReason] = {
    ext: reason for reason, ext in _ENTRY_EXTENSIONS.items()
    if isinstance(reason, RevocationReason) and reason is not RevocationReason.UNSPECIFIED
}
_REASON_OF_TAIL[b""] = RevocationReason.UNSPECIFIED


class _SerialIndex(NamedTuple):
    """Where each entry of revokedCertificates is, by serial; no Python object per entry.

    ``keys`` are the serials' low 64 bits, ascending, ``offsets`` the matching entries' DER
    offsets. A serial ``s`` in bucket ``b = (s - base) >> shift`` (``0 <= b < bucket_count``),
    if listed, is in ``keys[lows[b]:highs[b]]``. ``filter[s % modulus]`` is 1 for the slots some
    listed serial falls in. ``exact``: every serial is in 0 … 2**64 - 1, so a key *is* its
    serial and keys are unique. ``in_crl_order``: offsets ascend (the CRL was sorted by serial,
    as this module writes it), so they also give the CRL's order.
    """

    keys: array[int]
    offsets: array[int]
    lows: array[int]
    highs: array[int]
    base: int
    shift: int
    bucket_count: int
    filter: bytearray
    modulus: int
    exact: bool
    in_crl_order: bool


class LoadedCrl:
    """A parsed CRL with a serial index, for fast revocation lookups.

    :meth:`from_der` walks the DER once (a minimal X.690 reader, no object per entry) and keeps
    each entry's offset in a compact index (:class:`_SerialIndex`: about 40 bytes per entry,
    against about 217 for a dict of cryptography's entry objects, ``benchmarks/crl_scale.py``);
    :meth:`is_revoked` decodes only the entry asked for. The signature is not checked on load;
    call :meth:`verify` with the issuer's key.
    """

    def __init__(self, der: bytes, index: _SerialIndex, fields: dict[str, Any]) -> None:
        self.der = der
        self._tbs_span: tuple[int, int] = fields["tbs_span"]
        self._keys = index.keys
        self._offsets = index.offsets
        self._lows = index.lows
        self._highs = index.highs
        self._base = index.base
        self._shift = index.shift
        self._bucket_count = index.bucket_count
        self._filter = index.filter
        self._modulus = index.modulus
        self._exact = index.exact
        self._in_crl_order = index.in_crl_order
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
            "tbs_span": (tbs_header_start, tbs_end), "sig_oid": sig_oid, "signature": der[s + 1:e],
            "issuer": issuer, "this_update": this_update, "next_update": next_update,
            "extensions": extensions,
        }
        return cls(der, _index_entries(der, *revoked), fields)

    @property
    def tbs(self) -> bytes:
        """The DER of the TBSCertList, the signed part (cut from :attr:`der` when asked for,
        rather than kept: at a million entries it is a second copy of 40 MB)."""
        start, end = self._tbs_span
        return self.der[start:end]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, serial: object) -> bool:
        try:
            if not self._filter[serial % self._modulus]:  # type: ignore[operator]
                return False
        except TypeError:  # not an int: compare the way a dict key would (5.0 == 5)
            serial = _as_serial(serial)
            if serial is None:
                return False
        return self._find(serial) is not None  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"LoadedCrl(number={self.number}, this_update={self.this_update.isoformat()}, "
                f"{len(self)} entries)")

    def is_revoked(self, serial: int) -> tuple[RevocationReason, datetime] | None:
        """``(reason, revocation date)`` if ``serial`` is listed (held ones too, with
        certificateHold), else ``None``. An entry without reasonCode is ``unspecified``.

        The hot path, written out in one function (a method call costs about as much as the
        dict lookup this is measured against): the presence filter, then the serial's bucket of
        the key array, then the entry read by position (:meth:`_find` and :func:`_read_entry`
        are the general versions).
        """
        try:
            if not self._filter[serial % self._modulus]:
                return None  # absent serials end here, all but about 4 % of them
        except TypeError:  # not an int: match it the way a dict key would (5.0 is 5)
            serial = _as_serial(serial)  # type: ignore[assignment]
            if serial is None:
                return None
        if self._exact:  # the search of _find, written out
            b = (serial - self._base) >> self._shift
            if not 0 <= b < self._bucket_count:  # below the first key or above the last
                return None
            hi = self._highs[b]
            i = bisect_left(self._keys, serial, self._lows[b], hi)
            if i == hi or self._keys[i] != serial:
                return None
            offset = self._offsets[i]
        else:
            found = self._find(serial)
            if found is None:
                return None
            offset = found
        der = self.der
        length = der[offset + 1]
        if length < 0x80:  # as this module writes entries: read by position
            t = offset + 4 + der[offset + 3]  # after 30 LL 02 NN <serial>
            end = offset + 2 + length
            if der[t] == 0x17 and der[t + 1] == 13 and t + 15 <= end:
                reason = _REASON_OF_TAIL.get(der[t + 15:end])
                digits = der[t + 2:t + 14]  # UTCTime YYMMDDhhmmss, then Z
                if reason is not None and digits.isdigit() and der[t + 14] == 0x5A:
                    text = digits.decode()
                    century = "19" if digits[0] >= 0x35 else "20"  # RFC 5280 4.1.2.5.1
                    try:
                        return reason, _from_iso(f"{century}{text[:6]}T{text[6:]}+00:00")
                    except ValueError:  # e.g. month 13: the general reader says where
                        pass
        _, revoked_at, reason, _ = _read_entry(der, offset)
        return reason, revoked_at

    def entry(self, serial: int) -> RevokedEntry | None:
        """The full entry ``(serial, revoked_at, reason, invalidity_date)`` or ``None``."""
        if not isinstance(serial, int):
            serial = _as_serial(serial)  # type: ignore[assignment]
            if serial is None:
                return None
        offset = self._find(serial)
        return None if offset is None else RevokedEntry(_read_entry(self.der, offset))

    def entries(self) -> Iterator[RevokedEntry]:
        """Every entry, in CRL order."""
        offsets = self._offsets if self._in_crl_order else sorted(self._offsets)
        for offset in offsets:
            yield RevokedEntry(_read_entry(self.der, offset))

    def serials(self) -> set[int]:
        """Every listed serial."""
        if self._exact:
            return set(self._keys)
        return {_serial_at(self.der, offset) for offset in self._offsets}

    def _find(self, serial: int) -> int | None:
        """DER offset of the entry for ``serial``, or ``None``."""
        keys = self._keys
        if self._exact:  # keys are the serials: compare them as they are
            b = (serial - self._base) >> self._shift  # the bucket of the serial's top bits
            if not 0 <= b < self._bucket_count:
                return None
            hi = self._highs[b]
            i = bisect_left(keys, serial, self._lows[b], hi)
            return self._offsets[i] if i < hi and keys[i] == serial else None
        # Serials sharing their low 64 bits sit side by side: compare the DER's own serial.
        key = serial & _KEY_MASK
        i = bisect_left(keys, key)
        while i < len(keys) and keys[i] == key:
            offset = self._offsets[i]
            if _serial_at(self.der, offset) == serial:
                return offset
            i += 1
        return None

    def verify(self, public_key: rsa.RSAPublicKey) -> None:
        """Check the signature with the issuer's RSA key; :class:`CrlFormatError` if it fails."""
        hash_cls = _SIGNATURE_HASHES.get(self.signature_algorithm)
        if hash_cls is None or not isinstance(public_key, rsa.RSAPublicKey):
            raise CrlFormatError("only RSA PKCS#1 v1.5 CRL signatures are checked here")
        try:
            public_key.verify(self.signature, self.tbs, padding.PKCS1v15(), hash_cls())
        except InvalidSignature:
            raise CrlFormatError("CRL signature does not verify with this key") from None


def _as_serial(value: object) -> int | None:
    """The int a non-int lookup key stands for, as a dict would match it (``5.0`` is ``5``);
    ``None`` if it equals no int. Unhashable values raise :class:`TypeError`, as in a dict."""
    hash(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, numbers.Number):
        try:
            as_int = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):
            return None
        return as_int if as_int == value else None
    return None


def _serial_at(der: bytes, offset: int) -> int:
    """The serial of the entry at ``offset`` (its INTEGER, two's complement as in DER)."""
    _, start, end = _header(der, offset, len(der))
    _, s, e = _header(der, start, end)
    return int.from_bytes(der[s:e], "big", signed=True)


def _read_entry(der: bytes, offset: int) -> tuple[int, datetime, RevocationReason,
                                                   datetime | None]:
    """The general entry reader: any length form, any crlEntryExtensions (RFC 5280 5.3)."""
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
    return serial, revoked_at, reason, invalidity


def _index_entries(der: bytes, start: int, end: int) -> _SerialIndex:
    """The serial index of revokedCertificates (``der[start:end]``), in one pass over it.

    A serial listed twice keeps its first entry (later ones are ignored, as before).
    """
    offset_type = "I" if end <= 0xFFFFFFFF else "Q"
    modulus = (end - start) * _FILTER_SLOTS_PER_5_BYTES // 5 | 1
    walked = _walk_entries_fast(der, start, end, offset_type, modulus)
    if walked is None:
        walked = _walk_entries(der, start, end, offset_type, modulus)
    keys, offsets, presence, exact = walked
    in_order = all(map(lt, keys, islice(keys, 1, None)))  # strictly ascending: no duplicates
    if not in_order:
        keys, offsets = _sort_unique(der, keys, offsets, exact)
    lows, highs, base, shift, bucket_count = _buckets(keys)
    return _SerialIndex(keys, offsets, lows, highs, base, shift, bucket_count, presence, modulus,
                        exact, in_order)


def _buckets(keys: array[int]) -> tuple[array[int], array[int], int, int, int]:
    """Bounds in ``keys`` (ascending) of each bucket of their top bits, for :class:`_SerialIndex`.

    Only every ``_BUCKET_KEYS``-th key (a "fence" key) is counted into its bucket, in a Python
    loop an eighth as long as the key array; the bounds follow from the fence: the keys of
    bucket ``b`` lie after the last fence key below it and before the first fence key above.
    """
    step = _BUCKET_KEYS
    fence = keys[::step]
    base = keys[0] if keys else 0
    span = keys[-1] - base if keys else 0
    shift = max(0, span.bit_length() - len(fence).bit_length())  # about one fence key a bucket
    bucket_count = (span >> shift) + 1
    counts = [0] * (bucket_count + 1)
    for key in fence:
        counts[((key - base) >> shift) + 1] += 1
    fence_below = list(accumulate(counts))  # [b]: fence keys below bucket b's first value
    # keys[step * (f - 1)] is the last fence key below bucket b (f = fence_below[b]); the first
    # fence key at or above bucket b + 1 is keys[step * fence_below[b + 1]].
    lows = array("I", [max(0, step * f - step + 1) for f in fence_below[:-1]])
    highs = array("I", [min(len(keys), step * f) for f in fence_below[1:]])
    return lows, highs, base, shift, bucket_count


def _walk_entries_fast(der: bytes, start: int, end: int, offset_type: str, modulus: int
                       ) -> tuple[array[int], array[int], bytearray, bool] | None:
    """The common case, in as few steps per entry as possible: short-form entries whose serial
    is in 0 … 2**64 - 1. Returns keys, offsets, the filter and ``exact`` (true here), or
    ``None`` for anything else (then :func:`_walk_entries` reads it all, with the precise error
    if the DER is malformed)."""
    keys = array("Q")
    offsets = array(offset_type)
    presence = bytearray(modulus)
    add_key, add_offset = keys.append, offsets.append
    from_bytes = int.from_bytes
    pos = start
    try:
        while pos < end:
            length = der[pos + 1]
            if der[pos] != 0x30 or length >= 0x80 or der[pos + 2] != 0x02:
                return None
            size = der[pos + 3]
            if size + 2 > length:
                return None
            serial = from_bytes(der[pos + 4:pos + 4 + size], "big", signed=True)
            add_key(serial)
            add_offset(pos)
            presence[serial % modulus] = 1
            pos += length + 2
    except (IndexError, OverflowError):  # past the buffer; a negative or wider serial
        return None
    return (keys, offsets, presence, True) if pos == end else None


def _walk_entries(der: bytes, start: int, end: int, offset_type: str, modulus: int
                  ) -> tuple[array[int], array[int], bytearray, bool]:
    """Every entry's key and offset, any length form and serial size; the filter; ``exact``
    as in :class:`_SerialIndex`."""
    keys = array("Q")
    offsets = array(offset_type)
    presence = bytearray(modulus)
    exact = True
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
            serial = from_bytes(der[body + 2:body + 2 + size], "big", signed=True)
            key = serial & _KEY_MASK
            if key != serial:
                exact = False
            keys.append(key)
            offsets.append(pos)
            presence[serial % modulus] = 1
            pos = nxt
    except IndexError:
        raise CrlFormatError("truncated CRL entry list") from None
    return keys, offsets, presence, exact


def _sort_unique(der: bytes, keys: array[int], offsets: array[int],
                 exact: bool) -> tuple[array[int], array[int]]:
    """Keys ascending, equal keys in CRL order (offset order), then each serial's later entries
    dropped, so the first entry of a serial listed twice is the one found.

    Sorting one int per entry, key and offset packed together, is the quickest way here (about
    twice as fast as sorting indices by key); this costs about as much again as the rest of the
    load, for CRLs not written in serial order.
    """
    width = offsets.itemsize * 8
    packed = sorted(map(add, map(lshift, keys, repeat(width)), offsets))
    keys = array("Q", map(rshift, packed, repeat(width)))
    offsets = array(offsets.typecode, map(and_, packed, repeat((1 << width) - 1)))
    del packed
    repeats = list(compress(range(1, len(keys)), map(eq, keys, islice(keys, 1, None))))
    if not repeats:
        return keys, offsets
    if exact:  # the key is the serial: a repeat is the same serial listed again
        drop = set(repeats)
    else:  # equal low 64 bits: drop only a serial already seen in its run
        drop = set()
        in_run = set(repeats)
        run_serials: set[int] = set()
        for i in repeats:
            if i - 1 not in in_run:  # keys[i - 1] starts a run of equal keys
                run_serials = {_serial_at(der, offsets[i - 1])}
            serial = _serial_at(der, offsets[i])
            if serial in run_serials:
                drop.add(i)
            run_serials.add(serial)
    keep = [i not in drop for i in range(len(keys))]
    return array("Q", compress(keys, keep)), array(offsets.typecode, compress(offsets, keep))


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

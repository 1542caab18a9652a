"""Read JPKI certificates back into plain facts, for the CLI, notebooks and tests.

The reverse of :mod:`workbench.pki.authority`: the certificate kind from its extensions
(jpki-card.md 9.2, 9.4, 9.6) and the 基本4情報 from the signing certificate's SAN otherNames
(9.5). Works on any certificate of the JPKI shape, including ones this simulator did not issue.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from workbench.errors import PkiError
from workbench.pki.holder import ERAS, Sex
from workbench.pki.profiles import (
    OID_ADDRESS,
    OID_ADDRESS_FLAGS,
    OID_BIRTH_DATE,
    OID_NAME,
    OID_NAME_FLAGS,
    OID_SEX,
)

_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COMMON_NAME: "CN",
}

_BASIC_FOUR_KEYS = {
    OID_NAME: "name",
    OID_BIRTH_DATE: "birth_date_raw",
    OID_SEX: "sex_code",
    OID_ADDRESS: "address",
    OID_NAME_FLAGS: "name_flags",
    OID_ADDRESS_FLAGS: "address_flags",
}


def format_name(name: x509.Name) -> str:
    """A DN in certificate order (``C=JP, O=…, OU=…``), as the spec writes it (9.2).

    RFC 4514 strings list RDNs in reverse, which reads backwards next to the spec tables.
    """
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            label = _SHORT_NAMES.get(attr.oid, attr.oid.dotted_string)
            parts.append(f"{label}={attr.value}")
    return ", ".join(parts)


def _extension(cert: x509.Certificate, cls: type) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def certificate_kind(cert: x509.Certificate) -> str:
    """"ca", "sign", "auth" or "unknown", from BasicConstraints and KeyUsage (9.2, 9.4, 9.6)."""
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        return "ca"
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        return "unknown"
    return "sign" if usage.content_commitment else "auth"


def _decode_utf8(der: bytes) -> str:
    try:
        value = asn1.UTF8String.load(der, strict=True)
        return value.native
    except (ValueError, TypeError) as exc:
        raise PkiError(f"otherName value is not a DER UTF8String: {exc}") from None


def _parse_era_date(raw: str) -> tuple[int, date]:
    """``EYYYYMMDD`` → (era digit, Gregorian date) (jpki-card.md 9.5 OID .4)."""
    if len(raw) != 9 or not raw.isascii() or not raw.isdigit():
        raise PkiError(f"birth date {raw!r} is not of the form EYYYYMMDD")
    era = int(raw[0])
    if era not in {e.code for e in ERAS} | {0}:
        raise PkiError(f"birth date {raw!r} has an unknown era digit {era}")
    try:
        return era, date(int(raw[1:5]), int(raw[5:7]), int(raw[7:9]))
    except ValueError:
        raise PkiError(f"birth date {raw!r} is not a calendar date") from None


def decode_basic_four(cert: x509.Certificate) -> dict[str, Any] | None:
    """The 基本4情報 of a signing certificate, or ``None`` if it carries none (auth, CA).

    Keys: ``name``, ``birth_date`` (date), ``birth_era`` (digit), ``birth_date_raw``
    (``EYYYYMMDD``), ``sex`` (:class:`Sex`), ``sex_code`` ("1"/"2"/"3"), ``address``,
    ``name_flags``, ``address_flags``, and ``order`` (the otherName OIDs as found, which must
    be .1 .4 .3 .5 .2 .6 per jpki-card.md 9.5). PkiError if an entry is malformed.
    """
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return None
    others = [g for g in san if isinstance(g, x509.OtherName) and g.type_id in _BASIC_FOUR_KEYS]
    if not others:
        return None
    facts: dict[str, Any] = {}
    for other in others:
        facts[_BASIC_FOUR_KEYS[other.type_id]] = _decode_utf8(other.value)
    missing = sorted(set(_BASIC_FOUR_KEYS.values()) - set(facts))
    if missing:
        raise PkiError(f"signing certificate SAN lacks {', '.join(missing)} (jpki-card.md 9.5)")
    facts["birth_era"], facts["birth_date"] = _parse_era_date(facts["birth_date_raw"])
    facts["sex"] = Sex.from_certificate_code(facts["sex_code"])
    facts["order"] = [o.type_id.dotted_string for o in others]
    return facts


def describe_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """One flat dict of the facts a person looks at first; for the CLI and notebooks.

    ``serial_hex`` ("0x…") and ``serial_decimal`` are strings because 8-byte serials do not
    fit a DataFrame's int64. ``basic_four`` is present for signing certificates only.
    """
    public_key = cert.public_key()
    policies = _extension(cert, x509.CertificatePolicies)
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    kind = certificate_kind(cert)
    info: dict[str, Any] = {
        "kind": kind,
        "subject": format_name(cert.subject),
        "issuer": format_name(cert.issuer),
        "serial_hex": f"0x{cert.serial_number:x}",
        "serial_decimal": str(cert.serial_number),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "key_bits": public_key.key_size if isinstance(public_key, rsa.RSAPublicKey) else None,
        "policies": ([p.policy_identifier.dotted_string for p in policies]
                     if policies is not None else []),
        "subject_key_id": ski.digest.hex() if ski is not None else None,
        "authority_key_id": (aki.key_identifier.hex()
                             if aki is not None and aki.key_identifier else None),
    }
    if kind == "sign":
        info["basic_four"] = decode_basic_four(cert)
    return info


def revocation_pointers(cert: x509.Certificate) -> dict[str, list[str]]:
    """Where a relying party checks this certificate: its CRL distribution points (URIs and
    directory names, jpki-card.md 9.7) and OCSP responder URLs (AuthorityInfoAccess, present
    only when the authority's profile adds it, 9.7 MODEL)."""
    points: list[str] = []
    crldp = _extension(cert, x509.CRLDistributionPoints)
    for point in crldp or ():
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                points.append(name.value)
            elif isinstance(name, x509.DirectoryName):
                points.append(format_name(name.value))
    ocsp_urls: list[str] = []
    aia = _extension(cert, x509.AuthorityInformationAccess)
    for desc in aia or ():
        if (desc.access_method == x509.AuthorityInformationAccessOID.OCSP
                and isinstance(desc.access_location, x509.UniformResourceIdentifier)):
            ocsp_urls.append(desc.access_location.value)
    return {"crl_distribution_points": points, "ocsp_urls": ocsp_urls}

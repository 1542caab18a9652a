"""The simulated authority: CA profile (jpki-card.md 9.2), end-entity profiles (9.3–9.7),
signatures and path validation across generations, determinism, and never looking like J-LIS.

The authority uses the same seed as tests/conftest.py, so its CA keys are generated once per
process; the end-entity key is seeded too.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from asn1crypto import parser
from asn1crypto import x509 as ax
from asn1crypto.core import ObjectIdentifier as Asn1Oid
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InvalidCertificateError,
    PathValidationError,
)
from pyhanko_certvalidator.policy_decl import PKIXValidationParams

from workbench.errors import PkiError
from workbench.pki import (
    Authority,
    AuthorityProfile,
    FixedClock,
    Hierarchy,
    Holder,
    Sex,
    certificate_not_after,
    decode_basic_four,
    derive_seed,
    describe_certificate,
    end_of_day_jst,
    generate_rsa_key,
    synthetic_holder,
)
from workbench.pki.authority import DEFAULT_GENERATIONS
from workbench.pki.profiles import (
    OID_POLICY_AUTH,
    OID_POLICY_SIGN,
    OID_POLICY_SIGN_SMARTPHONE,
    OID_POLICY_SIGN_TEST,
    REAL_ISSUER_OU,
)

SEED = b"tests"  # same as tests/conftest.py: CA keys shared with the card tests
NOW = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
IN_GEN2 = datetime(2021, 3, 1, 2, 0, tzinfo=UTC)  # only generations 1 and 2 valid
IN_GEN3 = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)  # generations 1, 2 and 3 valid
IDENTIFIER_RE = re.compile(r"[0-9A-Z]{20}")

BASIC_FOUR_ORDER = [f"1.2.392.200149.8.5.5.{i}" for i in (1, 4, 3, 5, 2, 6)]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def asn1(cert: x509.Certificate) -> ax.Certificate:
    return ax.Certificate.load(der(cert))


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension:
    return cert.extensions.get_extension_for_oid(oid)


def rdns(name: x509.Name) -> list[tuple[str, str]]:
    """(short name, value) per RDN, in encoded order; every RDN must be single-valued."""
    out = []
    for rdn in name.rdns:
        (attr,) = list(rdn)
        out.append((attr.rfc4514_attribute_name, attr.value))
    return out


@pytest.fixture(scope="module")
def pki() -> Authority:
    return Authority(seed=SEED, clock=FixedClock(NOW))


@pytest.fixture(scope="module")
def holder() -> Holder:
    return synthetic_holder(11, birth_date=date(1985, 9, 30), sex=Sex.MALE)


@pytest.fixture(scope="module")
def ee_key() -> rsa.RSAPrivateKey:
    return generate_rsa_key(derive_seed("pki-tests", "end-entity"))


@pytest.fixture(scope="module")
def issued(pki: Authority, holder: Holder, ee_key: rsa.RSAPrivateKey) -> dict:
    """Sign and auth certificates issued in generation 2 and in generation 3."""
    out = {}
    for gen, at in ((2, IN_GEN2), (3, IN_GEN3)):
        out["sign", gen] = pki.issue_signing_certificate(holder, ee_key.public_key(), at=at)
        out["auth", gen] = pki.issue_auth_certificate(holder, ee_key.public_key(), at=at)
    return out


# --- CA certificates (9.2) -------------------------------------------------------------------

CA_CASES = [(h, g) for h in Hierarchy for g in (1, 2, 3)]


@pytest.mark.parametrize(("hierarchy", "generation"), CA_CASES)
def test_ca_certificate_profile(pki: Authority, hierarchy: Hierarchy, generation: int) -> None:
    """9.2: self-signed sha256WithRSA RSA-2048/65537, DN order C, O, OU, OU, KeyUsage and
    BasicConstraints critical, SAN directoryName, CRLDP = own DN, SKI, 14:59:59Z Not After."""
    ca = pki.ca(hierarchy, generation)
    cert = ca.certificate
    assert cert.version is x509.Version.v3
    assert cert.subject == cert.issuer
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048 and key.public_numbers().e == 65537
    cert.verify_directly_issued_by(cert)

    ou = "JPKI for digital signature" if hierarchy is Hierarchy.SIGN else (
        "JPKI for user authentication")
    assert rdns(cert.subject) == [
        ("C", "JP"),
        ("O", pki.profile.organization),
        ("OU", ou),
        ("OU", pki.profile.simulated_marker),
    ]

    gen = DEFAULT_GENERATIONS[generation - 1]
    assert cert.not_valid_before_utc == gen.not_before
    assert cert.not_valid_after_utc == gen.not_after
    assert cert.not_valid_after_utc.time().isoformat() == "14:59:59"

    oids = [e.oid for e in cert.extensions]
    assert set(oids) == {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    }
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    assert ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign
    assert not (ku.value.digital_signature or ku.value.content_commitment
                or ku.value.key_encipherment)
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value.ca

    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert not san.critical
    (dir_name,) = san.value.get_values_for_type(x509.DirectoryName)
    assert rdns(dir_name) == [("C", "JP"), ("O", pki.profile.issuer_alt_organization)]
    # the O of the SAN directoryName is a UTF8String (9.2)
    o_value = asn1(cert).subject_alt_name_value[0].chosen.chosen[1][0]["value"]
    assert o_value.name == "utf8_string"

    (dp,) = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert dp.full_name == [x509.DirectoryName(cert.subject)]

    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key)
    assert ca.key_identifier == ski.digest


def test_generation_dates_are_the_real_ones() -> None:
    """9.2 table: 00:00 JST of the first day to 23:59:59 JST of the last day."""
    spans = [(g.not_before, g.not_after) for g in DEFAULT_GENERATIONS]
    assert spans == [
        (datetime(2015, 10, 19, 15, 0, tzinfo=UTC), datetime(2025, 10, 19, 14, 59, 59, tzinfo=UTC)),
        (datetime(2019, 9, 13, 15, 0, tzinfo=UTC), datetime(2029, 9, 14, 14, 59, 59, tzinfo=UTC)),
        (datetime(2023, 7, 15, 15, 0, tzinfo=UTC), datetime(2033, 7, 15, 14, 59, 59, tzinfo=UTC)),
    ]


@pytest.mark.parametrize("hierarchy", list(Hierarchy))
def test_generations_share_a_dn_but_not_a_key(pki: Authority, hierarchy: Hierarchy) -> None:
    """9.2: '…share the same DN; decide by signature / key identifier, not by name'."""
    cas = [pki.ca(hierarchy, g) for g in (1, 2, 3)]
    assert len({ca.certificate.subject.public_bytes() for ca in cas}) == 1
    assert len({ca.key_identifier for ca in cas}) == 3
    assert len({ca.certificate.serial_number for ca in cas}) == 3
    with pytest.raises(InvalidSignature):
        cas[2].certificate.verify_directly_issued_by(cas[1].certificate)


def test_ca_certificates_lists_every_generation(pki: Authority) -> None:
    all_certs = pki.ca_certificates()
    assert len(all_certs) == 6
    assert pki.ca_certificates("sign") == all_certs[:3]
    assert pki.ca_certificates(Hierarchy.AUTH) == all_certs[3:]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2016, 1, 1, tzinfo=UTC), 1),
        (datetime(2021, 1, 1, tzinfo=UTC), 2),
        (datetime(2023, 7, 15, 14, 59, 59, tzinfo=UTC), 2),  # 2023-07-15 23:59:59 JST
        (datetime(2023, 7, 15, 15, 0, 0, tzinfo=UTC), 3),  # 2023-07-16 00:00 JST: rollover
        (datetime(2030, 1, 1, tzinfo=UTC), 3),
    ],
)
def test_current_ca_is_the_newest_valid_generation(
    pki: Authority, at: datetime, expected: int
) -> None:
    assert pki.current_ca("sign", at).generation.number == expected


def test_current_ca_outside_every_generation(pki: Authority) -> None:
    for at in (datetime(2015, 1, 1, tzinfo=UTC), datetime(2033, 7, 15, 15, 0, tzinfo=UTC)):
        with pytest.raises(PkiError):
            pki.current_ca("auth", at)
    with pytest.raises(PkiError):
        pki.current_ca("auth", datetime(2024, 1, 1))  # naive
    with pytest.raises(PkiError):
        pki.ca("other", 1)
    with pytest.raises(PkiError):
        pki.ca("sign", 4)


# --- end-entity certificates (9.3–9.6) --------------------------------------------------------


@pytest.mark.parametrize("key", [("sign", 2), ("auth", 2), ("sign", 3), ("auth", 3)])
def test_ee_common_profile(pki: Authority, issued: dict, holder: Holder,
                           key: tuple[str, int]) -> None:
    """9.3: v3, sha256WithRSA, issuer = CA DN, IssuerAltName, critical policies with CPS,
    CRLDP per municipality, AKI = issuing CA's SKI, no AIA; signature verifies."""
    kind, generation = key
    cert = issued[key]
    ca = pki.ca(kind, generation)
    assert cert.version is x509.Version.v3
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    other = pki.ca(kind, 1)
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(other.certificate)  # same DN, other key

    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    assert aki.value.key_identifier == ca.key_identifier
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)

    ian = ext(cert, ExtensionOID.ISSUER_ALTERNATIVE_NAME)
    (ian_dn,) = ian.value.get_values_for_type(x509.DirectoryName)
    assert rdns(ian_dn) == [("C", "JP"), ("O", pki.profile.issuer_alt_organization)]

    policies = ext(cert, ExtensionOID.CERTIFICATE_POLICIES)
    assert policies.critical
    (policy,) = policies.value
    assert policy.policy_qualifiers == [pki.profile.cps_uri]
    expected = OID_POLICY_SIGN_TEST if kind == "sign" else OID_POLICY_AUTH
    assert policy.policy_identifier == expected
    # the CPS qualifier is id-qt-cps (1.3.6.1.5.5.7.2.1)
    qualifier = asn1(cert)["tbs_certificate"]["extensions"]
    cps = [e for e in qualifier if e["extn_id"].native == "certificate_policies"][0]
    assert cps["extn_value"].parsed[0]["policy_qualifiers"][0]["policy_qualifier_id"].dotted == (
        "1.3.6.1.5.5.7.2.1"
    )

    (dp,) = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    (dp_name,) = dp.full_name
    ou = "JPKI for digital signature" if kind == "sign" else "JPKI for user authentication"
    assert rdns(dp_name.value) == [
        ("C", "JP"), ("O", pki.profile.organization), ("OU", ou),
        ("OU", "CRL Distribution Points"), ("OU", holder.prefecture), ("CN", holder.municipality),
    ]


def test_signing_certificate_key_usage_and_subject(issued: dict, holder: Holder) -> None:
    """9.4: KeyUsage critical digitalSignature + nonRepudiation; subject C (PrintableString),
    L=prefecture, L=municipality, CN=identifier (UTF8String)."""
    cert = issued["sign", 3]
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.content_commitment
    assert not (ku.value.key_encipherment or ku.value.key_cert_sign or ku.value.crl_sign)
    subject = rdns(cert.subject)
    assert [a for a, _ in subject] == ["C", "L", "L", "CN"]
    assert subject[:3] == [("C", "JP"), ("L", holder.prefecture), ("L", holder.municipality)]
    assert IDENTIFIER_RE.fullmatch(subject[3][1])
    types = [atv["value"].name for rdn in asn1(cert).subject.chosen for atv in rdn]
    assert types == ["printable_string", "utf8_string", "utf8_string", "utf8_string"]


def _other_name(general_name_der: bytes) -> tuple[str, int, str]:
    """Walk ``[0] { OID, [0] EXPLICIT UTF8String }`` by hand; return (oid, inner tag, text)."""
    cls, constructed, tag, _, contents, _ = parser.parse(general_name_der)
    assert (cls, constructed, tag) == (2, 1, 0)  # otherName: context [0], constructed
    oid_cls, _, oid_tag, oid_header, oid_contents, _ = parser.parse(contents)
    assert (oid_cls, oid_tag) == (0, 6)
    rest = contents[len(oid_header) + len(oid_contents):]
    cls, constructed, tag, header, explicit, trailer = parser.parse(rest)
    assert (cls, constructed, tag) == (2, 1, 0)  # [0] EXPLICIT
    assert len(header) + len(explicit) + len(trailer) == len(rest)
    inner_cls, _, inner_tag, _, text, _ = parser.parse(explicit)
    assert inner_cls == 0
    oid = Asn1Oid.load(oid_header + oid_contents).dotted
    return oid, inner_tag, text.decode("utf-8")


@pytest.mark.parametrize("generation", [2, 3])
def test_signing_certificate_san_carries_the_basic_four(
    issued: dict, holder: Holder, generation: int
) -> None:
    """9.5: six otherNames in the order .1 .4 .3 .5 .2 .6, each [0] EXPLICIT UTF8String."""
    cert = issued["sign", generation]
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert not san.critical
    names = [_other_name(gn.dump()) for gn in asn1(cert).subject_alt_name_value]
    assert [oid for oid, _, _ in names] == BASIC_FOUR_ORDER
    assert {tag for _, tag, _ in names} == {12}  # UTF8String
    assert [text for _, _, text in names] == [
        holder.name,  # 山田　太郎 form with U+3000
        f"3{holder.birth_date:%Y%m%d}",  # 1985 → 昭和 → era digit 3
        "1",  # male
        holder.address,
        "0" * len(holder.name),
        "0" * len(holder.address),
    ]
    assert "\u3000" in names[0][2]


@pytest.mark.parametrize(("sex", "code"), [(Sex.MALE, "1"), (Sex.FEMALE, "2"),
                                           (Sex.NOT_APPLICABLE, "3")])
def test_san_sex_uses_the_certificate_code_list(
    pki: Authority, ee_key: rsa.RSAPrivateKey, sex: Sex, code: str
) -> None:
    """9.5 OID .3: 1/2/3 (3 = unknown), not the text AP's ISO 5218 1/2/9 (12.5)."""
    person = synthetic_holder(21, sex=sex)
    cert = pki.issue_signing_certificate(person, ee_key.public_key(), at=IN_GEN3)
    names = [_other_name(gn.dump()) for gn in asn1(cert).subject_alt_name_value]
    assert names[2] == ("1.2.392.200149.8.5.5.3", 12, code)
    assert decode_basic_four(cert)["sex"] is sex


def test_decode_basic_four_round_trips(issued: dict, holder: Holder) -> None:
    facts = decode_basic_four(issued["sign", 3])
    assert facts is not None
    assert facts["name"] == holder.name
    assert facts["birth_date"] == holder.birth_date
    assert facts["birth_era"] == 3
    assert facts["sex"] is holder.sex
    assert facts["address"] == holder.address
    assert facts["order"] == BASIC_FOUR_ORDER
    assert decode_basic_four(issued["auth", 3]) is None


def test_auth_certificate_has_no_personal_data(issued: dict, holder: Holder) -> None:
    """9.6: subject C=JP, CN=<20 chars> only; no SAN; KeyUsage critical digitalSignature."""
    cert = issued["auth", 3]
    subject = rdns(cert.subject)
    assert [a for a, _ in subject] == ["C", "CN"]
    assert IDENTIFIER_RE.fullmatch(subject[1][1])
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.content_commitment or ku.value.key_encipherment)
    raw = der(cert)
    for secret in (holder.name, holder.family_name, holder.address, holder.street,
                   holder.birth_yyyymmdd(), holder.individual_number):
        assert secret.encode("utf-8") not in raw


def test_identifiers_differ_per_certificate(issued: dict) -> None:
    cns = {c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in issued.values()}
    assert len(cns) == len(issued)


# --- policies (9.4, 9.6) ---------------------------------------------------------------------


def _policy(cert: x509.Certificate) -> x509.ObjectIdentifier:
    (policy,) = ext(cert, ExtensionOID.CERTIFICATE_POLICIES).value
    return policy.policy_identifier


def test_policy_sets(holder: Holder, ee_key: rsa.RSAPrivateKey) -> None:
    """9.4: test cards …1.0.20 (default), production …1.1.20; auth …3.30 either way;
    phone signing policy …1.1.40 [U] only when the profile asks for it."""
    production = Authority(SEED, AuthorityProfile(policy_set="production-shaped"))
    phone = Authority(SEED, AuthorityProfile(gpse_sign_policy=OID_POLICY_SIGN_SMARTPHONE))
    default = Authority(SEED)
    pub = ee_key.public_key()
    assert _policy(default.issue_signing_certificate(holder, pub, at=IN_GEN3)) == (
        OID_POLICY_SIGN_TEST)
    assert _policy(production.issue_signing_certificate(holder, pub, at=IN_GEN3)) == (
        OID_POLICY_SIGN)
    assert _policy(production.issue_auth_certificate(holder, pub, at=IN_GEN3)) == OID_POLICY_AUTH
    assert _policy(default.issue_signing_certificate(holder, pub, at=IN_GEN3, token="gpse")) == (
        OID_POLICY_SIGN_TEST)
    assert _policy(phone.issue_signing_certificate(holder, pub, at=IN_GEN3, token="gpse")) == (
        OID_POLICY_SIGN_SMARTPHONE)
    assert _policy(phone.issue_signing_certificate(holder, pub, at=IN_GEN3)) == OID_POLICY_SIGN_TEST
    with pytest.raises(PkiError):
        AuthorityProfile(policy_set="prod")


# --- validity (9.7, smartphone-service.md 6) -------------------------------------------------


def test_ee_not_after_follows_the_birthday_rule(issued: dict, holder: Holder) -> None:
    """Born 1985-09-30, issued 2024-06-01 → 5th birthday after = 2028-09-30, 14:59:59Z."""
    for kind in ("sign", "auth"):
        cert = issued[kind, 3]
        assert cert.not_valid_before_utc == IN_GEN3
        assert cert.not_valid_after_utc == datetime(2028, 9, 30, 14, 59, 59, tzinfo=UTC)
        assert cert.not_valid_after_utc == certificate_not_after(
            holder.birth_date, IN_GEN3, date(2034, 9, 30))


def test_renewal_and_card_expiry_cap(pki: Authority, holder: Holder,
                                     ee_key: rsa.RSAPrivateKey) -> None:
    pub = ee_key.public_key()
    renewed = pki.issue_auth_certificate(holder, pub, at=IN_GEN3, renewal=True)
    assert renewed.not_valid_after_utc == end_of_day_jst(date(2029, 9, 30))
    capped = pki.issue_auth_certificate(holder, pub, at=IN_GEN3, card_expiry=date(2026, 1, 5))
    assert capped.not_valid_after_utc == end_of_day_jst(date(2026, 1, 5))


def test_ee_never_outlives_its_ca(pki: Authority, ee_key: rsa.RSAPrivateKey) -> None:
    """An EE Not After never exceeds the issuing CA certificate's (generation 3 ends 2033-07-15)."""
    young = synthetic_holder(12, birth_date=date(1990, 12, 1))
    at = datetime(2032, 1, 10, tzinfo=UTC)
    cert = pki.issue_signing_certificate(young, ee_key.public_key(), at=at)
    assert cert.not_valid_after_utc == pki.ca("sign", 3).certificate.not_valid_after_utc
    explicit = pki.issue_auth_certificate(young, ee_key.public_key(), at=at,
                                          not_after=datetime(2040, 1, 1, tzinfo=UTC))
    assert explicit.not_valid_after_utc == datetime(2033, 7, 15, 14, 59, 59, tzinfo=UTC)


def test_phone_certificate_follows_the_card_certificate(
    pki: Authority, issued: dict, holder: Holder, ee_key: rsa.RSAPrivateKey
) -> None:
    """smartphone-service.md 6 MODEL: phone Not After = card certificate Not After."""
    card = issued["sign", 3]
    phone = pki.issue_signing_certificate(
        holder, ee_key.public_key(), at=IN_GEN3 + timedelta(days=200), token="gpse",
        not_after=card.not_valid_after_utc,
    )
    assert phone.not_valid_after_utc == card.not_valid_after_utc
    assert decode_basic_four(phone) == decode_basic_four(card)


def test_issuance_uses_the_clock_when_no_time_is_given(holder: Holder,
                                                       ee_key: rsa.RSAPrivateKey) -> None:
    clock = FixedClock(datetime(2024, 2, 3, 4, 5, 6, 789, tzinfo=UTC))
    cert = Authority(SEED, clock=clock).issue_auth_certificate(holder, ee_key.public_key())
    assert cert.not_valid_before_utc == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert cert.issuer == Authority(SEED).ca("auth", 3).certificate.subject


@pytest.mark.parametrize(
    "kwargs",
    [
        {"at": datetime(2024, 6, 1)},  # naive
        {"at": datetime(2015, 1, 1, tzinfo=UTC)},  # before every generation
        {"at": IN_GEN3, "token": "ios"},
        {"at": IN_GEN3, "generation": 2, "not_after": datetime(2024, 1, 1, tzinfo=UTC)},
        {"at": datetime(2026, 1, 1, tzinfo=UTC), "generation": 1},  # generation 1 expired
        {"at": IN_GEN3, "serial": 0},
        {"at": IN_GEN3, "serial": 2**160},
        {"at": IN_GEN3, "identifier": "lowercase-not-allowed"},
        {"at": IN_GEN3, "card_expiry": date(2024, 5, 31)},  # card already expired
    ],
)
def test_issuance_refuses_mistakes(pki: Authority, holder: Holder, ee_key: rsa.RSAPrivateKey,
                                   kwargs: dict) -> None:
    with pytest.raises(PkiError):
        pki.issue_signing_certificate(holder, ee_key.public_key(), **kwargs)


def test_issuance_refuses_private_keys_and_unborn_holders(
    pki: Authority, holder: Holder, ee_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(PkiError):
        pki.issue_auth_certificate(holder, ee_key, at=IN_GEN3)  # type: ignore[arg-type]
    unborn = synthetic_holder(13, birth_date=date(2024, 7, 1))
    with pytest.raises(PkiError):
        pki.issue_auth_certificate(unborn, ee_key.public_key(), at=IN_GEN3)


def test_serials(pki: Authority, holder: Holder, ee_key: rsa.RSAPrivateKey) -> None:
    """Caller serial kept; random serials positive, ≤ serial_bytes with the top bit clear."""
    pub = ee_key.public_key()
    assert pki.issue_auth_certificate(holder, pub, at=IN_GEN3, serial=0x0705D990).serial_number == (
        0x0705D990)
    serials = {pki.issue_auth_certificate(holder, pub, at=IN_GEN3).serial_number for _ in range(4)}
    assert len(serials) == 4
    assert all(0 < s < 2**63 for s in serials)


# --- path validation with pyhanko-certvalidator -----------------------------------------------


def _validate(pki: Authority, cert: x509.Certificate, moment: datetime, usage: set[str],
              policy: x509.ObjectIdentifier):
    roots = [asn1(c) for c in pki.ca_certificates()]  # both hierarchies, all generations
    context = ValidationContext(trust_roots=roots, moment=moment)
    params = PKIXValidationParams(user_initial_policy_set=frozenset([policy.dotted_string]),
                                  initial_explicit_policy=True)
    validator = CertificateValidator(asn1(cert), validation_context=context, pkix_params=params)
    return asyncio.run(validator.async_validate_usage(usage))


@pytest.mark.parametrize(
    ("kind", "generation", "at"),
    [("sign", 2, IN_GEN2), ("auth", 2, IN_GEN2), ("sign", 3, IN_GEN3), ("auth", 3, IN_GEN3)],
)
def test_pyhanko_builds_the_path_to_the_right_generation(
    pki: Authority, issued: dict, kind: str, generation: int, at: datetime
) -> None:
    """Same-DN roots: the validator must pick the generation whose SKI matches the AKI (9.2);
    the critical CertificatePolicies must be processed, and key usage must fit the kind."""
    cert = issued[kind, generation]
    usage = {"digital_signature", "non_repudiation"} if kind == "sign" else {"digital_signature"}
    policy = OID_POLICY_SIGN_TEST if kind == "sign" else OID_POLICY_AUTH
    path = _validate(pki, cert, at + timedelta(days=1), usage, policy)
    assert path.first.dump() == der(pki.ca(kind, generation).certificate)
    assert path.leaf.dump() == der(cert)
    assert len(path) == 2


def test_pyhanko_rejects_wrong_usage_and_wrong_policy(pki: Authority, issued: dict) -> None:
    """Negative controls: the validator really checks usage (9.6), policy (9.4) and time."""
    moment = IN_GEN3 + timedelta(days=1)
    with pytest.raises(InvalidCertificateError, match="non repudiation"):
        _validate(pki, issued["auth", 3], moment, {"non_repudiation"}, OID_POLICY_AUTH)
    # a test-policy certificate does not satisfy a relying party that demands production
    with pytest.raises(PathValidationError, match="policies"):
        _validate(pki, issued["sign", 3], moment, {"digital_signature"}, OID_POLICY_SIGN)
    with pytest.raises(ExpiredError):  # Not After 2025-09-30 (5th birthday after 2021-03-01)
        _validate(pki, issued["sign", 2], datetime(2027, 1, 1, tzinfo=UTC),
                  {"digital_signature"}, OID_POLICY_SIGN_TEST)


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_ca_certificates(pki: Authority) -> None:
    again = Authority(seed=SEED)
    assert [der(c) for c in again.ca_certificates()] == [der(c) for c in pki.ca_certificates()]
    one_gen = AuthorityProfile(generations=(DEFAULT_GENERATIONS[2],))
    other = Authority(seed=b"another seed", profile=one_gen)
    assert der(other.ca("sign", 3).certificate) != der(pki.ca("sign", 3).certificate)
    assert other.ca("sign", 3).key_identifier != pki.ca("sign", 3).key_identifier


def test_seeded_end_entity_is_reproducible(pki: Authority, holder: Holder,
                                           ee_key: rsa.RSAPrivateKey) -> None:
    """With a seeded authority, key, time and rng, the EE certificate is byte-identical."""
    def make() -> bytes:
        return der(Authority(SEED).issue_signing_certificate(
            holder, ee_key.public_key(), at=IN_GEN3, rng=random.Random(5)))

    first = make()
    assert make() == first
    assert hashlib.sha256(first).digest() != hashlib.sha256(der(pki.issue_signing_certificate(
        holder, ee_key.public_key(), at=IN_GEN3, rng=random.Random(6)))).digest()


# --- never mistakable for J-LIS ----------------------------------------------------------------


def _names_in(cert: x509.Certificate) -> list[x509.Name]:
    names = [cert.subject, cert.issuer]
    for e in cert.extensions:
        values = e.value
        if isinstance(values, x509.CRLDistributionPoints):
            names += [n.value for dp in values for n in dp.full_name or []
                      if isinstance(n, x509.DirectoryName)]
        elif isinstance(values, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
            names += values.get_values_for_type(x509.DirectoryName)
    return names


def test_nothing_issued_names_j_lis(pki: Authority, issued: dict) -> None:
    """9.2 MODEL: keep the DN shape, never the real issuer (O=JPKI, OU=Japan Agency …)."""
    certs = pki.ca_certificates() + list(issued.values())
    for cert in certs:
        assert REAL_ISSUER_OU.encode() not in der(cert)
        for name in _names_in(cert):
            orgs = [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
            assert "JPKI" not in orgs
            assert "公的個人認証サービス" not in orgs
    with pytest.raises(PkiError):
        AuthorityProfile(organization="JPKI")
    with pytest.raises(PkiError):
        AuthorityProfile(simulated_marker=REAL_ISSUER_OU)
    with pytest.raises(PkiError):
        AuthorityProfile(issuer_alt_organization="公的個人認証サービス")


# --- card-verifiable issuer keys (3.3, 3.4) ----------------------------------------------------


def test_cv_issuer_keys(pki: Authority) -> None:
    """Test-card key id prefixes 6000033 (text AP) and 6000023 (surface AP), 16 ASCII bytes."""
    text_id, text_key = pki.cv_issuer("text")
    surface_id, surface_key = pki.cv_issuer("surface")
    assert text_id.startswith(b"6000033") and surface_id.startswith(b"6000023")
    assert len(text_id) == len(surface_id) == 16
    assert text_id.isdigit() and surface_id.isdigit()
    assert text_key.key_size == 2048
    assert text_key.public_key().public_numbers() != surface_key.public_key().public_numbers()
    again_id, again_key = Authority(SEED).cv_issuer("text")
    assert again_id == text_id
    assert again_key.public_key().public_numbers() == text_key.public_key().public_numbers()
    with pytest.raises(PkiError):
        pki.cv_issuer("jpki")


# --- describe_certificate ----------------------------------------------------------------------


def test_describe_certificate(pki: Authority, issued: dict, holder: Holder) -> None:
    sign = describe_certificate(issued["sign", 3])
    assert sign["kind"] == "sign"
    assert sign["serial_hex"] == f"0x{issued['sign', 3].serial_number:x}"
    assert int(sign["serial_decimal"]) == issued["sign", 3].serial_number
    assert sign["subject"].startswith(f"C=JP, L={holder.prefecture}, L={holder.municipality}, CN=")
    assert sign["issuer"] == (f"C=JP, O={pki.profile.organization}, OU=JPKI for digital signature,"
                              f" OU={pki.profile.simulated_marker}")
    assert sign["basic_four"]["name"] == holder.name
    assert sign["authority_key_id"] == pki.ca("sign", 3).key_identifier.hex()
    assert sign["policies"] == [OID_POLICY_SIGN_TEST.dotted_string]
    auth = describe_certificate(issued["auth", 3])
    assert auth["kind"] == "auth" and "basic_four" not in auth
    ca = describe_certificate(pki.ca("auth", 2).certificate)
    assert ca["kind"] == "ca"
    assert ca["not_after"] == datetime(2029, 9, 14, 14, 59, 59, tzinfo=UTC)

"""CRLs: encoding, publication, partitions, ARL, and what tools nobody here wrote make of them.

Spec: jpki-card.md 9.2 (CA CRLDP = its own DN, same DN for every generation), 9.7 (CRL
distribution point per issuing municipality; HTTP URI and OCSP AIA as a MODEL option),
smartphone-service.md 11.3 (CRLs periodic, OCSP real time; the reason codes in use), 15.8 (event
→ reason). RFC 5280 5.1–5.3 for the structure. Time comes from a FixedClock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from workbench.pki import Authority, AuthorityProfile, FixedClock, Hierarchy, synthetic_holder
from workbench.pki.clock import JST
from workbench.pki.crl import (
    CrlFormatError,
    LoadedCrl,
    crl_for,
    encode_crl,
    publication_time,
)
from workbench.pki.registry import Registry, RegistryError
from workbench.pki.status import CertState, RevocationReason
from workbench.pki.store import AuthorityStore

SEED = b"tests"
T0 = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)  # 10:00 JST
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
#: The first publication after T0: 2025-04-02 00:00 JST.
P1 = datetime(2025, 4, 1, 15, 0, tzinfo=UTC)
REPO = "http://127.0.0.1:8765"
EE_KEY = rsa.generate_private_key(65537, 2048)
HOLDER = synthetic_holder(1)  # 札幌市中央区 01101
OTHER = synthetic_holder(4)  # another municipality
assert HOLDER.municipality_code != OTHER.municipality_code

_SIGNER = Authority(seed=SEED)
_CA = _SIGNER.ca("auth", 3)

requires_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


@dataclass
class World:
    clock: FixedClock
    store: AuthorityStore
    good: x509.Certificate
    revoked: x509.Certificate
    held: x509.Certificate
    elsewhere: x509.Certificate  # revoked, other municipality

    @property
    def ca(self) -> x509.Certificate:
        return self.store.authority.ca("auth", 3).certificate


def _world(tmp_path: Path, profile: AuthorityProfile | None = None) -> World:
    clock = FixedClock(T0)
    profile = profile or AuthorityProfile(repository_url=REPO, ocsp_aia=True)
    store = AuthorityStore.open(tmp_path / "authority.db", create=True, profile=profile,
                                seed=SEED, clock=clock)
    issue = store.authority.issue_auth_certificate
    certs = [issue(HOLDER, EE_KEY.public_key(), serial=s) for s in (0x10, 0x11, 0x12)]
    elsewhere = issue(OTHER, EE_KEY.public_key(), serial=0x20)
    for cert in certs:
        store.registry.register(cert, partition=HOLDER.municipality_code, token="icc")
    store.registry.register(elsewhere, partition=OTHER.municipality_code, token="icc")
    clock.advance(timedelta(hours=1))
    store.registry.revoke(0x11, RevocationReason.KEY_COMPROMISE)
    store.registry.hold(0x12)  # 一時利用停止 (smartphone-service.md 9.1)
    store.registry.revoke(0x20, RevocationReason.AFFILIATION_CHANGED)
    return World(clock, store, *certs, elsewhere)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = _world(tmp_path)
    yield w
    w.store.close()


def _entries(der: bytes) -> dict[int, tuple[RevocationReason, datetime]]:
    loaded = LoadedCrl.from_der(der)
    return {s: loaded.is_revoked(s) for s in loaded.serials()}  # type: ignore[misc]


# --- encoding ---------------------------------------------------------------------------------

def _cryptography_crl(entries, number: int, this_update: datetime) -> x509.CertificateRevocationList:
    revoked = []
    for serial, when, reason, *rest in entries:
        b = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not RevocationReason.UNSPECIFIED:
            b = b.add_extension(x509.CRLReason(reason.flag), critical=False)
        if rest and rest[0] is not None:
            b = b.add_extension(x509.InvalidityDate(rest[0]), critical=False)
        revoked.append(b.build())
    aki = x509.AuthorityKeyIdentifier(_CA.key_identifier, None, None)
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=_CA.name, last_update=this_update, next_update=this_update + DAY,
        extensions=[x509.Extension(aki.oid, False, aki),
                    x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number))],
        revoked_certificates=revoked)
    return builder.sign(_CA.private_key, hashes.SHA256())


def test_tbs_is_byte_identical_to_cryptography_builder() -> None:
    """Our direct DER writer produces exactly what cryptography's builder encodes."""
    entries = [
        (1, T0, RevocationReason.KEY_COMPROMISE),
        (0x80, T0 + SECOND, RevocationReason.UNSPECIFIED),  # no reasonCode (RFC 5280 5.3.1)
        (2**63 - 1, T0, RevocationReason.CERTIFICATE_HOLD),
        (2**159 - 7, T0 + DAY, RevocationReason.SUPERSEDED, T0 - DAY),  # 20 octets, invalidity
        (12345, datetime(2051, 1, 1, tzinfo=UTC), RevocationReason.CA_COMPROMISE),  # Generalized
    ]
    ours = encode_crl(issuer=_CA.name, signing_key=_CA.private_key,
                      authority_key_id=_CA.key_identifier, this_update=P1,
                      next_update=P1 + DAY, number=20180, entries=entries)
    theirs = _cryptography_crl(entries, 20180, P1)
    parsed = x509.load_der_x509_crl(ours)
    assert parsed.tbs_certlist_bytes == theirs.tbs_certlist_bytes
    assert parsed.is_signature_valid(_CA.certificate.public_key())
    LoadedCrl.from_der(ours).verify(_CA.certificate.public_key())


def test_an_empty_crl_has_no_revoked_certificates_field() -> None:
    """RFC 5280 5.1.2.6: with nothing revoked the list is absent, not an empty SEQUENCE."""
    der = encode_crl(issuer=_CA.name, signing_key=_CA.private_key,
                     authority_key_id=_CA.key_identifier, this_update=P1, next_update=P1 + DAY,
                     number=1, entries=[])
    assert x509.load_der_x509_crl(der).tbs_certlist_bytes == _cryptography_crl([], 1, P1).tbs_certlist_bytes
    assert len(LoadedCrl.from_der(der)) == 0


_entry = st.tuples(
    st.integers(1, 2**159 - 1),
    st.integers(0, 80 * 365 * 86400).map(lambda s: datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=s)),
    st.sampled_from([r for r in RevocationReason if r is not RevocationReason.REMOVE_FROM_CRL]),
)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(_entry, max_size=40, unique_by=lambda e: e[0]),
       absent=st.lists(st.integers(0, 2**160), max_size=10))
def test_lookups_agree_with_cryptography(entries, absent) -> None:
    der = encode_crl(issuer=_CA.name, signing_key=_CA.private_key,
                     authority_key_id=_CA.key_identifier, this_update=P1, next_update=None,
                     number=7, entries=entries)
    theirs = x509.load_der_x509_crl(der)
    ours = LoadedCrl.from_der(der)
    assert len(ours) == len(theirs) == len(entries) and ours.number == 7
    assert ours.next_update is None and ours.authority_key_id == _CA.key_identifier
    for serial in [e[0] for e in entries] + absent:
        other = theirs.get_revoked_certificate_by_serial_number(serial)
        mine = ours.is_revoked(serial)
        if other is None:
            assert mine is None
            continue
        try:
            flag = other.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            flag = x509.ReasonFlags.unspecified
        assert mine == (RevocationReason(flag.value), other.revocation_date_utc)


def test_loaded_crl_reads_crls_it_did_not_write() -> None:
    """A cryptography-built CRL (unsorted, invalidity dates, GeneralizedTime) reads the same."""
    entries = [(9, T0, RevocationReason.PRIVILEGE_WITHDRAWN, T0 - DAY),
               (3, datetime(2060, 5, 5, tzinfo=UTC), RevocationReason.UNSPECIFIED),
               (2**150, T0, RevocationReason.AA_COMPROMISE)]
    crl = _cryptography_crl(entries, 99, P1)
    loaded = LoadedCrl.from_der(crl.public_bytes(Encoding.DER))
    assert loaded.number == 99 and loaded.this_update == P1 and loaded.next_update == P1 + DAY
    assert loaded.entry(9) == (9, T0, RevocationReason.PRIVILEGE_WITHDRAWN, T0 - DAY)
    assert loaded.is_revoked(3) == (RevocationReason.UNSPECIFIED, datetime(2060, 5, 5, tzinfo=UTC))
    assert loaded.is_revoked(2**150) == (RevocationReason.AA_COMPROMISE, T0)
    assert loaded.is_revoked(4) is None
    assert [e[0] for e in loaded.entries()] == [9, 3, 2**150]


def test_broken_der_is_a_crl_format_error() -> None:
    der = encode_crl(issuer=_CA.name, signing_key=_CA.private_key,
                     authority_key_id=_CA.key_identifier, this_update=P1, next_update=P1 + DAY,
                     number=1, entries=[(5, T0, RevocationReason.KEY_COMPROMISE)])
    for cut in range(len(der)):
        with pytest.raises(CrlFormatError):
            LoadedCrl.from_der(der[:cut])
    with pytest.raises(CrlFormatError):
        LoadedCrl.from_der(b"\x30\x03\x02\x01\x01")
    with pytest.raises(CrlFormatError):
        LoadedCrl.from_der("not bytes")  # type: ignore[arg-type]
    other_key = rsa.generate_private_key(65537, 2048)
    with pytest.raises(CrlFormatError, match="does not verify"):
        LoadedCrl.from_der(der).verify(other_key.public_key())


# --- publication (smartphone-service.md 11.3, MODEL interval) ----------------------------------

def test_a_revocation_reaches_the_crl_at_the_next_publication(world: World) -> None:
    """OCSP (the registry) sees the revocation at once; the CRL only from the next boundary."""
    reg, ikid = world.store.registry, _CA.key_identifier
    assert reg.status(ikid, 0x11).state is CertState.REVOKED  # immediately
    now_crl = world.store.crl("auth", partition=HOLDER.municipality_code)
    loaded = LoadedCrl.from_der(now_crl)
    assert loaded.this_update == P1 - DAY and loaded.next_update == P1
    assert len(loaded) == 0
    world.clock.set(P1 - SECOND)
    assert world.store.crl("auth", partition=HOLDER.municipality_code) == now_crl
    world.clock.set(P1)
    next_crl = LoadedCrl.from_der(world.store.crl("auth", partition=HOLDER.municipality_code))
    revoked_at = T0 + timedelta(hours=1)
    assert _entries(next_crl.der) == {
        0x11: (RevocationReason.KEY_COMPROMISE, revoked_at),
        0x12: (RevocationReason.CERTIFICATE_HOLD, revoked_at),
    }
    assert next_crl.this_update == P1 and next_crl.this_update.astimezone(JST).hour == 0
    assert next_crl.number == loaded.number + 1  # type: ignore[operator]


def test_fetches_between_publications_get_identical_bytes(world: World, tmp_path) -> None:
    world.clock.set(P1 + timedelta(hours=2))
    first = world.store.crl("auth")
    world.store.registry.revoke(0x10, RevocationReason.SUPERSEDED)  # after this publication
    world.clock.set(P1 + timedelta(hours=23))
    assert world.store.crl("auth") == first
    world.store.close()
    with AuthorityStore.open(tmp_path / "authority.db", clock=world.clock) as again:
        assert again.crl("auth") == first  # the publication is stored, not rebuilt
        world.clock.set(P1 + DAY)
        later = again.crl("auth")
    assert 0x10 in LoadedCrl.from_der(later) and 0x10 not in LoadedCrl.from_der(first)


def test_a_hold_lifted_before_publication_never_appears(world: World) -> None:
    world.clock.set(P1 - timedelta(minutes=5))
    world.store.registry.release(0x12)  # 解除 (9.2)
    world.clock.set(P1 + timedelta(hours=1))
    assert set(_entries(world.store.crl("auth"))) == {0x11, 0x20}


def test_a_hold_lifted_after_publication_leaves_at_the_next_one(world: World) -> None:
    world.clock.set(P1 + timedelta(hours=1))
    assert 0x12 in LoadedCrl.from_der(world.store.crl("auth"))
    world.store.registry.release(0x12)
    world.clock.set(P1 + DAY)
    assert 0x12 not in LoadedCrl.from_der(world.store.crl("auth"))


def test_the_publication_interval_is_configurable(tmp_path) -> None:
    w = _world(tmp_path, AuthorityProfile(crl_interval=timedelta(hours=6)))
    try:
        w.clock.set(T0 + timedelta(hours=2))  # 12:00 JST: the 12:00 JST publication
        loaded = LoadedCrl.from_der(w.store.crl("auth"))
        assert loaded.this_update == datetime(2025, 4, 1, 3, 0, tzinfo=UTC)
        assert loaded.next_update == loaded.this_update + timedelta(hours=6)
        assert set(_entries(loaded.der)) == {0x11, 0x12, 0x20}
        assert publication_time(T0, timedelta(hours=6)) == datetime(2025, 3, 31, 21, 0,
                                                                     tzinfo=UTC)
    finally:
        w.store.close()


def test_crl_numbers_grow_per_ca_and_partition(world: World) -> None:
    numbers = []
    for day in range(4):
        world.clock.set(P1 + day * DAY)
        numbers.append(LoadedCrl.from_der(world.store.crl("auth", partition="01101")).number)
    assert numbers == [numbers[0] + i for i in range(4)]
    world.clock.set(P1 + 10 * DAY)
    full = LoadedCrl.from_der(world.store.crl("auth")).number
    assert full is not None and full > numbers[-1]


def test_an_authority_with_a_separate_registry_publishes_too(tmp_path) -> None:
    clock = FixedClock(T0)
    authority = Authority(seed=SEED, clock=clock)
    registry = Registry(None, clock)
    cert = authority.issue_auth_certificate(HOLDER, EE_KEY.public_key(), serial=0x77)
    registry.register(cert, partition=HOLDER.municipality_code)
    registry.revoke(0x77, RevocationReason.KEY_COMPROMISE)
    clock.advance(DAY)
    assert set(_entries(crl_for(authority, "auth", 3, registry=registry))) == {0x77}
    with pytest.raises(Exception, match="registry"):
        crl_for(authority, "auth", 3)


# --- partitions and the ARL (jpki-card.md 9.2, 9.7) ---------------------------------------------

def test_partitioned_crl_lists_one_municipality_and_names_its_distribution_point(world) -> None:
    world.clock.set(P1)
    full = world.store.crl("auth")
    mine = world.store.crl("auth", partition=HOLDER.municipality_code)
    theirs = world.store.crl("auth", partition=OTHER.municipality_code)
    assert set(_entries(full)) == {0x11, 0x12, 0x20}
    assert set(_entries(mine)) == {0x11, 0x12}
    assert set(_entries(theirs)) == {0x20}
    crl = x509.load_der_x509_crl(mine)
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical and idp.value.only_contains_user_certs
    dp = world.good.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    assert idp.value.full_name == dp.full_name
    assert f"{REPO}/crl/auth/g3/{HOLDER.municipality_code}.crl" in [
        n.value for n in dp.full_name if isinstance(n, x509.UniformResourceIdentifier)]
    with pytest.raises(x509.ExtensionNotFound):
        x509.load_der_x509_crl(full).extensions.get_extension_for_class(
            x509.IssuingDistributionPoint)


def test_a_partition_nobody_was_issued_in_has_no_crl(world) -> None:
    with pytest.raises(RegistryError, match="partition"):
        world.store.crl("auth", partition="47201")


def test_the_arl_lists_revoked_ca_certificates(world) -> None:
    """ARL: CA certificates only, IDP onlyContainsCACerts naming the CA's own DP (9.2)."""
    ca = world.store.ca("auth", 3).certificate
    world.store.registry.revoke(ca.serial_number, RevocationReason.CA_COMPROMISE,
                                issuer_key_id=_CA.key_identifier)
    world.clock.set(P1)
    arl = x509.load_der_x509_crl(world.store.arl("auth"))
    assert [r.serial_number for r in arl] == [ca.serial_number]
    idp = arl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert idp.only_contains_ca_certs and not idp.only_contains_user_certs
    ca_dp = ca.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
    assert idp.full_name == ca_dp.full_name
    assert x509.UniformResourceIdentifier(f"{REPO}/arl/auth/g3.crl") in ca_dp.full_name
    assert ca.serial_number in LoadedCrl.from_der(world.store.crl("auth"))
    assert ca.serial_number not in LoadedCrl.from_der(world.store.crl("auth", partition="01101"))


def test_generations_have_their_own_crls(world) -> None:
    """Same DN, different keys (9.2): each generation's CRL is signed by and names its key."""
    world.clock.set(P1)
    g2 = x509.load_der_x509_crl(world.store.crl("auth", 2))
    g3 = x509.load_der_x509_crl(world.store.crl("auth", 3))
    assert g2.issuer == g3.issuer and len(g2) == 0 and len(g3) == 3
    key2 = world.store.authority.ca("auth", 2).certificate.public_key()
    assert g2.is_signature_valid(key2) and not g3.is_signature_valid(key2)


def test_invalidity_date_is_carried(world) -> None:
    lost = T0 - timedelta(hours=20)
    world.store.registry.revoke(0x10, RevocationReason.KEY_COMPROMISE, invalidity_date=lost)
    world.clock.set(P1)
    entry = x509.load_der_x509_crl(world.store.crl("auth")).get_revoked_certificate_by_serial_number(0x10)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc == lost
    assert LoadedCrl.from_der(world.store.crl("auth")).entry(0x10)[3] == lost  # type: ignore[index]


def test_expired_revoked_certificates_stay_listed(world) -> None:
    world.clock.set(world.revoked.not_valid_after_utc + 3 * DAY)
    assert 0x11 in LoadedCrl.from_der(world.store.crl("auth"))


# --- certificate profile options (jpki-card.md 9.7 MODEL) ---------------------------------------

def test_repository_options_add_http_uris_and_ocsp(world) -> None:
    aia = world.good.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.OCSP, f"{REPO}/ocsp")]
    dps = world.good.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert len(dps) == 1 and isinstance(dps[0].full_name[0], x509.DirectoryName)


def test_full_scope_names_the_full_crl_in_a_second_distribution_point() -> None:
    profile = AuthorityProfile(repository_url=REPO, crl_url_scope="full")
    authority = Authority(seed=SEED, profile=profile, clock=FixedClock(T0))
    cert = authority.issue_signing_certificate(HOLDER, EE_KEY.public_key(), serial=0x31)
    dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [type(n) for n in dps[0].full_name] == [x509.DirectoryName]
    assert dps[1].full_name == [x509.UniformResourceIdentifier(f"{REPO}/crl/sign/g3.crl")]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_the_default_profile_keeps_the_real_shape() -> None:
    """No repository: directoryName only, no AIA (9.3 "AIA/OCSP not found", 9.7)."""
    authority = Authority(seed=SEED, clock=FixedClock(T0))
    cert = authority.issue_auth_certificate(HOLDER, EE_KEY.public_key(), serial=0x32)
    dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert len(dps) == 1 and [type(n) for n in dps[0].full_name] == [x509.DirectoryName]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    ca_dp = authority.ca(Hierarchy.AUTH, 3).certificate.extensions.get_extension_for_class(
        x509.CRLDistributionPoints).value[0]
    assert ca_dp.full_name == [x509.DirectoryName(authority.ca_name("auth"))]


@pytest.mark.parametrize("bad", [
    {"repository_url": "ftp://x"}, {"repository_url": "http://x/?q=1"},
    {"ocsp_aia": True}, {"crl_interval": timedelta(0)}, {"crl_interval": timedelta(seconds=1.5)},
    {"crl_url_scope": "county"},
])
def test_bad_profile_options_are_refused(bad) -> None:
    from workbench.errors import PkiError

    with pytest.raises(PkiError):
        AuthorityProfile(**bad)


# --- interop with tools nobody here wrote -------------------------------------------------------

def _pem(path: Path, obj) -> Path:
    path.write_bytes(obj.public_bytes(Encoding.PEM))
    return path


def _openssl_verify(tmp_path: Path, world: World, cert: x509.Certificate, crls: list[bytes],
                    flag: str) -> subprocess.CompletedProcess[str]:
    root = _pem(tmp_path / "root.pem", world.ca)
    leaf = _pem(tmp_path / "leaf.pem", cert)
    bundle = tmp_path / "crls.pem"
    bundle.write_bytes(b"".join(x509.load_der_x509_crl(d).public_bytes(Encoding.PEM)
                                for d in crls))
    at = str(int(world.clock.now().timestamp()))
    return subprocess.run(["openssl", "verify", "-CAfile", str(root), flag, "-CRLfile",
                           str(bundle), "-attime", at, str(leaf)],
                          capture_output=True, text=True, timeout=60)


@requires_openssl
@pytest.mark.parametrize("flag", ["-crl_check", "-crl_check_all"])
@pytest.mark.parametrize("kind", ["full", "partition+arl"])
def test_openssl_verify_accepts_good_and_rejects_revoked_and_held(world, tmp_path, flag,
                                                                  kind) -> None:
    world.clock.set(P1 + timedelta(hours=3))
    if kind == "full":
        crls = [world.store.crl("auth")]
    else:
        crls = [world.store.crl("auth", partition=HOLDER.municipality_code),
                world.store.arl("auth")]
    ok = _openssl_verify(tmp_path, world, world.good, crls, flag)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stdout + ok.stderr
    for cert in (world.revoked, world.held):
        bad = _openssl_verify(tmp_path, world, cert, crls, flag)
        assert bad.returncode != 0
        assert "certificate revoked" in bad.stdout + bad.stderr


@requires_openssl
def test_openssl_needs_the_arl_for_the_root_with_a_partitioned_crl(world, tmp_path) -> None:
    """-crl_check_all checks the root too; the municipality CRL (user certs only) does not
    cover it, so the ARL is what completes the chain (RFC 5280 5.2.5 scopes)."""
    world.clock.set(P1)
    res = _openssl_verify(tmp_path, world, world.good,
                          [world.store.crl("auth", partition=HOLDER.municipality_code)],
                          "-crl_check_all")
    assert res.returncode != 0 and "different CRL scope" in res.stdout + res.stderr


@requires_openssl
def test_openssl_crl_text_shows_reasons_and_number(world, tmp_path) -> None:
    world.clock.set(P1)
    path = tmp_path / "full.crl"
    path.write_bytes(world.store.crl("auth"))
    out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout",
                          "-text"], capture_output=True, text=True, timeout=60, check=True).stdout
    number = LoadedCrl.from_der(path.read_bytes()).number
    assert "X509v3 CRL Number" in out and str(number) in out
    assert "Key Compromise" in out and "Certificate Hold" in out
    assert "Affiliation Changed" in out
    assert "Last Update: Apr  1 15:00:00 2025 GMT" in out
    assert "Next Update: Apr  2 15:00:00 2025 GMT" in out
    partitioned = tmp_path / "p.crl"
    partitioned.write_bytes(world.store.crl("auth", partition=HOLDER.municipality_code))
    out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(partitioned),
                          "-noout", "-text"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "Issuing Distribution Point: critical" in out and "Only User Certificates" in out


def _pyhanko(world: World, cert: x509.Certificate, crls: list[bytes]) -> None:
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(world.ca.public_bytes(Encoding.DER))],
        crls=crls, revocation_mode="hard-fail", moment=world.clock.now())
    validator = CertificateValidator(asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)),
                                     validation_context=context)
    asyncio.run(validator.async_validate_usage({"digital_signature"}))


@pytest.mark.parametrize("partitioned", [False, True])
def test_pyhanko_validates_with_the_crl(world, partitioned) -> None:
    world.clock.set(P1 + timedelta(hours=1))
    crl = world.store.crl("auth", partition=HOLDER.municipality_code if partitioned else None)
    _pyhanko(world, world.good, [crl])
    with pytest.raises(RevokedError, match="compromised key"):
        _pyhanko(world, world.revoked, [crl])
    with pytest.raises(RevokedError, match="hold"):
        _pyhanko(world, world.held, [crl])


def test_pyhanko_sees_a_revocation_only_in_the_crl_that_lists_it(world) -> None:
    """Before the next publication a CRL-only relying party still accepts the certificate."""
    world.store.registry.revoke(0x10, RevocationReason.KEY_COMPROMISE)
    _pyhanko(world, world.good, [world.store.crl("auth")])
    world.clock.set(P1)
    with pytest.raises(RevokedError):
        _pyhanko(world, world.good, [world.store.crl("auth")])

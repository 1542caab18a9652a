"""Relying-party verification (pyhanko-certvalidator underneath) against the live repository.

OCSP responses and CRLs are fetched over HTTP from a RepositoryServer on 127.0.0.1 at the URLs
the certificates name (profile with repository_url and ocsp_aia, jpki-card.md 9.7 MODEL), or
handed over as DER for certificates shaped like the real ones (no URLs). The authority's clock
is a FixedClock; verification happens at that clock's time, or a chosen one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.helpers import free_port
from workbench.pki import Authority, FixedClock, synthetic_holder
from workbench.pki.ocsp import OcspResponder
from workbench.pki.profiles import AuthorityProfile
from workbench.pki.registry import Registry
from workbench.pki.server import RepositoryServer
from workbench.pki.status import RevocationReason
from workbench.pki.store import AuthorityStore
from workbench.pki.verify import (
    Outcome,
    RevocationData,
    VerifyArgumentError,
    averify_certificate,
    verify_certificate,
)

_EE_KEY = rsa.generate_private_key(65537, 2048)
NOW = datetime(2025, 6, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Live:
    store: AuthorityStore
    clock: FixedClock
    server: RepositoryServer
    auth: x509.Certificate
    sign: x509.Certificate

    @property
    def roots(self) -> list[x509.Certificate]:
        return self.store.authority.ca_certificates()

    def verify(self, cert: x509.Certificate, **kw: object):
        kw.setdefault("at", self.clock.now())
        kw.setdefault("authority_roots", self.roots)
        return verify_certificate(cert, **kw)  # type: ignore[arg-type]


def _live(tmp_path: Path, signer: str) -> Iterator[Live]:
    port = free_port()
    clock = FixedClock(NOW)
    profile = AuthorityProfile(repository_url=f"http://127.0.0.1:{port}", ocsp_aia=True)
    store = AuthorityStore.open(tmp_path / "authority.sqlite", create=True, profile=profile,
                                clock=clock, seed=b"tests")
    holder = synthetic_holder(8)
    issued = NOW - timedelta(days=20)
    auth = store.authority.issue_auth_certificate(holder, _EE_KEY.public_key(), at=issued,
                                                  serial=0x3001)
    sign = store.authority.issue_signing_certificate(holder, _EE_KEY.public_key(), at=issued,
                                                     serial=0x3002)
    store.registry.register_many([auth, sign], partition=holder.municipality_code)
    server = RepositoryServer(store, port=port, ocsp_signer=signer)
    server.start()
    try:
        yield Live(store, clock, server, auth, sign)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from _live(tmp_path, "direct")


@pytest.fixture
def live_delegated(tmp_path: Path) -> Iterator[Live]:
    yield from _live(tmp_path, "delegated")


# -- OCSP fetched over HTTP (RFC 6960 via pyhanko-certvalidator) -------------------------------

def test_ocsp_good_revoked_hold_release(live: Live) -> None:
    result = live.verify(live.auth, revocation="ocsp", usage="auth")
    assert result.ok and result.outcome is Outcome.OK, result
    assert [c.serial_number for c in result.chain] == [
        live.store.authority.ca("auth", 3).certificate.serial_number, live.auth.serial_number]

    live.store.registry.hold(live.auth.serial_number)
    held = live.verify(live.auth, revocation="ocsp", usage="auth")
    assert held.outcome is Outcome.ON_HOLD and not held.ok
    assert held.reason is RevocationReason.CERTIFICATE_HOLD and held.revoked_at == NOW

    live.clock.advance(timedelta(minutes=10))
    live.store.registry.release(live.auth.serial_number)
    assert live.verify(live.auth, revocation="ocsp", usage="auth").ok

    live.clock.advance(timedelta(minutes=10))
    live.store.registry.revoke(live.sign.serial_number, RevocationReason.AFFILIATION_CHANGED)
    revoked = live.verify(live.sign, revocation="ocsp", usage="sign")
    assert revoked.outcome is Outcome.REVOKED
    assert revoked.reason is RevocationReason.AFFILIATION_CHANGED
    assert revoked.revoked_at == NOW + timedelta(minutes=20)


def test_ocsp_with_a_delegated_responder(live_delegated: Live) -> None:
    live = live_delegated
    assert live.verify(live.sign, revocation="ocsp", usage="sign").ok
    live.store.registry.revoke(live.sign.serial_number, RevocationReason.KEY_COMPROMISE)
    result = live.verify(live.sign, revocation="ocsp", usage="sign")
    assert result.outcome is Outcome.REVOKED and result.reason is RevocationReason.KEY_COMPROMISE


def test_ocsp_unknown_is_refused_under_both_policies(live: Live) -> None:
    stranger = live.store.authority.issue_auth_certificate(
        synthetic_holder(9), _EE_KEY.public_key(), at=NOW - timedelta(days=1), serial=0x3999)
    for policy in ("hard-fail", "soft-fail"):
        result = live.verify(stranger, revocation="ocsp", policy=policy)
        assert result.outcome is Outcome.UNKNOWN, result


# -- CRLs fetched over HTTP (RFC 5280 6.3) -------------------------------------------------------

def test_crl_shows_a_revocation_at_the_next_publication(live: Live) -> None:
    assert live.verify(live.auth, revocation="crl", usage="auth").ok
    live.store.registry.revoke(live.auth.serial_number, RevocationReason.CESSATION_OF_OPERATION)
    live.clock.advance(timedelta(minutes=1))
    # the CRL in force was published before the revocation (smartphone-service.md 11.3)
    assert live.verify(live.auth, revocation="crl", usage="auth").ok
    live.clock.advance(timedelta(days=1))
    result = live.verify(live.auth, revocation="crl", usage="auth")
    assert result.outcome is Outcome.REVOKED, result
    assert result.reason is RevocationReason.CESSATION_OF_OPERATION
    assert result.revoked_at == NOW
    # while OCSP saw it at once
    assert live.verify(live.auth, revocation="ocsp").outcome is Outcome.REVOKED


def test_crl_hold_is_on_hold(live: Live) -> None:
    live.store.registry.hold(live.sign.serial_number)
    live.clock.advance(timedelta(days=1))
    result = live.verify(live.sign, revocation="crl", usage="sign")
    assert result.outcome is Outcome.ON_HOLD and result.reason is RevocationReason.CERTIFICATE_HOLD


# -- unavailable revocation information: hard-fail vs soft-fail ---------------------------------

def test_unreachable_repository_hard_fail_and_soft_fail(live: Live) -> None:
    live.server.stop()
    for mode in ("ocsp", "crl"):
        hard = live.verify(live.auth, revocation=mode, policy="hard-fail", timeout=5)
        assert hard.outcome is Outcome.REVOCATION_UNAVAILABLE and not hard.ok
        soft = live.verify(live.auth, revocation=mode, policy="soft-fail", timeout=5)
        assert soft.ok and soft.warnings, soft
    # soft-fail forgives only the missing status, not the rest
    late = live.verify(live.auth, revocation="ocsp", policy="soft-fail", timeout=5,
                       at=live.auth.not_valid_after_utc + timedelta(days=1))
    assert late.outcome is Outcome.EXPIRED


# -- validity and the chain -----------------------------------------------------------------------

def test_expired_and_not_yet_valid(live: Live) -> None:
    after = live.verify(live.auth, revocation="none", at=live.auth.not_valid_after_utc
                        + timedelta(seconds=5))
    assert after.outcome is Outcome.EXPIRED and not after.ok
    before = live.verify(live.auth, revocation="none", at=live.auth.not_valid_before_utc
                         - timedelta(days=1))
    assert before.outcome is Outcome.NOT_YET_VALID


def test_chain_broken(live: Live) -> None:
    other = Authority(seed=b"another authority", clock=live.clock)
    result = live.verify(live.auth, revocation="none", authority_roots=other.ca_certificates())
    assert result.outcome is Outcome.CHAIN_BROKEN
    der = bytearray(live.auth.public_bytes(Encoding.DER))
    der[-10] ^= 0x01  # break the signature
    tampered = x509.load_der_x509_certificate(bytes(der))
    assert live.verify(tampered, revocation="none").outcome is Outcome.CHAIN_BROKEN


def test_wrong_usage(live: Live) -> None:
    assert live.verify(live.auth, revocation="none", usage="sign").outcome is Outcome.WRONG_USAGE
    assert live.verify(live.sign, revocation="none", usage="auth").outcome is Outcome.WRONG_USAGE
    assert live.verify(live.sign, revocation="none", usage="sign").ok


def test_revocation_none_does_not_look(live: Live) -> None:
    live.store.registry.revoke(live.auth.serial_number)
    assert live.verify(live.auth, revocation="none").ok


# -- given DER, certificates shaped like the real ones (no URLs) --------------------------------

@pytest.fixture
def offline() -> tuple[Authority, Registry, FixedClock, x509.Certificate]:
    clock = FixedClock(NOW)
    authority = Authority(seed=b"tests", clock=clock)  # default profile: no AIA, no HTTP CRLDP
    registry = Registry(None, clock)
    holder = synthetic_holder(10)
    cert = authority.issue_auth_certificate(holder, _EE_KEY.public_key(),
                                            at=NOW - timedelta(days=5), serial=0x4001)
    registry.register(cert, partition=holder.municipality_code)
    return authority, registry, clock, cert


def _ocsp_der(authority: Authority, registry: Registry, cert: x509.Certificate) -> bytes:
    req = ocsp.OCSPRequestBuilder().add_certificate(
        cert, authority.ca("auth", 3).certificate, hashes.SHA1()).build()
    return OcspResponder(authority, registry).respond(req.public_bytes(Encoding.DER))


def test_given_ocsp_response_for_a_certificate_without_aia(offline) -> None:
    authority, registry, clock, cert = offline
    roots = authority.ca_certificates()
    good = _ocsp_der(authority, registry, cert)
    result = verify_certificate(cert, authority_roots=roots, at=NOW, revocation="ocsp",
                                fetch=RevocationData(ocsp_responses=(good,)))
    assert result.ok, result
    clock.advance(timedelta(minutes=1))
    registry.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    revoked = _ocsp_der(authority, registry, cert)
    result = verify_certificate(cert, authority_roots=roots, at=clock.now(), revocation="ocsp",
                                fetch=RevocationData(ocsp_responses=(revoked,)))
    assert result.outcome is Outcome.REVOKED and result.reason is RevocationReason.KEY_COMPROMISE
    # validation at a chosen time: the earlier response says good for that earlier moment
    earlier = verify_certificate(cert, authority_roots=roots, at=NOW, revocation="ocsp",
                                 fetch=RevocationData(ocsp_responses=(good,)))
    assert earlier.ok
    # a response issued after the validation moment is not evidence for it
    too_new = verify_certificate(cert, authority_roots=roots, at=NOW - timedelta(minutes=5),
                                 revocation="ocsp", fetch=RevocationData(ocsp_responses=(revoked,)))
    assert too_new.outcome is Outcome.REVOCATION_UNAVAILABLE
    # and one whose nextUpdate has passed is stale
    stale = verify_certificate(cert, authority_roots=roots, at=NOW + timedelta(hours=2),
                               revocation="ocsp", fetch=RevocationData(ocsp_responses=(good,)))
    assert stale.outcome is Outcome.REVOCATION_UNAVAILABLE
    assert verify_certificate(cert, authority_roots=roots, at=NOW + timedelta(hours=2),
                              revocation="ocsp", policy="soft-fail",
                              fetch=RevocationData(ocsp_responses=(good,))).warnings


def test_given_crl_for_a_certificate_without_urls(offline) -> None:
    from workbench.pki.crl import crl_for

    authority, registry, clock, cert = offline
    roots = authority.ca_certificates()
    registry.revoke(cert.serial_number, RevocationReason.SUPERSEDED, at=NOW - timedelta(days=2))
    full = crl_for(authority, "auth", 3, registry=registry)
    result = verify_certificate(cert, authority_roots=roots, at=NOW, revocation="crl",
                                fetch=RevocationData(crls=(full,)))
    assert result.outcome is Outcome.REVOKED and result.reason is RevocationReason.SUPERSEDED
    empty = verify_certificate(cert, authority_roots=roots, at=NOW, revocation="crl",
                               fetch=RevocationData())
    assert empty.outcome is Outcome.REVOCATION_UNAVAILABLE


def test_ocsp_without_any_responder_url_is_unavailable(offline) -> None:
    authority, _, _, cert = offline
    result = verify_certificate(cert, authority_roots=authority.ca_certificates(), at=NOW,
                                revocation="ocsp", fetch="http")
    assert result.outcome is Outcome.REVOCATION_UNAVAILABLE


# -- the API ---------------------------------------------------------------------------------------

def test_works_inside_a_running_event_loop(offline) -> None:
    """Jupyter runs a loop in the main thread; the sync API must still work there."""
    authority, _, _, cert = offline

    async def notebook_cell():
        return verify_certificate(cert, authority_roots=authority.ca_certificates(), at=NOW,
                                  revocation="none")

    assert asyncio.run(notebook_cell()).ok
    assert asyncio.run(averify_certificate(cert, authority_roots=authority.ca_certificates(),
                                           at=NOW, revocation="none")).ok


def test_api_misuse_raises_typed_errors(offline) -> None:
    authority, _, _, cert = offline
    roots = authority.ca_certificates()
    bad_calls = [
        dict(authority_roots=[]),
        dict(authority_roots=roots[0]),
        dict(authority_roots=roots, revocation="sometimes"),
        dict(authority_roots=roots, policy="maybe"),
        dict(authority_roots=roots, usage="login"),
        dict(authority_roots=roots, fetch="ftp"),
        dict(authority_roots=roots, at=datetime(2025, 1, 1)),  # naive
    ]
    for kwargs in bad_calls:
        with pytest.raises(VerifyArgumentError):
            verify_certificate(cert, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(VerifyArgumentError):
        verify_certificate(b"not a certificate", authority_roots=roots)
    with pytest.raises(VerifyArgumentError):
        RevocationData(crls=b"one blob")  # type: ignore[arg-type]


def test_accepts_der_and_pem(offline) -> None:
    authority, _, _, cert = offline
    roots = [c.public_bytes(Encoding.PEM) for c in authority.ca_certificates()]
    result = verify_certificate(cert.public_bytes(Encoding.DER), authority_roots=roots, at=NOW,
                                revocation="none", usage="auth")
    assert result.ok and str(result).startswith("ok:")

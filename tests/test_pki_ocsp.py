"""The OCSP responder (RFC 6960, RFC 8954 nonces) against the real revocation registry.

No network here: requests are DER in, DER out (tests/test_pki_server.py carries them over HTTP
and through OpenSSL). Time is a FixedClock; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.pki import Authority, FixedClock, synthetic_holder
from workbench.pki.ocsp import (
    MAX_NONCE_LENGTH,
    MalformedOcspRequest,
    OcspResponder,
    parse_request,
    public_key_bits,
)
from workbench.pki.registry import Registry
from workbench.pki.status import RevocationReason

T0 = datetime(2025, 4, 1, 3, 0, tzinfo=UTC)
ISSUED = T0 - timedelta(days=30)

_EE_KEY = rsa.generate_private_key(65537, 2048)


@dataclass
class Pki:
    clock: FixedClock
    authority: Authority
    registry: Registry
    good: x509.Certificate
    revoked: x509.Certificate
    unregistered: x509.Certificate
    sign: x509.Certificate  # a signing certificate of the other hierarchy

    def ca_cert(self, cert: x509.Certificate) -> x509.Certificate:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        for ca in self.authority.ca_certificates():
            ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            if ski.digest == aki.key_identifier:
                return ca
        raise AssertionError("no issuer")


@pytest.fixture
def pki() -> Pki:
    clock = FixedClock(T0)
    authority = Authority(seed=b"tests", clock=clock)
    registry = Registry(None, clock)
    holder = synthetic_holder(3)
    issue = authority.issue_auth_certificate
    good = issue(holder, _EE_KEY.public_key(), at=ISSUED, serial=0x1001)
    revoked = issue(holder, _EE_KEY.public_key(), at=ISSUED, serial=0x1002)
    unregistered = issue(holder, _EE_KEY.public_key(), at=ISSUED, serial=0x1003)
    sign = authority.issue_signing_certificate(holder, _EE_KEY.public_key(), at=ISSUED,
                                               serial=0x2001)
    for cert in (good, revoked, sign):
        registry.register(cert)
    registry.revoke(0x1002, RevocationReason.KEY_COMPROMISE, at=T0 - timedelta(days=1))
    return Pki(clock, authority, registry, good, revoked, unregistered, sign)


def request(pki: Pki, cert: x509.Certificate, *, algorithm: hashes.HashAlgorithm | None = None,
            nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.ca_cert(cert),
                                                         algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def multi_request(pki: Pki, certs: list[x509.Certificate], nonce: bytes | None = None) -> bytes:
    """Several CertIDs in one OCSPRequest (cryptography's builder only makes one)."""
    items = []
    for cert in certs:
        one = ocsp.load_der_ocsp_request(request(pki, cert))
        items.append({"req_cert": {
            "hash_algorithm": {"algorithm": "sha1"},
            "issuer_name_hash": one.issuer_name_hash,
            "issuer_key_hash": one.issuer_key_hash,
            "serial_number": one.serial_number,
        }})
    tbs: dict[str, object] = {"request_list": items}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False,
                                      "extn_value": nonce}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    key = signer.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
               response.signature_hash_algorithm)


def answer(responder: OcspResponder, der: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(responder.respond(der))


# -- statuses (RFC 6960 2.2) ----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["direct", "delegated"])
def test_good_revoked_unknown_are_signed_by_the_authorized_responder(pki: Pki, mode: str) -> None:
    responder = OcspResponder(pki.authority, pki.registry, mode=mode)
    ca_cert = pki.ca_cert(pki.good)
    for cert, expected in ((pki.good, ocsp.OCSPCertStatus.GOOD),
                           (pki.revoked, ocsp.OCSPCertStatus.REVOKED),
                           (pki.unregistered, ocsp.OCSPCertStatus.UNKNOWN)):
        resp = answer(responder, request(pki, cert))
        assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert resp.certificate_status is expected
        assert resp.serial_number == cert.serial_number
        assert resp.this_update_utc == T0
        assert resp.next_update_utc == T0 + timedelta(hours=1)
        assert resp.produced_at_utc == T0
        if mode == "direct":  # 4.2.2.2: the CA itself, by key hash, no certificates
            assert resp.certificates == []
            assert resp.responder_key_hash == ca_cert.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier).value.digest
            verify_signature(resp, ca_cert)
        else:  # a responder the CA certified for OCSP signing, attached to the response
            (delegate,) = resp.certificates
            delegate.verify_directly_issued_by(ca_cert)
            eku = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
            delegate.extensions.get_extension_for_class(x509.OCSPNoCheck)
            assert delegate.not_valid_before_utc <= T0 < delegate.not_valid_after_utc
            verify_signature(resp, delegate)
    revoked = answer(responder, request(pki, pki.revoked))
    assert revoked.revocation_time_utc == T0 - timedelta(days=1)
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise


def test_the_six_ca_generations_each_sign_for_their_own_certificates(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry, mode="delegated")
    resp = answer(responder, request(pki, pki.sign))
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    (delegate,) = resp.certificates
    delegate.verify_directly_issued_by(pki.ca_cert(pki.sign))
    assert delegate != responder.responder_certificate("auth", 3)


def test_hold_is_published_as_revoked_certificate_hold_and_release_makes_it_good(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    pki.registry.hold(pki.good.serial_number)  # 一時利用停止, smartphone-service.md 9.1
    held = answer(responder, request(pki, pki.good))
    assert held.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason is x509.ReasonFlags.certificate_hold
    assert held.revocation_time_utc == T0
    pki.clock.advance(timedelta(minutes=5))
    pki.registry.release(pki.good.serial_number)  # 解除, 9.2
    assert answer(responder, request(pki, pki.good)).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_status_follows_the_clock_across_a_revocation(pki: Pki) -> None:
    """Revoked at T: good when asked at T − 1 s, revoked at T and after (registry history)."""
    responder = OcspResponder(pki.authority, pki.registry)
    revoked_at = T0 + timedelta(hours=2)
    pki.clock.set(revoked_at)
    pki.registry.revoke(pki.good.serial_number, RevocationReason.SUPERSEDED)
    pki.clock.set(revoked_at - timedelta(seconds=1))
    before = answer(responder, request(pki, pki.good))
    assert before.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert before.this_update_utc == revoked_at - timedelta(seconds=1)
    pki.clock.set(revoked_at)
    after = answer(responder, request(pki, pki.good))
    assert after.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason is x509.ReasonFlags.superseded
    assert after.revocation_time_utc == revoked_at


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(),
                                       hashes.SHA512()])
def test_certid_hash_algorithms_are_echoed(pki: Pki, algorithm: hashes.HashAlgorithm) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    req = ocsp.load_der_ocsp_request(request(pki, pki.revoked, algorithm=algorithm))
    resp = answer(responder, req.public_bytes(Encoding.DER))
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.hash_algorithm.name == algorithm.name
    assert resp.issuer_key_hash == req.issuer_key_hash
    assert resp.issuer_name_hash == req.issuer_name_hash


# -- nonce (RFC 8954) -----------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 16, MAX_NONCE_LENGTH])
def test_nonce_is_echoed(pki: Pki, size: int) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    nonce = bytes(range(size))
    resp = answer(responder, request(pki, pki.good, nonce=nonce))
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


@pytest.mark.parametrize("size", [0, MAX_NONCE_LENGTH + 1, 128])
def test_nonce_outside_1_to_32_octets_is_a_malformed_request(pki: Pki, size: int) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    if size == 0:  # cryptography refuses to build it; encode it by hand
        der = multi_request(pki, [pki.good], nonce=b"")
    else:
        der = request(pki, pki.good, nonce=b"n" * size)
    with pytest.raises(MalformedOcspRequest, match="RFC 8954"):
        parse_request(der)
    assert answer(responder, der).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


# -- several CertIDs in one request -----------------------------------------------------------

def test_several_certids_of_one_ca_are_answered_together(pki: Pki) -> None:
    for mode in ("direct", "delegated"):
        responder = OcspResponder(pki.authority, pki.registry, mode=mode)
        der = multi_request(pki, [pki.good, pki.revoked, pki.unregistered], nonce=b"multi")
        resp = answer(responder, der)
        assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        statuses = {s.serial_number: s.certificate_status for s in resp.responses}
        assert statuses == {0x1001: ocsp.OCSPCertStatus.GOOD,
                            0x1002: ocsp.OCSPCertStatus.REVOKED,
                            0x1003: ocsp.OCSPCertStatus.UNKNOWN}
        revoked = next(s for s in resp.responses if s.serial_number == 0x1002)
        assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
        assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"multi"
        signer = resp.certificates[0] if mode == "delegated" else pki.ca_cert(pki.good)
        verify_signature(resp, signer)
        assert resp.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
            signer.public_key()).digest


def test_certids_of_two_cas_in_one_request_are_refused(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    resp = answer(responder, multi_request(pki, [pki.good, pki.sign]))
    assert resp.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


# -- errors (RFC 6960 2.3) --------------------------------------------------------------------

def test_foreign_issuer_is_unauthorized(pki: Pki) -> None:
    other = Authority(seed=b"another authority", clock=pki.clock)
    foreign = other.issue_auth_certificate(synthetic_holder(4), _EE_KEY.public_key(), at=ISSUED,
                                           serial=0x1001)
    der = ocsp.OCSPRequestBuilder().add_certificate(
        foreign, other.ca("auth", 3).certificate, hashes.SHA1()).build().public_bytes(Encoding.DER)
    responder = OcspResponder(pki.authority, pki.registry)
    assert answer(responder, der).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_right_key_hash_with_a_wrong_name_hash_is_not_this_issuer(pki: Pki) -> None:
    req = ocsp.load_der_ocsp_request(request(pki, pki.good))
    forged = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        b"\x00" * 20, req.issuer_key_hash, req.serial_number, hashes.SHA1()).build()
    responder = OcspResponder(pki.authority, pki.registry)
    resp = answer(responder, forged.public_bytes(Encoding.DER))
    assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("der", [b"", b"\x00", b"garbage", b"\x30\x03\x02\x01\x01",
                                 b"\x30\x80" + b"\x00" * 10, b"\xff" * 1000])
def test_garbage_is_a_malformed_request(pki: Pki, der: bytes) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    assert answer(responder, der).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_every_truncation_of_a_request_is_malformed(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    full = request(pki, pki.good, nonce=b"0123456789abcdef")
    for n in range(len(full)):
        resp = answer(responder, full[:n])
        assert resp.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST, n
    assert answer(responder, full).certificate_status is ocsp.OCSPCertStatus.GOOD


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_any_bytes_get_an_ocsp_response_never_an_exception(pki: Pki, data: bytes) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    resp = answer(responder, data)
    assert resp.response_status in (ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                                     ocsp.OCSPResponseStatus.UNAUTHORIZED,
                                     ocsp.OCSPResponseStatus.SUCCESSFUL)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_single_byte_corruptions_never_break_the_responder(pki: Pki, position: int,
                                                           value: int) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    der = bytearray(request(pki, pki.revoked, nonce=b"abcdefgh"))
    der[position % len(der)] = value
    resp = answer(responder, bytes(der))
    if resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL:
        assert resp.certificate_status in tuple(ocsp.OCSPCertStatus)


def test_a_failing_status_source_is_an_internal_error(pki: Pki) -> None:
    class Broken:
        def status(self, issuer_key_id: bytes, serial: int, at: datetime | None = None):
            raise RuntimeError("database on fire")

    responder = OcspResponder(pki.authority, Broken())  # type: ignore[arg-type]
    resp = answer(responder, request(pki, pki.good))
    assert resp.response_status is ocsp.OCSPResponseStatus.INTERNAL_ERROR


# -- the pre-signed response cache --------------------------------------------------------------

def test_presigned_response_is_reused_within_its_window(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry, validity=timedelta(hours=1),
                              cache_for=timedelta(minutes=15))
    first = responder.respond(request(pki, pki.good))
    pki.clock.advance(timedelta(minutes=10))
    again = responder.respond(request(pki, pki.good))
    assert again == first  # same bytes: same producedAt, no new signature
    assert ocsp.load_der_ocsp_response(again).produced_at_utc == T0
    assert responder.cache_stats.hits == 1
    pki.clock.advance(timedelta(minutes=5))  # 15 minutes old: signed afresh
    fresh = ocsp.load_der_ocsp_response(responder.respond(request(pki, pki.good)))
    assert fresh.produced_at_utc == T0 + timedelta(minutes=15)


def test_revocation_is_visible_in_the_very_next_response(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    der = request(pki, pki.good)
    assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.GOOD
    pki.clock.advance(timedelta(seconds=30))
    assert answer(responder, der).produced_at_utc == T0  # served from the cache
    pki.registry.revoke(pki.good.serial_number, RevocationReason.CESSATION_OF_OPERATION)
    resp = answer(responder, der)  # same instant, same request: the cache must not answer
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.cessation_of_operation
    assert resp.produced_at_utc == T0 + timedelta(seconds=30)


def test_a_change_made_through_another_registry_handle_is_seen(pki: Pki, tmp_path) -> None:
    """Another process revoking in the same SQLite file (pki revoke while pki serve runs)."""
    path = tmp_path / "registry.sqlite"
    serving, other = Registry(path, pki.clock), Registry(path, pki.clock)
    try:
        serving.register(pki.good)
        responder = OcspResponder(pki.authority, serving)
        der = request(pki, pki.good)
        assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.GOOD
        other.revoke(pki.good.serial_number, RevocationReason.KEY_COMPROMISE)
        assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.REVOKED
    finally:
        serving.close()
        other.close()


def test_nonce_requests_are_always_signed_afresh(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    a = answer(responder, request(pki, pki.good, nonce=b"first"))
    b = answer(responder, request(pki, pki.good, nonce=b"second"))
    assert a.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"first"
    assert b.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"second"
    assert responder.cache_stats.signed == 2 and responder.cache_stats.hits == 0


def test_cache_is_bounded(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry, max_cache_entries=2)
    for cert in (pki.good, pki.revoked, pki.unregistered, pki.good):
        responder.respond(request(pki, cert))
    assert len(responder._cache.entries) <= 2


def test_clock_moved_back_before_a_cached_response_re_signs(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry)
    der = request(pki, pki.good)
    responder.respond(der)
    pki.clock.set(T0 - timedelta(minutes=1))
    assert answer(responder, der).produced_at_utc == T0 - timedelta(minutes=1)


def test_delegated_responder_certificate_is_renewed_before_it_ends(pki: Pki) -> None:
    responder = OcspResponder(pki.authority, pki.registry, mode="delegated")
    first = responder.responder_certificate("auth", 3)
    pki.clock.advance(timedelta(days=6, hours=1))
    second = responder.responder_certificate("auth", 3)
    assert second.serial_number != first.serial_number
    assert second.not_valid_before_utc <= pki.clock.now() < second.not_valid_after_utc
    resp = answer(responder, request(pki, pki.good))
    assert resp.certificates == [second]


def test_issuer_key_hash_is_the_ca_key_identifier(pki: Pki) -> None:
    ca = pki.authority.ca("auth", 3)
    import hashlib

    assert hashlib.sha1(public_key_bits(ca.certificate)).digest() == ca.key_identifier


def test_api_misuse_raises_typed_errors(pki: Pki) -> None:
    from workbench.errors import PkiError

    with pytest.raises(PkiError, match="mode"):
        OcspResponder(pki.authority, pki.registry, mode="sideways")
    with pytest.raises(PkiError, match="validity"):
        OcspResponder(pki.authority, pki.registry, validity=timedelta(0))
    with pytest.raises(PkiError, match="status"):
        OcspResponder(pki.authority, object())  # type: ignore[arg-type]
    with pytest.raises(PkiError, match="bytes"):
        parse_request("not bytes")  # type: ignore[arg-type]


# -- the hand-written DER against an asn1crypto-built reference ----------------------------------

def reference_response_data(key_hash: bytes, queries, statuses, nonce, produced_at, next_update):
    """ResponseData built with asn1crypto from the RFC 6960 4.2.1 module, as a yardstick."""
    from asn1crypto import core

    from workbench.pki.ocsp import _published

    responses = []
    for query, status in zip(queries, statuses, strict=True):
        cert_status, revoked_at, reason = _published(status)
        if cert_status is ocsp.OCSPCertStatus.GOOD:
            choice = asn1_ocsp.CertStatus(name="good", value=core.Null())
        elif cert_status is ocsp.OCSPCertStatus.UNKNOWN:
            choice = asn1_ocsp.CertStatus(name="unknown", value=core.Null())
        else:
            choice = asn1_ocsp.CertStatus(name="revoked", value={
                "revocation_time": revoked_at, "revocation_reason": reason.code})
        responses.append({
            "cert_id": {"hash_algorithm": {"algorithm": query.algorithm},
                        "issuer_name_hash": query.issuer_name_hash,
                        "issuer_key_hash": query.issuer_key_hash,
                        "serial_number": query.serial},
            "cert_status": choice, "this_update": produced_at, "next_update": next_update,
        })
    tbs = {"responder_id": asn1_ocsp.ResponderId(name="by_key", value=key_hash),
           "produced_at": produced_at, "responses": responses}
    if nonce is not None:
        tbs["response_extensions"] = [{"extn_id": "nonce", "critical": False,
                                       "extn_value": nonce}]
    return asn1_ocsp.ResponseData(tbs).dump()


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(st.tuples(
        st.sampled_from(["sha1", "sha224", "sha256", "sha384", "sha512"]),
        st.integers(min_value=0, max_value=2**159 - 1),
        st.sampled_from(["good", "unknown", "held", *[r.value for r in RevocationReason
                                                      if r is not RevocationReason.CERTIFICATE_HOLD]]),
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)),
    ), min_size=1, max_size=4),
    nonce=st.none() | st.binary(min_size=1, max_size=MAX_NONCE_LENGTH),
    key_hash=st.binary(min_size=20, max_size=20),
    produced=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)),
)
def test_response_data_der_matches_the_asn1crypto_reference(items, nonce, key_hash,
                                                            produced) -> None:
    from workbench.pki.ocsp import CertQuery, response_data
    from workbench.pki.status import CertState, CertStatus

    produced = produced.replace(microsecond=0, tzinfo=UTC)
    queries, statuses = [], []
    for algorithm, serial, state, since in items:
        since = since.replace(microsecond=0, tzinfo=UTC)
        queries.append(CertQuery(algorithm, b"\x01" * 20, b"\x02" * 32, serial))
        if state in ("good", "unknown"):
            statuses.append(CertStatus(serial, b"k", CertState(state), produced))
        elif state == "held":
            statuses.append(CertStatus(serial, b"k", CertState.HELD, produced, since,
                                       RevocationReason.CERTIFICATE_HOLD))
        else:
            statuses.append(CertStatus(serial, b"k", CertState.REVOKED, produced, since,
                                       RevocationReason(state)))
    later = produced + timedelta(hours=1)
    ours = response_data(key_hash, queries, statuses, nonce, produced, later)
    assert ours == reference_response_data(key_hash, queries, statuses, nonce, produced, later)


@pytest.mark.parametrize("mode", ["direct", "delegated"])
def test_whole_response_is_canonical_der(pki: Pki, mode: str) -> None:
    """asn1crypto, forced to re-encode every field from its parsed value, gives the same bytes."""
    responder = OcspResponder(pki.authority, pki.registry, mode=mode)
    for der in (request(pki, pki.revoked, nonce=b"x" * 32),
                multi_request(pki, [pki.good, pki.revoked, pki.unregistered])):
        response = responder.respond(der)
        parsed = asn1_ocsp.OCSPResponse.load(response)
        basic_der = parsed["response_bytes"]["response"].contents
        basic = asn1_ocsp.BasicOCSPResponse.load(basic_der)
        assert basic["tbs_response_data"].native["responses"]  # parses all the way down
        assert basic.dump(force=True) == basic_der
        assert asn1_ocsp.OCSPResponse.load(response).dump(force=True) == response


# -- the registry watch (SQLite data_version) -----------------------------------------------

class CountingRegistry:
    """A file registry that counts status lookups (to see the fast path skip them)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.path = registry.path
        self.lookups = 0

    def status(self, issuer_key_id: bytes, serial: int, at: datetime | None = None):
        self.lookups += 1
        return self.registry.status(issuer_key_id, serial, at)

    def watch(self):
        return self.registry.watch()

    def next_change(self, issuer_key_id: bytes, serial: int, after: datetime):
        return self.registry.next_change(issuer_key_id, serial, after)


@pytest.fixture
def file_registry(pki: Pki, tmp_path) -> Iterator[Registry]:
    registry = Registry(tmp_path / "registry.sqlite", pki.clock)
    registry.register_many([pki.good, pki.revoked])
    registry.revoke(pki.revoked.serial_number, RevocationReason.KEY_COMPROMISE,
                    at=T0 - timedelta(days=1))
    yield registry
    registry.close()


def test_unchanged_registry_is_not_asked_again_until_it_changes(pki: Pki,
                                                                 file_registry: Registry) -> None:
    counting = CountingRegistry(file_registry)
    responder = OcspResponder(pki.authority, counting)  # type: ignore[arg-type]
    der = request(pki, pki.good)
    first = responder.respond(der)
    assert counting.lookups == 1
    for _ in range(5):
        pki.clock.advance(timedelta(seconds=10))
        assert responder.respond(der) == first
    assert counting.lookups == 1  # served on the data_version check alone
    file_registry.hold(pki.good.serial_number)
    held = answer(responder, der)  # the very next response
    assert held.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason is x509.ReasonFlags.certificate_hold
    assert counting.lookups == 2


def test_another_certificate_changing_keeps_this_response(pki: Pki,
                                                          file_registry: Registry) -> None:
    counting = CountingRegistry(file_registry)
    responder = OcspResponder(pki.authority, counting)  # type: ignore[arg-type]
    der = request(pki, pki.good)
    first = responder.respond(der)
    file_registry.register(pki.sign)  # a write, about another certificate
    assert responder.respond(der) == first  # asked again, same status: same signed bytes
    assert responder.cache_stats.signed == 1
    assert counting.lookups == 2


def test_revocation_recorded_for_a_later_moment_shows_when_the_clock_gets_there(
        pki: Pki, file_registry: Registry) -> None:
    responder = OcspResponder(pki.authority, file_registry)
    later = T0 + timedelta(minutes=5)
    file_registry.revoke(pki.good.serial_number, RevocationReason.SUPERSEDED, at=later)
    der = request(pki, pki.good)
    assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.GOOD
    pki.clock.set(later - timedelta(seconds=1))
    assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.GOOD
    pki.clock.set(later)  # no write in between: only the clock moved
    resp = answer(responder, der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == later


def test_clock_moved_back_with_a_file_registry_answers_for_that_moment(
        pki: Pki, file_registry: Registry) -> None:
    responder = OcspResponder(pki.authority, file_registry)
    der = request(pki, pki.revoked)
    assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.REVOKED
    pki.clock.set(T0 - timedelta(days=2))  # before the revocation
    resp = answer(responder, der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert resp.produced_at_utc == T0 - timedelta(days=2)
    responder.close()  # without the watch it still answers, asking every time
    assert answer(responder, der).certificate_status is ocsp.OCSPCertStatus.GOOD

"""The HTTP repository (CRLs, ARLs, CA certificates, OCSP) on a real loopback socket.

Interop is checked with a client nobody here wrote (``openssl ocsp``); robustness with garbage,
truncated and oversized requests and with concurrent clients. Each test runs its own server on
a free port of 127.0.0.1 with its own authority database in tmp_path, and stops it. The
authority's clock is a FixedClock set to the wall clock at the start (OpenSSL checks
thisUpdate/nextUpdate against real time) and moved explicitly; nothing sleeps.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from workbench.errors import PkiError
from workbench.pki import Authority, FixedClock, synthetic_holder
from workbench.pki.profiles import AuthorityProfile
from workbench.pki.server import MAX_REQUEST_BYTES, RepositoryServer
from workbench.pki.status import RevocationReason
from workbench.pki.store import AuthorityStore

_EE_KEY = rsa.generate_private_key(65537, 2048)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing")


@dataclass
class Repo:
    store: AuthorityStore
    clock: FixedClock
    server: RepositoryServer
    url: str
    dir: Path
    good: x509.Certificate
    revoked: x509.Certificate
    unknown: x509.Certificate
    sign: x509.Certificate
    partition: str

    @property
    def ca(self) -> x509.Certificate:
        return self.store.authority.ca("auth", 3).certificate

    def pem(self, name: str, cert: x509.Certificate) -> str:
        path = self.dir / f"{name}.pem"
        path.write_bytes(cert.public_bytes(Encoding.PEM))
        return str(path)


def make_repo(tmp_path: Path, signer: str = "direct") -> Iterator[Repo]:
    port = free_port()
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now)
    profile = AuthorityProfile(repository_url=f"http://127.0.0.1:{port}", ocsp_aia=True)
    store = AuthorityStore.open(tmp_path / "authority.sqlite", create=True, profile=profile,
                                clock=clock, seed=b"tests")
    holder = synthetic_holder(5)
    issued = now - timedelta(days=10)
    auth = store.authority.issue_auth_certificate
    good = auth(holder, _EE_KEY.public_key(), at=issued, serial=0x1001)
    revoked = auth(holder, _EE_KEY.public_key(), at=issued, serial=0x1002)
    unknown = auth(holder, _EE_KEY.public_key(), at=issued, serial=0x1003)
    sign = store.authority.issue_signing_certificate(holder, _EE_KEY.public_key(), at=issued,
                                                     serial=0x2001)
    store.registry.register_many([good, revoked, sign], partition=holder.municipality_code)
    store.registry.revoke(0x1002, RevocationReason.KEY_COMPROMISE, at=now - timedelta(hours=1))
    server = RepositoryServer(store, port=port, ocsp_signer=signer)
    url = server.start()
    try:
        yield Repo(store, clock, server, url, tmp_path, good, revoked, unknown, sign,
                   holder.municipality_code)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    yield from make_repo(tmp_path)


@pytest.fixture
def delegated_repo(tmp_path: Path) -> Iterator[Repo]:
    yield from make_repo(tmp_path, "delegated")


def ocsp_request(repo: Repo, cert: x509.Certificate, nonce: bytes | None = None,
                 issuer: x509.Certificate | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer or repo.ca, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def fetch(url: str, body: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/ocsp-request")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def post_ocsp(repo: Repo, der: bytes) -> ocsp.OCSPResponse:
    status, ctype, body = fetch(repo.url + "/ocsp", der)
    assert (status, ctype) == (200, "application/ocsp-response")
    return ocsp.load_der_ocsp_response(body)


def get_ocsp(repo: Repo, der: bytes) -> ocsp.OCSPResponse:
    encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    status, ctype, body = fetch(f"{repo.url}/ocsp/{encoded}")
    assert (status, ctype) == (200, "application/ocsp-response")
    return ocsp.load_der_ocsp_response(body)


# -- OpenSSL as the client (RFC 6960 interop) --------------------------------------------------

def openssl_ocsp(repo: Repo, certs: list[x509.Certificate], *extra: str,
                 issuer: x509.Certificate | None = None) -> str:
    issuer_pem = repo.pem("issuer", issuer or repo.ca)
    args = ["openssl", "ocsp", "-issuer", issuer_pem, "-url", repo.url + "/ocsp",
            "-CAfile", issuer_pem, "-nonce", "-resp_text", "-validity_period", "300"]
    for i, cert in enumerate(certs):
        args += ["-cert", repo.pem(f"ee{i}", cert)]
    done = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def status_lines(out: str) -> list[str]:
    return re.findall(r"ee\d+\.pem: (\w+)", out)


@needs_openssl
def test_openssl_sees_good_revoked_unknown_with_nonce(repo: Repo) -> None:
    for cert, expected in ((repo.good, "good"), (repo.revoked, "revoked"),
                           (repo.unknown, "unknown")):
        out = openssl_ocsp(repo, [cert])
        assert status_lines(out) == [expected], out
        assert "Response verify OK" in out
        assert "OCSP Nonce" in out and "WARNING" not in out, out
    out = openssl_ocsp(repo, [repo.revoked])
    assert "Reason: keyCompromise" in out


@needs_openssl
def test_openssl_several_certificates_in_one_request(repo: Repo) -> None:
    out = openssl_ocsp(repo, [repo.good, repo.revoked, repo.unknown])
    assert status_lines(out) == ["good", "revoked", "unknown"], out
    assert "Response verify OK" in out and "WARNING" not in out


@needs_openssl
def test_openssl_hold_and_release(repo: Repo) -> None:
    repo.store.registry.hold(repo.good.serial_number)
    out = openssl_ocsp(repo, [repo.good])
    assert status_lines(out) == ["revoked"] and "Reason: certificateHold" in out, out
    repo.clock.advance(timedelta(seconds=5))
    repo.store.registry.release(repo.good.serial_number)
    assert status_lines(openssl_ocsp(repo, [repo.good])) == ["good"]


@needs_openssl
def test_openssl_with_the_delegated_responder(delegated_repo: Repo) -> None:
    repo = delegated_repo
    responder = repo.server.responder.responder_certificate("auth", 3)
    va = repo.pem("responder", responder)
    out = openssl_ocsp(repo, [repo.revoked], "-VAfile", va)
    assert status_lines(out) == ["revoked"] and "Reason: keyCompromise" in out
    assert "Response verify OK" in out and "WARNING" not in out, out
    # without -VAfile OpenSSL checks the responder certificate's chain and OCSPSigning EKU
    out = openssl_ocsp(repo, [repo.good])
    assert status_lines(out) == ["good"] and "Response verify OK" in out, out


@needs_openssl
def test_openssl_request_sent_with_get(repo: Repo) -> None:
    req = repo.dir / "req.der"
    subprocess.run(["openssl", "ocsp", "-issuer", repo.pem("issuer", repo.ca), "-cert",
                    repo.pem("ee", repo.revoked), "-nonce", "-reqout", str(req)],
                   check=True, capture_output=True, timeout=60)
    resp = get_ocsp(repo, req.read_bytes())
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    sent = ocsp.load_der_ocsp_request(req.read_bytes())
    assert (resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            == sent.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce)


def test_get_accepts_unencoded_slashes_and_missing_padding(repo: Repo) -> None:
    for nonce in (b"a", b"ab", b"abc", b"\xff" * 20):
        der = ocsp_request(repo, repo.good, nonce=nonce)
        raw = base64.b64encode(der).decode().rstrip("=")
        status, _, body = fetch(f"{repo.url}/ocsp/{raw}")
        assert status == 200
        resp = ocsp.load_der_ocsp_response(body)
        assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD


# -- the clock and the cache, over HTTP -------------------------------------------------------

def test_revocation_at_t_is_good_at_t_minus_1_and_revoked_right_after(repo: Repo) -> None:
    t = repo.clock.now() + timedelta(minutes=1)
    repo.clock.set(t)
    repo.store.registry.revoke(repo.good.serial_number, RevocationReason.AFFILIATION_CHANGED)
    repo.clock.set(t - timedelta(seconds=1))
    assert post_ocsp(repo, ocsp_request(repo, repo.good)).certificate_status is \
        ocsp.OCSPCertStatus.GOOD
    repo.clock.set(t)
    resp = post_ocsp(repo, ocsp_request(repo, repo.good))
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.affiliation_changed
    assert resp.revocation_time_utc == t


def test_cached_response_is_reused_but_a_revocation_shows_at_once(repo: Repo) -> None:
    der = ocsp_request(repo, repo.good)
    first = fetch(repo.url + "/ocsp", der)[2]
    repo.clock.advance(timedelta(minutes=3))
    assert fetch(repo.url + "/ocsp", der)[2] == first  # same producedAt: pre-signed
    assert get_ocsp(repo, der).produced_at_utc == ocsp.load_der_ocsp_response(first).produced_at_utc
    repo.store.registry.revoke(repo.good.serial_number, RevocationReason.SUPERSEDED)
    resp = post_ocsp(repo, der)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.produced_at_utc == repo.clock.now()


# -- robustness --------------------------------------------------------------------------------

def test_garbage_truncated_and_oversized_requests_then_still_serving(repo: Repo) -> None:
    good = ocsp_request(repo, repo.good, nonce=b"0123456789")
    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    for body in (b"", b"garbage", b"\x30\x82\xff\xff", good[:-1], good[: len(good) // 2],
                 os.urandom(2000)):
        assert post_ocsp(repo, body).response_status is malformed
        encoded = urllib.parse.quote(base64.b64encode(body).decode(), safe="") or "AA"
        assert fetch(f"{repo.url}/ocsp/{encoded}")[0] == 200
    for junk in ("!!!not-base64!!!", "%00%01", "A"):
        status, ctype, body = fetch(f"{repo.url}/ocsp/{junk}")
        assert (status, ctype) == (200, "application/ocsp-response")
        assert ocsp.load_der_ocsp_response(body).response_status is malformed
    big = b"\x30" * (MAX_REQUEST_BYTES + 1)
    assert fetch(repo.url + "/ocsp", big)[0] == 413
    for size in (MAX_REQUEST_BYTES * 2, MAX_REQUEST_BYTES * 8):  # the app, or the HTTP parser
        assert 400 <= fetch(f"{repo.url}/ocsp/{'A' * size}")[0] < 500
    # a lie in Content-Length is refused before the body is read
    conn = http.client.HTTPConnection("127.0.0.1", repo.server.port, timeout=30)
    conn.putrequest("POST", "/ocsp")
    conn.putheader("Content-Length", str(10 * 1024 * 1024))
    conn.endheaders()
    conn.send(b"\x30\x03")
    assert conn.getresponse().status == 413
    conn.close()
    # not HTTP at all
    with socket.create_connection(("127.0.0.1", repo.server.port), timeout=30) as s:
        s.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", repo.server.port), timeout=30) as s:
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\x30")
        s.shutdown(socket.SHUT_WR)  # truncated body, then the client goes away
        s.recv(100)
    resp = post_ocsp(repo, good)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_foreign_issuer_is_unauthorized(repo: Repo) -> None:
    other = Authority(seed=b"another authority", clock=repo.clock)
    foreign = other.issue_auth_certificate(synthetic_holder(4), _EE_KEY.public_key(),
                                           at=repo.clock.now() - timedelta(days=1), serial=7)
    der = ocsp_request(repo, foreign, issuer=other.ca("auth", 3).certificate)
    assert post_ocsp(repo, der).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_twenty_concurrent_clients_all_get_correct_answers(repo: Repo) -> None:
    expected = {repo.good.serial_number: ocsp.OCSPCertStatus.GOOD,
                repo.revoked.serial_number: ocsp.OCSPCertStatus.REVOKED,
                repo.unknown.serial_number: ocsp.OCSPCertStatus.UNKNOWN}
    certs = [repo.good, repo.revoked, repo.unknown]

    def client(n: int) -> int:
        done = 0
        for i in range(15):
            cert = certs[(n + i) % 3]
            nonce = os.urandom(16) if i % 2 else None
            der = ocsp_request(repo, cert, nonce=nonce)
            resp = post_ocsp(repo, der) if i % 4 else get_ocsp(repo, der)
            assert resp.certificate_status is expected[cert.serial_number]
            if nonce is not None:
                assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert sum(pool.map(client, range(20))) == 300


# -- CRLs, ARLs and CA certificates -----------------------------------------------------------

def test_ca_certificates_of_every_generation(repo: Repo) -> None:
    for h in ("sign", "auth"):
        for n in (1, 2, 3):
            status, ctype, body = fetch(f"{repo.url}/ca/{h}/g{n}.cer")
            assert (status, ctype) == (200, "application/pkix-cert")
            assert x509.load_der_x509_certificate(body) == repo.store.authority.ca(h, n).certificate
    assert fetch(f"{repo.url}/ca/auth/g9.cer")[0] == 404


def test_full_partitioned_crl_and_arl(repo: Repo) -> None:
    repo.clock.advance(timedelta(days=1))  # the next publication lists the revocation
    ca = repo.ca
    for path in ("/crl/auth/g3.crl", f"/crl/auth/g3/{repo.partition}.crl", "/arl/auth/g3.crl"):
        status, ctype, body = fetch(repo.url + path)
        assert (status, ctype) == (200, "application/pkix-crl"), (path, body)
        crl = x509.load_der_x509_crl(body)
        assert crl.is_signature_valid(ca.public_key())
        revoked = crl.get_revoked_certificate_by_serial_number(repo.revoked.serial_number)
        if path.startswith("/arl"):
            assert revoked is None
        else:
            assert revoked is not None
            assert revoked.extensions.get_extension_for_class(
                x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    assert fetch(repo.url + "/crl/auth/g3.crl")[2] == fetch(repo.url + "/crl/auth/g3.crl")[2]


def test_not_found_and_wrong_methods(repo: Repo) -> None:
    assert fetch(repo.url + "/crl/auth/g3/99999.crl")[0] == 404  # no such municipality
    assert fetch(repo.url + "/crl/auth/g7.crl")[0] == 404
    assert fetch(repo.url + "/crl/other/g3.crl")[0] == 404
    assert fetch(repo.url + "/nothing")[0] == 404
    assert fetch(repo.url + "/ocsp", method="GET")[0] == 405
    assert fetch(repo.url + "/crl/auth/g3.crl", b"x", method="POST")[0] == 405
    status, ctype, body = fetch(repo.url + "/")
    assert status == 200 and b"/crl/auth/g3.crl" in body


# -- the server object and the command line --------------------------------------------------

def test_non_loopback_host_is_refused_unless_allowed(repo: Repo) -> None:
    with pytest.raises(PkiError, match="loopback"):
        RepositoryServer(repo.store, host="0.0.0.0")
    RepositoryServer(repo.store, host="0.0.0.0", allow_remote=True)  # constructed, not started


def test_start_stop_release_the_port(repo: Repo) -> None:
    server = RepositoryServer(repo.store)
    url = server.start()
    assert fetch(url + "/ca/auth/g3.cer")[0] == 200
    with pytest.raises(PkiError, match="already running"):
        server.start()
    server.stop()
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    with RepositoryServer(repo.store, port=server.port) as again:
        assert fetch(again.base_url + "/ca/auth/g3.cer")[0] == 200


def _read_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=deadline - time.monotonic()):
            return proc.stdout.readline()
    raise AssertionError("no output from the server process")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serve_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "authority.sqlite"
    AuthorityStore.open(db, create=True, seed=b"tests").close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "pki", "serve", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        line = _read_line(proc)
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        status, ctype, _ = fetch(match[1] + "/ca/sign/g3.cer")
        assert (status, ctype) == (200, "application/pkix-cert")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_serve_refuses_remote_hosts_and_missing_stores(tmp_path: Path) -> None:
    from workbench.cli import main

    db = tmp_path / "authority.sqlite"
    assert main(["pki", "serve", "--db", str(db)]) == 2
    AuthorityStore.open(db, create=True, seed=b"tests").close()
    assert main(["pki", "serve", "--db", str(db), "--host", "0.0.0.0", "--port", "0"]) == 2

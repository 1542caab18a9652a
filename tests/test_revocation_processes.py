"""Cross-process truth: a running responder follows changes made by other processes.

Driven the way users do it (smartphone-service.md 9, 11.3): ``pki serve`` runs as a
subprocess (one worker and several), ``pki hold`` / ``release`` / ``revoke`` run as separate
subprocesses, ``openssl ocsp`` asks (with and without a nonce) and plain HTTP GETs ask too;
after every change the very next answer must be the new state. Time is a shared clock file
(``--clock``), so "within one second" and "across seconds" are exact, not slept.

The bug this guards against: a process that opened and closed the database file behind a live
SQLite connection lost its POSIX locks, and the running server kept answering from a stale
WAL index until it restarted (see workbench/sqlitefile.py).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.helpers import ROOT, free_port, run_cli
from workbench.pki import FileClock, LoadedCrl

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing")

#: The shared clock starts at the real time (openssl ocsp checks thisUpdate against the host
#: clock; -validity_period below allows the simulated clock to run hours ahead of it).
T0 = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Setup:
    dir: Path
    db: Path
    clock: FileClock
    url: str
    serial: str
    cert: Path
    ca: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = run_cli(*args, "--db", str(self.db), "--clock", str(self.clock.path))
        assert proc.returncode == 0, proc.stderr
        return proc


def _server(setup_dir: Path, db: Path, clock: Path, port: int, workers: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "pki", "serve", "--db", str(db), "--port", str(port),
         "--clock", str(clock), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline() if proc.stdout else ""
    if "serving" not in line:
        proc.kill()
        raise AssertionError(f"pki serve did not start: {line!r} {proc.stderr.read()}")
    match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
    assert match, line
    return proc, match[1]


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    port = free_port()
    clock = FileClock(tmp_path / "clock.txt", T0)
    db = tmp_path / "authority.db"
    proc = run_cli("pki", "init", "--db", str(db), "--seed", "processes",
                   "--repository-url", f"http://127.0.0.1:{port}", "--ocsp-aia",
                   "--crl-interval", "1h", "--clock", str(clock.path))
    assert proc.returncode == 0, proc.stderr
    card = tmp_path / "phone.jwc"
    proc = run_cli("card", "new", str(card), "--profile", "icc", "--seed", "3",
                   "--authority", str(db), "--clock", str(clock.path))
    assert proc.returncode == 0, proc.stderr
    serial = re.search(r"auth (0x[0-9A-F]+)", proc.stdout)
    assert serial, proc.stdout
    cert, ca = tmp_path / "auth.pem", tmp_path / "authca.pem"
    for which, out in (("auth", cert), ("auth_ca", ca)):
        proc = run_cli("card", "export", str(card), "--cert", which, "--pem", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    clock.advance(timedelta(minutes=5))
    server, url = _server(tmp_path, db, clock.path, port, request.param)
    try:
        yield Setup(tmp_path, db, clock, url, serial[1], cert, ca)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
        assert server.returncode == 0, err


def openssl_status(s: Setup, *, nonce: bool) -> str:
    """``good``, ``revoked certificateHold``, ... as openssl ocsp reports it (it also checks the
    signature against the CA and, with -nonce, the nonce echo)."""
    proc = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(s.ca), "-cert", str(s.cert), "-url", f"{s.url}/ocsp",
         "-CAfile", str(s.ca), "-nonce" if nonce else "-no_nonce", "-validity_period", "86400"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Response verify OK" in proc.stderr + proc.stdout, proc.stderr
    status = re.search(r"auth\.pem: (\w+)", proc.stdout)
    assert status, proc.stdout
    reason = re.search(r"Reason: (\w+)", proc.stdout)
    return status[1] + (f" {reason[1]}" if reason else "")


def get_status(s: Setup) -> str:
    """The same question as an HTTP GET (RFC 6960 A.1), parsed by cryptography."""
    cert = x509.load_pem_x509_certificate(s.cert.read_bytes())
    issuer = x509.load_pem_x509_certificate(s.ca.read_bytes())
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    path = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    with urllib.request.urlopen(f"{s.url}/ocsp/{path}", timeout=30) as rsp:
        answer = ocsp.load_der_ocsp_response(rsp.read())
    status = answer.certificate_status.name.lower()
    if answer.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        status += f" {answer.revocation_reason.value}" if answer.revocation_reason else ""
    return status


def _all(s: Setup) -> set[str]:
    """Every way of asking, each answer normalised to openssl's words."""
    via_get = get_status(s).replace("certificate_hold", "certificateHold")
    via_get = via_get.replace("key_compromise", "keyCompromise")
    return {openssl_status(s, nonce=False), openssl_status(s, nonce=True), via_get}


@needs_openssl
def test_hold_release_hold_within_one_second_and_across_seconds(setup: Setup) -> None:
    s = setup
    assert _all(s) == {"good"}
    for step in range(3):  # hold → release → hold → release ... at the same second
        s.cli("pki", "hold", s.serial)
        assert _all(s) == {"revoked certificateHold"}, step
        s.cli("pki", "release", s.serial)
        assert _all(s) == {"good"}, step
    for step in range(2):  # and with the clock moving between the changes
        s.clock.advance(timedelta(seconds=1))
        s.cli("pki", "hold", s.serial)
        assert _all(s) == {"revoked certificateHold"}, step
        s.clock.advance(timedelta(seconds=3))
        assert _all(s) == {"revoked certificateHold"}, step
        s.cli("pki", "release", s.serial)
        assert _all(s) == {"good"}, step
    s.clock.advance(timedelta(seconds=1))
    s.cli("pki", "revoke", s.serial, "--reason", "keyCompromise")
    assert _all(s) == {"revoked keyCompromise"}
    s.clock.advance(timedelta(hours=2))
    assert _all(s) == {"revoked keyCompromise"}


def test_crls_over_http_follow_the_next_publication(setup: Setup) -> None:
    s = setup
    serial = int(s.serial, 16)
    path = "/crl/auth/g3.crl"

    def listed() -> bool:
        with urllib.request.urlopen(s.url + path, timeout=30) as rsp:
            return serial in LoadedCrl.from_der(rsp.read())

    assert not listed()
    s.cli("pki", "hold", s.serial)
    assert not listed()  # CRLs change at the next publication only (OCSP at once)
    boundary = (s.clock.now().replace(minute=0, second=0) + timedelta(hours=1))
    s.clock.set(boundary)
    assert listed()
    s.clock.advance(timedelta(minutes=1))
    s.cli("pki", "release", s.serial)
    assert listed()  # the hold stays on the CRL in force until the next one
    s.clock.set(boundary + timedelta(hours=1))
    assert not listed()

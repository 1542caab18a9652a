"""OCSP under load, honest peer comparisons: our ``pki serve`` vs ``openssl ocsp`` and CFSSL.

Issue "honest peer comparisons": every ratio comes from one run, with rounds alternating
between our server and the peer (ABBA order), the same load generator and the same request
pool for both, medians and spread over rounds, every answer checked and a goal "met" only
with zero errors on both sides.

Comparisons
-----------

1. **Fresh signing** (a new random 16-byte nonce in every request: nothing can be cached, every
   answer is an RSA-2048 signature). Ours: ``jpki-workbench pki serve --workers N`` started as a
   subprocess exactly as a user starts it. Peer: ``openssl ocsp -index index.txt -port P
   -rsigner ca.pem -rkey ca.key -CA ca.pem -multi N -resp_no_certs -resp_key_id -nmin 60``,
   i.e. the same response options as ours: responderID by key hash, no certificates in the
   response, thisUpdate = now and nextUpdate = now + 60 min (our responder's default
   ``validity``; both stamp whole seconds), sha256WithRSAEncryption, the same RSA-2048 CA key
   (exported from the authority store to PEM) and an ``index.txt`` written from the same
   registry state (V/R lines, serials, revocation times, reasons; a hold is
   ``certificateHold``). N = the number of cores and N = 1. Goal: **ours ≥ 1.5× OpenSSL's
   closed-loop throughput at N = cores, with a p99 no worse**. Reported with it: the share of
   server CPU spent in RSA signing on each side; the same closed loop with a new connection
   per request on both sides (``close``: OpenSSL forces one on its clients, and a connection
   costs the shared cores about 4× a keep-alive request); and an open-loop run at 50 % and
   80 % of OpenSSL's measured capacity (requests sent on a fixed schedule whatever the
   answers, latency counted from the scheduled moment, so a server that falls behind cannot
   hide it).
2. **Pre-signed answers** (no nonce). Ours answers from its cache of pre-signed responses;
   peer: CFSSL's ``cfssl ocspserve -responses FILE`` serving a file made of *our* pre-signed
   DER responses for the same registry state (base64, one per line; CFSSL keys them by serial,
   so the file holds one for every serial of the pool, including the signed "unknown"
   answers). Goal: **ours ≥ 1× CFSSL's throughput**. Our cache hit rate is read from the
   server's ``GET /stats`` counters (every worker). Both get the same unmeasured warm-up:
   as many runs as it takes our workers to stop signing (each fills its own cache).

Method
------

- Request pool: ``--pool`` distinct requests (default 1000), 80 % good, 10 % revoked or held,
  10 % unknown serials, one SHA-1 CertID each (OpenSSL's default); with a nonce, the client
  patches fresh random bytes into the request for every send.
- Load generator: this file run as its own process (asyncio on uvloop, protocol-level HTTP/1.1
  client, pre-built requests). Closed loop: ``--connections`` connections each sending the
  next request when the previous answer is complete; keep-alive where the server allows it
  (OpenSSL's responder answers HTTP/1.0 and closes every connection, so each of its requests
  includes a TCP connect: that is how a client of it is served, and it is in its latency).
  Open loop: requests due at fixed intervals; each is sent on an idle connection or a new one.
  Each round: ``--warmup`` seconds not measured, then ``--duration`` seconds measured; the
  throughput is the answers completed inside the measured window.
- Its ceiling is measured first against a trivial in-file HTTP endpoint (a canned answer, with
  keep-alive and with a connection per request), and its own CPU use is reported per round.
- Cores: the machine has few cores; servers, load generator (and other tenants) share them,
  without pinning (pinning the client to a core of its own would leave the servers fewer
  cores than N). Both sides face the same client on the same cores. Because the share of the
  cores a server gets depends on the other tenants, each round also reports the server's CPU
  time per answer (``CPU us/ans``): the efficiency, whatever share it got.
- Checks on every answer, in the client: HTTP 200, OCSP responseStatus successful, the
  request's CertID echoed byte for byte and followed by the expected certStatus (good /
  revoked / unknown), and the nonce present (fresh-signing mode). Full validation of a sample
  (the first ``--first`` answers of each round and every ``--every``-th after) in the parent:
  the signature with the CA key, sha256WithRSA, responderID = CA key hash, no certificates,
  exactly one SingleResponse with the request's CertID, status / revocation time / reason as
  the registry says, the nonce echoed (or absent), thisUpdate ≤ received ≤ nextUpdate and a
  60-minute window. Non-200 answers, non-successful OCSP statuses, failed checks, connection
  errors and unanswered requests are all errors.
- RSA share of server CPU: server CPU = utime + stime of the server's whole process tree from
  ``/proc/<pid>/stat`` before and after each round; signatures = our workers' ``signed``
  counters (``/stats``) or, for OpenSSL (which signs every answer), the answers it served;
  the cost of one signature is measured in the same run on this machine, same key, same
  300-byte message, same loop: cryptography's RSA-2048 PKCS#1 v1.5 SHA-256 sign (our
  library) and EVP_DigestSign of the system's libcrypto through ctypes (what ``openssl ocsp``
  runs on; ``openssl speed rsa2048`` if it cannot be loaded). share = signatures × cost /
  server CPU. It is an estimate: the cost of a signature is measured in a loop with warm
  caches, and the servers' CPU time includes the kernel's share of the HTTP work.

Run: ``.venv/bin/python benchmarks/ocsp_load.py`` (about 5 minutes), ``--quick`` (one round
each of loadgen, fresh N = cores and pre-signed: about 30 s on a busy 2-core machine, most of
it starting Python processes), ``--only PART …`` for parts, ``--json FILE`` for the
figures. Needs ``openssl`` and ``cfssl`` on PATH (Debian packages ``openssl`` and
``golang-cfssl``); a missing peer is reported on stderr and stops the run with status 3
unless ``--allow-missing-peer`` is given. Everything runs on 127.0.0.1 in a private temporary
directory; every process started is stopped at the end, also on Ctrl-C and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The load generator and the trivial endpoint run this file as their own processes; they need
#: neither cryptography nor the workbench, and skipping those imports starts them in a fraction
#: of the time (it matters on a busy 2-core machine, 30+ times per run).
_HELPER_PROCESS = __name__ == "__main__" and sys.argv[1:2] in (["--client"], ["--trivial-server"])
if not _HELPER_PROCESS:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509 import ocsp
    from cryptography.x509.oid import SignatureAlgorithmOID

    from workbench.pki.ocsp import OcspResponder
    from workbench.pki.status import CertState, RevocationReason
    from workbench.pki.store import AuthorityStore

    #: OpenSSL's names for CRL reasons in index.txt (apps/lib/apps.c crl_reasons);
    #: certificateHold needs a hold instruction after a comma.
    OPENSSL_REASONS = {
        RevocationReason.UNSPECIFIED: "unspecified",
        RevocationReason.KEY_COMPROMISE: "keyCompromise",
        RevocationReason.CA_COMPROMISE: "CACompromise",
        RevocationReason.AFFILIATION_CHANGED: "affiliationChanged",
        RevocationReason.SUPERSEDED: "superseded",
        RevocationReason.CESSATION_OF_OPERATION: "cessationOfOperation",
        RevocationReason.CERTIFICATE_HOLD: "certificateHold,holdInstructionReject",
    }
    REVOKE_REASONS = [RevocationReason.KEY_COMPROMISE, RevocationReason.SUPERSEDED,
                      RevocationReason.CESSATION_OF_OPERATION,
                      RevocationReason.AFFILIATION_CHANGED]

#: Our responder's default validity window (thisUpdate → nextUpdate); OpenSSL gets -nmin 60.
VALIDITY = timedelta(hours=1)

#: certStatus CHOICE tags right after the CertID in a SingleResponse (RFC 6960 4.2.1).
STATUS_TAG = {"good": 0x80, "revoked": 0xA1, "unknown": 0x82}
NONCE_MARKER = b"\xa5" * 16
OURS = "jpki-workbench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class PeerMissing(Exception):
    """A peer binary is not installed."""


# --- the authority, the peers' files and the request pool -----------------------------------

def utc_time(t: datetime) -> str:
    """index.txt times: UTCTime YYMMDDHHMMSSZ (OpenSSL ca/ocsp index format)."""
    return t.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


def build_authority(work: Path, n_certs: int, rng: random.Random) -> AuthorityStore:
    """A store with ``n_certs`` registered serials of auth g3; 10 % revoked, 2 % held."""
    store = AuthorityStore.open(work / "authority.sqlite", create=True,
                                seed=b"ocsp-load benchmark (synthetic, test only)")
    ca = store.ca("auth", 3)
    now = datetime.now(UTC).replace(microsecond=0)
    serials = rng.sample(range(1 << 40, 1 << 48), n_certs)
    store.registry.register_serials(ca.key_identifier, serials,
                                    not_before=now - timedelta(days=30),
                                    not_after=now + timedelta(days=365 * 4),
                                    kind="auth", hierarchy="auth", subject="C=JP, CN=LOADTEST")
    shuffled = serials[:]
    rng.shuffle(shuffled)
    revoked = shuffled[: n_certs // 10]
    held = shuffled[n_certs // 10: n_certs // 10 + n_certs // 50]
    when = now - timedelta(hours=2)
    for i, reason in enumerate(REVOKE_REASONS):
        store.registry.revoke_many(revoked[i::len(REVOKE_REASONS)], reason,
                                   issuer_key_id=ca.key_identifier, at=when)
    for s in held:
        store.registry.hold(s, issuer_key_id=ca.key_identifier, at=when)
    return store


def write_openssl_files(work: Path, store: AuthorityStore) -> None:
    """ca.pem, ca.key and index.txt for ``openssl ocsp`` from the registry's current state."""
    ca = store.ca("auth", 3)
    (work / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    key_path = work / "ca.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(ca.private_key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    lines = []
    for cert in store.registry.certificates(issuer_key_id=ca.key_identifier, kind="auth"):
        serial = f"{cert.serial:X}"
        serial = "0" * (len(serial) % 2) + serial  # BN_bn2hex: whole octets, upper case
        expiry = utc_time(cert.not_after)
        if cert.state is CertState.GOOD:
            lines.append(f"V\t{expiry}\t\t{serial}\tunknown\t/C=JP/CN=LOADTEST")
        else:
            assert cert.since is not None and cert.reason is not None
            revinfo = f"{utc_time(cert.since)},{OPENSSL_REASONS[cert.reason]}"
            lines.append(f"R\t{expiry}\t{revinfo}\t{serial}\tunknown\t/C=JP/CN=LOADTEST")
    (work / "index.txt").write_text("\n".join(lines) + "\n")
    (work / "index.txt.attr").write_text("unique_subject = no\n")


@dataclass(frozen=True)
class Expected:
    """What the registry says about one serial: the answer every server must give."""

    state: str  # "good", "revoked" (revoked or held), "unknown"
    since: datetime | None = None
    reason: RevocationReason | None = None


@dataclass(frozen=True)
class PoolItem:
    serial: int
    der: bytes  # the OCSPRequest (with NONCE_MARKER where the nonce goes, if any)
    nonce_at: int  # offset of the nonce in der, -1 without
    certid: bytes  # DER of the request's CertID: echoed byte for byte in the answer
    expected: Expected


def registry_expectations(store: AuthorityStore, serials: list[int]) -> dict[int, Expected]:
    """The registry's own answer for each serial (not what the build step meant to do)."""
    key_id = store.ca("auth", 3).key_identifier
    out = {}
    for serial in serials:
        st = store.registry.status(key_id, serial)
        if st.state is CertState.GOOD:
            out[serial] = Expected("good")
        elif st.state is CertState.UNKNOWN:
            out[serial] = Expected("unknown")
        else:
            reason = (RevocationReason.CERTIFICATE_HOLD if st.state is CertState.HELD
                      else st.reason or RevocationReason.UNSPECIFIED)
            out[serial] = Expected("revoked", st.since, reason)
    return out


def choose_serials(store: AuthorityStore, size: int, rng: random.Random) -> list[int]:
    """80 % good, 10 % revoked or held, 10 % unknown serials, shuffled."""
    key_id = store.ca("auth", 3).key_identifier
    good, bad = [], []
    for cert in store.registry.certificates(issuer_key_id=key_id, kind="auth"):
        (good if cert.state is CertState.GOOD else bad).append(cert.serial)
    n_good, n_bad = size * 8 // 10, size // 10
    unknown = rng.sample(range(1 << 50, 1 << 52), size - n_good - n_bad)
    chosen = rng.sample(sorted(good), n_good) + rng.sample(sorted(bad), n_bad) + unknown
    rng.shuffle(chosen)
    return chosen


def request_pool(store: AuthorityStore, serials: list[int], expected: dict[int, Expected],
                 nonce: bool) -> list[PoolItem]:
    from asn1crypto import ocsp as asn1_ocsp

    ca = store.ca("auth", 3).certificate
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(ca.subject.public_bytes())
    issuer_name_hash = name_hash.finalize()
    issuer_key_hash = x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest
    pool = []
    for serial in serials:
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            issuer_name_hash, issuer_key_hash, serial, hashes.SHA1())
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(NONCE_MARKER), critical=False)
        der = builder.build().public_bytes(Encoding.DER)
        certid = asn1_ocsp.OCSPRequest.load(der)["tbs_request"]["request_list"][0][
            "req_cert"].dump()
        assert certid in der
        pool.append(PoolItem(serial, der, der.index(NONCE_MARKER) if nonce else -1, certid,
                             expected[serial]))
    return pool


def write_cfssl_responses(work: Path, store: AuthorityStore, pool: list[PoolItem]) -> Path:
    """Our pre-signed DER answers to the pool's nonce-less requests, base64, one per line."""
    responder = OcspResponder(store.authority, store.registry, validity=VALIDITY)
    try:
        lines = [base64.b64encode(responder.respond(item.der)).decode() for item in pool]
    finally:
        responder.close()
    path = work / "responses.b64"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- validation --------------------------------------------------------------------------------

@dataclass
class Validator:
    """Full check of sampled answers against the registry (the parent's job, not timed)."""

    ca: x509.Certificate
    key_hash: bytes
    pool: list[PoolItem]
    checked: int = 0
    problems: dict[str, int] = field(default_factory=dict)

    def check(self, index: int, request: bytes, body: bytes, received: float) -> None:
        self.checked += 1
        problem = self._problem(self.pool[index], request, body, received)
        if problem:
            self.problems[problem] = self.problems.get(problem, 0) + 1

    def _problem(self, item: PoolItem, request: bytes, body: bytes, received: float) -> str:
        try:
            resp = ocsp.load_der_ocsp_response(body)
        except ValueError:
            return "not an OCSPResponse"
        if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return f"responseStatus {resp.response_status.name}"
        if resp.signature_algorithm_oid != SignatureAlgorithmOID.RSA_WITH_SHA256:
            return "not sha256WithRSAEncryption"
        try:
            key = self.ca.public_key()
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            return "bad signature"
        if resp.responder_key_hash != self.key_hash or resp.responder_name is not None:
            return "responderID is not the CA key hash"
        if resp.certificates:
            return "certificates attached"
        singles = list(resp.responses)
        if len(singles) != 1:
            return f"{len(singles)} SingleResponses"
        one = singles[0]
        req = ocsp.load_der_ocsp_request(request)
        if (one.serial_number != req.serial_number
                or one.issuer_key_hash != req.issuer_key_hash
                or one.issuer_name_hash != req.issuer_name_hash
                or not isinstance(one.hash_algorithm, hashes.SHA1)):
            return "CertID differs from the request's"
        exp = item.expected
        if one.certificate_status.name.lower() != exp.state:
            return f"status {one.certificate_status.name.lower()} != registry's {exp.state}"
        if exp.state == "revoked":
            if one.revocation_time_utc != exp.since:
                return "revocation time differs from the registry's"
            if (one.revocation_reason is None or exp.reason is None
                    or one.revocation_reason.value != exp.reason.value):
                return "revocation reason differs from the registry's"
        try:
            echoed = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        sent = request[item.nonce_at:item.nonce_at + 16] if item.nonce_at >= 0 else None
        if echoed != sent:
            return "nonce not echoed" if sent is not None else "unexpected nonce"
        now = datetime.fromtimestamp(received, UTC)
        this, nxt = one.this_update_utc, one.next_update_utc
        if nxt is None or not this <= now <= nxt:
            return "received outside thisUpdate..nextUpdate"
        if nxt - this != VALIDITY:
            return "validity window is not 60 min"
        return ""


# --- processes ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant (worker processes of a server)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def group_members(pgid: int) -> list[int]:
    """Live processes of the process group ``pgid`` (one we created for a server)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system, incl. reaped children) of a process tree."""
    total = 0
    for pid in tree_pids(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def tree_runqueue_wait(root: int) -> float:
    """Seconds the threads of a process tree spent runnable but waiting for a core
    (``/proc/<pid>/task/<tid>/schedstat``, second field): on a shared machine, how much of a
    server's time the other tenants (and the other side's idle peer) took from it."""
    total = 0
    for pid in tree_pids(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def http_post(url: str, der: bytes, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=der,
                                 headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


@dataclass
class Server:
    """One server process under test: how to start it, where it answers, its CPU."""

    name: str
    argv: list[str]
    port: int
    log: Path
    cwd: Path
    proc: subprocess.Popen | None = None
    has_stats: bool = False
    term_wait: float = 5.0  # seconds between SIGTERM and SIGKILL
    env: dict[str, str] | None = None  # extra environment variables

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    def start(self, probe: bytes) -> None:
        with self.log.open("wb") as log:
            env = None if self.env is None else {**os.environ, **self.env}
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdout=log, env=env,
                                         stderr=subprocess.STDOUT, process_group=0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with status {self.proc.returncode}:\n"
                                 f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                http_post(self.url, probe, timeout=5)
                return
            except urllib.error.HTTPError:
                return  # it answers HTTP
            except OSError:
                time.sleep(0.05)  # wall-clock wait for a process to come up
        raise SystemExit(f"{self.name} did not answer within 60 s")

    def cpu(self) -> float:
        assert self.proc is not None
        return tree_cpu(self.proc.pid)

    def waited(self) -> float:
        assert self.proc is not None
        return tree_runqueue_wait(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM the process group we made, then SIGKILL whatever is left of it.

        (``openssl ocsp -multi`` 3.0's parent does not end on SIGTERM: it gets the SIGKILL.)
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.term_wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        for pid in group_members(proc.pid):  # workers or children left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def signatures(self, workers: int) -> int | None:
        """Sum of every worker's ``signed`` counter (our server's ``GET /stats``)."""
        if not self.has_stats:
            return None
        return sum(s["signed"] for s in self.worker_stats(workers).values())

    def worker_stats(self, workers: int) -> dict[int, dict]:
        """``/stats`` of every worker: new connections until each pid has answered."""
        seen: dict[int, dict] = {}
        base = self.url.rsplit("/", 1)[0]
        for _ in range(400):
            try:
                with urllib.request.urlopen(base + "/stats", timeout=10) as resp:
                    data = json.loads(resp.read())
            except OSError:
                continue
            seen[data["pid"]] = data["ocsp_cache"]
            if len(seen) >= workers:
                return seen
        raise SystemExit(f"{self.name}: /stats reached {len(seen)} of {workers} workers")


def ours_argv(db: Path, port: int, workers: int) -> list[str]:
    """``jpki-workbench pki serve`` exactly as a user types it (the venv's console script)."""
    script = Path(sys.executable).with_name("jpki-workbench")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "workbench"]
    return [*head, "pki", "serve", "--db", str(db), "--port", str(port),
            "--workers", str(workers)]


def openssl_argv(work: Path, port: int, workers: int) -> list[str]:
    return ["openssl", "ocsp", "-index", str(work / "index.txt"), "-port", str(port),
            "-rsigner", str(work / "ca.pem"), "-rkey", str(work / "ca.key"),
            "-CA", str(work / "ca.pem"), "-multi", str(workers), "-resp_no_certs",
            "-resp_key_id", "-nmin", str(int(VALIDITY.total_seconds() // 60))]


def cfssl_argv(responses: Path, port: int) -> list[str]:
    return ["cfssl", "ocspserve", "-responses", str(responses), "-address", "127.0.0.1",
            "-port", str(port), "-loglevel", "3"]


# --- cost of one RSA signature on each side -----------------------------------------------------

def sign_cost_cryptography(key: rsa.RSAPrivateKey, seconds: float) -> float:
    """CPU seconds of one RSA-2048 PKCS#1 v1.5 SHA-256 signature with our library."""
    message = os.urandom(300)  # about the size of a ResponseData
    key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for _ in range(20):
            key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        n += 20
    return (time.process_time() - start) / n


def sign_cost_libcrypto(key: rsa.RSAPrivateKey, seconds: float) -> float | None:
    """CPU seconds of one signature with the same key in the system's libcrypto (the library
    ``openssl ocsp`` runs on), called through ctypes: EVP_DigestSign, SHA-256, PKCS#1 v1.5
    (the default RSA padding), the same message size and loop as for ours. None if the
    library cannot be loaded; ``openssl speed rsa2048`` (its built-in key) is the fallback."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcrypto.so.3")
    except OSError:
        return None
    der = key.private_bytes(Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    lib.d2i_AutoPrivateKey.restype = ctypes.c_void_p
    lib.d2i_AutoPrivateKey.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                       ctypes.c_long]
    lib.EVP_MD_CTX_new.restype = ctypes.c_void_p
    lib.EVP_sha256.restype = ctypes.c_void_p
    lib.EVP_DigestSignInit.argtypes = [ctypes.c_void_p] * 5
    lib.EVP_DigestSign.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p,
                                   ctypes.c_size_t]
    lib.EVP_MD_CTX_free.argtypes = [ctypes.c_void_p]
    lib.EVP_PKEY_free.argtypes = [ctypes.c_void_p]
    pointer = ctypes.c_char_p(der)
    pkey = lib.d2i_AutoPrivateKey(None, ctypes.byref(pointer), len(der))
    if not pkey:
        return None
    message = os.urandom(300)
    out = ctypes.create_string_buffer(512)

    def sign() -> bytes:
        ctx = lib.EVP_MD_CTX_new()
        size = ctypes.c_size_t(len(out))
        ok = (lib.EVP_DigestSignInit(ctx, None, lib.EVP_sha256(), None, pkey) == 1
              and lib.EVP_DigestSign(ctx, out, ctypes.byref(size), message, len(message)) == 1)
        lib.EVP_MD_CTX_free(ctx)
        if not ok:
            raise RuntimeError("libcrypto EVP_DigestSign failed")
        return out.raw[:size.value]

    try:
        key.public_key().verify(sign(), message, padding.PKCS1v15(), hashes.SHA256())
        n, start = 0, time.process_time()
        while time.process_time() - start < seconds:
            for _ in range(20):
                sign()
            n += 20
        return (time.process_time() - start) / n
    finally:
        lib.EVP_PKEY_free(pkey)


def sign_cost_openssl(key: rsa.RSAPrivateKey, seconds: float) -> float | None:
    """CPU seconds of one RSA-2048 signature in OpenSSL's libcrypto: with our key through
    ctypes, else ``openssl speed rsa2048`` (user time, its built-in test key)."""
    cost = sign_cost_libcrypto(key, seconds)
    if cost is not None:
        return cost
    done = subprocess.run(["openssl", "speed", "-seconds", str(max(1, round(seconds))),
                           "rsa2048"], capture_output=True, text=True, timeout=120)
    m = re.search(r"^rsa\s+2048 bits\s+([0-9.]+)s", done.stdout, re.M)
    return float(m.group(1)) if m else None


# --- the load generator (its own process) -------------------------------------------------------

class _HttpConn(asyncio.Protocol):
    """One HTTP/1.x client connection: a request out, a parsed response back."""

    __slots__ = ("transport", "buf", "waiter", "closed")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            self._try_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if not self._try_complete(eof=True):
                waiter.set_exception(ConnectionError("connection closed before the answer"))

    def _try_complete(self, eof: bool = False) -> bool:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(buf[:end]).split(b"\r\n")
        status = int(lines[0].split()[1])
        keep = lines[0].startswith(b"HTTP/1.1")
        length, chunked = -1, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                keep = value.strip().lower() == b"keep-alive"
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        start = end + 4
        if chunked:
            body, pos = bytearray(), start
            while True:
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    return False
                size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
                if len(buf) < line_end + 2 + size + 2:
                    return False
                body += buf[line_end + 2:line_end + 2 + size]
                pos = line_end + 2 + size + 2
                if size == 0:
                    break
            del buf[:pos]
            payload = bytes(body)
        elif length >= 0:
            if len(buf) < start + length:
                return False
            payload = bytes(buf[start:start + length])
            del buf[:start + length]
        else:  # no length: the body ends with the connection
            if not eof:
                return False
            payload = bytes(buf[start:])
            buf.clear()
            keep = False
        assert self.waiter is not None
        self.waiter.set_result((status, payload, keep))
        return True


class LoadGenerator:
    """Closed- and open-loop HTTP load with per-answer checks (runs in the client process)."""

    def __init__(self, spec: dict) -> None:
        self.host: str = spec["host"]
        self.port: int = spec["port"]
        self.check = spec["check"]
        close = b"Connection: close\r\n" if spec.get("close") else b""
        self.first, self.every = spec["first"], spec["every"]
        self.items = []
        for der_hex, nonce_at, certid_hex, tag in spec["pool"]:
            der = bytes.fromhex(der_hex)
            head = (b"POST /ocsp HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                    b"application/ocsp-request\r\n%sContent-Length: %d\r\n\r\n"
                    % (self.host.encode(), self.port, close, len(der)))
            self.items.append((head, der, nonce_at, bytes.fromhex(certid_hex), tag))
        self.latencies: list[int] = []
        self.errors: dict[str, int] = {}
        self.samples: list[tuple[int, str, str, float]] = []
        self.answered = 0  # every answer, warm-up included (each one is a signature or not)
        self.measured = 0
        self.window_start = self.window_end = 0.0
        self.loop = asyncio.get_running_loop()

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def _body(self, index: int) -> tuple[bytes, bytes]:
        head, der, nonce_at, _, _ = self.items[index]
        if nonce_at >= 0:
            der = der[:nonce_at] + os.urandom(16) + der[nonce_at + 16:]
        return head + der, der

    def _verify(self, index: int, body: bytes, status: int, payload: bytes) -> bool:
        """The per-answer checks; a failure is counted as an error of its kind."""
        if status != 200:
            self._error(f"HTTP {status}")
            return False
        if not self.check:
            return True
        off = 2 + (payload[1] & 0x7F if len(payload) > 1 and payload[1] & 0x80 else 0)
        if payload[off:off + 3] != b"\x0a\x01\x00":
            self._error("OCSP status not successful")
            return False
        _, _, nonce_at, certid, tag = self.items[index]
        pos = payload.find(certid)
        if pos < 0:
            self._error("CertID not echoed")
            return False
        if payload[pos + len(certid)] != tag:
            self._error("certStatus differs from the registry's")
            return False
        if nonce_at >= 0 and body[nonce_at:nonce_at + 16] not in payload:
            self._error("nonce not echoed")
            return False
        return True

    async def _exchange(self, conn: _HttpConn | None, request: bytes
                        ) -> tuple[_HttpConn | None, int, bytes]:
        if conn is None or conn.closed:
            _, conn = await self.loop.create_connection(_HttpConn, self.host, self.port)
        assert conn.transport is not None
        conn.waiter = self.loop.create_future()
        conn.transport.write(request)
        status, payload, keep = await conn.waiter
        conn.waiter = None
        if not keep:
            conn.transport.close()
            conn = None
        return conn, status, payload

    def _record(self, index: int, body: bytes, status: int, payload: bytes, started: float,
                done: float) -> None:
        self.answered += 1
        ok = self._verify(index, body, status, payload)
        if not (self.window_start <= started and done <= self.window_end):
            return  # warm-up, or finished after the window
        self.measured += 1
        self.latencies.append(int((done - started) * 1e9))
        n = self.measured
        if ok and (n <= self.first or n % self.every == 0):
            self.samples.append((index, body.hex(), payload.hex(), time.time()))

    async def closed_connection(self, offset: int) -> None:
        conn: _HttpConn | None = None
        index = offset
        perf = time.perf_counter
        while perf() < self.window_end:
            request, body = self._body(index % len(self.items))
            started = perf()
            try:
                conn, status, payload = await self._exchange(conn, request)
            except (OSError, ValueError, IndexError) as exc:
                self._error(f"connection: {type(exc).__name__}")
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            self._record(index % len(self.items), body, status, payload, started, perf())
            index += 1
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def closed_loop(self, connections: int, warmup: float, duration: float) -> None:
        now = time.perf_counter()
        self.window_start, self.window_end = now + warmup, now + warmup + duration
        step = max(1, len(self.items) // connections)
        await asyncio.gather(*(self.closed_connection(i * step) for i in range(connections)))

    async def open_loop(self, rate: float, warmup: float, duration: float,
                        max_in_flight: int) -> None:
        """Requests due every 1/rate s; latency counts from the due moment (no omission)."""
        idle: list[_HttpConn] = []
        tasks: set[asyncio.Task] = set()
        perf = time.perf_counter

        async def one(index: int, due: float) -> None:
            conn = idle.pop() if idle else None
            request, body = self._body(index)
            try:
                conn, status, payload = await self._exchange(conn, request)
            except (OSError, ValueError, IndexError) as exc:
                self._error(f"connection: {type(exc).__name__}")
                return
            self._record(index, body, status, payload, due, perf())
            if conn is not None:
                idle.append(conn)

        begin = perf() + 0.05
        self.window_start, self.window_end = begin + warmup, begin + warmup + duration
        i = 0
        while True:
            due = begin + i / rate
            if due >= self.window_end:
                break
            now = perf()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if len(tasks) >= max_in_flight:
                self._error("open loop: too many requests in flight (dropped)")
            else:
                task = self.loop.create_task(one(i % len(self.items), due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        for task in list(tasks):
            task.cancel()
            self._error("open loop: no answer within 30 s")
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()


def client_main(spec_path: str) -> int:
    """The load generator process: ``ocsp_load.py --client SPEC.json`` writes RESULT.json."""
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        pass

    async def run() -> LoadGenerator:
        gen = LoadGenerator(spec)
        if spec["mode"] == "closed":
            coro = gen.closed_loop(spec["connections"], spec["warmup"], spec["duration"])
        else:
            coro = gen.open_loop(spec["rate"], spec["warmup"], spec["duration"],
                                 spec["max_in_flight"])
        try:
            await asyncio.wait_for(coro, spec["warmup"] + spec["duration"] + 60)
        except TimeoutError:
            gen._error("client: round did not finish within 60 s of its end")
        return gen

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    gen = asyncio.run(run())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    lat = sorted(gen.latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 if lat else float("nan")

    result = {
        "measured": gen.measured, "answered": gen.answered,
        "seconds": gen.window_end - gen.window_start, "errors": gen.errors,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        "client_cpu": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "client_wall": time.perf_counter() - wall0,
        "samples": gen.samples,
    }
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# --- a trivial endpoint, to measure the load generator's own ceiling ----------------------------

def trivial_server_main(port: int, body_hex: str) -> int:
    """A canned-answer HTTP server (``--trivial-server PORT``): the cheapest possible peer."""
    body = bytes.fromhex(body_hex)
    keep = (b"HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                m = re.search(rb"(?i)content-length:\s*(\d+)", self.buf[:end])
                need = end + 4 + (int(m.group(1)) if m else 0)
                if len(self.buf) < need:
                    return
                close = b"connection: close" in self.buf[:end].lower()
                self.buf = self.buf[need:]
                if close:
                    self.t.write(keep.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
                    self.t.close()
                    return
                self.t.write(keep)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", port, backlog=2048)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with server:
            await stop

    import uvloop
    uvloop.run(serve())
    return 0


# --- one round, a configuration ------------------------------------------------------------------

@dataclass
class Round:
    server: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_kinds: dict[str, int]
    answered: int
    server_cpu: float
    server_cores: float  # server CPU seconds per wall second of the round
    server_waiting: float  # server threads runnable but without a core, per wall second
    client_cores: float
    signatures: int | None
    checked: int

    @property
    def cpu_us(self) -> float:
        """Server CPU per answer (µs): efficiency, whatever share of the cores it got."""
        return self.server_cpu / self.answered * 1e6 if self.answered else float("nan")


@dataclass
class Side:
    name: str
    rounds: list[Round] = field(default_factory=list)

    def med(self, attr: str) -> float:
        if not self.rounds:
            return float("nan")
        return statistics.median(getattr(r, attr) for r in self.rounds)

    def span(self, attr: str) -> tuple[float, float]:
        values = [getattr(r, attr) for r in self.rounds]
        return min(values), max(values)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)


@dataclass
class Config:
    key: str
    title: str
    mode: str  # closed / open
    nonce: bool
    workers: int
    ours: Side
    peer: Side
    goal: str
    goal_ratio: float | None  # None: reported only
    p99_rule: bool
    rate: float | None = None
    close: bool = False  # "Connection: close" on every request, for both sides
    extra: dict = field(default_factory=dict)

    def ratio(self) -> float:
        peer = self.peer.med("rps")
        return self.ours.med("rps") / peer if peer else float("inf")

    def paired(self) -> tuple[float, float]:
        pairs = [a.rps / b.rps for a, b in zip(self.ours.rounds, self.peer.rounds, strict=False)
                 if b.rps]
        return (min(pairs), max(pairs)) if pairs else (float("nan"), float("nan"))

    def verdict(self) -> str:
        if self.goal_ratio is None:
            return "reported"
        if self.ours.errors or self.peer.errors:
            return "NOT MET (errors)"
        ok = self.ratio() >= self.goal_ratio
        if self.p99_rule:
            ok = ok and self.ours.med("p99_ms") <= self.peer.med("p99_ms")
        return "met" if ok else "NOT MET"


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.servers: list[Server] = []
        self.spec_no = 0

    def start(self, server: Server, probe: bytes) -> Server:
        self.servers.append(server)
        server.start(probe)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()

    def run_client(self, server_port: int, pool: list[PoolItem], *, mode: str, nonce: bool,
                   rate: float | None = None, duration: float | None = None,
                   check: bool = True, close: bool = False) -> dict:
        a = self.args
        self.spec_no += 1
        spec_path = self.work / f"client-{self.spec_no}.json"
        result_path = self.work / f"result-{self.spec_no}.json"
        spec_path.write_text(json.dumps({
            "host": "127.0.0.1", "port": server_port, "mode": mode, "nonce": nonce,
            "connections": a.connections, "rate": rate, "max_in_flight": a.max_in_flight,
            "warmup": a.warmup, "duration": duration or a.duration, "check": check,
            "close": close,
            "first": a.first, "every": a.every, "result": str(result_path),
            "pool": [[p.der.hex(), p.nonce_at, p.certid.hex(), STATUS_TAG[p.expected.state]]
                     for p in pool],
        }))
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--client",
                               str(spec_path)], capture_output=True, text=True,
                              timeout=a.warmup + (duration or a.duration) + 180)
        if done.returncode != 0 or not result_path.exists():
            raise SystemExit(f"load generator failed:\n{done.stdout}\n{done.stderr}")
        return json.loads(result_path.read_text())

    def round(self, server: Server, pool: list[PoolItem], validator: Validator, *, mode: str,
              nonce: bool, workers: int, rate: float | None = None,
              close: bool = False) -> Round:
        sig0 = server.signatures(workers)
        cpu0, wait0 = server.cpu(), server.waited()
        r = self.run_client(server.port, pool, mode=mode, nonce=nonce, rate=rate, close=close)
        cpu, waited = server.cpu() - cpu0, server.waited() - wait0
        sig1 = server.signatures(workers)
        before = validator.checked, sum(validator.problems.values())
        for index, req_hex, body_hex, received in r["samples"]:
            validator.check(index, bytes.fromhex(req_hex), bytes.fromhex(body_hex), received)
        bad = sum(validator.problems.values()) - before[1]
        kinds = dict(r["errors"])
        if bad:
            kinds["failed full validation"] = bad
        errors = sum(kinds.values())
        busy = max(r["client_wall"], 1e-9)
        sigs = sig1 - sig0 if sig0 is not None and sig1 is not None else None
        return Round(server.name, r["measured"] / r["seconds"], r["p50_ms"], r["p90_ms"],
                     r["p99_ms"], r["max_ms"], errors, kinds, r["answered"], cpu, cpu / busy,
                     waited / busy, r["client_cpu"] / busy, sigs, validator.checked - before[0])

    def alternate(self, config: Config, ours: Server, peer: Server, pool: list[PoolItem],
                  validator: Validator) -> Config:
        """ABBA rounds: ours first in even rounds, the peer first in odd ones."""
        for rnd in range(self.args.rounds):
            order = [(ours, config.ours), (peer, config.peer)]
            if rnd % 2:
                order.reverse()
            for server, side in order:
                r = self.round(server, pool, validator, mode=config.mode, nonce=config.nonce,
                               workers=config.workers, rate=config.rate, close=config.close)
                side.rounds.append(r)
                kinds = "" if not r.errors else f"  {r.error_kinds}"
                print(f"    round {rnd + 1} {server.name:<15} {r.rps:8.0f} req/s  p50 "
                      f"{r.p50_ms:7.2f}  p99 {r.p99_ms:7.2f} ms  server {r.server_cores:.2f} "
                      f"cores, {r.cpu_us:5.0f} us/answer  client {r.client_cores:.2f} cores  "
                      f"errors {r.errors}{kinds}", flush=True)
        return config


def precheck(name: str, url: str, pool: list[PoolItem], validator: Validator) -> None:
    """Every distinct request once, each answer fully validated; any mismatch aborts."""
    before = sum(validator.problems.values())
    for index, item in enumerate(pool):
        body = item.der
        if item.nonce_at >= 0:
            body = body[:item.nonce_at] + os.urandom(16) + body[item.nonce_at + 16:]
        status, answer = http_post(url, body)
        if status != 200:
            raise SystemExit(f"{name}: HTTP {status} in the pre-check")
        validator.check(index, body, answer, time.time())
    bad = sum(validator.problems.values()) - before
    if bad:
        raise SystemExit(f"{name}: {bad} of {len(pool)} answers failed validation: "
                         f"{validator.problems}")
    print(f"  {name}: all {len(pool)} distinct requests answered and validated", flush=True)


# --- why ocsp.py writes its own DER ------------------------------------------------------

def encoder_measurement(store: AuthorityStore, rounds: int = 200) -> None:
    """Why ocsp.py writes the response DER itself: CPU time per signed response, three ways.

    asn1crypto (the library the module would otherwise use), the module's own encoder, and
    cryptography's OCSPResponseBuilder (fast, but unusable: one response per OCSPResponse,
    producedAt from the wall clock). All three include the same RSA-2048 signature.
    """
    from asn1crypto import ocsp as asn1_ocsp

    from workbench.pki.ocsp import CertQuery, response_data
    from workbench.pki.status import CertState, CertStatus

    ca = store.authority.ca("auth", 3)
    key_hash = ca.key_identifier
    now = datetime.now(UTC).replace(microsecond=0)
    later = now + timedelta(hours=1)
    query = CertQuery("sha1", b"\x01" * 20, key_hash, 0x1234567890)
    status = CertStatus(query.serial, key_hash, CertState.REVOKED, now, now,
                        RevocationReason.KEY_COMPROMISE)

    def with_asn1crypto() -> bytes:
        tbs = asn1_ocsp.ResponseData({
            "responder_id": asn1_ocsp.ResponderId(name="by_key", value=key_hash),
            "produced_at": now,
            "responses": [{
                "cert_id": {"hash_algorithm": {"algorithm": "sha1"},
                            "issuer_name_hash": query.issuer_name_hash,
                            "issuer_key_hash": query.issuer_key_hash,
                            "serial_number": query.serial},
                "cert_status": asn1_ocsp.CertStatus(name="revoked", value={
                    "revocation_time": now, "revocation_reason": 1}),
                "this_update": now, "next_update": later}],
            "response_extensions": [{"extn_id": "nonce", "critical": False,
                                     "extn_value": b"n" * 16}],
        })
        signature = ca.private_key.sign(tbs.dump(), padding.PKCS1v15(), hashes.SHA256())
        return asn1_ocsp.OCSPResponse({
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response",
                               "response": asn1_ocsp.BasicOCSPResponse({
                                   "tbs_response_data": tbs,
                                   "signature_algorithm": {"algorithm": "sha256_rsa"},
                                   "signature": signature})}}).dump()

    def with_own_der() -> bytes:
        tbs = response_data(key_hash, [query], [status], b"n" * 16, now, later)
        return tbs + ca.private_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())

    def with_cryptography() -> bytes:
        return ocsp.OCSPResponseBuilder().add_response_by_hash(
            query.issuer_name_hash, query.issuer_key_hash, query.serial, hashes.SHA1(),
            ocsp.OCSPCertStatus.REVOKED, now, later, now, x509.ReasonFlags.key_compromise,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate).add_extension(
            x509.OCSPNonce(b"n" * 16), critical=False,
        ).sign(ca.private_key, hashes.SHA256()).public_bytes(Encoding.DER)

    print("signed-response encoders (CPU time per response, incl. the RSA-2048 signature):")
    for name, fn in (("asn1crypto", with_asn1crypto), ("own DER (ocsp.py)", with_own_der),
                     ("cryptography builder", with_cryptography)):
        fn()
        start = time.process_time()
        for _ in range(rounds):
            fn()
        print(f"  {name:<22} {(time.process_time() - start) / rounds * 1e6:8.0f} us")


# --- the benchmark -------------------------------------------------------------------------

def check_peers(args: argparse.Namespace) -> dict[str, bool]:
    have = {"openssl": shutil.which("openssl") is not None,
            "cfssl": shutil.which("cfssl") is not None}
    for name, present in have.items():
        if not present:
            package = "openssl" if name == "openssl" else "golang-cfssl"
            print(f"PEER MISSING: `{name}` is not on PATH (Debian package {package}); its "
                  "comparison is NOT measured", file=sys.stderr, flush=True)
    if not all(have.values()) and not args.allow_missing_peer:
        raise PeerMissing("a peer is missing (see above); --allow-missing-peer runs the rest")
    return have


def loadgen_ceiling(bench: Bench, pool: list[PoolItem], canned: bytes) -> dict:
    """The client against a canned-answer endpoint: its own ceiling, keep-alive and not."""
    port = free_port()
    trivial = Server("trivial endpoint", [sys.executable, str(Path(__file__).resolve()),
                                          "--trivial-server", str(port), canned.hex()],
                     port, bench.work / "trivial.log", bench.work)
    bench.start(trivial, pool[0].der)
    out = {}
    try:
        for label, close in (("keep-alive", False), ("connection per request", True)):
            r = bench.run_client(port, pool, mode="closed", nonce=False, check=False,
                                 close=close, duration=min(bench.args.duration, 3.0))
            rps = r["measured"] / r["seconds"]
            per_req = r["client_cpu"] / max(r["answered"], 1)
            out[label] = {"rps": rps, "client_cpu_us_per_request": per_req * 1e6,
                          "ceiling_rps_one_core": 1 / per_req if per_req else float("inf")}
            print(f"  load generator vs a canned answer, {label}: {rps:,.0f} req/s, client "
                  f"{per_req * 1e6:.0f} us CPU per request (≈ {1 / per_req:,.0f} req/s on "
                  "one core of its own)", flush=True)
    finally:
        trivial.stop()
    return out


def warm_presigned(bench: Bench, ours: Server, pool: list[PoolItem], workers: int,
                   limit: int = 8) -> int:
    """Unmeasured load on our server until a run makes no new signature (every worker's cache
    holds every answer); returns the number of runs."""
    for n in range(1, limit + 1):
        before = ours.signatures(workers)
        bench.run_client(ours.port, pool, mode="closed", nonce=False,
                         duration=bench.args.presign_warmup)
        if ours.signatures(workers) == before:
            return n
    return limit


def run(args: argparse.Namespace, work: Path, have: dict[str, bool]) -> dict:
    cores = len(os.sched_getaffinity(0))
    only = set(args.only)
    rng = random.Random(20250401)
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.connections} closed-loop connections, {args.rounds} rounds per side, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per round", flush=True)
    print(f"authority: {args.certs} serials (10 % revoked, 2 % held) ...", flush=True)
    store = build_authority(work, args.certs, rng)
    ca = store.ca("auth", 3)
    write_openssl_files(work, store)
    serials = choose_serials(store, args.pool, rng)
    expected = registry_expectations(store, serials)
    fresh = request_pool(store, serials, expected, nonce=True)
    plain = request_pool(store, serials, expected, nonce=False)
    kinds = {k: sum(1 for p in plain if p.expected.state == k)
             for k in ("good", "revoked", "unknown")}
    print(f"request pool: {len(plain)} distinct requests: {kinds}", flush=True)
    responses = write_cfssl_responses(work, store, plain)
    canned = base64.b64decode(responses.read_text().split()[0])
    store.close()
    db = work / "authority.sqlite"
    val_fresh = Validator(ca.certificate, ca.key_identifier, fresh)
    val_plain = Validator(ca.certificate, ca.key_identifier, plain)
    bench = Bench(args, work)
    report: dict = {"cores": cores, "connections": args.connections, "rounds": args.rounds,
                    "duration_s": args.duration, "warmup_s": args.warmup,
                    "load_average_start": os.getloadavg()[0], "pool": kinds, "configs": []}
    configs: list[Config] = []

    def ours_server(workers: int, tag: str) -> Server:
        port = free_port()
        return bench.start(Server(OURS, ours_argv(db, port, workers), port,
                                  work / f"ours-{tag}.log", ROOT, has_stats=True), plain[0].der)

    cost_ours = [sign_cost_cryptography(ca.private_key, args.sign_seconds)]
    cost_ssl = ([sign_cost_openssl(ca.private_key, args.sign_seconds)] if have["openssl"]
                else [])
    fresh_parts = only & {"fresh", "open", "close"}
    workers_list = args.workers or ([cores] + ([1] if cores != 1 and not args.quick else []))
    try:
        if "loadgen" in only:
            print("load generator ceiling:", flush=True)
            report["loadgen"] = loadgen_ceiling(bench, plain, canned)

        extra = [cores] if "presigned" in only and cores not in workers_list else []
        for workers in workers_list + extra:
            at_cores = workers == cores
            ours = None
            if (have["openssl"] and fresh_parts and workers in workers_list
                    and (at_cores or "fresh" in only)):
                print(f"fresh signing (a nonce in every request), N = {workers}:", flush=True)
                ours = ours_server(workers, str(workers))
                port = free_port()
                peer = bench.start(Server("openssl ocsp", openssl_argv(work, port, workers),
                                          port, work / f"openssl-{workers}.log", work,
                                          term_wait=0.5), plain[0].der)
                precheck(ours.name, ours.url, fresh[: args.precheck], val_fresh)
                precheck(peer.name, peer.url, fresh[: args.precheck], val_fresh)
                capacity = None
                if "fresh" in only:
                    config = Config(f"fresh-N{workers}", f"fresh signing, N={workers}",
                                    "closed", True, workers, Side(OURS), Side(peer.name),
                                    "≥ 1.5× and p99 no worse" if at_cores else "",
                                    1.5 if at_cores else None, at_cores)
                    configs.append(bench.alternate(config, ours, peer, fresh, val_fresh))
                    capacity = config.peer.med("rps")
                if at_cores and "close" in only:
                    print(f"  both with a new connection per request (as OpenSSL forces), "
                          f"N = {workers}:", flush=True)
                    cc = Config(f"fresh-close-N{workers}",
                                f"fresh, conn/request, N={workers}", "closed", True, workers,
                                Side(OURS), Side(peer.name), "", None, False, close=True)
                    configs.append(bench.alternate(cc, ours, peer, fresh, val_fresh))
                    capacity = capacity or cc.peer.med("rps")
                if at_cores and "open" in only and capacity:
                    for share in args.open_rates:
                        rate = capacity * share
                        print(f"  open loop at {share:.0%} of OpenSSL's capacity "
                              f"({rate:,.0f} req/s), N = {workers}:", flush=True)
                        oc = Config(f"open-{round(share * 100)}-N{workers}",
                                    f"fresh, open loop {share:.0%}, N={workers}", "open",
                                    True, workers, Side(OURS), Side(peer.name), "", None,
                                    False, rate)
                        configs.append(bench.alternate(oc, ours, peer, fresh, val_fresh))
                peer.stop()

            if have["cfssl"] and "presigned" in only and at_cores:
                print(f"pre-signed answers (no nonce), ours N = {cores} vs cfssl ocspserve:",
                      flush=True)
                ours = ours or ours_server(cores, "presigned")
                port = free_port()
                peer = bench.start(Server("cfssl ocspserve", cfssl_argv(responses, port),
                                          port, work / "cfssl.log", work), plain[0].der)
                precheck(ours.name, ours.url, plain[: args.precheck], val_plain)
                precheck(peer.name, peer.url, plain[: args.precheck], val_plain)
                # the same warm-up for both: until every worker of ours has signed each
                # answer once (CFSSL loaded its file), and as many warm-up runs for CFSSL
                runs = warm_presigned(bench, ours, plain, cores)
                for _ in range(runs):
                    bench.run_client(peer.port, plain, mode="closed", nonce=False,
                                     duration=args.presign_warmup)
                print(f"  warm-up: {runs} unmeasured runs of {args.presign_warmup:g} s on "
                      "each", flush=True)
                stats0 = ours.worker_stats(cores)
                config = Config("presigned", "pre-signed (no nonce)", "closed", False, cores,
                                Side(OURS), Side(peer.name), "≥ 1×", 1.0, False)
                configs.append(bench.alternate(config, ours, peer, plain, val_plain))
                stats1 = ours.worker_stats(cores)
                delta = {k: sum(s[k] for s in stats1.values())
                         - sum(s[k] for s in stats0.values())
                         for k in ("hits", "misses", "stale", "signed")}
                lookups = delta["hits"] + delta["misses"] + delta["stale"]
                config.extra["cache"] = dict(delta, hit_rate=delta["hits"] / lookups
                                             if lookups else float("nan"))
            bench.stop_all()
        if have["openssl"] and not args.quick:
            cost_ours.append(sign_cost_cryptography(ca.private_key, args.sign_seconds))
            cost_ssl.append(sign_cost_openssl(ca.private_key, args.sign_seconds))
    finally:
        bench.stop_all()

    c_ours = statistics.median(cost_ours)
    c_ssl = statistics.median([c for c in cost_ssl if c]) if any(cost_ssl) else None
    report["sign_cost_us"] = {"cryptography": [c * 1e6 for c in cost_ours],
                              "libcrypto": [c * 1e6 for c in cost_ssl if c]}
    for config in configs:
        for side, cost in ((config.ours, c_ours), (config.peer, c_ssl)):
            for r in side.rounds:
                sigs = r.signatures
                if sigs is None and side.name == "openssl ocsp":
                    sigs = r.answered  # OpenSSL signs every answer it gives
                if sigs is not None and cost and r.server_cpu > 0:
                    config.extra.setdefault(f"rsa_share_{side.name}", []).append(
                        sigs * cost / r.server_cpu)
        report["configs"].append({
            "key": config.key, "title": config.title, "mode": config.mode,
            "workers": config.workers, "rate": config.rate, "close": config.close,
            "goal": config.goal, "ratio": config.ratio(), "paired_ratio": config.paired(),
            "verdict": config.verdict(), "extra": config.extra,
            "ours": [dict(asdict(r), cpu_us=r.cpu_us) for r in config.ours.rounds],
            "peer": {"name": config.peer.name,
                     "rounds": [dict(asdict(r), cpu_us=r.cpu_us) for r in config.peer.rounds]},
        })
    report["validation"] = {
        "fresh": {"checked": val_fresh.checked, "problems": val_fresh.problems},
        "presigned": {"checked": val_plain.checked, "problems": val_plain.problems},
    }
    report["load_average_end"] = os.getloadavg()[0]
    print_table(configs, report, c_ours, c_ssl)
    return report


def print_table(configs: list[Config], report: dict, c_ours: float, c_ssl: float | None
                ) -> None:
    print()
    print(f"{report['cores']} cores, shared by servers, load generator and other tenants "
          f"(load average {report['load_average_start']:.2f} at the start, "
          f"{report['load_average_end']:.2f} at the end); closed loop: "
          f"{report['connections']} connections; {report['rounds']} rounds per side, "
          f"alternating; median [min–max] over rounds; ratio = ours/peer of the medians")
    header = (f"{'configuration':<34}{'ours req/s':>21}{'peer req/s':>21}{'ratio':>7}"
              f"{'p50 ms':>13}{'p99 ms':>15}{'CPU us/ans':>12}{'errors':>7}  goal")
    print(header)
    print(f"{'':<34}{'':>21}{'':>21}{'':>7}{'ours/peer':>13}{'ours/peer':>15}"
          f"{'ours/peer':>12}{'o/p':>7}")
    print("-" * (len(header) + 28))
    for c in configs:
        def cell(side: Side) -> str:
            lo, hi = side.span("rps")
            return f"{side.med('rps'):,.0f} [{lo:,.0f}–{hi:,.0f}]"
        p50 = f"{c.ours.med('p50_ms'):.2f}/{c.peer.med('p50_ms'):.2f}"
        p99 = f"{c.ours.med('p99_ms'):.1f}/{c.peer.med('p99_ms'):.1f}"
        cpu = f"{c.ours.med('cpu_us'):.0f}/{c.peer.med('cpu_us'):.0f}"
        errors = f"{c.ours.errors}/{c.peer.errors}"
        goal = f"{c.goal}: {c.verdict()}" if c.goal_ratio is not None else c.verdict()
        name = f"{c.title} vs {c.peer.name.split()[0]}"
        print(f"{name:<34}{cell(c.ours):>21}{cell(c.peer):>21}{c.ratio():>6.2f}x"
              f"{p50:>13}{p99:>15}{cpu:>12}{errors:>7}  {goal}")
    print()
    ssl_cost = f"{c_ssl * 1e6:.0f}" if c_ssl else "?"
    print(f"one RSA-2048 signature with the CA key, CPU: cryptography {c_ours * 1e6:.0f} us "
          f"(ours), system libcrypto {ssl_cost} us (what openssl ocsp runs on); medians of "
          "the measurements in this run")
    for c in configs:
        parts = []
        for side in (c.ours, c.peer):
            shares = c.extra.get(f"rsa_share_{side.name}")
            s = (f"{side.name}: server {side.med('server_cores'):.2f} cores (+ "
                 f"{side.med('server_waiting'):.2f} runnable, waiting for a core), client "
                 f"{side.med('client_cores'):.2f}")
            if shares and c.nonce:
                s += f", RSA ≈ {statistics.median(shares):.0%} of server CPU"
            parts.append(s)
        line = f"  {c.title}: " + "; ".join(parts)
        if "cache" in c.extra:
            cache = c.extra["cache"]
            line += (f"; our cache hit rate {cache['hit_rate']:.2%} ({cache['signed']} "
                     "signatures during the rounds)")
        print(line)
    for label, v in report.get("loadgen", {}).items():
        print(f"  load generator ceiling ({label}): {v['rps']:,.0f} req/s against a canned "
              f"answer, {v['client_cpu_us_per_request']:.0f} us client CPU per request")
    checked = sum(v["checked"] for v in report["validation"].values())
    problems = {k: v["problems"] for k, v in report["validation"].items() if v["problems"]}
    print(f"  answers fully validated (sample + pre-check): {checked}; problems: "
          f"{problems or 'none'}")


CONFIG_NAMES = ("loadgen", "fresh", "close", "open", "presigned")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a few seconds (1 round, short windows, small pool)")
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per side and configuration")
    p.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    p.add_argument("--only", nargs="+", choices=CONFIG_NAMES, default=None,
                   help="run only these parts (default all; --quick: loadgen fresh presigned): "
                        "loadgen = the load generator's ceiling, fresh = nonce closed loop, "
                        "close = nonce with a connection per request on both sides, open = "
                        "nonce open loop, presigned = vs CFSSL")
    p.add_argument("--workers", type=int, nargs="+", default=None,
                   help="N for the fresh-signing comparison (default: the cores, and 1)")
    p.add_argument("--open-rates", type=float, nargs="+", default=[0.5, 0.8],
                   help="open-loop rates as fractions of OpenSSL's capacity")
    p.add_argument("--max-in-flight", type=int, default=1024,
                   help="open loop: requests in flight before new ones count as dropped")
    p.add_argument("--certs", type=int, default=10_000, help="registered serials")
    p.add_argument("--pool", type=int, default=1000, help="distinct requests")
    p.add_argument("--precheck", type=int, default=200,
                   help="distinct requests sent once and validated before the rounds")
    p.add_argument("--presign-warmup", type=float, default=3.0,
                   help="seconds per unmeasured run before the pre-signed rounds")
    p.add_argument("--first", type=int, default=20, help="fully validate the first N answers")
    p.add_argument("--every", type=int, default=50, help="... and every N-th after them")
    p.add_argument("--sign-seconds", type=float, default=1.0,
                   help="seconds spent timing one RSA signature on each side")
    p.add_argument("--allow-missing-peer", action="store_true",
                   help="run what can be run when openssl or cfssl is missing")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    p.add_argument("--encoders", action="store_true",
                   help="only time the response encoders (asn1crypto / own DER / cryptography)"
                        ", the measurement cited in workbench/pki/ocsp.py, and exit")
    p.add_argument("--client", default=None, help=argparse.SUPPRESS)
    p.add_argument("--trivial-server", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client is not None:
        return client_main(args.client)
    if args.trivial_server is not None:
        return trivial_server_main(int(args.trivial_server[0]), args.trivial_server[1])
    if args.encoders:
        with tempfile.TemporaryDirectory(prefix="ocsp-encoders-") as tmp:
            store = build_authority(Path(tmp), 10, random.Random(1))
            try:
                encoder_measurement(store)
            finally:
                store.close()
        return 0
    if args.quick:
        args.duration, args.warmup, args.rounds = 0.5, 0.2, 1
        args.precheck, args.presign_warmup, args.sign_seconds = 10, 0.5, 0.2
        args.pool, args.certs = 100, 1000
        args.only = args.only or ["loadgen", "fresh", "presigned"]
    args.only = args.only or list(CONFIG_NAMES)
    began = time.monotonic()
    try:
        have = check_peers(args)
    except PeerMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with tempfile.TemporaryDirectory(prefix="ocsp-load-") as tmp:
        os.chmod(tmp, 0o700)
        try:
            report = run(args, Path(tmp), have)
        except KeyboardInterrupt:
            print("interrupted; every server started was stopped", file=sys.stderr)
            return 130
    report["missing_peers"] = [k for k, v in have.items() if not v]
    report["elapsed_s"] = time.monotonic() - began
    print(f"(the whole run took {report['elapsed_s']:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"figures written to {args.json}")
    if report["missing_peers"]:
        print(f"PEER MISSING, not compared: {report['missing_peers']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

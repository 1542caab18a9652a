"""Relying services as servers: they hand out challenges, check a signature made on the phone
(or the card), and check the certificate the way a relying party does (smartphone-service.md
11): the chain to the authority's roots, the validity at the calendar moment, the certificate
kind the service asks for, the service's start date, and revocation through OCSP or a CRL.

The revocation information travels over the wire like everything else (recorded as server
side, since it happens inside the service's handler): OCSP requests (no nonce, as most
relying parties send them; RFC 6960 allows both) to the authority's responder, CRL downloads
from the repository path named in the certificate's distribution point. A CRL is kept until
its nextUpdate or until ``crl_cache`` has passed since it was fetched, whichever comes first
(11.3: "CRL files updated periodically"), so a revocation reaches a CRL-checking service only
with the next publication it downloads. Validation itself is
:func:`workbench.pki.verify.verify_certificate` (pyhanko-certvalidator), fed the DER.

:class:`Reader` is the external reader of a clinic or a convenience-store copier: it talks to
the phone over RF in card emulation, the PIN typed on the reader (11.1, 15.3).
"""

from __future__ import annotations

import base64
import hashlib
import html
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from workbench.client import JpkiClient
from workbench.errors import PkiError
from workbench.lifecycle.actors import Phone, Result, RfLink, Secret, secret
from workbench.lifecycle.services import RelyingService, available
from workbench.lifecycle.wire import HttpHandler, Wire
from workbench.pki import AuthorityStore
from workbench.pki.clock import jst_date
from workbench.pki.verify import Outcome, RevocationData, verify_certificate

__all__ = ["REPOSITORY", "Reader", "RelyingParty", "Verdict", "repository_handler"]

#: The host name of the authority's repository (OCSP responder and CRLs) on the wire.
REPOSITORY = "repository"


@dataclass(frozen=True)
class Verdict:
    """A relying party's decision: accepted or not, one line why, the verification outcome."""

    accepted: bool
    reason: str
    outcome: str
    revocation: str

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason, "outcome": self.outcome,
                "revocation": self.revocation}

    def __str__(self) -> str:
        how = "" if self.revocation in ("", "none") else f" (checked by {self.revocation.upper()})"
        return f"{'accepted' if self.accepted else 'refused'}: {self.reason}{how}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.accepted else "#b42318"
        return (f"<span style='color:{colour}'><b>{'accepted' if self.accepted else 'refused'}"
                f"</b></span>: {html.escape(self.reason)}"
                + ("" if self.revocation in ("", "none")
                   else f" <i>(checked by {html.escape(self.revocation.upper())})</i>"))


def repository_handler(store: AuthorityStore, respond: Callable[[bytes], bytes]) -> HttpHandler:
    """The repository's handler: ``POST /ocsp`` ``{"request": hex}`` → ``{"response": hex}``,
    ``GET /crl/{h}/g{N}/{partition}.crl`` → ``{"crl": hex, "this_update", "next_update"}``
    (the publication in force at the store's clock)."""

    def handle(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            if method == "POST" and path == "/ocsp":
                return 200, {"response": respond(bytes.fromhex(body["request"])).hex()}
            parts = [p for p in path.split("/") if p]
            if method == "GET" and len(parts) in (3, 4) and parts[0] == "crl":
                generation = int(parts[2].lstrip("g").removesuffix(".crl"))
                partition = parts[3].removesuffix(".crl") if len(parts) == 4 else None
                crl = store.publish(parts[1], generation, partition, store.clock.now())
                return 200, {"crl": crl.der.hex(), "this_update": crl.this_update.isoformat(),
                             "next_update": crl.next_update.isoformat()}
        except (PkiError, KeyError, ValueError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": f"no such resource {method} {path}"}

    return handle


class RelyingParty:
    """One relying service's server (module docstring): its :class:`RelyingService` record,
    the revocation method (``"ocsp"`` or ``"crl"``, default the record's), the CRL cache time
    (default: keep a CRL until its nextUpdate) and the validation policy. ``seed`` makes its
    challenges reproducible (demos; a real service draws them from the OS)."""

    def __init__(self, spec: RelyingService, *, store: AuthorityStore, wire: Wire,
                 repository: HttpHandler, revocation: str | None = None,
                 crl_cache: timedelta | None = None, policy: str = "hard-fail",
                 seed: bytes | None = None) -> None:
        self.spec = spec
        self.key = spec.key
        self.revocation = revocation or spec.revocation_check
        if self.revocation not in ("ocsp", "crl"):
            raise PkiError(f"revocation must be 'ocsp' or 'crl', not {self.revocation!r}")
        self.crl_cache = crl_cache
        self.policy = policy
        self._store = store
        self._wire = wire
        self._repository = repository
        self._challenges: dict[str, bytes] = {}
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._crls: dict[str, tuple[datetime, PublishedCrlLike]] = {}
        self._roots = store.authority.ca_certificates()

    def __repr__(self) -> str:
        return f"RelyingParty({self.key!r}, {self.revocation})"

    # -- the service's API ------------------------------------------------------------------

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            if method == "POST" and path == "/challenge":
                challenge_id = self._rng.randbytes(8).hex()
                nonce = self._rng.randbytes(32)
                self._challenges[challenge_id] = nonce
                return 200, {"challenge_id": challenge_id, "nonce": nonce.hex()}
            if method == "POST" and path in ("/login", "/sign"):
                nonce = self._challenges.pop(str(body["challenge_id"]), None)
                if nonce is None:
                    return 409, {"error": "unknown or used challenge"}
                cert = x509.load_der_x509_certificate(base64.b64decode(body["certificate"]))
                signature = base64.b64decode(body["signature"])
                if path == "/login":
                    signed = nonce
                else:
                    signed = nonce + base64.b64decode(body["document"])
                usage = "auth" if path == "/login" else "sign"
                return 200, self.check(cert, usage=usage, signed=signed,
                                       signature=signature).as_dict()
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"error": f"malformed request: {exc}"}
        return 404, {"error": f"no such endpoint {method} {path}"}

    # -- the checks -----------------------------------------------------------------------

    def check(self, cert: x509.Certificate, *, usage: str, signed: bytes | None = None,
              signature: bytes | None = None) -> Verdict:
        """Everything a relying party checks, first failure wins (module docstring)."""
        now = self._store.clock.now()
        ok, why = available(self.spec, jst_date(now))
        if not ok:
            return Verdict(False, f"not-started: {why}", "not_started", "none")
        if usage != self.spec.certificate:
            return Verdict(False, f"wrong-certificate: {self.spec.name_en} asks for the "
                           f"{self.spec.certificate} certificate", "wrong_usage", "none")
        if signed is not None and signature is not None:
            key = cert.public_key()
            try:
                assert isinstance(key, rsa.RSAPublicKey)
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, AssertionError):
                return Verdict(False, "bad-signature: the signature does not verify with the "
                               "certificate", "bad_signature", "none")
        data = self._revocation_data(cert, now)
        result = verify_certificate(cert, authority_roots=self._roots, at=now,
                                    revocation=self.revocation, policy=self.policy, fetch=data,
                                    usage=usage)
        if result.ok:
            return Verdict(True, "valid", result.outcome.value, self.revocation)
        if result.outcome is Outcome.REVOKED and result.reason is not None:
            why = f"revoked ({result.reason.value})"
        elif result.outcome is Outcome.ON_HOLD:
            why = "on hold (certificateHold)"
        else:
            why = f"{result.outcome.value.replace('_', '-')}: {result.message}"
        return Verdict(False, why, result.outcome.value, self.revocation)

    def _revocation_data(self, cert: x509.Certificate, now: datetime) -> RevocationData:
        if self.revocation == "ocsp":
            issuer = self._store.authority.ca_for(cert).certificate
            request = ocsp.OCSPRequestBuilder().add_certificate(
                cert, issuer, hashes.SHA1()).build().public_bytes(Encoding.DER)
            status, answer = self._wire.http("POST", REPOSITORY, "/ocsp",
                                             {"request": request.hex()}, self._repository,
                                             device=f"rp:{self.key}")
            if status != 200:
                return RevocationData()
            return RevocationData(ocsp_responses=(bytes.fromhex(answer["response"]),))
        path = _crl_path(cert)
        cached = self._crls.get(path)
        if cached is not None:
            fetched, crl = cached
            fresh = now < crl.next_update and (self.crl_cache is None
                                               or now - fetched < self.crl_cache)
            if fresh:
                return RevocationData(crls=(crl.der,))
        status, answer = self._wire.http("GET", REPOSITORY, path, {}, self._repository,
                                         device=f"rp:{self.key}")
        if status != 200:
            return RevocationData()
        crl = PublishedCrlLike(bytes.fromhex(answer["crl"]),
                               datetime.fromisoformat(answer["next_update"]))
        self._crls[path] = (now, crl)
        return RevocationData(crls=(crl.der,))

    def forget_crls(self) -> None:
        """Drop cached CRLs (the next check downloads the publication in force)."""
        self._crls.clear()


@dataclass(frozen=True)
class PublishedCrlLike:
    """What a relying party keeps of a downloaded CRL."""

    der: bytes
    next_update: datetime


def _crl_path(cert: x509.Certificate) -> str:
    """The repository path of the certificate's CRL, from its HTTP distribution point."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        raise PkiError("the certificate names no CRL distribution point") from None
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                return urlparse(name.value).path
    raise PkiError("the certificate's CRL distribution point has no HTTP URL (the simulation "
                   "profile sets repository_url)")


class Reader:
    """An external reader at a clinic or a convenience-store copier (module docstring)."""

    def __init__(self, party: RelyingParty, wire: Wire, name: str | None = None) -> None:
        self.party = party
        self.wire = wire
        self.device = name or f"reader:{party.key}"

    def use(self, phone: Phone, pin: Secret | str | None = None) -> Result:
        """The phone held to the reader; the auth PIN typed on the reader; the reader signs
        the service's challenge with the phone and the service decides."""
        if phone.se is None:
            return Result.refused(f"{phone.model.model} has no GP-SE")
        value = secret(pin or phone.owner.phone_pin)
        status, ch = self.wire.http("POST", self.party.key, "/challenge", {}, self.party.handle,
                                    device=self.device)
        link = RfLink(self.wire, phone.se, self.device)
        link.connect()
        try:
            client = JpkiClient(link)
            cert = client.read_certificate_der("auth", pin=value.reveal())
            signature = client.sign(digest=hashlib.sha256(bytes.fromhex(ch["nonce"])).digest(),
                                    key="auth")
        finally:
            link.disconnect()
        status, verdict = self.wire.http("POST", self.party.key, "/login", {
            "challenge_id": ch["challenge_id"], "certificate": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode()}, self.party.handle,
            device=self.device)
        if status != 200:
            return Result.refused(str(verdict.get("error")))
        if verdict["accepted"]:
            return Result.success(revocation=verdict["revocation"])
        return Result.refused(verdict["reason"], revocation=verdict["revocation"])

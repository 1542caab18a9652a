"""Relying-party verification of a JPKI certificate, as a bank, eKYC vendor or clinic does it.

A relying party (署名検証者 / 利用者証明検証者, smartphone-service.md 11.2) checks a signing or
user-authentication certificate against the authority's roots of every generation
(jpki-card.md 9.2: three generations share one DN, so the key decides), at a chosen moment, and
against revocation information from CRLs (periodic) or OCSP (real time) (11.3). Path building
and validation (RFC 5280 section 6), CRL processing (6.3) and OCSP response checking (RFC 6960
3.2, 4.2.2.2) are done by pyhanko-certvalidator; this module chooses its policy, fetches or
accepts the revocation data and turns its exceptions into one :class:`VerificationResult`
that says why.

:func:`verify_certificate` never raises because a certificate is bad: expiry, revocation, a
hold, an OCSP "unknown", a broken chain and missing revocation data are all results. Only API
misuse (no roots, an unknown mode, a naive datetime) raises :class:`VerifyArgumentError`.

Policies: ``"hard-fail"`` treats unavailable or stale revocation information as a failure;
``"soft-fail"`` accepts the certificate with a warning when everything else is fine but the
revocation status could not be established. An OCSP answer "unknown" is an answer, not missing
information: the authority says it did not issue that serial, so it is never accepted
(RFC 6960 2.2 lets a client treat it as it sees fit; a JPKI verifier cannot accept a
certificate the authority disowns).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from workbench.errors import PkiError
from workbench.pki.clock import as_utc
from workbench.pki.ocsp import public_key_bits
from workbench.pki.profiles import Hierarchy
from workbench.pki.status import RevocationReason

__all__ = [
    "Outcome",
    "RevocationData",
    "VerificationResult",
    "VerifyArgumentError",
    "averify_certificate",
    "verify_certificate",
]

log = logging.getLogger(__name__)

REVOCATION_MODES = ("crl", "ocsp", "none")
POLICIES = ("hard-fail", "soft-fail")
USAGES = ("sign", "auth")

#: Key usage a relying party requires (jpki-card.md 9.4: signing = digitalSignature +
#: nonRepudiation; 9.6: authentication = digitalSignature).
_KEY_USAGE = {
    "sign": {"digital_signature", "non_repudiation"},
    "auth": {"digital_signature"},
}

_RULES = {
    "crl": RevocationCheckingRule.CRL_REQUIRED,
    "ocsp": RevocationCheckingRule.OCSP_REQUIRED,
    "none": RevocationCheckingRule.NO_CHECK,
}

#: Placeholder OCSP location declared for certificates without AIA when OCSP responses are
#: given as data (see :func:`_declaring_ocsp`); never fetched.
_GIVEN_OCSP_URL = "http://ocsp.given-as-data.invalid/"


class VerifyArgumentError(PkiError, ValueError):
    """verify_certificate was called wrongly (not: the certificate is bad)."""


class Outcome(StrEnum):
    """Why a certificate was accepted or refused."""

    OK = "ok"
    EXPIRED = "expired"  # after Not After of the certificate or a CA in its path
    NOT_YET_VALID = "not_yet_valid"  # before Not Before
    REVOKED = "revoked"  # revoked for good (reason and time in the result)
    ON_HOLD = "on_hold"  # revoked with reason certificateHold (一時利用停止)
    UNKNOWN = "unknown"  # the authority's OCSP responder does not know the serial
    CHAIN_BROKEN = "chain_broken"  # no valid path to one of the roots (signature, issuer, ...)
    WRONG_USAGE = "wrong_usage"  # key usage or hierarchy does not fit the requested usage
    REVOCATION_UNAVAILABLE = "revocation_unavailable"  # no usable CRL / OCSP response


@dataclass(frozen=True)
class RevocationData:
    """Revocation information the caller already has (DER), instead of fetching it."""

    crls: tuple[bytes, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for what in ("crls", "ocsp_responses"):
            value = getattr(self, what)
            if isinstance(value, bytes | bytearray):
                raise VerifyArgumentError(f"{what} is a list of DER blobs, not one blob")
            items = tuple(value)
            if not all(isinstance(v, bytes | bytearray) for v in items):
                raise VerifyArgumentError(f"{what} must contain DER bytes")
            object.__setattr__(self, what, tuple(bytes(v) for v in items))


@dataclass(frozen=True)
class VerificationResult:
    """One verification's answer: :attr:`ok` and, whatever the answer, why.

    ``reason``/``revoked_at`` are set for REVOKED and ON_HOLD; ``warnings`` carries what a
    soft-fail policy forgave; ``chain`` is the validated path, root first, when one was found.
    """

    outcome: Outcome
    message: str
    at: datetime
    usage: str | None
    revocation: str
    policy: str
    reason: RevocationReason | None = None
    revoked_at: datetime | None = None
    warnings: tuple[str, ...] = ()
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True if the relying party may accept the certificate (possibly with warnings)."""
        return self.outcome is Outcome.OK

    def __str__(self) -> str:
        text = f"{self.outcome.value}: {self.message}"
        if self.warnings:
            text += " (warnings: " + "; ".join(self.warnings) + ")"
        return text

    def __repr__(self) -> str:
        extra = f", reason={self.reason.value}" if self.reason else ""
        return (f"VerificationResult({self.outcome.value}{extra}, at={self.at.isoformat()}, "
                f"revocation={self.revocation}, policy={self.policy})")

    def _repr_html_(self) -> str:
        """A small table for notebooks: outcome, why, when, how it was checked."""
        import html

        colour = "#54A24B" if self.ok else "#E45756"
        rows = [("outcome", f'<b style="color:{colour}">{html.escape(self.outcome.value)}</b>'),
                ("why", html.escape(self.message)),
                ("checked at", html.escape(self.at.isoformat())),
                ("revocation", html.escape(f"{self.revocation} ({self.policy})"))]
        if self.usage:
            rows.append(("usage", html.escape(self.usage)))
        if self.reason is not None:
            rows.append(("reason", html.escape(self.reason.value)))
        if self.revoked_at is not None:
            rows.append(("since", html.escape(self.revoked_at.isoformat())))
        for warning in self.warnings:
            rows.append(("warning", html.escape(warning)))
        if self.chain:
            rows.append(("chain", html.escape(" → ".join(
                c.subject.rfc4514_string() for c in self.chain))))
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>"
                       f"{v}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


# -- argument handling ----------------------------------------------------------------------------

def _load_certificate(value: object, what: str) -> x509.Certificate:
    if isinstance(value, x509.Certificate):
        return value
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise VerifyArgumentError(f"{what} is not a DER or PEM certificate ({exc})") from None
    raise VerifyArgumentError(f"{what} must be an x509.Certificate or DER/PEM bytes, not "
                              f"{type(value).__name__}")


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise VerifyArgumentError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class _DeclaredOcspCertificate(asn1_x509.Certificate):
    """The same certificate, but declaring an OCSP access location it does not carry.

    pyhanko-certvalidator only considers OCSP for certificates whose AIA names a responder.
    Real JPKI certificates carry no AIA (jpki-card.md 9.7): registered verifiers learn where to
    ask from J-LIS, not from the certificate. When the caller hands over OCSP responses as
    data, this view lets them be used. Only the parsed AIA value changes; the DER, and so
    every signature check, stays that of the real certificate.
    """

    _declared_aia: asn1_x509.AuthorityInfoAccessSyntax | None = None

    @property
    def authority_information_access_value(self) -> asn1_x509.AuthorityInfoAccessSyntax | None:
        own = super().authority_information_access_value
        if own is not None and any(e["access_method"].native == "ocsp" for e in own):
            return own
        return self._declared_aia


def _declaring_ocsp(cert: x509.Certificate, url: str) -> asn1_x509.Certificate:
    view = _DeclaredOcspCertificate.load(cert.public_bytes(Encoding.DER))
    view._declared_aia = asn1_x509.AuthorityInfoAccessSyntax([{
        "access_method": "ocsp",
        "access_location": asn1_x509.GeneralName(name="uniform_resource_identifier", value=url),
    }])
    return view


def _has_ocsp_url(cert: x509.Certificate) -> bool:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == x509.AuthorityInformationAccessOID.OCSP for d in aia)


# -- running coroutines from sync code ------------------------------------------------------------

_T = TypeVar("_T")


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to completion from synchronous code, even inside a running loop.

    A Jupyter kernel already runs an event loop in the main thread, where ``asyncio.run``
    refuses to start; then the coroutine runs on a worker thread with its own loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# -- the public functions ----------------------------------------------------------------------------

def verify_certificate(
    cert: x509.Certificate | bytes,
    *,
    authority_roots: Iterable[x509.Certificate | bytes],
    at: datetime | None = None,
    revocation: str = "ocsp",
    policy: str = "hard-fail",
    fetch: str | RevocationData = "http",
    usage: str | None = None,
    timeout: float = 10.0,
) -> VerificationResult:
    """Verify ``cert`` as a relying party would, at ``at`` (default: now).

    - ``authority_roots``: the trusted roots, every generation of the hierarchy (or of both);
      e.g. ``authority.ca_certificates()``.
    - ``revocation``: ``"ocsp"`` (RFC 6960), ``"crl"`` (RFC 5280 6.3) or ``"none"``.
    - ``policy``: ``"hard-fail"`` or ``"soft-fail"`` (see the module docstring).
    - ``fetch``: ``"http"`` fetches from the URLs in the certificate (AIA OCSP, CRLDP URI: an
      authority profile with ``repository_url`` puts them there); a :class:`RevocationData`
      supplies CRLs and OCSP responses as DER and nothing is fetched.
    - ``usage``: ``"sign"`` (署名用: digitalSignature + nonRepudiation, signing hierarchy) or
      ``"auth"`` (利用者証明用: digitalSignature, authentication hierarchy); ``None`` checks
      only digitalSignature.

    The validation moment is ``at`` for the certificates *and* for the revocation data: a
    response or CRL issued after ``at`` is not used (so revocation is judged as of ``at``), and
    one whose nextUpdate has passed is stale.
    """
    return _run(averify_certificate(
        cert, authority_roots=authority_roots, at=at, revocation=revocation, policy=policy,
        fetch=fetch, usage=usage, timeout=timeout))


async def averify_certificate(
    cert: x509.Certificate | bytes,
    *,
    authority_roots: Iterable[x509.Certificate | bytes],
    at: datetime | None = None,
    revocation: str = "ocsp",
    policy: str = "hard-fail",
    fetch: str | RevocationData = "http",
    usage: str | None = None,
    timeout: float = 10.0,
) -> VerificationResult:
    """:func:`verify_certificate` for callers that already run an event loop."""
    ee = _load_certificate(cert, "cert")
    if isinstance(authority_roots, x509.Certificate | bytes | bytearray):
        raise VerifyArgumentError("authority_roots is a list of root certificates (every "
                                  "generation), not a single certificate")
    roots = [_load_certificate(r, "an authority root") for r in authority_roots]
    if not roots:
        raise VerifyArgumentError("authority_roots is empty; pass the authority's root "
                                  "certificates of every generation (Authority.ca_certificates())")
    try:
        moment = as_utc(at, "at") if at is not None else datetime.now(UTC)
    except PkiError as exc:
        raise VerifyArgumentError(str(exc)) from None
    _choice(revocation, REVOCATION_MODES, "revocation")
    _choice(policy, POLICIES, "policy")
    if usage is not None:
        _choice(usage, USAGES, "usage")
    if not (fetch == "http" or isinstance(fetch, RevocationData)):
        raise VerifyArgumentError("fetch must be 'http' or a RevocationData with DER CRLs/OCSP "
                                  f"responses; got {fetch!r}")
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise VerifyArgumentError("timeout must be a positive number of seconds")

    job = _Job(ee, roots, moment, revocation, policy, fetch, usage, float(timeout))
    result = await job.validate(revocation)
    if (result.outcome is Outcome.REVOCATION_UNAVAILABLE and policy == "soft-fail"):
        rest = await job.validate("none")
        if rest.ok:
            return job.result(Outcome.OK, "valid; revocation status not established "
                              "(soft-fail)", chain=rest.chain, warnings=(result.message,))
        return rest
    return result


@dataclass
class _Job:
    """One verification: the arguments, and the OCSP responses seen (to recognise 'unknown')."""

    ee: x509.Certificate
    roots: list[x509.Certificate]
    at: datetime
    revocation: str
    policy: str
    fetch: str | RevocationData
    usage: str | None
    timeout: float
    seen_ocsp: list[bytes] = field(default_factory=list)
    fetchers: Any = None  # pyhanko Fetchers of the current attempt, when fetching

    def result(self, outcome: Outcome, message: str, **kw: Any) -> VerificationResult:
        return VerificationResult(outcome, message, self.at, self.usage, self.revocation,
                                  self.policy, **kw)

    def _policy(self, mode: str) -> CertRevTrustPolicy:
        # The roots are trust anchors and JPKI has no intermediate CAs (jpki-card.md 9.2), so
        # only the end-entity certificate's status is asked for.
        return CertRevTrustPolicy(RevocationCheckingPolicy(
            ee_certificate_rule=_RULES[mode],
            intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
        ))

    async def validate(self, mode: str) -> VerificationResult:
        backend = None
        ee = _asn1(self.ee)
        kwargs: dict[str, Any] = {}
        if mode != "none":
            if isinstance(self.fetch, RevocationData):
                kwargs["crls"] = list(self.fetch.crls)
                kwargs["ocsps"] = list(self.fetch.ocsp_responses)
                self.seen_ocsp = list(self.fetch.ocsp_responses)
                if mode == "ocsp" and not _has_ocsp_url(self.ee):
                    ee = _declaring_ocsp(self.ee, _GIVEN_OCSP_URL)
            else:
                backend = AIOHttpFetcherBackend(per_request_timeout=self.timeout)
                self.fetchers = backend.get_fetchers()
                kwargs["allow_fetching"] = True
                kwargs["fetchers"] = self.fetchers
        context = ValidationContext(
            trust_roots=[_asn1(r) for r in self.roots],
            moment=self.at,
            revinfo_policy=self._policy(mode),
            time_tolerance=timedelta(seconds=1),
            **kwargs,
        )
        try:
            return await self._validate(context, ee, mode)
        finally:
            self.fetchers = None
            if backend is not None:
                await backend.close()

    async def _validate(self, context: ValidationContext, ee: asn1_x509.Certificate,
                        mode: str) -> VerificationResult:
        validator = CertificateValidator(ee, validation_context=context)
        try:
            path = await validator.async_validate_path()
        except RevokedError as exc:
            reason = _reason(exc.reason)
            when = as_utc(exc.revocation_dt, "revocation time")
            outcome = (Outcome.ON_HOLD if reason is RevocationReason.CERTIFICATE_HOLD
                       else Outcome.REVOKED)
            what = "on hold (certificateHold)" if outcome is Outcome.ON_HOLD else (
                f"revoked ({reason.value})")
            return self.result(outcome, f"{what} since {when.isoformat()}, according to "
                               f"{'OCSP' if 'OCSP' in str(exc) else 'the CRL'}",
                               reason=reason, revoked_at=when)
        except ExpiredError as exc:
            return self.result(Outcome.EXPIRED, exc.failure_msg)
        except NotYetValidError as exc:
            return self.result(Outcome.NOT_YET_VALID, exc.failure_msg)
        except InsufficientRevinfoError as exc:
            if mode == "ocsp" and self._authentic_unknown():
                return self.result(Outcome.UNKNOWN, "the authority's OCSP responder answered "
                                   "'unknown': it did not issue this certificate")
            return self.result(Outcome.REVOCATION_UNAVAILABLE, exc.failure_msg)
        except DisallowedAlgorithmError as exc:
            return self.result(Outcome.CHAIN_BROKEN, exc.failure_msg)
        except (PathBuildingError, InvalidCertificateError) as exc:
            return self.result(Outcome.CHAIN_BROKEN, f"no path to a trusted root: {exc}")
        except PathValidationError as exc:
            return self.result(Outcome.CHAIN_BROKEN, exc.failure_msg)
        except ValidationError as exc:
            return self.result(Outcome.CHAIN_BROKEN, exc.failure_msg)
        chain = tuple(x509.load_der_x509_certificate(c.dump())
                      for c in path.iter_certs(include_root=True))
        wrong = self._usage_problem()
        if wrong is not None:
            return self.result(Outcome.WRONG_USAGE, wrong, chain=chain)
        checked = {"ocsp": "OCSP says good", "crl": "not on the CRL",
                   "none": "revocation not checked"}[mode]
        return self.result(Outcome.OK, f"valid at {self.at.isoformat()}; {checked}",
                           chain=chain)

    def _usage_problem(self) -> str | None:
        if self.usage is None:
            required = {"digital_signature"}
        else:
            required = _KEY_USAGE[self.usage]
            ou = Hierarchy(self.usage).organizational_unit
            ous = {a.value for a in self.ee.issuer.get_attributes_for_oid(
                x509.NameOID.ORGANIZATIONAL_UNIT_NAME)}
            if ou not in ous:
                return (f"issued by a CA outside the {self.usage} hierarchy (issuer OU "
                        f"{sorted(ous)}; jpki-card.md 9.2)")
        try:
            ku = self.ee.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return "the certificate has no KeyUsage (jpki-card.md 9.4, 9.6 require it)"
        have = {"digital_signature": ku.digital_signature,
                "non_repudiation": ku.content_commitment}
        missing = sorted(k for k in required if not have.get(k, False))
        if missing:
            return f"KeyUsage lacks {', '.join(missing)} needed for {self.usage or 'signatures'}"
        return None

    def _authentic_unknown(self) -> bool:
        """Did a correctly signed, current response from the issuer's responder say unknown?

        pyhanko-certvalidator treats "unknown" as "no usable response" without saying so; this
        check tells the two apart for the result (RFC 6960 2.2, 4.2.2.2).
        """
        issuers = [r for r in self.roots if r.subject == self.ee.issuer]
        seen = list(self.seen_ocsp)
        if self.fetchers is not None:
            seen += [r.dump() for r in self.fetchers.ocsp_fetcher.fetched_responses()]
        for der in seen:
            try:
                response = ocsp.load_der_ocsp_response(der)
                if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                    continue
                for single in response.responses:
                    if single.serial_number != self.ee.serial_number:
                        continue
                    if single.certificate_status is not ocsp.OCSPCertStatus.UNKNOWN:
                        continue
                    for issuer in issuers:
                        if _responder_authorized(response, issuer) and _current(
                                single, self.at):
                            return True
            except (ValueError, TypeError):
                continue
        return False


def _reason(value: asn1_crl.CRLReason) -> RevocationReason:
    native = value.native if value is not None else None
    if native is None:
        return RevocationReason.UNSPECIFIED
    for member in RevocationReason:
        if member.value.lower() == native.replace("_", "").lower():
            return member
    return RevocationReason.UNSPECIFIED


def _current(single: ocsp.OCSPSingleResponse, at: datetime) -> bool:
    slack = timedelta(seconds=1)
    if single.this_update_utc > at + slack:
        return False
    return single.next_update_utc is None or at <= single.next_update_utc + slack


def _responder_authorized(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Signed by ``issuer`` itself or by a responder it certified for OCSP (4.2.2.2)."""
    candidates = [issuer]
    for cert in response.certificates:
        try:
            cert.verify_directly_issued_by(issuer)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
            candidates.append(cert)
    for signer in candidates:
        key_hash = hashlib.sha1(public_key_bits(signer)).digest()
        if response.responder_key_hash not in (None, key_hash):
            continue
        if response.responder_name is not None and response.responder_name != signer.subject:
            continue
        key = signer.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or response.signature_hash_algorithm is None:
            continue
        try:
            key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
                       response.signature_hash_algorithm)
        except InvalidSignature:
            continue
        return True
    return False

"""The simulated J-LIS issuing side: CA generations, end-entity issuance, card issuer keys.

:class:`Authority` holds the root CAs of both JPKI hierarchies (署名用 / 利用者証明用) in all
configured generations (jpki-card.md 9.2) and issues the card's signing and user-authentication
certificates (9.3–9.7) plus, for the phone token, the same profiles with the card's validity
(smartphone-service.md 6). It also keeps the issuer keys of the text and surface APs, which sign
the integrity records and card-verifiable certificates (jpki-card.md 3.3 EF 0003/0004, 3.4).

With a seed, every CA key, CA serial and issuer key is reproducible, so notebooks and golden
files see byte-identical CA certificates. Revocation is deliberately not here: the registry
(:mod:`workbench.pki.registry`) records what :meth:`Authority.issue_certificate` made, CRLs are
built in :mod:`workbench.pki.crl`, and :mod:`workbench.pki.store` keeps an authority on disk.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from workbench.errors import PkiError
from workbench.pki.clock import Clock, SystemClock, as_utc, end_of_day_jst, jst_date
from workbench.pki.drbg import HashStream
from workbench.pki.holder import Holder
from workbench.pki.keys import derive_seed, generate_rsa_key
from workbench.pki.profiles import (
    DEFAULT_GENERATIONS,
    OCSP_PATH,
    OID_ADDRESS,
    OID_ADDRESS_FLAGS,
    OID_BIRTH_DATE,
    OID_NAME,
    OID_NAME_FLAGS,
    OID_SEX,
    OU_CRL_DISTRIBUTION_POINTS,
    AuthorityProfile,
    Generation,
    Hierarchy,
    arl_path,
    certificate_not_after,
    crl_path,
)
from workbench.pki.profiles import card_expiry as card_expiry_rule

__all__ = [
    "DEFAULT_AUTHORITY_SEED",
    "DEFAULT_GENERATIONS",
    "DEFAULT_PROFILE",
    "TOKENS",
    "Authority",
    "CertificateAuthority",
    "Generation",
    "Hierarchy",
]

#: Seed of the default authority: every ``Authority()`` has the same (synthetic, test-only) CAs.
DEFAULT_AUTHORITY_SEED = "jpki-workbench default authority (synthetic, test only)"

DEFAULT_PROFILE = AuthorityProfile()

#: Token profiles a certificate can be issued for: plastic card, Android GP-SE (jpki-card.md 8).
TOKENS = ("icc", "gpse")

#: Key-id prefixes of the test-card issuer keys of the text and surface APs (jpki-card.md 3.3
#: EF 0004, 3.4 EF 0004); production cards use 5000033 / 5000023, never used here. "root" is
#: MODEL: the key that certifies those two issuer keys in the card-verifiable certificates
#: (the spec names a certifier key id but not its value); its prefix is invented.
CV_ISSUER_KEY_ID_PREFIX = {"text": b"6000033", "surface": b"6000023", "root": b"6000000"}
CV_KEY_ID_LENGTH = 16

_IDENTIFIER_ALPHABET = string.digits + string.ascii_uppercase


class RandomSource(Protocol):
    """What an ``rng`` must offer: :class:`random.Random` and ``HashStream`` both do."""

    def choice(self, seq: str) -> str: ...  # pragma: no cover - protocol

    def getrandbits(self, k: int) -> int: ...  # pragma: no cover - protocol


@dataclass(repr=False)
class CertificateAuthority:
    """One root CA: a hierarchy in one generation, with its key and self-signed certificate."""

    hierarchy: Hierarchy
    generation: Generation
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def name(self) -> x509.Name:
        """The CA DN; identical for all generations of a hierarchy (jpki-card.md 9.2)."""
        return self.certificate.subject

    @property
    def key_identifier(self) -> bytes:
        """The SubjectKeyIdentifier: what tells same-DN generations apart (9.2)."""
        ext = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ext.value.digest

    def __repr__(self) -> str:
        return (f"CertificateAuthority({self.hierarchy.value}, generation "
                f"{self.generation.number}, ski={self.key_identifier.hex()})")


def _utf8_der(value: str) -> bytes:
    """DER of a UTF8String: the inner value of an otherName's ``[0] EXPLICIT`` (9.5)."""
    return asn1.UTF8String(value).dump()


def _key_usage(*, digital_signature: bool = False, non_repudiation: bool = False,
               cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _coerce_hierarchy(hierarchy: Hierarchy | str) -> Hierarchy:
    try:
        return Hierarchy(hierarchy)
    except ValueError:
        raise PkiError(f"hierarchy must be 'sign' or 'auth', got {hierarchy!r}") from None


def _random_serial(size: int, rng: RandomSource | None) -> int:
    """Positive serial of at most ``size`` bytes with the top bit clear (no DER sign octet)."""
    while True:
        value = (rng.getrandbits(8 * size - 1) if rng is not None
                 else secrets.randbits(8 * size - 1))
        if value:
            return value


class Authority:
    """The simulated issuing authority (J-LIS's role), fully synthetic.

    ``seed`` (bytes, int or str) makes CA keys, CA serials and card issuer keys deterministic;
    ``None`` uses fresh randomness. CA key pairs are created lazily per (hierarchy, generation)
    and cached, because each costs ~0.1–0.5 s. ``clock`` supplies "now" when a method is not
    given an explicit ``at``.
    """

    def __init__(
        self,
        seed: bytes | int | str | None = DEFAULT_AUTHORITY_SEED,
        profile: AuthorityProfile = DEFAULT_PROFILE,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(profile, AuthorityProfile):
            raise PkiError(f"profile must be an AuthorityProfile, not {type(profile).__name__}")
        if seed is not None:
            derive_seed(seed)  # reject unusable seeds now, not at the first lazy key
        self._seed = seed
        self.profile = profile
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._cas: dict[tuple[Hierarchy, int], CertificateAuthority] = {}
        self._cv_issuers: dict[str, tuple[bytes, rsa.RSAPrivateKey]] = {}

    @property
    def seeded(self) -> bool:
        """True if this authority's keys and CA serials are reproducible."""
        return self._seed is not None

    def __repr__(self) -> str:
        gens = [g.number for g in self.profile.generations]
        return (f"Authority(seeded={self.seeded}, organization={self.profile.organization!r}, "
                f"policy_set={self.profile.policy_set!r}, generations={gens})")

    # -- deterministic material ------------------------------------------------------------

    def _key(self, *labels: str) -> rsa.RSAPrivateKey:
        if self._seed is None:
            return generate_rsa_key(None, self.profile.key_bits)
        return generate_rsa_key(derive_seed(self._seed, *labels), self.profile.key_bits)

    def _stream(self, *labels: str) -> HashStream | None:
        return None if self._seed is None else HashStream(derive_seed(self._seed, *labels))

    def _now(self, at: datetime | None) -> datetime:
        moment = as_utc(at if at is not None else self.clock.now(), "at")
        return moment.replace(microsecond=0)  # X.509 times have whole seconds

    # -- CA side (jpki-card.md 9.2) ----------------------------------------------------------

    def ca_name(self, hierarchy: Hierarchy | str) -> x509.Name:
        """CA DN ``C=JP, O=<org>, OU=JPKI for …, OU=<simulated marker>`` (9.2, shape kept)."""
        h = _coerce_hierarchy(hierarchy)
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.profile.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, h.organizational_unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.profile.simulated_marker),
        ])

    def _issuer_alt_name(self) -> x509.DirectoryName:
        """directoryName ``C=JP, O=<issuer alt org>`` (UTF8String) of CA SAN and EE IAN."""
        return x509.DirectoryName(x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.profile.issuer_alt_organization),
        ]))

    def ca(self, hierarchy: Hierarchy | str, generation: int) -> CertificateAuthority:
        """The root CA of ``hierarchy`` in ``generation``, created on first use and cached."""
        h = _coerce_hierarchy(hierarchy)
        gen = self.profile.generation(generation)
        cached = self._cas.get((h, gen.number))
        if cached is not None:
            return cached
        key = self._key("ca-key", h.value, str(gen.number))
        stream = self._stream("ca-serial", h.value, str(gen.number))
        serial = _random_serial(self.profile.serial_bytes, stream)
        name = self.ca_name(h)
        public_key = key.public_key()
        # 9.2: the CA's CRLDP names its own DN (where its ARL is published); with a repository
        # URL the ARL's HTTP location is added beside it (9.7 MODEL).
        ca_dp_names: list[x509.GeneralName] = [x509.DirectoryName(name)]
        arl_uri = self.profile.repository_uri(arl_path(h, gen.number))
        if arl_uri is not None:
            ca_dp_names.append(x509.UniformResourceIdentifier(arl_uri))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(gen.not_before)
            .not_valid_after(gen.not_after)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([self._issuer_alt_name()]), critical=False)
            .add_extension(
                x509.CRLDistributionPoints([
                    x509.DistributionPoint(full_name=ca_dp_names,
                                           relative_name=None, reasons=None, crl_issuer=None)
                ]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = CertificateAuthority(h, gen, key, certificate)
        self._cas[(h, gen.number)] = ca
        return ca

    def adopt_ca(self, ca: CertificateAuthority) -> None:
        """Install a CA restored from storage instead of deriving it again.

        A persistent authority (:mod:`workbench.pki.store`) keeps its CA keys and certificates
        so that they stay identical across restarts without recomputing seeded keys. The CA
        must belong to this profile (a configured generation, this profile's CA DN) and its key
        must match its certificate.
        """
        if not isinstance(ca, CertificateAuthority):
            raise PkiError(f"adopt_ca needs a CertificateAuthority, not {type(ca).__name__}")
        h = _coerce_hierarchy(ca.hierarchy)
        gen = self.profile.generation(ca.generation.number)
        if ca.certificate.subject != self.ca_name(h):
            raise PkiError(f"CA certificate for {h.value} generation {gen.number} does not carry "
                           "this profile's CA name")
        if ca.private_key.public_key().public_numbers() != ca.certificate.public_key().public_numbers():
            raise PkiError(f"the {h.value} generation {gen.number} CA key does not match its "
                           "certificate")
        self._cas[(h, gen.number)] = CertificateAuthority(h, gen, ca.private_key, ca.certificate)

    @property
    def created_cas(self) -> tuple[CertificateAuthority, ...]:
        """The CAs made (or adopted) so far in this process, for persisting them."""
        return tuple(self._cas.values())

    def current_ca(self, hierarchy: Hierarchy | str,
                   at: datetime | None = None) -> CertificateAuthority:
        """The CA that issues at ``at``: the newest generation already started and not expired.

        During a rollover overlap (e.g. 2023-07-16 … 2025-10-19) the newer generation wins,
        as a real authority switches issuance to its new key (jpki-card.md 9.2 MODEL).
        """
        h = _coerce_hierarchy(hierarchy)
        moment = self._now(at)
        live = [g for g in self.profile.generations if g.contains(moment)]
        if not live:
            spans = ", ".join(f"{g.number}: {g.not_before:%Y-%m-%d}..{g.not_after:%Y-%m-%d}"
                              for g in self.profile.generations)
            raise PkiError(f"no {h.value} CA generation is valid at {moment.isoformat()} "
                           f"(generations {spans}); pick another time or add a generation")
        newest = max(live, key=lambda g: (g.not_before, g.number))
        return self.ca(h, newest.number)

    def ca_for(self, cert: x509.Certificate) -> CertificateAuthority:
        """The CA (of any hierarchy and generation) whose key issued ``cert``, found by its
        AuthorityKeyIdentifier: the generations share one DN (jpki-card.md 9.2)."""
        try:
            aki = cert.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            raise PkiError("the certificate has no AuthorityKeyIdentifier") from None
        for h in Hierarchy:
            for g in self.profile.generations:
                ca = self.ca(h, g.number)
                if ca.key_identifier == aki:
                    return ca
        raise PkiError("no CA of this authority issued that certificate")

    def ca_certificates(self, hierarchy: Hierarchy | str | None = None) -> list[x509.Certificate]:
        """All CA certificates (every generation) of one hierarchy, or of both (sign first)."""
        hierarchies = list(Hierarchy) if hierarchy is None else [_coerce_hierarchy(hierarchy)]
        generations = sorted(g.number for g in self.profile.generations)
        return [self.ca(h, n).certificate for h in hierarchies for n in generations]

    # -- end-entity side (jpki-card.md 9.3–9.7) ----------------------------------------------

    def crl_distribution_point_name(self, hierarchy: Hierarchy | str, holder: Holder) -> x509.Name:
        """``C=JP, O=<org>, OU=JPKI for …, OU=CRL Distribution Points, OU=<pref>, CN=<muni>``.

        One CRL per issuing municipality (jpki-card.md 9.7 [U]); the O is ours, not J-LIS's.
        """
        h = _coerce_hierarchy(hierarchy)
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.profile.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, h.organizational_unit),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, OU_CRL_DISTRIBUTION_POINTS),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, holder.prefecture),
            x509.NameAttribute(NameOID.COMMON_NAME, holder.municipality),
        ])

    def new_identifier(self, rng: RandomSource | None = None) -> str:
        """A CN identifier: uppercase alphanumerics of the profile's length (9.6 MODEL: 20).

        Random per certificate; pass ``rng`` (``random.Random`` or ``HashStream``) to make it
        reproducible.
        """
        pick = rng.choice if rng is not None else secrets.choice
        return "".join(pick(_IDENTIFIER_ALPHABET) for _ in range(self.profile.identifier_length))

    def _check_identifier(self, identifier: str) -> str:
        n = self.profile.identifier_length
        if not (isinstance(identifier, str) and len(identifier) == n
                and all(c in _IDENTIFIER_ALPHABET for c in identifier)):
            raise PkiError(f"identifier must be {n} characters of 0-9/A-Z (jpki-card.md 9.6)")
        return identifier

    def issue_certificate(
        self,
        hierarchy: Hierarchy | str,
        holder: Holder,
        public_key: rsa.RSAPublicKey,
        *,
        at: datetime | None = None,
        card_expiry: date | None = None,
        not_after: datetime | None = None,
        token: str = "icc",
        serial: int | None = None,
        renewal: bool = False,
        generation: int | None = None,
        identifier: str | None = None,
        rng: RandomSource | None = None,
    ) -> x509.Certificate:
        """Issue one end-entity certificate of ``hierarchy`` for ``holder``'s ``public_key``.

        The single issuing path (a later registry wraps this). Rules applied:

        - issuer = the CA current at ``at`` (or the given ``generation``, which must be valid
          then); AKI = that CA's SKI, because all generations share one DN (9.2);
        - Not After = ``not_after`` if given, else the 5th-birthday rule (6th on ``renewal``)
          capped at the card's expiry (9.7); ``card_expiry`` defaults to the profile's card
          rule from the JST issue date. Never later than ``card_expiry``'s end of day nor the
          CA certificate's Not After;
        - ``token`` "icc" (card) or "gpse" (phone). MODEL: the phone uses the same profile and
          its validity follows the card certificate (smartphone-service.md 6): pass the card
          certificate's Not After as ``not_after``; only the sign policy may differ
          (``AuthorityProfile.gpse_sign_policy``);
        - ``serial``: give one for reproducible output; otherwise random of
          ``profile.serial_bytes`` bytes (from ``rng`` if given). ``identifier`` (CN) likewise.
        """
        h = _coerce_hierarchy(hierarchy)
        if not isinstance(holder, Holder):
            raise PkiError(f"holder must be a Holder, not {type(holder).__name__}")
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise PkiError("public_key must be an RSA public key (jpki-card.md 9.1); pass "
                           "private_key.public_key(), not the private key")
        if token not in TOKENS:
            raise PkiError(f"token must be one of {TOKENS}, got {token!r}")
        issued_at = self._now(at)
        issue_day = jst_date(issued_at)
        if holder.birth_date > issue_day:
            raise PkiError(f"holder born {holder.birth_date.isoformat()} after the issue date "
                           f"{issue_day.isoformat()}")

        if generation is None:
            ca = self.current_ca(h, issued_at)
        else:
            ca = self.ca(h, generation)
            if not ca.generation.contains(issued_at):
                raise PkiError(f"{h.value} CA generation {generation} is not valid at "
                               f"{issued_at.isoformat()}")

        if card_expiry is not None and card_expiry < issue_day:
            raise PkiError(f"the card expired on {card_expiry.isoformat()}, before the issue "
                           f"date {issue_day.isoformat()}")
        if not_after is None:
            expiry = card_expiry if card_expiry is not None else self.card_expiry(holder,
                                                                                  issue_day)
            end = certificate_not_after(
                holder.birth_date, issued_at, expiry, renewal=renewal,
                years=self.profile.certificate_years, leap_day=self.profile.leap_day,
            )
        else:
            end = as_utc(not_after, "not_after")
            if card_expiry is not None:
                end = min(end, end_of_day_jst(card_expiry))
        end = min(end, ca.certificate.not_valid_after_utc).replace(microsecond=0)
        if end <= issued_at:
            raise PkiError(f"Not After {end.isoformat()} is not after the issue time "
                           f"{issued_at.isoformat()}")

        if serial is None:
            serial = _random_serial(self.profile.serial_bytes, rng)
        elif isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial < 2**159:
            raise PkiError("serial must be a positive int of at most 20 octets (RFC 5280 4.1.2.2)")
        cn = (self._check_identifier(identifier) if identifier is not None
              else self.new_identifier(rng))

        if h is Hierarchy.SIGN:
            subject = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, holder.prefecture),
                x509.NameAttribute(NameOID.LOCALITY_NAME, holder.municipality),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ])
            usage = _key_usage(digital_signature=True, non_repudiation=True)
        else:
            subject = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ])
            usage = _key_usage(digital_signature=True)

        policy = x509.PolicyInformation(self.profile.policy_for(h, token), [self.profile.cps_uri])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(issued_at)
            .not_valid_after(end)
            .add_extension(usage, critical=True)
            .add_extension(x509.CertificatePolicies([policy]), critical=True)
        )
        if h is Hierarchy.SIGN:
            builder = builder.add_extension(basic_four_san(holder), critical=False)
        builder = (
            builder
            .add_extension(x509.IssuerAlternativeName([self._issuer_alt_name()]), critical=False)
            .add_extension(self._ee_crl_distribution_points(h, ca.generation.number, holder),
                           critical=False)
        )
        if self.profile.ocsp_aia:
            builder = builder.add_extension(self._ocsp_aia(), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca.certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
        return builder.sign(ca.private_key, hashes.SHA256())

    def _ee_crl_distribution_points(self, h: Hierarchy, generation: int,
                                    holder: Holder) -> x509.CRLDistributionPoints:
        """The municipality's directoryName (9.7), plus HTTP URIs when a repository is set.

        With ``crl_url_scope="partition"`` the URI is a second name of the same distribution
        point (the municipality's CRL, partition = municipality code); with ``"full"`` a second
        distribution point names the CA's full CRL, which covers every certificate of the CA.
        """
        dp_name = x509.DirectoryName(self.crl_distribution_point_name(h, holder))
        if self.profile.repository_url is None:
            names: list[x509.GeneralName] = [dp_name]
            return x509.CRLDistributionPoints([_distribution_point(names)])
        if self.profile.crl_url_scope == "partition":
            uri = self.profile.repository_uri(crl_path(h, generation, holder.municipality_code))
            assert uri is not None
            return x509.CRLDistributionPoints([
                _distribution_point([dp_name, x509.UniformResourceIdentifier(uri)])
            ])
        full = self.profile.repository_uri(crl_path(h, generation))
        assert full is not None
        return x509.CRLDistributionPoints([
            _distribution_point([dp_name]),
            _distribution_point([x509.UniformResourceIdentifier(full)]),
        ])

    def _ocsp_aia(self) -> x509.AuthorityInformationAccess:
        """AIA with the simulator's OCSP URL (9.7 MODEL option; no AIA in the real profile)."""
        uri = self.profile.repository_uri(OCSP_PATH)
        assert uri is not None  # AuthorityProfile refuses ocsp_aia without repository_url
        return x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier(uri)),
        ])

    def issue_signing_certificate(
        self,
        holder: Holder,
        public_key: rsa.RSAPublicKey,
        *,
        at: datetime | None = None,
        card_expiry: date | None = None,
        not_after: datetime | None = None,
        token: str = "icc",
        serial: int | None = None,
        renewal: bool = False,
        generation: int | None = None,
        identifier: str | None = None,
        rng: RandomSource | None = None,
    ) -> x509.Certificate:
        """署名用電子証明書: subject C/L/L/CN, 基本4情報 SAN, digitalSignature+nonRepudiation.

        jpki-card.md 9.4–9.5; see :meth:`issue_certificate` for the rules and parameters.
        """
        return self.issue_certificate(
            Hierarchy.SIGN, holder, public_key, at=at, card_expiry=card_expiry,
            not_after=not_after, token=token, serial=serial, renewal=renewal,
            generation=generation, identifier=identifier, rng=rng,
        )

    def issue_auth_certificate(
        self,
        holder: Holder,
        public_key: rsa.RSAPublicKey,
        *,
        at: datetime | None = None,
        card_expiry: date | None = None,
        not_after: datetime | None = None,
        token: str = "icc",
        serial: int | None = None,
        renewal: bool = False,
        generation: int | None = None,
        identifier: str | None = None,
        rng: RandomSource | None = None,
    ) -> x509.Certificate:
        """利用者証明用電子証明書: subject ``C=JP, CN=<20 chars>`` only, no SAN, digitalSignature.

        jpki-card.md 9.6: no personal data in the certificate; the holder is used only for its
        validity (birthdays) and CRL distribution point (municipality). See
        :meth:`issue_certificate` for the rules and parameters.
        """
        return self.issue_certificate(
            Hierarchy.AUTH, holder, public_key, at=at, card_expiry=card_expiry,
            not_after=not_after, token=token, serial=serial, renewal=renewal,
            generation=generation, identifier=identifier, rng=rng,
        )

    def card_expiry(self, holder: Holder, issued_on: date | datetime) -> date:
        """The card's last valid day under this profile's (MODEL) card rule (9.7)."""
        p = self.profile
        return card_expiry_rule(
            holder.birth_date, issued_on, years=p.card_validity_years,
            minor_years=p.minor_card_validity_years, adult_age=p.adult_age, leap_day=p.leap_day,
        )

    # -- card application issuer keys (jpki-card.md 3.3, 3.4) --------------------------------

    def cv_issuer(self, ap: str) -> tuple[bytes, rsa.RSAPrivateKey]:
        """Key id and private key of the issuer key for the text or surface AP.

        It signs the text AP integrity record (EF 0003) and the card-verifiable certificates
        (EF 0004) of jpki-card.md 3.3 / 3.4. The 16-byte ASCII key id starts with the test-card
        prefix (``6000033`` text, ``6000023`` surface) so it is never mistaken for production.
        ``ap="root"`` (MODEL) is the certifier of those two keys, for the CV certificates.
        """
        if ap not in CV_ISSUER_KEY_ID_PREFIX:
            raise PkiError(f"ap must be one of {sorted(CV_ISSUER_KEY_ID_PREFIX)}, got {ap!r}")
        cached = self._cv_issuers.get(ap)
        if cached is not None:
            return cached
        prefix = CV_ISSUER_KEY_ID_PREFIX[ap]
        stream = self._stream("cv-issuer", ap, "key-id")
        digits = CV_KEY_ID_LENGTH - len(prefix)
        if stream is None:
            tail = "".join(secrets.choice(string.digits) for _ in range(digits))
        else:
            tail = "".join(stream.choice(string.digits) for _ in range(digits))
        entry = (prefix + tail.encode("ascii"), self._key("cv-issuer", ap))
        self._cv_issuers[ap] = entry
        return entry


def _distribution_point(names: list[x509.GeneralName]) -> x509.DistributionPoint:
    return x509.DistributionPoint(full_name=names, relative_name=None, reasons=None,
                                  crl_issuer=None)


def basic_four_san(holder: Holder) -> x509.SubjectAlternativeName:
    """The signing certificate's SAN: six otherNames in the order .1 .4 .3 .5 .2 .6 (9.5).

    Each value is ``[0] EXPLICIT UTF8String``; cryptography adds the explicit tag, we give it
    the DER of the UTF8String.
    """
    values = (
        (OID_NAME, holder.name),
        (OID_BIRTH_DATE, holder.era_birth_date()),
        (OID_SEX, holder.sex.certificate_code()),
        (OID_ADDRESS, holder.address),
        (OID_NAME_FLAGS, holder.name_flags),
        (OID_ADDRESS_FLAGS, holder.address_flags),
    )
    return x509.SubjectAlternativeName([x509.OtherName(oid, _utf8_der(v)) for oid, v in values])

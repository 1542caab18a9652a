"""What the simulated authority puts in certificates: OIDs, knobs and validity rules.

The shapes follow jpki-card.md section 9 (CA and end-entity profiles) and the validity rules of
9.7 and smartphone-service.md 6. Everything that is MODEL or [U] in the spec is a field of
:class:`AuthorityProfile` or a keyword of the validity functions, so a scenario can change it
without touching code.

Nothing issued may be mistakable for J-LIS: the real CA DN is
``C=JP, O=JPKI, OU=JPKI for digital signature, OU=Japan Agency for Local Authority Information
Systems``; the simulator keeps that shape but its O and last OU say that it is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlsplit

from cryptography.x509.oid import ObjectIdentifier

from workbench.errors import PkiError
from workbench.pki.clock import as_utc, end_of_day_jst, jst_date, start_of_day_jst

# --- OIDs (jpki-card.md 9.4–9.6) -------------------------------------------------------------

#: 基本4情報 otherName type-ids in the signing certificate's SAN (jpki-card.md 9.5).
OID_NAME = ObjectIdentifier("1.2.392.200149.8.5.5.1")
OID_NAME_FLAGS = ObjectIdentifier("1.2.392.200149.8.5.5.2")
OID_SEX = ObjectIdentifier("1.2.392.200149.8.5.5.3")
OID_BIRTH_DATE = ObjectIdentifier("1.2.392.200149.8.5.5.4")
OID_ADDRESS = ObjectIdentifier("1.2.392.200149.8.5.5.5")
OID_ADDRESS_FLAGS = ObjectIdentifier("1.2.392.200149.8.5.5.6")

#: The order a real signing certificate lists them in; the simulator MUST keep it (9.5).
BASIC_FOUR_SAN_ORDER: tuple[ObjectIdentifier, ...] = (
    OID_NAME, OID_BIRTH_DATE, OID_SEX, OID_ADDRESS, OID_NAME_FLAGS, OID_ADDRESS_FLAGS,
)

#: Certificate policies (jpki-card.md 9.4, 9.6; smartphone-service.md 15.2 C8).
OID_POLICY_SIGN = ObjectIdentifier("1.2.392.200149.8.5.1.1.20")  # production sign-class20
OID_POLICY_SIGN_TEST = ObjectIdentifier("1.2.392.200149.8.5.1.0.20")  # JPKI test cards
OID_POLICY_AUTH = ObjectIdentifier("1.2.392.200149.8.5.1.3.30")  # auth-class30 [U]
OID_POLICY_SIGN_SMARTPHONE = ObjectIdentifier("1.2.392.200149.8.5.1.1.40")  # [U]

#: Fixed organizational-unit strings of the DNs (jpki-card.md 9.2, 9.7).
OU_SIGN = "JPKI for digital signature"
OU_AUTH = "JPKI for user authentication"
OU_CRL_DISTRIBUTION_POINTS = "CRL Distribution Points"

#: What must never appear in a simulated certificate (the real issuer's name, 9.2).
REAL_ISSUER_OU = "Japan Agency for Local Authority Information Systems"
REAL_ISSUER_O = "JPKI"
REAL_ISSUER_ALT_O = "公的個人認証サービス"

POLICY_SETS = ("test", "production-shaped")

#: Where a 29 February birthday falls in common years (MODEL): "feb28" (the default, the
#: earlier and therefore conservative end date) or "mar1".
LEAP_DAY_RULES = ("feb28", "mar1")

#: Which CRL the HTTP URI in an end-entity CRLDP names (see ``AuthorityProfile.crl_url_scope``).
CRL_URL_SCOPES = ("partition", "full")

#: MODEL: CRLs are published once a day (smartphone-service.md 11.3: "updated periodically",
#: a platform operator may serve the previous day's list).
DEFAULT_CRL_INTERVAL = timedelta(hours=24)


class Hierarchy(StrEnum):
    """The two JPKI hierarchies: 署名用 (sign) and 利用者証明用 (auth) (jpki-card.md 9.2)."""

    SIGN = "sign"
    AUTH = "auth"

    @property
    def organizational_unit(self) -> str:
        """The hierarchy's OU in CA and CRL distribution point DNs (9.2, 9.7)."""
        return OU_SIGN if self is Hierarchy.SIGN else OU_AUTH


@dataclass(frozen=True)
class Generation:
    """One CA generation: its number and validity (jpki-card.md 9.2).

    The generations of a hierarchy share one DN; only keys (and key identifiers) tell them
    apart, which is why end-entity certificates carry an AuthorityKeyIdentifier.
    """

    number: int
    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.number, int) or self.number < 1:
            raise PkiError(f"generation number must be a positive int, got {self.number!r}")
        start = as_utc(self.not_before, "generation not_before")
        end = as_utc(self.not_after, "generation not_after")
        if end <= start:
            raise PkiError(f"generation {self.number}: not_after must be after not_before")
        object.__setattr__(self, "not_before", start)
        object.__setattr__(self, "not_after", end)

    @classmethod
    def from_days(cls, number: int, first_day: date, last_day: date) -> Generation:
        """A generation valid from 00:00 JST of ``first_day`` to 23:59:59 JST of ``last_day``."""
        return cls(number, start_of_day_jst(first_day), end_of_day_jst(last_day))

    def contains(self, at: datetime) -> bool:
        """True if ``at`` lies within [not_before, not_after]."""
        return self.not_before <= as_utc(at) <= self.not_after


#: The three real generations' dates, shared by both hierarchies (jpki-card.md 9.2 table).
DEFAULT_GENERATIONS: tuple[Generation, ...] = (
    Generation.from_days(1, date(2015, 10, 20), date(2025, 10, 19)),
    Generation.from_days(2, date(2019, 9, 14), date(2029, 9, 14)),
    Generation.from_days(3, date(2023, 7, 16), date(2033, 7, 15)),
)


@dataclass(frozen=True)
class AuthorityProfile:
    """The knobs of the simulated authority (MODEL choices of jpki-card.md 9 made explicit).

    - ``organization``/``simulated_marker``: O and last OU of every CA DN (9.2); the real values
      name J-LIS, ours say the authority is simulated.
    - ``issuer_alt_organization``: O of the CA SAN and EE IssuerAltName (9.2, 9.3).
    - ``policy_set``: "test" (sign policy ``…1.0.20`` of JPKI test cards, the default) or
      "production-shaped" (``…1.1.20``) (9.4).
    - ``gpse_sign_policy``: policy of a smartphone signing certificate; ``None`` (default,
      MODEL) = same as the card's; :data:`OID_POLICY_SIGN_SMARTPHONE` is the [U] candidate.
    - ``cps_uri``: the CPS qualifier, unknown for the real service (9.6 MODEL).
    - ``serial_bytes``: size of random end-entity serials; the real example has 4 (9.3), 8 keeps
      collisions negligible (MODEL).
    - ``identifier_length``: length of the CN identifier, 20 uppercase alphanumerics (9.6 MODEL).
    - ``card_validity_years``/``minor_card_validity_years``/``adult_age``: card expiry (9.7).
    - ``certificate_years``: birthdays until a certificate's Not After (9.7; +1 on renewal).
    - ``leap_day``: where a 29 February birthday falls in common years (see
      :func:`birthday_in_year`).
    - ``key_bits``: RSA size of CA and card-verifiable issuer keys (9.1).
    - ``generations``: CA generations of both hierarchies (9.2).
    - ``repository_url``: base URL of the simulator's HTTP repository (no trailing slash), or
      ``None`` (default: the real profile, directory names only). When set, certificates get an
      HTTP URI next to the directoryName of their CRL distribution point, so tools can fetch
      the CRL (9.7 MODEL "an HTTP CRLDP URI for interop testing"): end-entity certificates the
      URL of their municipality's CRL (or of the full CRL, see ``crl_url_scope``), CA
      certificates the URL of their ARL. Paths: :func:`crl_path`, :func:`arl_path`.
    - ``crl_url_scope``: ``"partition"`` (default): the EE distribution point is
      ``[directoryName, {repository_url}/crl/{h}/g{N}/{municipality code}.crl]``, one CRL per
      issuing municipality as in the real profile; ``"full"``: the EE distribution point keeps
      only the directoryName and a second distribution point names the full CRL
      ``{repository_url}/crl/{h}/g{N}.crl``.
    - ``ocsp_aia``: add AuthorityInfoAccess with the OCSP URL ``{repository_url}/ocsp`` to
      end-entity certificates (9.7 MODEL: no AIA by default, the real certificates have none).
    - ``crl_interval``: CRL publication interval (smartphone-service.md 11.3, MODEL 24 h). CRLs
      are published at interval boundaries; thisUpdate is the boundary, nextUpdate the next one.
    """

    organization: str = "JPKI-SIMULATED"
    simulated_marker: str = "jpki-workbench simulated authority, not J-LIS"
    issuer_alt_organization: str = "公的個人認証サービス（シミュレーション）"
    policy_set: str = "test"
    gpse_sign_policy: ObjectIdentifier | None = None
    cps_uri: str = "https://jpki-workbench.invalid/cps"
    serial_bytes: int = 8
    identifier_length: int = 20
    card_validity_years: int = 10
    minor_card_validity_years: int = 5
    adult_age: int = 18
    certificate_years: int = 5
    leap_day: str = "feb28"
    key_bits: int = 2048
    generations: tuple[Generation, ...] = field(default=DEFAULT_GENERATIONS)
    repository_url: str | None = None
    crl_url_scope: str = "partition"
    ocsp_aia: bool = False
    crl_interval: timedelta = DEFAULT_CRL_INTERVAL

    def __post_init__(self) -> None:
        if self.policy_set not in POLICY_SETS:
            raise PkiError(f"policy_set must be one of {POLICY_SETS}, got {self.policy_set!r}")
        if (self.organization == REAL_ISSUER_O
                or REAL_ISSUER_OU in (self.organization, self.simulated_marker)
                or self.issuer_alt_organization == REAL_ISSUER_ALT_O):
            raise PkiError("organization, simulated_marker and issuer_alt_organization must not "
                           "copy the real J-LIS names; simulated certificates must not be "
                           "mistakable for J-LIS")
        if not 1 <= self.serial_bytes <= 20:
            raise PkiError(f"serial_bytes must be 1..20 (RFC 5280 4.1.2.2), got "
                           f"{self.serial_bytes}")
        if self.identifier_length < 1:
            raise PkiError("identifier_length must be positive")
        if self.leap_day not in LEAP_DAY_RULES:
            raise PkiError(f"leap_day must be one of {LEAP_DAY_RULES}, got {self.leap_day!r}")
        if not self.generations:
            raise PkiError("a profile needs at least one CA generation")
        numbers = [g.number for g in self.generations]
        if len(set(numbers)) != len(numbers):
            raise PkiError(f"generation numbers must be unique, got {numbers}")
        if self.repository_url is not None:
            object.__setattr__(self, "repository_url", _check_repository_url(self.repository_url))
        if self.crl_url_scope not in CRL_URL_SCOPES:
            raise PkiError(f"crl_url_scope must be one of {CRL_URL_SCOPES}, got "
                           f"{self.crl_url_scope!r}")
        if not isinstance(self.ocsp_aia, bool):
            raise PkiError(f"ocsp_aia must be True or False, got {self.ocsp_aia!r}")
        if self.ocsp_aia and self.repository_url is None:
            raise PkiError("ocsp_aia needs a repository_url: the OCSP URL is "
                           "{repository_url}/ocsp")
        interval = self.crl_interval
        if (not isinstance(interval, timedelta) or interval <= timedelta(0)
                or interval.microseconds or interval > timedelta(days=366)):
            raise PkiError(f"crl_interval must be a timedelta of whole seconds between 1 s and "
                           f"366 days, got {interval!r}")

    @property
    def sign_policy(self) -> ObjectIdentifier:
        """The card signing certificate's policy for this profile's policy set (9.4)."""
        return OID_POLICY_SIGN_TEST if self.policy_set == "test" else OID_POLICY_SIGN

    def policy_for(self, hierarchy: Hierarchy, token: str) -> ObjectIdentifier:
        """Policy OID of an end-entity certificate of ``hierarchy`` on ``token`` (9.4, 9.6)."""
        if hierarchy is Hierarchy.AUTH:
            return OID_POLICY_AUTH
        if token == "gpse" and self.gpse_sign_policy is not None:
            return self.gpse_sign_policy
        return self.sign_policy

    def generation(self, number: int) -> Generation:
        """The generation with this number; PkiError if the profile has none."""
        for gen in self.generations:
            if gen.number == number:
                return gen
        raise PkiError(f"no CA generation {number}; this profile has "
                       f"{sorted(g.number for g in self.generations)}")

    def repository_uri(self, path: str) -> str | None:
        """``repository_url`` + ``path`` (a path from :func:`crl_path` etc.), or ``None``."""
        return None if self.repository_url is None else self.repository_url + path


def _check_repository_url(url: object) -> str:
    """An absolute http(s) URL without query or fragment; a trailing slash is dropped."""
    if not isinstance(url, str):
        raise PkiError(f"repository_url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PkiError(f"repository_url must be an http(s) URL without query or fragment, e.g. "
                       f"http://127.0.0.1:8080, got {url!r}")
    if not url.isascii() or any(c.isspace() for c in url):
        raise PkiError(f"repository_url must be plain ASCII without spaces, got {url!r}")
    return url.rstrip("/")


# --- repository layout (jpki-card.md 9.7 MODEL) -----------------------------------------------
#
# The HTTP repository (``jpki-workbench pki serve``) serves exactly these paths, and the
# certificates name them; one definition here keeps both sides in step.

#: OCSP responder: ``POST /ocsp`` and ``GET /ocsp/{base64 request}`` (RFC 6960 A.1).
OCSP_PATH = "/ocsp"


def _path_hierarchy(hierarchy: Hierarchy | str) -> str:
    try:
        return Hierarchy(hierarchy).value
    except ValueError:
        raise PkiError(f"hierarchy must be 'sign' or 'auth', got {hierarchy!r}") from None


def _path_generation(generation: int) -> int:
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise PkiError(f"generation must be a positive int, got {generation!r}")
    return generation


def check_partition(partition: object) -> str:
    """A CRL partition key: a municipality code or name, non-empty, without '/' or controls.

    Partitions are the per-municipality distribution points of jpki-card.md 9.7; the key
    appears in a URL path segment (percent-encoded) and in the registry.
    """
    if (not isinstance(partition, str) or not partition or "/" in partition
            or any(ord(c) < 0x20 or c == "\x7f" for c in partition)
            or partition in (".", "..")):
        raise PkiError(f"partition must be a municipality code or name without '/', got "
                       f"{partition!r}")
    return partition


def crl_path(hierarchy: Hierarchy | str, generation: int, partition: str | None = None) -> str:
    """``/crl/{sign|auth}/g{N}.crl`` (full CRL) or ``/crl/{h}/g{N}/{partition}.crl``."""
    base = f"/crl/{_path_hierarchy(hierarchy)}/g{_path_generation(generation)}"
    if partition is None:
        return base + ".crl"
    return f"{base}/{quote(check_partition(partition), safe='')}.crl"


def arl_path(hierarchy: Hierarchy | str, generation: int) -> str:
    """``/arl/{sign|auth}/g{N}.crl``: the authority revocation list of one CA generation."""
    return f"/arl/{_path_hierarchy(hierarchy)}/g{_path_generation(generation)}.crl"


def ca_certificate_path(hierarchy: Hierarchy | str, generation: int) -> str:
    """``/ca/{sign|auth}/g{N}.cer``: the DER CA certificate (as jpki.go.jp/ca publishes them)."""
    return f"/ca/{_path_hierarchy(hierarchy)}/g{_path_generation(generation)}.cer"


# --- validity rules (jpki-card.md 9.7) --------------------------------------------------------

def birthday_in_year(birth_date: date, year: int, *, leap_day: str = "feb28") -> date:
    """The holder's birthday in ``year``; 29 February follows ``leap_day`` in common years."""
    try:
        return birth_date.replace(year=year)
    except ValueError:  # only 29 February in a common year
        if leap_day == "feb28":
            return date(year, 2, 28)
        if leap_day == "mar1":
            return date(year, 3, 1)
        raise PkiError(f"leap_day must be one of {LEAP_DAY_RULES}, got {leap_day!r}") from None


def nth_birthday_after(birth_date: date, day: date, n: int, *, leap_day: str = "feb28") -> date:
    """The n-th birthday strictly after ``day`` (a birthday on ``day`` itself does not count).

    "After the issue date" (発行日後) is read strictly: a card issued on the holder's birthday
    counts its first birthday a year later (MODEL).
    """
    if n < 1:
        raise PkiError(f"n must be ≥ 1, got {n}")
    first = birthday_in_year(birth_date, day.year, leap_day=leap_day)
    year = day.year if first > day else day.year + 1
    return birthday_in_year(birth_date, year + n - 1, leap_day=leap_day)


def age_on(birth_date: date, day: date, *, leap_day: str = "feb28") -> int:
    """Completed years of age on ``day`` (the birthday itself counts as the new age)."""
    years = day.year - birth_date.year
    if birthday_in_year(birth_date, day.year, leap_day=leap_day) > day:
        years -= 1
    return years


def _check_birth(birth_date: date, day: date) -> None:
    if not isinstance(birth_date, date) or isinstance(birth_date, datetime):
        raise PkiError("birth_date must be a datetime.date")
    if birth_date > day:
        raise PkiError(f"birth date {birth_date.isoformat()} is after {day.isoformat()}")


def card_expiry(
    birth_date: date,
    issued_on: date,
    *,
    years: int = 10,
    minor_years: int = 5,
    adult_age: int = 18,
    leap_day: str = "feb28",
) -> date:
    """The card's last valid day: the 10th birthday after issuance, the 5th for minors.

    jpki-card.md 9.7 says the card is valid 10 years (5 for minors); MODEL: counted in birthdays
    like the certificates, minor = under ``adult_age`` on the issue date (the age of majority
    has been 18 since April 2022). All counts are parameters.
    """
    if isinstance(issued_on, datetime):
        issued_on = jst_date(issued_on)
    _check_birth(birth_date, issued_on)
    minor = age_on(birth_date, issued_on, leap_day=leap_day) < adult_age
    return nth_birthday_after(birth_date, issued_on, minor_years if minor else years,
                              leap_day=leap_day)


def certificate_not_after(
    birth_date: date,
    issued_at: datetime,
    card_expiry: date,
    *,
    renewal: bool = False,
    years: int = 5,
    leap_day: str = "feb28",
) -> datetime:
    """Not After of a card certificate: 23:59:59 JST (14:59:59Z) on the 5th birthday after issue.

    jpki-card.md 9.7: the 6th birthday when ``renewal`` (renewed within the 3 months before the
    old certificate expires), capped at the end of the card's expiry day. The issue date is the
    JST calendar day of ``issued_at``. ``years`` and ``leap_day`` are MODEL parameters.
    """
    issued_day = jst_date(issued_at)
    _check_birth(birth_date, issued_day)
    if isinstance(card_expiry, datetime):
        card_expiry = jst_date(card_expiry)
    if not isinstance(card_expiry, date):
        raise PkiError("card_expiry must be a datetime.date (the card's last valid day)")
    if card_expiry < issued_day:
        raise PkiError(f"the card expired on {card_expiry.isoformat()}, before the issue date "
                       f"{issued_day.isoformat()}")
    n = years + 1 if renewal else years
    last_day = min(nth_birthday_after(birth_date, issued_day, n, leap_day=leap_day), card_expiry)
    return end_of_day_jst(last_day)

"""Relying services that accept the smartphone certificates, and from when.

The phone certificates were useful only as services adopted them, one by one, from the 2023
launch to the 2025 health-insurance start (smartphone-service.md 11.1). A scenario that asks
"could this user file their tax return with the phone on this day?" needs those dates, which
certificate each service asks for, and how it checks revocation (smartphone-service.md 11.3).
The table is data (:data:`SERVICES`); each row cites its source and says which of its values
are MODEL.

Which certificate (smartphone-service.md 11.1 names none; JPKI practice decides):

- **auth** (利用者証明用電子証明書, 4-digit PIN) proves *who is present*: Mynaportal login,
  convenience-store issuance (PIN on the multi-copier), health insurance (PIN on the clinic's
  reader, 11.1), the デジタル認証アプリ 認証API.
- **sign** (署名用電子証明書, 6–16 character password) signs a document and carries the 基本4情報:
  e-Tax and e-Gov filings, moving notifications (転出届), and eKYC under 犯罪収益移転防止法 (the
  JPKI method of its 施行規則 uses the signing certificate, 11.1).

MODEL: every service checks revocation by OCSP by default (the real-time method 11.3
recommends); a scenario changes it per instance with ``dataclasses.replace(s,
revocation_check="crl")``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from workbench.errors import WorkbenchError
from workbench.pki.clock import JST

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SERVICES",
    "CertificateKind",
    "RelyingService",
    "RevocationCheck",
    "RelyingServiceError",
    "available",
    "service",
    "services_frame",
]

CertificateKind = Literal["auth", "sign"]
RevocationCheck = Literal["ocsp", "crl"]


class RelyingServiceError(WorkbenchError, LookupError):
    """An unknown relying service, or a malformed service record or question."""


@dataclass(frozen=True)
class RelyingService:
    """One relying service and the day it starts accepting smartphone certificates.

    ``starts`` is ``None`` when no start date is established; ``starts_is_model`` says the
    date is a MODEL choice (the sources give only a month or a plan). ``certificate`` is the
    certificate the service asks for (module docstring).
    """

    key: str
    name_ja: str
    name_en: str
    starts: date | None
    start_note: str
    certificate: CertificateKind
    source: str
    starts_is_model: bool = False
    revocation_check: RevocationCheck = "ocsp"

    def __post_init__(self) -> None:
        if not self.key or not self.name_en or not self.name_ja:
            raise RelyingServiceError("a relying service needs a key and names in English and Japanese")
        if self.certificate not in ("auth", "sign"):
            raise RelyingServiceError(
                f"service {self.key!r}: certificate must be 'auth' or 'sign', "
                f"not {self.certificate!r}")
        if self.revocation_check not in ("ocsp", "crl"):
            raise RelyingServiceError(
                f"service {self.key!r}: revocation_check must be 'ocsp' or 'crl', "
                f"not {self.revocation_check!r}")
        if self.starts is not None and (
            isinstance(self.starts, datetime) or not isinstance(self.starts, date)
        ):
            raise RelyingServiceError(f"service {self.key!r}: starts must be a date or None")

    @property
    def start_text(self) -> str:
        """The start date as shown to users, with "(MODEL)" when it is a modelling choice."""
        if self.starts is None:
            return "no established date"
        return self.starts.isoformat() + (" (MODEL)" if self.starts_is_model else "")


def _services(*items: RelyingService) -> dict[str, RelyingService]:
    return {s.key: s for s in items}


#: smartphone-service.md 11.1, one row per service (keys are stable; scenarios use them).
SERVICES: dict[str, RelyingService] = _services(
    RelyingService(
        key="mynaportal-login",
        name_ja="マイナポータル（ログイン・電子申請）",
        name_en="Mynaportal login and e-applications",
        starts=date(2023, 5, 11),
        start_note="from the Android launch (smartphone-service.md 2)",
        certificate="auth",
        source="smartphone-service.md 11.1 (Impress 1499103)",
    ),
    RelyingService(
        key="moving",
        name_ja="引越し手続（マイナポータル）",
        name_en="Moving procedures (Mynaportal)",
        starts=date(2023, 7, 1),
        start_note="the source gives the month only (from 2023-07); MODEL: its first day. "
        "The moving-out notification (転出届) is signed, hence the signing certificate",
        certificate="sign",
        source="smartphone-service.md 11.1 (Impress 1499103)",
        starts_is_model=True,
    ),
    RelyingService(
        key="ekyc",
        name_ja="犯罪収益移転防止法の本人確認（公的個人認証方式）",
        name_en="Private-sector eKYC (criminal-proceeds act)",
        starts=date(2023, 5, 11),
        start_note="accepted by the 施行規則 amendment of 2023-05-11; the 2027-04 revision makes "
        "the JPKI method the single online method (not modelled). The JPKI method verifies "
        "the signing certificate",
        certificate="sign",
        source="smartphone-service.md 11.1 (note.com/lovely_moose206, gvalaw.jp)",
    ),
    RelyingService(
        key="convenience-store",
        name_ja="コンビニ交付（Android）",
        name_en="Convenience-store issuance (Android)",
        starts=date(2024, 1, 22),
        start_note="Lawson and FamilyMart multi-copiers: Tokyo stores from 2023-12-20, "
        "nationwide from 2024-01-22 (the nationwide date is used). The PIN typed on the "
        "copier is the auth PIN",
        certificate="auth",
        source="smartphone-service.md 11.1 (city.nagato)",
    ),
    RelyingService(
        key="health-insurance",
        name_ja="スマホのマイナ保険証",
        name_en="Health insurance (smartphone)",
        starts=date(2025, 9, 19),
        start_note="general start 2025-09-19 at facilities with a smartphone reader; a pilot "
        "at 15 facilities ran from 2025-07 (planned for 2024-04 at the launch). The 4-digit "
        "auth PIN is typed on the facility's reader",
        certificate="auth",
        source="smartphone-service.md 11.1 (ascii.jp, kannaikaikei.jp, livedoor)",
    ),
    RelyingService(
        key="e-gov",
        name_ja="e-Gov電子申請",
        name_en="e-Gov",
        starts=date(2024, 6, 1),
        start_note="planned 'from 2024-06' in the 2023 announcement; the actual start is not "
        "established (smartphone-service.md 16, question 6). MODEL: 2024-06-01, uncertain",
        certificate="sign",
        source="smartphone-service.md 11.1 (plan: ITM-2305; actual date [U])",
        starts_is_model=True,
    ),
    RelyingService(
        key="e-tax",
        name_ja="e-Tax（確定申告）",
        name_en="e-Tax",
        starts=date(2025, 1, 6),
        start_note="from the filing for tax year 2024, 'around 2025-01'. MODEL: 2025-01-06, "
        "the first working day of government offices in 2025 (29 Dec–3 Jan are closed, "
        "4–5 Jan 2025 were a weekend)",
        certificate="sign",
        source="smartphone-service.md 11.1 (Impress 1499103)",
        starts_is_model=True,
    ),
    RelyingService(
        key="digital-auth-app",
        name_ja="デジタル認証アプリ",
        name_en="Digital authentication app",
        starts=None,
        start_note="released 2024-06-24 without support for the Android smartphone "
        "certificate; no support date is established",
        certificate="auth",
        source="smartphone-service.md 11.1 (ITmedia 2406, developers.digital.go.jp)",
    ),
)


def service(key: str) -> RelyingService:
    """A service of :data:`SERVICES` by key; an unknown key lists the known ones."""
    try:
        return SERVICES[key]
    except (KeyError, TypeError):
        raise RelyingServiceError(
            f"unknown relying service {key!r}; known: {', '.join(SERVICES)}") from None


def _day(on: date) -> date:
    if isinstance(on, datetime):
        if on.tzinfo is None or on.utcoffset() is None:
            raise RelyingServiceError(
                f"{on.isoformat()} has no timezone; pass a date or an aware datetime")
        return on.astimezone(JST).date()
    if not isinstance(on, date):
        raise RelyingServiceError(f"expected a date, not {type(on).__name__}")
    return on


def available(key_or_service: str | RelyingService, on: date) -> tuple[bool, str]:
    """Whether the service accepts smartphone certificates on day ``on`` (Japan's calendar;
    an aware datetime counts as its JST day), with a one-line reason either way."""
    s = key_or_service if isinstance(key_or_service, RelyingService) else service(key_or_service)
    day = _day(on)
    if s.starts is None:
        return False, (f"{s.name_en} has no established start date for smartphone "
                       f"certificates; asked on {day.isoformat()}")
    if day < s.starts:
        return False, (f"{s.name_en} accepts smartphone certificates from {s.start_text}; "
                       f"asked on {day.isoformat()}")
    return True, f"{s.name_en} accepts smartphone certificates since {s.start_text}"


def services_frame() -> pd.DataFrame:
    """:data:`SERVICES` as a pandas DataFrame, one row per service (for notebooks)."""
    import pandas as pd

    rows = [dataclasses.asdict(s) for s in SERVICES.values()]
    columns = ["key", "name_en", "name_ja", "starts", "starts_is_model", "certificate",
               "revocation_check", "start_note", "source"]
    return pd.DataFrame(rows, columns=columns)

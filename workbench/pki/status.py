"""What a relying party asks the authority: the status of one certificate at one moment.

Shared by the revocation registry (which answers), the CRL and OCSP builders (which publish
the answer) and relying-party verification (which reads it). RFC 5280 5.3.1 reason codes;
smartphone-service.md section 11 (revocation model) and section 9 (suspension = 一時利用停止,
published as a hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography import x509


class RevocationReason(StrEnum):
    """CRLReason (RFC 5280 5.3.1); the values are the names RFC 5280 and OpenSSL use."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    REMOVE_FROM_CRL = "removeFromCRL"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @property
    def code(self) -> int:
        """The ENUMERATED value on the wire (7 is unused in RFC 5280)."""
        return _CODES[self]

    @property
    def flag(self) -> x509.ReasonFlags:
        """The matching ``cryptography`` enum, for CRL entries and OCSP responses."""
        return x509.ReasonFlags(self.value)

    @classmethod
    def parse(cls, text: str) -> RevocationReason:
        """Accept the RFC name in any case, with or without separators (``key-compromise``)."""
        key = text.replace("-", "").replace("_", "").lower()
        for member in cls:
            if member.value.lower() == key:
                return member
        names = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown revocation reason {text!r}; choose one of {names}")


_CODES = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.CERTIFICATE_HOLD: 6,
    RevocationReason.REMOVE_FROM_CRL: 8,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
    RevocationReason.AA_COMPROMISE: 10,
}


class CertState(StrEnum):
    GOOD = "good"  # issued by this authority and neither revoked nor held at that moment
    REVOKED = "revoked"  # revoked for good: never comes back
    HELD = "held"  # suspended (一時利用停止, certificateHold): may be released or revoked
    UNKNOWN = "unknown"  # not issued by this authority (or not registered)


@dataclass(frozen=True)
class CertStatus:
    """The answer for one (issuer, serial) at ``at``.

    ``issuer_key_id`` is the issuing CA's key identifier (SHA-1 of its public key bit string,
    the same value as its SubjectKeyIdentifier and as an OCSP CertID's issuerKeyHash): the
    three CA generations share one DN, so the name cannot tell them apart (jpki-card.md 9.2).
    ``since`` is when the current state began (revocation or hold time); ``reason`` is set
    for REVOKED and HELD (``certificateHold``).
    """

    serial: int
    issuer_key_id: bytes
    state: CertState
    at: datetime
    since: datetime | None = None
    reason: RevocationReason | None = None

    @property
    def is_good(self) -> bool:
        return self.state is CertState.GOOD


@runtime_checkable
class StatusSource(Protocol):
    """Anything that can answer for certificates: the registry, or a test double."""

    def status(self, issuer_key_id: bytes, serial: int, at: datetime | None = None) -> CertStatus: ...


class ChangeWatch(Protocol):
    """A cheap "has anything changed?" counter over a status source's storage."""

    def version(self) -> int:
        """A number that changes whenever anyone (any process) commits a change."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WatchableStatusSource(StatusSource, Protocol):
    """A status source whose changes can be watched, so answers can be cached safely.

    The OCSP responder reuses a signed response while :meth:`watch`'s counter is unchanged
    and the clock has not reached :meth:`next_change` of that certificate (a revocation may be
    recorded for a later moment). The registry kept in a SQLite file provides both.
    """

    def watch(self) -> ChangeWatch | None:
        """A new watch, or None when changes cannot be watched (an in-memory registry)."""
        ...

    def next_change(self, issuer_key_id: bytes, serial: int, after: datetime) -> datetime | None:
        """When the next recorded event of that certificate takes effect after ``after``."""
        ...

"""The simulated JPKI authority: holders, keys, CA generations, certificates and revocation.

Issuance (jpki-card.md section 9, smartphone-service.md 6), the revocation registry
(:class:`Registry`, :class:`AuthorityStore` for one that survives restarts), CRLs and ARLs
(:mod:`workbench.pki.crl`), the OCSP responder (:class:`OcspResponder`), the HTTP repository
(:class:`RepositoryServer`) and relying-party verification (:func:`verify_certificate`), all on
a controllable clock. Nothing issued here chains to J-LIS: DNs keep the real shape but name a
simulated organization (see :mod:`workbench.pki.profiles`).

Layering (ARCHITECTURE): ``pki`` makes keys and certificates and answers for them; it imports
nothing from ``card``, ``client``, ``transport`` or ``cli`` (putting certificates onto a card
is :mod:`workbench.lifecycle.issuance`). The server and the verifier, which pull in uvicorn and
pyhanko, load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.pki.authority import Authority, CertificateAuthority
from workbench.pki.clock import JST, Clock, FileClock, FixedClock, SystemClock, end_of_day_jst
from workbench.pki.crl import (
    LoadedCrl,
    RevocationSide,
    RevocationSource,
    arl_for,
    crl_for,
    publication_time,
    publish,
)
from workbench.pki.describe import decode_basic_four, describe_certificate
from workbench.pki.holder import Holder, Sex, synthetic_holder
from workbench.pki.keys import derive_seed, generate_rsa_key
from workbench.pki.ocsp import OcspResponder, ResponderMode
from workbench.pki.profiles import (
    AuthorityProfile,
    Generation,
    Hierarchy,
    card_expiry,
    certificate_not_after,
)
from workbench.pki.registry import Registry, RegistryAction, RegistryError, RegistryEvent
from workbench.pki.status import CertState, CertStatus, RevocationReason
from workbench.pki.store import AuthorityStore, StoreError

if TYPE_CHECKING:
    from workbench.pki.server import RepositoryServer
    from workbench.pki.verify import VerificationResult, verify_certificate

__all__ = [
    "JST",
    "Authority",
    "AuthorityProfile",
    "AuthorityStore",
    "CertState",
    "CertStatus",
    "CertificateAuthority",
    "Clock",
    "FileClock",
    "FixedClock",
    "Generation",
    "Hierarchy",
    "Holder",
    "LoadedCrl",
    "OcspResponder",
    "Registry",
    "RegistryAction",
    "RegistryError",
    "RegistryEvent",
    "RepositoryServer",
    "ResponderMode",
    "RevocationReason",
    "RevocationSide",
    "RevocationSource",
    "Sex",
    "StoreError",
    "SystemClock",
    "VerificationResult",
    "arl_for",
    "card_expiry",
    "certificate_not_after",
    "crl_for",
    "decode_basic_four",
    "derive_seed",
    "describe_certificate",
    "end_of_day_jst",
    "generate_rsa_key",
    "publication_time",
    "publish",
    "synthetic_holder",
    "verify_certificate",
]

_LAZY = {
    "RepositoryServer": "workbench.pki.server",
    "VerificationResult": "workbench.pki.verify",
    "verify_certificate": "workbench.pki.verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.pki' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

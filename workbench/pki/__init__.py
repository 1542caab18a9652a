"""The simulated JPKI authority: synthetic holders, keys, CA generations and certificates.

Issuance only (jpki-card.md section 9, smartphone-service.md 6); revocation (CRL, OCSP, the
registry) builds on :class:`Authority` later. Nothing issued here chains to J-LIS: DNs keep the
real shape but name a simulated organization (see :mod:`workbench.pki.profiles`).
"""

from workbench.pki.authority import Authority, CertificateAuthority
from workbench.pki.clock import JST, Clock, FixedClock, SystemClock, end_of_day_jst
from workbench.pki.describe import decode_basic_four, describe_certificate
from workbench.pki.holder import Holder, Sex, synthetic_holder
from workbench.pki.keys import derive_seed, generate_rsa_key
from workbench.pki.profiles import (
    AuthorityProfile,
    Generation,
    Hierarchy,
    card_expiry,
    certificate_not_after,
)

__all__ = [
    "JST",
    "Authority",
    "AuthorityProfile",
    "CertificateAuthority",
    "Clock",
    "FixedClock",
    "Generation",
    "Hierarchy",
    "Holder",
    "Sex",
    "SystemClock",
    "card_expiry",
    "certificate_not_after",
    "decode_basic_four",
    "derive_seed",
    "describe_certificate",
    "end_of_day_jst",
    "generate_rsa_key",
    "synthetic_holder",
]

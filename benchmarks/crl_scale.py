"""A CRL with a million revoked serials: our DER writer and index vs cryptography, side by side.

Why this exists: a full CRL of a national authority is large (smartphone-service.md 11.3: a
platform operator documents that a CRL refresh takes minutes), and the simulator publishes one
per CA generation and interval (workbench/pki/crl.py). Two goals are checked here, not in unit
tests (CONVENTIONS.md, "Timing goals are checked by benchmarks"):

1. generation: ``encode_crl`` (direct DER for revokedCertificates, TBS signed by cryptography)
   at least 5x faster than cryptography's ``CertificateRevocationListBuilder`` for the same CRL;
2. lookup: ``LoadedCrl.is_revoked`` at least 10x faster than cryptography's
   ``get_revoked_certificate_by_serial_number``; the one-time load/index cost is shown apart.

cryptography's builder is given its entries through the constructor: chaining
``add_revoked_certificate`` copies the list on every call (quadratic), which is shown at a small
size for reference. If cryptography's builder would exceed ``--budget`` seconds at the requested
size, both sides are measured at the largest size that fits, and the output says so.

Usage: ``python benchmarks/crl_scale.py [--entries 1000000] [--budget 240] [--registry]``
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.pki import Authority
from workbench.pki.crl import LoadedCrl, encode_crl
from workbench.pki.status import RevocationReason

#: Reason mix (MODEL, after the event table of smartphone-service.md 15.8).
REASONS = (
    [RevocationReason.SUPERSEDED] * 40 + [RevocationReason.CESSATION_OF_OPERATION] * 30
    + [RevocationReason.AFFILIATION_CHANGED] * 15 + [RevocationReason.CERTIFICATE_HOLD] * 5
    + [RevocationReason.KEY_COMPROMISE] * 5 + [RevocationReason.UNSPECIFIED] * 5
)
THIS_UPDATE = datetime(2025, 4, 1, 15, 0, tzinfo=UTC)


def make_entries(n: int, seed: int = 2025) -> list[tuple[int, datetime, RevocationReason]]:
    """n distinct 8-byte serials (as the simulator issues them), revoked over five years."""
    rng = random.Random(seed)
    serials: set[int] = set()
    while len(serials) < n:
        serials.add(rng.getrandbits(63) | 1 << 56)
    start = THIS_UPDATE - timedelta(days=5 * 365)
    span = 5 * 365 * 86400
    return [(s, start + timedelta(seconds=rng.randrange(span)), rng.choice(REASONS))
            for s in sorted(serials)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ours(ca: Any, entries: list) -> bytes:
    return encode_crl(issuer=ca.name, signing_key=ca.private_key,
                      authority_key_id=ca.key_identifier, this_update=THIS_UPDATE,
                      next_update=THIS_UPDATE + timedelta(days=1), number=20180, entries=entries)


def crypto_entries(entries: list) -> list[x509.RevokedCertificate]:
    revoked = []
    for serial, when, reason in entries:
        b = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not RevocationReason.UNSPECIFIED:  # RFC 5280 5.3.1: absent, not 0
            b = b.add_extension(x509.CRLReason(reason.flag), critical=False)
        revoked.append(b.build())
    return revoked


def crypto_sign(ca: Any, revoked: list[x509.RevokedCertificate]) -> bytes:
    aki = x509.AuthorityKeyIdentifier(ca.key_identifier, None, None)
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca.name, last_update=THIS_UPDATE,
        next_update=THIS_UPDATE + timedelta(days=1),
        extensions=[x509.Extension(aki.oid, False, aki),
                    x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(20180))],
        revoked_certificates=revoked)
    return builder.sign(ca.private_key, hashes.SHA256()).public_bytes(Encoding.DER)


def crypto_chained(ca: Any, revoked: list[x509.RevokedCertificate]) -> None:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.name)
               .last_update(THIS_UPDATE).next_update(THIS_UPDATE + timedelta(days=1)))
    for r in revoked:
        builder = builder.add_revoked_certificate(r)
    builder.sign(ca.private_key, hashes.SHA256())


def row(label: str, mine: str, theirs: str, ratio: str = "") -> None:
    print(f"  {label:<38} {mine:>16} {theirs:>18} {ratio:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=240.0,
                        help="max seconds for cryptography's builder (default 240)")
    parser.add_argument("--lookups", type=int, default=20_000, help="our lookups (default 20000)")
    parser.add_argument("--crypto-lookups", type=int, default=40,
                        help="cryptography lookups (each scans the CRL; default 40)")
    parser.add_argument("--registry", action="store_true",
                        help="also time the registry path: register, bulk revoke, read entries")
    args = parser.parse_args()

    ca = Authority(seed="benchmark (synthetic, test only)").ca("auth", 3)
    n = args.entries

    # Estimate cryptography's builder from 50k entries before committing to the full size.
    probe = make_entries(50_000, seed=1)
    t_probe = timed(lambda: crypto_sign(ca, crypto_entries(probe)))[0]
    estimate = t_probe * n / len(probe)
    size = n
    while estimate * size / n > args.budget and size > 50_000:
        size = size // 2
    print(f"CRL with {n:,} revoked serials (8-byte serials, 5 reasons, RSA-2048 CA, one core)")
    if size != n:
        print(f"  cryptography's builder estimated at {estimate:.0f} s for {n:,} entries, over the "
              f"{args.budget:.0f} s budget: both sides measured at {size:,} entries")
    entries = make_entries(size)

    t_ours, der = timed(lambda: ours(ca, entries))
    t_objects, revoked = timed(lambda: crypto_entries(entries))
    t_sign, crypto_der = timed(lambda: crypto_sign(ca, revoked))
    revoked = []  # free the million entry objects before the lookups
    same_tbs = (x509.load_der_x509_crl(der).tbs_certlist_bytes
                == x509.load_der_x509_crl(crypto_der).tbs_certlist_bytes)
    t_theirs = t_objects + t_sign

    print(f"\ngeneration at {size:,} entries{'':<10} {'ours':>16} {'cryptography':>18} "
          f"{'ratio':>10}")
    row("time (entries + encode + sign)", f"{t_ours:.2f} s",
        f"{t_theirs:.2f} s", f"{t_theirs / t_ours:.1f}x")
    row("  of which building entry objects", "-", f"{t_objects:.2f} s")
    row("  of which builder.sign", "-", f"{t_sign:.2f} s")
    row("size (DER)", f"{len(der) / 1e6:.2f} MB", f"{len(crypto_der) / 1e6:.2f} MB")
    print(f"  TBSCertList byte-identical to cryptography's: {'yes' if same_tbs else 'NO'}")
    chained = []
    for k in (10_000, 40_000):
        small_revoked = crypto_entries(make_entries(k, seed=3))
        chained.append(timed(lambda r=small_revoked: crypto_chained(ca, r))[0]
                       - timed(lambda r=small_revoked: crypto_sign(ca, r))[0])
    print(f"  (chaining add_revoked_certificate instead costs {chained[0]:.2f} s extra at 10,000 "
          f"and {chained[1]:.2f} s at 40,000 entries: quadratic, so not used above)")

    # Lookups: a mix of listed and unlisted serials.
    rng = random.Random(7)
    present = [e[0] for e in rng.sample(entries, min(len(entries), args.lookups // 2))]
    absent = [rng.getrandbits(63) | 1 << 56 for _ in range(args.lookups - len(present))]
    probes = present + absent
    rng.shuffle(probes)
    t_index, loaded = timed(lambda: LoadedCrl.from_der(der))
    t_load, parsed = timed(lambda: x509.load_der_x509_crl(der))
    t_own_first = timed(lambda: loaded.is_revoked(probes[0]))[0]
    t_lookup = timed(lambda: [loaded.is_revoked(s) for s in probes])[0] / len(probes)
    few = probes[:args.crypto_lookups]
    t_first = timed(lambda: parsed.get_revoked_certificate_by_serial_number(few[0]))[0]
    t_crypto = timed(lambda: [parsed.get_revoked_certificate_by_serial_number(s)
                              for s in few[1:]])[0] / max(1, len(few) - 1)
    agree = all((loaded.is_revoked(s) is None)
                == (parsed.get_revoked_certificate_by_serial_number(s) is None) for s in few)

    print(f"\nlookup in the loaded {size:,}-entry CRL{'':<4} {'ours':>16} {'cryptography':>18} "
          f"{'ratio':>10}")
    row("one-time load (ours: parse + index)", f"{t_index:.2f} s", f"{t_load * 1e3:.1f} ms")
    row("first lookup", f"{t_own_first * 1e6:.1f} us", f"{t_first * 1e3:.1f} ms")
    row(f"per lookup (mean of {len(probes):,} / {len(few) - 1})", f"{t_lookup * 1e6:.1f} us",
        f"{t_crypto * 1e3:.2f} ms", f"{t_crypto / t_lookup:,.0f}x")
    breakeven = t_index / max(t_crypto - t_lookup, 1e-12)
    print(f"  answers agree on {len(few)} sampled serials: {'yes' if agree else 'NO'}; "
          f"the index pays for itself after {breakeven:.0f} lookups")

    if args.registry:
        from workbench.pki.clock import FixedClock
        from workbench.pki.registry import Registry

        reg = Registry(None, FixedClock(THIS_UPDATE))
        serials = [e[0] for e in entries]
        t_reg = timed(lambda: reg.register_serials(
            ca.key_identifier, serials, not_before=THIS_UPDATE - timedelta(days=5 * 366),
            not_after=THIS_UPDATE + timedelta(days=366)))[0]
        t_rev = timed(lambda: reg.revoke_many(serials, RevocationReason.SUPERSEDED,
                                              at=THIS_UPDATE - timedelta(hours=1)))[0]
        t_rows, rows = timed(lambda: reg.crl_rows(ca.key_identifier, THIS_UPDATE))
        t_enc = timed(lambda: ours(ca, rows))[0]
        print(f"\nregistry path at {size:,} (in-memory SQLite): register {t_reg:.1f} s, "
              f"bulk revoke {t_rev:.1f} s, read CRL rows {t_rows:.1f} s, encode+sign "
              f"{t_enc:.1f} s")
        reg.close()


if __name__ == "__main__":
    main()

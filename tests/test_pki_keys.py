"""Seeded RSA keys and seed derivation (jpki-card.md 9.1: RSA-2048, e = 65537).

Seeded keys are test/demo material only. 1024-bit keys are used where the size does not matter,
to keep the run fast; the 2048-bit path is exercised by the authority tests.
"""

from __future__ import annotations

import hashlib
import math

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from workbench.errors import PkiError
from workbench.pki import derive_seed, generate_rsa_key
from workbench.pki.keys import miller_rabin_rounds


def test_seeded_key_is_deterministic_when_recomputed() -> None:
    """Same seed → same key, computed afresh (not just the cached object)."""
    first = generate_rsa_key(b"determinism", 1024)
    assert generate_rsa_key(b"determinism", 1024) is first  # cached
    again = generate_rsa_key(b"determinism", 1024, cache=False)
    assert again is not first
    assert again.private_numbers() == first.private_numbers()
    assert again.public_key().public_numbers() == first.public_key().public_numbers()


def test_seeded_key_golden_modulus() -> None:
    """Reproducible on every machine: the algorithm (stream, sieve, Miller–Rabin) is pinned."""
    n = generate_rsa_key(b"golden", 1024).public_key().public_numbers().n
    assert hashlib.sha256(n.to_bytes(128, "big")).hexdigest()[:32] == (
        "e55f9427277c62508faef7828beb811d"
    )


def test_different_seeds_give_different_keys() -> None:
    a = generate_rsa_key(b"seed-a", 1024).public_key().public_numbers()
    b = generate_rsa_key(b"seed-b", 1024).public_key().public_numbers()
    assert a.n != b.n


@pytest.mark.parametrize("bits", [1024, 2048])
def test_seeded_key_is_a_valid_rsa_key(bits: int) -> None:
    """9.1: exact size, e = 65537, CRT values consistent (OpenSSL checks p, q on load),
    and PKCS#1 v1.5 sign/verify round-trips."""
    key = generate_rsa_key(derive_seed("pki-tests", "valid", str(bits)), bits)
    numbers = key.private_numbers()
    p, q, n = numbers.p, numbers.q, numbers.public_numbers.n
    assert key.key_size == bits and n.bit_length() == bits
    assert numbers.public_numbers.e == 65537
    assert p * q == n and p != q
    assert p.bit_length() == q.bit_length() == bits // 2
    assert numbers.d * 65537 % math.lcm(p - 1, q - 1) == 1
    assert numbers.iqmp * q % p == 1
    message = b"jpki-workbench test message"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert len(signature) == bits // 8
    key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_unseeded_keys_come_from_cryptography_and_differ() -> None:
    a, b = generate_rsa_key(bits=1024), generate_rsa_key(bits=1024)
    assert a.public_key().public_numbers() != b.public_key().public_numbers()
    assert a.public_key().public_numbers().e == 65537


@pytest.mark.parametrize(("seed", "bits"), [(b"", 1024), ("text", 1024), (b"x", 1000), (b"x", 512)])
def test_bad_key_arguments(seed: object, bits: int) -> None:
    with pytest.raises(PkiError):
        generate_rsa_key(seed, bits)  # type: ignore[arg-type]


def test_miller_rabin_rounds_reach_2_to_minus_100() -> None:
    """5 rounds for 1024-bit primes (the FIPS 186 figure); worst case 4^-t for tiny sizes."""
    assert miller_rabin_rounds(1024) == 5
    assert miller_rabin_rounds(512) > miller_rabin_rounds(1024)
    assert miller_rabin_rounds(32) == 50


def test_derive_seed_separates_domains() -> None:
    """One master seed → many independent seeds; label boundaries and seed types matter."""
    assert derive_seed("card", "sign") == derive_seed("card", "sign")
    assert len(derive_seed("card", "sign")) == 32
    seeds = {
        derive_seed("card", "sign"),
        derive_seed("card", "auth"),
        derive_seed("card"),
        derive_seed("card", "si", "gn"),
        derive_seed(b"card", "sign"),
        derive_seed(1),
        derive_seed("1"),
        derive_seed(b"\x01"),
    }
    assert len(seeds) == 8
    assert derive_seed("card", "sign").hex() == (
        "846547d2f3dcea8ba286bf7a604e5bfc2f403103124a291094cf570c2850f65d"
    )


@pytest.mark.parametrize("bad", [-1, True, 1.5, None])
def test_derive_seed_refuses_unusable_masters(bad: object) -> None:
    with pytest.raises(PkiError):
        derive_seed(bad)  # type: ignore[arg-type]

"""RSA key pairs for the simulated authority and cards, optionally reproducible from a seed.

JPKI uses RSA-2048 with e = 65537 for every key pair (jpki-card.md 9.1). Notebooks, golden DER
files and replayed traces need the *same* keys on every run, but pyca/cryptography cannot take a
seed. So seeded keys are generated here in pure Python: a SHA-256 counter-mode stream
(:class:`~workbench.pki.drbg.HashStream`) picks a start point, a small-prime sieve thins the
candidates and Miller–Rabin (bases from the same stream) confirms the primes.

Seeded keys are for reproducible demos and tests only, never for security: anyone who knows
the seed knows the private key. Unseeded keys come from cryptography's own generator.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from workbench.errors import PkiError
from workbench.pki.drbg import HashStream

#: The public exponent of every JPKI key (jpki-card.md 9.1).
PUBLIC_EXPONENT = 65537

#: Odd primes below this bound are sieved out before any Miller–Rabin test. Larger bounds
#: remove a few more composites but cost more per sieve window; 2**16 is a good balance.
_SIEVE_BOUND = 1 << 16

#: Offsets (candidate = start + 2*i) examined per sieve window. A 1024-bit prime is found after
#: about 355 odd candidates on average, so one window nearly always suffices.
_WINDOW = 4096

_SEED_DOMAIN = b"jpki-workbench/derive_seed/v1"

_in_memory: dict[tuple[bytes, int], rsa.RSAPrivateKey] = {}  # seeded keys of this process


def _odd_primes_below(bound: int) -> tuple[int, ...]:
    flags = bytearray([1]) * bound
    flags[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(bound - 1) + 1):
        if flags[p]:
            flags[p * p :: p] = bytes(len(range(p * p, bound, p)))
    return tuple(p for p in range(3, bound) if flags[p])


_SMALL_PRIMES = _odd_primes_below(_SIEVE_BOUND)


def miller_rabin_rounds(bits: int, target: int = 100) -> int:
    """Rounds of Miller–Rabin with random bases for error ≤ 2**-target on ``bits``-bit candidates.

    Uses the Damgård–Landrock–Pomerance bound for random k-bit candidates,
    p(k, t) ≤ k^(3/2) · 2^t · t^(-1/2) · 4^(2 - sqrt(t·k)) (valid for 3 ≤ t ≤ k/9), plus one extra
    round because our candidates come from an incremental search rather than independent draws.
    For 1024-bit primes (RSA-2048) this gives 5 rounds, the figure FIPS 186 tables also use.
    Where the bound does not apply (small sizes) it falls back to the worst-case 4^-t bound.
    """
    for t in range(3, bits // 9 + 1):
        log2_error = 1.5 * math.log2(bits) + t - 0.5 * math.log2(t) + 2 * (2 - math.sqrt(t * bits))
        if log2_error <= -target:
            return t + 1
    return (target + 1) // 2


def _is_probable_prime(n: int, rounds: int, stream: HashStream) -> bool:
    """Miller–Rabin with bases drawn from ``stream``; ``n`` is odd and already sieved."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = stream.randint(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int, stream: HashStream) -> int:
    """A ``bits``-bit probable prime with the top two bits set and gcd(e, p - 1) = 1.

    The top two bits make the product of two such primes exactly ``2 * bits`` long (FIPS 186-5
    A.1.3 asks for p, q ≥ sqrt(2) · 2^(bits - 1), which this implies).
    """
    rounds = miller_rabin_rounds(bits)
    top = 0b11 << (bits - 2)
    limit = 1 << bits
    while True:
        start = stream.randbits(bits) | top | 1
        # sieve[i] == 1 ⇔ start + 2i has no odd prime factor below _SIEVE_BOUND.
        sieve = bytearray([1]) * _WINDOW
        for p in _SMALL_PRIMES:
            # start + 2i ≡ 0 (mod p) ⇔ i ≡ -start · 2^-1 (mod p)
            first = (-start * ((p + 1) // 2)) % p
            if first < _WINDOW:
                sieve[first::p] = bytes(len(range(first, _WINDOW, p)))
        for i in range(_WINDOW):
            if not sieve[i]:
                continue
            candidate = start + 2 * i
            if candidate >= limit:
                break
            if math.gcd(PUBLIC_EXPONENT, candidate - 1) != 1:
                continue
            if _is_probable_prime(candidate, rounds, stream):
                return candidate


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or bits < 1024 or bits % 2:
        raise PkiError(f"RSA key size must be an even number of bits ≥ 1024, got {bits!r}")


@functools.lru_cache(maxsize=256)
def _seeded_rsa_key(seed: bytes, bits: int) -> rsa.RSAPrivateKey:
    """Deterministic key for ``seed``; cached because the same seed always gives the same key."""
    stream = HashStream(b"rsa-key/" + str(bits).encode() + b"/" + seed)
    half = bits // 2
    p = _random_prime(half, stream)
    while True:
        q = _random_prime(half, stream)
        # FIPS 186-5 A.1.3: |p - q| > 2^(bits/2 - 100), which also rules out p == q.
        if abs(p - q) > 1 << (half - 100):
            break
    if p < q:
        p, q = q, p
    n = p * q
    lam = math.lcm(p - 1, q - 1)
    d = pow(PUBLIC_EXPONENT, -1, lam)
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(PUBLIC_EXPONENT, n),
    )
    return numbers.private_key()


def generate_rsa_key(
    seed: bytes | None = None, bits: int = 2048, *, cache: bool = True
) -> rsa.RSAPrivateKey:
    """An RSA key pair with e = 65537 (jpki-card.md 9.1).

    Without ``seed``: cryptography's generator (OS randomness, fast, the right choice whenever
    reproducibility is not needed). With ``seed``: a deterministic key, identical for the same
    ``(seed, bits)`` on every machine and Python version, cached in-process and in the folder
    of :func:`key_cache_folder` (``cache=False`` recomputes it, e.g. to check
    reproducibility). Seeded keys are for reproducible demos and
    tests only, never for security. Use :func:`derive_seed` to get independent seeds for the
    many keys of one card or authority.
    """
    _check_bits(bits)
    if seed is None:
        return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)
    if not isinstance(seed, bytes | bytearray) or not seed:
        raise PkiError("a key seed must be non-empty bytes; use derive_seed() to make one "
                       "from a number or a label")
    if not cache:
        return _seeded_rsa_key.__wrapped__(bytes(seed), bits)
    return _cached_seeded_key(bytes(seed), bits)


def key_cache_folder() -> Path | None:
    """Where seeded keys are kept between processes: ``$JPKI_WORKBENCH_KEY_CACHE``, else
    ``$XDG_CACHE_HOME/jpki-workbench/seeded-keys`` (``~/.cache/…``); ``None`` when
    ``JPKI_WORKBENCH_KEY_CACHE`` is ``off`` (or empty).

    The keys there are derived from seeds, so anyone with the seed can derive them again; the
    cache only saves the ~0.5 s per key that the pure-Python derivation costs (a simulated
    authority has nine). Files are written 0600 and atomically; one that does not load as a
    consistent RSA key of the right size (cryptography checks the CRT values on load) is
    derived again and replaced.
    """
    chosen = os.environ.get("JPKI_WORKBENCH_KEY_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jpki-workbench" / "seeded-keys"


def _cached_seeded_key(seed: bytes, bits: int) -> rsa.RSAPrivateKey:
    """The in-process cache first, then the folder of :func:`key_cache_folder`, then derive."""
    key = _in_memory.get((seed, bits))
    if key is not None:
        return key
    folder = key_cache_folder()
    name = hashlib.sha256(b"rsa-key-cache/v1/" + str(bits).encode() + b"/" + seed).hexdigest()
    if folder is not None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            loaded = serialization.load_der_private_key((folder / f"{name}.der").read_bytes(),
                                                        password=None)
            if (isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == bits
                    and loaded.public_key().public_numbers().e == PUBLIC_EXPONENT):
                key = loaded
    if key is None:
        key = _seeded_rsa_key(seed, bits)
        if folder is not None:
            der = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(der)
                os.replace(tmp, folder / f"{name}.der")
    _in_memory[(seed, bits)] = key
    return key


def clear_seeded_key_cache() -> None:
    """Forget the in-process cache of seeded keys (the folder cache stays; the result of the
    next call is the same key either way)."""
    _seeded_rsa_key.cache_clear()
    _in_memory.clear()


def _encode_master(master: bytes | int | str) -> bytes:
    # A type tag keeps b"1", "1" and 1 apart, so that differently typed seeds never collide.
    if isinstance(master, bool):
        raise PkiError("a seed cannot be a bool")
    if isinstance(master, bytes | bytearray):
        return b"b" + bytes(master)
    if isinstance(master, str):
        return b"s" + master.encode("utf-8")
    if isinstance(master, int):
        if master < 0:
            raise PkiError(f"an integer seed must be ≥ 0, got {master}")
        return b"i" + master.to_bytes(max(1, (master.bit_length() + 7) // 8), "big")
    raise PkiError(f"a seed must be bytes, int or str, not {type(master).__name__}")


def derive_seed(master: bytes | int | str, *labels: str) -> bytes:
    """A 32-byte seed for one purpose, derived from a master seed and a label path.

    Domain separation lets one card or authority seed yield many independent key seeds
    (e.g. ``derive_seed(card_seed, "jpki", "sign-key")`` vs ``..., "auth-key"``) without the
    caller managing dozens of seeds. Every field is length-prefixed so that label boundaries
    are unambiguous (``("ab", "c")`` ≠ ``("a", "bc")``).
    """
    h = hashlib.sha256(_SEED_DOMAIN)
    encoded = _encode_master(master)
    h.update(len(encoded).to_bytes(4, "big") + encoded)
    for label in labels:
        if not isinstance(label, str):
            raise PkiError(f"seed labels must be str, not {type(label).__name__}")
        raw = label.encode("utf-8")
        h.update(len(raw).to_bytes(4, "big") + raw)
    return h.digest()

"""A small deterministic random byte stream for reproducible synthetic data.

Seeded demos and golden files need the *same* keys, holders and identifiers on every run and
on every Python version, so nothing here relies on :mod:`random` (whose algorithms may change
between releases). The stream is SHA-256 in counter mode over a domain-separated seed: simple
to re-implement elsewhere, and good enough to drive prime search and test-data choices.

It is **not** a cryptographic DRBG in the SP 800-90A sense (no reseeding, no prediction
resistance) and must never produce key material that protects anything real.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from workbench.errors import PkiError

T = TypeVar("T")

_DOMAIN = b"jpki-workbench/hash-stream/v1"


class HashStream:
    """Deterministic byte stream: block_i = SHA-256(domain || len(seed) || seed || i).

    Kept stateful (a position in the stream) because callers draw many values in sequence;
    two streams built from the same seed yield identical sequences of calls.
    """

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray):
            raise PkiError(f"a stream seed must be bytes, not {type(seed).__name__}")
        self._prefix = _DOMAIN + len(seed).to_bytes(4, "big") + bytes(seed)
        self._counter = 0
        self._buffer = b""

    def read(self, n: int) -> bytes:
        """Return the next ``n`` bytes of the stream."""
        while len(self._buffer) < n:
            block = hashlib.sha256(self._prefix + self._counter.to_bytes(8, "big")).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def randbits(self, k: int) -> int:
        """An integer of at most ``k`` bits (uniform in [0, 2**k))."""
        if k <= 0:
            return 0
        value = int.from_bytes(self.read((k + 7) // 8), "big")
        return value >> (-k % 8)

    #: Same name as :meth:`random.Random.getrandbits`, so either can be passed where an
    #: ``rng`` is accepted (identifiers and serials in :mod:`workbench.pki.authority`).
    getrandbits = randbits

    def randbelow(self, n: int) -> int:
        """Uniform integer in [0, n) by rejection sampling (no modulo bias)."""
        if n <= 0:
            raise PkiError(f"randbelow needs a positive bound, got {n}")
        k = n.bit_length()
        while True:
            value = self.randbits(k)
            if value < n:
                return value

    def randint(self, low: int, high: int) -> int:
        """Uniform integer in [low, high], both ends included."""
        return low + self.randbelow(high - low + 1)

    def choice(self, items: Sequence[T]) -> T:
        """One element of a non-empty sequence."""
        if not items:
            raise PkiError("cannot choose from an empty sequence")
        return items[self.randbelow(len(items))]

"""Seeded (pure Python) vs cryptography RSA-2048 key generation, per key, side by side.

Seeded generation exists for a capability, not for speed: cryptography cannot take a seed, and
notebooks, golden DER files and replayed traces need the same keys on every run
(workbench/pki/keys.py, jpki-card.md 9.1). This benchmark only shows what that capability
costs, so that callers know why authorities create CA keys lazily and cache them.

Usage: ``python benchmarks/keygen.py [--keys N] [--bits 2048]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from workbench.pki.keys import derive_seed, generate_rsa_key


def _time_per_key(make: Callable[[int], object], count: int) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        make(i)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10, help="keys per method (default 10)")
    parser.add_argument("--bits", type=int, default=2048, help="key size (default 2048)")
    args = parser.parse_args()

    # cache=False: every seeded key is really computed, never served from the in-process cache
    seeded = _time_per_key(
        lambda i: generate_rsa_key(derive_seed("benchmark", str(i)), args.bits, cache=False),
        args.keys,
    )
    native = _time_per_key(lambda i: generate_rsa_key(None, args.bits), args.keys)

    print(f"RSA-{args.bits} key generation, {args.keys} keys each (seconds per key)")
    print(f"{'':10} {'seeded':>10} {'crypto':>10} {'ratio':>8}")
    for label, pick in (("mean", statistics.mean), ("median", statistics.median),
                        ("min", min), ("max", max)):
        s, n = pick(seeded), pick(native)
        print(f"{label:10} {s:10.3f} {n:10.3f} {s / n:7.1f}x")
    print("seeded keys: reproducible demos/tests only; the point is the seed, not the speed")


if __name__ == "__main__":
    main()

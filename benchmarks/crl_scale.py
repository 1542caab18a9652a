"""A CRL with a million revoked serials: our writer and reader against cryptography, fairly.

Why this exists: a full CRL of a national authority is large (smartphone-service.md 11.3: a
platform operator documents that a CRL refresh takes minutes), and the simulator publishes one
per CA generation and interval (workbench/pki/crl.py). The goals are checked here, not in unit
tests (CONVENTIONS.md, "Timing goals are checked by benchmarks").

**Reading.** The peer is what a competent cryptography user writes to answer "is this serial
revoked, why and since when" many times: load the CRL, then index it once with a dict,
``{rc.serial_number: rc for rc in x509.load_der_x509_crl(der)}``, and per lookup read
``revocation_date_utc`` and the CRLReason extension of the entry found. (cryptography's own
``get_revoked_certificate_by_serial_number`` scans the list on every call, so comparing against
it measures a missing index, not our speed; it is not used.) Both sides answer with the same
``(RevocationReason, datetime)`` or ``None``, and every answer is checked. Goals: our
``LoadedCrl.from_der`` builds no slower than the peer's load + dict, its structure takes at
most a third of the peer's memory, and a lookup takes at most 1.5x the peer's time. A second
peer precomputes every answer (``{serial: (reason, time)}``): the fastest possible lookup, at a
large build and memory cost; it is shown for reference, not as a goal.

Lookups: a fixed pool of serials drawn once (half listed, half not), timed as one list
comprehension per side. Listed serials are timed twice: the first pass is each entry's first
touch (cryptography parses an entry's extensions then, and keeps them: its memory grows with
use), the second a repeat. Build and lookups run in rounds that alternate which side goes
first, with ``gc.collect()`` between; medians are reported with the [min-max] spread.

Memory: each side builds its structure in a fresh subprocess that has already read the DER
(both sides keep the DER itself, about 40 MB at a million entries, so it is left out of both).
The figure used for the goal is the growth of the resident set (RSS, /proc/self/statm) from
before the build to after it and a ``gc.collect()``: it counts Python objects, allocator
overhead and cryptography's Rust allocations alike. tracemalloc's figure is printed beside it:
it sees only Python's allocator, so it misses cryptography's Rust allocations and undercounts
the peer.

The CRL is written in serial order, as the registry and OpenSSL's ``ca`` write it. The same
entries in random order (cryptography's builder keeps the order it is given) are loaded too:
our reader must then sort, and that build time is reported as well.

**Writing.** ``encode_crl`` (direct DER for revokedCertificates, the TBS signed through
cryptography), given rows as the registry returns them, against cryptography's
``CertificateRevocationListBuilder`` given the same serials, times, reasons, issuer, extensions
and key; the TBSCertList must be byte-identical. The peer's time is split into building its
``RevokedCertificate`` objects and ``builder.sign``. The builder gets its entries through the
constructor: chaining ``add_revoked_certificate`` copies the list on every call (quadratic),
which is shown at small sizes. Goal: the whole build at least 5x faster.

Usage: ``python benchmarks/crl_scale.py [--quick] [--entries N] [--rounds R] [--json PATH]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cryptography
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REASON_OF_FLAG = {r.flag: r for r in RevocationReason}

Entry = tuple[int, datetime, RevocationReason]
Answer = tuple[RevocationReason, datetime] | None


def make_entries(n: int, seed: int = 2025) -> list[Entry]:
    """n distinct 8-byte serials (as the simulator issues them), revoked over five years."""
    rng = random.Random(seed)
    serials: set[int] = set()
    while len(serials) < n:
        serials.add(random_serial(rng))
    start = THIS_UPDATE - timedelta(days=5 * 365)
    span = 5 * 365 * 86400
    return [(s, start + timedelta(seconds=rng.randrange(span)), rng.choice(REASONS))
            for s in sorted(serials)]


def random_serial(rng: random.Random) -> int:
    return rng.getrandbits(63) | 1 << 56


def registry_rows(entries: list[Entry]) -> list[tuple[int, int, str, None]]:
    """The entries as ``Registry.crl_rows`` hands them to the encoder: seconds, reason names."""
    return [(s, (when - _EPOCH) // timedelta(seconds=1), reason.value, None)
            for s, when, reason in entries]


# --- the sides --------------------------------------------------------------------------------

def ours_encode(ca: Any, rows: list) -> bytes:
    return encode_crl(issuer=ca.name, signing_key=ca.private_key,
                      authority_key_id=ca.key_identifier, this_update=THIS_UPDATE,
                      next_update=THIS_UPDATE + timedelta(days=1), number=20180, entries=rows)


def peer_entry_objects(entries: list[Entry]) -> list[x509.RevokedCertificate]:
    revoked = []
    for serial, when, reason in entries:
        b = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not RevocationReason.UNSPECIFIED:  # RFC 5280 5.3.1: absent, not 0
            b = b.add_extension(x509.CRLReason(reason.flag), critical=False)
        revoked.append(b.build())
    return revoked


def peer_sign(ca: Any, revoked: list[x509.RevokedCertificate]) -> x509.CertificateRevocationList:
    aki = x509.AuthorityKeyIdentifier(ca.key_identifier, None, None)
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca.name, last_update=THIS_UPDATE,
        next_update=THIS_UPDATE + timedelta(days=1),
        extensions=[x509.Extension(aki.oid, False, aki),
                    x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(20180))],
        revoked_certificates=revoked)
    return builder.sign(ca.private_key, hashes.SHA256())


def peer_chained(ca: Any, revoked: list[x509.RevokedCertificate]) -> None:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.name)
               .last_update(THIS_UPDATE).next_update(THIS_UPDATE + timedelta(days=1)))
    for r in revoked:
        builder = builder.add_revoked_certificate(r)
    builder.sign(ca.private_key, hashes.SHA256())


def peer_answer(rc: x509.RevokedCertificate) -> tuple[RevocationReason, datetime]:
    """What a cryptography user reads from an entry: its reason (absent = unspecified)
    and revocation date."""
    try:
        flag = rc.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return RevocationReason.UNSPECIFIED, rc.revocation_date_utc
    return _REASON_OF_FLAG[flag], rc.revocation_date_utc


def build_ours(der: bytes) -> tuple[LoadedCrl, Callable[[int], Answer]]:
    loaded = LoadedCrl.from_der(der)
    return loaded, loaded.is_revoked


def build_peer(der: bytes) -> tuple[Any, Callable[[int], Answer]]:
    crl = x509.load_der_x509_crl(der)
    table = {rc.serial_number: rc for rc in crl}

    def lookup(serial: int, get: Callable = table.get) -> Answer:
        rc = get(serial)
        return None if rc is None else peer_answer(rc)

    return (crl, table), lookup


def build_eager(der: bytes) -> tuple[Any, Callable[[int], Answer]]:
    answers = {rc.serial_number: peer_answer(rc) for rc in x509.load_der_x509_crl(der)}
    return answers, answers.get


BUILDERS: dict[str, Callable[[bytes], tuple[Any, Callable[[int], Answer]]]] = {
    "ours": build_ours, "peer": build_peer, "eager": build_eager,
}
LABELS = {"ours": "ours (LoadedCrl)", "peer": "peer (dict of entries)",
          "eager": "peer, eager (dict of answers)"}


# --- measurement -------------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_lookups(lookup: Callable[[int], Answer], pool: list[int],
                expected: list[Answer], what: str) -> float:
    """Seconds per call over the pool; every answer is checked against the expected one."""
    gc.collect()
    elapsed, answers = timed(lambda: [lookup(s) for s in pool])
    if answers != expected:
        wrong = sum(a != e for a, e in zip(answers, expected, strict=True))
        raise SystemExit(f"{what}: {wrong} wrong answers out of {len(pool)}")
    return elapsed / len(pool)


class Pool:
    """The lookup pool, drawn once: listed serials (in random order) and absent ones, with the
    expected answers."""

    def __init__(self, entries: list[Entry], lookups: int) -> None:
        rng = random.Random(7)
        self.hits = [e[0] for e in rng.sample(entries, min(len(entries), lookups // 2))]
        listed = {e[0] for e in entries}
        self.misses: list[int] = []
        while len(self.misses) < lookups - len(self.hits):
            s = random_serial(rng)
            if s not in listed:
                self.misses.append(s)
        answers = {s: (reason, when) for s, when, reason in entries}
        self.expected_hits: list[Answer] = [answers[s] for s in self.hits]
        self.expected_misses: list[Answer] = [None] * len(self.misses)


def measure_reading(der: bytes, pool: Pool, sides: list[str],
                    rounds: int) -> dict[str, dict[str, list[float]]]:
    hits, misses = pool.hits, pool.misses
    expected_hits, expected_misses = pool.expected_hits, pool.expected_misses
    out: dict[str, dict[str, list[float]]] = {
        side: {"build": [], "hit_first": [], "hit_repeat": [], "miss": []} for side in sides}
    for r in range(rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # alternate who goes first
        for side in order:
            gc.collect()
            t_build, (structure, lookup) = timed(lambda side=side: BUILDERS[side](der))
            res = out[side]
            res["build"].append(t_build)
            res["hit_first"].append(run_lookups(lookup, hits, expected_hits, side))
            res["hit_repeat"].append(run_lookups(lookup, hits, expected_hits, side))
            res["miss"].append(run_lookups(lookup, misses, expected_misses, side))
            del structure, lookup
            gc.collect()
        line = "  ".join(f"{side} build {out[side]['build'][-1]:.2f} s, hit "
                         f"{out[side]['hit_first'][-1] * 1e6:.2f}/"
                         f"{out[side]['hit_repeat'][-1] * 1e6:.2f} us, miss "
                         f"{out[side]['miss'][-1] * 1e9:.0f} ns" for side in sides)
        print(f"  reading round {r + 1}/{rounds}: {line}", flush=True)
    return out


def measure_unsorted(der: bytes, pool: Pool, rounds: int) -> dict[str, list[float]]:
    """Build time for the same CRL with its entries not in serial order (cryptography keeps the
    order it is given; this module and OpenSSL's ``ca`` write serial order): ours must sort.
    A sample of the pool is answered by both sides each round, and checked."""
    out: dict[str, list[float]] = {"ours": [], "peer": []}
    sample = pool.hits[:1000] + pool.misses[:1000]
    expected = pool.expected_hits[:1000] + pool.expected_misses[:1000]
    for r in range(rounds):
        for side in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            gc.collect()
            t_build, (structure, lookup) = timed(lambda side=side: BUILDERS[side](der))
            out[side].append(t_build)
            if [lookup(s) for s in sample] != expected:
                raise SystemExit(f"{side}: wrong answers from the unsorted CRL")
            del structure, lookup
            gc.collect()
        print(f"  unsorted CRL round {r + 1}/{rounds}: build ours {out['ours'][-1]:.2f} s, "
              f"peer {out['peer'][-1]:.2f} s", flush=True)
    return out


def measure_memory(der: bytes, hits: list[int], sides: list[str]) -> dict[str, dict[str, float]]:
    """Each side in fresh subprocesses: RSS growth, then tracemalloc (a separate process, since
    tracing slows the build and adds its own memory)."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        der_path, pool_path = Path(tmp, "crl.der"), Path(tmp, "hits.bin")
        der_path.write_bytes(der)
        pool_path.write_bytes(array("Q", hits).tobytes())
        for side in sides:
            out[side] = {}
            for mode in ("rss", "tracemalloc"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--probe", side, "--probe-mode", mode,
                     "--probe-der", str(der_path), "--probe-hits", str(pool_path)],
                    capture_output=True, text=True, check=True)
                out[side].update(json.loads(proc.stdout))
            print(f"  memory {side}: RSS +{out[side]['rss_build'] / 1e6:.1f} MB after the build, "
                  f"+{out[side]['rss_used'] / 1e6:.1f} MB after the listed pool was looked up; "
                  f"tracemalloc {out[side]['traced_current'] / 1e6:.1f} MB "
                  f"(peak {out[side]['traced_peak'] / 1e6:.1f} MB)", flush=True)
    return out


def probe(side: str, mode: str, der_path: str, hits_path: str) -> None:
    """One side's memory, in this fresh process (see :func:`measure_memory`)."""
    import tracemalloc

    der = Path(der_path).read_bytes()
    hits = array("Q", Path(hits_path).read_bytes()).tolist()
    gc.collect()
    result: dict[str, float] = {}
    if mode == "rss":
        before = rss_bytes()
        structure, lookup = BUILDERS[side](der)
        gc.collect()
        result["rss_build"] = rss_bytes() - before
        for s in hits:
            lookup(s)
        gc.collect()
        result["rss_used"] = rss_bytes() - before
    else:
        tracemalloc.start()
        structure, lookup = BUILDERS[side](der)
        gc.collect()
        result["traced_current"], result["traced_peak"] = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    del structure, lookup
    print(json.dumps(result))


def measure_writing(ca: Any, entries: list[Entry], rounds: int) -> dict[str, Any]:
    rows = registry_rows(entries)
    out: dict[str, Any] = {"ours": [], "peer_objects": [], "peer_sign": [], "size_ours": 0,
                           "size_peer": 0, "tbs_identical": True}
    for r in range(rounds):
        for side in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            gc.collect()
            if side == "ours":
                t, der = timed(lambda: ours_encode(ca, rows))
                out["ours"].append(t)
                ours_tbs = x509.load_der_x509_crl(der).tbs_certlist_bytes
                out["size_ours"] = len(der)
            else:
                t_obj, revoked = timed(lambda: peer_entry_objects(entries))
                t_sign, crl = timed(lambda r=revoked: peer_sign(ca, r))
                out["peer_objects"].append(t_obj)
                out["peer_sign"].append(t_sign)
                peer_tbs = crl.tbs_certlist_bytes
                out["size_peer"] = len(crl.public_bytes(Encoding.DER))
                del revoked, crl
            gc.collect()
        out["tbs_identical"] &= ours_tbs == peer_tbs
        del ours_tbs, peer_tbs
        print(f"  writing round {r + 1}/{rounds}: ours {out['ours'][-1]:.2f} s, cryptography "
              f"{out['peer_objects'][-1]:.2f} s entry objects + {out['peer_sign'][-1]:.2f} s "
              f"sign", flush=True)
    if not out["tbs_identical"]:
        raise SystemExit("TBSCertList differs from cryptography's")
    return out


def measure_chained(ca: Any) -> list[tuple[int, float]]:
    """Extra seconds of ``add_revoked_certificate`` chaining over the constructor (quadratic)."""
    extra = []
    for k in (10_000, 40_000):
        revoked = peer_entry_objects(make_entries(k, seed=3))
        extra.append((k, timed(lambda r=revoked: peer_chained(ca, r))[0]
                      - timed(lambda r=revoked: peer_sign(ca, r))[0]))
    return extra


# --- report ------------------------------------------------------------------------------------

def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e9:.0f} ns"


def fmt_cell(values: Sequence[float], unit: str = "s") -> str:
    s = spread(values)
    if unit == "MB":
        return f"{s['median'] / 1e6:.1f} MB"
    return f"{fmt_time(s['median'])} [{fmt_time(s['min'])}-{fmt_time(s['max'])}]"


def report(n: int, reading: dict, unsorted: dict, memory: dict, writing: dict,
           sides: list[str]) -> list[dict]:
    """The final table; every ratio is peer / ours (above 1: ours is faster or smaller)."""
    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    rows: list[dict[str, Any]] = []

    def add(what: str, ours: Sequence[float], peer: Sequence[float], goal: float | None,
            goal_text: str, unit: str = "s") -> None:
        ratio = med(peer) / med(ours)
        rows.append({"what": what, "ours": spread(ours), "peer": spread(peer), "ratio": ratio,
                     "goal": goal_text, "met": None if goal is None else ratio >= goal,
                     "ours_text": fmt_cell(ours, unit), "peer_text": fmt_cell(peer, unit)})

    r_ours, r_peer = reading["ours"], reading["peer"]
    add("build (ours: from_der; peer: load + dict)", r_ours["build"], r_peer["build"], 1.0,
        "ours <= peer")
    add("build, entries not in serial order", unsorted["ours"], unsorted["peer"], 1.0,
        "ours <= peer")
    add("lookup, listed serial (first touch)", r_ours["hit_first"], r_peer["hit_first"],
        1 / 1.5, "ours <= 1.5x peer")
    add("lookup, listed serial (repeat)", r_ours["hit_repeat"], r_peer["hit_repeat"], 1 / 1.5,
        "ours <= 1.5x peer")
    add("lookup, absent serial", r_ours["miss"], r_peer["miss"], 1 / 1.5, "ours <= 1.5x peer")
    add("memory: RSS growth after build", [memory["ours"]["rss_build"]],
        [memory["peer"]["rss_build"]], 3.0, "ours <= peer / 3", "MB")
    add("  (tracemalloc, Python heap only)", [memory["ours"]["traced_current"]],
        [memory["peer"]["traced_current"]], None, "-", "MB")
    add("  (RSS after looking up the listed pool)", [memory["ours"]["rss_used"]],
        [memory["peer"]["rss_used"]], None, "-", "MB")
    peer_whole = [a + b for a, b in zip(writing["peer_objects"], writing["peer_sign"],
                                        strict=True)]
    add("generation, whole (peer: objects + sign)", writing["ours"], peer_whole, 5.0,
        "ours <= peer / 5")
    add("generation, peer's builder.sign only", writing["ours"], writing["peer_sign"], None,
        "-")

    print(f"\nCRL with {n:,} revoked serials; medians [min-max] over rounds; ratio = peer / "
          "ours (> 1: ours faster or smaller)")
    if n != 1_000_000:
        print("  (the goals are set for 1,000,000 entries; at other sizes they are shown for "
              "information)")
    print(f"  {'':<44} {'ours':>26} {'peer (cryptography)':>26} {'ratio':>8}  goal")
    for row in rows:
        met = "" if row["met"] is None else ("met" if row["met"] else "NOT MET")
        print(f"  {row['what']:<44} {row['ours_text']:>26} {row['peer_text']:>26} "
              f"{row['ratio']:>7.2f}x  {row['goal']} {met}")
    if "eager" in sides:
        e = reading["eager"]
        print(f"\n  reference, {LABELS['eager']}: build {fmt_cell(e['build'])}, lookup listed "
              f"{fmt_cell(e['hit_first'])} / repeat {fmt_cell(e['hit_repeat'])}, absent "
              f"{fmt_cell(e['miss'])}, memory RSS +{memory['eager']['rss_build'] / 1e6:.1f} MB")
    print(f"  DER: ours {writing['size_ours'] / 1e6:.2f} MB, cryptography's "
          f"{writing['size_peer'] / 1e6:.2f} MB; TBSCertList byte-identical: "
          f"{'yes' if writing['tbs_identical'] else 'NO'}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=None,
                        help="revoked serials (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="50,000 entries: seconds, not minutes")
    parser.add_argument("--rounds", type=int, default=None,
                        help="reading rounds (build + lookups; default 5, 3 with --quick)")
    parser.add_argument("--write-rounds", type=int, default=3, help="generation rounds (3)")
    parser.add_argument("--lookups", type=int, default=None,
                        help="lookup pool size, half listed (default 100,000; 20,000 with --quick)")
    parser.add_argument("--no-eager", action="store_true",
                        help="skip the reference peer that precomputes every answer")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--probe", choices=sorted(BUILDERS), help=argparse.SUPPRESS)
    parser.add_argument("--probe-mode", help=argparse.SUPPRESS)
    parser.add_argument("--probe-der", help=argparse.SUPPRESS)
    parser.add_argument("--probe-hits", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.probe_mode, args.probe_der, args.probe_hits)
        return

    n = args.entries or (50_000 if args.quick else 1_000_000)
    rounds = args.rounds or (3 if args.quick else 5)
    lookups = args.lookups or (20_000 if args.quick else 100_000)
    sides = ["ours", "peer"] + ([] if args.no_eager else ["eager"])
    print(f"CRL with {n:,} revoked serials (8-byte serials, 6 reasons, RSA-2048 CA, one core); "
          f"Python {platform.python_version()}, cryptography {cryptography.__version__}",
          flush=True)

    ca = Authority(seed="benchmark (synthetic, test only)").ca("auth", 3)
    entries = make_entries(n)
    started = time.perf_counter()
    writing = measure_writing(ca, entries, args.write_rounds)
    der = ours_encode(ca, registry_rows(entries))
    pool = Pool(entries, lookups)
    # (entries are dropped below: a million live tuples would slow every full GC pass during
    # the reading rounds)
    shuffled = entries[:]
    random.Random(11).shuffle(shuffled)
    der_unsorted = ours_encode(ca, registry_rows(shuffled))
    del entries, shuffled
    reading = measure_reading(der, pool, sides, rounds)
    unsorted = measure_unsorted(der_unsorted, pool, min(rounds, 3))
    del der_unsorted
    memory = measure_memory(der, pool.hits, sides)
    chained = [] if args.quick else measure_chained(ca)
    rows = report(n, reading, unsorted, memory, writing, sides)
    for k, extra in chained:
        print(f"  chaining add_revoked_certificate instead of the constructor: +{extra:.2f} s "
              f"at {k:,} entries")
    print(f"  ({time.perf_counter() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "entries": n, "rounds": rounds, "write_rounds": args.write_rounds,
            "lookups": lookups, "python": platform.python_version(),
            "cryptography": cryptography.__version__, "table": [
                {k: v for k, v in row.items() if not k.endswith("_text")} for row in rows],
            "reading": reading, "unsorted_build": unsorted, "memory": memory, "writing": writing,
            "chained_extra_seconds": chained,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()

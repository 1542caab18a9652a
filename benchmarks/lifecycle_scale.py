"""The whole phone-certificate lifecycle for 1,000 and 10,000 holders on one registry (issue 10).

Why this exists: a notebook or a load test drives thousands of people through the smartphone
certificate service (smartphone-service.md 15.2-15.6) in one :class:`~workbench.lifecycle.
Simulation`; the cost must grow linearly with the number of holders, and it should be the RSA
work (key generation in cards and SEs, signatures) rather than the model around it.

One run is one fresh worker process with one ``Simulation`` (one authority database, one
revocation registry). Every holder goes through, phase by phase, each phase for all holders
before the next:

- ``setup``: ``add_person`` (a plastic card: five RSA keys, its certificates registered) and
  ``add_phone`` (a Pixel 7 with a factory SE);
- ``apply`` (15.2 A1-A8: the card signs the application);
- ``issuance``: one ``advance(3 min)`` for the whole batch (the issuance delay is 2 min, B3);
- ``register`` (C1-C13: two key pairs made in the SE, two certificates, PINs set);
- ``login`` (15.3: Mynaportal login, the service checks the auth certificate with
  pyhanko-certvalidator and an OCSP response from the authority's responder);
- ``loss`` (9.1, 15.4: the hotline holds both certificates; the lock job is pushed to the
  phone at once; the clock stays at Monday 10:03 JST, inside the hotline's opening hours);
- ``release`` (9.2, 15.5: card-signed; auth hold lifted, signing certificate revoked and
  re-issued on a new SE key pair);
- ``revoke`` (8, 15.6: signed on the phone; both revoked, the SE content deleted).

Every answer is checked (``Result.ok`` and the facts it carries), and the registry is checked at
four checkpoints outside the timed phases, against the spec's rules (14.3, 14.4): after
registration every phone certificate is good and every pair ACTIVE; after the loss every phone
certificate is held, every pair ON_HOLD and every phone's JPKI applet locked; after the release
the auth certificate is good again, the first signing certificate revoked and a new one good;
at the end every phone certificate (three per holder) is revoked, every card certificate is
still good, every SE has no JPKI applet, and every pair's history is exactly apply, issued,
registered, hotline hold, release, signing certificate re-registered, user revocation.

Two key modes. ``real``: cards and SEs generate their RSA-2048 keys as they do normally
(eight per holder: five on the card, two at registration, one at the release). ``pool``: the
``key_source`` hook of ``Simulation`` hands out keys from a pool of pre-generated keys, made
at the start of the worker process (a fixed count, reused round-robin). **The pool is
test-only**: it exists so that scale runs are affordable, and a pool key is never used for
anything but this benchmark's throw-away simulation.

Where the CPU goes is measured in place, in the worker process only, by timing the primitives
with the calling thread's CPU clock (``time.thread_time``; the TSM runs on threads of its own):
``rsa.generate_private_key``; every signature of a card or SE key (the keys are wrapped in a
timing proxy: the pool's keys, and in real mode the generator's); ``CertificateBuilder.sign``
(a certificate's DER and its CA signature); the card AP data signatures
(``workbench.card.content._sign``); OCSP response signing (``workbench.pki.ocsp._sign``);
certificate validation by the relying service (``verify_certificate`` in
``workbench.lifecycle.relying``: pyhanko-certvalidator with the OCSP response, asyncio loop
included); SCP03's AES/CMAC. A nested timed call belongs to the outermost one, so nothing is
counted twice. "The model" is the process CPU time (all threads) minus all of these. A
separate ``--profile-holders`` run profiles every thread with cProfile to say where the
model's time goes (builtins and standard-library functions charged to their callers; time a
thread spends waiting for the other is left out); profiling slows Python calls more than C
code, so its shares are indicative and the in-place figures are the ones the goals are judged
on.

Fairness: each size runs in a fresh process (clean peak RSS, no warm caches carried over), one
at a time; repeated sizes run in interleaved rounds (ascending, then descending). The machine
is shared and has 2 cores, so wall time depends on the load (printed); the growth goal is
judged on CPU time per holder, and wall time is shown beside it.

Goals: per-holder CPU cost at the largest size at most 1.2x the smallest, within one run; RSA
key generation and signing at least 70 % of the CPU (real keys).

Usage::

    python benchmarks/lifecycle_scale.py --quick   # pool 100, 1,000, 1,000, 100; real 100
    python benchmarks/lifecycle_scale.py           # pool 1,000, 10,000, 1,000; real 1,000
    python benchmarks/lifecycle_scale.py --sizes 1000,10000 --real-sizes 0 --json out.json
    python benchmarks/lifecycle_scale.py --report out.json   # print a saved report again

The full run took about 2 h 10 min on the shared 2-core machine (see the README paragraph);
``--quick`` about 12 min.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cryptography  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

#: The phases, in order (module docstring).
PHASES = ("setup", "apply", "issuance", "register", "login", "loss", "release", "revoke")
#: A pair's history after the whole lifecycle (smartphone-service.md 15.2 B3/C13, 15.4 S2,
#: 15.5 R1-R3, 15.6), in the names the authority records.
EXPECTED_HISTORY = ("apply", "issued", "registered", "hotline-hold", "release",
                    "sign-reregistered", "user-revocation")
#: In-place CPU buckets (module docstring), in report order; the RSA ones make the goal.
BUCKETS = ("rsa_keygen", "rsa_sign_token", "rsa_sign_certificate", "rsa_sign_card_data",
           "rsa_sign_ocsp", "certvalidator", "scp03_aes_cmac")
RSA_BUCKETS = BUCKETS[:5]
BUCKET_LABELS = {
    "rsa_keygen": "RSA key generation",
    "rsa_sign_token": "RSA sign: card/SE keys",
    "rsa_sign_certificate": "RSA sign: certificates",
    "rsa_sign_card_data": "RSA sign: card AP data",
    "rsa_sign_ocsp": "RSA sign: OCSP responses",
    "certvalidator": "pyhanko-certvalidator",
    "scp03_aes_cmac": "SCP03 AES/CMAC",
    "model": "the model (all else)",
}
GROWTH_GOAL = 1.2
RSA_SHARE_GOAL = 0.70
MARK = "@@lifecycle-scale-result@@ "


# -- in-place CPU accounting (worker process only) -------------------------------------------

class Buckets:
    """Exclusive thread-CPU seconds per bucket: a call made inside another timed call belongs
    to the outer one (one stack per thread)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._local = threading.local()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        local = self._local

        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(local, "busy", False):
                return fn(*args, **kwargs)
            local.busy = True
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name] += time.thread_time() - start
                self.calls[name] += 1
                local.busy = False

        return timed

    def snapshot(self) -> tuple[dict[str, float], Counter[str]]:
        return dict(self.cpu), Counter(self.calls)


class TimedKey(rsa.RSAPrivateKey):
    """An RSA private key whose signatures are timed (bucket ``rsa_sign_token``); everything
    else is delegated. Only for card and SE keys inside this benchmark's simulation."""

    def __init__(self, key: rsa.RSAPrivateKey, sign: Callable[..., bytes]) -> None:
        self._key = key
        self._sign = sign

    def sign(self, data: Any, padding: Any, algorithm: Any) -> bytes:
        return self._sign(data, padding, algorithm)

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        return self._key.decrypt(ciphertext, padding)

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        return self._key.private_numbers()

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:  # noqa: A002
        return self._key.private_bytes(encoding, format, encryption_algorithm)

    def __copy__(self) -> TimedKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TimedKey:
        return self


def _real(key: Any) -> Any:
    return key._key if isinstance(key, TimedKey) else key


def instrument(buckets: Buckets) -> Callable[[rsa.RSAPrivateKey], TimedKey]:
    """Wrap the primitives (module docstring); returns the card/SE key wrapper."""
    from workbench.card import content
    from workbench.lifecycle import relying
    from workbench.pki import ocsp
    from workbench.se import scp03

    def timed_key(key: rsa.RSAPrivateKey) -> TimedKey:
        return TimedKey(key, buckets.wrap("rsa_sign_token", key.sign))

    generate = rsa.generate_private_key
    timed_generate = buckets.wrap("rsa_keygen", generate)

    def generate_private_key(*args: Any, **kwargs: Any) -> rsa.RSAPrivateKey:
        return timed_key(timed_generate(*args, **kwargs))

    rsa.generate_private_key = generate_private_key  # type: ignore[assignment]
    certificate_sign = x509.CertificateBuilder.sign

    def sign_certificate(self: x509.CertificateBuilder, private_key: Any, *args: Any,
                         **kwargs: Any) -> x509.Certificate:
        return certificate_sign(self, _real(private_key), *args, **kwargs)

    x509.CertificateBuilder.sign = buckets.wrap(  # type: ignore[method-assign]
        "rsa_sign_certificate", sign_certificate)
    content._sign = buckets.wrap("rsa_sign_card_data", content._sign)
    ocsp._sign = buckets.wrap("rsa_sign_ocsp", ocsp._sign)
    relying.verify_certificate = buckets.wrap("certvalidator", relying.verify_certificate)
    for name in ("_aes_ecb", "_aes_cbc_encrypt", "_aes_cbc_decrypt", "_cmac"):
        setattr(scp03, name, buckets.wrap("scp03_aes_cmac", getattr(scp03, name)))
    return timed_key


def wrapper_overhead_s() -> float:
    """Seconds one timed call adds (two thread-CPU clock reads and the bookkeeping)."""
    probe = Buckets()
    bare = lambda: None  # noqa: E731
    wrapped = probe.wrap("probe", bare)
    n = 20000
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            bare()
        mid = time.perf_counter()
        for _ in range(n):
            wrapped()
        end = time.perf_counter()
        best = min(best, ((end - mid) - (mid - t)) / n)
    return max(best, 0.0)


def profile_all_threads() -> list[cProfile.Profile]:
    """cProfile (thread CPU clock) in the main thread and every thread started from now on."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    return profiles


WAIT_GROUP = "waiting for the other thread (not CPU)"
#: Where a profiled function's own time goes, by where it is (first match wins). A function
#: that matches none (a builtin, the standard library) is charged to its callers, in
#: proportion to the time each call edge took, up the call graph.
PROFILE_GROUPS = (
    ("RSA private-key operations", ("RSAPrivateKey' objects>", "generate_private_key",
                                    "create_x509_certificate", "create_ocsp_response")),
    ("RSA key loading (CA keys, once per run)", ("load_der_private_key",)),
    ("RSA public-key verify", ("RSAPublicKey' objects>",)),
    (WAIT_GROUP, ("acquire' of '_thread.lock", "acquire' of '_thread.RLock")),
    ("SQLite (with each commit's fsync)", ("sqlite3.",)),
    ("pyhanko-certvalidator, asn1crypto, asyncio", ("pyhanko", "asn1crypto", "oscrypto",
                                                    "asyncio", "aiohttp", "stringprep")),
    ("AES/CMAC (SCP03)", ("workbench/se/scp03.py", "hazmat/primitives/ciphers",
                          "hazmat/primitives/cmac")),
    ("wire recording and timing model", ("workbench/lifecycle/wire.py", "workbench/timing/")),
    ("TSM on threads: queues and locks", ("threading.py", "queue.py")),
    ("x509 objects (cryptography)", ("cryptography/x509", "_rust.x509")),
    ("benchmark instrumentation", ("lifecycle_scale.py",)),
    ("card, SE and APDU model", ("workbench/card/", "workbench/se/", "workbench/apdu.py",
                                "workbench/tlv.py", "workbench/client/")),
    ("service model (authority, app, PKI, simulation)", ("workbench/",)),
)
OTHER_GROUP = "unattributed (stdlib at the top of a thread)"


def profile_groups(stats: pstats.Stats) -> tuple[dict[str, float], list[tuple[str, float, int]]]:
    """Own CPU time per group (PROFILE_GROUPS) and the top functions by own time."""
    table = stats.stats  # type: ignore[attr-defined]

    def where(func: tuple[str, int, str]) -> str:
        filename, line, name = func
        return name if filename == "~" else f"{filename}:{line}({name})"

    memo: dict[tuple[str, int, str], dict[str, float]] = {}

    def share(func: tuple[str, int, str]) -> dict[str, float]:
        if func in memo:
            return memo[func]
        text = where(func)
        for group, needles in PROFILE_GROUPS:
            if any(n in text for n in needles):
                memo[func] = {group: 1.0}
                return memo[func]
        memo[func] = {OTHER_GROUP: 1.0}  # provisional: cuts cycles in the call graph
        callers = table[func][4] if func in table else {}
        edges = [(c, v[2] or v[3]) for c, v in callers.items() if c != func]
        weight = sum(w for _, w in edges)
        if edges and weight > 0:
            out: dict[str, float] = defaultdict(float)
            for caller, w in edges:
                for group, part in share(caller).items():
                    out[group] += part * w / weight
            memo[func] = dict(out)
        return memo[func]

    groups: dict[str, float] = defaultdict(float)
    top: list[tuple[str, float, int]] = []
    for func, (_cc, ncalls, tottime, _ct, _callers) in table.items():
        for group, part in share(func).items():
            groups[group] += part * tottime
        top.append((where(func).replace(sys.prefix, "<venv>"), tottime, ncalls))
    top.sort(key=lambda t: -t[1])
    return dict(groups), top[:15]


# -- one run: one Simulation ----------------------------------------------------------------------

class ValidationError(AssertionError):
    """An answer or a registry state is not what the spec says."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise ValidationError(what)


def make_pool(count: int) -> tuple[list[rsa.RSAPrivateKey], float]:
    """``count`` RSA-2048 keys, TEST ONLY (module docstring), and the seconds they took."""
    t = time.perf_counter()
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(count)]
    return keys, time.perf_counter() - t


def rss_mb() -> float:
    """Current resident set (MB), from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def run_worker(mode: str, holders: int, pool_size: int, profiled: bool,
               tmp_root: str | None = None) -> dict[str, Any]:
    """One run (module docstring); returns its figures as a dict. ``tmp_root``: where the
    simulation's temporary folder (authority database) goes (default: the system's)."""
    from workbench.lifecycle import Simulation
    from workbench.se import gp

    out: dict[str, Any] = {"mode": mode, "holders": holders, "profiled": profiled,
                           "load_start": os.getloadavg()}
    pool: list[rsa.RSAPrivateKey] = []
    if mode == "pool":
        pool, out["pool_seconds"] = make_pool(pool_size)
        out["pool_size"] = pool_size
    buckets = Buckets()
    timed_key = instrument(buckets)
    drawn: Counter[str] = Counter()
    key_source = None
    if mode == "pool":
        wrapped_pool = [timed_key(k) for k in pool]
        turn = itertools.count()

        def key_source(label: str) -> rsa.RSAPrivateKey:
            drawn[label.split(":")[0]] += 1
            return wrapped_pool[next(turn) % len(wrapped_pool)]

    profiles = profile_all_threads() if profiled else []
    folder = tempfile.TemporaryDirectory(prefix="jpki-sim-", dir=tmp_root)
    out["folder"] = folder.name
    t = time.perf_counter()
    sim = Simulation(key_source=key_source, folder=folder.name)
    out["simulation_init_seconds"] = time.perf_counter() - t
    out["rss_before_mb"] = rss_mb()
    main_profile = cProfile.Profile() if profiled else None
    phases: dict[str, dict[str, Any]] = {}
    checks_seconds = 0.0

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        cpu0, calls0 = buckets.snapshot()
        if main_profile is not None:
            main_profile.enable()
        w, c = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        if main_profile is not None:
            main_profile.disable()
        cpu1, calls1 = buckets.snapshot()
        phases[name] = {"wall": wall, "cpu": cpu,
                        "buckets": {b: cpu1.get(b, 0.0) - cpu0.get(b, 0.0) for b in BUCKETS},
                        "calls": {b: calls1[b] - calls0[b] for b in BUCKETS}}
        print(f"  [{mode} {holders}] {name:9} {wall:8.1f} s wall {cpu:8.1f} s CPU",
              file=sys.stderr, flush=True)

    @contextmanager
    def checkpoint() -> Iterator[None]:
        nonlocal checks_seconds
        t = time.perf_counter()
        yield
        checks_seconds += time.perf_counter() - t

    def phone_certs() -> dict[tuple[bytes, int], Any]:
        return {(r.issuer_key_id, r.serial): r
                for r in sim.store.registry.certificates(kind=None)
                if r.token == "gpse" and r.kind in ("sign", "auth")}

    def by_serial(records: dict[tuple[bytes, int], Any]) -> dict[int, Any]:
        table = {serial: r for (_ikid, serial), r in records.items()}
        check(len(table) == len(records), "two phone certificates share a serial")
        return table

    names = [f"holder-{i:05d}" for i in range(holders)]
    people, phones = [], []
    with phase("setup"):
        for name in names:
            person = sim.add_person(name)
            phone = sim.add_phone(f"{name}-phone", person, "Pixel 7")
            check(phone.se is not None, f"{phone.name} has no SE")
            people.append(person)
            phones.append(phone)
    with phase("apply"):
        for person, phone in zip(people, phones, strict=True):
            r = phone.app.apply(person)
            check(r.ok and r.facts["state"] == "APPLIED" and not r.facts.get("supersedes"),
                  f"apply for {person.name}: {r}")
    with phase("issuance"):
        sim.advance(timedelta(minutes=3))
    with phase("register"):
        for phone in phones:
            r = phone.app.register()
            check(r.ok and bool(r.facts["pair"]) and not r.facts["superseded"],
                  f"register {phone.name}: {r}")
    with checkpoint():
        pairs = sim.authority.pairs()
        check(len(pairs) == holders, f"{len(pairs)} pairs for {holders} holders")
        check(all(p.state.value == "ACTIVE" for p in pairs), "a pair is not ACTIVE")
        first_sign = {p.pair_id: p.sign_serial for p in pairs}
        certs = by_serial(phone_certs())
        check(len(certs) == 2 * holders, f"{len(certs)} phone certificates, not 2 per holder")
        check(all(r.state.value == "good" for r in certs.values()), "a new phone cert not good")
    with phase("login"):
        for phone in phones:
            r = phone.app.login()
            check(r.ok and r.facts.get("revocation") == "ocsp", f"login {phone.name}: {r}")
    with phase("loss"):
        for person in people:
            call = sim.report_loss(person.name)
            check(call.acted_at == call.called_at and not call.revoke,
                  f"the hotline did not act at once for {person.name} ({call})")
    with checkpoint():
        check(all(p.state.value == "ON_HOLD" for p in sim.authority.pairs()), "pair not held")
        certs = by_serial(phone_certs())
        check(all(r.state.value == "held" for r in certs.values()), "a phone cert is not held")
        for phone in phones:  # S3: the lock job reached the online phone
            entry = next(e for e in phone.se.registry if e.aid == gp.JPKI_INSTANCE_AID)
            check(gp.is_locked(entry.life_cycle), f"{phone.name}: JPKI applet not locked")
    with phase("release"):
        for person, phone in zip(people, phones, strict=True):
            r = phone.app.release(person)
            check(r.ok and any(j.startswith("reissue-sign:") for j in r.facts["jobs"]),
                  f"release {phone.name}: {r}")
    with checkpoint():
        pairs = sim.authority.pairs()
        check(all(p.state.value == "ACTIVE" for p in pairs), "a released pair is not ACTIVE")
        certs = by_serial(phone_certs())
        check(len(certs) == 3 * holders, f"{len(certs)} phone certs, not 3 per holder")
        for p in pairs:
            check(p.sign_serial != first_sign[p.pair_id], "signing certificate not re-issued")
            check(certs[first_sign[p.pair_id]].state.value == "revoked", "old sign not revoked")
            check(certs[p.sign_serial].state.value == "good", "new signing cert not good")
            check(certs[p.auth_serial].state.value == "good", "auth cert still held")
    with phase("revoke"):
        for phone in phones:
            r = phone.app.revoke()
            check(r.ok and r.facts["state"] == "REVOKED" and "delete" in r.facts["jobs"],
                  f"revoke {phone.name}: {r}")
    with checkpoint():
        pairs = sim.authority.pairs()
        check(len(pairs) == holders and all(p.state.value == "REVOKED" for p in pairs),
              "a pair is not REVOKED")
        certs = by_serial(phone_certs())
        check(len(certs) == 3 * holders and all(r.state.value == "revoked"
                                                for r in certs.values()),
              "a phone certificate (auth, first or re-issued sign) is not revoked")
        card = [r for r in sim.store.registry.certificates(kind=None)
                if r.token == "icc" and r.kind in ("sign", "auth")]
        check(len(card) == 2 * holders and all(r.state.value == "good" for r in card),
              "a card certificate changed state")
        check(all(phone.se.jpki is None for phone in phones), "an SE still has its JPKI applet")
        history: dict[str, list[str]] = defaultdict(list)
        for row in sim.authority.history():
            history[row["pair"]].append(row["event"])
        check(len(history) == holders, "history rows for the wrong number of pairs")
        bad = [pid for pid, events in history.items() if tuple(events) != EXPECTED_HISTORY]
        check(not bad, f"{len(bad)} pairs with an unexpected history, e.g. "
                       f"{history[bad[0]] if bad else ''}")
    out["validated"] = True
    out["checks_seconds"] = checks_seconds
    out["phases"] = phases
    out["wire_records"] = len(sim.wire.records)
    out["pool_draws"] = dict(drawn)
    out["rss_end_mb"] = rss_mb()
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_end"] = os.getloadavg()
    out["wrapper_overhead_us"] = 1e6 * wrapper_overhead_s()
    if profiled and main_profile is not None:
        stats = pstats.Stats(main_profile)
        for prof in profiles:
            try:
                stats.add(prof)
            except TypeError:  # a thread that never ran profiled code
                pass
        groups, top = profile_groups(stats)
        out["profile"] = {"groups": groups, "top": top,
                          "total": sum(groups.values())}
    sim.close()
    folder.cleanup()
    return out


# -- the driver ---------------------------------------------------------------------------

def spawn(mode: str, holders: int, pool_size: int, profiled: bool = False,
          tmp_root: str | None = None) -> dict[str, Any]:
    """One run in a fresh process (module docstring: fairness, clean peak RSS)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, str(holders),
           "--pool-size", str(pool_size)] + (["--worker-profile"] if profiled else []) + (
               ["--tmp-root", tmp_root] if tmp_root else [])
    print(f"run: {mode} keys, {holders} holders{' (profiled)' if profiled else ''} …",
          file=sys.stderr, flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"worker {mode} {holders} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len(MARK):])
    result["process_seconds"] = time.perf_counter() - t
    return result


def per_holder(run: dict[str, Any], key: str, phases: tuple[str, ...] = PHASES) -> float:
    return 1000 * sum(run["phases"][p][key] for p in phases) / run["holders"]


def bucket_totals(run: dict[str, Any]) -> dict[str, float]:
    """Seconds per bucket over all phases, and ``model`` = process CPU minus the buckets."""
    totals = {b: sum(run["phases"][p]["buckets"][b] for p in PHASES) for b in BUCKETS}
    totals["model"] = sum(run["phases"][p]["cpu"] for p in PHASES) - sum(totals.values())
    return totals


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and min-max per (mode, holders)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if not r["profiled"]:
            groups[(r["mode"], r["holders"])].append(r)
    rows = []
    for (mode, holders), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "pool",
                                                                      kv[0][1])):
        def stat(values: list[float]) -> dict[str, float]:
            return {"median": statistics.median(values), "min": min(values), "max": max(values)}

        cpu_total = [sum(r["phases"][p]["cpu"] for p in PHASES) for r in rs]
        totals = [bucket_totals(r) for r in rs]
        shares = {b: statistics.median(t[b] / c for t, c in zip(totals, cpu_total, strict=True))
                  for b in (*BUCKETS, "model")}
        calls = {b: statistics.median(sum(r["phases"][p]["calls"][b] for p in PHASES)
                                      / holders for r in rs) for b in BUCKETS}
        overhead = statistics.median(
            sum(calls.values()) * holders * r["wrapper_overhead_us"] / 1e6 / c
            for r, c in zip(rs, cpu_total, strict=True))
        rows.append({
            "mode": mode, "holders": holders, "runs": len(rs),
            "ms_per_holder_wall": stat([per_holder(r, "wall") for r in rs]),
            "ms_per_holder_cpu": stat([per_holder(r, "cpu") for r in rs]),
            "holders_per_s_wall": stat([holders / sum(r["phases"][p]["wall"] for p in PHASES)
                                        for r in rs]),
            "holders_per_s_cpu": stat([holders / c for c in cpu_total]),
            "phase_ms_per_holder_cpu": {p: statistics.median(
                1000 * r["phases"][p]["cpu"] / holders for r in rs) for p in PHASES},
            "phase_ms_per_holder_wall": {p: statistics.median(
                1000 * r["phases"][p]["wall"] / holders for r in rs) for p in PHASES},
            "bucket_ms_per_holder": {b: statistics.median(1000 * t[b] / holders for t in totals)
                                     for b in (*BUCKETS, "model")},
            "cpu_share": shares,
            "rsa_share": statistics.median(sum(t[b] for b in RSA_BUCKETS) / c
                                           for t, c in zip(totals, cpu_total, strict=True)),
            "calls_per_holder": calls,
            "certvalidator_ms_per_login": statistics.median(
                1000 * r["phases"]["login"]["buckets"]["certvalidator"] / holders for r in rs),
            "login_ms_cpu": statistics.median(1000 * r["phases"]["login"]["cpu"] / holders
                                              for r in rs),
            "instrumentation_overhead_share": overhead,
            "peak_rss_mb": stat([r["peak_rss_mb"] for r in rs]),
            "rss_growth_kb_per_holder": stat([1000 * (r["rss_end_mb"] - r["rss_before_mb"])
                                              / holders for r in rs]),
            "wire_records_per_holder": rs[0]["wire_records"] / holders,
            "keys_per_holder": (sum(rs[0]["pool_draws"].values()) / holders if mode == "pool"
                                else calls["rsa_keygen"]),
            "simulation_init_s": statistics.median(r["simulation_init_seconds"] for r in rs),
            "pool_seconds": statistics.median(r.get("pool_seconds", 0.0) for r in rs),
            "checks_s": statistics.median(r["checks_seconds"] for r in rs),
            "validated": all(r["validated"] for r in rs),
            "load": [r["load_start"][0] for r in rs] + [rs[-1]["load_end"][0]],
        })
    return {"rows": rows}


def growth(summary: dict[str, Any], mode: str) -> dict[str, Any] | None:
    rows = [r for r in summary["rows"] if r["mode"] == mode]
    if len(rows) < 2:
        return None
    small, large = rows[0], rows[-1]
    return {
        "mode": mode, "small": small["holders"], "large": large["holders"],
        "cpu_ratio": (large["ms_per_holder_cpu"]["median"]
                      / small["ms_per_holder_cpu"]["median"]),
        "wall_ratio": (large["ms_per_holder_wall"]["median"]
                       / small["ms_per_holder_wall"]["median"]),
        "phase_cpu_ratio": {p: large["phase_ms_per_holder_cpu"][p]
                            / small["phase_ms_per_holder_cpu"][p] for p in PHASES},
        "model_ratio": (large["bucket_ms_per_holder"]["model"]
                        / small["bucket_ms_per_holder"]["model"]),
    }


def _spread(s: dict[str, float], fmt: str = "{:.1f}") -> str:
    if s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"


def print_report(report: dict[str, Any]) -> None:
    rows = report["summary"]["rows"]
    m = report["machine"]
    print(f"Lifecycle at scale ({report['date']}): one Simulation (one registry) per run; every "
          "holder through setup, apply, issuance, register, login, loss (hotline hold), "
          "release, revoke")
    print(f"machine: {m['cpus']} CPUs ({m['processor']}), shared; {m['python']}, cryptography "
          f"{m['cryptography']}; each run in a fresh process, one at a time, in the order "
          f"{report['order']} (pool), authority database under {report['tmp_root']}")
    print(f"key pool: {report['pool_size']} RSA-2048 keys generated at the start of each pool "
          "run, reused round-robin for card and SE keys — TEST ONLY, never for anything else")
    print("every answer and the registry were validated at 4 checkpoints: "
          + ("all passed" if all(r["validated"] for r in rows) else "FAILED"))
    print()
    print("median [min–max] over runs; CPU = process CPU time, all threads")
    head = (f"{'mode':5} {'holders':>7} {'runs':>4} {'holders/s wall':>20} {'holders/s CPU':>14} "
            f"{'ms/holder wall':>22} {'ms/holder CPU':>22} {'peak RSS MB':>17} {'KB/holder':>9} "
            f"{'RSA %':>6} {'pyhanko %':>9} {'load':>9}")
    print(head)
    for r in rows:
        print(f"{r['mode']:5} {r['holders']:>7} {r['runs']:>4} "
              f"{_spread(r['holders_per_s_wall']):>20} "
              f"{r['holders_per_s_cpu']['median']:>14.1f} "
              f"{_spread(r['ms_per_holder_wall'], '{:.0f}'):>22} "
              f"{_spread(r['ms_per_holder_cpu'], '{:.0f}'):>22} "
              f"{_spread(r['peak_rss_mb'], '{:.0f}'):>17} "
              f"{r['rss_growth_kb_per_holder']['median']:>9.0f} "
              f"{100 * r['rsa_share']:>6.1f} {100 * r['cpu_share']['certvalidator']:>9.1f} "
              f"{max(r['load']):>9.1f}")
    print()
    labels = [f"{r['mode']} {r['holders']}" for r in rows]
    print("CPU ms per holder by phase (median)")
    print(f"{'phase':10}" + "".join(f"{x:>13}" for x in labels))
    for p in PHASES:
        print(f"{p:10}" + "".join(f"{r['phase_ms_per_holder_cpu'][p]:>13.1f}" for r in rows))
    print()
    print("CPU ms per holder by component, measured in place (median; share of process CPU)")
    print(f"{'component':26}" + "".join(f"{x:>20}" for x in labels))
    for b in (*BUCKETS, "model"):
        cells = "".join(f"{r['bucket_ms_per_holder'][b]:>11.1f} ({100 * r['cpu_share'][b]:4.1f} %)"
                        for r in rows)
        print(f"{BUCKET_LABELS[b]:26}{cells}")
    print(f"{'timed calls per holder':26}" + "".join(
        f"{sum(r['calls_per_holder'].values()):>20.0f}" for r in rows))
    print(f"{'  of which keys made':26}" + "".join(
        f"{r['keys_per_holder']:>20.1f}" for r in rows))
    print(f"{'instrumentation overhead':26}" + "".join(
        f"{100 * r['instrumentation_overhead_share']:>18.2f} %" for r in rows))
    print(f"{'wire records per holder':26}" + "".join(
        f"{r['wire_records_per_holder']:>20.0f}" for r in rows))
    print()
    for r in rows:
        print(f"{r['mode']} {r['holders']}: login {r['login_ms_cpu']:.1f} ms CPU per holder, of "
              f"which pyhanko-certvalidator (OCSP validation in RelyingParty.check) "
              f"{r['certvalidator_ms_per_login']:.1f} ms; Simulation() {r['simulation_init_s']:.1f}"
              f" s, pool {r['pool_seconds']:.1f} s, checks {r['checks_s']:.1f} s (not timed)")
    print()
    print("Goals")
    for g in report["growth"]:
        met = "met" if g["cpu_ratio"] <= GROWTH_GOAL else "NOT met"
        worst = max(g["phase_cpu_ratio"].items(), key=lambda kv: kv[1])
        print(f"  {g['mode']}: per-holder CPU at {g['large']} vs {g['small']} holders: "
              f"{g['cpu_ratio']:.2f}x (goal ≤ {GROWTH_GOAL}x: {met}); wall {g['wall_ratio']:.2f}x; "
              f"model part {g['model_ratio']:.2f}x; steepest phase {worst[0]} {worst[1]:.2f}x")
    for r in rows:
        met = "met" if r["rsa_share"] >= RSA_SHARE_GOAL else "NOT met"
        why = (" (key generation replaced by the pool: only signing is left)"
               if r["mode"] == "pool" else "")
        print(f"  {r['mode']} {r['holders']}: RSA key generation + signing "
              f"{100 * r['rsa_share']:.1f} % of CPU (goal ≥ {100 * RSA_SHARE_GOAL:.0f} %: "
              f"{met}){why}")
    prof = report.get("profile")
    if prof:
        waiting = prof["groups"].get(WAIT_GROUP, 0.0)
        total = prof["total"] - waiting
        n = prof["holders"]
        print()
        print(f"Profile: {prof['mode']} keys, {n} holders, cProfile in every thread; own time "
              f"per group, builtins and stdlib charged to their callers ({total:.1f} s without "
              f"{waiting:.1f} s waiting for the other thread; profiling slows Python calls more "
              "than C, so shares are indicative)")
        for group, sec in sorted(prof["groups"].items(), key=lambda kv: -kv[1]):
            if group != WAIT_GROUP:
                print(f"  {group:50} {100 * sec / total:5.1f} %  {1000 * sec / n:7.1f} ms/holder")
        print("  top functions by own time:")
        for where, sec, calls in prof["top"]:
            if "_thread.lock" in where:
                continue
            print(f"    {1000 * sec / n:7.2f} ms/holder {calls / n:8.1f} calls/holder  "
                  f"{where[-95:]}")
    print()
    print(f"total run time {report['elapsed_s'] / 60:.1f} min")


def schedule(sizes: list[int], rounds: int, large_rounds: int) -> list[int]:
    """Interleaved rounds, ascending then descending: the largest size runs ``large_rounds``
    times, the others ``rounds`` times, e.g. [1000, 10000, 1000] for 2 and 1."""
    left = {n: (large_rounds if n == max(sizes) else rounds) for n in sizes}
    order: list[int] = []
    for r in range(max(left.values(), default=0)):
        for n in (sorted(sizes) if r % 2 == 0 else sorted(sizes, reverse=True)):
            if left[n] > 0:
                order.append(n)
                left[n] -= 1
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="pool 100 and 1,000 holders (2 rounds each), real keys 100 holders")
    parser.add_argument("--sizes", help="pool-mode holder counts, comma-separated "
                        "(default 1000,10000; --quick 100,1000)")
    parser.add_argument("--rounds", type=int, help="interleaved runs of each pool size but the "
                        "largest (default 2)")
    parser.add_argument("--large-rounds", type=int, help="runs of the largest pool size "
                        "(default 1; --quick 2)")
    parser.add_argument("--real-sizes", help="real-key holder counts (default 1000; --quick "
                        "100; 0 for none)")
    parser.add_argument("--pool-size", type=int, default=64,
                        help="test-only keys in the pool (default 64)")
    parser.add_argument("--profile-holders", type=int, default=100,
                        help="holders in the profiled pool run (default 100; 0 for none)")
    parser.add_argument("--tmp-root", help="where each run's authority database goes (default: "
                        "the system temp folder, as Simulation() does; e.g. /dev/shm to take "
                        "the disk's fsync out of the wall time)")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="write the figures as JSON to PATH (or stdout)")
    parser.add_argument("--report", metavar="PATH", help="print the report of a saved --json "
                        "file again, running nothing")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "HOLDERS"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        mode, holders = args.worker[0], int(args.worker[1])
        if mode not in ("pool", "real"):
            parser.error("worker mode is 'pool' or 'real'")
        result = run_worker(mode, holders, args.pool_size, args.worker_profile, args.tmp_root)
        print(MARK + json.dumps(result))
        return 0
    if args.report:
        print_report(json.loads(Path(args.report).read_text()))
        return 0

    def sizes(text: str | None, default: str) -> list[int]:
        return [int(x) for x in (text or default).split(",") if int(x) > 0]

    pool_sizes = sizes(args.sizes, "100,1000" if args.quick else "1000,10000")
    real_sizes = sizes(args.real_sizes, "100" if args.quick else "1000")
    order = schedule(pool_sizes, args.rounds or 2,
                     args.large_rounds or (2 if args.quick else 1)) if pool_sizes else []
    start = time.perf_counter()
    runs = [spawn("pool", n, args.pool_size, tmp_root=args.tmp_root) for n in order]
    runs += [spawn("real", n, args.pool_size, tmp_root=args.tmp_root) for n in real_sizes]
    profile = None
    if args.profile_holders:
        prun = spawn("pool", args.profile_holders, args.pool_size, profiled=True,
                     tmp_root=args.tmp_root)
        profile = {"mode": "pool", "holders": args.profile_holders, **prun["profile"]}
    summary = summarise(runs)
    report = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or
                    platform.machine(), "python": f"Python {platform.python_version()}",
                    "cryptography": cryptography.__version__, "platform": platform.platform()},
        "pool_size": args.pool_size, "order": order, "tmp_root": args.tmp_root or
        tempfile.gettempdir(),
        "summary": summary,
        "growth": [g for g in (growth(summary, "pool"), growth(summary, "real")) if g],
        "profile": profile,
        "runs": runs,
        "elapsed_s": time.perf_counter() - start,
    }
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print_report(report)
    if args.json == "-":
        print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

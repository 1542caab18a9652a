"""APDU round trips through pcscd + vpcd: our card vs the echo floor, tuned vicc and stock vicc.

Why: ``card serve`` puts the virtual card behind the real PC/SC stack (pyscard -> libpcsclite
-> pcscd -> vpcd -> TCP -> card). Most of a round trip is that stack, not the card, so the
question is how close to the stack's floor we are, and how we compare with vsmartcard's own
card emulator when both get the same socket treatment. One private pcscd
(tests/pcsc_helpers.py: own socket, own vpcd ports, everything stopped at the end, also on
errors and Ctrl-C); vpcd's two slots hold two cards at once, so two cards are measured in
alternating batches on the same daemon, and then swap slots:

- **echo**: ``benchmarks/vpcd_peers.py echo``: :class:`~workbench.transport.vpcd.VpcdServer`,
  the same framing and socket code as ours, in front of a card with no logic that answers
  ``Le`` zero bytes + ``90 00``, so the stack carries as many bytes as for ours: the floor;
  nothing can be faster through this pcscd. (Answering ``90 00`` alone, as the floor did
  before, was measured 0-5 % faster: pyscard and pcscd move 128 fewer bytes.)
- **ours**: ``jpki-workbench card serve IMAGE`` (the command users run).
  Goal: median per-APDU time <= 1.10x the echo card's, over interleaved batches.
- **tuned vicc**: vsmartcard's ``vicc -t iso7816`` card and loop with ``TCP_NODELAY`` and
  ``TCP_QUICKACK`` (re-armed before each message, as ours) and its logging off
  (``benchmarks/vpcd_peers.py vicc``): the peer comparison.
- **stock vicc**: ``/usr/bin/vicc -t iso7816`` as shipped. Every APDU waits out Linux's 40 ms
  delayed ACK (vpcd writes a message's length and body in two writes without
  ``TCP_NODELAY``); reported apart as the pitfall our server avoids, not as a speed peer.

Both vicc variants run under the first interpreter that imports vicc's package (Debian puts
it in ``/usr/lib/python3/site-packages/virtualsmartcard``, on no interpreter's path): ours,
else ``/usr/bin/python3``. Without vicc the benchmark says so on stderr and exits 2, unless
``--allow-missing-peer``.

The timed mix is byte-identical on every card: SELECT EF 000B (``00 A4 02 0C 02 00 0B``), READ
BINARY 128 bytes (``00 B0 00 00 80``), alternating, as certificate readers send them
(jpki-card.md 4.1). Setup, untimed: ours selects the JPKI AP (EF 000B is the auth CA
certificate); vicc's iso7816 card starts with an empty MF, so EF 000B (256 zero bytes) is
created there with CREATE FILE. Every answer of every timed APDU is checked: 90 00 to SELECT,
128 bytes + 90 00 to READ BINARY, byte-equal to the answer seen in the warm-up.

Reported per card: the median per-APDU time over batches, its spread (p25-p75 and min-max),
and APDU/s at the median; ratios are ratios of medians, with the median of the per-pair ratios
(each batch against its neighbour of the other card) beside them.

Usage: ``python benchmarks/pcsc_roundtrip.py [--quick] [--json] [--batches 100] [--batch 200]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the private-pcscd helper lives with the tests

from pcsc_helpers import PrivatePcscd, short_runtime_dir, stack_missing, stop_process  # noqa: E402

PEERS = Path(__file__).resolve().with_name("vpcd_peers.py")
#: where Debian's python3-virtualsmartcard may put the ``virtualsmartcard`` package (3.x puts
#: it in a folder of its own under site-packages, which no interpreter searches by itself)
VICC_LIB_CANDIDATES = (
    Path("/usr/lib/python3/site-packages/virtualsmartcard"),
    Path("/usr/lib/python3/dist-packages"),
    Path("/usr/lib/python3/site-packages"),
    Path("/usr/local/lib/python3/dist-packages"),
)
GOAL_VS_ECHO = 1.10

JPKI_AP = "00A4040C0AD392F000260100000001"  # SELECT JPKI AP by DF name (jpki-card.md 2.2)
SELECT_EF_000B = "00A4020C02000B"  # SELECT EF 000B, no FCI
READ_128 = "00B0000080"  # READ BINARY offset 0, Le 128
MIX = (SELECT_EF_000B, READ_128)
READ_DATA = {SELECT_EF_000B: 0, READ_128: 128}  # data bytes expected before 90 00
# CREATE FILE with FCP 62 { 80 size 0100, 82 FDB 01 transparent, 83 FID 000B } (ISO/IEC
# 7816-4 7.4 and 5.3.3); vicc fills the new EF with zero bytes.
CREATE_EF_000B = "00E000000D620B800201008201018302000B"


def _apdu(hexstr: str) -> list[int]:
    return list(bytes.fromhex(hexstr))


class BenchError(RuntimeError):
    """A card answered wrongly or the stack misbehaved: the figures would mean nothing."""


@dataclass
class Card:
    """One contender: how to start it on a vpcd port, and its untimed setup APDUs."""

    name: str
    argv: list[str]
    setup: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    data_len: dict[str, int] = field(default_factory=lambda: dict(READ_DATA))

    def command(self, port: int) -> list[str]:
        return [a.replace("{port}", str(port)) for a in self.argv]


@dataclass
class Series:
    """Per-APDU seconds of each timed batch of one card, in the order measured."""

    per_apdu: list[float] = field(default_factory=list)
    apdus: int = 0

    def add(self, seconds: float, n: int) -> None:
        self.per_apdu.append(seconds / n)
        self.apdus += n

    def summary(self) -> dict[str, Any]:
        xs = sorted(self.per_apdu)
        if not xs:
            return {"batches": 0, "apdus": 0}
        q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
        med = statistics.median(xs)
        return {"batches": len(xs), "apdus": self.apdus, "median_us": med * 1e6,
                "p25_us": q[0] * 1e6, "p75_us": q[2] * 1e6, "min_us": xs[0] * 1e6,
                "max_us": xs[-1] * 1e6, "apdu_per_s": 1 / med,
                "per_batch_us": [round(x * 1e6, 2) for x in self.per_apdu]}


class Slot:
    """A card process in one vpcd slot, with a PC/SC connection to it."""

    def __init__(self, scard: Any, ctx: int, reader: str, card: Card, port: int, log: Path) -> None:
        self.scard, self.ctx, self.reader, self.card = scard, ctx, reader, card
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(card.command(port), env=card.env, stdin=subprocess.DEVNULL,
                                         stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                         start_new_session=True)
        self.handle: int | None = None
        self.proto = 0
        self.plan: list[tuple[list[int], list[int]]] = []

    def connect(self) -> None:
        s = self.scard
        hr, self.handle, self.proto = s.SCardConnect(self.ctx, self.reader, s.SCARD_SHARE_SHARED,
                                                     s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
        if hr != 0:
            raise BenchError(f"{self.card.name}: SCardConnect: {s.SCardGetErrorMessage(hr)}")
        for cmd in self.card.setup:
            hr, rsp = s.SCardTransmit(self.handle, self.proto, _apdu(cmd))
            if hr != 0 or rsp[-2:] != [0x90, 0x00]:
                raise BenchError(f"{self.card.name}: setup {cmd} answered {bytes(rsp).hex()} "
                                 f"(hr {hr:#x})")
        # warm-up: every command of the mix must succeed with the expected length; its answer
        # becomes the one every timed answer is compared with
        expected: dict[str, list[int]] = {}
        for _ in range(10):
            for cmd in MIX:
                hr, rsp = s.SCardTransmit(self.handle, self.proto, _apdu(cmd))
                if hr != 0 or rsp[-2:] != [0x90, 0x00] or len(rsp) != self.card.data_len[cmd] + 2:
                    raise BenchError(f"{self.card.name}: {cmd} answered {bytes(rsp).hex()} "
                                     f"(hr {hr:#x})")
                if expected.setdefault(cmd, rsp) != rsp:
                    raise BenchError(f"{self.card.name}: {cmd} answered differently in the warm-up")
        self.plan = [(_apdu(cmd), expected[cmd]) for cmd in MIX]

    def batch(self, n: int) -> tuple[float, int]:
        """``n`` APDUs of the mix (rounded up to whole SELECT+READ pairs); (seconds, count)."""
        plan = self.plan * -(-n // len(self.plan))
        transmit, handle, proto = self.scard.SCardTransmit, self.handle, self.proto
        bad = None
        start = time.perf_counter()
        for cmd, want in plan:
            hr, rsp = transmit(handle, proto, cmd)
            if hr or rsp != want:
                bad = (cmd, hr, rsp)
                break
        elapsed = time.perf_counter() - start
        if bad is not None:
            cmd, hr, rsp = bad
            raise BenchError(f"{self.card.name}: {bytes(cmd).hex()} answered {bytes(rsp).hex()} "
                             f"(hr {hr:#x}) instead of the warm-up's answer")
        return elapsed, len(plan)

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(Exception):
                self.scard.SCardDisconnect(self.handle, self.scard.SCARD_RESET_CARD)
            self.handle = None
        stop_process(self.proc)


def _wait_for(scard: Any, ctx: int, readers: list[str], present: bool, timeout: float) -> None:
    """Until pcscd reports every reader full (or empty): it polls vpcd about every 0.4 s."""
    deadline = time.monotonic() + timeout
    states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
    while time.monotonic() < deadline:
        hr, seen = scard.SCardGetStatusChange(ctx, 200, states)
        if hr == 0:
            if all(bool(state & scard.SCARD_STATE_PRESENT) == present for _, state, _ in seen):
                return
            states = [(r, state & ~scard.SCARD_STATE_CHANGED) for r, state, _ in seen]
    raise BenchError(f"readers {readers} not {'full' if present else 'empty'} after {timeout} s")


@contextlib.contextmanager
def _cards(scard: Any, ctx: int, readers: list[str], cards: list[Card], port: int, runtime: Path):
    """Start ``cards`` in slots 0, 1, … and connect; stop them all afterwards, whatever happens."""
    slots: list[Slot] = []
    ok = False
    try:
        for i, card in enumerate(cards):
            slots.append(Slot(scard, ctx, readers[i], card, port + i, runtime / f"{card.name}.log"))
        _wait_for(scard, ctx, readers[: len(cards)], True, 20.0)
        for slot in slots:
            slot.connect()
        yield slots
        ok = True
    finally:
        for slot in slots:
            slot.close()
        try:  # the next phase must not meet a stale card
            _wait_for(scard, ctx, readers[: len(cards)], False, 15.0)
        except BenchError:
            if ok:
                raise


def _interleave(slots: list[Slot], series: dict[str, Series], pairs: list[tuple[float, float]],
                rounds: int, batch: int, budget: float) -> None:
    """``rounds`` rounds of one batch per card, the order flipping every round (ABBA…), until
    ``budget`` seconds are spent. ``pairs`` gets (first card, second card) per round."""
    deadline = time.monotonic() + budget
    for r in range(rounds):
        order = slots if r % 2 == 0 else slots[::-1]
        got = {}
        for slot in order:
            seconds, n = slot.batch(batch)
            series[slot.card.name].add(seconds, n)
            got[slot.card.name] = seconds / n
        pairs.append((got[slots[0].card.name], got[slots[1].card.name]))
        if time.monotonic() > deadline:
            break


def _vicc_interpreter(lib: Path) -> str | None:
    """An interpreter that imports vicc's package from ``lib``: ours first (same Python as
    our card), else the system python3."""
    env = {**os.environ, "PYTHONPATH": str(lib)}
    for python in (sys.executable, "/usr/bin/python3"):
        if Path(python).exists() and subprocess.run(
                [python, "-c", "import virtualsmartcard.VirtualSmartcard"], env=env,
                capture_output=True, timeout=30).returncode == 0:
            return python
    return None


def _find_vicc() -> tuple[str | None, Path | None, str | None, str]:
    """(vicc script, library folder, interpreter, why-not) for vsmartcard's vicc."""
    script = shutil.which("vicc") or ("/usr/bin/vicc" if Path("/usr/bin/vicc").exists() else None)
    lib = next((p for p in VICC_LIB_CANDIDATES
                if (p / "virtualsmartcard" / "VirtualSmartcard.py").exists()), None)
    if script is None:
        return None, lib, None, ("vicc not found (Debian package vsmartcard-vpicc provides "
                                 "/usr/bin/vicc)")
    if lib is None:
        return script, None, None, ("vsmartcard's virtualsmartcard package not found "
                                    "(Debian package python3-virtualsmartcard)")
    python = _vicc_interpreter(lib)
    if python is None:
        return script, lib, None, f"no interpreter here imports virtualsmartcard from {lib}"
    return script, lib, python, ""


def _ratio(a: Series, b: Series) -> float:
    return statistics.median(a.per_apdu) / statistics.median(b.per_apdu)


def _paired(pairs: list[tuple[float, float]], first_is_a: list[bool]) -> float:
    """Median of per-round ratios a/b (each batch against its neighbour of the other card)."""
    return statistics.median((x / y) if f else (y / x)
                             for (x, y), f in zip(pairs, first_is_a, strict=True))


def run(args: argparse.Namespace) -> dict[str, Any]:
    vicc_script, vicc_lib, vicc_python, why = _find_vicc()
    if why:
        print(f"\n*** PEER MISSING: {why}. The peer comparison (tuned and stock vicc) "
              "cannot run. ***\n", file=sys.stderr)
        if not args.allow_missing_peer:
            raise SystemExit(2)
        print("--allow-missing-peer: measuring echo and ours only", file=sys.stderr)

    runtime = short_runtime_dir("wb-bench-")
    pcscd = PrivatePcscd(runtime)
    # libpcsclite reads the socket name once per process: set it before the first PC/SC call
    os.environ["PCSCLITE_CSOCK_NAME"] = str(pcscd.socket_path)
    from smartcard import scard

    python = sys.executable
    image = runtime / "bench.jwc"
    ours = Card("ours", [python, "-m", "workbench", "card", "serve", str(image), "--quiet",
                         "--port", "{port}"], [JPKI_AP])
    echo = Card("echo", [python, str(PEERS), "echo", "{port}"])
    cards = [echo, ours]
    tuned = stock = None
    if not why:
        vicc_env = {**os.environ, "PYTHONPATH": str(vicc_lib)}
        tuned = Card("tuned vicc", [vicc_python, str(PEERS), "vicc", "{port}"], [CREATE_EF_000B],
                     vicc_env)
        stock = Card("stock vicc", [vicc_python, vicc_script, "-t", "iso7816", "-H", "127.0.0.1",
                                    "-P", "{port}"], [CREATE_EF_000B], vicc_env)
        cards += [tuned, stock]

    series = {c.name: Series() for c in cards}
    ours_peer = Series()  # ours again, measured beside tuned vicc
    floor_pairs: list[tuple[float, float]] = []
    floor_first_ours: list[bool] = []
    peer_pairs: list[tuple[float, float]] = []
    peer_first_ours: list[bool] = []
    started = time.monotonic()
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    ctx = None
    try:
        subprocess.run([python, "-m", "workbench", "card", "new", str(image), "--seed", "1",
                        "--issued-at", "2025-04-01"], cwd=ROOT, check=True, capture_output=True)
        pcscd.start()
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != 0:
            raise BenchError(f"SCardEstablishContext: {scard.SCardGetErrorMessage(hr)}")
        hr, readers = scard.SCardListReaders(ctx, [])
        readers = sorted(r for r in readers if "Virtual PCD" in r)
        if len(readers) != 2:
            raise BenchError(f"expected vpcd's two readers, got {readers}")
        half = max(1, args.batches // 2)

        def phase(a: Card, b: Card, into: dict[str, Series], pairs: list, first: list[bool],
                  first_name: str) -> None:
            print(f"  {a.name} (slot 0) / {b.name} (slot 1): {half} rounds", file=sys.stderr)
            with _cards(scard, ctx, readers, [a, b], pcscd.port, runtime) as slots:
                before = len(pairs)
                _interleave(slots, into, pairs, half, args.batch, args.budget)
                first += [a.name == first_name] * (len(pairs) - before)

        print("floor: ours vs echo, alternating batches", file=sys.stderr)
        phase(ours, echo, series, floor_pairs, floor_first_ours, "ours")
        phase(echo, ours, series, floor_pairs, floor_first_ours, "ours")
        if tuned is not None and stock is not None:
            print("peer: ours vs tuned vicc, alternating batches", file=sys.stderr)
            peer_series = {"ours": ours_peer, tuned.name: series[tuned.name]}
            phase(ours, tuned, peer_series, peer_pairs, peer_first_ours, "ours")
            phase(tuned, ours, peer_series, peer_pairs, peer_first_ours, "ours")
            print(f"stock vicc: {args.stock_batches} batches of {args.stock_batch} APDUs "
                  "(about 48 ms each)", file=sys.stderr)
            with _cards(scard, ctx, readers, [stock], pcscd.port, runtime) as (slot,):
                for _ in range(args.stock_batches):
                    series[stock.name].add(*slot.batch(args.stock_batch))
    finally:
        if ctx is not None:
            with contextlib.suppress(Exception):
                scard.SCardReleaseContext(ctx)
        pcscd.stop()
        shutil.rmtree(runtime, ignore_errors=True)

    result: dict[str, Any] = {
        "stack": f"pcscd ({pcscd.isolation}) + vpcd, pyscard SCardTransmit, loopback",
        "mix": [SELECT_EF_000B, READ_128],
        "batch": args.batch, "rounds_per_slot_order": max(1, args.batches // 2),
        "seconds": round(time.monotonic() - started, 1),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "vicc": {"script": vicc_script, "lib": str(vicc_lib) if vicc_lib else None,
                 "python": vicc_python, "missing": why or None},
        "cards": {name: s.summary() for name, s in series.items()},
    }
    result["cards"]["ours (beside vicc)"] = ours_peer.summary()
    vs_echo = _ratio(series["ours"], series["echo"])
    result["ours_vs_echo"] = {"ratio_of_medians": vs_echo,
                              "median_paired_ratio": _paired(floor_pairs, floor_first_ours),
                              "goal": GOAL_VS_ECHO, "met": vs_echo <= GOAL_VS_ECHO}
    if tuned is not None and ours_peer.per_apdu:
        result["tuned_vicc_vs_ours"] = {
            "ratio_of_medians": _ratio(series[tuned.name], ours_peer),
            "median_paired_ratio": 1 / _paired(peer_pairs, peer_first_ours)}
    if stock is not None and series[stock.name].per_apdu:
        result["stock_vicc_vs_tuned"] = _ratio(series[stock.name], series[tuned.name])
    return result


def _table(r: dict[str, Any]) -> str:
    lines = [f"{r['stack']}; mix: SELECT EF 000B, READ BINARY 128 (every answer checked)",
             f"batches of {r['batch']} APDUs, cards alternating, slots swapped halfway; "
             f"{r['seconds']} s in all; load average {r['load_1min'][0]:.2f} before, "
             f"{r['load_1min'][1]:.2f} after, on {r['cpus']} CPUs",
             "",
             f"{'card':19} {'median us':>10} {'p25-p75 us':>15} {'min-max us':>19} {'APDU/s':>8} "
             f"{'batches':>7}"]
    order = ["echo", "ours", "ours (beside vicc)", "tuned vicc", "stock vicc"]
    for name in order:
        s = r["cards"].get(name)
        if not s or not s["batches"]:
            continue
        lines.append(f"{name:19} {s['median_us']:10.1f} {s['p25_us']:7.1f}-{s['p75_us']:<7.1f} "
                     f"{s['min_us']:9.1f}-{s['max_us']:<9.1f} {s['apdu_per_s']:8.0f} "
                     f"{s['batches']:7d}")
    e = r["ours_vs_echo"]
    lines += ["",
              f"ours / echo        : {e['ratio_of_medians']:.3f}x (median of paired batches "
              f"{e['median_paired_ratio']:.3f}x); goal <= {e['goal']:.2f}x: "
              f"{'met' if e['met'] else 'NOT met'}"]
    if "tuned_vicc_vs_ours" in r:
        t = r["tuned_vicc_vs_ours"]
        lines.append(f"tuned vicc / ours  : {t['ratio_of_medians']:.2f}x "
                     f"(paired {t['median_paired_ratio']:.2f}x) - tuned vicc takes that many "
                     "times our round trip (peer comparison)")
    else:
        lines.append(f"tuned vicc / ours  : not measured ({r['vicc']['missing']})")
    if "stock_vicc_vs_tuned" in r:
        s = r["cards"]["stock vicc"]
        lines.append(f"stock vicc         : {s['median_us'] / 1000:.1f} ms per APDU, "
                     f"{r['stock_vicc_vs_tuned']:.0f}x tuned vicc - the 40 ms delayed-ACK pitfall "
                     "we avoid")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=200,
                        help="APDUs per timed batch (default 200)")
    parser.add_argument("--batches", type=int, default=100,
                        help="batches per card and comparison, half in each slot order "
                        "(default 100)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds at most per slot order of a comparison (default 30)")
    parser.add_argument("--stock-batches", type=int, default=5,
                        help="batches for stock vicc (default 5)")
    parser.add_argument("--stock-batch", type=int, default=20,
                        help="APDUs per stock-vicc batch (default 20; ~48 ms each)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a few seconds: 10 batches of 100, stock vicc 1 x 10")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--allow-missing-peer", action="store_true",
                        help="exit 0 and measure echo and ours only when vicc is not installed")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.batches, args.stock_batches, args.stock_batch = 100, 10, 1, 10

    missing = stack_missing()
    if missing:
        print(f"skipped: {missing}", file=sys.stderr)
        return 0

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every cleanup block

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started in the background (SIGINT ignored)
    try:
        result = run(args)
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # BenchError too
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

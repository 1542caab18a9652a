"""APDU round trips per second through pcscd + vpcd: a bare echo card, our card, vsmartcard's vicc.

Why: ``card serve`` puts the virtual card behind the real PC/SC stack (pyscard -> libpcsclite
-> pcscd -> vpcd -> TCP -> card). Most of a round trip is that stack, not the card. This
measures, in one run on one private pcscd (tests/pcsc_helpers.py: own socket, own vpcd ports,
loopback clients, everything stopped at the end):

(a) **echo**: a vpcd client of a dozen lines that answers ``90 00`` to every APDU: the floor of
    the stack; nothing can be faster through the same pcscd.
(b) **ours**: ``jpki-workbench card serve`` (:class:`workbench.transport.vpcd.VpcdServer` with a
    :class:`~workbench.card.VirtualCard`), goal: round trip within 1.2x the echo card's.
(c) **vicc**: vsmartcard's own ``vicc -t iso7816`` (Debian python3-virtualsmartcard); goal: ours
    no slower.

The mix is the one certificate readers send (jpki-card.md 4.1, 4.7): SELECT EF by FID, then
READ BINARY of 128 bytes, alternating. Our card reads the auth CA certificate EF 000B inside
the JPKI AP; vicc's iso7816 card starts with an empty MF, so the benchmark first creates a
transparent EF 0101 of 256 bytes there (CREATE FILE) and reads that; the echo card
gets the same bytes as ours and answers 90 00. The three peers take turns, ``--rounds`` times,
and each peer's best batch is reported (the least disturbed by the rest of the machine) with
its median beside it. Every peer gets at most ``--budget`` seconds per round, so a slow peer
bounds the run instead of stretching it.

Usage: ``python benchmarks/pcsc_roundtrip.py [--batch 400] [--batches 5] [--rounds 3] [--budget 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the private-pcscd helper lives with the tests

from pcsc_helpers import PrivatePcscd, short_runtime_dir, stack_missing, stop_process  # noqa: E402

VICC = Path("/usr/bin/vicc")
VICC_LIB = Path("/usr/lib/python3/site-packages/virtualsmartcard")

#: the floor: a vpcd client that answers every APDU with 90 00 (protocol in workbench/transport/vpcd.py)
ECHO_CARD = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
atr = bytes.fromhex("3BDA13FF8131FB468012392F31C173C601C03B")
while True:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    head = s.recv(2, socket.MSG_WAITALL)
    if len(head) < 2:
        break
    n = int.from_bytes(head, "big")
    msg = s.recv(n, socket.MSG_WAITALL)
    if n == 1:
        if msg == b"\x04":
            s.sendall(len(atr).to_bytes(2, "big") + atr)
        continue
    s.sendall(b"\x00\x02\x90\x00")
"""

JPKI_AP = "00A4040C0AD392F000260100000001"
SELECT_EF_000B = "00A4020C02000B"
SELECT_EF_0101 = "00A4020C020101"
READ_128 = "00B0000080"
# CREATE FILE: FCP 62 { 80 size 0100, 82 FDB 01 transparent, 83 FID 0101 } (ISO/IEC 7816-4 7.4);
# vicc fills the new EF with 256 zero bytes. (Its UPDATE BINARY crashes on a case-3 APDU under
# Python 3, so the content stays zeros.)
CREATE_EF_0101 = "00E000000D620B8002010082010183020101"


def _apdu(hexstr: str) -> list[int]:
    return list(bytes.fromhex(hexstr))


class Peer:
    def __init__(self, name: str, command: Callable[[int], list[str]], setup: list[str], mix: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.name, self.command, self.setup, self.mix, self.env = name, command, setup, mix, env


def _wait_for(scard, ctx: int, reader: str, present: bool, timeout: float) -> None:
    """Until pcscd reports the reader full (or empty): it polls vpcd about every 0.4 s."""
    deadline = time.monotonic() + timeout
    state = scard.SCARD_STATE_UNAWARE
    while time.monotonic() < deadline:
        hr, states = scard.SCardGetStatusChange(ctx, 200, [(reader, state)])
        if hr == 0:
            _, state, _ = states[0]
            if bool(state & scard.SCARD_STATE_PRESENT) == present:
                return
            state &= ~scard.SCARD_STATE_CHANGED
    raise RuntimeError(f"reader {reader!r} still {'empty' if present else 'full'} after {timeout} s")


def _measure(scard, ctx: int, reader: str, peer: Peer, port: int, batches: int, batch: int,
             budget: float, log: Path) -> list[float]:
    """Start the peer, wait for it in the reader, run ``batches`` x ``batch`` APDUs of the mix
    (stopping early once ``budget`` seconds are spent); returns seconds per APDU per batch."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(peer.command(port), env=peer.env, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        _wait_for(scard, ctx, reader, True, 15.0)
        hr, card, proto = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                             scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hr != 0:
            raise RuntimeError(f"{peer.name}: SCardConnect failed: {scard.SCardGetErrorMessage(hr)}")
        try:
            for cmd in peer.setup:
                hr, rsp = scard.SCardTransmit(card, proto, _apdu(cmd))
                if hr != 0 or rsp[-2:] != [0x90, 0x00]:
                    raise RuntimeError(f"{peer.name}: setup {cmd[:10]} answered {bytes(rsp).hex()}")
            mix = [_apdu(c) for c in peer.mix]
            for cmd in mix:  # check once that the mix really succeeds on this peer
                hr, rsp = scard.SCardTransmit(card, proto, cmd)
                if hr != 0 or rsp[-2:] != [0x90, 0x00]:
                    raise RuntimeError(f"{peer.name}: {bytes(cmd[:4]).hex()} answered {bytes(rsp).hex()}")
            transmit = scard.SCardTransmit
            n = len(mix)
            per_apdu: list[float] = []
            deadline = time.perf_counter() + budget
            for _ in range(batches):
                done = 0
                start = time.perf_counter()
                while done < batch:
                    transmit(card, proto, mix[done % n])
                    done += 1
                    if done % n == 0 and time.perf_counter() > deadline:
                        break
                per_apdu.append((time.perf_counter() - start) / done)
                if time.perf_counter() > deadline:
                    break
        finally:
            scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
    finally:
        stop_process(proc)
        _wait_for(scard, ctx, reader, False, 15.0)  # the next peer must not meet a stale card
    return per_apdu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=400, help="APDUs per timed batch (default 400)")
    parser.add_argument("--batches", type=int, default=5, help="batches per peer per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the peers take turns (default 3)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds at most per peer per round (bounds the slow peers; default 3)")
    args = parser.parse_args()

    missing = stack_missing()
    if missing:
        print(f"skipped: {missing}")
        return 0
    runtime = short_runtime_dir("wb-bench-")
    pcscd = PrivatePcscd(runtime)
    # libpcsclite reads the socket name once per process: set it before the first PC/SC call
    os.environ["PCSCLITE_CSOCK_NAME"] = str(pcscd.socket_path)
    from smartcard import scard

    card_dir = Path(tempfile.mkdtemp(prefix="cards-", dir=runtime))
    image = card_dir / "bench.jwc"
    subprocess.run([sys.executable, "-m", "workbench", "card", "new", str(image), "--seed", "1",
                    "--issued-at", "2025-04-01"], cwd=ROOT, check=True, capture_output=True)
    python = sys.executable
    peers = [
        Peer("echo", lambda port: [python, "-c", ECHO_CARD, str(port)], [], [SELECT_EF_000B, READ_128]),
        Peer("ours", lambda port: [python, "-m", "workbench", "card", "serve", str(image), "--quiet",
                                   "--port", str(port)], [JPKI_AP], [SELECT_EF_000B, READ_128]),
    ]
    if VICC.exists() and VICC_LIB.is_dir():
        vicc_env = {**os.environ, "PYTHONPATH": str(VICC_LIB)}
        peers.append(Peer("vicc", lambda port: [python, str(VICC), "-t", "iso7816", "-H", "127.0.0.1",
                                                "-P", str(port)],
                          [CREATE_EF_0101], [SELECT_EF_0101, READ_128], env=vicc_env))
    else:
        print("note: vicc (python3-virtualsmartcard) not installed; comparing echo and ours only")

    results: dict[str, list[float]] = {p.name: [] for p in peers}
    try:
        pcscd.start()
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        hr, readers = scard.SCardListReaders(ctx, [])
        reader = readers[0]
        for _ in range(args.rounds):
            for peer in peers:
                results[peer.name] += _measure(scard, ctx, reader, peer, pcscd.port, args.batches, args.batch,
                                               args.budget, runtime / f"{peer.name}.log")
        scard.SCardReleaseContext(ctx)
    finally:
        pcscd.stop()
        shutil.rmtree(runtime, ignore_errors=True)

    print(f"pcscd {pcscd.isolation} + vpcd, pyscard SCardTransmit, loopback; mix: SELECT EF, READ BINARY 128 bytes")
    print(f"{args.rounds} round(s) x up to {args.batches} batches of {args.batch} APDUs per peer "
          f"(at most {args.budget:g} s per peer per round); best and median batch")
    print(f"{'peer':6} {'APDU/s':>9} {'best us':>9} {'median us':>10} {'batches':>8} {'vs echo':>8}")
    echo = min(results["echo"])
    for name, times in results.items():
        best = min(times)
        print(f"{name:6} {1 / best:9.0f} {best * 1e6:9.1f} {statistics.median(times) * 1e6:10.1f} "
              f"{len(times):8d} {best / echo:7.2f}x")
    ours = min(results["ours"])
    print(f"ours vs echo: {ours / echo:.2f}x the echo card's round-trip time (goal <= 1.20x): "
          f"{'met' if ours / echo <= 1.2 else 'NOT met'}")
    if "vicc" in results and results["vicc"]:
        vicc = min(results["vicc"])
        print(f"ours vs vicc: vicc's round trip takes {vicc / ours:.2f}x ours (goal: ours no slower): "
              f"{'met' if ours <= vicc else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

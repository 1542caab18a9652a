"""The other cards of ``benchmarks/pcsc_roundtrip.py``: the echo floor and a tuned ``vicc``.

Run as a child process by the benchmark, one card per process, each connected to one vpcd slot:

``python benchmarks/vpcd_peers.py echo PORT``
    The floor of the stack: :class:`workbench.transport.vpcd.VpcdServer` (the very framing and
    socket code that ``card serve`` runs, started the way ``card serve`` starts it: a server
    thread, the main thread waiting for a signal) in front of a card with no logic at all. It
    answers every command APDU with ``Le`` zero bytes (a case-2 APDU) and ``90 00``, so the
    stack carries as many bytes for it as for our card; ``--sw-only`` answers ``90 00`` alone.

``python benchmarks/vpcd_peers.py vicc PORT``
    vsmartcard's own ``vicc -t iso7816`` (``VirtualICC`` from Debian python3-virtualsmartcard,
    unchanged card code) given the socket treatment our server has: ``TCP_NODELAY`` on the
    connection and ``TCP_QUICKACK`` re-armed before each message is read (vpcd writes the
    length and the body of a message in two writes without ``TCP_NODELAY``, so the body waits
    for the ACK of the length, which Linux otherwise delays by 40 ms), and its logging off:
    ``logging.disable`` plus a no-op for the ``hexdump`` it formats for its INFO messages on
    every APDU whatever the log level. This file must import with vicc's own interpreter too,
    so the echo part imports the workbench lazily.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SW_OK = b"\x90\x00"


def _wait_for_signal(running: Callable[[], bool]) -> None:
    """Block the main thread until SIGTERM/SIGINT, as ``card serve`` does (0.5 s waits)."""
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    while not done.wait(0.5):
        if not running():
            break


class EchoCard:
    """A card with no logic: what :class:`~workbench.transport.vpcd.ServedCard` asks, no more."""

    def __init__(self, atr: bytes, sw_only: bool) -> None:
        self.atr = atr
        self._sw_only = sw_only

    def power_on(self) -> bytes:
        return self.atr

    def reset(self) -> bytes:
        return self.atr

    def power_off(self) -> None:
        return None

    def transmit(self, apdu: bytes) -> bytes:
        # ISO/IEC 7816-4 5.1: a 5-byte command is case 2 (CLA INS P1 P2 Le); Le 00 means 256
        if self._sw_only or len(apdu) != 5:
            return SW_OK
        return bytes(apdu[4] or 256) + SW_OK


def serve_echo(port: int, sw_only: bool) -> int:
    sys.path.insert(0, str(ROOT))
    from workbench.card.constants import ATR_CONTACT
    from workbench.transport.vpcd import VpcdServer

    server = VpcdServer(EchoCard(ATR_CONTACT, sw_only), port=port)
    server.start()
    try:
        _wait_for_signal(lambda: server.running)
    finally:
        server.stop()
    return 0


def serve_tuned_vicc(port: int) -> int:
    from virtualsmartcard import VirtualSmartcard
    from virtualsmartcard.VirtualSmartcard import VirtualICC

    quickack = socket.TCP_QUICKACK  # Linux only, as vpcd's delayed-ACK stall is

    class TunedVICC(VirtualICC):
        """vicc's card and loop, with our socket options; nothing else overridden."""

        @staticmethod
        def connectToPort(host: str, port: int) -> socket.socket:  # noqa: N802 (vicc's name)
            sock = VirtualICC.connectToPort(host, port)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        def _VirtualICC__recvFromVPICC(self):  # noqa: N802 (vicc's private receive, mangled)
            # re-armed for every message: the kernel leaves quick-ACK mode as soon as we answer
            self.sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            return VirtualICC._VirtualICC__recvFromVPICC(self)

    VirtualSmartcard.hexdump = lambda *args, **kwargs: ""  # only ever a log-message argument
    vicc = TunedVICC(None, "iso7816", "127.0.0.1", port, logginglevel=logging.CRITICAL)
    logging.disable(logging.CRITICAL)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        vicc.run()  # returns (sys.exit) when vpcd closes the connection
    except KeyboardInterrupt:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", choices=["echo", "vicc"])
    parser.add_argument("port", type=int, help="vpcd slot port on 127.0.0.1")
    parser.add_argument("--sw-only", action="store_true", help="echo: answer 90 00 only")
    args = parser.parse_args()
    if args.card == "echo":
        return serve_echo(args.port, args.sw_only)
    return serve_tuned_vicc(args.port)


if __name__ == "__main__":
    sys.exit(main())

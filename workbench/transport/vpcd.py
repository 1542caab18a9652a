"""Serve a virtual token to the real ``pcscd`` through vsmartcard's vpcd reader driver.

vpcd is an IFD handler loaded by ``pcscd``; it listens on TCP (``DEVICENAME /dev/null:PORT``
in its reader.conf file; the Debian package uses ``/dev/null:0x8C7B`` = 35963) and each of its
slots takes one card: slot *n* listens on PORT + *n*. The Debian build (vsmartcard-vpcd 3.3,
``vicc_max_slots`` = 2 in libifdvpcd.so) opens two slots, so the plastic card and the phone
token can sit in "Virtual PCD 00 00" and "Virtual PCD 00 01" at the same time. vpcd listens
on all interfaces (INADDR_ANY, not configurable in this build); the server connects over
loopback by default. Everything that opens the reader (pyscard, OpenSC, pcsc_scan, a browser
plug-in) sees a card in a reader and nothing else (ARCHITECTURE, "real parts, not mocks").

The card side connects to vpcd as a TCP *client*. The wire format, in both directions, is a
2-byte big-endian length followed by that many bytes. vpcd sends:

- 1-byte control messages: ``00`` power off, ``01`` power on, ``02`` reset (no answer), and
  ``04`` "send the ATR" (answered with the ATR; vpcd also uses it every ~0.4 s as its card
  presence check);
- anything longer: a command APDU, answered with the response APDU.

Card state: power off, power on and reset go to the card's ``power_off`` / ``power_on`` /
``reset``, so the security state is cleared exactly as a real reader would clear it
(jpki-card.md 2.3). A dropped connection (pcscd stopped, vpcd restarted) is a card taken out
of the reader: the card is powered off and the server reconnects with exponential backoff;
the card's persistent state (PIN counters, certificates) lives on in the card object and its
image, which commits every counter change as it happens (workbench/card/image.py).

Which token: anything with power, an ATR and ``transmit`` (:class:`ServedCard`), or an image
path opened by a *loader* (a callable path -> :class:`~workbench.card.Token`). The default
loader opens plastic-card images (:meth:`workbench.card.VirtualCard.load`); the phone token
is a GlobalPlatform SE image, which this layer cannot open (``se`` sits above ``transport``,
ARCHITECTURE), so a caller above passes :func:`workbench.se.load_token`, which opens either
kind (``card serve`` does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from workbench.errors import TransportError

if TYPE_CHECKING:
    from workbench.card import Token

log = logging.getLogger(__name__)

#: vpcd's port in the Debian reader.conf (``DEVICENAME /dev/null:0x8C7B``); slot n uses PORT + n.
VPCD_PORT = 0x8C7B
#: vpcd slots in the Debian build (``vicc_max_slots`` in libifdvpcd.so)
VPCD_SLOTS = 2

# 1-byte control messages from vpcd (vsmartcard vpcd.h: VPCD_CTRL_*)
CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

_FRAME_HEADER = 2  # big-endian length prefix of every message
_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"  # ISO/IEC 7816-4 SW 6F00

#: Linux TCP_QUICKACK (None elsewhere). With the installed vpcd the body of a message reaches
#: the card 40 ms after its 2-byte length (seen with strace): vpcd's socket has no TCP_NODELAY,
#: so Nagle's algorithm holds the second segment until the first is acknowledged, and Linux
#: delays that ACK by 40 ms. Every APDU would take 44 ms (vsmartcard's own vicc does; see
#: benchmarks/pcsc_roundtrip.py). Asking for an immediate ACK before each read removes the
#: stall: about 0.07 ms per round trip.
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


#: Opens a token image for :class:`VpcdServer`: path -> token (the server closes it at stop).
TokenLoader = Callable[[Path], "Token"]


class ServedCard(Protocol):
    """What the server needs from a card: every :class:`~workbench.card.Token` (the virtual
    card, the phone's secure element) has all of it; test doubles need no more."""

    atr: bytes

    def power_on(self) -> bytes: ...

    def reset(self) -> bytes: ...

    def power_off(self) -> None: ...

    def transmit(self, apdu: bytes) -> bytes: ...


class VpcdServer:
    """One card in one vpcd slot: connects to vpcd at ``host:port`` and answers it.

    ``card_path_or_card``: a token image path (opened here with ``loader``, and closed by
    :meth:`stop`) or a card object (left open: its owner closes it).
    ``loader``: opens an image path (default: :meth:`workbench.card.VirtualCard.load`, plastic
    card images only; pass :func:`workbench.se.load_token` to serve phone SE images too). Only
    for a path: a card object given with a loader is a ``TypeError``.
    ``reconnect``: keep reconnecting after a drop (default) or return from
    :meth:`serve_forever` when the connection ends.
    ``max_backoff``: the longest pause, in seconds, between connection attempts; the pause
    starts at 0.05 s and doubles after each refused attempt.

    Use :meth:`serve_forever` in the current thread, or :meth:`start` / :meth:`stop` (also a
    context manager) for a background thread.
    """

    def __init__(
        self,
        card_path_or_card: ServedCard | str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        *,
        loader: TokenLoader | None = None,
        reconnect: bool = True,
        max_backoff: float = 2.0,
    ) -> None:
        if not 0 < port < 0x10000:
            raise TransportError(f"port must be 1..65535, got {port}")
        self._token: Token | None = None
        if isinstance(card_path_or_card, (str, os.PathLike)):
            self._token = (loader or _load_card_image)(Path(card_path_or_card))
            self.card: ServedCard = self._token
        elif loader is not None:
            raise TypeError("loader opens an image path; a card object is served as it is")
        else:
            self.card = card_path_or_card
        self.host = host
        self.port = port
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._close_lock = threading.Lock()
        self._closed = False
        #: counters, for logs, tests and benchmarks
        self.stats = {"connections": 0, "apdus": 0, "power_on": 0, "power_off": 0, "reset": 0, "atr": 0}

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> VpcdServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is not None and self._thread.is_alive():
            raise TransportError("this server is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.serve_forever, name=f"vpcd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop serving and, if the server opened the card image, close it.

        An APDU being processed is finished first (the card commits its own state), so the
        image is consistent whenever this returns.
        """
        self._stop.set()
        with self._sock_lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if not self._serving.is_set():
            self._close_card()  # otherwise serve_forever closes it when it returns

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True once a TCP connection to vpcd is up (the card is "in the reader")."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def token(self) -> Token | None:
        """The token this server opened from an image path (its label, profile, path), or
        None when it was given a card object."""
        return self._token

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> VpcdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VpcdServer({self.card!r}, host={self.host!r}, port={self.port})"

    # --- serving ---------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Connect, answer vpcd until the connection ends, reconnect; until :meth:`stop`."""
        backoff = 0.05
        failures = 0
        self._serving.set()
        try:
            while not self._stop.is_set():
                sock = self._open()
                if sock is None:
                    failures += 1
                    if failures == 1:
                        log.info("vpcd at %s:%d is not reachable; retrying", self.host, self.port)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff, failures = 0.05, 0
                self.stats["connections"] += 1
                log.info("card inserted: connected to vpcd at %s:%d", self.host, self.port)
                try:
                    self._serve_connection(sock)
                finally:
                    self._drop(sock)
                if not self._stop.is_set():
                    log.info("card removed: vpcd at %s:%d closed the connection", self.host, self.port)
                if not self.reconnect:
                    break
        finally:
            if self._stop.is_set():
                self._close_card()
            self._serving.clear()

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
        except OSError:
            return None
        sock.settimeout(None)
        # one small message per round trip: never wait for Nagle's algorithm
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._sock_lock:
            if self._stop.is_set():
                sock.close()
                return None
            self._sock = sock
        self._connected.set()
        return sock

    def _drop(self, sock: socket.socket) -> None:
        self._connected.clear()
        with self._sock_lock:
            self._sock = None
        with contextlib.suppress(OSError):
            sock.close()
        # out of the reader: no power, no security state (jpki-card.md 2.3)
        self.card.power_off()

    def _serve_connection(self, sock: socket.socket) -> None:
        """Answer vpcd's messages until the connection ends.

        The hot path of every APDU (benchmarks/pcsc_roundtrip.py): four system calls (re-arm
        the quick ACK, read the length, read the body, one write of length + reply) and no
        logging, locking or formatting of its own; methods and constants are looked up once
        per connection, not once per APDU. The quick ACK cannot be set once and left: Linux
        leaves quick-ACK mode as soon as this side answers, and without re-arming it every APDU
        waits 40 ms for its body (measured: 48 ms per APDU). Reading length and body with one
        ``recv_into`` a preallocated buffer was measured too and is no faster: the body is only
        sent once the length has been read and acknowledged, so two reads are needed anyway.
        """
        recv, sendall, waitall = sock.recv, sock.sendall, socket.MSG_WAITALL
        setopt, tcp, quickack = sock.setsockopt, socket.IPPROTO_TCP, _QUICKACK
        transmit = self.card.transmit
        control = self._control
        stats = self.stats
        while True:
            try:
                if quickack is not None:
                    setopt(tcp, quickack, 1)
                header = recv(_FRAME_HEADER, waitall)
                if len(header) < _FRAME_HEADER:
                    return
                size = int.from_bytes(header, "big")
                message = recv(size, waitall) if size else b""
                if len(message) < size:
                    return
            except OSError:
                return
            if size == 1:
                reply = control(message[0])
                if reply is None:
                    continue
            elif size == 0:
                continue
            else:
                stats["apdus"] += 1
                try:
                    reply = transmit(message)
                except Exception:  # a card object's bug must not take the reader down
                    log.exception("card raised while processing an APDU; answered 6F00")
                    reply = _NO_PRECISE_DIAGNOSIS
            try:
                sendall(len(reply).to_bytes(_FRAME_HEADER, "big") + reply)
            except OSError:
                return

    def _control(self, code: int) -> bytes | None:
        """Power and ATR messages; returns the reply (only the ATR request has one)."""
        card = self.card
        if code == CTRL_ATR:
            self.stats["atr"] += 1
            return bytes(card.atr)
        if code == CTRL_ON:
            self.stats["power_on"] += 1
            card.power_on()
        elif code == CTRL_OFF:
            self.stats["power_off"] += 1
            card.power_off()
        elif code == CTRL_RESET:
            self.stats["reset"] += 1
            card.reset()
        else:
            log.warning("vpcd sent an unknown control byte %02X; ignored", code)
        return None

    def _close_card(self) -> None:
        with self._close_lock:
            if self._token is None or self._closed:
                return
            self._closed = True
        self._token.close()


def _load_card_image(path: Path) -> Token:
    """The default loader: a plastic card's image (the one token kind this layer can open)."""
    from workbench.card import VirtualCard

    return VirtualCard.load(path)


__all__ = ["CTRL_ATR", "CTRL_OFF", "CTRL_ON", "CTRL_RESET", "ServedCard", "TokenLoader", "VPCD_PORT",
           "VPCD_SLOTS", "VpcdServer"]

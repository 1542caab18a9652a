"""PC/SC transport: real readers and cards, or a virtual card served to ``pcscd`` through vpcd.

The same client code that talks to the in-process card talks here to whatever sits in a PC/SC
reader (ARCHITECTURE, "real parts, not mocks"). pyscard is imported only inside this module
and only when a function needs it, so ``import workbench.transport`` works without it.

What the transport does on top of ``SCardTransmit`` (ISO/IEC 7816-3:2006 12.2, transport of
APDUs by T=0, and the ISO/IEC 7816-4 status bytes 61XX / 6CXX):

- ``61 XX`` ("XX more bytes available", T=0 cards answering a case-4 command): GET RESPONSE
  (``00 C0 00 00 XX``) is sent until the card stops answering 61XX; the data are joined and
  the last status word is returned. The My Number card never answers 61XX (jpki-card.md
  section 5), but readers and other cards do, and clients should not have to care.
- ``6C XX`` ("wrong Le, XX is right"): the same command is sent once more with Le = XX.
- Extended length (Lc > 255 or Le > 256) is announced by the card, not by PC/SC: the "card
  capabilities" compact-TLV object (tag 7) in the ATR's historical bytes has, in its third
  byte, bit b7 = "extended Lc and Le fields" (ISO/IEC 7816-4:2013 8.1.1.2.7). The plastic My Number
  card's contact ATR carries ``73 C6 01 C0`` (b7 set; jpki-card.md section 7). No probe APDU
  is sent: every command a probe could use either changes the card's state or depends on
  its file system. :attr:`PcscTransport.extended_length` is True / False when the ATR says
  so and None when it does not (PC/SC Part 3 contactless ATRs carry ATQB data, not
  capabilities); an extended APDU is refused before it reaches a card that announced
  short-only, and sent as-is when the ATR is silent. ``extended=`` overrides the ATR.

Errors are :class:`~workbench.errors.TransportError` subclasses with one-line messages:
:class:`NoReaderError`, :class:`NoCardError`, :class:`CardRemovedError`,
:class:`CardResetError`, :class:`PcscServiceError`, :class:`ProtocolMismatchError`,
:class:`PcscUnavailableError` (pyscard missing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from workbench.apdu import CommandAPDU
from workbench.errors import APDUError, TransportError

# --- errors ------------------------------------------------------------------------------


class PcscUnavailableError(TransportError):
    """pyscard (the ``pcsc`` extra) is not installed in this Python."""


class PcscServiceError(TransportError):
    """The PC/SC resource manager (``pcscd``) is not running or stopped mid-session."""


class NoReaderError(TransportError):
    """No reader is connected, or none matches the name / index asked for."""


class NoCardError(TransportError):
    """The reader is empty (and stayed empty for the whole wait)."""


class CardRemovedError(TransportError):
    """The card left the reader (or its vpcd server went away) while connected."""


class CardResetError(TransportError):
    """Another application reset the card; its security state (verified PINs) is gone."""


class ProtocolMismatchError(TransportError):
    """The card does not offer the transmission protocol that was asked for."""


# --- ISO/IEC 7816 facts, named once -----------------------------------------------------------

SW1_MORE_DATA = 0x61  # 61XX: XX more response bytes, fetch with GET RESPONSE
SW1_WRONG_LE = 0x6C  # 6CXX: wrong Le, XX is the exact length
INS_GET_RESPONSE = 0xC0
_MAX_GET_RESPONSE = 256  # 256 x 256 bytes is more than any response a card can hold
_CARD_CAPABILITIES_TAG = 0x7  # compact-TLV tag of "card capabilities" (ISO/IEC 7816-4 8.1.1.2.7)
_EXTENDED_LENGTH_BIT = 0x40  # third software function table, b7: extended Lc and Le fields

#: how long a failed command waits for pcscd to confirm a removal (it polls about every 0.4 s)
_REMOVAL_SETTLE = 1.0

PROTOCOLS = ("T0", "T1", "T0|T1")
DISPOSITIONS = ("leave", "reset", "unpower", "eject")

#: SCard error codes (pcsc-lite / winscard numbering) that the transport maps to its errors.
_E = {
    "CANCELLED": 0x80100002,
    "INVALID_HANDLE": 0x80100003,
    "TIMEOUT": 0x8010000A,
    "SHARING_VIOLATION": 0x8010000B,
    "NO_SMARTCARD": 0x8010000C,
    "UNKNOWN_READER": 0x80100009,
    "PROTO_MISMATCH": 0x8010000F,
    "NOT_TRANSACTED": 0x80100016,
    "READER_UNAVAILABLE": 0x80100017,
    "NO_SERVICE": 0x8010001D,
    "SERVICE_STOPPED": 0x8010001E,
    "NO_READERS_AVAILABLE": 0x8010002E,
    "COMM_DATA_LOST": 0x8010002F,
    "UNRESPONSIVE_CARD": 0x80100066,
    "UNPOWERED_CARD": 0x80100067,
    "RESET_CARD": 0x80100068,
    "REMOVED_CARD": 0x80100069,
}


def _scard() -> ModuleType:
    """pyscard's thin winscard binding, imported on first use only."""
    try:
        from smartcard import scard
    except ImportError:
        raise PcscUnavailableError(
            "pyscard is not installed; install the 'pcsc' extra (pip install 'jpki-workbench[pcsc]', "
            "needs swig and libpcsclite-dev)"
        ) from None
    return scard


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def _message(hresult: int) -> str:
    try:
        text = str(_scard().SCardGetErrorMessage(hresult)).strip().rstrip(".")
    except Exception:  # a message is a courtesy; never let it hide the real error
        text = "PC/SC error"
    return f"{text} (0x{_code(hresult):08X})"


def _service_error(hresult: int) -> PcscServiceError:
    return PcscServiceError(
        f"the PC/SC service is not available ({_message(hresult)}); start pcscd "
        "(or point PCSCLITE_CSOCK_NAME at its socket)"
    )


class _Context:
    """An SCard context: the session with the resource manager (PC/SC Part 5 3.1)."""

    def __init__(self) -> None:
        self.scard = _scard()
        hresult, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        if hresult != self.scard.SCARD_S_SUCCESS:
            raise _service_error(hresult)

    def readers(self) -> list[str]:
        hresult, names = self.scard.SCardListReaders(self.handle, [])
        code = _code(hresult)
        if code == _E["NO_READERS_AVAILABLE"]:
            return []
        if code in (_E["NO_SERVICE"], _E["SERVICE_STOPPED"]):
            raise _service_error(hresult)
        if hresult != self.scard.SCARD_S_SUCCESS:
            raise TransportError(f"cannot list PC/SC readers: {_message(hresult)}")
        return list(names)

    def states(self, names: Sequence[str], previous: list[tuple[str, int]] | None, timeout_ms: int) -> list[tuple[str, int, bytes]] | None:
        """Reader states after a change, or None on timeout (SCardGetStatusChange)."""
        s = self.scard
        query = previous if previous is not None else [(n, s.SCARD_STATE_UNAWARE) for n in names]
        hresult, states = s.SCardGetStatusChange(self.handle, timeout_ms, query)
        code = _code(hresult)
        if code == _E["TIMEOUT"]:
            return None
        if code in (_E["NO_SERVICE"], _E["SERVICE_STOPPED"]):
            raise _service_error(hresult)
        if code in (_E["UNKNOWN_READER"], _E["READER_UNAVAILABLE"]):
            raise NoReaderError(f"reader disappeared while waiting for a card ({_message(hresult)})")
        if hresult != s.SCARD_S_SUCCESS:
            raise TransportError(f"cannot read the reader state: {_message(hresult)}")
        return [(name, state, bytes(atr)) for name, state, atr in states]

    def release(self) -> None:
        self.scard.SCardReleaseContext(self.handle)


def list_readers() -> list[str]:
    """Names of the PC/SC readers connected now (an empty list when there are none).

    Raises :class:`PcscServiceError` when ``pcscd`` is not running and
    :class:`PcscUnavailableError` when pyscard is not installed.
    """
    ctx = _Context()
    try:
        return ctx.readers()
    finally:
        ctx.release()


def choose_reader(names: Sequence[str], reader: str | int) -> str:
    """The reader ``reader`` designates among ``names``: an index (0 = first), an exact name,
    or else the first name containing it (case-insensitive)."""
    if not names:
        raise NoReaderError("no PC/SC reader is connected")
    listing = ", ".join(repr(n) for n in names)
    if isinstance(reader, int) and not isinstance(reader, bool):
        if 0 <= reader < len(names):
            return names[reader]
        raise NoReaderError(f"no reader number {reader}; {len(names)} reader(s): {listing}")
    if reader in names:
        return reader
    wanted = reader.casefold()
    for name in names:
        if wanted in name.casefold():
            return name
    raise NoReaderError(f"no reader matching {reader!r}; readers: {listing}")


# --- ATR: extended length -------------------------------------------------------------------


def historical_bytes(atr: bytes) -> bytes | None:
    """The historical bytes of an ATR (ISO/IEC 7816-3 8.2), or None if it is malformed."""
    if len(atr) < 2 or atr[0] not in (0x3B, 0x3F):
        return None
    t0 = atr[1]
    count = t0 & 0x0F
    y = t0 >> 4
    i = 2
    while True:
        present = bin(y).count("1")
        if i + present > len(atr):
            return None
        td = atr[i + present - 1] if y & 0x8 else None
        i += present
        if td is None:
            break
        y = td >> 4
    if i + count > len(atr):
        return None
    return atr[i : i + count]


def atr_extended_length(atr: bytes) -> bool | None:
    """What the ATR says about extended Lc/Le: True, False, or None when it says nothing.

    Reads the card-capabilities object (compact-TLV tag 7) of the historical bytes
    (ISO/IEC 7816-4:2013 8.1.1); its third byte's b7 announces extended length fields. Only
    category indicators ``80`` (all compact-TLV) and ``00`` (compact-TLV + 3 status bytes)
    carry such objects; a PC/SC Part 3 contactless ATR (``3B 8n 80 01 ...``) carries ATQB or
    ATS data instead and yields None.
    """
    hist = historical_bytes(atr)
    if not hist:
        return None
    if hist[0] == 0x80:
        body = hist[1:]
    elif hist[0] == 0x00 and len(hist) >= 4:
        body = hist[1:-3]
    else:
        return None
    i = 0
    found: bool | None = None
    while i < len(body):
        tag, length = body[i] >> 4, body[i] & 0x0F
        value = body[i + 1 : i + 1 + length]
        if tag == 0 or len(value) != length:
            return None  # not compact-TLV after all: say nothing rather than guess
        if tag == _CARD_CAPABILITIES_TAG and length >= 3:
            found = bool(value[2] & _EXTENDED_LENGTH_BIT)
        i += 1 + length
    return found


# --- 61XX / 6CXX ------------------------------------------------------------------------------


def complete_response(send: Callable[[bytes], bytes], apdu: bytes) -> bytes:
    """Send ``apdu`` with ``send`` and finish the exchange the way ISO/IEC 7816-4 asks.

    A ``6C XX`` answer is followed by the same command with Le = XX (once); ``61 XX``
    answers are followed by GET RESPONSE with Le = XX until another status word comes. The
    result is all response data joined, then the last status word. Pure over ``send``, so it
    is tested without a reader.
    """
    response = send(apdu)
    if len(response) >= 2 and response[-2] == SW1_WRONG_LE:
        try:
            cmd = CommandAPDU.from_bytes(apdu)
            retry = CommandAPDU(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, response[-1] or 256)
        except APDUError:
            return response
        response = send(retry.to_bytes())
    data = bytearray()
    for _ in range(_MAX_GET_RESPONSE):
        if len(response) < 2 or response[-2] != SW1_MORE_DATA:
            break
        data += response[:-2]
        # GET RESPONSE keeps the logical channel of an interindustry CLA (b8 = 0)
        cla = apdu[0] & 0x03 if apdu and not apdu[0] & 0x80 else 0x00
        response = send(bytes((cla, INS_GET_RESPONSE, 0x00, 0x00, response[-1])))
    else:
        raise TransportError("the card kept answering 61XX; stopped after 256 GET RESPONSE commands")
    return bytes(data) + response if data else response


# --- the transport ----------------------------------------------------------------------------


class PcscTransport:
    """A card in a PC/SC reader, through pyscard: ``connect() -> ATR``, ``transmit``, ``disconnect``.

    ``reader``: an index into :func:`list_readers`, a name or a case-insensitive part of one;
    None takes the first reader holding a card, or waits for a card in any reader.
    ``wait_timeout``: seconds to wait for a card before :class:`NoCardError` (0 = do not wait).
    ``protocol``: ``"T0"``, ``"T1"`` or ``"T0|T1"`` (whichever the card offers; the default).
    ``share``: ``"shared"`` (default, other applications may use the card between commands)
    or ``"exclusive"``.
    ``disposition``: what :meth:`disconnect` does to the card. The default ``"reset"`` logs the
    card out, as taking it out of the field does and as :class:`VirtualCardTransport` does on
    disconnect: a PIN verified through this transport does not stay verified for the next
    application (jpki-card.md 2.3). ``"leave"`` keeps the card's state, ``"unpower"`` powers
    it off.
    ``extended``: force extended-length support on or off instead of reading it from the ATR.
    ``get_response``: handle 61XX / 6CXX here (default True); False returns them as they come.
    """

    is_virtual = False  # a real reader (or vpcd, which the client cannot tell from one)
    pin_guard = None  # decided by is_virtual: clients ask the retry counter first
    token = None  # unknown until the card is asked (EF 0006)

    def __init__(
        self,
        reader: str | int | None = None,
        *,
        wait_timeout: float = 5.0,
        protocol: str = "T0|T1",
        share: str = "shared",
        disposition: str = "reset",
        extended: bool | None = None,
        get_response: bool = True,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise TransportError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if share not in ("shared", "exclusive"):
            raise TransportError(f"unknown share mode {share!r}; choose 'shared' or 'exclusive'")
        if disposition not in DISPOSITIONS:
            raise TransportError(f"unknown disposition {disposition!r}; choose one of {', '.join(DISPOSITIONS)}")
        if wait_timeout < 0:
            raise TransportError("wait_timeout must be 0 or more seconds")
        self.reader = reader
        self.wait_timeout = wait_timeout
        self.protocol = protocol
        self.share = share
        self.disposition = disposition
        self.get_response = get_response
        self._extended_override = extended
        self._ctx: _Context | None = None
        self._card: Any = None
        self._active_protocol = 0
        self.reader_name: str | None = None
        self.atr: bytes | None = None

    # --- connection ---------------------------------------------------------------------
    def connect(self) -> bytes:
        """Find the reader, wait for a card, connect and return its ATR."""
        if self._card is not None:
            raise TransportError(f"already connected to {self.reader_name!r}; disconnect() first")
        ctx = _Context()
        try:
            name = self._wait_for_card(ctx)
            s = ctx.scard
            hresult, card, active = s.SCardConnect(ctx.handle, name, self._share_mode(s), self._protocols(s))
            if hresult != s.SCARD_S_SUCCESS:
                raise self._connect_error(hresult, name)
        except BaseException:
            ctx.release()
            raise
        self._ctx, self._card, self._active_protocol, self.reader_name = ctx, card, active, name
        self.atr = self._status_atr()
        return self.atr

    def disconnect(self, disposition: str | None = None) -> None:
        """Release the card (``disposition`` or the one given at construction) and the context."""
        how = disposition or self.disposition
        if how not in DISPOSITIONS:
            raise TransportError(f"unknown disposition {how!r}; choose one of {', '.join(DISPOSITIONS)}")
        ctx, card = self._ctx, self._card
        self._ctx = self._card = None
        if ctx is None:
            return
        s = ctx.scard
        try:
            if card is not None:
                s.SCardDisconnect(card, self._disposition_code(s, how))
        finally:
            ctx.release()

    def reset(self, *, cold: bool = False) -> bytes:
        """Warm reset (or, with ``cold=True``, power the card off and on) and return the ATR.

        Either way the card clears its security state (jpki-card.md 2.3): a PIN verified
        before is no longer verified, the selected application is gone.
        """
        ctx, card = self._connected()
        s = ctx.scard
        init = s.SCARD_UNPOWER_CARD if cold else s.SCARD_RESET_CARD
        hresult, active = s.SCardReconnect(card, self._share_mode(s), self._protocols(s), init)
        if hresult != s.SCARD_S_SUCCESS:
            raise self._io_error(hresult, "reset")
        self._active_protocol = active
        self.atr = self._status_atr()
        return self.atr

    def power_cycle(self) -> bytes:
        """Power the card off and on (``SCARD_UNPOWER_CARD``); returns the ATR."""
        return self.reset(cold=True)

    @property
    def connected(self) -> bool:
        return self._card is not None

    @property
    def active_protocol(self) -> str | None:
        """``"T=0"`` or ``"T=1"`` once connected."""
        if self._card is None:
            return None
        s = _scard()
        return {s.SCARD_PROTOCOL_T0: "T=0", s.SCARD_PROTOCOL_T1: "T=1"}.get(self._active_protocol, "raw")

    @property
    def extended_length(self) -> bool | None:
        """Whether extended Lc/Le may be sent: the override, else what the ATR announces."""
        if self._extended_override is not None:
            return self._extended_override
        return atr_extended_length(self.atr) if self.atr else None

    # --- APDUs --------------------------------------------------------------------------
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; returns response data + SW1 SW2 (61XX/6CXX handled)."""
        raw = bytes(apdu)
        if len(raw) > 5 and raw[4] == 0 and self.extended_length is False:
            raise TransportError(
                "this card's ATR announces short APDUs only; send Lc <= 255 and Le <= 256 "
                "(or pass extended=True if the ATR is wrong)"
            )
        self._connected()
        if not self.get_response:
            return self._transmit_raw(raw)
        return complete_response(self._transmit_raw, raw)

    def _transmit_raw(self, apdu: bytes) -> bytes:
        ctx, card = self._connected()
        s = ctx.scard
        hresult, response = s.SCardTransmit(card, self._active_protocol, list(apdu))
        if hresult != s.SCARD_S_SUCCESS:
            raise self._io_error(hresult, "transmit")
        return bytes(response)

    # --- helpers ------------------------------------------------------------------------
    def _connected(self) -> tuple[_Context, Any]:
        if self._ctx is None or self._card is None:
            raise TransportError("transport is not connected; call connect() first")
        return self._ctx, self._card

    def _status_atr(self) -> bytes:
        ctx, card = self._connected()
        hresult, _name, _state, _protocol, atr = ctx.scard.SCardStatus(card)
        if hresult != ctx.scard.SCARD_S_SUCCESS:
            raise self._io_error(hresult, "read the ATR")
        return bytes(atr)

    def _wait_for_card(self, ctx: _Context) -> str:
        """Pick the reader and wait until it holds a card (SCardGetStatusChange)."""
        s = ctx.scard
        names = ctx.readers()
        if not names:
            raise NoReaderError("no PC/SC reader is connected (is the reader plugged in, is vpcd configured?)")
        candidates = names if self.reader is None else [choose_reader(names, self.reader)]
        deadline = time.monotonic() + self.wait_timeout
        previous: list[tuple[str, int]] | None = None
        while True:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            states = ctx.states(candidates, previous, 0 if previous is None else remaining)
            if states is not None:
                for name, state, _atr in states:
                    if state & s.SCARD_STATE_PRESENT and not state & s.SCARD_STATE_MUTE:
                        return name
                previous = [(name, state & ~s.SCARD_STATE_CHANGED) for name, state, _atr in states]
            if time.monotonic() >= deadline:
                where = repr(candidates[0]) if len(candidates) == 1 else f"any of {len(candidates)} readers"
                waited = f" after waiting {self.wait_timeout:g} s" if self.wait_timeout else ""
                raise NoCardError(f"no card in {where}{waited}")

    def _share_mode(self, s: ModuleType) -> int:
        return s.SCARD_SHARE_EXCLUSIVE if self.share == "exclusive" else s.SCARD_SHARE_SHARED

    def _protocols(self, s: ModuleType) -> int:
        return {
            "T0": s.SCARD_PROTOCOL_T0,
            "T1": s.SCARD_PROTOCOL_T1,
            "T0|T1": s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1,
        }[self.protocol]

    @staticmethod
    def _disposition_code(s: ModuleType, how: str) -> int:
        return {
            "leave": s.SCARD_LEAVE_CARD,
            "reset": s.SCARD_RESET_CARD,
            "unpower": s.SCARD_UNPOWER_CARD,
            "eject": s.SCARD_EJECT_CARD,
        }[how]

    def _connect_error(self, hresult: int, name: str) -> TransportError:
        code = _code(hresult)
        if code in (_E["NO_SMARTCARD"], _E["REMOVED_CARD"], _E["UNRESPONSIVE_CARD"]):
            return NoCardError(f"no usable card in {name!r} ({_message(hresult)})")
        if code == _E["PROTO_MISMATCH"]:
            return ProtocolMismatchError(f"the card in {name!r} does not offer {self.protocol} ({_message(hresult)})")
        if code == _E["SHARING_VIOLATION"]:
            return TransportError(f"another application holds the card in {name!r} exclusively; close it and retry")
        if code in (_E["UNKNOWN_READER"], _E["READER_UNAVAILABLE"]):
            return NoReaderError(f"reader {name!r} is not available ({_message(hresult)})")
        if code in (_E["NO_SERVICE"], _E["SERVICE_STOPPED"]):
            return _service_error(hresult)
        return TransportError(f"cannot connect to the card in {name!r}: {_message(hresult)}")

    def _io_error(self, hresult: int, what: str) -> TransportError:
        """Map a failed command to the typed error that says what happened to the card."""
        code = _code(hresult)
        name = self.reader_name
        if code in (_E["REMOVED_CARD"], _E["NO_SMARTCARD"]):
            return CardRemovedError(f"the card was removed from {name!r} during {what}; put it back and reconnect")
        if code == _E["RESET_CARD"]:
            return CardResetError(
                f"the card in {name!r} was reset by another application; its PIN state is lost, reconnect"
            )
        if code in (_E["NO_SERVICE"], _E["SERVICE_STOPPED"], _E["INVALID_HANDLE"]) and not self._service_alive():
            return _service_error(hresult)
        if code in (_E["UNKNOWN_READER"], _E["READER_UNAVAILABLE"]):
            return NoReaderError(f"reader {name!r} went away during {what} ({_message(hresult)})")
        if self._card_gone(_REMOVAL_SETTLE):
            # drivers (vpcd among them) report a vanished card as a failed transaction first;
            # pcscd notices the removal at its next presence poll
            return CardRemovedError(f"the card was removed from {name!r} during {what}; put it back and reconnect")
        return TransportError(f"{what} failed on {name!r}: {_message(hresult)}")

    def _card_gone(self, settle: float) -> bool:
        """True if the reader is (or within ``settle`` seconds becomes) empty."""
        if self._ctx is None or self.reader_name is None:
            return True
        s = self._ctx.scard
        deadline = time.monotonic() + settle
        previous: list[tuple[str, int]] | None = None
        try:
            while True:
                remaining = max(0, int((deadline - time.monotonic()) * 1000))
                states = self._ctx.states([self.reader_name], previous, 0 if previous is None else remaining)
                if states is None:
                    return False
                state = states[0][1]
                if not state & s.SCARD_STATE_PRESENT:
                    return True
                if time.monotonic() >= deadline:
                    return False
                previous = [(self.reader_name, state & ~s.SCARD_STATE_CHANGED)]
        except TransportError:
            return True

    def _service_alive(self) -> bool:
        try:
            list_readers()
        except TransportError:
            return False
        return True

    def __enter__(self) -> PcscTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        where = self.reader_name if self.reader_name is not None else self.reader
        return f"PcscTransport(reader={where!r}, connected={self.connected})"


__all__ = [
    "CardRemovedError",
    "CardResetError",
    "NoCardError",
    "NoReaderError",
    "PcscServiceError",
    "PcscTransport",
    "PcscUnavailableError",
    "ProtocolMismatchError",
    "atr_extended_length",
    "choose_reader",
    "complete_response",
    "historical_bytes",
    "list_readers",
]

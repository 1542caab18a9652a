"""Replaying a recorded trace to any client, and saying where it diverges.

The same client code runs against a recorded trace as against the virtual or a real card
(ARCHITECTURE, rules of the house): :class:`ReplayTransport` answers each command with the
recorded response, provided the command is the one recorded.
"""

from __future__ import annotations

from workbench.apdu import mask_command
from workbench.errors import TraceDivergenceError, TransportError
from workbench.transport.base import TokenFacts
from workbench.transport.trace import TraceRecord, TraceSource, coerce_trace, first_difference

__all__ = ["ReplayTransport"]


class ReplayTransport:
    """Plays a recorded trace back to a client, checking every command against the recording.

    Each :meth:`transmit` must match the next recorded exchange byte for byte, except masked
    bytes, which match any value of the same length (so the PIN the replaying client sends
    does not matter, only its length). It returns the recorded response. Anything else raises
    :class:`~workbench.errors.TraceDivergenceError` with the line, seq, both commands (masked)
    and the first differing byte; the replay stays at that record. :meth:`connect` must meet a
    recorded power-on and returns its ATR; :meth:`disconnect` consumes a recorded power-off if
    one is next and never raises, so cleanup code cannot mask the real error.

    ``is_virtual`` is True: a replay cannot lock a real card. A trace recorded on a real card
    still sets ``pin_guard`` so the replayed client sends the same retry queries the recorded
    one did (see :func:`workbench.transport.needs_pin_guard`).
    """

    is_virtual = True

    def __init__(self, source: TraceSource, *, device: str | None = None) -> None:
        self.header, records = coerce_trace(source)
        #: only the APDU events (a scenario trace, schema 2, also holds messages and steps);
        #: with ``device``, only that token's (e.g. ``"hanako/card"``), not server side
        self.records = [r for r in records if r.type in ("connect", "exchange", "disconnect")
                        and not r.get("server_side")
                        and (device is None or r.get("device") == device)]
        if device is not None and not self.records:
            devices = sorted({str(r.get("device")) for r in records if r.get("device")})
            raise TransportError(f"the trace has no APDUs of device {device!r} (it has: "
                                 f"{', '.join(devices) or 'none'})")
        self._pos = 0

    @property
    def token(self) -> TokenFacts | None:
        return TokenFacts(self.header.profile, self.header.token_label)

    @property
    def pin_guard(self) -> bool | None:
        return True if self.header.virtual is False else None

    @property
    def profile(self) -> str | None:
        return self.header.profile

    @property
    def remaining(self) -> int:
        """Records not yet replayed."""
        return len(self.records) - self._pos

    @property
    def finished(self) -> bool:
        return self._pos >= len(self.records)

    def rewind(self) -> None:
        """Start again from the first record."""
        self._pos = 0

    def _next(self) -> TraceRecord | None:
        return self.records[self._pos] if self._pos < len(self.records) else None

    def _diverged(
        self,
        rec: TraceRecord | None,
        got: str,
        expected: str | None = None,
        offset: int | None = None,
    ) -> TraceDivergenceError:
        if rec is None:
            line = (self.records[-1].line + 1) if self.records else 2
            seq = None
            expected = "<end of trace>"
        else:
            line, seq = rec.line, rec.seq
            if expected is None:
                expected = f"<{rec.type}>"
        where = f"line {line}" + (f" (seq {seq})" if seq is not None else "")
        diff = "" if offset is None else f", first difference at byte {offset}"
        return TraceDivergenceError(
            f"replay diverged at {where}: expected {expected}, got {got}{diff}",
            line=line,
            seq=seq,
            expected=expected,
            got=got,
            offset=offset,
        )

    def connect(self) -> bytes:
        rec = self._next()
        if rec is None or rec.type != "connect":
            raise self._diverged(rec, "<connect>")
        self._pos += 1
        if rec.get("error") is not None:
            raise TransportError(f"recorded connect failed: {rec['error']}")
        return bytes.fromhex(rec["atr"])

    def transmit(self, apdu: bytes) -> bytes:
        apdu = bytes(apdu)
        rec = self._next()
        if rec is None or rec.type != "exchange":
            raise self._diverged(rec, mask_command(apdu))
        expected = str(rec["command"]).upper()
        offset = first_difference(expected, apdu)
        if offset is not None:
            raise self._diverged(rec, mask_command(apdu), expected, offset)
        self._pos += 1
        response = rec.get("response")
        if response is None:
            raise TransportError(f"recorded transmit failed: {rec.get('error')}")
        return bytes.fromhex(response)

    def disconnect(self) -> None:
        rec = self._next()
        if rec is not None and rec.type == "disconnect":
            self._pos += 1

    def __enter__(self) -> ReplayTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        return f"ReplayTransport({len(self.records)} records, at {self._pos})"

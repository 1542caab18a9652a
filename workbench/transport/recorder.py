"""Recording what a client says to a card: the tracing wrapper of the transport layer.

:class:`RecordingTransport` wraps any :class:`~workbench.transport.base.Transport` and keeps
every power event and command/response pair, masked (PIN and password bytes as ``**``), with
wall-clock times and optional modelled times, in memory and as a JSON Lines trace (format:
:mod:`workbench.transport.trace`). It moves and records bytes only: naming what each command
touched is the decoder's job, one layer up (:mod:`workbench.analysis.decode`), which passes
itself in as the ``annotator``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol, TextIO, runtime_checkable

from workbench.apdu import CommandAPDU, ResponseAPDU, mask_command, response_meaning
from workbench.errors import APDUError
from workbench.transport.base import TokenFacts, Transport, describes
from workbench.transport.trace import TraceHeader, TraceRecord, dumps_line, write_trace

__all__ = ["Annotator", "Exchange", "ExchangeTimes", "RecordingTransport", "TimingSource"]


def _blank_secret(raw: bytes) -> bytes:
    """The command with a secret data field zeroed: same length, so the timing is the same."""
    return bytes.fromhex(mask_command(raw).replace("*", "0"))


@dataclass(frozen=True)
class Exchange:
    """One command/response pair as a tracing transport saw it. ``command`` is the masked
    hex of the command (VERIFY / CHANGE data replaced by ``*``), never the raw bytes."""

    seq: int
    command: str
    description: str
    response_length: int
    sw: int
    status: str
    wall_ms: float = field(repr=False)  # measured noise; it would only clutter the repr


class ExchangeTimes(Protocol):
    """Modelled time of one exchange (:class:`workbench.timing.ExchangeTiming` is one)."""

    @property
    def operation(self) -> Enum: ...

    air_ms: float
    card_ms: float
    host_ms: float
    wtx_ms: float

    @property
    def total_ms(self) -> float: ...

    @property
    def timed_out(self) -> bool: ...


class TimingSource(Protocol):
    """A timing model as the recorder uses it (:class:`workbench.timing.TimingModel`)."""

    @property
    def label(self) -> str: ...

    def exchange(self, command: bytes, response: bytes) -> ExchangeTimes: ...

    def activation_ms(self) -> float: ...


@runtime_checkable
class Annotator(Protocol):
    """Turns masked commands and responses into a human view as they are recorded
    (:class:`workbench.analysis.decode.Annotator` is the decoder's)."""

    def power(self) -> None:
        """A power event: forget the selection state."""

    def exchange(self, command: str, response: str | None) -> dict[str, Any]:
        """The ``decoded`` fields of one exchange (masked hex in, never a PIN out)."""
        ...


def _timing_fields(result: ExchangeTimes) -> dict[str, Any]:
    out: dict[str, Any] = {"operation": str(result.operation.value)}
    for name in ("air_ms", "card_ms", "host_ms", "wtx_ms", "total_ms"):
        out[name] = round(float(getattr(result, name)), 6)
    out["timed_out"] = bool(result.timed_out)
    return out


def _wall() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RecordingTransport:
    """Wraps a transport and records every power event and exchange, masked.

    In memory it keeps :attr:`records` (the trace events, replayable) and :attr:`exchanges`
    (a compact list for quick tables). Given ``path`` (a file name or an open text stream) it
    also writes the trace as JSON Lines, one line per event, flushed as it goes (schema:
    :mod:`workbench.transport.trace`). ``timing`` is an optional
    :class:`workbench.timing.TimingModel` whose modelled times are stored next to each
    exchange. ``annotator`` adds a ``decoded`` view to each exchange as it is recorded; the
    transport layer only moves and records bytes, so the decoding one is
    :class:`workbench.analysis.TracingTransport`. ``profile`` defaults to the profile the
    wrapped transport declares.

    It declares what the wrapped transport declares (:class:`TransportInfo`), so the clients'
    real-card safety checks see through it.
    """

    def __init__(
        self,
        inner: Transport,
        path: str | os.PathLike[str] | TextIO | None = None,
        *,
        profile: str | None = None,
        description: str | None = None,
        timing: TimingSource | None = None,
        metadata: Mapping[str, Any] | None = None,
        annotator: Annotator | None = None,
    ) -> None:
        from workbench import __version__

        self.inner = inner
        self.exchanges: list[Exchange] = []
        self.records: list[TraceRecord] = []
        self._timing = timing
        self._annotator = annotator
        self._seq = 0
        info = describes(inner)
        token = info.token if info is not None else None
        self.header = TraceHeader(
            tool_version=__version__,
            created=_wall(),
            profile=profile or (token.profile if token is not None else None),
            token_label=token.label if token is not None else None,
            virtual=info.is_virtual if info is not None else None,
            description=description,
            timing_model=None if timing is None else timing.label,
            metadata=dict(metadata or {}),
        )
        self._t0 = time.perf_counter()
        self._stream: TextIO | None = None
        self._owns_stream = False
        if path is not None:
            if isinstance(path, (str, os.PathLike)):
                # line-buffered, and flushed after each event: a crash loses at most one line
                self._stream = open(path, "w", encoding="utf-8", newline="\n", buffering=1)
                self._owns_stream = True
            else:
                self._stream = path
            self._write(self.header.to_dict())

    # --- forwarding ------------------------------------------------------------------------

    @property
    def is_virtual(self) -> bool:
        info = describes(self.inner)
        return info is not None and info.is_virtual

    @property
    def pin_guard(self) -> bool | None:
        info = describes(self.inner)
        return True if info is None else info.pin_guard

    @property
    def token(self) -> TokenFacts | None:
        return TokenFacts(self.header.profile, self.header.token_label)

    # --- annotating ------------------------------------------------------------------------

    def _power(self) -> None:
        if self._annotator is not None:
            self._annotator.power()

    def _annotate(self, masked: str, response: str | None) -> dict[str, Any] | None:
        return None if self._annotator is None else self._annotator.exchange(masked, response)

    # --- writing ---------------------------------------------------------------------------

    def _write(self, obj: Mapping[str, Any]) -> None:
        stream = self._stream
        if stream is None:
            return
        stream.write(dumps_line(obj))
        stream.flush()

    def _emit(self, kind: str, start: str, t_start: float, **fields: Any) -> dict[str, Any]:
        t_end = time.perf_counter()
        self._seq += 1
        obj: dict[str, Any] = {
            "type": kind,
            "seq": self._seq,
            "start": start,
            "end": _wall(),
            "duration_ms": round((t_end - t_start) * 1000, 3),
            "t_ms": round((t_start - self._t0) * 1000, 3),
        }
        # optional fields are left out when empty; "response" and "atr" stay, null on failure
        obj.update({k: v for k, v in fields.items() if v is not None or k in ("response", "atr")})
        self.records.append(TraceRecord(self._seq + 1, obj))  # line 1 is the header
        self._write(obj)
        return obj

    # --- the transport ---------------------------------------------------------------------

    def connect(self) -> bytes:
        start, t = _wall(), time.perf_counter()
        self._power()
        try:
            atr = bytes(self.inner.connect())
        except Exception as exc:
            self._emit("connect", start, t, atr=None, error=f"{type(exc).__name__}: {exc}")
            raise
        timing = None
        if self._timing is not None:
            timing = {"activation_ms": round(float(self._timing.activation_ms()), 6)}
        self._emit("connect", start, t, atr=atr.hex().upper(), timing=timing)
        return atr

    def disconnect(self) -> None:
        start, t = _wall(), time.perf_counter()
        self._power()
        try:
            self.inner.disconnect()
        except Exception as exc:
            self._emit("disconnect", start, t, error=f"{type(exc).__name__}: {exc}")
            raise
        self._emit("disconnect", start, t)

    def transmit(self, apdu: bytes) -> bytes:
        apdu = bytes(apdu)
        masked = mask_command(apdu)
        start, t = _wall(), time.perf_counter()
        try:
            response = bytes(self.inner.transmit(apdu))
        except Exception as exc:
            decoded = self._annotate(masked, None)
            self._emit(
                "exchange",
                start,
                t,
                command=masked,
                response=None,
                error=f"{type(exc).__name__}: {exc}",
                decoded=decoded,
            )
            raise
        elapsed_ms = (time.perf_counter() - t) * 1000
        decoded = self._annotate(masked, response.hex().upper())
        timing = None
        if self._timing is not None:
            timing = _timing_fields(self._timing.exchange(_blank_secret(apdu), response))
        record = self._emit(
            "exchange",
            start,
            t,
            command=masked,
            response=response.hex().upper(),
            decoded=decoded,
            timing=timing,
        )
        self._remember(record["seq"], apdu, masked, response, elapsed_ms)
        return response

    def _remember(self, seq: int, apdu: bytes, masked: str, response: bytes, ms: float) -> None:
        command: CommandAPDU | None
        try:
            command = CommandAPDU.from_bytes(apdu)
            description = str(command)
        except APDUError:
            command, description = None, "malformed command"
        try:
            rsp = ResponseAPDU.from_bytes(response)
            # the empty VERIFY's 63Cx is a retry-counter query, not a failure (jpki-card.md 4.3)
            sw, length = rsp.sw, len(rsp.data)
            status = f"{sw:04X} {response_meaning(command, sw)[1]}"
        except APDUError:
            sw, status, length = -1, "malformed response", len(response)
        self.exchanges.append(Exchange(seq, masked, description, length, sw, status, ms))

    # --- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the trace file if this tracer opened it (a stream passed in stays open)."""
        if self._stream is not None and self._owns_stream:
            self._stream.close()
        self._stream = None

    def __enter__(self) -> RecordingTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.disconnect()
        finally:
            self.close()

    def clear(self) -> None:
        """Forget the in-memory exchanges and records. The file, if any, keeps every line, and
        ``seq`` keeps counting, so later records still name their line in that file."""
        self.exchanges.clear()
        self.records.clear()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write what was recorded in memory as a trace file."""
        write_trace(path, self.header, self.records)

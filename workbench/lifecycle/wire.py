"""Everything that crosses between the actors of the service, recorded as it happens.

APDUs travel on three channels: ``NFC`` (the app reading the plastic card in reader mode),
``OMAPI`` (the app, or the TSM through the app, talking to the phone's own SE over a logical
channel, smartphone-service.md 13) and ``RF`` (an external reader talking to the phone in card
emulation, 15.3). Service messages travel as ``HTTP`` (the application API of 15.2). A
:class:`Wire` carries each one to its destination, records it as a trace event (schema version
2 of :mod:`workbench.transport.trace`: ``exchange`` events with ``channel`` and ``device``,
``message`` events for HTTP, ``step`` events for scenario steps), and puts modelled time on it
(:mod:`workbench.timing`: air time on NFC and RF, none on OMAPI, a network round trip on HTTP).

Nothing secret is recorded: commands are masked with :func:`workbench.apdu.mask_command` and
HTTP bodies never carry a PIN or password (the app never sends them; 15.2 A5).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.apdu import mask_command
from workbench.card.token import Token
from workbench.errors import TraceDivergenceError, TransportError
from workbench.timing import TimingModel
from workbench.transport.trace import first_difference

__all__ = ["CHANNELS", "HttpHandler", "ReplayWire", "Wire", "http_handler", "jsonable"]

CHANNELS = ("NFC", "OMAPI", "RF", "HTTP")

HttpHandler = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any]]]


def http_handler(base_url: str, *, timeout: float = 120.0) -> HttpHandler:
    """A handler that sends each request to a server over real HTTP as JSON (``pki serve``
    mounts the application API at ``/v1/``): the same (method, path, body) → (status, JSON)
    as the in-process handlers, so the app cannot tell the difference."""
    base = base_url.rstrip("/")

    def handle(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if method == "POST" else None
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except json.JSONDecodeError:
                return exc.code, {"error": raw.decode("utf-8", "replace").strip()}
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransportError(f"cannot reach {base}: {reason}") from None

    return handle


@dataclass
class Wire:
    """Carries and records APDUs and messages (see the module docstring).

    ``clock`` gives the calendar time stamped on each event (the simulation's controllable
    clock); ``timing`` the NFC/RF model (the OMAPI model is derived from it).
    """

    clock: Callable[[], datetime]
    timing: TimingModel = field(default_factory=TimingModel)
    records: list[dict[str, Any]] = field(default_factory=list)
    _seq: int = 0
    _depth: int = 0  # > 0 while a server handler runs: what it sends is server-side

    def __post_init__(self) -> None:
        self.omapi_timing = TimingModel.omapi(card=self.timing.card, host=self.timing.host,
                                              network=self.timing.network)

    # -- recording ---------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        event = {"seq": self._seq, "calendar": self.clock().isoformat(), **event}
        if self._depth:
            event["server_side"] = True  # made inside a handler: not replayed (client side only)
        self.records.append(event)
        return event

    def step(self, index: int, actor: str, action: str, params: dict[str, Any]) -> None:
        """A scenario step begins (the trace's ``step`` event)."""
        self._emit({"type": "step", "index": index, "actor": actor, "action": action,
                    "params": jsonable(params)})

    def note(self, text: str, **facts: Any) -> None:
        """Something the service did that crosses no wire (a hotline call, a timer)."""
        self._emit({"type": "message", "channel": "NOTE", "text": text,
                    "facts": jsonable(facts)})

    # -- carrying ----------------------------------------------------------------------------

    def apdu(self, device: str, channel: str, token: Token, command: bytes, *,
             operation: str | None = None, label: str | None = None) -> bytes:
        """Send ``command`` to ``token`` over ``channel`` and record the exchange.
        ``operation`` names card work the bytes hide (a key generation in an encrypted STORE
        DATA), ``label`` what the command is for when the bytes do not say (TSM scripts)."""
        if channel not in CHANNELS[:3]:
            raise ValueError(f"APDUs travel on {', '.join(CHANNELS[:3])}, not {channel!r}")
        t = time.perf_counter()
        response = token.transmit(command)
        return self._record_apdu(device, channel, command, response, t, operation, label)

    def _record_apdu(self, device: str, channel: str, command: bytes, response: bytes,
                     t: float, operation: str | None, label: str | None = None) -> bytes:
        model = self.omapi_timing if channel == "OMAPI" else self.timing
        timing = model.exchange(command, response, operation=operation)
        extra = {"label": label} if label else {}
        self._emit({
            "type": "exchange", "channel": channel, "device": device, **extra,
            "command": mask_command(command), "response": response.hex().upper(),
            "duration_ms": round((time.perf_counter() - t) * 1000, 3),
            "timing": {"operation": timing.operation.value, "air_ms": round(timing.air_ms, 3),
                       "card_ms": round(timing.card_ms, 3), "host_ms": round(timing.host_ms, 3),
                       "wtx_ms": round(timing.wtx_ms, 3), "total_ms": round(timing.total_ms, 3),
                       # the host's timeout cut the transceive (nfc-timing.md 13 MODEL); the
                       # exchange is still carried out: the model flags it, it does not fail it
                       **({"timed_out": True} if timing.timed_out else {})},
        })
        return response

    def power(self, device: str, channel: str, token: Token, *, on: bool) -> bytes | None:
        """Power a token on (answers the ATR) or off, recorded as connect/disconnect."""
        if on:
            atr = token.power_on()
            activation = self.timing.activation_ms() if channel in ("NFC", "RF") else 0.0
            self._emit({"type": "connect", "channel": channel, "device": device,
                        "atr": atr.hex().upper(), "timing": {"activation_ms": activation}})
            return atr
        token.power_off()
        self._emit({"type": "disconnect", "channel": channel, "device": device})
        return None

    def http(self, method: str, host: str, path: str, body: dict[str, Any],
             handler: HttpHandler, *, device: str = "app") -> tuple[int, dict[str, Any]]:
        """One request from ``device`` to ``host`` and its answer (a network round trip).
        What the handler itself sends (an RP asking OCSP) is recorded as server side."""
        t = time.perf_counter()
        self._depth += 1
        try:
            status, answer = handler(method, path, body)
        finally:
            self._depth -= 1
        self._emit({"type": "message", "channel": "HTTP", "device": device, "host": host,
                    "method": method, "path": path, "request": jsonable(body),
                    "status": status,
                    "response": jsonable(answer),
                    "duration_ms": round((time.perf_counter() - t) * 1000, 3),
                    "timing": {"network_ms": round(self.timing.network_ms(1), 3)}})
        return status, answer


class ReplayWire(Wire):
    """A wire that answers from a recorded trace instead of reaching anyone (the client side of
    a scenario re-run against recorded answers). Each request must be the recorded one, byte
    for byte (masked bytes match anything of the same length); otherwise
    :class:`~workbench.errors.TraceDivergenceError` says where."""

    def __init__(self, records: list[dict[str, Any]], clock: Callable[[], datetime],
                 timing: TimingModel | None = None) -> None:
        super().__init__(clock, timing or TimingModel())
        self._recorded = [r for r in records if r.get("type") in ("exchange", "message", "connect",
                                                                   "disconnect")
                          and r.get("channel") != "NOTE" and not r.get("server_side")]
        self._pos = 0
        #: the first divergence met; later ones (e.g. a channel closed in a ``finally``
        #: after it) do not replace it
        self.first_divergence: TraceDivergenceError | None = None

    def _diverged(self, exc: TraceDivergenceError) -> TraceDivergenceError:
        if self.first_divergence is None:
            self.first_divergence = exc
        return exc

    def _next(self, kind: str, what: str) -> dict[str, Any]:
        while self._pos < len(self._recorded):
            rec = self._recorded[self._pos]
            if rec["type"] in ("connect", "disconnect") and kind not in ("connect", "disconnect"):
                self._pos += 1
                continue
            break
        if self._pos >= len(self._recorded):
            raise self._diverged(TraceDivergenceError(
                f"replay diverged: the client sent {what} after the end of the recording",
                line=0, seq=None, expected="<end>", got=what, offset=None))
        rec = self._recorded[self._pos]
        self._pos += 1
        return rec

    @property
    def remaining(self) -> int:
        return sum(1 for r in self._recorded[self._pos:]
                   if r["type"] in ("exchange", "message"))

    def apdu(self, device: str, channel: str, token: Token, command: bytes, *,
             operation: str | None = None, label: str | None = None) -> bytes:
        got = mask_command(command)
        rec = self._next("exchange", got)
        expected = str(rec.get("command", rec.get("path", "")))
        same_kind = rec["type"] == "exchange" and rec.get("channel") == channel
        offset = first_difference(expected, command) if same_kind else None
        if not same_kind or offset is not None:
            where = f" (byte {offset})" if offset is not None else ""
            shown_expected, shown_got = _around(expected, offset), _around(got, offset)
            raise self._diverged(TraceDivergenceError(
                f"replay diverged at seq {rec['seq']}{where}: expected {rec.get('channel')} "
                f"{shown_expected}, got {channel} {shown_got}", line=int(rec.get("_line", 0)),
                seq=rec["seq"], expected=expected, got=got, offset=offset))
        self.records.append(_without_line(rec))
        return bytes.fromhex(rec["response"])

    def power(self, device: str, channel: str, token: Token, *, on: bool) -> bytes | None:
        kind = "connect" if on else "disconnect"
        if self._pos < len(self._recorded) and self._recorded[self._pos]["type"] == kind:
            rec = self._recorded[self._pos]
            self._pos += 1
            self.records.append(_without_line(rec))
            return bytes.fromhex(rec.get("atr") or "") if on else None
        return b"" if on else None

    def http(self, method: str, host: str, path: str, body: dict[str, Any],
             handler: HttpHandler, *, device: str = "app") -> tuple[int, dict[str, Any]]:
        what = f"{method} {host}{path}"
        rec = self._next("message", what)
        want = jsonable(body)
        if (rec["type"] != "message" or rec.get("method") != method or rec.get("path") != path
                or rec.get("host") != host or rec.get("request") != want):
            expected = f"{rec.get('method')} {rec.get('host')}{rec.get('path')}"
            if rec["type"] == "message" and expected == what:
                field, was, now = _first_field_difference(rec.get("request"), want)
                detail = f"{what} request field {field}: expected {_short(was)}, got {_short(now)}"
            else:
                detail = f"expected HTTP {expected}, got {what}"
            raise self._diverged(TraceDivergenceError(
                f"replay diverged at seq {rec['seq']}: {detail}", line=int(rec.get("_line", 0)),
                seq=rec["seq"], expected=expected, got=what, offset=None))
        self.records.append(_without_line(rec))
        return int(rec["status"]), dict(rec["response"])


def _around(hex_text: str, offset: int | None, before: int = 4, after: int = 8) -> str:
    """A long APDU's hex cut to the bytes around ``offset`` (``…`` marks what is left out);
    short ones whole."""
    if offset is None or len(hex_text) <= 2 * (before + after + 8):
        return hex_text
    start, end = max(0, offset - before), min(len(hex_text) // 2, offset + after)
    return (("…" if start else "") + hex_text[2 * start:2 * end]
            + ("…" if 2 * end < len(hex_text) else ""))


def _without_line(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "_line"}


def _first_field_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any]:
    """Where two JSON values first differ: the dotted path ('' for the whole) and the two
    values found there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) != b.get(key):
                return _first_field_difference(a.get(key), b.get(key), f"{path}.{key}".lstrip("."))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_field_difference(x, y, f"{path}[{i}]")
    return path or "(the whole body)", a, b


def _short(value: Any, limit: int = 48) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def jsonable(value: Any) -> Any:
    """JSON-safe copy: bytes as hex, datetimes as ISO 8601, everything else as is."""
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value

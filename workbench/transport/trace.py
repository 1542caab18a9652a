"""Recorded APDU traces: the JSON Lines format (schema, header, records, reading and writing).

Why traces: security analysts and integrators need to see, keep and re-run what a client said
to a card (ARCHITECTURE, "Who uses it"), and the same client code must run against a recorded
trace as against the virtual or a real card (ARCHITECTURE, rules of the house). This module is
the file format; :mod:`workbench.transport.recorder` writes traces,
:mod:`workbench.transport.replay` plays them back, and the decoder that names what each line
touched lives above the transport, in :mod:`workbench.analysis.decode` (pySim-trace style).

Secrets: the data field of VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER and the JICSAP
CHANGE KEY (jpki-card.md 4.3, 4.4, 3.5) is written as ``**`` per byte (the form of
:meth:`workbench.apdu.CommandAPDU.masked_hex`), so no PIN ever reaches a file, a DataFrame or
an exception. A replay therefore treats each masked byte as a wildcard.

Schema, version 1
-----------------
A trace is a UTF-8 text file holding one JSON object per line (JSON Lines).

Line 1 is the header::

    {"type": "header", "schema": "jpki-workbench-trace", "schema_version": 1,
     "tool": "jpki-workbench", "tool_version": "0.1.0",
     "created": "2025-04-01T01:00:00.000000+00:00",   # wall clock, ISO 8601, UTC
     "profile": "icc" | "gpse" | null,                 # card / token profile if known
     "token_label": "JPKIAPICCTOKEN2" | null,          # EF 0006 label (jpki-card.md 3.2)
     "virtual": true | false | null,                   # recorded on a simulated card?
     "description": str | null,
     "timing_model": str | null,                       # label of the workbench.timing model
     "metadata": {...}}                                # free-form, e.g. the scenario

Every following line is one event. Fields common to all events:

``type``
    ``"connect"`` (power on, answers the ATR), ``"exchange"`` or ``"disconnect"``.
``seq``
    1, 2, 3, ... in file order; power events are numbered too.
``start``, ``end``
    wall-clock time the event began and ended, ISO 8601 UTC with microseconds.
``duration_ms``
    the same interval measured on the monotonic clock (``time.perf_counter``).
``t_ms``
    monotonic milliseconds from the header to ``start``, for timelines.

``connect`` adds ``atr`` (hex). ``exchange`` holds a command *and* its response on one line:
the card is strictly command/response (ISO 7816-4 5.1), so the pair is the unit that a replay
matches and a decoder annotates, and one line per pair keeps a crashed recording consistent.

``command``
    uppercase hex of the command APDU, sensitive data as ``**`` per byte.
``response``
    uppercase hex of response data + SW1 SW2, or ``null`` when the transport failed.
``error``
    present only when the transport raised: ``"<ExceptionClass>: <message>"``.
``decoded``
    optional: a human view, the output of the same annotator that
    :func:`workbench.analysis.decode_trace` runs, written when the recorder was given one
    (:class:`workbench.analysis.TracingTransport` does) (keys without
    a value are left out): ``instruction``, ``summary``, ``p1p2``, ``ap``, ``ef``, ``pin``,
    ``key``, ``offset``, ``length`` (READ BINARY Le), ``resp_len``, ``sw``, ``sw_name``, ``sw_en``, ``sw_ja``, ``tries_left`` and,
    on the READ BINARY that completes a certificate, ``certificate`` {``kind``, ``subject``,
    ``issuer``, ``serial``, ``not_before``, ``not_after``, ``sha256``}. Replay ignores it and the
    decoder recomputes it.
``timing``
    only when the recorder was given a :class:`workbench.timing.TimingModel`: modelled
    ``operation``, ``air_ms``, ``card_ms``, ``host_ms``, ``wtx_ms``, ``total_ms``,
    ``timed_out`` (nfc-timing.md 12-16). A ``connect`` carries ``activation_ms``. Modelled time
    sits beside the wall-clock fields and is never mixed with them (ARCHITECTURE).

Version 2 (scenario traces, :mod:`workbench.scenarios`)
-----------------------------------------------------
Version 2 keeps every version-1 line as it is and adds what a run of the smartphone service
says besides APDUs. Its ``exchange``/``connect``/``disconnect`` lines may carry ``channel``
(``"NFC"``: the app reading the plastic card; ``"OMAPI"``: the app or the relayed TSM talking
to the phone's own SE over a logical channel; ``"RF"``: an external reader talking to the
phone), ``device`` (who holds the token, e.g. ``"pixel/se"``), ``label`` (what a relayed,
encrypted command is for) and ``calendar`` (the simulation's calendar time). Lines made
inside a server's handler carry ``"server_side": true``. New event types:

``message``
    ``channel`` ``"HTTP"``: ``device`` (sender), ``host``, ``method``, ``path``, ``request``
    and ``response`` (JSON objects; never a PIN or password), ``status``, modelled
    ``timing.network_ms``. ``channel`` ``"NOTE"``: ``text`` and ``facts`` (something that
    crossed no wire: a hotline call, a card event).
``step``
    a scenario step begins: ``index``, ``actor``, ``action``, ``params``.
``outcome``
    the step's result: ``index``, ``outcome`` (``"ok"``, ``"refused: …"``, ``"error: …"``),
    ``ok``, ``expected``, ``as_expected``.
``push``
    the service reached an online phone on its own (``index``, ``phone``); the app's sync
    that follows belongs to that step.

The header's ``metadata`` of a scenario trace holds ``scenario``, ``params`` and
``actors`` (people by name, phones with model, app version and SE id), never a secret.

Compatibility: readers ignore fields they do not know, so adding a field keeps the version;
anything else (a new event type, a changed meaning) bumps :data:`TRACE_SCHEMA_VERSION`, and a
file of a newer version is refused with :class:`~workbench.errors.TraceFormatError`.

Crash safety: the writer flushes after every line. A partial last line (the writer died in
the middle of it) is dropped by :func:`load_trace` with a :class:`TracePartialLineWarning`;
any other unreadable line is a :class:`~workbench.errors.TraceFormatError`.
"""


from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

from workbench.apdu import mask_command
from workbench.errors import TraceFormatError

__all__ = [
    "TRACE_SCHEMA",
    "TRACE_SCHEMA_VERSION",
    "RecordSource",
    "TraceHeader",
    "TracePartialLineWarning",
    "TraceRecord",
    "TraceSource",
    "coerce_trace",
    "dumps_line",
    "first_difference",
    "load_trace",
    "mask_command",
    "write_trace",
]

#: The ``schema`` value of a header line: says the file is a trace of this workbench.
TRACE_SCHEMA = "jpki-workbench-trace"
#: Version of the line format described in the module docstring (1 still reads).
TRACE_SCHEMA_VERSION = 2

_EVENT_TYPES = frozenset({"connect", "exchange", "disconnect", "message", "step", "outcome",
                          "push"})
_MASKED_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}|\*\*)*")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class TracePartialLineWarning(UserWarning):
    """The last line of a trace was cut off (the writer stopped mid-line); it was dropped."""


def first_difference(pattern: str, raw: bytes) -> int | None:
    """First byte offset where ``raw`` breaks the masked-hex ``pattern``; None if it matches.

    ``**`` matches any byte. A length difference counts at the end of the shorter one.
    """
    n = len(pattern) // 2
    for i in range(min(n, len(raw))):
        pair = pattern[2 * i : 2 * i + 2]
        if pair != "**" and int(pair, 16) != raw[i]:
            return i
    return None if n == len(raw) else min(n, len(raw))


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceHeader:
    """The first line of a trace (module docstring)."""

    schema_version: int = TRACE_SCHEMA_VERSION
    tool: str = "jpki-workbench"
    tool_version: str = ""
    created: str = ""
    profile: str | None = None
    token_label: str | None = None
    virtual: bool | None = None
    description: str | None = None
    timing_model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The header line as a JSON object."""
        return {
            "type": "header",
            "schema": TRACE_SCHEMA,
            "schema_version": self.schema_version,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "created": self.created,
            "profile": self.profile,
            "token_label": self.token_label,
            "virtual": self.virtual,
            "description": self.description,
            "timing_model": self.timing_model,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], where: str = "header") -> TraceHeader:
        """Validate a header object; :class:`TraceFormatError` says what is wrong in one line."""
        if not isinstance(obj, Mapping) or obj.get("type") != "header":
            raise TraceFormatError(
                f"{where}: not a trace header (expected a JSON object with "
                f'"type": "header" on line 1)'
            )
        if obj.get("schema") != TRACE_SCHEMA:
            raise TraceFormatError(
                f"{where}: schema {obj.get('schema')!r} is not {TRACE_SCHEMA!r}; "
                "not a jpki-workbench trace"
            )
        version = obj.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise TraceFormatError(f"{where}: schema_version {version!r} is not a positive integer")
        if version > TRACE_SCHEMA_VERSION:
            raise TraceFormatError(
                f"{where}: trace schema version {version} is newer than this workbench reads "
                f"({TRACE_SCHEMA_VERSION}); upgrade jpki-workbench"
            )
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise TraceFormatError(f"{where}: metadata must be a JSON object")
        virtual = obj.get("virtual")
        return cls(
            schema_version=version,
            tool=str(obj.get("tool", "")),
            tool_version=str(obj.get("tool_version", "")),
            created=str(obj.get("created", "")),
            profile=_opt_str(obj.get("profile")),
            token_label=_opt_str(obj.get("token_label")),
            virtual=virtual if isinstance(virtual, bool) else None,
            description=_opt_str(obj.get("description")),
            timing_model=_opt_str(obj.get("timing_model")),
            metadata=dict(metadata),
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class TraceRecord(Mapping[str, Any]):
    """One event line: its JSON object, read-only, and the line it sits on (header = line 1)."""

    line: int
    data: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.data["type"])

    @property
    def seq(self) -> int:
        return int(self.data["seq"])

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _validate_event(obj: Any, where: str) -> None:
    """Check one event object against the schema; one-line :class:`TraceFormatError` if not."""
    if not isinstance(obj, Mapping):
        raise TraceFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in _EVENT_TYPES:
        raise TraceFormatError(
            f"{where}: unknown event type {kind!r} (schema {TRACE_SCHEMA_VERSION} has "
            f"{', '.join(sorted(_EVENT_TYPES))})"
        )
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise TraceFormatError(f"{where}: {kind} event without an integer seq")
    failed = obj.get("error") is not None
    if kind == "exchange":
        command = obj.get("command")
        if not isinstance(command, str) or len(command) < 8 or not _MASKED_HEX.fullmatch(command):
            raise TraceFormatError(f"{where}: exchange {seq} has no valid command hex")
        response = obj.get("response")
        if response is None and not failed:
            raise TraceFormatError(f"{where}: exchange {seq} has neither a response nor an error")
        if response is not None and (
            not isinstance(response, str) or len(response) < 4 or not _HEX.fullmatch(response)
        ):
            raise TraceFormatError(f"{where}: exchange {seq} has an invalid response hex")
    elif kind == "connect" and not failed:
        atr = obj.get("atr")
        if not isinstance(atr, str) or not _HEX.fullmatch(atr):
            raise TraceFormatError(f"{where}: connect {seq} has no valid ATR hex")
    elif kind == "message":
        channel = obj.get("channel")
        if channel == "HTTP":
            if not all(isinstance(obj.get(k), str) for k in ("method", "path")) or not (
                    isinstance(obj.get("status"), int)):
                raise TraceFormatError(f"{where}: message {seq} lacks method, path or status")
        elif channel != "NOTE":
            raise TraceFormatError(f"{where}: message {seq} has channel {channel!r} "
                                   "(HTTP or NOTE)")
    elif kind in ("step", "outcome", "push"):
        index = obj.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise TraceFormatError(f"{where}: {kind} {seq} without an integer index")
        if kind == "outcome" and not isinstance(obj.get("outcome"), str):
            raise TraceFormatError(f"{where}: outcome {seq} without an outcome text")


def load_trace(path: str | os.PathLike[str]) -> tuple[TraceHeader, list[TraceRecord]]:
    """Read and validate a trace file: its header and its event records, in order.

    Blank lines are skipped. A last line that is not complete JSON is dropped with a
    :class:`TracePartialLineWarning` (crash while writing); every other problem raises a
    one-line :class:`~workbench.errors.TraceFormatError` naming the file and line.
    """
    name = os.fspath(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise TraceFormatError(f"{name}: cannot read trace ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    numbered = [(i, s) for i, s in enumerate(lines, 1) if s.strip()]
    if not numbered:
        raise TraceFormatError(f"{name}: empty file, expected a trace header on line 1")
    last_line = numbered[-1][0]
    first_no, first = numbered[0]
    try:
        header_obj = json.loads(first)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(
            f"{name}: line {first_no} is not JSON ({exc.msg}); not a jpki-workbench trace"
        ) from None
    header = TraceHeader.from_dict(header_obj, f"{name}: line {first_no}")
    records: list[TraceRecord] = []
    for number, text_line in numbered[1:]:
        try:
            obj = json.loads(text_line)
        except json.JSONDecodeError as exc:
            if number == last_line:
                warnings.warn(
                    f"{name}: line {number} is incomplete ({exc.msg}); dropped it as the "
                    "partial last line of an interrupted recording",
                    TracePartialLineWarning,
                    stacklevel=2,
                )
                break
            raise TraceFormatError(f"{name}: line {number} is not JSON ({exc.msg})") from None
        _validate_event(obj, f"{name}: line {number}")
        records.append(TraceRecord(number, obj))
    return header, records


def write_trace(
    path: str | os.PathLike[str], header: TraceHeader, records: Iterable[Mapping[str, Any]]
) -> None:
    """Write a header and records as a trace file (e.g. an in-memory recording, or a test's
    edited copy). Records are written as given: they are expected to be masked already."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(dumps_line(header.to_dict()))
        for record in records:
            data = record.data if isinstance(record, TraceRecord) else record
            out.write(dumps_line(dict(data)))


def dumps_line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


@runtime_checkable
class RecordSource(Protocol):
    """Something that recorded a trace in memory (a recorder): its header and records."""

    header: TraceHeader
    records: list[TraceRecord]


#: What :class:`~workbench.transport.ReplayTransport` and the decoder accept as a trace.
TraceSource: TypeAlias = (
    "str | os.PathLike[str] | tuple[TraceHeader, Iterable[Any]] | RecordSource"
    " | Iterable[Mapping[str, Any]]"
)


def coerce_trace(source: TraceSource) -> tuple[TraceHeader, list[TraceRecord]]:
    """A trace from a path, a ``(header, records)`` pair, a recorder, or
    records alone (dicts or :class:`TraceRecord`, optionally a header dict first).

    Records built in memory get the line numbers they would have in a file (header = line 1),
    so divergence reports read the same either way."""
    if isinstance(source, (str, os.PathLike)):
        return load_trace(source)
    if isinstance(source, RecordSource):
        return source.header, list(source.records)
    header: TraceHeader | None = None
    items: Iterable[Any] = source
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], TraceHeader):
        header, items = source
    records: list[TraceRecord] = []
    for index, item in enumerate(items):
        if isinstance(item, TraceRecord):
            records.append(item)
            continue
        if (
            isinstance(item, Mapping)
            and item.get("type") == "header"
            and index == 0
            and header is None
        ):
            header = TraceHeader.from_dict(item, "record 1")
            continue
        _validate_event(item, f"record {index + 1}")
        records.append(TraceRecord(len(records) + 2, dict(item)))
    return header or TraceHeader(), records

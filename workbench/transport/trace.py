"""Recorded APDU traces: a JSON Lines recorder, a replay transport and a decoder.

Why traces: security analysts and integrators need to see, keep and re-run what a client said
to a card (ARCHITECTURE, "Who uses it"), and the same client code must run against a recorded
trace as against the virtual or a real card (ARCHITECTURE, rules of the house). The decoder
follows osmocom/pySim-trace (CONVENTIONS.md): it replays the card's selection state over the
trace, so every line can say which application and which file it touched, by the names of
jpki-card.md sections 2-3, and what its status word means (section 5).

Secrets: the data field of VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER and the JICSAP
CHANGE KEY (jpki-card.md 4.3, 4.4, 3.5) is written as ``**`` per byte (the form of
:meth:`workbench.apdu.CommandAPDU.masked_hex`), so no PIN ever reaches a file, a DataFrame or
an exception. A replay therefore treats each masked byte as a wildcard.

Schema, version 1 (:data:`TRACE_SCHEMA_VERSION`)
-----------------------------------------------
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
    a human view, the output of the same annotator that :func:`decode_trace` runs (keys without
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

Compatibility: readers ignore fields they do not know, so adding a field keeps the version;
anything else (a new event type, a changed meaning) bumps :data:`TRACE_SCHEMA_VERSION`, and a
file of a newer version is refused with :class:`~workbench.errors.TraceFormatError`.

Crash safety: the writer flushes after every line. A partial last line (the writer died in
the middle of it) is dropped by :func:`load_trace` with a :class:`TracePartialLineWarning`;
any other unreadable line is a :class:`~workbench.errors.TraceFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeAlias

from workbench.apdu import CommandAPDU, ResponseAPDU, StatusWord
from workbench.card import constants as c
from workbench.errors import (
    APDUError,
    TraceDivergenceError,
    TraceFormatError,
    TransportError,
)

if TYPE_CHECKING:
    import pandas as pd

    from workbench.transport import Transport

__all__ = [
    "OBJECT_LABELS",
    "TRACE_SCHEMA",
    "TRACE_SCHEMA_VERSION",
    "Exchange",
    "ReplayTransport",
    "TraceHeader",
    "TracePartialLineWarning",
    "TraceRecord",
    "TraceSource",
    "TracingTransport",
    "decode_trace",
    "describe_p1p2",
    "load_trace",
    "mask_command",
    "object_name",
    "write_trace",
]

#: The ``schema`` value of a header line: says the file is a trace of this workbench.
TRACE_SCHEMA = "jpki-workbench-trace"
#: Version of the line format described in the module docstring.
TRACE_SCHEMA_VERSION = 1

_EVENT_TYPES = frozenset({"connect", "exchange", "disconnect"})
_MASKED_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}|\*\*)*")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class TracePartialLineWarning(UserWarning):
    """The last line of a trace was cut off (the writer stopped mid-line); it was dropped."""


# --- names of the objects on the card (jpki-card.md 2.1, 3.1-3.5) ----------------------------

#: Label of every EF, key and PIN object per application, as the card builder names them
#: (Japanese term first), with an English gloss where the label is Japanese only. The decoder
#: uses it to name what a command touches; tests check it against a freshly issued card.
OBJECT_LABELS: dict[bytes, dict[int, tuple[str, str | None]]] = {
    c.JPKI_AP_AID: {
        c.EF_SIGN_CERT: ("署名用電子証明書", "sign certificate"),
        c.EF_SIGN_CA_CERT: ("署名用CA証明書", "sign CA certificate"),
        c.EF_TOKEN_INFO: ("token information", None),
        c.EF_CERT_PRESENCE: ("certificate presence", None),
        c.EF_JPKI_0009: ("protected (purpose unknown)", None),
        c.EF_AUTH_CERT: ("利用者証明用電子証明書", "auth certificate"),
        c.EF_AUTH_CA_CERT: ("利用者証明用CA証明書", "auth CA certificate"),
        c.KEY_IC_PUBLIC: ("SET PUBLIC IC KEY reference", None),
        c.KEY_AUTH: ("利用者証明用秘密鍵", "auth private key"),
        c.PIN_AUTH: ("利用者証明用暗証番号", "auth PIN"),
        c.KEY_SIGN: ("署名用秘密鍵", "sign private key"),
        c.PIN_SIGN: ("署名用パスワード", "sign password"),
    },
    c.TEXT_AP_AID: {
        c.EF_TEXT_MY_NUMBER: ("個人番号", "individual number"),
        c.EF_TEXT_BASIC_FOUR: ("基本4情報", "name, address, birth date, sex"),
        c.EF_TEXT_SIGNATURE: ("integrity record", None),
        c.EF_TEXT_CV_CERT: ("CV certificate", None),
        c.EF_TEXT_AP_INFO: ("AP basic info", None),
        c.EF_TEXT_SESSION_KEY: ("session-key public key", None),
        c.EF_TEXT_SIGNED_KEY: ("signed public key", None),
        c.EF_TEXT_0008: ("unknown (16 x FF)", None),
        c.PIN_TEXT: ("券面事項入力補助用暗証番号", "text AP PIN"),
        c.PIN_TEXT_BLOCKED: ("blocked key 0012", None),
        c.PIN_TEXT_NUMBER_A: ("照合番号A (text AP)", "individual number as key"),
        c.PIN_TEXT_NUMBER_B: ("照合番号B (text AP)", "birth date + expiry + security code"),
    },
    c.SURFACE_AP_AID: {
        c.EF_SURFACE_AGE: ("age record", None),
        c.EF_SURFACE_FACE: ("card face", None),
        c.EF_SURFACE_AP_INFO: ("AP basic info", None),
        c.EF_SURFACE_CV_CERT: ("CV certificate", None),
        c.EF_SURFACE_NUMBER_IMAGE: ("rendered 個人番号", "individual number image"),
        c.EF_SURFACE_0006: ("unknown", None),
        c.PIN_SURFACE_BIRTH: ("生年月日 key (surface AP)", "birth-date key"),
        c.PIN_SURFACE_NUMBER_B: ("照合番号B (surface AP)", "birth date + expiry + security code"),
        c.PIN_SURFACE_NUMBER_A: ("照合番号A (surface AP)", "individual number as key"),
    },
    c.COMMON_AP_AID: {
        c.EF_COMMON_RECORD: ("serial, municipality, expiry", None),
        c.EF_COMMON_KEY_ID: ("key reference", None),
        c.KEY_COMMON_INTERNAL_AUTH: ("INTERNAL AUTHENTICATE key", None),
        c.PIN_JUKI: ("共通AP PIN", "common AP PIN"),
    },
    c.JUKI_AP_AID: {
        c.EF_JUKI_KEY_ID: ("key reference", None),
        c.PIN_JUKI: ("住基 PIN", "住民基本台帳用暗証番号"),
    },
}

_ISD_NAME = "GlobalPlatform ISD (MF state)"


def ap_name(aid: bytes) -> str:
    """Name of an application by its DF name (jpki-card.md 2.1), else the AID in hex."""
    if aid == c.ISD_AID:
        return _ISD_NAME
    if not aid:
        return "no DF name"
    return c.AP_NAMES.get(aid) or f"AID {aid.hex().upper()}"


def object_name(aid: bytes | None, fid: int) -> str:
    """``"0018 利用者証明用暗証番号 (auth PIN)"``: FID, label and gloss in application ``aid``.

    An object the table does not know (another card, another AP) is named by its FID alone.
    """
    label = OBJECT_LABELS.get(aid or b"", {}).get(fid)
    if label is None:
        return f"{fid:04X}"
    text, gloss = label
    return f"{fid:04X} {text}" + (f" ({gloss})" if gloss else "")


# --- masking and matching --------------------------------------------------------------------


def mask_command(raw: bytes) -> str:
    """Uppercase hex of a command with any PIN-bearing data field as ``**`` per byte.

    A well-formed APDU is masked by :meth:`CommandAPDU.masked_hex`. A malformed one whose
    instruction carries secrets (VERIFY, CHANGE ...) is masked from byte 5 on, length field
    included, because its data field cannot be located reliably.
    """
    raw = bytes(raw)
    try:
        return CommandAPDU.from_bytes(raw).masked_hex()
    except APDUError:
        pass
    if len(raw) > 4 and CommandAPDU(raw[0], raw[1], raw[2], raw[3]).sensitive:
        return raw[:4].hex().upper() + "**" * (len(raw) - 4)
    return raw.hex().upper()


def _blank_secret(raw: bytes) -> bytes:
    """The command with a secret data field zeroed: same length, so the timing is the same."""
    masked = mask_command(raw)
    return bytes.fromhex(masked.replace("*", "0"))


def _first_difference(pattern: str, raw: bytes) -> int | None:
    """First byte offset where ``raw`` breaks the masked-hex ``pattern``; None if it matches.

    ``**`` matches any byte. A length difference counts at the end of the shorter one.
    """
    n = len(pattern) // 2
    for i in range(min(n, len(raw))):
        pair = pattern[2 * i : 2 * i + 2]
        if pair != "**" and int(pair, 16) != raw[i]:
            return i
    return None if n == len(raw) else min(n, len(raw))


# --- decoding one command (ISO 7816-4, jpki-card.md 2.2, 4) ----------------------------------

_CLA_PROPRIETARY = 0x80  # ISO 7816-4 5.4.1: CLA bit 8 set = proprietary (JICSAP) class
# Interindustry instructions (ISO 7816-4 section 11) the decoder follows.
_INS_SELECT = 0xA4  # jpki-card.md 2.2
_INS_READ_BINARY = 0xB0  # 4.1
_INS_READ_RECORD = 0xB2  # 4.2
_INS_VERIFY = 0x20  # 4.3
_INS_CHANGE_REFERENCE_DATA = 0x24  # 4.4
_INS_GET_CHALLENGE = 0x84  # 4.6
_INS_INTERNAL_AUTHENTICATE = 0x88  # 3.5, 4.6
_INS_GET_DATA = 0xCA  # 3.6
#: ISO instructions whose data field is a PIN or new reference value (odd INS included).
_PIN_INS = frozenset({0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D})
# Proprietary (CLA 80) instructions of the card.
_INS_COMPUTE_SIGNATURE = 0x2A  # 4.5
_INS_CHANGE_KEY = 0x32  # 3.5
_P1_SELECT_BY_DF_NAME = 0x04  # 2.2
_P1_SELECT_EF = 0x02  # 2.2
_P1_READ_SFI = 0x80  # 4.1: P1 = 80 | SFI
_P2_CURRENT_KEY = 0x80  # 4.3, 4.5: the key of the current EF; 80 | SFI names one
_SFI_MASK = 0x1F  # 2.2: SFI = low 5 bits of the FID

_SELECT_HOW = {
    0x00: "select MF or by FID",
    0x01: "select child DF",
    0x02: "select EF under the current DF",
    0x04: "select by DF name (AID)",
}
_SELECT_ANSWER = {
    0x0C: "no response data",
    0x00: "FCI asked (answered like 0C, MODEL)",
    0x04: "FCP asked (answered like 0C, MODEL)",
}
_SIGN_VARIANTS = {  # jpki-card.md 4.5, P1 of 80 2A
    0x00: "DigestInfo in, PKCS#1 v1.5 type-01 padding",
    0x01: "message in, bare SHA-256 padded (type 01)",
    0x02: "SHA-256 hash in, wrapped in a DigestInfo",
    0x03: "message in, sha256WithRSAEncryption",
    0x04: "SHA-256 hash in, RSASSA-PSS",
    0x05: "message in, SHA-256 then RSASSA-PSS",
}
_CHANGE_MODES = {0x00: "old and new value", 0x01: "new value only"}  # ISO 7816-4 11.5.7


def _key_reference(p2: int) -> str:
    """P2 of VERIFY / CHANGE / 80 2A: ``80`` current EF, ``80 | SFI`` by short id (4.3, 4.5)."""
    if p2 == _P2_CURRENT_KEY:
        return "key of the current EF"
    if p2 & _P2_CURRENT_KEY and not p2 & 0x60:
        return f"key with short EF id {p2 & _SFI_MASK:02X}"
    return f"reference {p2:02X}"


def describe_p1p2(cmd: CommandAPDU) -> str:
    """What P1 and P2 mean for this instruction (ISO 7816-4 section 11, jpki-card.md 2.2, 4)."""
    cla, ins, p1, p2 = cmd.cla, cmd.ins, cmd.p1, cmd.p2
    if not cla & _CLA_PROPRIETARY:
        if ins == _INS_SELECT:
            how = "select MF" if p1 == 0 and not cmd.data else _SELECT_HOW.get(p1, f"P1={p1:02X}")
            return f"{how}; {_SELECT_ANSWER.get(p2, f'P2={p2:02X} (not supported)')}"
        if ins == _INS_READ_BINARY:
            if p1 & _P1_READ_SFI:
                return f"short EF id {p1 & _SFI_MASK:02X}, offset {p2}"
            return f"offset {(p1 << 8) | p2} in the current EF"
        if ins == _INS_READ_RECORD:
            sfi = p2 >> 3
            where = "current EF" if sfi == 0 else f"short EF id {sfi:02X}"
            return f"record {p1} of the {where}"
        if ins == _INS_VERIFY:
            ref = _key_reference(p2)
            return ref if cmd.data else f"{ref}; retry-counter query (spends no try)"
        if ins == _INS_CHANGE_REFERENCE_DATA:
            return f"{_CHANGE_MODES.get(p1, f'P1={p1:02X}')}; {_key_reference(p2)}"
        if ins == _INS_GET_CHALLENGE:
            return f"{cmd.le or 0} random bytes"
        if ins == _INS_INTERNAL_AUTHENTICATE:
            return f"algorithm {p1:02X}; {_key_reference(p2)}"
        if ins == _INS_GET_DATA:
            return f"data object {(p1 << 8) | p2:04X}"
    else:
        if ins == _INS_COMPUTE_SIGNATURE:
            key = "the application's own key" if p2 == 0 else _key_reference(p2)
            return f"{_SIGN_VARIANTS.get(p1, f'P1={p1:02X} (not supported)')}; {key}"
        if ins == _INS_CHANGE_KEY:
            return f"new value; {_key_reference(p2)}"
    return f"P1={p1:02X} P2={p2:02X}"


def _target(p2: int, current: int | None) -> int | None:
    """The object a ``80`` / ``80 | SFI`` parameter addresses (jpki-card.md 2.2: SFI = FID)."""
    if p2 == _P2_CURRENT_KEY:
        return current
    if p2 & _P2_CURRENT_KEY and not p2 & 0x60:
        return p2 & _SFI_MASK
    return None


def _der_length(buf: bytes | bytearray) -> int | None:
    """Total length of the DER SEQUENCE at the start of ``buf`` once its header is there."""
    if len(buf) < 2 or buf[0] != 0x30:
        return None
    first = buf[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if not 1 <= n <= 4 or len(buf) < 2 + n:
        return None
    return 2 + n + int.from_bytes(buf[2 : 2 + n], "big")


def _certificate_facts(der: bytes) -> dict[str, Any] | None:
    """Subject, serial ... of a DER certificate (jpki-card.md 9), or None if it is not one."""
    from cryptography import x509

    from workbench.pki import describe_certificate

    try:
        cert = x509.load_der_x509_certificate(der)
        info = describe_certificate(cert)
    except Exception:  # noqa: BLE001 - anything unparsable is simply not annotated
        return None
    return {
        "kind": info["kind"],
        "subject": info["subject"],
        "issuer": info["issuer"],
        "serial": info["serial_hex"],
        "not_before": info["not_before"].isoformat(),
        "not_after": info["not_after"].isoformat(),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


class _Annotator:
    """Replays the card's selection state over a trace, pySim-trace style.

    It sees only masked commands, so nothing it returns can hold a PIN. The rules are the
    card's: SELECT by DF name changes the AP and forgets the EF (jpki-card.md 2.2, 2.3), SELECT
    EF and SFI reads change the EF (2.2, 4.1), power events forget everything.
    """

    def __init__(self) -> None:
        self.power()

    def power(self) -> None:
        self.aid: bytes | None = None
        self.ef: int | None = None
        self._buffers: dict[tuple[bytes | None, int], tuple[bytearray, bytearray]] = {}
        self._described: set[tuple[bytes | None, int]] = set()

    def exchange(self, command: str, response: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            cmd: CommandAPDU | None = CommandAPDU.from_bytes(
                bytes.fromhex(command.replace("*", "0"))
            )
        except (APDUError, ValueError):
            cmd = None
        rsp: ResponseAPDU | None = None
        if response is not None:
            try:
                rsp = ResponseAPDU.from_bytes(bytes.fromhex(response))
            except (APDUError, ValueError):
                rsp = None
        ok = rsp is not None and rsp.is_success
        if cmd is None:
            out["instruction"] = "malformed command"
        else:
            out["instruction"] = cmd.ins_name
            out["summary"] = str(cmd)
            out["p1p2"] = describe_p1p2(cmd)
            self._track(cmd, rsp, ok, out)
        if self.aid is not None and "ap" not in out:
            out["ap"] = ap_name(self.aid)
        if rsp is not None:
            status = StatusWord(rsp.sw)
            out["resp_len"] = len(rsp.data)
            out["sw"] = f"{rsp.sw:04X}"
            out["sw_name"] = status.name
            out["sw_en"] = status.meaning
            out["sw_ja"] = status.meaning_ja
            if status.tries_left is not None:
                out["tries_left"] = status.tries_left
        return out

    def _track(
        self, cmd: CommandAPDU, rsp: ResponseAPDU | None, ok: bool, out: dict[str, Any]
    ) -> None:
        cla, ins, p1, p2 = cmd.cla, cmd.ins, cmd.p1, cmd.p2
        proprietary = bool(cla & _CLA_PROPRIETARY)
        if not proprietary and ins == _INS_SELECT:
            if p1 == _P1_SELECT_BY_DF_NAME:
                out["ap"] = ap_name(cmd.data)
                if ok:
                    self.aid = None if cmd.data == c.ISD_AID else cmd.data
                    self.ef = None
                    self._described.clear()
            elif p1 == _P1_SELECT_EF and len(cmd.data) == 2:
                fid = int.from_bytes(cmd.data, "big")
                out["ef"] = object_name(self.aid, fid)
                if ok:
                    self.ef = fid
            return
        if not proprietary and ins == _INS_READ_BINARY:
            if p1 & _P1_READ_SFI:
                fid: int | None = p1 & _SFI_MASK
                offset = p2
            else:
                fid = self.ef
                offset = (p1 << 8) | p2
            out["offset"] = offset
            if cmd.le is not None:
                out["length"] = cmd.le
            if fid is not None:
                out["ef"] = object_name(self.aid, fid)
                if ok and rsp is not None:
                    self.ef = fid
                    facts = self._collect(fid, offset, rsp.data)
                    if facts is not None:
                        out["certificate"] = facts
            return
        if not proprietary and ins == _INS_READ_RECORD:
            sfi = p2 >> 3
            fid = self.ef if sfi == 0 else sfi
            if fid is not None:
                out["ef"] = object_name(self.aid, fid)
                if ok and sfi:
                    self.ef = fid
            return
        if (not proprietary and ins in _PIN_INS) or (proprietary and ins == _INS_CHANGE_KEY):
            fid = _target(p2, self.ef)
            if fid is not None:
                out["ef"] = out["pin"] = object_name(self.aid, fid)
            return
        if (proprietary and ins == _INS_COMPUTE_SIGNATURE) or (
            not proprietary and ins == _INS_INTERNAL_AUTHENTICATE
        ):
            fid = _target(p2, self.ef) if p2 else None
            if fid is not None:
                out["ef"] = out["key"] = object_name(self.aid, fid)
            elif p2 == 0 and self.aid is not None:
                out["key"] = f"own key of the {ap_name(self.aid)}"
            return
        if self.ef is not None:
            out["ef"] = object_name(self.aid, self.ef)

    def _collect(self, fid: int, offset: int, data: bytes) -> dict[str, Any] | None:
        """Reassemble an EF from READ BINARY chunks; describe it once a certificate is whole."""
        key = (self.aid, fid)
        buf, have = self._buffers.setdefault(key, (bytearray(), bytearray()))
        end = offset + len(data)
        if len(buf) < end:
            buf.extend(b"\x00" * (end - len(buf)))
            have.extend(b"\x00" * (end - len(have)))
        buf[offset:end] = data
        have[offset:end] = b"\x01" * len(data)
        if key in self._described or not have or not have[0]:
            return None
        head = have.find(0)
        contiguous = len(have) if head < 0 else head
        total = _der_length(buf[:contiguous])
        if total is None or contiguous < total:
            return None
        self._described.add(key)
        return _certificate_facts(bytes(buf[:total]))


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
        out.write(_dumps(header.to_dict()))
        for record in records:
            data = record.data if isinstance(record, TraceRecord) else record
            out.write(_dumps(dict(data)))


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


#: What :class:`ReplayTransport` and :func:`decode_trace` accept as a trace.
TraceSource: TypeAlias = (
    "str | os.PathLike[str] | tuple[TraceHeader, Iterable[Any]] | TracingTransport"
    " | Iterable[Mapping[str, Any]]"
)


def _coerce(source: TraceSource) -> tuple[TraceHeader, list[TraceRecord]]:
    """A trace from a path, a ``(header, records)`` pair, a :class:`TracingTransport`, or
    records alone (dicts or :class:`TraceRecord`, optionally a header dict first).

    Records built in memory get the line numbers they would have in a file (header = line 1),
    so divergence reports read the same either way."""
    if isinstance(source, (str, os.PathLike)):
        return load_trace(source)
    if isinstance(source, TracingTransport):
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


# --- the recorder ----------------------------------------------------------------------------


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
    wall_ms: float


class _TimingModel(Protocol):
    def exchange(self, command: bytes, response: bytes) -> Any: ...


_TIMING_FIELDS = ("air_ms", "card_ms", "host_ms", "wtx_ms", "total_ms")


def _timing_fields(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    operation = getattr(result, "operation", None)
    if operation is not None:
        out["operation"] = str(getattr(operation, "value", operation))
    for name in _TIMING_FIELDS:
        value = getattr(result, name, None)
        if isinstance(value, int | float):
            out[name] = round(float(value), 6)
    timed_out = getattr(result, "timed_out", None)
    if isinstance(timed_out, bool):
        out["timed_out"] = timed_out
    return out


def _wall() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class TracingTransport:
    """Wraps a transport and records every power event and exchange, masked.

    In memory it keeps :attr:`records` (the trace events, replayable and decodable) and
    :attr:`exchanges` (a compact list for quick tables, :meth:`to_dataframe`). Given ``path``
    (a file name or an open text stream) it also writes the trace as JSON Lines, one line per
    event, flushed as it goes (schema: module docstring). ``timing`` is an optional
    :class:`workbench.timing.TimingModel` whose modelled times are stored next to each
    exchange. ``profile`` defaults to the profile of a wrapped virtual card.

    ``is_virtual`` and ``pin_guard`` are those of the wrapped transport, so the clients'
    real-card safety checks see through the tracer.
    """

    def __init__(
        self,
        inner: Transport,
        path: str | os.PathLike[str] | TextIO | None = None,
        *,
        profile: str | None = None,
        description: str | None = None,
        timing: _TimingModel | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        from workbench import __version__

        self.inner = inner
        self.exchanges: list[Exchange] = []
        self.records: list[TraceRecord] = []
        self._timing = timing
        self._annotator = _Annotator()
        self._seq = 0
        card = getattr(inner, "card", None)
        inner_header = getattr(inner, "header", None)
        virtual = getattr(inner, "is_virtual", None)
        self.header = TraceHeader(
            tool_version=__version__,
            created=_wall(),
            profile=profile
            or getattr(card, "profile", None)
            or getattr(inner_header, "profile", None),
            token_label=getattr(card, "label", None) or getattr(inner_header, "token_label", None),
            virtual=virtual if isinstance(virtual, bool) else None,
            description=description,
            timing_model=None
            if timing is None
            else str(getattr(timing, "label", type(timing).__name__)),
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
        return bool(getattr(self.inner, "is_virtual", False))

    @property
    def pin_guard(self) -> bool | None:
        return getattr(self.inner, "pin_guard", None)

    # --- writing ---------------------------------------------------------------------------

    def _write(self, obj: Mapping[str, Any]) -> None:
        stream = self._stream
        if stream is None:
            return
        stream.write(_dumps(obj))
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
        self._annotator.power()
        try:
            atr = bytes(self.inner.connect())
        except Exception as exc:
            self._emit("connect", start, t, atr=None, error=f"{type(exc).__name__}: {exc}")
            raise
        timing = None
        activation = getattr(self._timing, "activation_ms", None)
        if callable(activation):
            timing = {"activation_ms": round(float(activation()), 6)}
        self._emit("connect", start, t, atr=atr.hex().upper(), timing=timing)
        return atr

    def disconnect(self) -> None:
        start, t = _wall(), time.perf_counter()
        self._annotator.power()
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
            decoded = self._annotator.exchange(masked, None)
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
        decoded = self._annotator.exchange(masked, response.hex().upper())
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
        try:
            description = str(CommandAPDU.from_bytes(apdu))
        except APDUError:
            description = "malformed command"
        try:
            rsp = ResponseAPDU.from_bytes(response)
            sw, status, length = rsp.sw, str(rsp.status), len(rsp.data)
        except APDUError:
            sw, status, length = -1, "malformed response", len(response)
        self.exchanges.append(Exchange(seq, masked, description, length, sw, status, ms))

    # --- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the trace file if this tracer opened it (a stream passed in stays open)."""
        if self._stream is not None and self._owns_stream:
            self._stream.close()
        self._stream = None

    def __enter__(self) -> TracingTransport:
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

    # --- views -----------------------------------------------------------------------------

    def to_dataframe(self, *, wall_clock: bool = False) -> pd.DataFrame:
        """The exchanges as a compact DataFrame; wall-clock times only when asked (they vary
        run to run). :meth:`decode` gives the fully annotated view."""
        import pandas as pd

        rows = [
            {
                "seq": e.seq,
                "command": e.description,
                "apdu": e.command,
                "resp_bytes": e.response_length,
                "sw": f"{e.sw:04X}" if e.sw >= 0 else "----",
                "status": e.status.split(" ", 1)[1] if " " in e.status else e.status,
                **({"wall_ms": round(e.wall_ms, 3)} if wall_clock else {}),
            }
            for e in self.exchanges
        ]
        return pd.DataFrame(rows).set_index("seq") if rows else pd.DataFrame()

    def decode(self) -> pd.DataFrame:
        """:func:`decode_trace` of what was recorded so far."""
        return decode_trace(self)


# --- replay ----------------------------------------------------------------------------------


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
    one did (see :func:`workbench.client.needs_pin_guard`).
    """

    is_virtual = True

    def __init__(self, source: TraceSource) -> None:
        self.header, self.records = _coerce(source)
        self._pos = 0

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
        offset = _first_difference(expected, apdu)
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


# --- decoder ---------------------------------------------------------------------------------

_COLUMNS = (
    "line",
    "event",
    "start",
    "duration_ms",
    "command",
    "instruction",
    "summary",
    "p1p2",
    "ap",
    "ef",
    "pin",
    "key",
    "offset",
    "length",
    "resp_len",
    "sw",
    "sw_name",
    "sw_en",
    "sw_ja",
    "tries_left",
    "cert_kind",
    "cert_subject",
    "cert_issuer",
    "cert_serial",
    "cert_not_after",
    "cert_sha256",
    "atr",
    "error",
    "response",
)
_TIMING_COLUMNS = ("operation", "air_ms", "card_ms", "host_ms", "wtx_ms", "total_ms", "timed_out")
_INT_COLUMNS = ("offset", "length", "resp_len", "tries_left")


def decode_trace(source: TraceSource) -> pd.DataFrame:
    """One annotated row per event of a trace, indexed by ``seq`` (pySim-trace style).

    ``source`` is a path, a ``(header, records)`` pair, a :class:`TracingTransport` or records.
    The selection state is replayed over the trace, so each row names the application
    (``ap``), the file, key or PIN object it touches (``ef``, ``pin``, ``key``; names from
    :data:`OBJECT_LABELS`), READ BINARY ``offset`` and ``length`` (the Le asked for), the status word with its English
    and Japanese meaning and ``tries_left`` for ``63 Cx`` (jpki-card.md 2-5). On a SELECT by DF
    name ``ap`` is the application asked for, so a refused SELECT (6A82) still names it. The READ BINARY
    that completes a certificate carries its ``cert_*`` facts (subject, serial, ... via
    :func:`workbench.pki.describe_certificate`). Modelled timing columns appear when the trace
    has them; a ``connect`` row puts the activation time in ``air_ms`` and ``total_ms``.
    Commands are shown masked: no column can hold a PIN.
    """
    import pandas as pd

    _, records = _coerce(source)
    annotator = _Annotator()
    rows: list[dict[str, Any]] = []
    with_timing = False
    for rec in records:
        row: dict[str, Any] = {
            "seq": rec.seq,
            "line": rec.line,
            "event": rec.type,
            "start": rec.get("start"),
            "duration_ms": rec.get("duration_ms"),
            "error": rec.get("error"),
        }
        timing = rec.get("timing")
        if rec.type == "exchange":
            command = str(rec["command"]).upper()
            response = rec.get("response")
            decoded = annotator.exchange(command, response)
            cert = decoded.pop("certificate", None) or {}
            row.update(command=command, response=response, **decoded)
            for key in ("kind", "subject", "issuer", "serial", "not_after", "sha256"):
                if key in cert:
                    row[f"cert_{key}"] = cert[key]
            if isinstance(timing, Mapping):
                with_timing = True
                row.update({k: timing.get(k) for k in _TIMING_COLUMNS})
        else:
            annotator.power()
            if rec.type == "connect":
                row["atr"] = rec.get("atr")
                if isinstance(timing, Mapping) and "activation_ms" in timing:
                    with_timing = True
                    row.update(
                        operation="activation",
                        air_ms=timing["activation_ms"],
                        total_ms=timing["activation_ms"],
                    )
        rows.append(row)
    columns = ["seq", *_COLUMNS, *(_TIMING_COLUMNS if with_timing else ())]
    frame = pd.DataFrame(rows, columns=columns)
    for name in _INT_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    frame["start"] = pd.to_datetime(frame["start"], utc=True, errors="coerce", format="ISO8601")
    return frame.set_index("seq")

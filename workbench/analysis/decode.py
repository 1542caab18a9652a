"""Decoding recorded traces: which application, file, PIN and key each command touched.

The decoder follows osmocom/pySim-trace (CONVENTIONS.md): it replays the card's selection
state over the trace, so every line can say which application and which file it touched, by
the names of the card's own file tables (jpki-card.md sections 2-3,
:mod:`workbench.card.files`), what its status word means (section 5, English and Japanese),
and, for a completed certificate read, the certificate's facts (section 9, through
:func:`workbench.pki.describe_certificate`). It sits above the transport layer, which only
moves and records bytes. It only ever sees masked commands, so nothing it returns can hold
a PIN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography import x509

from workbench import tlv
from workbench.apdu import (
    CLA_PROPRIETARY,
    INS,
    P1_READ_SFI,
    P1_SELECT_BY_DF_NAME,
    P1_SELECT_EF,
    P2_CURRENT_KEY,
    SECRET_INS,
    SFI_MASK,
    CommandAPDU,
    ResponseAPDU,
    response_meaning,
    tries_from_sw,
)
from workbench.card import constants as c
from workbench.card.files import object_label
from workbench.errors import APDUError, TLVError
from workbench.pki import describe_certificate
from workbench.transport.trace import TraceSource, coerce_trace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCENARIO_COLUMNS", "Annotator", "ap_name", "decode_scenario", "decode_trace",
           "describe_p1p2", "object_name"]


_ISD_NAME = "GlobalPlatform ISD (MF state)"


def ap_name(aid: bytes) -> str:
    """Name of an application by its DF name (jpki-card.md 2.1), else the AID in hex."""
    if aid == c.ISD_AID:
        return _ISD_NAME
    if not aid:
        return "no DF name"
    return c.AP_NAMES.get(aid) or f"AID {aid.hex().upper()}"


def object_name(aid: bytes | None, fid: int) -> str:
    """``"0018 利用者証明用暗証番号 (auth PIN)"``: FID, name and gloss in application ``aid``,
    from the card's file tables (:func:`workbench.card.files.object_label`); an object the
    tables do not know (another card, another AP) is named by its FID alone."""
    return object_label(aid, fid)


# --- decoding one command (ISO 7816-4, jpki-card.md 2.2, 4) ----------------------------------

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
    if p2 == P2_CURRENT_KEY:
        return "key of the current EF"
    if p2 & P2_CURRENT_KEY and not p2 & 0x60:
        return f"key with short EF id {p2 & SFI_MASK:02X}"
    return f"reference {p2:02X}"


def describe_p1p2(cmd: CommandAPDU) -> str:
    """What P1 and P2 mean for this instruction (ISO 7816-4 section 11, jpki-card.md 2.2, 4)."""
    cla, ins, p1, p2 = cmd.cla, cmd.ins, cmd.p1, cmd.p2
    if not cla & CLA_PROPRIETARY:
        if ins == INS.SELECT:
            how = "select MF" if p1 == 0 and not cmd.data else _SELECT_HOW.get(p1, f"P1={p1:02X}")
            return f"{how}; {_SELECT_ANSWER.get(p2, f'P2={p2:02X} (not supported)')}"
        if ins == INS.READ_BINARY:
            if p1 & P1_READ_SFI:
                return f"short EF id {p1 & SFI_MASK:02X}, offset {p2}"
            return f"offset {(p1 << 8) | p2} in the current EF"
        if ins == INS.READ_RECORD:
            sfi = p2 >> 3
            where = "current EF" if sfi == 0 else f"short EF id {sfi:02X}"
            return f"record {p1} of the {where}"
        if ins == INS.VERIFY:
            ref = _key_reference(p2)
            return ref if cmd.data else f"{ref}; retry-counter query (spends no try)"
        if ins == INS.CHANGE_REFERENCE_DATA:
            return f"{_CHANGE_MODES.get(p1, f'P1={p1:02X}')}; {_key_reference(p2)}"
        if ins == INS.GET_CHALLENGE:
            return f"{cmd.le or 0} random bytes"
        if ins == INS.INTERNAL_AUTHENTICATE:
            return f"algorithm {p1:02X}; {_key_reference(p2)}"
        if ins == INS.GET_DATA:
            return f"data object {(p1 << 8) | p2:04X}"
    else:
        if ins == INS.COMPUTE_SIGNATURE:
            key = "the application's own key" if p2 == 0 else _key_reference(p2)
            return f"{_SIGN_VARIANTS.get(p1, f'P1={p1:02X} (not supported)')}; {key}"
        if ins == INS.CHANGE_KEY:
            return f"new value; {_key_reference(p2)}"
    return f"P1={p1:02X} P2={p2:02X}"


def _target(p2: int, current: int | None) -> int | None:
    """The object a ``80`` / ``80 | SFI`` parameter addresses (jpki-card.md 2.2: SFI = FID)."""
    if p2 == P2_CURRENT_KEY:
        return current
    if p2 & P2_CURRENT_KEY and not p2 & 0x60:
        return p2 & SFI_MASK
    return None


def _der_length(buf: bytes | bytearray) -> int | None:
    """Total length of the DER SEQUENCE at the start of ``buf`` once its header is there."""
    if len(buf) < 2 or buf[0] != 0x30:
        return None
    try:
        return tlv.object_length(bytes(buf[:6]))
    except TLVError:
        return None


def _certificate_facts(der: bytes) -> dict[str, Any] | None:
    """Subject, serial ... of a DER certificate (jpki-card.md 9), or None if it is not one."""
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


class Annotator:
    """Replays the card's selection state over a trace, pySim-trace style.

    It is what :class:`workbench.analysis.TracingTransport` passes to the recorder as its
    ``annotator`` (:class:`workbench.transport.recorder.Annotator`), and what
    :func:`decode_trace` runs over a finished trace.

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
            name, english, japanese = response_meaning(cmd, rsp.sw)
            out["resp_len"] = len(rsp.data)
            out["sw"] = f"{rsp.sw:04X}"
            out["sw_name"] = name
            out["sw_en"] = english
            out["sw_ja"] = japanese
            left = tries_from_sw(rsp.sw)
            if left is not None:
                out["tries_left"] = left
        return out

    def _track(
        self, cmd: CommandAPDU, rsp: ResponseAPDU | None, ok: bool, out: dict[str, Any]
    ) -> None:
        cla, ins, p1, p2 = cmd.cla, cmd.ins, cmd.p1, cmd.p2
        proprietary = bool(cla & CLA_PROPRIETARY)
        if not proprietary and ins == INS.SELECT:
            if p1 == P1_SELECT_BY_DF_NAME:
                out["ap"] = ap_name(cmd.data)
                if ok:
                    self.aid = None if cmd.data == c.ISD_AID else cmd.data
                    self.ef = None
                    self._described.clear()
            elif p1 == P1_SELECT_EF and len(cmd.data) == 2:
                fid = int.from_bytes(cmd.data, "big")
                out["ef"] = object_name(self.aid, fid)
                if ok:
                    self.ef = fid
            return
        if not proprietary and ins == INS.READ_BINARY:
            if p1 & P1_READ_SFI:
                fid: int | None = p1 & SFI_MASK
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
        if not proprietary and ins == INS.READ_RECORD:
            sfi = p2 >> 3
            fid = self.ef if sfi == 0 else sfi
            if fid is not None:
                out["ef"] = object_name(self.aid, fid)
                if ok and sfi:
                    self.ef = fid
            return
        if (not proprietary and ins in SECRET_INS) or (proprietary and ins == INS.CHANGE_KEY):
            fid = _target(p2, self.ef)
            if fid is not None:
                out["ef"] = out["pin"] = object_name(self.aid, fid)
            return
        if (proprietary and ins == INS.COMPUTE_SIGNATURE) or (
            not proprietary and ins == INS.INTERNAL_AUTHENTICATE
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
    :func:`object_name`), READ BINARY ``offset`` and ``length`` (the Le asked for), the status word with its English
    and Japanese meaning and ``tries_left`` for ``63 Cx`` (jpki-card.md 2-5). On a SELECT by DF
    name ``ap`` is the application asked for, so a refused SELECT (6A82) still names it. The READ BINARY
    that completes a certificate carries its ``cert_*`` facts (subject, serial, ... via
    :func:`workbench.pki.describe_certificate`). Modelled timing columns appear when the trace
    has them; a ``connect`` row puts the activation time in ``air_ms`` and ``total_ms``.
    Commands are shown masked: no column can hold a PIN.
    """
    import pandas as pd

    _, records = coerce_trace(source)
    annotator = Annotator()
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


#: Columns of :func:`decode_scenario`, the readable ones first and the raw bytes last.
SCENARIO_COLUMNS = ("seq", "step", "channel", "device", "what", "ap", "object", "status", "sw",
                    "tries_left", "modelled_ms", "server_side", "command", "response")


def decode_scenario(records: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per APDU and per HTTP message of a scenario trace (schema 2), decoded.

    Each token and logical channel keeps its own selection state (the card over NFC, each
    OMAPI channel of the phone's SE, a reader over RF), so ``ap`` and ``object`` name what a
    command touched; a relayed TSM command (encrypted, CLA 84) is named by its ``label``.
    ``status`` is the status word's meaning (English) or the HTTP status and the answer's
    state or error. Raw bytes come last (masked commands: no PIN in any column).
    """
    import pandas as pd

    annotators: dict[tuple[str, str, int], Annotator] = {}
    step = None
    rows: list[dict[str, Any]] = []
    for rec in records:
        kind = rec.get("type")
        if kind == "step":
            step = rec.get("index")
            continue
        timing = rec.get("timing") or {}
        if kind in ("connect", "disconnect"):
            for key in [k for k in annotators if k[0] == rec.get("device")]:
                annotators[key].power()
            continue
        if kind == "exchange":
            command = str(rec.get("command", "")).upper()
            logical = int(command[:2], 16) & 0x03 if len(command) >= 2 and command[:2] != "**" \
                else 0
            key = (str(rec.get("device")), str(rec.get("channel")), logical)
            annotator = annotators.setdefault(key, Annotator())
            decoded = annotator.exchange(command, rec.get("response"))
            what = rec.get("label") or decoded.get("instruction", "")
            obj = decoded.get("ef") or decoded.get("pin") or decoded.get("key") or ""
            if decoded.get("tries_left") is not None and not decoded.get("pin"):
                obj = obj or "PIN"
            rows.append({
                "seq": rec.get("seq"), "step": step, "channel": rec.get("channel"),
                "device": rec.get("device"), "what": what, "ap": decoded.get("ap", ""),
                "object": obj, "status": decoded.get("sw_en", ""), "sw": decoded.get("sw", ""),
                "tries_left": decoded.get("tries_left"),
                "modelled_ms": round(sum(float(timing.get(k, 0.0)) for k in
                                         ("air_ms", "card_ms", "host_ms", "wtx_ms")), 3),
                "server_side": bool(rec.get("server_side")),
                "command": command, "response": rec.get("response")})
        elif kind == "message" and rec.get("channel") == "HTTP":
            answer = rec.get("response") or {}
            detail = answer.get("error") or answer.get("state") or answer.get("what") or ""
            if "accepted" in answer:
                detail = "accepted" if answer["accepted"] else f"refused: {answer.get('reason')}"
            rows.append({
                "seq": rec.get("seq"), "step": step, "channel": "HTTP",
                "device": rec.get("device"),
                "what": f"{rec.get('method')} {rec.get('host')}{rec.get('path')}", "ap": "",
                "object": "", "status": f"{rec.get('status')} {detail}".strip(), "sw": "",
                "tries_left": None, "modelled_ms": float(timing.get("network_ms", 0.0)),
                "server_side": bool(rec.get("server_side")), "command": "", "response": ""})
    frame = pd.DataFrame(rows, columns=list(SCENARIO_COLUMNS))
    frame["tries_left"] = frame["tries_left"].astype("Int64")
    return frame

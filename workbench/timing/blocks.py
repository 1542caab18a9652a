"""ISO-DEP blocks and Type B frames as bytes: CRC_B, I/R/S-blocks, an APDU's block sequence.

The air-time formulas of :mod:`workbench.timing.air` only need byte counts, but the model must
reproduce the CRC_B check values of nfc-timing.md 5 when it builds frames (16.1), and a trace
or a plot of one APDU is clearer with the actual blocks (who sends which PCB with which block
number). Building the bytes here also lets the tests check the size formulas of 12.4 against
real frames. Block format: nfc-timing.md 8; chaining: 10; block numbering: 8 [U].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workbench.timing.air import DEFAULT_AIR, AirParameters, wtx_multiplier, wtx_rounds
from workbench.timing.errors import TimingParameterError

__all__ = [
    "Frame",
    "IsoDepExchange",
    "Sender",
    "append_crc_b",
    "check_crc_b",
    "crc_b",
    "i_block",
    "iso_dep_exchange",
    "r_ack",
    "r_nak",
    "s_deselect",
    "s_wtx",
]

# --- CRC_B (nfc-timing.md 5) ------------------------------------------------------------------

_CRC_B_POLY_REFLECTED = 0x8408  # 5: x^16 + x^12 + x^5 + 1, bit-reversed (LSB-first shifting)
_CRC_B_INIT = 0xFFFF  # 5: initial register
_CRC_B_XOROUT = 0xFFFF  # 5: final ones' complement


def _crc_b_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        register = byte
        for _ in range(8):
            register = (register >> 1) ^ _CRC_B_POLY_REFLECTED if register & 1 else register >> 1
        table.append(register)
    return tuple(table)


_CRC_B_TABLE = _crc_b_table()


def crc_b(data: bytes) -> bytes:
    """CRC_B of ``data`` as transmitted: 2 bytes, least significant byte first (5).

    CRC-16/X-25: reflected polynomial 0x8408, initial value 0xFFFF, final complement. It covers
    every byte of the frame but not SOF/EOF or start/stop bits; ``crc_b(b"123456789")`` is
    ``6E 90`` (register 0x906E).
    """
    register = _CRC_B_INIT
    for byte in bytes(data):
        register = (register >> 8) ^ _CRC_B_TABLE[(register ^ byte) & 0xFF]
    return (register ^ _CRC_B_XOROUT).to_bytes(2, "little")


def append_crc_b(payload: bytes) -> bytes:
    """``payload`` followed by its CRC_B: a complete Type B frame body (5, 8 EDC)."""
    payload = bytes(payload)
    return payload + crc_b(payload)


def check_crc_b(frame: bytes) -> bool:
    """True when the last two bytes of ``frame`` are the CRC_B of the bytes before them (5)."""
    frame = bytes(frame)
    return len(frame) >= 2 and crc_b(frame[:-2]) == frame[-2:]


# --- PCB values (nfc-timing.md 8) -------------------------------------------------------------

_PCB_I = 0x02  # 8: I-block base
_PCB_R_ACK = 0xA2  # 8: R-block base, ACK
_PCB_S_DESELECT = 0xC2  # 8: S(DESELECT)
_PCB_S_WTX = 0xF2  # 8: S(WTX)
_PCB_BLOCK_NUMBER = 0x01  # 8: b1
_PCB_NAD_FOLLOWS = 0x04  # 8: b3 (I-blocks)
_PCB_CID_FOLLOWS = 0x08  # 8: b4
_PCB_CHAINING = 0x10  # 8: b5 of an I-block
_PCB_NAK = 0x10  # 8: b5 of an R-block
_CID_MAX = 14  # ISO/IEC 14443-4: CID 15 is RFU
_WTXM_MASK = 0x3F  # 8: b6-b1 of the S(WTX) INF
_POWER_LEVEL_SHIFT = 6  # 8: b8-b7 of the S(WTX) INF (PICC -> PCD only)
_WTXM_MAX = 59  # 8


def _check_block_number(block_number: int) -> None:
    if block_number not in (0, 1) or isinstance(block_number, bool):
        raise TimingParameterError(
            f"an ISO-DEP block number is 0 or 1 (nfc-timing.md 8), got {block_number!r}"
        )


def _cid_prefix(pcb: int, cid: int | None) -> bytes:
    if cid is None:
        return bytes((pcb,))
    if isinstance(cid, bool) or not isinstance(cid, int) or not 0 <= cid <= _CID_MAX:
        raise TimingParameterError(f"a CID is 0..{_CID_MAX} (15 is RFU), got {cid!r}")
    return bytes((pcb | _PCB_CID_FOLLOWS, cid))


def i_block(
    inf: bytes,
    block_number: int,
    *,
    chaining: bool = False,
    cid: int | None = None,
    nad: int | None = None,
) -> bytes:
    """PCB ‖ [CID] ‖ [NAD] ‖ INF ‖ CRC_B; PCB ``0 0 0 c C N 1 b`` (8)."""
    _check_block_number(block_number)
    pcb = _PCB_I | block_number | (_PCB_CHAINING if chaining else 0)
    if nad is not None:
        if isinstance(nad, bool) or not isinstance(nad, int) or not 0 <= nad <= 0xFF:
            raise TimingParameterError(f"a NAD is one byte 0..255, got {nad!r}")
        pcb |= _PCB_NAD_FOLLOWS
    head = _cid_prefix(pcb, cid)
    if nad is not None:
        head += bytes((nad,))
    return append_crc_b(head + bytes(inf))


def r_ack(block_number: int, *, cid: int | None = None) -> bytes:
    """R(ACK): PCB ``1 0 1 0 C 0 1 b`` ‖ [CID] ‖ CRC_B; ``r_ack(0)`` is ``A2 60 76`` (5, 8)."""
    _check_block_number(block_number)
    return append_crc_b(_cid_prefix(_PCB_R_ACK | block_number, cid))


def r_nak(block_number: int, *, cid: int | None = None) -> bytes:
    """R(NAK): as R(ACK) with b5 set; the reader's error-recovery block (8, 10)."""
    _check_block_number(block_number)
    return append_crc_b(_cid_prefix(_PCB_R_ACK | _PCB_NAK | block_number, cid))


def s_wtx(wtxm: int, *, cid: int | None = None, power_level: int = 0) -> bytes:
    """S(WTX): ``F2`` ‖ [CID] ‖ power level (b8-b7) + WTXM (b6-b1) ‖ CRC_B (8).

    The card sends it with its power-level indication; the reader echoes WTXM with the power
    bits 0. WTXM must be 1..59: 0 or more is a protocol error (8).
    """
    if isinstance(wtxm, bool) or not isinstance(wtxm, int) or not 1 <= wtxm <= _WTXM_MAX:
        raise TimingParameterError(f"WTXM must be 1..{_WTXM_MAX} (nfc-timing.md 8), got {wtxm!r}")
    if power_level not in (0, 1, 2, 3) or isinstance(power_level, bool):
        raise TimingParameterError(f"the power level is 0..3 (2 bits), got {power_level!r}")
    inf = (power_level << _POWER_LEVEL_SHIFT) | (wtxm & _WTXM_MASK)
    return append_crc_b(_cid_prefix(_PCB_S_WTX, cid) + bytes((inf,)))


def s_deselect(*, cid: int | None = None) -> bytes:
    """S(DESELECT): ``C2`` ‖ [CID] ‖ CRC_B, answered in kind before the card halts (8)."""
    return append_crc_b(_cid_prefix(_PCB_S_DESELECT, cid))


# --- the blocks of one APDU (nfc-timing.md 8, 10, 12.3, 12.4) ---------------------------------


class Sender(StrEnum):
    """Who puts a frame on the air."""

    PCD = "PCD"  # reader (or phone in reader mode)
    PICC = "PICC"  # card (or phone in card emulation)


@dataclass(frozen=True)
class Frame:
    """One frame on the air: sender, a short label such as ``I(0,chain)``, and its bytes."""

    sender: Sender
    label: str
    data: bytes


@dataclass(frozen=True)
class IsoDepExchange:
    """The frames of one APDU exchange and the reader's block number for the next one."""

    frames: tuple[Frame, ...]
    next_block_number: int


def iso_dep_exchange(
    command: bytes,
    response: bytes,
    params: AirParameters = DEFAULT_AIR,
    *,
    block_number: int = 0,
    t_card_ms: float = 0.0,
    cid: int = 0,
    nad: int = 0,
) -> IsoDepExchange:
    """The frames that carry ``command`` and ``response`` under ``params`` (8, 10, 12.3).

    The command is cut into I-blocks of at most ``FSC - h`` INF bytes, chained and R(ACK)ed;
    if ``t_card_ms`` exceeds FWT the card's S(WTX) rounds (echoed by the reader) follow the last
    command block; the response is cut into I-blocks of ``FSD - h`` bytes, each after the first
    fetched by the reader's R(ACK). Block numbers follow the patterns of 8 [U]. ``cid`` and
    ``nad`` are the byte values used when ``params.cid`` / ``params.nad`` are set.
    """
    _check_block_number(block_number)
    cid_value = cid if params.cid else None
    nad_value = nad if params.nad else None
    command, response = bytes(command), bytes(response)
    c_c, c_r = params.command_capacity, params.response_capacity
    command_parts = [command[i : i + c_c] for i in range(0, len(command), c_c)] or [b""]
    response_parts = [response[i : i + c_r] for i in range(0, len(response), c_r)] or [b""]

    frames: list[Frame] = []
    number = block_number
    for index, part in enumerate(command_parts):
        chaining = index < len(command_parts) - 1
        label = f"I({number},chain)" if chaining else f"I({number})"
        frames.append(
            Frame(
                Sender.PCD,
                label,
                i_block(part, number, chaining=chaining, cid=cid_value, nad=nad_value),
            )
        )
        if chaining:
            # 8: the card acknowledges a chained block with its own number, the reader toggles.
            frames.append(Frame(Sender.PICC, f"R(ACK,{number})", r_ack(number, cid=cid_value)))
            number ^= 1

    rounds = wtx_rounds(t_card_ms, params.fwi, params.wtxm)
    if rounds:
        m = wtx_multiplier(t_card_ms, params.fwi, params.wtxm)
        for _ in range(rounds):
            frames.append(Frame(Sender.PICC, f"S(WTX,{m})", s_wtx(m, cid=cid_value)))
            frames.append(Frame(Sender.PCD, f"S(WTX,{m})", s_wtx(m, cid=cid_value)))

    for index, part in enumerate(response_parts):
        if index:
            # 8: PICC chaining I(b,chain) -> PCD R(ACK,not b) -> PICC I(not b).
            number ^= 1
            frames.append(Frame(Sender.PCD, f"R(ACK,{number})", r_ack(number, cid=cid_value)))
        chaining = index < len(response_parts) - 1
        label = f"I({number},chain)" if chaining else f"I({number})"
        frames.append(
            Frame(
                Sender.PICC,
                label,
                i_block(part, number, chaining=chaining, cid=cid_value, nad=nad_value),
            )
        )
    return IsoDepExchange(tuple(frames), number ^ 1)

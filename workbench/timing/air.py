"""Air time of ISO/IEC 14443-B frames, ISO-DEP blocks and whole APDUs (nfc-timing.md 2-12).

The simulator needs to say how long an exchange with the My Number Card *would* take over RF,
split into parts a plot can stack (nfc-timing.md 16 item 3). This module turns byte counts into
modelled time with the formulas of nfc-timing.md section 12, fed by the constants of sections
2-11. It builds no frames (see :mod:`workbench.timing.blocks` for the bytes) and never reads a
clock: the numbers are modelled time, kept apart from the simulation's wall-clock time.

Units: every duration is a float in **milliseconds**. The standard defines its times as
multiples of the carrier period 1/fc, the subcarrier period 1/fs = 16/fc or the etu; the code
keeps those integer multiples as long as it can and converts to milliseconds at the end, so the
numbers can be checked by hand as ``cycles / 13 560``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from workbench.timing.errors import TimingParameterError

__all__ = [
    "BIT_RATES_KBPS",
    "DEFAULT_AIR",
    "DELTA_FWT_MS",
    "FC_HZ",
    "FRAME_SIZES",
    "FWT_MAX_MS",
    "GUARD_TIME_MS",
    "TR0_MINIMA_FS",
    "TR1_MINIMA_FS",
    "TR2_EXTRA_FS",
    "WTXM_MAX",
    "ActivationTiming",
    "AirParameters",
    "AirTiming",
    "activation_time",
    "apdu_air_time",
    "block_time",
    "divisor_for_bit_rate",
    "etu",
    "frame_size",
    "frame_time",
    "fwt",
    "wtx_multiplier",
    "wtx_rounds",
]

# --- clocks and bit rates (nfc-timing.md 2) ---------------------------------------------------

FC_HZ = 13_560_000  # 2: carrier frequency fc
_FC_PER_MS = FC_HZ // 1000  # 13 560 carrier periods per millisecond
_FC_PER_FS = 16  # 2: subcarrier fs = fc/16, so one 1/fs period is 16 carrier periods
_FC_PER_ETU_D1 = 128  # 2: etu = 128 / (D * fc)
DIVISORS = (1, 2, 4, 8)  # 2: D
#: Nominal bit rates (kbit/s) by their usual names -> divisor D (2: D * fc / 128).
BIT_RATES_KBPS = {106: 1, 212: 2, 424: 4, 848: 8}

# --- character, SOF/EOF, EGT (nfc-timing.md 3, 4) ---------------------------------------------

_ETU_PER_CHARACTER = 10  # 3: start bit + 8 data bits + stop bit
_SOF_LOW_ETU = (10, 11)  # 4: SOF logic-0 part, allowed range
_SOF_HIGH_ETU = (2, 3)  # 4: SOF logic-1 part, allowed range
_EOF_ETU = (10, 11)  # 4: EOF, allowed range
_EGT_PCD_MAX_MS = 0.057  # 3: PCD -> PICC extra guard time 0 ... 57 us
_EGT_PICC_MAX_MS = 0.019  # 3: PICC -> PCD extra guard time 0 ... 19 us

# --- turnaround times (nfc-timing.md 6) -------------------------------------------------------

#: ATTRIB Param 1 b8-b7 code -> TR0 minimum in 1/fs (6, 7.4).
TR0_MINIMA_FS = {0: 64, 1: 48, 2: 16}
_TR0_MAX_FS = 256  # 6: TR0 maximum for the ATQB; later frames are bounded by FWT
#: ATTRIB Param 1 b6-b5 code -> TR1 minimum in 1/fs (6, 7.4).
TR1_MINIMA_FS = {0: 80, 1: 64, 2: 16}
_TR1_MAX_FS = 200  # 6: TR1 maximum
#: ATQB Protocol_Type minimum-TR2 code -> the part of TR2 above 10 etu, in 1/fs (6, 7.2).
TR2_EXTRA_FS = (32, 128, 256, 512)
_TR2_BASE_FC = 10 * _FC_PER_ETU_D1  # 6: "10 etu" of TR2, at 106 kbit/s (1792/fc - 512/fc)

# --- frame sizes (nfc-timing.md 9) ------------------------------------------------------------

#: FSCI / FSDI code -> maximum frame size in bytes, PCB and CRC_B included (9).
FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)
_PCB_BYTES = 1  # 8
_CID_BYTES = 1  # 8
_NAD_BYTES = 1  # 8
_EDC_BYTES = 2  # 5, 8: CRC_B
_WTXM_BYTES = 1  # 8: INF of S(WTX)

# --- frame waiting time and WTX (nfc-timing.md 11) --------------------------------------------

_FWT_UNIT_FC = 256 * 16  # 11: FWT = (256 * 16 / fc) * 2^FWI
_FWI_MAX = 14  # 11: FWI 0 ... 14; 15 is RFU
_FWI_RFU = 15
_FWI_READER_DEFAULT = 4  # 11: readers treat FWI 15 as FWI 4
WTXM_MAX = 59  # 8, 15: WTXM 1 ... 59


def _is_int(value: object) -> bool:
    """A real int: bools and floats are refused where the standard counts whole units."""
    return isinstance(value, int) and not isinstance(value, bool)


def _fc_to_ms(carrier_periods: float) -> float:
    """Carrier periods (1/fc) to milliseconds."""
    return carrier_periods / _FC_PER_MS


def fwt(fwi: int) -> float:
    """Frame waiting time in ms: ``FWT = (256 * 16 / fc) * 2^FWI`` (nfc-timing.md 11).

    FWT bounds how long the card may stay silent after a PCD frame before it must answer or ask
    for more time with S(WTX); it is the threshold that decides whether WTX rounds happen.
    FWI 15 is RFU and refused, because readers silently reinterpret it (as FWI 4).
    """
    _check_fwi(fwi, "FWI")
    return _fc_to_ms(_FWT_UNIT_FC << fwi)


def _check_fwi(fwi: int, what: str) -> None:
    if fwi == _FWI_RFU:
        raise TimingParameterError(
            f"{what} 15 is RFU (nfc-timing.md 11); readers treat it as {_FWI_READER_DEFAULT}, "
            f"so pass {_FWI_READER_DEFAULT}"
        )
    if not _is_int(fwi) or not 0 <= fwi <= _FWI_MAX:
        raise TimingParameterError(f"{what} must be an int 0..{_FWI_MAX} (nfc-timing.md 11)")


FWT_MAX_MS = fwt(_FWI_MAX)  # 11: 4.949 s, the cap on FWT_temp after S(WTX)
DELTA_FWT_MS = _fc_to_ms(49_152)  # 11: reader tolerance on FWT, ~3.625 ms (not in formulas)
GUARD_TIME_MS = 5.0  # 7.5: field on -> first command (Flipper Zero ISO14443_3B_GUARD_TIME_US)


def _check_divisor(d: int, what: str) -> None:
    if not _is_int(d) or d not in DIVISORS:
        raise TimingParameterError(
            f"{what} must be one of {DIVISORS} (106/212/424/848 kbit/s, nfc-timing.md 2), got {d!r}"
        )


def divisor_for_bit_rate(kbps: int) -> int:
    """The divisor D for a nominal bit rate 106, 212, 424 or 848 kbit/s (nfc-timing.md 2)."""
    try:
        return BIT_RATES_KBPS[kbps]
    except (KeyError, TypeError):
        raise TimingParameterError(
            f"bit rate must be one of {tuple(BIT_RATES_KBPS)} kbit/s (nfc-timing.md 2), "
            f"got {kbps!r}"
        ) from None


def etu(d: int = 1) -> float:
    """One elementary time unit in ms: ``etu = 128 / (D * fc)`` (nfc-timing.md 2).

    At D = 1 (106 kbit/s) this is 9.4395 us; every frame duration is a whole number of etu.
    """
    _check_divisor(d, "divisor D")
    return _fc_to_ms(_FC_PER_ETU_D1 / d)


def frame_size(code: int) -> int:
    """FSCI / FSDI code 0..8 -> frame size in bytes (nfc-timing.md 9; MODEL: at most 256)."""
    if not _is_int(code) or not 0 <= code < len(FRAME_SIZES):
        raise TimingParameterError(
            f"FSCI/FSDI must be 0..{len(FRAME_SIZES) - 1}; codes above 8 exceed the 256-byte "
            "MODEL cap (nfc-timing.md 9)"
        )
    return FRAME_SIZES[code]


def frame_time(
    n_bytes: int,
    d: int = 1,
    *,
    sof_etu: float = 12,
    eof_etu: float = 10,
    egt_etu: float = 0,
) -> float:
    """Duration in ms of one frame of ``n_bytes`` (CRC_B included) at divisor ``d``.

    ``T_frame = [SOF + 10 n + EGT (n - 1) + EOF] * etu(D)`` (nfc-timing.md 12.1): each byte is a
    10-etu character (3), the frame is delimited by SOF and EOF (4) and the optional extra
    guard time sits *between* characters, hence ``n - 1``. Pass ``sof_etu=0`` / ``eof_etu=0``
    for a PICC frame whose SOF / EOF was suppressed in ATTRIB (7.4).
    """
    if not _is_int(n_bytes) or n_bytes < 1:
        raise TimingParameterError(
            f"a frame carries at least 1 byte (nfc-timing.md 12.1), got {n_bytes!r}"
        )
    etus = sof_etu + _ETU_PER_CHARACTER * n_bytes + egt_etu * (n_bytes - 1) + eof_etu
    return etus * etu(d)


@dataclass(frozen=True)
class AirParameters:
    """Everything the RF link negotiates or assumes, with the defaults of nfc-timing.md.

    The defaults are the card's MODEL values: 106 kbit/s both ways, FSC = FSD = 256, no CID or
    NAD, EGT 0, SOF 12 etu and EOF 10 etu without suppression, default TR0/TR1/TR2 and FWI 10
    (nfc-timing.md 3, 4, 6, 7.3, 15). Times that the standard states in subcarrier periods are
    given in 1/fs units (``tr0_fs``, ``tr1_fs``) so that the ATTRIB codes map one to one
    (:data:`TR0_MINIMA_FS`, :data:`TR1_MINIMA_FS`). MODEL (6): TR0, TR1, TR2 are absolute
    times, the same at every bit rate.

    ``wtxm`` is the card's WTX policy: None is the MODEL of nfc-timing.md 15 (the smallest
    multiplier covering the remaining processing time, capped at 59); an int 1..59 fixes it.

    Invalid values raise :class:`TimingParameterError` on construction, so a model built from
    these parameters cannot compute with a value the standard forbids.
    """

    d_pcd: int = 1  # PCD -> PICC divisor D (7.4 ATTRIB Param 2 b6-b5)
    d_picc: int = 1  # PICC -> PCD divisor D (7.4 ATTRIB Param 2 b8-b7)
    fsc: int = 256  # 9: the card's max frame (ATQB FSCI 8)
    fsd: int = 256  # 9: the reader's max frame (ATTRIB FSDI)
    cid: bool = False  # 8: CID byte in every block
    nad: bool = False  # 8: NAD byte in every I-block
    egt_pcd_etu: float = 0.0  # 3: MODEL default EGT = 0
    egt_picc_etu: float = 0.0  # 3
    sof_low_etu: int = 10  # 4: MODEL default SOF = 10 + 2 etu
    sof_high_etu: int = 2  # 4
    eof_etu: int = 10  # 4: MODEL default EOF = 10 etu
    picc_sof_suppressed: bool = False  # 4, 7.4 ATTRIB Param 1 b3
    picc_eof_suppressed: bool = False  # 4, 7.4 ATTRIB Param 1 b4
    tr0_fs: int = TR0_MINIMA_FS[0]  # 6: 64/fs
    tr1_fs: int = TR1_MINIMA_FS[0]  # 6: 80/fs
    tr2_code: int = 0  # 6, 7.2: ATQB minimum-TR2 code 0..3
    fwi: int = 10  # 15: FWI from the ATQB, 10 by default (card protocol info B3 81 A1)
    wtxm: int | None = None  # 12.3, 15: None = smallest sufficient multiplier, capped at 59

    def __post_init__(self) -> None:
        _check_divisor(self.d_pcd, "d_pcd")
        _check_divisor(self.d_picc, "d_picc")
        for name in ("fsc", "fsd"):
            value = getattr(self, name)
            if not _is_int(value) or value not in FRAME_SIZES:
                raise TimingParameterError(
                    f"{name} must be one of {FRAME_SIZES} bytes (nfc-timing.md 9), got {value!r}"
                )
        for name in ("cid", "nad", "picc_sof_suppressed", "picc_eof_suppressed"):
            if not isinstance(getattr(self, name), bool):
                raise TimingParameterError(f"{name} must be True or False")
        _check_range(self.sof_low_etu, _SOF_LOW_ETU, "sof_low_etu", "etu (nfc-timing.md 4)")
        _check_range(self.sof_high_etu, _SOF_HIGH_ETU, "sof_high_etu", "etu (nfc-timing.md 4)")
        _check_range(self.eof_etu, _EOF_ETU, "eof_etu", "etu (nfc-timing.md 4)")
        _check_egt(self.egt_pcd_etu, self.d_pcd, _EGT_PCD_MAX_MS, "egt_pcd_etu")
        _check_egt(self.egt_picc_etu, self.d_picc, _EGT_PICC_MAX_MS, "egt_picc_etu")
        _check_range(
            self.tr0_fs,
            (min(TR0_MINIMA_FS.values()), _TR0_MAX_FS),
            "tr0_fs",
            "subcarrier periods 1/fs (nfc-timing.md 6)",
        )
        _check_range(
            self.tr1_fs,
            (min(TR1_MINIMA_FS.values()), _TR1_MAX_FS),
            "tr1_fs",
            "subcarrier periods 1/fs (nfc-timing.md 6)",
        )
        _check_range(self.tr2_code, (0, len(TR2_EXTRA_FS) - 1), "tr2_code", "(nfc-timing.md 6)")
        _check_fwi(self.fwi, "fwi")
        if self.wtxm is not None:
            _check_range(self.wtxm, (1, WTXM_MAX), "wtxm", "(nfc-timing.md 8; or None)")

    # --- construction helpers ---------------------------------------------------------------

    @classmethod
    def at_bit_rate(cls, kbps: int, **fields: object) -> AirParameters:
        """Parameters with the same nominal bit rate both ways, e.g. ``at_bit_rate(424)``.

        The card's ATQB sets "same bit rate in both directions compulsory" (nfc-timing.md 7.3),
        so one number is the common case.
        """
        d = divisor_for_bit_rate(kbps)
        return cls(d_pcd=d, d_picc=d, **fields)  # type: ignore[arg-type]

    def with_changes(self, **fields: object) -> AirParameters:
        """A copy with some fields changed, validated like a new instance."""
        return replace(self, **fields)  # type: ignore[arg-type]

    # --- derived sizes (nfc-timing.md 8, 9) -------------------------------------------------

    @property
    def i_block_overhead(self) -> int:
        """h = PCB + [CID] + [NAD] + CRC_B, the non-INF bytes of an I-block (9)."""
        return _PCB_BYTES + _CID_BYTES * self.cid + _NAD_BYTES * self.nad + _EDC_BYTES

    @property
    def r_block_bytes(self) -> int:
        """h_R = PCB + [CID] + CRC_B: an R(ACK) has no INF (12.4)."""
        return _PCB_BYTES + _CID_BYTES * self.cid + _EDC_BYTES

    @property
    def s_wtx_bytes(self) -> int:
        """h_S = PCB + [CID] + WTXM + CRC_B, 4 bytes without CID (12.3)."""
        return _PCB_BYTES + _CID_BYTES * self.cid + _WTXM_BYTES + _EDC_BYTES

    @property
    def command_capacity(self) -> int:
        """c_c = FSC - h: APDU bytes per PCD I-block (12.4)."""
        return self.fsc - self.i_block_overhead

    @property
    def response_capacity(self) -> int:
        """c_r = FSD - h: APDU bytes per PICC I-block (12.4)."""
        return self.fsd - self.i_block_overhead

    # --- derived times (nfc-timing.md 6, 11) ------------------------------------------------

    @property
    def tr0_ms(self) -> float:
        """TR0: PCD EOF -> PICC subcarrier, the least time the card stays silent (6)."""
        return _fc_to_ms(self.tr0_fs * _FC_PER_FS)

    @property
    def tr1_ms(self) -> float:
        """TR1: unmodulated subcarrier before the PICC SOF (6)."""
        return _fc_to_ms(self.tr1_fs * _FC_PER_FS)

    @property
    def tr2_ms(self) -> float:
        """TR2: PICC EOF -> next PCD SOF, 10 etu + {32, 128, 256, 512}/fs (6)."""
        return _fc_to_ms(_TR2_BASE_FC + TR2_EXTRA_FS[self.tr2_code] * _FC_PER_FS)

    @property
    def fwt_ms(self) -> float:
        """FWT for this link's FWI (11)."""
        return fwt(self.fwi)

    @property
    def bit_rates_kbps(self) -> tuple[float, float]:
        """(PCD -> PICC, PICC -> PCD) in kbit/s, D * fc / 128 (2): 105.9 at D = 1."""
        return (
            self.d_pcd * FC_HZ / _FC_PER_ETU_D1 / 1000,
            self.d_picc * FC_HZ / _FC_PER_ETU_D1 / 1000,
        )

    # --- frame times ------------------------------------------------------------------------

    def pcd_frame_ms(self, n_bytes: int) -> float:
        """T_frame of a reader frame of ``n_bytes`` (12.1); the PCD never suppresses SOF/EOF."""
        return frame_time(
            n_bytes,
            self.d_pcd,
            sof_etu=self.sof_low_etu + self.sof_high_etu,
            eof_etu=self.eof_etu,
            egt_etu=self.egt_pcd_etu,
        )

    def picc_frame_ms(self, n_bytes: int) -> float:
        """T_frame of a card frame of ``n_bytes``, minus a suppressed SOF / EOF (12.1, 7.4)."""
        return frame_time(
            n_bytes,
            self.d_picc,
            sof_etu=0 if self.picc_sof_suppressed else self.sof_low_etu + self.sof_high_etu,
            eof_etu=0 if self.picc_eof_suppressed else self.eof_etu,
            egt_etu=self.egt_picc_etu,
        )


def _check_range(value: object, bounds: tuple[int, int], name: str, unit: str) -> None:
    low, high = bounds
    if not _is_int(value) or not low <= value <= high:
        raise TimingParameterError(f"{name} must be an int {low}..{high} {unit}, got {value!r}")


def _check_egt(value: object, d: int, max_ms: float, name: str) -> None:
    """EGT is counted in etu of its direction (12.1) but bounded in microseconds (3)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise TimingParameterError(f"{name} must be a number >= 0 etu (nfc-timing.md 3)")
    limit = max_ms / etu(d)
    if value > limit + 1e-9:
        raise TimingParameterError(
            f"{name} = {value} etu exceeds {max_ms * 1000:.0f} us = {limit:.2f} etu at "
            f"D={d} (nfc-timing.md 3)"
        )


#: The MODEL defaults of nfc-timing.md (106 kbit/s, FSC = FSD = 256, FWI 10, no CID/NAD).
DEFAULT_AIR = AirParameters()


def _check_duration(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TimingParameterError(f"{name} must be a finite number of ms, got {value!r}")
    if value < 0:
        raise TimingParameterError(f"{name} must be >= 0 ms, got {value!r}")


def block_time(
    n_command: int, n_response: int, t_card_ms: float, params: AirParameters = DEFAULT_AIR
) -> float:
    """One block exchange in ms: PCD frame, card wait, PICC frame, turnaround (12.2).

    ``T_block = T_frame(n_c, D_pcd) + max(TR0, t_card) + TR1 + T_frame(n_r, D_picc) + TR2``:
    the card may not answer before TR0 even when it is done earlier, and its processing time
    ``t_card`` (from the end of the PCD frame) otherwise replaces TR0.
    """
    _check_duration(t_card_ms, "t_card_ms")
    return (
        params.pcd_frame_ms(n_command)
        + max(params.tr0_ms, t_card_ms)
        + params.tr1_ms
        + params.picc_frame_ms(n_response)
        + params.tr2_ms
    )


# Ratios of float times within this relative distance of an integer count as that integer, so
# a processing time of exactly k * FWT does not gain a WTX round from rounding noise.
_RATIO_TOLERANCE = 1e-9


def _ceil_ratio(numerator: float, denominator: float) -> int:
    ratio = numerator / denominator
    whole = math.floor(ratio)
    return whole if ratio - whole <= _RATIO_TOLERANCE * max(1.0, ratio) else whole + 1


def _wtx(t_card_ms: float, fwi: int, wtxm: int | None) -> tuple[int, int]:
    """(w, m): S(WTX) rounds and the multiplier used, per 12.3 and the WTXM MODEL of 15."""
    _check_duration(t_card_ms, "t_card_ms")
    frame_wait = fwt(fwi)
    if wtxm is not None:
        _check_range(wtxm, (1, WTXM_MAX), "wtxm", "(nfc-timing.md 8; or None)")
    remaining = t_card_ms - frame_wait
    if remaining <= frame_wait * _RATIO_TOLERANCE:
        return 0, 0
    if wtxm is None:
        # 15 MODEL: the smallest m with m * FWT >= remaining processing time, capped at 59.
        wtxm = min(max(_ceil_ratio(remaining, frame_wait), 1), WTXM_MAX)
    extension = min(wtxm * frame_wait, FWT_MAX_MS)  # 11: FWT_temp = min(WTXM * FWT, FWT_max)
    return _ceil_ratio(remaining, extension), wtxm


def wtx_rounds(t_card_ms: float, fwi: int = DEFAULT_AIR.fwi, wtxm: int | None = None) -> int:
    """Number w of S(WTX) round trips a card needs for ``t_card_ms`` of processing (12.3).

    ``w = 0`` if ``t_card <= FWT``, else ``ceil((t_card - FWT) / min(m * FWT, FWT_max))``: the
    card must ask for more time before each FWT (or granted FWT_temp) runs out (11). With
    ``wtxm=None`` the card picks m as in the MODEL of nfc-timing.md 15.
    """
    return _wtx(t_card_ms, fwi, wtxm)[0]


def wtx_multiplier(t_card_ms: float, fwi: int = DEFAULT_AIR.fwi, wtxm: int | None = None) -> int:
    """The WTXM the card sends in its S(WTX) for ``t_card_ms``; 0 when no WTX is needed (15)."""
    return _wtx(t_card_ms, fwi, wtxm)[1]


@dataclass(frozen=True)
class AirTiming:
    """One APDU over ISO-DEP, split into parts that add up (nfc-timing.md 12.4, 16 item 3).

    ``card_ms`` is the reader's wait in the processing block, ``max(TR0, t_card)`` (12.2):
    the card's time, floored at TR0 because the card may not answer sooner. ``turnaround_ms``
    holds every other TR0 and all TR1/TR2. So :attr:`air_ms` does not depend on the card at
    all, and :attr:`total_ms` (the transceive on the air, without host overhead) grows with
    ``t_card`` exactly, even in floating point. The TR0 floor only shows for cards faster than
    TR0 (75.5 us by default), which no profile of nfc-timing.md 15 is.
    """

    command_blocks: int  # k_c
    response_blocks: int  # k_r
    r_acks: int  # (k_c - 1) from the card + (k_r - 1) from the reader
    wtx_rounds: int  # w
    wtxm: int  # multiplier in the S(WTX), 0 without WTX
    command_frames_ms: float  # PCD I-block frames
    response_frames_ms: float  # PICC I-block frames
    r_ack_frames_ms: float  # R(ACK) frames, both directions
    turnaround_ms: float  # TR0 / TR1 / TR2 (see class docstring)
    card_ms: float  # max(TR0, t_card) in the block that carries the last command part
    wtx_ms: float  # w * T_wtx_each (12.3)

    @property
    def air_ms(self) -> float:
        """Frames and turnaround: RF time outside card processing and WTX rounds."""
        return (
            self.command_frames_ms
            + self.response_frames_ms
            + self.r_ack_frames_ms
            + self.turnaround_ms
        )

    @property
    def total_ms(self) -> float:
        """T_apdu of 12.4 without t_host: air + card + WTX."""
        return self.air_ms + self.card_ms + self.wtx_ms


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def apdu_air_time(
    cmd_len: int, rsp_len: int, t_card_ms: float, params: AirParameters = DEFAULT_AIR
) -> AirTiming:
    """Air time of one command APDU of ``cmd_len`` bytes answered by ``rsp_len`` bytes (12.4).

    The APDU is cut into ``k_c = ceil(L_cmd / c_c)`` I-blocks, every non-final one answered by
    an R(ACK) after TR0 (10); the last one is answered after ``t_card`` by the first of
    ``k_r = ceil(L_rsp / c_r)`` response I-blocks, each later one fetched by an R(ACK) from the
    reader with the card answering after ``t_chain`` = TR0 (12.4 MODEL). S(WTX) rounds are
    added when ``t_card`` exceeds FWT (12.3). ``cmd_len`` counts header, Lc, data and Le;
    ``rsp_len`` counts data and SW1 SW2.
    """
    if not _is_int(cmd_len) or cmd_len < 4:
        raise TimingParameterError(
            f"a command APDU has at least the 4-byte header (ISO 7816-4 5.1), got {cmd_len!r}"
        )
    if not _is_int(rsp_len) or rsp_len < 2:
        raise TimingParameterError(
            f"a response APDU has at least SW1 SW2 (ISO 7816-4 5.1), got {rsp_len!r}"
        )
    _check_duration(t_card_ms, "t_card_ms")
    h = params.i_block_overhead
    c_c = params.command_capacity
    c_r = params.response_capacity
    k_c = _ceil_div(cmd_len, c_c)
    k_r = _ceil_div(rsp_len, c_r)
    last_command_inf = cmd_len - (k_c - 1) * c_c
    last_response_inf = rsp_len - (k_r - 1) * c_r

    command_frames = (k_c - 1) * params.pcd_frame_ms(h + c_c) + params.pcd_frame_ms(
        h + last_command_inf
    )
    response_frames = (k_r - 1) * params.picc_frame_ms(h + c_r) + params.picc_frame_ms(
        h + last_response_inf
    )
    r_ack_frames = (k_c - 1) * params.picc_frame_ms(params.r_block_bytes) + (
        k_r - 1
    ) * params.pcd_frame_ms(params.r_block_bytes)

    tr0, tr1, tr2 = params.tr0_ms, params.tr1_ms, params.tr2_ms
    blocks = k_c + k_r - 1  # the processing block is both the last command and first response
    turnaround = blocks * (tr1 + tr2) + (blocks - 1) * tr0

    rounds, multiplier = _wtx(t_card_ms, params.fwi, params.wtxm)
    wtx_each = block_time(params.s_wtx_bytes, params.s_wtx_bytes, tr0, params)
    return AirTiming(
        command_blocks=k_c,
        response_blocks=k_r,
        r_acks=blocks - 1,
        wtx_rounds=rounds,
        wtxm=multiplier,
        command_frames_ms=command_frames,
        response_frames_ms=response_frames,
        r_ack_frames_ms=r_ack_frames,
        turnaround_ms=turnaround,
        card_ms=max(tr0, float(t_card_ms)),
        wtx_ms=rounds * wtx_each,
    )


# --- activation (nfc-timing.md 7) -------------------------------------------------------------

_REQB_BYTES = 5  # 7.1: APf, AFI, PARAM + CRC_B
_ATQB_BYTES = 14  # 7.1: 50 + PUPI + application data + protocol info (3) + CRC_B
_ATQB_EXTENDED_BYTES = 15  # 7.1: protocol info of 4 bytes
_ATTRIB_BYTES = 11  # 7.1: 1D + PUPI + Param 1..4 + CRC_B, without higher-layer INF
_ATTRIB_ANSWER_BYTES = 3  # 7.1: MBLI/CID + CRC_B


@dataclass(frozen=True)
class ActivationTiming:
    """Field-on to "ISO-DEP ready" in parts (nfc-timing.md 7.5)."""

    guard_ms: float  # field on -> first command
    reqb_atqb_ms: float  # REQB/WUPB -> ATQB
    attrib_ms: float  # ATTRIB -> answer to ATTRIB
    sfgt_ms: float  # start-up frame guard time (extended ATQB only)

    @property
    def total_ms(self) -> float:
        """T_activation of 7.5."""
        return self.guard_ms + self.reqb_atqb_ms + self.attrib_ms + self.sfgt_ms


def activation_time(
    params: AirParameters = DEFAULT_AIR,
    *,
    guard_ms: float = GUARD_TIME_MS,
    extended_atqb: bool = False,
    attrib_inf_len: int = 0,
    answer_inf_len: int = 0,
    t_atqb_ms: float = 0.0,
    t_attrib_ms: float = 0.0,
    sfgi: int | None = None,
) -> ActivationTiming:
    """Activation time REQB/WUPB -> ATQB -> ATTRIB -> answer (nfc-timing.md 7.5).

    MODEL: activation runs before ATTRIB has negotiated anything, so its frames use 106 kbit/s,
    the default TR0/TR1 and unsuppressed SOF/EOF whatever ``params`` says; only the SOF/EOF
    lengths, EGT and TR2 (announced in the ATQB) come from ``params``. ``t_atqb_ms`` /
    ``t_attrib_ms`` are the card's answer times (at least TR0 is waited anyway).
    ``sfgi`` adds SFGT = (256 * 16 / fc) * 2^SFGI after the answer, as the extended ATQB
    announces (7.2). The phone's discovery loop before REQB is not included (7.5 gives no
    figure for it).
    """
    _check_duration(guard_ms, "guard_ms")
    for name, value in (("attrib_inf_len", attrib_inf_len), ("answer_inf_len", answer_inf_len)):
        if not _is_int(value) or value < 0:
            raise TimingParameterError(f"{name} must be an int >= 0 bytes, got {value!r}")
    link = params.with_changes(
        d_pcd=1,
        d_picc=1,
        tr0_fs=TR0_MINIMA_FS[0],
        tr1_fs=TR1_MINIMA_FS[0],
        picc_sof_suppressed=False,
        picc_eof_suppressed=False,
    )
    atqb = _ATQB_EXTENDED_BYTES if extended_atqb else _ATQB_BYTES
    sfgt = 0.0
    if sfgi is not None:
        _check_fwi(sfgi, "SFGI")
        sfgt = fwt(sfgi)  # same formula: (256 * 16 / fc) * 2^SFGI
    return ActivationTiming(
        guard_ms=float(guard_ms),
        reqb_atqb_ms=block_time(_REQB_BYTES, atqb, t_atqb_ms, link),
        attrib_ms=block_time(
            _ATTRIB_BYTES + attrib_inf_len, _ATTRIB_ANSWER_BYTES + answer_inf_len, t_attrib_ms, link
        ),
        sfgt_ms=sfgt,
    )

"""Tests of workbench.timing against nfc-timing.md (sections named per test).

Expected values are worked out by hand in the comments, in carrier periods 1/fc: with
fc = 13.56 MHz there are 13 560 periods per millisecond, so ``cycles(n)`` = n / 13 560 ms.
Useful constants (nfc-timing.md 2, 6): 1 etu at 106 kbit/s = 128/fc; 1/fs = 16/fc;
TR0 = 64/fs = 1024/fc (8 etu); TR1 = 80/fs = 1280/fc (10 etu); TR2 = 1792/fc (14 etu).
A default frame of n bytes lasts SOF 12 + 10 n + EOF 10 = 22 + 10 n etu (12.1).
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.timing import (
    FRAME_SIZES,
    PROFILES,
    TYPICAL,
    AirParameters,
    Link,
    Operation,
    Sender,
    TimingModel,
    TimingParameterError,
    activation_time,
    apdu_air_time,
    check_crc_b,
    classify,
    crc_b,
    etu,
    frame_time,
    fwt,
    get_profile,
    i_block,
    iso_dep_exchange,
    r_ack,
    s_deselect,
    s_wtx,
    wtx_multiplier,
    wtx_rounds,
)


def cycles(n: float) -> float:
    """n carrier periods in ms (fc = 13.56 MHz)."""
    return n / 13_560


def etus(n: float, d: int = 1) -> float:
    """n etu at divisor d in ms: one etu is 128/d carrier periods."""
    return cycles(n * 128 / d)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


SELECT_JPKI_AP = h("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01")  # jpki-card.md 2.2, 15 bytes
SW_OK = h("90 00")
READ_BINARY_256 = h("00 B0 00 00 00")  # jpki-card.md 4.1, Le = 256
SIGN_DIGESTINFO = h("80 2A 00 80 33") + bytes(51) + h("00")  # jpki-card.md 4.5: 57 bytes
APPROX = {"rel": 1e-12, "abs": 1e-12}


# --- 2: clocks, etu, bit rates ----------------------------------------------------------------


def test_2_etu_at_106_kbit_s() -> None:
    # etu = 128 / fc = 128 / 13 560 000 s = 9.4395 us = 0.0094395 ms.
    assert etu(1) == pytest.approx(128 / 13_560_000 * 1000, **APPROX)
    assert etu(1) * 1000 == pytest.approx(9.4395, abs=5e-5)  # table value in us


def test_2_etu_scales_with_divisor() -> None:
    # etu(D) = 128 / (D fc): 4.72 / 2.36 / 1.18 us at 212 / 424 / 848 kbit/s (table of 2).
    assert etu(2) * 1000 == pytest.approx(4.72, abs=5e-3)
    assert etu(4) * 1000 == pytest.approx(2.36, abs=5e-3)
    assert etu(8) * 1000 == pytest.approx(1.18, abs=5e-3)
    assert etu(8) == pytest.approx(16 / 13_560, **APPROX)  # 16 carrier periods = 1/fs
    with pytest.raises(TimingParameterError):
        etu(3)


def test_2_at_bit_rate_and_nominal_rates() -> None:
    p = AirParameters.at_bit_rate(424)
    assert (p.d_pcd, p.d_picc) == (4, 4)
    # D fc / 128 = 4 * 13 560 000 / 128 = 423 750 bit/s.
    assert p.bit_rates_kbps == pytest.approx((423.75, 423.75))
    with pytest.raises(TimingParameterError, match="bit rate"):
        AirParameters.at_bit_rate(300)


# --- 12.1: one frame --------------------------------------------------------------------------


def test_12_1_frame_of_five_bytes_with_default_sof_eof_egt() -> None:
    # REQB, 5 bytes with CRC_B: SOF 12 + 5 * 10 + EGT 0 * 4 + EOF 10 = 72 etu
    # = 72 * 128 = 9216 carrier periods = 0.67965 ms.
    assert frame_time(5) == pytest.approx(cycles(9216), **APPROX)
    assert AirParameters().pcd_frame_ms(5) == pytest.approx(cycles(9216), **APPROX)


def test_12_1_egt_counts_between_characters_only() -> None:
    # EGT 2 etu sits in the 4 gaps of a 5-byte frame: 72 + 2 * 4 = 80 etu = 10 240 periods.
    params = AirParameters(egt_picc_etu=2)
    assert params.picc_frame_ms(5) == pytest.approx(cycles(10_240), **APPROX)
    assert params.pcd_frame_ms(5) == pytest.approx(cycles(9216), **APPROX)  # other direction


def test_12_1_and_7_4_picc_sof_eof_suppression() -> None:
    # Suppressing both PICC SOF (12) and EOF (10) leaves 5 * 10 = 50 etu = 6400 periods; the
    # reader's frames keep theirs (7.4 suppression is PICC -> PCD only).
    params = AirParameters(picc_sof_suppressed=True, picc_eof_suppressed=True)
    assert params.picc_frame_ms(5) == pytest.approx(cycles(6400), **APPROX)
    assert params.pcd_frame_ms(5) == pytest.approx(cycles(9216), **APPROX)
    # Longest SOF (11 + 3) and EOF (11): 14 + 50 + 11 = 75 etu = 9600 periods.
    longest = AirParameters(sof_low_etu=11, sof_high_etu=3, eof_etu=11)
    assert longest.picc_frame_ms(5) == pytest.approx(cycles(9600), **APPROX)


# --- 5: CRC_B ---------------------------------------------------------------------------------

CRC_B_VECTORS = [
    ("31 32 33 34 35 36 37 38 39", "6E 90"),  # ASCII 123456789, register 0x906E
    ("05 00 08", "39 73"),  # WUPB
    ("05 00 00", "71 FF"),  # REQB
    ("50 82 0D E1 74 20 38 19 22 00 21 85", "5E D7"),  # ATQB (proxmark3 simulator)
    ("1D 82 0D E1 74 00 08 01 00", "A2 CC"),  # ATTRIB
    ("00", "78 F0"),  # answer to ATTRIB
    ("A2", "60 76"),  # R(ACK) block 0
    ("A3", "E9 67"),  # R(ACK) block 1
    ("C2", "66 15"),  # S(DESELECT)
    ("F2 01", "76 51"),  # S(WTX), WTXM = 1
]


@pytest.mark.parametrize(("frame", "expected"), CRC_B_VECTORS)
def test_5_crc_b_check_values(frame: str, expected: str) -> None:
    assert crc_b(h(frame)) == h(expected)
    assert check_crc_b(h(frame) + h(expected))
    assert not check_crc_b(h(frame) + h(expected)[::-1])  # sent LSB first, not MSB first


def test_8_built_blocks_carry_the_section_5_crc() -> None:
    assert r_ack(0) == h("A2 60 76")
    assert r_ack(1) == h("A3 E9 67")
    assert s_deselect() == h("C2 66 15")
    assert s_wtx(1) == h("F2 01 76 51")
    # I-block, block 0, no CID/NAD: PCB 02 || INF || CRC_B (8).
    block = i_block(SW_OK, 0)
    assert block[:3] == h("02 90 00") and check_crc_b(block) and len(block) == 5
    # PCB bits (8): chaining 10, CID follows 08, NAD follows 04, block number 01.
    assert i_block(b"", 1, chaining=True, cid=3, nad=0)[:3] == h("1F 03 00")
    with pytest.raises(TimingParameterError, match="WTXM"):
        s_wtx(60)


# --- 12.2 / 12.4: one APDU --------------------------------------------------------------------


def test_12_4_select_jpki_ap_single_block_exchange() -> None:
    # Command I-block: PCB + 15 APDU bytes + CRC_B = 18 bytes -> 22 + 180 = 202 etu.
    # Response I-block: PCB + 90 00 + CRC_B = 5 bytes -> 22 + 50 = 72 etu.
    # t_card = 5 ms > TR0, so the wait is t_card; then TR1 10 + TR2 14 = 24 etu.
    # Air = 202 + 72 + 24 = 298 etu = 298 * 128 = 38 144 periods = 2.81298 ms.
    timing = apdu_air_time(len(SELECT_JPKI_AP), len(SW_OK), 5.0)
    assert (timing.command_blocks, timing.response_blocks, timing.r_acks) == (1, 1, 0)
    assert timing.command_frames_ms == pytest.approx(cycles(202 * 128), **APPROX)
    assert timing.response_frames_ms == pytest.approx(cycles(72 * 128), **APPROX)
    assert timing.air_ms == pytest.approx(cycles(38_144), **APPROX)
    assert timing.total_ms == pytest.approx(cycles(38_144) + 5.0, **APPROX)
    # A card faster than TR0 still waits TR0 = 8 etu: 298 + 8 = 306 etu = 39 168 periods;
    # the TR0 floor is booked as card wait, so the air part stays 298 etu.
    instant = apdu_air_time(15, 2, 0.0)
    assert instant.total_ms == pytest.approx(cycles(39_168), **APPROX)
    assert instant.card_ms == pytest.approx(cycles(1024), **APPROX)
    assert instant.air_ms == timing.air_ms


def test_8_select_jpki_ap_frames_on_the_air() -> None:
    exchange = iso_dep_exchange(SELECT_JPKI_AP, SW_OK)
    assert [(f.sender, f.label) for f in exchange.frames] == [
        (Sender.PCD, "I(0)"),
        (Sender.PICC, "I(0)"),
    ]
    assert exchange.frames[0].data[:16] == h("02") + SELECT_JPKI_AP
    assert [len(f.data) for f in exchange.frames] == [18, 5]
    assert exchange.next_block_number == 1  # 8: next PCD I(1)


def test_12_5_read_binary_256_needs_two_response_blocks_with_r_ack() -> None:
    # 256 data + SW = 258 bytes; FSD 256, h = 3 -> c_r = 253: k_r = ceil(258 / 253) = 2,
    # slices 253 and 5 (12.5: "needs two response blocks").
    # Command I-block 3 + 5 = 8 bytes -> 102 etu; response 256 bytes -> 22 + 2560 = 2582 etu;
    # processing block turnaround TR1 + TR2 = 24 etu (t_card 5 ms in card_ms).
    # Second block: PCD R(ACK) 3 bytes -> 52 etu, TR0 8 (t_chain = TR0), TR1 10,
    # PICC I-block 3 + 5 = 8 bytes -> 102 etu, TR2 14.
    # Air = (102 + 2582 + 24) + (52 + 8 + 10 + 102 + 14) = 2708 + 186 = 2894 etu.
    timing = apdu_air_time(len(READ_BINARY_256), 258, 5.0)
    assert (timing.command_blocks, timing.response_blocks, timing.r_acks) == (1, 2, 1)
    assert timing.r_ack_frames_ms == pytest.approx(etus(52), **APPROX)
    assert timing.response_frames_ms == pytest.approx(etus(2582 + 102), **APPROX)
    assert timing.air_ms == pytest.approx(etus(2894), **APPROX)
    assert timing.total_ms == pytest.approx(etus(2894) + 5.0, **APPROX)
    # 8: PICC I(0,chain) -> PCD R(ACK,1) -> PICC I(1).
    exchange = iso_dep_exchange(READ_BINARY_256, bytes(256) + SW_OK)
    assert [(f.sender, f.label, len(f.data)) for f in exchange.frames] == [
        (Sender.PCD, "I(0)", 8),
        (Sender.PICC, "I(0,chain)", 256),
        (Sender.PCD, "R(ACK,1)", 3),
        (Sender.PICC, "I(1)", 8),
    ]


def test_12_4_read_binary_each_frame_uses_its_own_direction() -> None:
    # Reader at 106 kbit/s (128 periods/etu), card at 212 kbit/s (64 periods/etu):
    # PCD I-block 102 etu * 128 = 13 056; PICC blocks (2582 + 102) etu * 64 = 171 776;
    # PCD R(ACK) 52 etu * 128 = 6656; turnaround 3072 + (1024 + 3072) = 7168 periods.
    # Air = 13 056 + 171 776 + 6656 + 7168 = 198 656 periods.
    params = AirParameters(d_pcd=1, d_picc=2)
    timing = apdu_air_time(len(READ_BINARY_256), 258, 5.0, params)
    assert timing.r_ack_frames_ms == pytest.approx(cycles(6656), **APPROX)
    assert timing.air_ms == pytest.approx(cycles(198_656), **APPROX)
    # PICC SOF and EOF suppressed at 106 kbit/s: each of the two card frames loses 12 + 10 etu,
    # the reader's R(ACK) keeps them: 2894 - 2 * 22 = 2850 etu.
    quiet = AirParameters(picc_sof_suppressed=True, picc_eof_suppressed=True)
    assert apdu_air_time(5, 258, 5.0, quiet).air_ms == pytest.approx(etus(2850), **APPROX)


def test_10_chained_command_with_fsc_32() -> None:
    # UPDATE BINARY with 50 data bytes: 5 + 50 = 55 bytes. FSC 32, h = 3 -> c_c = 29:
    # k_c = ceil(55 / 29) = 2, INF 29 then 26.
    # Block 1: I(0,chain) 32 bytes -> 22 + 320 = 342 etu; TR0 8; TR1 10;
    #          PICC R(ACK,0) 3 bytes -> 52 etu; TR2 14              = 426 etu.
    # Block 2: I(1) 29 bytes -> 312 etu; t_card; TR1 10; 90 00 in 5 bytes -> 72 etu; TR2 14
    #                                                            = 408 etu + t_card.
    # Air = 834 etu = 106 752 periods.
    command = h("00 D6 00 00 32") + bytes(50)
    params = AirParameters(fsc=32)
    timing = apdu_air_time(len(command), 2, 15.0, params)
    assert (timing.command_blocks, timing.response_blocks, timing.r_acks) == (2, 1, 1)
    assert timing.air_ms == pytest.approx(cycles(106_752), **APPROX)
    assert timing.card_ms == 15.0
    exchange = iso_dep_exchange(command, SW_OK, params)
    assert [(f.sender, f.label, len(f.data)) for f in exchange.frames] == [
        (Sender.PCD, "I(0,chain)", 32),
        (Sender.PICC, "R(ACK,0)", 3),
        (Sender.PCD, "I(1)", 29),
        (Sender.PICC, "I(1)", 5),
    ]
    assert exchange.frames[0].data[0] == 0x12  # PCB: I-block, chaining, block 0
    assert exchange.next_block_number == 0


def test_8_9_cid_adds_one_byte_per_block() -> None:
    # 253 response bytes fit one block with h = 3 (c_r = 253), not with CID (h = 4, c_r = 252).
    assert apdu_air_time(5, 253, 1.0).response_blocks == 1
    with_cid = AirParameters(cid=True)
    assert apdu_air_time(5, 253, 1.0, with_cid).response_blocks == 2
    # CID and NAD together: h = 5, R-block h_R = 4, S(WTX) h_S = 5.
    both = AirParameters(cid=True, nad=True)
    assert (both.i_block_overhead, both.r_block_bytes, both.s_wtx_bytes) == (5, 4, 5)


def test_6_negotiated_turnaround_reductions() -> None:
    # ATTRIB Param 1 minima TR0 = 16/fs, TR1 = 16/fs (256 periods each), TR2 code 3 = 9472/fc.
    # SELECT with t_card = 0: frames 274 etu = 35 072, + 256 + 256 + 9472 = 45 056 periods.
    params = AirParameters(tr0_fs=16, tr1_fs=16, tr2_code=3)
    assert apdu_air_time(15, 2, 0.0, params).total_ms == pytest.approx(cycles(45_056), **APPROX)


@pytest.mark.parametrize(
    ("kbps", "expected_periods"),
    [
        # Frames 202 + 72 = 274 etu of 128/D periods; TR1 + TR2 = 1280 + 1792 = 3072 periods
        # at every bit rate (MODEL of 6: absolute times).
        (106, 274 * 128 + 3072),  # 38 144
        (212, 274 * 64 + 3072),  # 20 608
        (424, 274 * 32 + 3072),  # 11 840
        (848, 274 * 16 + 3072),  # 7 456
    ],
)
def test_2_12_select_at_each_bit_rate(kbps: int, expected_periods: int) -> None:
    timing = apdu_air_time(15, 2, 5.0, AirParameters.at_bit_rate(kbps))
    assert timing.air_ms == pytest.approx(cycles(expected_periods), **APPROX)


def test_2_asymmetric_bit_rates_scale_each_direction() -> None:
    # 212 kbit/s down (202 etu * 64), 848 up (72 etu * 16), 3072 turnaround: 17 152 periods.
    params = AirParameters(d_pcd=2, d_picc=8)
    assert apdu_air_time(15, 2, 5.0, params).air_ms == pytest.approx(cycles(17_152), **APPROX)


# --- 11 / 12.3: FWT and S(WTX) ----------------------------------------------------------------


def test_11_fwt_formula_and_limits() -> None:
    # FWT = 4096 / fc * 2^FWI: FWI 0 -> 302.06 us, FWI 8 -> 1 048 576 periods = 77.33 ms,
    # FWI 10 -> 309.31 ms, FWI 14 -> 4.949 s.
    assert fwt(0) * 1000 == pytest.approx(302.06, abs=0.01)
    assert fwt(8) == pytest.approx(cycles(1_048_576), **APPROX)
    assert fwt(10) == pytest.approx(309.314, abs=1e-3)
    assert fwt(14) == pytest.approx(4949.0, abs=0.1)
    with pytest.raises(TimingParameterError, match="RFU"):
        fwt(15)


def test_12_3_rsa_signature_above_fwt_triggers_wtx() -> None:
    # FWI 8: FWT = 77.329 ms; typical RSA-2048 signature t_card = 200 ms (15).
    # MODEL (15): m = smallest with m * FWT >= 200 - 77.329 = 122.671 -> m = 2 (154.66 ms);
    # w = ceil(122.671 / 154.66) = 1.
    # T_wtx_each = T_block(4, 4, TR0) = 62 + 8 + 10 + 62 + 14 = 156 etu.
    # Air: command 57 bytes in one 60-byte I-block -> 22 + 600 = 622 etu; response 258 bytes
    # -> 2582 + 102 etu; PCD R(ACK) 52 etu; turnaround 24 (processing block) + 32 = 56 etu.
    # Air = 622 + 2684 + 52 + 56 = 3414 etu.
    params = AirParameters(fwi=8)
    timing = apdu_air_time(len(SIGN_DIGESTINFO), 258, 200.0, params)
    assert (timing.wtx_rounds, timing.wtxm) == (1, 2)
    assert timing.wtx_ms == pytest.approx(etus(156), **APPROX)
    assert timing.air_ms == pytest.approx(etus(3414), **APPROX)
    assert timing.total_ms == pytest.approx(etus(3414 + 156) + 200.0, **APPROX)
    # A card fixed on WTXM 1 needs ceil(122.671 / 77.329) = 2 rounds.
    assert apdu_air_time(57, 258, 200.0, params.with_changes(wtxm=1)).wtx_rounds == 2
    # Slow profile, 450 ms with WTXM 1: ceil((450 - 77.329) / 77.329) = ceil(4.819) = 5.
    assert wtx_rounds(450.0, fwi=8, wtxm=1) == 5
    # The frames show the card's S(WTX) echoed by the reader, between command and response.
    labels = [
        (f.sender, f.label)
        for f in iso_dep_exchange(
            SIGN_DIGESTINFO, bytes(256) + SW_OK, params, t_card_ms=200.0
        ).frames
    ]
    assert labels[1:3] == [(Sender.PICC, "S(WTX,2)"), (Sender.PCD, "S(WTX,2)")]


def test_12_3_no_wtx_up_to_fwt_and_typical_signature_at_fwi_10() -> None:
    assert wtx_rounds(fwt(8), fwi=8) == 0  # t_card <= FWT
    assert wtx_rounds(fwt(8) + 0.001, fwi=8) == 1
    assert wtx_rounds(200.0, fwi=10) == 0  # 200 ms < 309.3 ms: the card's default FWI 10
    assert wtx_multiplier(200.0, fwi=10) == 0


def test_11_fwt_temp_is_capped_at_fwt_max() -> None:
    # FWI 14: FWT = 4949.03 ms. t_card = 12 s: remaining 7050.97 ms, m = ceil(1.425) = 2,
    # but FWT_temp = min(2 * 4949.03, 4949.03) = 4949.03 -> w = ceil(1.425) = 2, not 1.
    assert wtx_multiplier(12_000.0, fwi=14) == 2
    assert wtx_rounds(12_000.0, fwi=14) == 2
    # MODEL cap m <= 59: FWI 0 (0.302 ms), t_card 40 ms -> remaining 39.698 ms needs
    # m = 132 > 59, so m = 59 (17.82 ms) and w = ceil(39.698 / 17.822) = 3.
    assert wtx_multiplier(40.0, fwi=0) == 59
    assert wtx_rounds(40.0, fwi=0) == 3


# --- 7.5: activation --------------------------------------------------------------------------


def test_7_5_activation_time() -> None:
    # Guard 5 ms; REQB 5 bytes (72 etu) + TR0 8 + TR1 10 + ATQB 14 bytes (162 etu) + TR2 14
    # = 266 etu; ATTRIB 11 bytes (132 etu) + 8 + 10 + answer 3 bytes (52 etu) + 14 = 216 etu.
    # Total = 5 ms + 482 etu = 5 ms + 61 696 periods.
    timing = activation_time()
    assert timing.reqb_atqb_ms == pytest.approx(etus(266), **APPROX)
    assert timing.attrib_ms == pytest.approx(etus(216), **APPROX)
    assert timing.total_ms == pytest.approx(5.0 + cycles(61_696), **APPROX)
    # Activation ignores the negotiated 848 kbit/s: same 482 etu at 106 kbit/s.
    fast = activation_time(AirParameters.at_bit_rate(848))
    assert fast.total_ms == pytest.approx(timing.total_ms, **APPROX)
    # Extended ATQB (15 bytes, +10 etu) and SFGI 0 (SFGT = 4096 periods).
    extended = activation_time(extended_atqb=True, sfgi=0)
    assert extended.total_ms == pytest.approx(5.0 + cycles(61_696 + 1280 + 4096), **APPROX)


# --- 13: host timeout --------------------------------------------------------------------------


def test_13_android_618_ms_iso_dep_timeout_fires() -> None:
    # SELECT: air 38 144 periods, host 5 ms (typical). A card time near 600 ms exceeds
    # FWT(10) = 309.31 ms: remaining < FWT, so m = 1 and one S(WTX) round of 156 etu
    # = 19 968 periods. Air + WTX = 58 112 periods = 4.28555 ms.
    # select_ms = 608: 608 + 5 + 4.28555 = 617.29 ms <= 618 -> answered.
    # select_ms = 609: 618.29 ms > 618 -> "tag lost" at 618 ms (13 MODEL: WTX included).
    ok = TimingModel(card=TYPICAL.with_overrides(select_ms=608)).exchange(SELECT_JPKI_AP, SW_OK)
    assert ok.air is not None and ok.air.wtx_rounds == 1
    assert not ok.timed_out
    assert ok.total_ms == pytest.approx(608 + 5 + cycles(58_112), **APPROX)
    late = TimingModel(card=TYPICAL.with_overrides(select_ms=609)).exchange(SELECT_JPKI_AP, SW_OK)
    assert late.timed_out
    assert late.total_ms == 618.0
    assert late.required_ms == pytest.approx(609 + 5 + cycles(58_112), **APPROX)
    # The same exchange without the Android timeout (PC/SC host) completes.
    assert (
        not TimingModel(card=TYPICAL.with_overrides(select_ms=609), host_timeout_ms=None)
        .exchange(SELECT_JPKI_AP, SW_OK)
        .timed_out
    )


def test_13_key_generation_needs_a_raised_timeout() -> None:
    # smartphone-service.md 15.2 C6: STORE DATA, DGI A017 = generate the auth key pair.
    store_keygen = h("80 E2 08 00 03 A0 17 00")
    public_key = bytes(270) + SW_OK
    default = TimingModel().exchange(store_keygen, public_key)
    assert default.operation is Operation.KEY_GENERATION
    assert default.card_ms == 5000.0  # typical median, no rng
    assert default.timed_out and default.total_ms == 618.0
    raised = TimingModel(host_timeout_ms=30_000).exchange(store_keygen, public_key)
    assert not raised.timed_out
    # FWI 10: 5000 ms needs WTX: m = ceil((5000 - 309.31) / 309.31) = 16, one round.
    assert raised.air is not None and (raised.air.wtx_rounds, raised.air.wtxm) == (1, 16)
    assert raised.total_ms > 5000.0


# --- 12.6 / 16.5: OMAPI -------------------------------------------------------------------------


def test_12_6_omapi_has_no_air_time() -> None:
    # STORE DATA of 200 bytes under SCP03 (CLA 84): NVM write max(1, 200/256) * 15 ms + AES/CMAC
    # 1 ms = 16 ms, host 5 ms -> 21 ms, no air and no WTX.
    store = h("84 E2 00 00 C8") + bytes(200)
    timing = TimingModel.omapi().exchange(store, SW_OK)
    assert timing.link is Link.OMAPI
    assert (timing.air_ms, timing.wtx_ms, timing.air) == (0.0, 0.0, None)
    assert timing.card_ms == 16.0 and timing.host_ms == 5.0 and timing.total_ms == 21.0
    # A 5 s key generation over OMAPI meets no IsoDep timeout and no WTX.
    # Key generation told by the caller (encrypted STORE DATA hides the DGI): 5000 ms median
    # + 1 ms AES/CMAC for the wrapped APDU + 5 ms host = 5006 ms.
    keygen = TimingModel.omapi().exchange(
        h("84 E2 68 00 10") + bytes(16), bytes(280), operation=Operation.KEY_GENERATION
    )
    assert not keygen.timed_out and keygen.total_ms == 5006.0
    assert TimingModel.omapi().activation_ms() == 0.0


# --- 15 / 16.4: profiles, classification, seeded randomness ------------------------------------


def test_16_4_seeded_key_generation_is_reproducible() -> None:
    first = [TYPICAL.key_generation_ms(random.Random(2024)) for _ in range(3)]
    again = [TYPICAL.key_generation_ms(random.Random(2024)) for _ in range(3)]
    assert first == again
    draws_a = [TYPICAL.key_generation_ms(r) for r in [random.Random(1)] * 5]
    draws_b = [TYPICAL.key_generation_ms(r) for r in [random.Random(1)] * 5]
    assert draws_a == draws_b and len(set(draws_a)) == 5
    assert TYPICAL.key_generation_ms(random.Random(1)) != TYPICAL.key_generation_ms(
        random.Random(2)
    )
    # Log-normal with median 5000 ms: the median of many draws lands near it.
    rng = random.Random(99)
    draws = sorted(TYPICAL.key_generation_ms(rng) for _ in range(2001))
    assert 4500 < draws[1000] < 5500
    assert draws[0] < 3000 and draws[-1] > 8000  # a wide spread (14.2)


def test_16_4_seeded_sequence_is_reproducible() -> None:
    keygen = (h("80 E2 08 00 03 A0 17 00"), bytes(270) + SW_OK)
    model = TimingModel(host_timeout_ms=None)
    pairs = [(SELECT_JPKI_AP, SW_OK), keygen, keygen]
    one = model.sequence(pairs, seed=5)
    two = model.sequence(pairs, seed=5)
    assert [t.card_ms for t in one] == [t.card_ms for t in two]
    assert one[1].card_ms != one[2].card_ms  # one generator, two different draws
    assert one[0].card_ms == 5.0  # SELECT is not random
    assert [t.card_ms for t in model.sequence(pairs)][1:] == [5000.0, 5000.0]  # medians


@pytest.mark.parametrize(
    ("command", "operation"),
    [
        ("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", Operation.SELECT),
        ("00 A4 02 0C 02 00 18", Operation.SELECT),
        ("00 B0 00 00 00", Operation.READ_BINARY),
        ("00 20 00 80 04 31 32 33 34", Operation.VERIFY),
        ("00 20 00 80", Operation.OTHER),  # retry-counter query: no NVM update
        ("80 2A 00 80 03 01 02 03 00", Operation.SIGNATURE),
        ("00 2A 9E 9A 03 01 02 03 00", Operation.SIGNATURE),  # ISO PSO
        ("00 E2 00 00 01 00", Operation.NVM_WRITE),  # ISO APPEND RECORD
        ("80 50 30 00 08 01 02 03 04 05 06 07 08 00", Operation.SECURE_CHANNEL),
        ("84 82 33 00 10" + " 00" * 16, Operation.SECURE_CHANNEL),
        ("84 E6 0C 00 03 01 02 03", Operation.NVM_WRITE),  # INSTALL
        ("80 E2 88 01 04 00 01 01 00", Operation.NVM_WRITE),  # STORE DATA DGI 0001
        ("80 E2 08 00 03 A0 1A 00", Operation.KEY_GENERATION),  # DGI A01A (15.2 C7)
        ("84 E2 68 00 03 A0 17 00", Operation.NVM_WRITE),  # encrypted: DGI not visible
        ("00 46 00 00 00", Operation.KEY_GENERATION),
        ("80 F2 40 00 02 4F 00 00", Operation.OTHER),  # GET STATUS
        ("00 84 00 00 08", Operation.OTHER),  # GET CHALLENGE
        ("FF CA 00 00 00", Operation.OTHER),  # invalid CLA (PC/SC pseudo-APDU)
        ("00", Operation.OTHER),
    ],
)
def test_15_classify(command: str, operation: Operation) -> None:
    assert classify(h(command)) is operation


def test_15_profiles_table_and_overrides() -> None:
    assert set(PROFILES) == {"fast", "typical", "slow"}
    # Column values of the table in 15 for the signature row: 60 / 200 / 450 ms.
    assert [PROFILES[n].signature_ms for n in ("fast", "typical", "slow")] == [60, 200, 450]
    assert "ASSUMPTION" in TYPICAL.label
    tuned = TYPICAL.with_overrides(signature_ms=120)
    assert tuned.signature_ms == 120 and TYPICAL.signature_ms == 200
    assert "signature_ms" in tuned.label
    # READ BINARY per 256 B: 512 bytes read (extended Le) cost two units, 10 bytes one unit.
    assert TYPICAL.command_time_ms(h("00 B0 00 00 00 02 00"), bytes(512) + SW_OK) == 10.0
    assert TYPICAL.command_time_ms(READ_BINARY_256, bytes(10) + SW_OK) == 5.0
    with pytest.raises(TimingParameterError, match="unknown card-time field"):
        TYPICAL.with_overrides(signatur_ms=1)
    with pytest.raises(TimingParameterError, match="choose one of"):
        get_profile("turbo")
    with pytest.raises(ValueError):
        TYPICAL.with_overrides(verify_ms=-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"d_pcd": 3},
        {"fsc": 100},
        {"fsd": 512},  # MODEL cap 256 (9)
        {"fwi": 15},  # RFU (11)
        {"wtxm": 60},  # 1..59 (8)
        {"egt_picc_etu": 3},  # 3 etu = 28.3 us > 19 us (3)
        {"sof_low_etu": 9},
        {"tr1_fs": 201},
        {"tr2_code": 4},
    ],
)
def test_validation_raises_value_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(TimingParameterError) as info:
        AirParameters(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_12_4_built_frames_match_the_size_formulas() -> None:
    # The frames built byte by byte (8) must cost what 12.4 computes from counts alone.
    for params in (
        AirParameters(),
        AirParameters(fsc=32, fsd=40, cid=True, nad=True),
        AirParameters(fsc=24, fsd=48, d_pcd=8, d_picc=2, picc_sof_suppressed=True),
    ):
        command, response = h("00 D6 00 00 64") + bytes(100), bytes(300) + SW_OK
        timing = apdu_air_time(len(command), len(response), 1.0, params)
        frames = iso_dep_exchange(command, response, params, cid=1, nad=0).frames
        assert all(check_crc_b(f.data) for f in frames)
        on_air = sum(
            params.pcd_frame_ms(len(f.data))
            if f.sender is Sender.PCD
            else params.picc_frame_ms(len(f.data))
            for f in frames
        )
        assert on_air == pytest.approx(
            timing.command_frames_ms + timing.response_frames_ms + timing.r_ack_frames_ms,
            rel=1e-12,
        )
        assert sum(f.label.startswith("R(ACK") for f in frames) == timing.r_acks


# --- properties -------------------------------------------------------------------------------

air_parameters = st.builds(
    AirParameters,
    d_pcd=st.sampled_from((1, 2, 4, 8)),
    d_picc=st.sampled_from((1, 2, 4, 8)),
    fsc=st.sampled_from(FRAME_SIZES),
    fsd=st.sampled_from(FRAME_SIZES),
    cid=st.booleans(),
    nad=st.booleans(),
    tr0_fs=st.sampled_from((16, 48, 64)),
    tr1_fs=st.sampled_from((16, 64, 80)),
    tr2_code=st.integers(0, 3),
    fwi=st.integers(0, 14),
    wtxm=st.none() | st.integers(1, 59),
)
card_times = st.floats(min_value=0, max_value=30_000, allow_nan=False, allow_infinity=False)


@given(
    params=air_parameters,
    cmd_len=st.integers(4, 600),
    rsp_len=st.integers(2, 1200),
    extra=st.integers(1, 600),
    t_card=card_times,
)
def test_12_4_total_is_monotonic_in_response_length(
    params: AirParameters, cmd_len: int, rsp_len: int, extra: int, t_card: float
) -> None:
    shorter = apdu_air_time(cmd_len, rsp_len, t_card, params)
    longer = apdu_air_time(cmd_len, rsp_len + extra, t_card, params)
    assert longer.total_ms > shorter.total_ms
    assert longer.response_blocks >= shorter.response_blocks


@given(
    params=air_parameters,
    cmd_len=st.integers(4, 600),
    rsp_len=st.integers(2, 600),
    t1=card_times,
    t2=card_times,
)
def test_12_3_total_is_monotonic_in_card_time(
    params: AirParameters, cmd_len: int, rsp_len: int, t1: float, t2: float
) -> None:
    low, high = sorted((t1, t2))
    a = apdu_air_time(cmd_len, rsp_len, low, params)
    b = apdu_air_time(cmd_len, rsp_len, high, params)
    assert b.total_ms >= a.total_ms
    assert b.wtx_rounds >= a.wtx_rounds
    # 12.3: no WTX up to FWT, and at least one round beyond it.
    if abs(low - params.fwt_ms) > 1e-6 * params.fwt_ms:  # away from the float boundary
        assert (a.wtx_rounds == 0) == (low < params.fwt_ms)
    model = TimingModel(air=params, host_timeout_ms=None)
    slow = model.exchange(SELECT_JPKI_AP, SW_OK, t_card_ms=high)
    fast = model.exchange(SELECT_JPKI_AP, SW_OK, t_card_ms=low)
    assert slow.total_ms >= fast.total_ms
    assert math.isclose(
        slow.total_ms, slow.air_ms + slow.card_ms + slow.host_ms + slow.wtx_ms, rel_tol=1e-12
    )

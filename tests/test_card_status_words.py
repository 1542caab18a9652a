"""Every status word of jpki-card.md section 5 that the card can produce, as one table of
vectors run by one generic test (the pySim way: vectors next to the rule they check).

A vector is: the spec rule, the profiles it applies to, the commands that set the scene (each
must succeed unless it is the scene itself) and the command under test with its expected SW.
"""

from __future__ import annotations

import pytest

from tests.conftest import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN

JPKI = "00A4040C0AD392F000260100000001"
TEXT = "00A4040C0AD3921000310001010408"
SURFACE = "00A4040C0AD3921000310001010402"
COMMON = "00A4040C0AD3921000310001010100"
JUKI = "00A4040C0AD3921000310001010401"


def sel(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def verify(value: str) -> str:
    return f"00200080{len(value):02X}{value.encode().hex()}"


V_AUTH = verify(AUTH_PIN)
V_SIGN = verify(SIGN_PASSWORD)
V_TEXT = verify(TEXT_PIN)
SHA256_DI = "3031300D060960864801650304020105000420" + "11" * 32
SIGN_CMD = f"802A0080{len(SHA256_DI) // 2:02X}{SHA256_DI}00"
BOTH = ("icc", "gpse")
ICC = ("icc",)

# (rule, profiles, scene, command, expected SW)
VECTORS: list[tuple[str, tuple[str, ...], list[str], str, str]] = [
    ("2.2 select JPKI AP by DF name", BOTH, [], JPKI, "9000"),
    ("2.2 P2=00 treated like 0C (MODEL)", BOTH, [], "00A404000AD392F000260100000001", "9000"),
    ("2.2 other P2 on SELECT", BOTH, [], "00A404080AD392F000260100000001", "6A86"),
    ("2.2/10 unknown AID never 9000", BOTH, [], "00A4040C07A0000000041010", "6A82"),
    ("8 text AP exists on the card", ICC, [], TEXT, "9000"),
    ("8 text AP absent on the Android token", ("gpse",), [], TEXT, "6A82"),
    ("8 surface AP absent on the Android token", ("gpse",), [], SURFACE, "6A82"),
    ("2.2 unknown FID in the AP", BOTH, [JPKI], sel(0x0003), "6A82"),
    ("2.2 select EF without an AP", BOTH, [], sel(0x000A), "6A82"),
    ("2.2 MF select right after reset", BOTH, [], "00A40000", "6A86"),
    ("2.2 MF select with an AP selected", BOTH, [JPKI], "00A40000", "9000"),
    ("2.2 select 3F00 by FID", BOTH, [], "00A4000C023F00", "6A82"),
    ("2.2 logical channel 1", BOTH, [], "01A4040C0AD392F000260100000001", "6881"),
    ("2.2 SM CLA on SELECT", BOTH, [], "0CA4040C0AD392F000260100000001", "6882"),
    ("2.2 SM CLA on READ BINARY", BOTH, [JPKI, sel(0x000B)], "0CB0000004", "69FC"),
    ("2.2 SM CLA on VERIFY", BOTH, [JPKI, sel(0x0018)], "0C20008000", "69FC"),
    ("3.1 auth CA certificate free", BOTH, [JPKI, sel(0x000B)], "00B0000004", "9000"),
    ("3.1 auth certificate free on the card", ICC, [JPKI, sel(0x000A)], "00B0000004", "9000"),
    ("8 auth certificate needs 0018 on the token", ("gpse",), [JPKI, sel(0x000A)], "00B0000004", "6982"),
    ("8 token auth certificate after VERIFY 0018", ("gpse",), [JPKI, sel(0x0018), V_AUTH, sel(0x000A)], "00B0000004", "9000"),
    ("3.1/10.5 sign certificate before VERIFY 001B", BOTH, [JPKI, sel(0x0001)], "00B0000004", "6982"),
    ("3.1 sign certificate after VERIFY 001B", BOTH, [JPKI, sel(0x001B), V_SIGN, sel(0x0001)], "00B0000004", "9000"),
    ("3.1 MODEL: READ BINARY on a key object", BOTH, [JPKI, sel(0x0017)], "00B0000004", "6981"),
    ("3.1 MODEL: READ BINARY on a PIN object", BOTH, [JPKI, sel(0x0018)], "00B0000004", "6981"),
    ("3.1 MODEL: EF 0009 is protected", BOTH, [JPKI, sel(0x0009)], "00B0000004", "6982"),
    ("4.1 offset past the end", BOTH, [JPKI, sel(0x0008)], "00B0000300", "6B00"),
    ("4.1 MODEL: no current EF", BOTH, [JPKI], "00B0000004", "6986"),
    ("4.1 SFI form reads without SELECT", BOTH, [JPKI], "00B08B0004", "9000"),
    ("4.3 empty VERIFY on auth PIN", BOTH, [JPKI, sel(0x0018)], "00200080", "63C3"),
    ("4.3 empty VERIFY on sign password", BOTH, [JPKI, sel(0x001B)], "00200080", "63C5"),
    ("4.3/10.3 empty VERIFY after success is still 63Cx", BOTH, [JPKI, sel(0x0018), V_AUTH], "00200080", "63C3"),
    ("4.3 VERIFY SFI form without SELECT", BOTH, [JPKI], "00200098" + V_AUTH[8:], "9000"),
    ("4.3 wrong value decrements", BOTH, [JPKI, sel(0x0018)], verify("0000"), "63C2"),
    ("4.3 MODEL: wrong length counts as a wrong value", BOTH, [JPKI, sel(0x0018)], verify("12345"), "63C2"),
    ("4.3 MODEL: VERIFY without a key EF", BOTH, [JPKI], "0020008004" + "31323334", "6986"),
    ("4.4 CHANGE without VERIFY", BOTH, [JPKI, sel(0x0018)], "0024018004" + "39393939", "6982"),
    ("4.4 MODEL: CHANGE to a malformed value", BOTH, [JPKI, sel(0x0018), V_AUTH], "0024018003" + "393939", "6A80"),
    ("4.4 CHANGE after VERIFY", BOTH, [JPKI, sel(0x0018), V_AUTH], "0024018004" + "39393939", "9000"),
    ("6 MODEL: sign password needs a letter and a digit", BOTH, [JPKI, sel(0x001B), V_SIGN], "0024018006" + b"ABCDEF".hex(), "6A80"),
    ("4.5 sign without VERIFY", BOTH, [JPKI, sel(0x0017)], SIGN_CMD, "6982"),
    ("4.5 sign after VERIFY", BOTH, [JPKI, sel(0x0018), V_AUTH, sel(0x0017)], SIGN_CMD, "9000"),
    ("4.5 SFI key 97 without selecting", BOTH, [JPKI, sel(0x0018), V_AUTH], "802A0097" + SIGN_CMD[8:], "9000"),
    ("4.5 unsupported P1", BOTH, [JPKI, sel(0x0018), V_AUTH, sel(0x0017)], "802A0680" + SIGN_CMD[8:], "6A86"),
    ("4.5 MODEL: input over 245 bytes", BOTH, [JPKI, sel(0x0018), V_AUTH, sel(0x0017)], "802A0080F6" + "00" * 246 + "00", "6700"),
    ("4.5 MODEL: current EF is not a key", BOTH, [JPKI, sel(0x0018), V_AUTH, sel(0x000B)], SIGN_CMD, "6986"),
    ("4.5 the sign key needs the sign password, not the auth PIN", BOTH, [JPKI, sel(0x0018), V_AUTH, sel(0x001A)], SIGN_CMD, "6982"),
    ("3.3 key 0012 query answers 63C0", ICC, [TEXT, sel(0x0012)], "00200080", "63C0"),
    ("3.3 key 0012 VERIFY answers 6984", ICC, [TEXT, sel(0x0012)], verify("1234"), "6984"),
    ("3.3 individual number needs a credential", ICC, [TEXT, sel(0x0001)], "00B0000011", "6982"),
    ("3.3 individual number after the text PIN", ICC, [TEXT, sel(0x0011), V_TEXT, sel(0x0001)], "00B0000011", "9000"),
    ("3.3 MODEL: no session on the text AP", ICC, [TEXT], "80AE000000", "6985"),
    ("3.3 SET SESSION KEY on the JPKI AP", BOTH, [JPKI], "80AE000000", "6982"),
    ("3.3 SET SESSION KEY on the 共通AP", ICC, [COMMON], "80AE000000", "66F1"),
    ("3.3 SET SESSION KEY on the 券面AP", ICC, [SURFACE], "80AE000000", "66F1"),
    ("3.3 SET SESSION KEY on the 住基AP", ICC, [JUKI], "80AE000000", "6982"),
    ("3.3 text AP signs with its own key, no credential", ICC, [TEXT], f"802A0000{len(SHA256_DI) // 2:02X}{SHA256_DI}00", "9000"),
    ("3.5 INTERNAL AUTHENTICATE on 共通AP key 0019", ICC, [COMMON], "0088009908" + "AB" * 8 + "00", "9000"),
    ("3.4 INTERNAL AUTHENTICATE on a 券面 key", ICC, [SURFACE], "0088009308" + "AB" * 8 + "00", "6985"),
    ("3.5/4.2 READ RECORD 1 of 共通AP EF 0001", ICC, [COMMON], "00B2010C00", "9000"),
    ("4.2 missing record", ICC, [COMMON], "00B2020C00", "6A83"),
    ("4.2 READ RECORD on a transparent EF", ICC, [COMMON], "00B20114" + "00", "6981"),
    ("3.5 CHANGE KEY 80 32 without VERIFY", ICC, [JUKI, sel(0x001C)], "8032008004" + "39393939", "6982"),
    ("3.5 CHANGE KEY 80 32 after VERIFY", ICC, [JUKI, sel(0x001C), V_TEXT], "8032008004" + "39393939", "9000"),
    ("3.6 GET DATA card id at the MF", ICC, [], "00CA004500", "9000"),
    ("3.6 GET DATA absent object", BOTH, [], "00CA00F800", "6A88"),
    ("3.6 MODEL: GET DATA with an AP selected", ICC, [JPKI], "00CA004500", "6A88"),
    ("3.6 GET DATA 5F51 also with an AP selected", ICC, [JPKI], "00CA5F5100", "9000"),
    ("3.6 GET CHALLENGE", BOTH, [], "0084000008", "9000"),
    ("3.6 GET CHALLENGE with an extended Le", BOTH, [], "00840000000100", "6985"),
    ("4.6 SET PUBLIC IC KEY probed", BOTH, [JPKI], "80A2000000", "6A86"),
    ("4.6 80 FC on a plastic card", BOTH, [], "80FC0000", "6700"),
    ("4.6 MODEL: unknown INS", BOTH, [JPKI], "00E0000000", "6D00"),
    ("4.6 MODEL: known INS under the wrong class", BOTH, [], "80A4040C0AD392F000260100000001", "6E00"),
    ("4.6 MODEL: invalid CLA FF", BOTH, [], "FFCA000000", "6E00"),
    ("5 wrong length: Lc larger than the data", BOTH, [], "00A4040C0AD392", "6700"),
    ("5 wrong length: fewer than 4 bytes", BOTH, [], "00A4", "6700"),
    ("2.2 ISD selectable on the card", ICC, [JPKI], "00A4040C07A0000001510000", "9000"),
]


CASES = [(p, rule, scene, cmd, sw) for rule, profiles, scene, cmd, sw in VECTORS for p in profiles]


@pytest.mark.parametrize(
    "card_profile,rule,scene,command,expected",
    CASES,
    ids=[f"{c[0]}: {c[1]}" for c in CASES],
)
def test_status_word_vectors(make_card, card_profile, rule, scene, command, expected):
    card = make_card(card_profile)
    card.power_on()
    for step in scene:
        rsp = card.transmit(bytes.fromhex(step))
        assert rsp[-2:] == b"\x90\x00", f"scene step {step} answered {rsp[-2:].hex()}"
    rsp = card.transmit(bytes.fromhex(command))
    assert rsp[-2:].hex().upper() == expected, rule


def test_exhausting_attempt_answers_63c0_then_6984(make_card, profile):
    """4.3: the attempt that brings the counter to 0 answers 63C0; then VERIFY → 6984 and
    the query → 63C0; the correct value no longer opens it."""
    card = make_card(profile)
    for cmd in (JPKI, sel(0x0018)):
        card.transmit(bytes.fromhex(cmd))
    answers = [card.transmit(bytes.fromhex(verify("0000"))).hex().upper() for _ in range(3)]
    assert answers == ["63C2", "63C1", "63C0"]
    assert card.transmit(bytes.fromhex(V_AUTH)).hex().upper() == "6984"
    assert card.transmit(bytes.fromhex("00200080")).hex().upper() == "63C0"
    assert card.pin_status()["auth"] == 0


def test_success_restores_the_counter(make_card, profile):
    """4.3: a correct value returns the counter to its maximum (5 for the sign password)."""
    card = make_card(profile)
    for cmd in (JPKI, sel(0x001B), verify("WRONG1"), verify("WRONG2")):
        card.transmit(bytes.fromhex(cmd))
    assert card.transmit(bytes.fromhex("00200080")).hex().upper() == "63C3"
    assert card.transmit(bytes.fromhex(V_SIGN)).hex().upper() == "9000"
    assert card.transmit(bytes.fromhex("00200080")).hex().upper() == "63C5"


def test_internal_error_answers_6f00_and_keeps_state(make_card, monkeypatch):
    """5 (6F00) and section 10: a fault inside the card never escapes as an exception."""
    from workbench.card import virtual_card

    card = make_card("icc")
    card.transmit(bytes.fromhex(JPKI))

    def broken(self, cmd):
        raise RuntimeError("simulated fault")

    monkeypatch.setitem(virtual_card._HANDLERS, (0x00, 0xB0), broken)
    logging_answer = card.transmit(bytes.fromhex("00B08B0004"))
    assert logging_answer.hex().upper() == "6F00"
    monkeypatch.undo()
    assert card.transmit(bytes.fromhex("00B08B0004"))[-2:] == b"\x90\x00"

"""Tests of workbench.apdu against ISO 7816-3 12.1.3 / 7816-4 5.1 and jpki-card.md 2, 4, 5."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.apdu import SW, CommandAPDU, ResponseAPDU, StatusWord, sw_tries_left
from workbench.errors import APDUError

JPKI_AP_AID = bytes.fromhex("D392F000260100000001")  # jpki-card.md 2.1
SHA256_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")  # jpki-card.md 4.5


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# --- real-world APDUs from the spec ---------------------------------------------------------


def test_spec_2_2_select_jpki_ap_by_df_name() -> None:
    """2.2 / 4.7 step 1: ``00 A4 04 0C 0A <AID>`` selects the JPKI AP, case 3 short."""
    apdu = CommandAPDU.from_bytes(h("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"))
    assert (apdu.cla, apdu.ins, apdu.p1, apdu.p2) == (0x00, 0xA4, 0x04, 0x0C)
    assert apdu.data == JPKI_AP_AID
    assert apdu.le is None
    assert apdu.case == 3
    assert apdu.extended is False
    assert apdu.ins_name == "SELECT"
    assert str(apdu) == "SELECT by DF name D392F000260100000001"
    assert CommandAPDU.select_df(JPKI_AP_AID) == apdu


def test_spec_2_2_select_ef_by_fid() -> None:
    """2.2: ``00 A4 02 0C 02 <FID>`` selects an EF or key object in the current AP."""
    assert CommandAPDU.select_ef(0x001B).to_bytes() == h("00 A4 02 0C 02 00 1B")
    assert str(CommandAPDU.select_ef(0x000A)) == "SELECT FID 000A"


def test_spec_4_5_sha256_signature_request() -> None:
    """4.5: ``80 2A 00 80 33 <DigestInfo prefix + 32-byte hash> 00`` is a case 4S APDU."""
    digest = bytes(range(32))
    raw = h("80 2A 00 80 33") + SHA256_PREFIX + digest + h("00")
    apdu = CommandAPDU.from_bytes(raw)
    assert (apdu.cla, apdu.ins, apdu.p1, apdu.p2) == (0x80, 0x2A, 0x00, 0x80)
    assert apdu.data == SHA256_PREFIX + digest
    assert len(apdu.data) == 0x33
    assert apdu.le == 256
    assert apdu.case == 4
    assert apdu.ins_name == "COMPUTE DIGITAL SIGNATURE"
    assert apdu.sensitive is False
    assert CommandAPDU.compute_signature(SHA256_PREFIX + digest).to_bytes() == raw


@pytest.mark.parametrize(
    ("raw", "offset", "le"),
    [
        ("00 B0 00 00 04", 0x0000, 4),  # 4.1 four-byte header read
        ("00 B0 00 00 07", 0x0000, 7),  # 4.1 seven-byte header read
        ("00 B0 01 00 00", 0x0100, 256),  # 4.1 Le 00 means 256
        ("00 B0 03 00 4B", 0x0300, 0x4B),  # 4.1 last short chunk of an 843-byte file
        ("00 B0 7F FF 01", 0x7FFF, 1),  # 4.1 15-bit offset
    ],
)
def test_spec_4_1_read_binary(raw: str, offset: int, le: int) -> None:
    """4.1: offset = ((P1 & 7F) << 8) | P2; Le 00 = 256; built and parsed alike."""
    apdu = CommandAPDU.from_bytes(h(raw))
    assert ((apdu.p1 & 0x7F) << 8 | apdu.p2, apdu.le, apdu.case) == (offset, le, 2)
    assert CommandAPDU.read_binary(offset, le) == apdu
    assert apdu.to_bytes() == h(raw)


def test_spec_4_1_read_binary_str_and_sfi_form() -> None:
    """4.1: the trace line shows the 15-bit offset; P1 = 80 | SFI is the short-EF form."""
    assert str(CommandAPDU.read_binary(0x100, 256)) == "READ BINARY offset=0x0100 Le=256"
    sfi = CommandAPDU.read_binary(0x10, 32, sfi=0x0A)
    assert sfi.to_bytes() == h("00 B0 8A 10 20")
    assert "SFI=0A" in str(sfi)
    with pytest.raises(APDUError):
        CommandAPDU.read_binary(0x8000)
    with pytest.raises(APDUError):
        CommandAPDU.read_binary(0x100, sfi=1)


def test_spec_4_3_verify_query_is_case_1() -> None:
    """4.3: the retry query ``00 20 00 80`` has no data and no Le (case 1)."""
    query = CommandAPDU.verify()
    assert query.to_bytes() == h("00 20 00 80")
    assert query.case == 1
    assert CommandAPDU.from_bytes(h("00 20 00 80")) == query
    assert CommandAPDU.verify(0x9B).to_bytes() == h("00 20 00 9B")  # SFI form of P2
    assert str(query) == "VERIFY P2=80 (retry-counter query)"


def test_spec_4_3_verify_with_pin_and_4_4_change() -> None:
    """4.3 / 4.4: PIN as raw ASCII after Lc; CHANGE REFERENCE DATA is ``00 24 01 80``."""
    assert CommandAPDU.verify(pin=b"1234").to_bytes() == h("00 20 00 80 04 31 32 33 34")
    change = CommandAPDU.change_reference_data(b"5678")
    assert change.to_bytes() == h("00 24 01 80 04 35 36 37 38")
    assert CommandAPDU.change_key(b"5678").to_bytes() == h("80 32 00 80 04 35 36 37 38")
    with pytest.raises(APDUError):
        CommandAPDU.verify(pin=b"")


def test_spec_4_6_other_commands() -> None:
    """4.2 / 4.6: READ RECORD, INTERNAL AUTHENTICATE and GET CHALLENGE parse to their fields."""
    record = CommandAPDU.from_bytes(h("00 B2 01 04 00"))
    assert (record.ins_name, record.p1, record.p2, record.le) == ("READ RECORD", 1, 4, 256)
    auth = CommandAPDU.from_bytes(h("00 88 00 99 04 01 02 03 04 00"))
    assert (auth.ins_name, auth.p2, auth.data, auth.le) == (
        "INTERNAL AUTHENTICATE",
        0x99,
        h("01020304"),
        256,
    )
    assert CommandAPDU.get_challenge(8).to_bytes() == h("00 84 00 00 08")
    assert CommandAPDU.get_challenge(256).to_bytes() == h("00 84 00 00 00")


# --- ISO 7816-3 12.1.3 cases ----------------------------------------------------------------

DATA_300 = bytes(range(256)) + bytes(44)

CASES = [
    # (wire hex, data, le, extended, case)
    ("00 A4 00 00", b"", None, False, 1),  # case 1
    ("00 B0 00 00 01", b"", 1, False, 2),  # case 2S
    ("00 B0 00 00 00", b"", 256, False, 2),  # case 2S, Le 00 = 256
    ("00 A4 04 0C 02 3F 00", h("3F00"), None, False, 3),  # case 3S
    ("80 2A 00 80 01 AA 00", h("AA"), 256, False, 4),  # case 4S
    ("80 2A 00 80 01 AA 10", h("AA"), 16, False, 4),  # case 4S, Le 16
    ("00 CA 00 F8 00 00 00", b"", 65536, True, 2),  # case 2E, Le 0000 = 65536
    ("00 CA 00 F8 00 01 01", b"", 257, True, 2),  # case 2E
    ("00 CA 00 F8 00 00 05", b"", 5, True, 2),  # case 2E forced where short would fit
    ("00 D6 00 00 00 00 02 AA BB", h("AABB"), None, True, 3),  # case 3E
    ("80 2A 00 80 00 00 01 AA 00 00", h("AA"), 65536, True, 4),  # case 4E
    ("80 2A 00 80 00 00 01 AA 01 00", h("AA"), 256, True, 4),  # case 4E, Le 256
]


@pytest.mark.parametrize(("wire", "data", "le", "extended", "case"), CASES)
def test_iso7816_3_every_case_round_trips(
    wire: str, data: bytes, le: int | None, extended: bool, case: int
) -> None:
    """ISO 7816-3 12.1.3: each case, short and extended, parses to its fields and back."""
    apdu = CommandAPDU.from_bytes(h(wire))
    assert (apdu.data, apdu.le, apdu.extended, apdu.case) == (data, le, extended, case)
    assert apdu.to_bytes() == h(wire)
    built = CommandAPDU(apdu.cla, apdu.ins, apdu.p1, apdu.p2, data, le, extended)
    assert built.to_bytes() == h(wire)
    assert built == apdu


def test_iso7816_3_extended_chosen_when_short_cannot_carry() -> None:
    """extended=False means short if it fits: Lc > 255 or Le > 256 switch to extended."""
    big = CommandAPDU(0x00, 0xD6, 0, 0, DATA_300)
    assert big.extended is True
    assert big.to_bytes() == h("00 D6 00 00 00 01 2C") + DATA_300
    assert CommandAPDU(0x00, 0xB0, 0, 0, le=257).to_bytes() == h("00 B0 00 00 00 01 01")
    assert CommandAPDU(0x00, 0xB0, 0, 0, le=256).to_bytes() == h("00 B0 00 00 00")
    assert CommandAPDU(0x00, 0xD6, 0, 0, bytes(255)).extended is False
    full = CommandAPDU(0x00, 0xD6, 0, 0, bytes(65535), 65536)
    assert full.to_bytes()[4:7] == h("00 FF FF") and full.to_bytes()[-2:] == h("00 00")
    assert CommandAPDU.from_bytes(full.to_bytes()) == full


def test_iso7816_3_case_1_has_no_extended_form() -> None:
    """Case 1 carries no length field, so a forced extended flag has nothing to encode."""
    apdu = CommandAPDU(0x00, 0x20, 0x00, 0x80, extended=True)
    assert apdu.extended is False
    assert apdu.to_bytes() == h("00 20 00 80")


@pytest.mark.parametrize(
    "wire",
    [
        "",  # no header
        "00 A4 04",  # header truncated
        "00 A4 04 0C 05 01 02 03",  # Lc says 5, 3 bytes follow
        "00 A4 04 0C 02 01 02 00 00",  # trailing byte after case 4S
        "00 B0 00 00 00 01",  # 00 then 1 byte: truncated extended length
        "00 A4 04 0C 00 00 00 01",  # extended Lc = 0000 with data
        "00 A4 04 0C 00 00 00 01 02",  # extended Lc = 0000 with data and more
        "00 A4 04 0C 00 00 05 01 02",  # extended Lc 5, 2 bytes follow
        "00 A4 04 0C 00 00 01 AA 00",  # extended Lc 1 + one stray byte (Le needs two)
        "00 A4 04 0C 00 00 01 AA 00 00 00",  # trailing byte after case 4E
    ],
)
def test_iso7816_3_impossible_lengths_raise(wire: str) -> None:
    """ISO 7816-3 12.1.3: a body matching no case is an APDUError with a one-line message."""
    with pytest.raises(APDUError) as info:
        CommandAPDU.from_bytes(h(wire))
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 256},
        {"ins": -1},
        {"p1": 0x100},
        {"p2": 1.5},
        {"le": 0},
        {"le": 65537},
        {"data": bytes(65536)},
        {"data": "1234"},
        {"le": True},
    ],
)
def test_iso7816_4_field_ranges_are_checked(kwargs: dict[str, object]) -> None:
    """ISO 7816-4 5.1: header bytes 0..255, Nc <= 65535, Ne 1..65536."""
    fields: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0}
    fields.update(kwargs)
    with pytest.raises(APDUError):
        CommandAPDU(**fields)  # type: ignore[arg-type]


def test_parsed_bytearray_and_memoryview_are_accepted() -> None:
    """The transport may hand over a bytearray; the result holds immutable bytes."""
    apdu = CommandAPDU.from_bytes(bytearray(h("00 A4 04 0C 02 3F 00")))
    assert type(apdu.data) is bytes
    assert CommandAPDU(0, 0xA4, 4, 0x0C, memoryview(b"\x3f\x00")).data == b"\x3f\x00"


# --- masking of secrets (CONVENTIONS.md, Data and safety) -----------------------------------


@pytest.mark.parametrize(
    ("apdu", "secret"),
    [
        (CommandAPDU.verify(pin=b"1234"), b"1234"),
        (CommandAPDU.verify(0x9B, pin=b"ABC123"), b"ABC123"),
        (CommandAPDU.change_reference_data(b"ABC123"), b"ABC123"),
        (CommandAPDU.change_key(b"1234"), b"1234"),
        (CommandAPDU(0x00, 0x2C, 0x00, 0x80, b"1234"), b"1234"),
        (CommandAPDU(0x00, 0x20, 0x00, 0x80, b"ABC123", extended=True), b"ABC123"),
        (CommandAPDU.from_bytes(h("0C 20 00 80 04 31 32 33 34")), b"1234"),
    ],
)
def test_secrets_never_shown(apdu: CommandAPDU, secret: bytes) -> None:
    """A PIN or password never appears in repr, str or masked_hex, as text or as hex."""
    assert apdu.sensitive
    secret_hex = secret.hex()
    for text in (repr(apdu), str(apdu), apdu.masked_hex()):
        assert secret.decode() not in text
        assert secret_hex not in text.lower()
    assert f"<{len(secret)} bytes masked>" in repr(apdu)
    assert f"<masked, {len(secret)} bytes>" in str(apdu)
    assert apdu.masked_hex().count("*") == 2 * len(secret)


def test_masked_hex_examples() -> None:
    """masked_hex keeps header, Lc and Le and stars the secret data field, two per byte."""
    assert CommandAPDU.verify(pin=b"1234").masked_hex() == "0020008004********"
    assert str(CommandAPDU.verify(pin=b"1234")) == "VERIFY P2=80 data=<masked, 4 bytes>"
    forced = CommandAPDU(0x00, 0x20, 0x00, 0x80, b"1234", extended=True)
    assert forced.masked_hex() == "00200080000004********"
    select = CommandAPDU.select_df(JPKI_AP_AID)
    assert select.masked_hex() == "00A4040C0AD392F000260100000001"
    assert CommandAPDU.verify().masked_hex() == "00200080"


@given(pin=st.binary(min_size=1, max_size=300), ins=st.sampled_from([0x20, 0x24, 0x2C]))
def test_masked_hex_differs_from_wire_exactly_in_data(pin: bytes, ins: int) -> None:
    """Property: masked_hex is the wire hex with only the data field starred."""
    apdu = CommandAPDU(0x00, ins, 0x00, 0x80, pin)
    wire = apdu.to_bytes().hex().upper()
    masked = apdu.masked_hex()
    start = 14 if apdu.extended else 10
    assert len(masked) == len(wire)
    assert masked[:start] == wire[:start]
    assert masked[start:] == "*" * (2 * len(pin))


@pytest.mark.parametrize(
    ("cla", "ins", "sensitive"),
    [
        (0x00, 0x20, True),  # VERIFY
        (0x00, 0x24, True),  # CHANGE REFERENCE DATA
        (0x00, 0x2C, True),  # RESET RETRY COUNTER
        (0x80, 0x32, True),  # JICSAP CHANGE KEY
        (0x0C, 0x20, True),  # VERIFY under a secure-messaging CLA
        (0x00, 0x32, False),  # ISO INCREASE, not CHANGE KEY
        (0x00, 0xA4, False),
        (0x80, 0x2A, False),
        (0x00, 0xB0, False),
    ],
)
def test_sensitive_instructions(cla: int, ins: int, sensitive: bool) -> None:
    """jpki-card.md 4.3, 4.4, 3.5: these instructions carry PINs in their data field."""
    assert CommandAPDU(cla, ins, 0, 0x80, b"99").sensitive is sensitive


# --- instruction names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cla", "ins", "name"),
    [
        (0x00, 0xA4, "SELECT"),
        (0x00, 0xB0, "READ BINARY"),
        (0x00, 0xB2, "READ RECORD"),
        (0x00, 0x20, "VERIFY"),
        (0x00, 0x24, "CHANGE REFERENCE DATA"),
        (0x00, 0x84, "GET CHALLENGE"),
        (0x00, 0x88, "INTERNAL AUTHENTICATE"),
        (0x00, 0xCA, "GET DATA"),
        (0x00, 0xC0, "GET RESPONSE"),
        (0x80, 0x2A, "COMPUTE DIGITAL SIGNATURE"),
        (0x00, 0x2A, "PERFORM SECURITY OPERATION"),
        (0x80, 0xAE, "SET SESSION KEY"),
        (0x80, 0xA2, "SET PUBLIC IC KEY"),
        (0x80, 0x32, "CHANGE KEY"),
        (0x80, 0xFC, "LAST COMMAND"),
        (0x80, 0x50, "INITIALIZE UPDATE"),
        (0x84, 0x82, "EXTERNAL AUTHENTICATE"),
        (0x80, 0xF2, "GET STATUS"),
        (0x80, 0xE6, "INSTALL"),
        (0x80, 0xE8, "LOAD"),
        (0x80, 0xE4, "DELETE"),
        (0x80, 0xE2, "STORE DATA"),
        (0x80, 0xD8, "PUT KEY"),
        (0x00, 0x12, "INS 12"),
        (0x80, 0x12, "INS 12"),
    ],
)
def test_ins_names(cla: int, ins: int, name: str) -> None:
    """ISO 7816-4, JICSAP (jpki-card.md 4) and GlobalPlatform instruction names."""
    assert CommandAPDU(cla, ins, 0, 0).ins_name == name


# --- status words (jpki-card.md section 5) --------------------------------------------------

REQUIRED_SW = {
    "SUCCESS": 0x9000,
    "END_OF_FILE": 0x6282,
    "VERIFY_FAILED": 0x6300,
    "WRONG_LENGTH": 0x6700,
    "LOGICAL_CHANNEL_NOT_SUPPORTED": 0x6881,
    "SECURE_MESSAGING_NOT_SUPPORTED": 0x6882,
    "SESSION_KEY_NOT_SUPPORTED": 0x66F1,
    "COMMAND_INCOMPATIBLE_WITH_FILE": 0x6981,
    "SECURITY_STATUS_NOT_SATISFIED": 0x6982,
    "AUTHENTICATION_BLOCKED": 0x6984,
    "CONDITIONS_NOT_SATISFIED": 0x6985,
    "NO_CURRENT_EF": 0x6986,
    "SM_NOT_ALLOWED": 0x69FC,
    "WRONG_DATA": 0x6A80,
    "FILE_NOT_FOUND": 0x6A82,
    "RECORD_NOT_FOUND": 0x6A83,
    "WRONG_P1P2": 0x6A86,
    "DATA_NOT_FOUND": 0x6A88,
    "WRONG_OFFSET": 0x6B00,
    "INS_NOT_SUPPORTED": 0x6D00,
    "CLA_NOT_SUPPORTED": 0x6E00,
    "NO_PRECISE_DIAGNOSIS": 0x6F00,
}

# Every row of jpki-card.md section 5 (61xx / 6Cxx by examples, 63Cx in full).
SECTION_5 = [
    0x9000,
    0x6101,
    0x6100,
    0x6C10,
    0x6C00,
    0x6282,
    *range(0x63C0, 0x63D0),
    0x6300,
    0x66F1,
    0x6700,
    0x6881,
    0x6882,
    0x6981,
    0x6982,
    0x6984,
    0x6985,
    0x6986,
    0x69FC,
    0x6A80,
    0x6A82,
    0x6A83,
    0x6A86,
    0x6A88,
    0x6B00,
    0x6D00,
    0x6E00,
    0x6F00,
]


@pytest.mark.parametrize(("name", "value"), sorted(REQUIRED_SW.items()))
def test_sw_members(name: str, value: int) -> None:
    """Section 5: each named SW has its 16-bit value and a precomputed 2-byte wire form."""
    member = SW[name]
    assert member == value
    assert member.bytes == bytes((value >> 8, value & 0xFF))
    assert b"\x01\x02" + member.bytes == b"\x01\x02" + value.to_bytes(2, "big")
    assert StatusWord(member).name == name


@pytest.mark.parametrize("value", SECTION_5, ids=lambda v: f"{v:04X}")
def test_section_5_every_sw_has_english_and_japanese_meaning(value: int) -> None:
    """Section 5: every status word the card can answer has both readings, none generic."""
    status = StatusWord(value)
    assert status.meaning and status.meaning.isascii()
    assert status.meaning_ja and not status.meaning_ja.isascii()
    assert status.name not in ("UNKNOWN", "")
    assert str(status) == f"{value:04X} {status.meaning}"


def test_section_5_member_meanings_are_distinct() -> None:
    """No two named status words share a reading (catches copy-paste in the catalogue)."""
    english = [StatusWord(m).meaning for m in SW]
    japanese = [StatusWord(m).meaning_ja for m in SW]
    assert len(set(english)) == len(english)
    assert len(set(japanese)) == len(japanese)


def test_section_5_jpki_readings() -> None:
    """4.3 / 5: 6984 is the locked IEF, 63Cx counts tries, 6982 the classic wording."""
    assert StatusWord(0x6984).meaning == "referenced key (IEF) blocked"
    assert StatusWord(0x6984).meaning_ja == "参照されたIEFが閉塞"
    assert StatusWord(0x63C2).meaning == "verification failed, 2 tries left"
    assert StatusWord(0x63C2).meaning_ja == "照合不一致（残り2回）"
    assert StatusWord(0x63C2).name == "TRIES_LEFT"
    assert "blocked" in StatusWord(0x63C0).meaning
    assert str(StatusWord(0x6982)) == "6982 security status not satisfied"
    assert StatusWord(0x6110).name == "BYTES_AVAILABLE"
    assert StatusWord(0x6C20).name == "WRONG_LE"
    assert "32" in StatusWord(0x6C20).meaning


@pytest.mark.parametrize("n", range(16))
def test_4_3_tries_left(n: int) -> None:
    """4.3: 63 Cx carries the remaining tries in the low nibble."""
    assert sw_tries_left(n) == 0x63C0 | n == SW.tries(n)
    assert StatusWord(0x63C0 | n).tries_left == n


@pytest.mark.parametrize("value", [0x9000, 0x6300, 0x63D1, 0x6984, 0x6C03])
def test_tries_left_none_outside_63cx(value: int) -> None:
    """Only 63 Cx reports a counter."""
    assert StatusWord(value).tries_left is None


@pytest.mark.parametrize("n", [-1, 16])
def test_tries_left_out_of_range(n: int) -> None:
    """A nibble holds 0..15 only."""
    with pytest.raises(APDUError):
        sw_tries_left(n)


def test_every_16_bit_value_has_a_reading() -> None:
    """Any 16-bit value gets a name and both readings without raising (ISO 7816-4 5.6)."""
    for value in range(0x10000):
        status = StatusWord(value)
        assert status.meaning and status.meaning_ja and status.name
        assert StatusWord.from_bytes(status.to_bytes()) == status


def test_status_word_checks() -> None:
    """Only 90 00 is success; values outside 16 bits and wrong sizes raise."""
    assert StatusWord(0x9000).is_success
    assert not StatusWord(0x9001).is_success and not StatusWord(0x6100).is_success
    assert (StatusWord(0x6A82).sw1, StatusWord(0x6A82).sw2) == (0x6A, 0x82)
    assert StatusWord(SW.SUCCESS) == StatusWord(0x9000)
    for bad in (-1, 0x10000):
        with pytest.raises(APDUError):
            StatusWord(bad)
    for raw in (b"", b"\x90", b"\x90\x00\x00"):
        with pytest.raises(APDUError):
            StatusWord.from_bytes(raw)


# --- responses ------------------------------------------------------------------------------


def test_response_apdu() -> None:
    """ISO 7816-4 5.1: the last two bytes are SW1 SW2, the rest is data."""
    resp = ResponseAPDU.from_bytes(bytes(256) + SW.SUCCESS.bytes)
    assert (resp.data, resp.sw, resp.sw1, resp.sw2) == (bytes(256), 0x9000, 0x90, 0x00)
    assert resp.is_success and resp.status.is_success
    assert str(resp) == "90 00 (256 bytes) success"
    blocked = ResponseAPDU.from_bytes(h("69 84"))
    assert blocked.data == b"" and not blocked.is_success
    assert str(blocked) == "69 84 referenced key (IEF) blocked"
    assert ResponseAPDU.from_bytes(h("63 C1")).status.tries_left == 1
    for raw in (b"", b"\x90"):
        with pytest.raises(APDUError):
            ResponseAPDU.from_bytes(raw)
    with pytest.raises(APDUError):
        ResponseAPDU(b"", 0x10000)


@given(data=st.binary(max_size=300), sw=st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int) -> None:
    """Property: ResponseAPDU bytes round trip."""
    resp = ResponseAPDU(data, sw)
    assert ResponseAPDU.from_bytes(resp.to_bytes()) == resp
    assert resp.to_bytes() == data + sw.to_bytes(2, "big")


# --- properties -----------------------------------------------------------------------------

byte = st.integers(0, 255)
commands = st.builds(
    CommandAPDU,
    cla=byte,
    ins=byte,
    p1=byte,
    p2=byte,
    data=st.one_of(st.binary(max_size=260), st.binary(min_size=250, max_size=600)),
    le=st.one_of(st.none(), st.integers(1, 300), st.integers(1, 65536)),
    extended=st.booleans(),
)


@given(commands)
def test_property_command_round_trip(apdu: CommandAPDU) -> None:
    """ISO 7816-3 12.1.3: from_bytes(to_bytes(x)) has x's fields, and bytes agree both ways."""
    wire = apdu.to_bytes()
    parsed = CommandAPDU.from_bytes(wire)
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2) == (apdu.cla, apdu.ins, apdu.p1, apdu.p2)
    assert (parsed.data, parsed.le, parsed.case) == (apdu.data, apdu.le, apdu.case)
    assert parsed.extended == apdu.extended
    assert parsed == apdu
    assert parsed.to_bytes() == wire
    # the extended form is used exactly when forced or when the short one cannot carry it
    needs_extended = len(apdu.data) > 255 or (apdu.le or 0) > 256
    assert apdu.extended == (apdu.case != 1 and (needs_extended or apdu.extended))
    assert len(wire) == 4 + (
        0
        if apdu.case == 1
        else (len(apdu.data) + (3 if apdu.data else 1) + (2 if apdu.le else 0))
        if apdu.extended
        else (len(apdu.data) + (1 if apdu.data else 0) + (1 if apdu.le else 0))
    )


near_apdus = st.builds(
    lambda head, prefix, data, tail: head + prefix + data + tail,
    st.binary(min_size=4, max_size=4),
    st.one_of(
        st.just(b""),
        st.binary(min_size=1, max_size=1),
        st.binary(min_size=3, max_size=3).map(lambda b: b"\x00" + b[1:]),
    ),
    st.binary(max_size=300),
    st.binary(max_size=2),
)


@given(st.one_of(st.binary(max_size=40), near_apdus))
def test_property_parse_any_bytes(raw: bytes) -> None:
    """Any bytes: a CommandAPDU that re-encodes to exactly the input, or APDUError only."""
    try:
        apdu = CommandAPDU.from_bytes(raw)
    except APDUError:
        return
    assert apdu.to_bytes() == raw
    assert CommandAPDU(apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data, apdu.le) == apdu or (
        apdu.extended and len(apdu.data) <= 255 and (apdu.le or 0) <= 256
    )

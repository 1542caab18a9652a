"""Tests of workbench.tlv: BER-TLV per ISO 7816-4 5.2 / X.690 8.1, layouts of jpki-card.md 3.3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import TLVError
from workbench.tlv import (
    TLV,
    decode,
    decode_one,
    encode,
    encode_length,
    encode_tag,
    strip_filler,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# --- card layouts (jpki-card.md 3.3) --------------------------------------------------------


def test_spec_3_3_my_number_ef_with_filler() -> None:
    """3.3 EF 0001: ``FF 10 0C`` + 12 ASCII digits + ``FF FF`` filler, 17 bytes in all."""
    digits = b"123456789018"  # synthetic
    ef = h("FF 10 0C") + digits + h("FF FF")
    assert len(ef) == 17
    (obj,) = decode(ef)
    assert obj.tag == 0xFF10
    assert obj.tag_bytes == h("FF 10")
    assert obj.constructed  # private class, constructed bit set, per the spec's note
    assert obj.value == digits
    assert strip_filler(ef) == ef[:15]
    assert obj.encode() == ef[:15]


def _basic_four_ef() -> tuple[bytes, list[TLV]]:
    """A synthetic 基本4情報 EF (3.3 EF 0002) with an offset table measured from file start."""
    name = TLV(0xDF22, "試験　花子".encode())
    address = TLV(0xDF23, ("東京都千代田区霞が関一丁目" * 8).encode())  # > 127 bytes: 81/82 form
    dob = TLV(0xDF24, b"19800217")
    sex = TLV(0xDF25, b"2")
    fields = [name, address, dob, sex]
    body_len = 11 + sum(len(f.encode()) for f in fields)  # DF 21 08 + 8 offset bytes = 11
    header_len = len(encode_tag(0xFF20) + encode_length(body_len))
    offsets, pos = [], header_len + 11
    for f in fields:
        offsets.append(pos)
        pos += len(f.encode())
    table = TLV(0xDF21, b"".join(o.to_bytes(2, "big") for o in offsets))
    outer = TLV.build(0xFF20, [table, *fields])
    return outer.encode() + b"\xff" * 40, [table, *fields]


def test_spec_3_3_basic_four_offsets_point_at_the_objects() -> None:
    """3.3 EF 0002: DF 21 holds file offsets of DF 22..DF 25; decode_one at each finds them."""
    ef, children = _basic_four_ef()
    (outer,) = decode(ef)
    assert outer.tag == 0xFF20 and outer.constructed
    assert ef[2] == 0x82  # FF 20 82 xx xx: body over 255 bytes
    assert int.from_bytes(ef[3:5], "big") == len(outer.value)
    assert outer.children == children
    table = outer.find(0xDF21)
    assert table is not None and len(table.value) == 8
    for i, tag in enumerate((0xDF22, 0xDF23, 0xDF24, 0xDF25)):
        offset = int.from_bytes(table.value[2 * i : 2 * i + 2], "big")
        obj, _ = decode_one(ef, offset)
        assert obj.tag == tag
        assert obj == outer.find(tag)
    assert outer.find(0xDF26) is None
    assert strip_filler(ef) == outer.encode()


def test_spec_3_3_cv_certificate_lengths() -> None:
    """3.3 EF 0004: ``7F 21 82 02 33`` { ``5F 4E 82 01 29`` body, ``5F 37 82 01 00`` sig }."""
    key = encode(0x90, h("01 00 01")) + encode(0x91, bytes(range(256)))
    body = TLV(0x5F4E, b"6000033".ljust(16, b"\x00") + bytes(16) + key)
    cert = TLV.build(0x7F21, [body, TLV(0x5F37, bytes(256))])
    raw = cert.encode()
    assert len(raw) == 568
    assert raw[:5] == h("7F 21 82 02 33")
    assert raw[5:10] == h("5F 4E 82 01 29")
    assert raw[10 + 0x129 : 10 + 0x129 + 5] == h("5F 37 82 01 00")
    assert not body.constructed and cert.constructed
    parsed = decode(raw + b"\xff" * 100)
    assert parsed == [cert]
    assert decode(parsed[0].children[0].value[32:]) == [
        TLV(0x90, h("010001")),
        TLV(0x91, bytes(range(256))),
    ]


def test_spec_3_3_integrity_record_length() -> None:
    """3.3 EF 0003: ``FF 30 82 01 4B`` { DF 31 20, DF 32 20, DF 33 82 01 00 } is 336 bytes."""
    record = TLV.build(
        0xFF30, [TLV(0xDF31, bytes(32)), TLV(0xDF32, bytes(32)), TLV(0xDF33, bytes(256))]
    )
    raw = record.encode()
    assert len(raw) == 336
    assert raw[:5] == h("FF 30 82 01 4B")
    assert raw[-261:-256] == h("DF 33 82 01 00")


def test_spec_3_3_ap_info_value_ending_in_ff_is_not_filler() -> None:
    """3.3 EF 0005: DF 43 ends in 96 x FF inside its value; only bytes after it are filler."""
    info = TLV.build(
        0xFF40,
        [
            TLV(0xDF41, h("01 03 0E 01")),
            TLV(0xDF42, bytes(16)),
            TLV(0xDF43, bytes(range(32)) + b"\xff" * 96),
        ],
    )
    ef = info.encode() + b"\xff" * 64
    assert ef[info.encode().index(h("DF 43")) + 2 : info.encode().index(h("DF 43")) + 4] == h(
        "81 80"
    )
    assert decode(ef) == [info]
    assert decode(ef)[0].find(0xDF43) == TLV(0xDF43, bytes(range(32)) + b"\xff" * 96)


# --- tags and lengths (X.690 8.1.2 / 8.1.3, ISO 7816-4 5.2.2) -------------------------------


@pytest.mark.parametrize(
    ("tag", "wire", "constructed"),
    [
        (0x90, "90", False),
        (0xA1, "A1", True),
        (0x30, "30", True),
        (0xDF21, "DF 21", False),
        (0xFF20, "FF 20", True),
        (0xFF10, "FF 10", True),  # tag number 16 in high-tag form, as on the card
        (0x7F21, "7F 21", True),
        (0x5F4E, "5F 4E", False),
        (0x5F37, "5F 37", False),
        (0x5F8101, "5F 81 01", False),
        (0x5F818101, "5F 81 81 01", False),
    ],
)
def test_valid_tags(tag: int, wire: str, constructed: bool) -> None:
    """X.690 8.1.2: tag bytes, and bit 6 of the first byte is the constructed flag."""
    assert encode_tag(tag) == h(wire)
    obj = TLV(tag, b"")
    assert obj.tag_bytes == h(wire)
    assert obj.constructed is constructed
    assert decode_one(h(wire) + b"\x00") == (obj, len(h(wire)) + 1)


@pytest.mark.parametrize(
    "tag",
    [
        0x00,  # padding, not a tag
        0x1F,  # announces more tag bytes
        0x9F,
        0x9010,  # two bytes without 11111 in the first
        0x5F80,  # last byte has bit 8 set
        0x5F8001,  # first subsequent byte 80
        0x5F0181,  # middle byte without continuation... last has bit 8
        0x5F01_01,  # middle byte lacks continuation
        0x5F81818101,  # five bytes
        -5,
    ],
)
def test_invalid_tags(tag: int) -> None:
    """X.690 8.1.2.4 / ISO 7816-4 5.2.2.1: malformed tags raise TLVError."""
    with pytest.raises(TLVError):
        encode_tag(tag)
    with pytest.raises(TLVError):
        TLV(tag, b"")


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "81 80"),
        (0xFF, "81 FF"),
        (0x100, "82 01 00"),
        (0x233, "82 02 33"),
        (0xFFFF, "82 FF FF"),
        (0x10000, "83 01 00 00"),
        (0xFFFFFF, "83 FF FF FF"),
        (0x1000000, "84 01 00 00 00"),
        (0xFFFFFFFF, "84 FF FF FF FF"),
    ],
)
def test_encode_length(n: int, wire: str) -> None:
    """X.690 8.1.3: short form below 0x80, long form 81..84 with the minimal byte count."""
    assert encode_length(n) == h(wire)


@pytest.mark.parametrize("n", [-1, 0x100000000])
def test_encode_length_out_of_range(n: int) -> None:
    """Negative lengths and lengths needing more than 4 bytes are rejected."""
    with pytest.raises(TLVError):
        encode_length(n)


def test_non_minimal_length_accepted_and_preserved_by_strip_filler() -> None:
    """BER allows ``81 05``; decode accepts it, strip_filler keeps the stored bytes."""
    ef = h("90 81 05 01 02 03 04 05 FF FF FF")
    assert decode(ef) == [TLV(0x90, h("01 02 03 04 05"))]
    assert strip_filler(ef) == ef[:8]
    assert decode(ef)[0].encode() == h("90 05 01 02 03 04 05")


@pytest.mark.parametrize(
    ("wire", "fragment"),
    [
        ("5F", "truncated tag"),
        ("5F 81", "truncated tag"),
        ("90", "no length"),
        ("90 82 01", "length field"),
        ("90 05 01 02", "only 2 bytes remain"),
        ("30 80 90 00 00 00", "indefinite"),
        ("90 85 00 00 00 00 01 AA", "length bytes"),
        ("5F 81 81 81 01 00", "longer than 4"),
        ("DF 80 01 00", "80"),
        ("90 00 00 91 00", "padding"),
    ],
)
def test_malformed_tlv_raises_with_reason(wire: str, fragment: str) -> None:
    """Truncated tag/length/value, indefinite length, > 4 length bytes raise a clear TLVError."""
    with pytest.raises(TLVError) as info:
        decode(h(wire))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_decode_one_offsets() -> None:
    """decode_one returns the offset just after the object, for walking an EF."""
    data = h("90 01 AA 5F 4E 02 BB CC")
    first, pos = decode_one(data)
    second, end = decode_one(data, pos)
    assert (first, pos) == (TLV(0x90, h("AA")), 3)
    assert (second, end) == (TLV(0x5F4E, h("BB CC")), 8)
    with pytest.raises(TLVError):
        decode_one(data, end)


# --- filler rule ----------------------------------------------------------------------------


def test_filler_rule() -> None:
    """Trailing run of one filler byte (FF or 00) ends decoding; mixed filler does not."""
    obj = TLV(0x90, h("AA"))
    assert decode(obj.encode() + b"\xff" * 7) == [obj]
    assert decode(obj.encode() + b"\x00" * 7) == [obj]
    assert decode(b"\xff" * 16) == []
    assert decode(b"") == []
    with pytest.raises(TLVError):
        decode(obj.encode() + h("FF 00"))  # FF 00 would be a tag with no length
    with pytest.raises(TLVError):
        decode(obj.encode() + h("FF FF"), filler=b"")  # filler detection off
    with pytest.raises(TLVError):
        decode(obj.encode() + h("00 00"), filler=b"\xff")  # 00 not allowed as filler here
    assert strip_filler(obj.encode() + b"\xff" * 3) == obj.encode()


def test_children_do_not_allow_filler_and_primitive_has_none() -> None:
    """Inside a constructed value every byte belongs to a child; primitives have no children."""
    padded = TLV(0xFF20, TLV(0xDF22, b"x").encode() + b"\xff\xff")
    with pytest.raises(TLVError):
        _ = padded.children
    with pytest.raises(TLVError):
        _ = TLV(0xDF22, b"x").children
    with pytest.raises(TLVError):
        TLV(0xDF22, b"x").find(0x90)
    with pytest.raises(TLVError):
        TLV.build(0xDF22, [TLV(0x90, b"")])


def test_find_returns_first_direct_child() -> None:
    """find looks at direct children only and returns the first match."""
    inner = TLV.build(0xA1, [TLV(0x90, b"deep")])
    outer = TLV.build(0xFF20, [TLV(0x90, b"one"), TLV(0x90, b"two"), inner])
    assert outer.find(0x90) == TLV(0x90, b"one")
    assert outer.find(0xA1) == inner
    assert TLV.build(0xFF20, [inner]).find(0x90) is None


# --- properties -----------------------------------------------------------------------------


@st.composite
def tags(draw: st.DrawFn, constructed: bool) -> int:
    """Any valid BER tag of 1..4 bytes with the given constructed flag."""
    first = draw(st.sampled_from([0x00, 0x40, 0x80, 0xC0])) | (0x20 if constructed else 0)
    if draw(st.booleans()):
        number = draw(st.integers(0, 30))
        if first | number == 0:
            number = 1  # 00 is padding
        return first | number
    groups = draw(st.lists(st.integers(0, 0x7F), min_size=1, max_size=3))
    if groups[0] == 0:
        groups[0] = 1  # first subsequent byte must not be 80
    tag = first | 0x1F
    for i, g in enumerate(groups):
        tag = tag << 8 | g | (0x80 if i < len(groups) - 1 else 0)
    return tag


primitives = st.builds(TLV, tags(constructed=False), st.binary(max_size=300))
trees = st.recursive(
    primitives,
    lambda kids: st.builds(TLV.build, tags(constructed=True), st.lists(kids, max_size=4)),
    max_leaves=12,
)


@given(st.lists(trees, max_size=4), st.sampled_from([b"", b"\xff" * 5, b"\x00" * 3]))
def test_property_round_trip(objects: list[TLV], filler: bytes) -> None:
    """encode then decode gives the same objects, with or without trailing filler."""
    wire = b"".join(o.encode() for o in objects)
    assert decode(wire + filler) == objects
    assert strip_filler(wire + filler) == wire
    for obj in objects:
        if obj.constructed:
            assert b"".join(c.encode() for c in obj.children) == obj.value


@given(tags(constructed=True), st.lists(trees, max_size=4))
def test_property_build_children(tag: int, children: list[TLV]) -> None:
    """TLV.build(tag, children).children == children."""
    built = TLV.build(tag, children)
    assert built.children == children
    assert decode_one(built.encode()) == (built, len(built.encode()))


@given(st.binary(max_size=200))
def test_property_random_bytes_only_tlv_error(data: bytes) -> None:
    """Any bytes: decode succeeds (objects + filler) or raises TLVError, never anything else."""
    try:
        objects = decode(data)
    except TLVError:
        return
    kept = strip_filler(data)
    assert data.startswith(kept)
    rest = data[len(kept) :]
    assert rest == b"" or (rest[0] in b"\xff\x00" and rest == bytes([rest[0]]) * len(rest))
    assert len(b"".join(o.encode() for o in objects)) <= len(kept)

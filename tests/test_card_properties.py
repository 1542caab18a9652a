"""Property-based tests of the card's dispatcher (hypothesis), issue 2:
- any bytes in → a well-formed response with a status word the spec allows, never an exception;
- random command sequences never raise a retry counter without the correct PIN and never
  return private-key bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_card_status_words import COMMON, JPKI, SURFACE, TEXT, sel, verify

# jpki-card.md 5: what the card may answer. 61xx, 6Cxx, 6282 and 6300 are excluded on purpose.
ALLOWED = {
    0x9000, 0x66F1, 0x6700, 0x6881, 0x6882, 0x6981, 0x6982, 0x6984, 0x6985, 0x6986, 0x69FC,
    0x6A80, 0x6A82, 0x6A83, 0x6A86, 0x6A88, 0x6B00, 0x6D00, 0x6E00, 0x6F00,
} | {0x63C0 | n for n in range(16)}

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def cards():
    from tests.conftest import ISSUED_AT
    from workbench.lifecycle import create_card
    from workbench.pki import Authority

    authority = Authority(seed=b"tests")
    return {p: create_card(p, seed=11, authority=authority, issued_at=ISSUED_AT) for p in ("icc", "gpse")}


def _well_formed(rsp: bytes) -> int:
    assert isinstance(rsp, bytes) and len(rsp) >= 2
    sw = int.from_bytes(rsp[-2:], "big")
    assert sw in ALLOWED, f"SW {sw:04X} not allowed"
    if sw != 0x9000:
        assert len(rsp) == 2, "an error SW carries no data"
    return sw


@SETTINGS
@given(raw=st.binary(min_size=0, max_size=300), profile=st.sampled_from(["icc", "gpse"]))
def test_any_bytes_give_a_well_formed_answer(cards, raw, profile):
    _well_formed(cards[profile].transmit(raw))


HEADER = st.tuples(
    st.sampled_from([0x00, 0x80, 0x0C, 0x01, 0x84, 0x40, 0x10]),
    st.sampled_from([0xA4, 0xB0, 0xB2, 0x20, 0x24, 0x2A, 0x84, 0x88, 0xCA, 0xAE, 0xA2, 0x32, 0xFC, 0x00]),
    st.integers(0, 255),
    st.integers(0, 255),
)


@SETTINGS
@given(header=HEADER, data=st.binary(max_size=260), le=st.one_of(st.none(), st.integers(1, 300)),
       profile=st.sampled_from(["icc", "gpse"]), ap=st.sampled_from([JPKI, TEXT, SURFACE, COMMON, None]))
def test_structured_commands_give_a_well_formed_answer(cards, header, data, le, profile, ap):
    from workbench.apdu import CommandAPDU

    card = cards[profile]
    card.reset()
    if ap:
        card.transmit(bytes.fromhex(ap))
    cla, ins, p1, p2 = header
    raw = CommandAPDU(cla, ins, p1, p2, data, le).to_bytes()
    _well_formed(card.transmit(raw))


WRONG = ["0000", "9999", "ABCDEF1", "WRONG1", "1", ""]
STEPS = st.lists(
    st.one_of(
        st.sampled_from([JPKI, TEXT, COMMON, SURFACE]),
        st.sampled_from([sel(f) for f in (0x0001, 0x000A, 0x0011, 0x0012, 0x0014, 0x0017, 0x0018, 0x001A, 0x001B, 0x001C)]),
        st.sampled_from(WRONG).map(lambda v: verify(v) if v else "00200080"),
        st.sampled_from(["00B0000000", "00B0010000", "00B08A0000", "00B0000004"]),
        st.sampled_from(["802A00802233" + "00" * 0x21 + "00", "802A0097" + "0401020304" + "00", "00880099040102030400"]),
        st.sampled_from(["0024018004" + "39393939", "8032008004" + "39393939", "00A40000", "reset"]),
    ),
    max_size=40,
)


@SETTINGS
@given(steps=STEPS, profile=st.sampled_from(["icc", "gpse"]))
def test_no_counter_rises_without_the_pin_and_no_key_leaks(cards, steps, profile):
    card = cards[profile]
    for name in card.pin_status():  # fresh counters for each example (out of band)
        card.reset_pin(name)
    secrets = []
    for aid, app in card.files.items():
        for fid, obj in app.objects.items():
            if obj.kind == "key" and obj.usage != "none":
                pn = card.hazmat_private_key(aid, fid).private_numbers()
                secrets += [pn.p.to_bytes(128, "big")[:32], pn.d.to_bytes(256, "big")[:32]]
    before = card.pin_status()
    card.reset()
    for step in steps:
        rsp = card.reset() if step == "reset" else card.transmit(bytes.fromhex(step))
        if step != "reset":
            _well_formed(rsp)
            assert not any(s in rsp for s in secrets)
        now = card.pin_status()
        for name, left in now.items():
            assert left <= before[name], f"{name} counter rose from {before[name]} to {left}"
        before = now

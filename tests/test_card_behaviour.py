"""Behaviour of the virtual card beyond single status words: reads, security state, signing,
the icc / gpse differences (jpki-card.md 2.3, 3, 4, 8)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.conftest import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN
from tests.test_card_status_words import JPKI, TEXT, V_AUTH, V_SIGN, V_TEXT, sel, verify
from workbench import tlv
from workbench.card import constants as c


def tx(card, *hexes: str) -> bytes:
    rsp = b""
    for h in hexes:
        rsp = card.transmit(bytes.fromhex(h))
    return rsp


def ok(rsp: bytes) -> bytes:
    assert rsp[-2:] == b"\x90\x00", rsp[-2:].hex()
    return rsp[:-2]


def test_token_info_is_160_bytes_with_label(make_card, profile):
    """3.2: EF 0006 is 160 bytes, label space-padded; icc JPKIAPICCTOKEN2, gpse JPKIAPGPSETOKEN."""
    card = make_card(profile)
    data = ok(tx(card, JPKI, sel(c.EF_TOKEN_INFO), "00B0000000"))
    assert len(data) == 160
    want = "JPKIAPICCTOKEN2" if profile == "icc" else "JPKIAPGPSETOKEN"
    assert data[:32] == want.encode().ljust(32, b" ")


@pytest.mark.parametrize("header", [4, 7, 256])
def test_certificate_reads_like_real_readers(make_card, header):
    """4.1: header read of 4, 7 or 256 bytes, chunks ≤ 256, short read at the end with 9000,
    filler after the DER object."""
    card = make_card("icc")
    der = card.certificates()["auth"].public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER)
    head = ok(tx(card, JPKI, sel(c.EF_AUTH_CERT), f"00B00000{header:02X}"[:10] if header < 256 else "00B0000000"))
    assert len(head) == header
    assert head[:2] == b"\x30\x82"
    total = int.from_bytes(head[2:4], "big") + 4
    assert total == len(der)
    data = bytearray(head[: min(header, total)])
    while len(data) < total:
        n = min(256, total - len(data))
        chunk = ok(card.transmit(bytes([0, 0xB0, len(data) >> 8, len(data) & 0xFF, n & 0xFF])))
        assert len(chunk) == n
        data += chunk
    assert bytes(data) == der
    # reading past the DER object returns the FF filler (EF capacity rounded up to 256)
    size = -(-total // 256) * 256
    if size > total:
        tail = ok(card.transmit(bytes([0, 0xB0, total >> 8, total & 0xFF, 0])))
        assert tail == b"\xff" * (size - total)  # short read at the end, 9000


def test_security_state_persists_across_ef_selection(make_card, profile):
    """2.3: VERIFY, select another EF, come back: still verified."""
    card = make_card(profile)
    ok(tx(card, JPKI, sel(c.PIN_SIGN), V_SIGN, sel(c.EF_SIGN_CA_CERT), sel(c.EF_SIGN_CERT), "00B0000004"))


@pytest.mark.parametrize("how", ["reselect", "other-ap", "reset", "power-off"])
def test_security_state_cleared(make_card, how):
    """2.3: reselecting the AP (the clients' logout), selecting any AP by name, a warm reset
    and power-off clear the verified state."""
    card = make_card("icc")
    ok(tx(card, JPKI, sel(c.PIN_SIGN), V_SIGN))
    if how == "reselect":
        ok(tx(card, JPKI))
    elif how == "other-ap":
        ok(tx(card, TEXT, JPKI))
    elif how == "reset":
        card.reset()
        ok(tx(card, JPKI))
    else:
        card.power_off()
        card.power_on()
        ok(tx(card, JPKI))
    assert tx(card, sel(c.EF_SIGN_CERT), "00B0000004")[-2:] == b"\x69\x82"


def test_failed_verify_clears_that_key(make_card):
    """2.3 MODEL: a failed VERIFY clears the verified state of that key reference."""
    card = make_card("icc")
    ok(tx(card, JPKI, sel(c.PIN_SIGN), V_SIGN))
    assert tx(card, verify("WRONG9"))[-2:] == b"\x63\xc4"
    assert tx(card, sel(c.EF_SIGN_CERT), "00B0000004")[-2:] == b"\x69\x82"


@pytest.mark.parametrize("which", ["auth", "sign"])
def test_signature_verifies_with_certificate_key(make_card, profile, which):
    """4.5: 80 2A 00 80 over a DigestInfo gives a PKCS#1 v1.5 signature that verifies with the
    public key of the certificate on the card; the certificate chains to the card's CA cert."""
    card = make_card(profile)
    pin_fid, key_fid, v = (c.PIN_AUTH, c.KEY_AUTH, V_AUTH) if which == "auth" else (c.PIN_SIGN, c.KEY_SIGN, V_SIGN)
    digest = hashlib.sha256(b"login challenge").digest()
    di = c.SHA256_DIGEST_INFO_PREFIX + digest
    sig = ok(tx(card, JPKI, sel(pin_fid), v, sel(key_fid), f"802A0080{len(di):02X}{di.hex()}00"))
    assert len(sig) == 256
    certs = card.certificates()
    certs[which].public_key().verify(sig, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    certs[which].verify_directly_issued_by(certs[f"{which}_ca"])


@pytest.mark.parametrize("p1", [0x01, 0x02, 0x03, 0x04, 0x05])
def test_signature_p1_variants(make_card, p1):
    """4.5 optional P1 01-05 ([U] MCARD): bare hash, hash wrapped, message, PSS over hash/message."""
    card = make_card("icc")
    msg = b"message to sign"
    h = hashlib.sha256(msg).digest()
    data = msg if p1 in (0x01, 0x03, 0x05) else h
    sig = ok(tx(card, JPKI, sel(c.PIN_AUTH), V_AUTH, sel(c.KEY_AUTH), f"802A{p1:02X}80{len(data):02X}{data.hex()}00"))
    pub = card.certificates()["auth"].public_key()
    if p1 == 0x01:  # type-01 padding of the bare hash: recover it with the public exponent
        n = pub.public_numbers()
        em = pow(int.from_bytes(sig, "big"), n.e, n.n).to_bytes(256, "big")
        assert em.startswith(b"\x00\x01\xff") and em.endswith(b"\x00" + h)
    elif p1 in (0x02, 0x03):
        pub.verify(sig, h, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        pub.verify(sig, h, padding.PSS(padding.MGF1(hashes.SHA256()), 32), Prehashed(hashes.SHA256()))


def test_raw_digestinfo_path_matches_openssl(make_card):
    """4.5: P1=00 over a DigestInfo is the standard PKCS#1 v1.5 signature, and over bytes that
    are no known DigestInfo the card pads them itself (type 01). Both are checked with the
    certificate's public key only, independent of the card's own code."""
    card = make_card("icc")
    pub = card.certificates()["auth"].public_key()
    digest = bytes(range(32))
    di = c.SHA256_DIGEST_INFO_PREFIX + digest
    sig = ok(tx(card, JPKI, sel(c.PIN_AUTH), V_AUTH, sel(c.KEY_AUTH), f"802A0080{len(di):02X}{di.hex()}00"))
    pub.verify(sig, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    odd = b"not a DigestInfo, just bytes"
    sig = ok(tx(card, f"802A0080{len(odd):02X}{odd.hex()}00"))
    n = pub.public_numbers()
    em = pow(int.from_bytes(sig, "big"), n.e, n.n).to_bytes(256, "big")
    assert em == b"\x00\x01" + b"\xff" * (256 - 3 - len(odd)) + b"\x00" + odd


def test_text_ap_layouts(make_card):
    """3.3: EF 0001 = FF 10 0C + 12 digits + FF FF (17 bytes); EF 0002 offsets point at DF22..DF25;
    EF 0003 hashes match; EF 0004 is a 568-byte 7F21 CV certificate."""
    card = make_card("icc")
    holder = card.meta["holder"]
    number = ok(tx(card, TEXT, sel(c.PIN_TEXT), V_TEXT, sel(c.EF_TEXT_MY_NUMBER), "00B0000000"))
    assert number == b"\xff\x10\x0c" + holder["individual_number"].encode() + b"\xff\xff"
    basic_raw = ok(tx(card, sel(c.EF_TEXT_BASIC_FOUR), "00B0000000"))
    obj = tlv.decode_one(basic_raw)[0]
    table = obj.children[0]
    assert table.tag == 0xDF21 and len(table.value) == 8
    for i, tag in enumerate((0xDF22, 0xDF23, 0xDF24, 0xDF25)):
        off = int.from_bytes(table.value[2 * i : 2 * i + 2], "big")
        assert basic_raw[off : off + 2] == tag.to_bytes(2, "big")
    name = obj.find(0xDF22).value.decode()
    assert name == f"{holder['family_name']}\u3000{holder['given_name']}"
    integrity = ok(tx(card, sel(c.EF_TEXT_SIGNATURE), "00B0000000")) + ok(tx(card, "00B0010000"))
    assert len(integrity) == 336 and integrity[:5] == bytes.fromhex("FF3082014B")
    rec = tlv.decode_one(integrity)[0]
    assert rec.find(0xDF31).value == hashlib.sha256(number).digest()
    assert rec.find(0xDF32).value == hashlib.sha256(b"".join(t.encode() for t in obj.children[1:])).digest()
    cv = ok(tx(card, sel(c.EF_TEXT_CV_CERT), "00B0000000")) + ok(tx(card, "00B0010000")) + ok(tx(card, "00B0020000"))
    assert len(cv) == 568 and cv[:5] == bytes.fromhex("7F21820233")


def test_collation_numbers_open_their_efs(make_card):
    """3.3: 照合番号A (individual number) opens EF 0001 but not 0002; 照合番号B opens 0002 but not 0001."""
    card = make_card("icc")
    holder = card.holder
    number_a = holder.individual_number
    number_b = holder.era_yymmdd() + card.meta["card_expiry"][:4] + holder.security_code
    ok(tx(card, TEXT, sel(c.PIN_TEXT_NUMBER_A), verify(number_a), sel(c.EF_TEXT_MY_NUMBER), "00B0000011"))
    assert tx(card, sel(c.EF_TEXT_BASIC_FOUR), "00B0000004")[-2:] == b"\x69\x82"
    ok(tx(card, TEXT, sel(c.PIN_TEXT_NUMBER_B), verify(number_b), sel(c.EF_TEXT_BASIC_FOUR), "00B0000004"))
    assert tx(card, sel(c.EF_TEXT_MY_NUMBER), "00B0000004")[-2:] == b"\x69\x82"


def test_under_15_has_no_signing_certificate(make_card):
    """3.1: EF 0008 first byte 00 when there is no signing certificate (holders under 15)."""
    from datetime import date

    from workbench.pki import synthetic_holder

    child = synthetic_holder(3, birth_date=date(2015, 6, 1))
    card = make_card("icc", holder=child)
    assert ok(tx(card, JPKI, sel(c.EF_CERT_PRESENCE), "00B0000003")) == b"\x00\x8f\x00"
    assert tx(card, sel(c.EF_SIGN_CERT))[-2:] == b"\x6a\x82"
    assert "sign" not in card.certificates()


def test_atr_profiles(make_card):
    """7: MODEL defaults — contact ATR for the card, a synthetic ATR for the phone token."""
    assert make_card("icc").power_on() == c.ATR_CONTACT
    assert make_card("icc", atr="contactless").power_on() == c.ATR_CONTACTLESS
    token_atr = make_card("gpse").power_on()
    assert token_atr not in (c.ATR_CONTACT, c.ATR_CONTACTLESS)
    from functools import reduce

    assert reduce(lambda a, b: a ^ b, token_atr[1:]) == 0  # TCK checks


def test_bad_pins_rejected_at_issuance(make_card):
    """6: the card refuses to be issued with PINs that break the rules (one-line typed error)."""
    from workbench.errors import PinFormatError

    for kw in ({"auth_pin": "12a4"}, {"auth_pin": "123"}, {"sign_password": "abcdef"},
               {"sign_password": "123456"}, {"sign_password": "A1" * 9}):
        with pytest.raises(PinFormatError) as err:
            make_card("icc", **kw)
        value = next(iter(kw.values()))
        assert value not in str(err.value) and value.upper() not in str(err.value)
    assert make_card("icc", sign_password="abc123").pin_status()["sign"] == 5  # uppercased


def test_office_reset(make_card):
    """6 MODEL: the out-of-band reset brings a blocked PIN back and can set a new value."""
    card = make_card("icc")
    tx(card, JPKI, sel(c.PIN_AUTH), *[verify("0000")] * 3)
    assert card.pin_status()["auth"] == 0
    card.reset_pin("auth", "4321")
    ok(tx(card, JPKI, sel(c.PIN_AUTH), verify("4321")))
    assert card.pin_status()["auth"] == 3


def test_repr_shows_no_secret(make_card):
    card = make_card("icc")
    text = repr(card) + repr(card.meta) + repr(dict(card.files))
    assert AUTH_PIN not in repr(card) and SIGN_PASSWORD not in text and TEXT_PIN not in text

"""The JPKI applet inside the secure element, the way the service drives it
(smartphone-service.md 15.2 C3-C11, 15.4-15.7; jpki-card.md 8 for the gpse token it becomes).

Every check goes through APDUs (hand-written hex, SCP03-wrapped by the host helper of
tests/test_se_element.py) and is compared with values computed here: public keys with
pyca/cryptography from the key the SE holds (taken out of band with ``hazmat_private_key``),
signatures verified with the certificate read back with READ BINARY.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.test_se_element import (
    AUTH_PIN,
    DELETE,
    INSTALL,
    JPKI,
    LOCK,
    PERSO,
    PERSONALISED,
    SIGN_PASSWORD,
    SSD,
    UNLOCK,
    Host,
    apdu,
    certificate_for,
    dgi,
    leaks,
    make_se,
    new_se,
    personalise,
    private_windows,
    read_public_key,
    sel_ef,
    select,
    set_pin,
    store_blocks,
    sw_of,
    verify,
)

JPKI_AID = bytes.fromhex(JPKI)
KEY_AUTH, KEY_SIGN = 0x0017, 0x001A  # jpki-card.md 3.1
PIN_AUTH, PIN_SIGN = 0x0018, 0x001B


def digest_info(message: bytes) -> bytes:
    """DER DigestInfo for SHA-256 (RFC 8017 9.2 note 1) over ``message``."""
    return bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(
        message).digest()


def sign_apdu(message: bytes, cla: int = 0x80) -> str:
    return f"{cla:02X}" + apdu("2A0080", digest_info(message).hex(), "00")


def tx(se, hex_command: str) -> bytes:
    return se.transmit(bytes.fromhex(hex_command))


def sign_with(se, key_fid: int, pin_fid: int, value: str, message: bytes) -> bytes:
    """SELECT AP, SELECT PIN, VERIFY, SELECT key, 80 2A (jpki-card.md 4.7;
    smartphone-service.md 15.3)."""
    for step in (select(JPKI), sel_ef(pin_fid), verify(value), sel_ef(key_fid)):
        assert sw_of(tx(se, step)) == "9000", step
    answer = tx(se, sign_apdu(message))
    assert sw_of(answer) == "9000"
    return answer[:-2]


def read_certificate(se, fid: int, pin_fid: int | None = None, value: str = "") -> bytes:
    """READ BINARY the DER certificate in EF ``fid`` (jpki-card.md 4.1): 4-byte header for the
    length, then chunks of up to 256 bytes."""
    steps = [select(JPKI)]
    if pin_fid is not None:
        steps += [sel_ef(pin_fid), verify(value)]
    for step in [*steps, sel_ef(fid)]:
        assert sw_of(tx(se, step)) == "9000", step
    head = tx(se, "00B0000004")
    assert sw_of(head) == "9000" and head[:2] == b"\x30\x82"
    total = 4 + int.from_bytes(head[2:4], "big")
    out = b""
    while len(out) < total:
        n = min(256, total - len(out))
        answer = tx(se, f"00B0{len(out):04X}{n % 256:02X}")
        assert sw_of(answer) == "9000"
        out += answer[:-2]
    return out[:total]


def public_der(se, fid: int) -> bytes:
    key = se.hazmat_private_key(JPKI_AID, fid)
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)


# --- C4-C10: created by INSTALL, keys made inside, certificates written ----------------------


def test_install_creates_a_selectable_instance_without_keys_or_certificates():
    """15.2 C4: INSTALL [for install and make selectable] -> 07 SELECTABLE, PINs not set,
    no key and no certificate yet."""
    se = new_se()
    host = Host(se)
    assert host.open() == "9000"
    data, sw = host.w(INSTALL)
    assert (data, sw) == (b"\x00", "9000")  # 5.3: the answer is one byte 00
    entry = next(e for e in se.registry if e.aid == JPKI_AID)
    assert entry.life_cycle == 0x07
    assert se.certificates() == {}
    with pytest.raises(Exception, match="no private key"):
        se.hazmat_private_key(JPKI_AID, KEY_AUTH)
    assert sw_of(tx(se, select(JPKI))) == "9000"


@pytest.mark.parametrize("level", [0x33, 0x03])
def test_key_generation_answers_only_the_public_key(level):
    """15.2 C6-C7, jpki-card.md 9.1, smartphone-service.md 14 item 2: DGI A017/A01A make the key
    pairs in the SE; the answer (read in chunks with A117/A11A) is exactly the DER
    RSAPublicKey of the key the SE holds, RSA-2048, e = 65537. At level 03 (no R-ENC) the
    answers on the wire are checked too."""
    se = new_se()
    host = Host(se)
    done = personalise(se, level=level, host=host)
    assert done.auth_public == public_der(se, KEY_AUTH)
    assert done.sign_public == public_der(se, KEY_SIGN)
    assert done.auth_public != done.sign_public
    for fid in (KEY_AUTH, KEY_SIGN):
        numbers = se.hazmat_private_key(JPKI_AID, fid).private_numbers().public_numbers
        assert numbers.e == 65537 and numbers.n.bit_length() == 2048
    windows = private_windows(se)
    assert windows
    assert not any(leaks(a, windows) for a in done.answers)  # plaintext answers
    assert not any(leaks(answer, windows) for _, answer in host.log)  # the wire
    if level == 0x03:  # no response encryption: the public key crosses the relay in clear
        assert any(done.auth_public[:64] in answer for _, answer in host.log)


def test_certificates_span_several_store_data_blocks_and_read_back():
    """15.2 C9: DGIs 000A, 0001, 000B, 0002, 0006, 0008 in one sequence, cut in 180-byte
    blocks (each certificate crosses block borders; DGI lengths in the FF-form, 5.5), the
    last with P1 88. READ BINARY gives back the same bytes (000A behind the auth PIN on the
    gpse token, jpki-card.md 8)."""
    se = new_se()
    host = Host(se)
    done = personalise(se, host=host)
    store_data = [c for c, _ in host.log if c[1] == 0xE2]
    assert len(store_data) >= 8  # 2 x key generation (+ chunks) and >= 5 certificate blocks
    assert read_certificate(se, 0x000A, PIN_AUTH, AUTH_PIN) == done.auth_cert
    assert read_certificate(se, 0x0001, PIN_SIGN, SIGN_PASSWORD) == done.sign_cert
    assert sw_of(tx(se, select(JPKI))) == "9000"
    assert sw_of(tx(se, sel_ef(0x000A))) == "9000"
    assert sw_of(tx(se, "00B0000004")) == "6982"  # gpse: 000A needs VERIFY 0018 first
    for fid in (0x000B, 0x0002):
        assert x509.load_der_x509_certificate(read_certificate(se, fid))
    for step in (select(JPKI), sel_ef(0x0008)):
        assert sw_of(tx(se, step)) == "9000"
    assert tx(se, "00B0000003") == bytes.fromhex("8F8F00") + b"\x90\x00"
    assert sw_of(tx(se, sel_ef(0x0006))) == "9000"
    assert b"JPKIAPGPSETOKEN" in tx(se, "00B0000000")
    assert {k: c.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)
            for k, c in se.certificates().items() if k in ("auth", "sign")} == {
        "auth": done.auth_public, "sign": done.sign_public}


def test_issued_phone_token_signs_with_the_key_its_certificate_names(make_card):
    """The real issuance (create_card("gpse"), smartphone-service.md 15.2 via the TSM): the
    certificates the authority wrote carry the public keys of the keys inside the SE, and a
    signature made by the applet verifies with each certificate."""
    se = make_card("gpse")
    for name, key_fid, pin_fid, value in (("auth", KEY_AUTH, PIN_AUTH, AUTH_PIN),
                                          ("sign", KEY_SIGN, PIN_SIGN, SIGN_PASSWORD)):
        cert = x509.load_der_x509_certificate(
            read_certificate(se, {"auth": 0x000A, "sign": 0x0001}[name], pin_fid, value))
        assert cert.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1) == public_der(
            se, key_fid)
        se.reset()
        signature = sign_with(se, key_fid, pin_fid, value, b"phone token " + name.encode())
        cert.public_key().verify(signature, b"phone token " + name.encode(), padding.PKCS1v15(),
                                 hashes.SHA256())


def test_set_status_0f_is_recorded():
    se = make_se("personalised")
    assert next(e for e in se.registry if e.aid == JPKI_AID).life_cycle == 0x0F


# --- C10-C11: PINs not set until the app registers them --------------------------------------


def test_until_the_pins_are_set_verify_and_signing_answer_6985():
    """15.2 C10: applet ready but PINs not set: VERIFY 69 85 (MODEL) and 80 2A 69 85."""
    se = make_se("unset")
    for step in (select(JPKI), sel_ef(PIN_AUTH)):
        assert sw_of(tx(se, step)) == "9000"
    assert sw_of(tx(se, verify(AUTH_PIN))) == "6985"
    assert sw_of(tx(se, sel_ef(KEY_AUTH))) == "9000"
    assert sw_of(tx(se, sign_apdu(b"x"))) == "6985"
    assert sw_of(tx(se, apdu("802A009A", digest_info(b"x").hex(), "00"))) == "6985"


@pytest.mark.parametrize("p2,good,bad", [("98", "1234", "123"), ("98", "1234", "12A4"),
                                         ("9B", "ABC123", "ABCDEF"), ("9B", "ABC123", "AB1")])
def test_reset_retry_counter_sets_each_pin_exactly_once(p2, good, bad):
    """15.2 C11: 00 2C 02 98 / 9B sets a PIN that is not set, once; a malformed value is 6A80
    (jpki-card.md 6: 4 digits; 6-16 letters and digits with both); a second one is 69 85."""
    se = make_se("unset")
    assert sw_of(tx(se, select(JPKI))) == "9000"
    assert sw_of(tx(se, set_pin(p2, bad))) == "6A80"
    assert sw_of(tx(se, set_pin(p2, good))) == "9000"
    assert sw_of(tx(se, set_pin(p2, good))) == "6985"
    assert sw_of(tx(se, set_pin(p2, "9999" if p2 == "98" else "ZZZ999"))) == "6985"
    fid = PIN_AUTH if p2 == "98" else PIN_SIGN
    assert sw_of(tx(se, sel_ef(fid))) == "9000"
    assert sw_of(tx(se, verify(good))) == "9000"


def test_pins_set_then_signing_works():
    se = make_se("personalised")
    cert = x509.load_der_x509_certificate(read_certificate(se, 0x000A, PIN_AUTH, AUTH_PIN))
    se.reset()
    signature = sign_with(se, KEY_AUTH, PIN_AUTH, AUTH_PIN, b"login")
    cert.public_key().verify(signature, b"login", padding.PKCS1v15(), hashes.SHA256())


def _tsm_store(se, stream: bytes, level: int = 0x33) -> Host:
    host = Host(se)
    assert host.open("ssd", level) == "9000"
    assert host.w(PERSO)[1] == "9000"
    store_blocks(host, stream)
    se.power_on()
    return host


def test_clear_pin_dgi_a0f0_makes_the_pin_settable_again():
    """15.7: STORE DATA DGI A0F0 <FID>: PIN back to "not set", counter at its maximum; then
    RESET RETRY COUNTER works again; keys and certificates stay."""
    se = make_se("personalised")
    keys = (public_der(se, KEY_AUTH), public_der(se, KEY_SIGN))
    certs = {k: c.serial_number for k, c in se.certificates().items()}
    for step in (select(JPKI), sel_ef(PIN_AUTH), verify("0000")):
        tx(se, step)
    assert se.pin_status()["auth"] == 2
    _tsm_store(se, dgi(0xA0F0, b"\x00\x18"))
    assert se.pin_status()["auth"] == 3
    for step, want in ((select(JPKI), "9000"), (sel_ef(PIN_AUTH), "9000"),
                       (verify(AUTH_PIN), "6985"), (set_pin("98", "4321"), "9000"),
                       (verify("4321"), "9000"), (set_pin("98", "1111"), "6985")):
        assert sw_of(tx(se, step)) == want, step
    # the sign password was not touched
    assert sw_of(tx(se, sel_ef(PIN_SIGN))) == "9000"
    assert sw_of(tx(se, verify(SIGN_PASSWORD))) == "9000"
    assert (public_der(se, KEY_AUTH), public_der(se, KEY_SIGN)) == keys
    assert {k: c.serial_number for k, c in se.certificates().items()} == certs


# --- 15.4-15.6: lock, unlock, re-personalise, delete ----------------------------------------


def test_lock_makes_the_aid_unselectable_and_unlock_restores_everything():
    """15.4 S3 and 15.5 R3: SET STATUS 80 -> 8F, SELECT 6A82; SET STATUS 00 -> 0F with keys,
    certificates and retry counters unchanged: a signature verifies with the same
    certificate."""
    se = make_se("personalised")
    cert_der = read_certificate(se, 0x0001, PIN_SIGN, SIGN_PASSWORD)
    for step in (select(JPKI), sel_ef(PIN_AUTH), verify("0000")):
        tx(se, step)
    before = (public_der(se, KEY_AUTH), public_der(se, KEY_SIGN), se.pin_status(),
              {k: c.serial_number for k, c in se.certificates().items()})
    host = Host(se)
    assert host.open() == "9000" and host.w(LOCK)[1] == "9000"
    assert next(e for e in se.registry if e.aid == JPKI_AID).life_cycle == 0x8F
    assert sw_of(tx(se, select(JPKI))) == "6A82"
    assert sw_of(tx(se, select(JPKI, p2="04"))) == "6A82"
    # a reader that does not SELECT first does not reach it either (jpki-card.md 2.2 routing)
    se.reset()
    assert sw_of(tx(se, verify(AUTH_PIN, "98"))) != "9000"
    assert host.open() == "9000" and host.w(UNLOCK)[1] == "9000"
    assert next(e for e in se.registry if e.aid == JPKI_AID).life_cycle == 0x0F
    after = (public_der(se, KEY_AUTH), public_der(se, KEY_SIGN), se.pin_status(),
             {k: c.serial_number for k, c in se.certificates().items()})
    assert after == before and before[2]["auth"] == 2
    se.reset()
    signature = sign_with(se, KEY_SIGN, PIN_SIGN, SIGN_PASSWORD, b"revocation request")
    x509.load_der_x509_certificate(cert_der).public_key().verify(
        signature, b"revocation request", padding.PKCS1v15(), hashes.SHA256())


def test_lock_stops_a_channel_that_has_the_applet_selected():
    """3: a LOCKED application is not selectable; one selected on an OMAPI channel stops
    answering as soon as the TSM locks it (VERIFY state gone)."""
    se = make_se("personalised")
    assert tx(se, "0070000001").hex() == "019000"
    for step in (select(JPKI, channel=1), "01A4020C020018", "01" + verify(AUTH_PIN)[2:],
                 "01A4020C020017"):
        assert sw_of(tx(se, step)) == "9000", step
    host = Host(se)
    assert host.open() == "9000" and host.w(LOCK)[1] == "9000"
    assert sw_of(tx(se, "81" + sign_apdu(b"x")[2:])) != "9000"


def test_release_re_personalises_the_signing_key_only():
    """15.5 R3-R4: unlock, INSTALL [for personalization], DGI A01A (a new signing key pair),
    0001 (its certificate) in one sequence; the auth key and both PINs are unchanged."""
    se = make_se("personalised")
    auth_before, sign_before = public_der(se, KEY_AUTH), public_der(se, KEY_SIGN)
    host = Host(se)
    assert host.open() == "9000"
    for step in (LOCK, UNLOCK, PERSO):
        assert host.w(step)[1] == "9000", step
    new_der, _ = read_public_key(host, 0xA01A, 0xA11A)
    assert new_der != sign_before
    cert = certificate_for(new_der, "phone sign (re-issued)")
    store_blocks(host, dgi(0x0001, cert), first_block=host.perso_block)
    assert public_der(se, KEY_SIGN) == new_der
    assert public_der(se, KEY_AUTH) == auth_before
    se.reset()
    signature = sign_with(se, KEY_SIGN, PIN_SIGN, SIGN_PASSWORD, b"after release")
    x509.load_der_x509_certificate(cert).public_key().verify(
        signature, b"after release", padding.PKCS1v15(), hashes.SHA256())


def test_delete_removes_instance_keys_and_certificates(tmp_path):
    """15.6, globalplatform.md 5.6: DELETE removes the instance with its keys and
    certificates: SELECT 6A82, no certificate, and the image file holds no row of it."""
    se = make_se("personalised")
    path = tmp_path / "phone.se"
    se.save(path)
    host = Host(se)
    assert host.open() == "9000"
    assert host.w(DELETE) == (b"\x00", "9000")
    assert sw_of(tx(se, select(JPKI))) == "6A82"
    assert se.certificates() == {} and se.jpki is None
    assert all(e.aid != JPKI_AID for e in se.registry)
    with pytest.raises(Exception, match="not installed"):
        se.hazmat_private_key(JPKI_AID, KEY_AUTH)
    se.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM nodes WHERE aid = ?", (JPKI,)).fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM applets").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM registry WHERE aid = ?",
                            (JPKI,)).fetchone() == (0,)
    finally:
        conn.close()
    from workbench.se import SecureElement

    with SecureElement.load(path) as again:
        assert again.jpki is None and again.certificates() == {}


def test_delete_then_install_starts_from_nothing():
    """15.2 C3: after DELETE, a new INSTALL gives an instance with PINs not set and no keys."""
    se = make_se("personalised")
    host = Host(se)
    assert host.open() == "9000"
    assert host.w(DELETE)[1] == "9000" and host.w(INSTALL)[1] == "9000"
    assert se.certificates() == {}
    for step in (select(JPKI), sel_ef(PIN_AUTH)):
        assert sw_of(tx(se, step)) == "9000"
    assert sw_of(tx(se, verify(AUTH_PIN))) == "6985"
    assert sw_of(tx(se, set_pin("98", "4321"))) == "9000"


# --- logical channels -----------------------------------------------------------------------


def test_channels_one_and_two_keep_separate_security_states():
    """globalplatform.md 9, OMAPI: the applet selected on channels 1 and 2 at once; VERIFY on
    channel 1 opens signing on channel 1 only."""
    se = make_se("personalised")
    assert tx(se, "0070000001").hex() == "019000"
    assert tx(se, "0070000001").hex() == "029000"
    for ch in (1, 2):
        assert sw_of(tx(se, select(JPKI, channel=ch))) == "9000"
    for step in ("01A4020C020018", "01" + verify(AUTH_PIN)[2:], "01A4020C020017",
                 "02A4020C020017"):
        assert sw_of(tx(se, step)) == "9000", step
    assert sw_of(tx(se, "82" + sign_apdu(b"x")[2:])) == "6982"
    assert sw_of(tx(se, "81" + sign_apdu(b"x")[2:])) == "9000"
    # and the basic channel has nothing verified either
    for step in (select(JPKI), sel_ef(KEY_AUTH)):
        assert sw_of(tx(se, step)) == "9000"
    assert sw_of(tx(se, sign_apdu(b"x"))) == "6982"
    # the retry counter is one for all channels: a wrong try on 2 shows on 1
    assert sw_of(tx(se, "02A4020C020018")) == "9000"
    assert tx(se, "02" + verify("0000")[2:]).hex().upper() == "63C2"
    assert tx(se, "01200098").hex().upper() == "63C2"  # SFI form: 0018


# --- a personalisation sequence belongs to its session ---------------------------------------


def test_an_abandoned_sequence_is_not_continued_by_the_next_session():
    """5.5: a sequence ends at its last block. One cut off (the session closed by a SELECT,
    6.10) leaves nothing behind: the next session's data is read on its own (no half DGI
    carried over) and a key pair staged by the abandoned sequence is never committed."""
    se = make_se("personalised")
    sign_before = public_der(se, KEY_SIGN)
    host = Host(se)
    assert host.open() == "9000" and host.w(PERSO)[1] == "9000"
    read_public_key(host, 0xA01A, 0xA11A)  # a new signing key staged ...
    half = dgi(0x0006, b"J" * 32)[:8]  # ... and a DGI cut in the middle
    assert host.w(apdu(f"80E208{host.perso_block:02X}", half.hex(), "00"))[1] == "9000"
    assert sw_of(tx(se, select(SSD))) == "9000"  # the session ends here
    host2 = Host(se)
    assert host2.open() == "9000" and host2.w(PERSO)[1] == "9000"
    assert host2.w("80E28800060008038F8F00")[1] == "9000"
    assert public_der(se, KEY_SIGN) == sign_before
    for step in (select(JPKI), sel_ef(0x0008)):
        assert sw_of(tx(se, step)) == "9000"
    assert tx(se, "00B0000003") == bytes.fromhex("8F8F00") + b"\x90\x00"


def test_a_failed_block_drops_the_whole_sequence():
    """5.5: a wrong block number ends the sequence; what its earlier blocks staged is gone."""
    se = make_se("personalised")
    sign_before = public_der(se, KEY_SIGN)
    host = Host(se)
    assert host.open() == "9000" and host.w(PERSO)[1] == "9000"
    read_public_key(host, 0xA01A, 0xA11A)
    assert host.w("80E28807060008038F8F00")[1] == "6A86"
    assert host.w("80E28800060008038F8F00")[1] == "9000"  # a new sequence from block 00
    assert public_der(se, KEY_SIGN) == sign_before


def test_store_data_leaves_the_life_cycle_to_set_status():
    """15.2 C9-C10 order: STORE DATA does not change the registry; SET STATUS does."""
    se = make_se("installed")
    host = Host(se)
    assert host.open() == "9000" and host.w(PERSO)[1] == "9000"
    assert host.w("80E28800060008038F8F00")[1] == "9000"
    assert next(e for e in se.registry if e.aid == JPKI_AID).life_cycle == 0x07
    assert host.w(PERSONALISED)[1] == "9000"
    assert next(e for e in se.registry if e.aid == JPKI_AID).life_cycle == 0x0F

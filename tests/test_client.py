"""Host-side clients over the in-process transport (jpki-card.md 4.7, issue 2 item 6)."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.conftest import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN
from workbench.analysis import TracingTransport
from workbench.client import JpkiClient, TextApClient, TokenType
from workbench.errors import (
    FileNotFoundOnCardError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusError,
    TransportError,
    WorkbenchError,
    WrongPinError,
)
from workbench.transport import Transport, VirtualCardTransport


@pytest.fixture
def session(make_card, profile):
    card = make_card(profile)
    tracer = TracingTransport(VirtualCardTransport(card))
    tracer.connect()
    yield card, tracer, JpkiClient(tracer)
    tracer.disconnect()


def test_transport_protocol(make_card):
    t = VirtualCardTransport(make_card("icc"))
    assert isinstance(t, Transport)
    with pytest.raises(TransportError):
        t.transmit(b"\x00\xa4\x04\x0c")
    assert t.connect()[:1] == b"\x3b"


def test_token_type(session, profile):
    _, _, client = session
    assert client.token_type() == (TokenType.CARD if profile == "icc" else TokenType.ANDROID)


@pytest.mark.parametrize("header", [4, 7, 256])
def test_read_certificates(make_card, profile, header):
    card = make_card(profile)
    with VirtualCardTransport(card) as t:
        client = JpkiClient(t, header_read=header)
        truth = card.certificates()
        assert client.read_certificate("auth_ca") == truth["auth_ca"]
        assert client.read_certificate("sign_ca") == truth["sign_ca"]
        auth_pin = AUTH_PIN if profile == "gpse" else None
        assert client.read_certificate("auth", pin=auth_pin) == truth["auth"]
        assert client.read_certificate("sign", pin=SIGN_PASSWORD) == truth["sign"]
        with pytest.raises(SecurityStatusError):
            client.read_certificate("sign")


def test_read_uses_chunks_of_at_most_256(session):
    card, tracer, client = session
    client.read_certificate("auth_ca")
    reads = [e for e in tracer.exchanges if e.description.startswith("READ BINARY")]
    assert len(reads) >= 3 and all(e.response_length <= 256 for e in reads)
    assert reads[0].response_length == 7


def test_tries_and_typed_errors(session):
    _, _, client = session
    assert client.tries_left("auth") == 3
    assert client.tries_left("sign") == 5
    with pytest.raises(WrongPinError) as err:
        client.verify("auth", "0000")
    assert err.value.tries_left == 2 and err.value.sw == 0x63C2
    client.verify("auth", AUTH_PIN)
    assert client.tries_left("auth") == 3  # back to max, and the query still answers 63Cx
    for _ in range(2):
        with pytest.raises(WrongPinError):
            client.verify("auth", "0000")
    with pytest.raises(PinBlockedError):
        client.verify("auth", "0000")
    with pytest.raises(PinBlockedError, match="municipal office"):
        client.verify("auth", AUTH_PIN)


@pytest.mark.parametrize("key", ["auth", "sign"])
@pytest.mark.parametrize("hash_name", ["sha1", "sha256", "sha384", "sha512"])
def test_sign_and_verify(session, key, hash_name):
    card, _, client = session
    pin = AUTH_PIN if key == "auth" else SIGN_PASSWORD
    sig = client.sign(b"hello JPKI", key=key, pin=pin, hash=hash_name)
    algorithm = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    card.certificates()[key].public_key().verify(sig, b"hello JPKI", padding.PKCS1v15(), algorithm)


def test_sign_needs_pin_and_inputs(session):
    _, _, client = session
    with pytest.raises(SecurityStatusError):
        client.sign(b"x")
    with pytest.raises(WorkbenchError, match="either a message or a digest"):
        client.sign()
    with pytest.raises(WorkbenchError, match="32 bytes"):
        client.sign(digest=b"short", pin=AUTH_PIN)
    with pytest.raises(WorkbenchError, match="unsupported hash"):
        client.sign(b"x", hash="md5", pin=AUTH_PIN)


def test_change_pin(session):
    _, _, client = session
    with pytest.raises(PinFormatError):
        client.change_pin("auth", AUTH_PIN, "12")
    assert client.tries_left("auth") == 3  # format checked before any VERIFY
    client.change_pin("auth", AUTH_PIN, "2468")
    client.select_ap()
    with pytest.raises(WrongPinError):
        client.verify("auth", AUTH_PIN)
    client.verify("auth", "2468")
    client.change_pin("sign", SIGN_PASSWORD.lower(), "newpass99")  # clients uppercase
    client.select_ap()
    client.verify("sign", "NEWPASS99")


def test_text_ap(make_card):
    card = make_card("icc")
    with VirtualCardTransport(card) as t:
        text = TextApClient(t)
        assert text.tries_left() == 3
        basic = text.basic_four(TEXT_PIN)
        holder = card.holder
        assert basic.name == holder.name and basic.address == holder.address
        assert basic.birth_date == holder.birth_date and basic.sex == holder.sex.text_ap_code()
        assert text.individual_number(TEXT_PIN) == holder.individual_number
        assert text.check_integrity(TEXT_PIN)
        with pytest.raises(WrongPinError):
            text.basic_four("0000")


def test_text_ap_absent_on_phone(make_card):
    with VirtualCardTransport(make_card("gpse")) as t, pytest.raises(FileNotFoundOnCardError):
        TextApClient(t).tries_left()


def test_no_pin_in_traces_logs_or_errors(session, caplog):
    _, tracer, client = session
    caplog.set_level(logging.DEBUG)
    client.sign(b"m", pin=AUTH_PIN)
    client.read_certificate("sign", pin=SIGN_PASSWORD)
    try:
        client.verify("sign", "WRONG777")
    except WrongPinError as exc:
        message = str(exc) + repr(exc)
    df = tracer.to_dataframe()
    blob = "\n".join([df.to_string(), repr(tracer.exchanges), caplog.text, message])
    for secret in (AUTH_PIN, SIGN_PASSWORD, "WRONG777"):
        assert secret not in blob
        assert secret.encode().hex() not in blob.lower() and secret.encode().hex().upper() not in blob
    assert "********" in blob

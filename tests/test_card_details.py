"""The card details real readers trip on (jpki-card.md 3.1, 3.3, 3.6, 4.3, 7, 10, 12): each a
rule, and where the sources leave it open, a MODEL option with its default.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN
from tests.test_card_status_words import JPKI, sel, verify
from workbench.analysis import TracingTransport
from workbench.card import constants as c
from workbench.client import JpkiClient, TextApClient
from workbench.errors import WorkbenchError
from workbench.pki import synthetic_holder
from workbench.transport import ReplayTransport, TokenFacts, VirtualCardTransport


def tx(card, *hexes: str) -> bytes:
    rsp = b""
    for h in hexes:
        rsp = card.transmit(bytes.fromhex(h))
    return rsp


# --- GET DATA 5F51 follows the card's own ATR profile (3.6, 7, 12 item 7) --------------------


@pytest.mark.parametrize(("atr", "expected"), [
    ("contact", "DA13FF8131FB468012392F31C173C601C03B"),
    ("juki-listed", "E000FF8131FE4514"),  # the value a real card returned in 5F51 (7)
    ("contactless", "DA13FF8131FB468012392F31C173C601C03B"),  # MODEL: the chip's contact ATR
])
def test_get_data_5f51_is_the_cards_own_contact_atr(make_card, atr, expected):
    card = make_card("icc", atr=atr)
    rsp = tx(card, "00CA5F5100")
    assert rsp[-2:] == b"\x90\x00" and rsp[:-2].hex().upper() == expected
    rsp = tx(card, JPKI, "00CA5F5100")  # also answered with an AP selected (3.6)
    assert rsp[:-2].hex().upper() == expected


# --- the empty VERIFY after a successful VERIFY (4.3, 10 item 3, 12 item 8) -------------------


def test_verified_query_answers_63cx_by_default(make_card):
    card = make_card("icc")
    assert tx(card, JPKI, sel(c.PIN_AUTH), verify(AUTH_PIN), "00200080").hex() == "63c3"


def test_verified_query_9000_option_and_the_client_tolerates_it(make_card):
    card = make_card("icc", verified_query="9000")
    assert tx(card, JPKI, sel(c.PIN_AUTH), "00200080").hex() == "63c3"  # not yet verified
    assert tx(card, verify(AUTH_PIN), "00200080").hex() == "9000"
    assert tx(card, JPKI, sel(c.PIN_AUTH), "00200080").hex() == "63c3"  # re-select = logout
    with VirtualCardTransport(card) as t:
        client = JpkiClient(t)
        assert client.tries_left("auth") == 3
        client.select_ap()
        client.verify("auth", AUTH_PIN)
        client.select_ef(c.PIN_AUTH)
        assert client._query_tries("auth PIN") is None  # verified, count unknown


class RealCardLike:
    """What a PC/SC reader looks like to the client (the last-try guard is on)."""

    is_virtual = False
    pin_guard = None
    token = TokenFacts()

    def __init__(self, inner: VirtualCardTransport) -> None:
        self.inner = inner

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, apdu: bytes) -> bytes:
        return self.inner.transmit(apdu)

    def disconnect(self) -> None:
        self.inner.disconnect()

    def __enter__(self) -> RealCardLike:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


def test_the_guard_accepts_9000_from_a_real_card(make_card):
    """A card that answers 90 00 to the query of a verified PIN does not stop the client from
    verifying again before a signature (jpki-card.md 4.3: clients re-verify every time)."""
    card = make_card("icc", verified_query="9000")
    with RealCardLike(VirtualCardTransport(card)) as t:
        client = JpkiClient(t)
        client.select_ap()
        client.verify("sign", SIGN_PASSWORD)
        client.verify("sign", SIGN_PASSWORD)  # the guard's query answers 9000 here
    assert card.pin_status()["sign"] == 5


def test_model_option_values_are_checked(make_card):
    with pytest.raises(WorkbenchError, match="verified_query"):
        make_card("icc", verified_query="6300")
    with pytest.raises(WorkbenchError, match="under15_sign_pin"):
        make_card("icc", under15_sign_pin="hidden")


# --- a holder under 15: no signing certificate (3.1 EF 0008) -----------------------------------


def _child(make_card, **kw):
    holder = synthetic_holder(31, birth_date=date(2014, 6, 1))  # 10 at ISSUED_AT
    return make_card("icc", holder=holder, **kw)


def test_under_15_has_no_sign_certificate_and_a_blocked_password_object(make_card):
    card = _child(make_card)
    assert tx(card, JPKI, sel(c.EF_CERT_PRESENCE), "00B0000003").hex() == "008f009000"
    assert tx(card, JPKI, sel(c.EF_SIGN_CERT)).hex() == "6a82"
    assert tx(card, JPKI, sel(c.KEY_SIGN)).hex() == "6a82"
    assert tx(card, JPKI, sel(c.PIN_SIGN)).hex() == "9000"
    assert tx(card, "00200080").hex() == "63c0"  # the query PC/SC middleware sends
    assert tx(card, verify(SIGN_PASSWORD)).hex() == "6984"
    assert "sign" not in card.certificates()
    with VirtualCardTransport(card) as t:
        assert JpkiClient(t).read_certificate("auth").subject  # the auth side works


def test_under_15_absent_variant(make_card):
    card = _child(make_card, under15_sign_pin="absent")
    assert tx(card, JPKI, sel(c.PIN_SIGN)).hex() == "6a82"


# --- the text AP's integrity record is checked, signature included (3.3) ----------------------


def _integrity_trace(make_card, tmp_path):
    path = tmp_path / "integrity.jsonl"
    with TracingTransport(VirtualCardTransport(make_card("icc")), path) as tracer:
        assert TextApClient(tracer).check_integrity(TEXT_PIN)
    return path


def _tamper(path, ef_hint: str, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    import json

    records = [json.loads(line) for line in lines]
    reads = [rec for rec in records if rec.get("type") == "exchange"
             and ef_hint in str(rec.get("decoded", {}).get("ef", ""))
             and rec["decoded"].get("instruction") == "READ BINARY"
             and rec["response"].endswith("9000")]
    assert reads, f"no READ BINARY of {ef_hint} in the trace"
    longest = max(reads, key=lambda rec: len(rec["response"]))  # a data chunk, not the header
    longest["response"] = change(longest["response"])
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")


def _flip(hex_response: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(hex_response))
    raw[at] ^= 0x01
    return raw.hex().upper()


def test_check_integrity_refuses_tampered_data(make_card, tmp_path):
    path = _integrity_trace(make_card, tmp_path)
    with ReplayTransport(path) as replay:
        assert TextApClient(replay).check_integrity(TEXT_PIN)  # the untouched recording
    _tamper(path, "基本4情報", lambda r: _flip(r, 40))  # a byte of the name or address
    with ReplayTransport(path) as replay:
        assert not TextApClient(replay).check_integrity(TEXT_PIN)


def test_check_integrity_refuses_a_tampered_signature(make_card, tmp_path):
    path = _integrity_trace(make_card, tmp_path)
    # the integrity record: FF 30 82 01 4B { DF31 20.. DF32 20.. DF33 82 01 00 <signature> }
    _tamper(path, "integrity record", lambda r: _flip(r, 100))
    with ReplayTransport(path) as replay:
        assert not TextApClient(replay).check_integrity(TEXT_PIN)


def test_check_integrity_with_the_authoritys_cv_root(make_card, authority):
    card = make_card("icc")
    root = authority.cv_issuer("root")[1].public_key()
    other = authority.cv_issuer("surface")[1].public_key()
    with VirtualCardTransport(card) as t:
        assert TextApClient(t).check_integrity(TEXT_PIN, cv_root=root)
        assert not TextApClient(t).check_integrity(TEXT_PIN, cv_root=other)


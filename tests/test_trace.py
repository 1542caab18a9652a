"""Recorded traces and real-card safety (issue 4, items 3 and 5).

Traces: the JSON Lines schema of :mod:`workbench.transport.trace`, record → replay, the shipped
golden traces in ``data/traces/``, divergence reports, masking (CONVENTIONS.md, Data and
safety) and the pySim-style decoder (jpki-card.md 2-5). Safety: the client's retry check
before a VERIFY on anything that is not the virtual card (jpki-card.md 4.3, 6).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.analysis import TracingTransport, decode_trace
from workbench.apdu import CommandAPDU, mask_command
from workbench.card import constants as c
from workbench.card.files import object_label
from workbench.client import JpkiClient, TextApClient, TokenType
from workbench.errors import (
    LastTryError,
    PinBlockedError,
    TraceDivergenceError,
    TraceFormatError,
    TransportError,
    WrongPinError,
)
from workbench.pki import describe_certificate
from workbench.timing import TimingModel
from workbench.transport import (
    TRACE_SCHEMA_VERSION,
    ReplayTransport,
    TokenFacts,
    VirtualCardTransport,
    load_trace,
)
from workbench.transport.trace import (
    TracePartialLineWarning,
    write_trace,
)

# The PINs of the conftest card (tests/conftest.py); test-only values.
AUTH_PIN = "1234"
SIGN_PASSWORD = "ABC123"
TEXT_PIN = "5678"
NEW_PIN = "2468"
SECRETS = (AUTH_PIN, SIGN_PASSWORD, TEXT_PIN, NEW_PIN, "WRONG777")

ROOT = Path(__file__).resolve().parents[1]
TRACE_DIR = ROOT / "data" / "traces"
LOGIN_TRACE = TRACE_DIR / "card-read-and-login.jsonl"
SIGNING_TRACE = TRACE_DIR / "signing.jsonl"
#: The check the project runs over data/traces: an unmasked 4-digit VERIFY.
PIN_IN_TRACE = re.compile(r"0020[0-9a-f]{4}04(3[0-9]){4}", re.IGNORECASE)
#: Wall-clock timestamps and measured floats vary run to run and may hold any 4 digits;
#: long hex runs are response data (certificates, signatures). Everything else in a trace of
#: the seeded card is deterministic, so a PIN found there is a real leak.
_VOLATILE = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.+-]+|\d+\.\d+")
_LONG_HEX = re.compile(r"[0-9A-Fa-f]{16,}")


@pytest.fixture(scope="module")
def make_traces() -> ModuleType:
    """How the shipped traces are made (:mod:`workbench.scenarios.samples`; the command line
    ``tools/make_traces.py`` calls it)."""
    from workbench.scenarios import samples

    return samples


class RealCardLike:
    """A transport that says it is *not* the virtual card, around the virtual card: what the
    client sees of a PC/SC reader, without risking a real card."""

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


def commands(tracer: TracingTransport) -> list[str]:
    return [r["command"] for r in tracer.records if r.type == "exchange"]


def assert_no_secret(text: str) -> None:
    """No PIN as ASCII hex (either case), no unmasked VERIFY pattern, no PIN as text."""
    assert not PIN_IN_TRACE.search(text)
    for secret in SECRETS:
        assert secret.encode().hex() not in text.lower()
    plain = _LONG_HEX.sub("", _VOLATILE.sub("", text))
    for secret in SECRETS:
        assert secret not in plain


# --- A. real-card safety (jpki-card.md 4.3, 6) ------------------------------------------------


def spend(card, name: str, n: int) -> None:
    """Spend ``n`` tries of PIN ``name`` with wrong values on the card (virtual, unguarded)."""
    with VirtualCardTransport(card) as t:
        client = JpkiClient(t) if name in ("auth", "sign") else TextApClient(t)
        for _ in range(n):
            with pytest.raises((WrongPinError, PinBlockedError)):  # the last one blocks
                if name == "text":
                    client.basic_four("0000")
                else:
                    client.select_ap()
                    client.verify(name, "0000" if name == "auth" else "WRONG777")


def test_guard_refuses_verify_at_one_try_left_on_a_real_card(make_card):
    """4.3/6: one try left on a real card → LastTryError, nothing spent; force=True sends it."""
    card = make_card("icc")
    spend(card, "auth", 2)
    assert card.pin_status()["auth"] == 1
    tracer = TracingTransport(RealCardLike(VirtualCardTransport(card)))
    with tracer:
        client = JpkiClient(tracer)
        client.select_ap()
        with pytest.raises(LastTryError) as err:
            client.verify("auth", AUTH_PIN)
        assert err.value.pin == "auth" and err.value.tries_left == 1
        message = str(err.value)
        assert "\n" not in message and "municipal office" in message and "force=True" in message
        assert_no_secret(message + repr(err.value))
        assert card.pin_status()["auth"] == 1  # the refusal spent nothing
        # the tracer forwards is_virtual: the guard asked (empty VERIFY) and sent no PIN
        assert commands(tracer)[-1] == "00200080"
        assert not any(cmd.startswith("0020008004") for cmd in commands(tracer))
        client.verify("auth", AUTH_PIN, force=True)
    assert card.pin_status()["auth"] == 3


def test_guard_allows_verify_with_two_tries_left_after_asking(make_card):
    card = make_card("icc")
    spend(card, "auth", 1)
    tracer = TracingTransport(RealCardLike(VirtualCardTransport(card)))
    with tracer:
        JpkiClient(tracer).sign(b"login", pin=AUTH_PIN)
    cmds = commands(tracer)
    query = cmds.index("00200080")
    assert cmds[query + 1] == "0020008004********"  # query, then the real VERIFY


def test_guard_on_a_blocked_pin_says_so(make_card):
    card = make_card("icc")
    spend(card, "sign", 5)
    with VirtualCardTransport(card) as inner:
        client = JpkiClient(RealCardLike(inner))
        with pytest.raises(LastTryError, match="already blocked") as err:
            client.read_certificate("sign", pin=SIGN_PASSWORD)
    assert err.value.tries_left == 0 and "sign password" in str(err.value)


@pytest.mark.parametrize(
    "pin_name, call",
    [
        ("auth", lambda cl, force: (cl.select_ap(), cl.verify("auth", AUTH_PIN, force=force))),
        ("auth", lambda cl, force: cl.sign(b"m", pin=AUTH_PIN, force=force)),
        ("sign", lambda cl, force: cl.sign(b"m", key="sign", pin=SIGN_PASSWORD, force=force)),
        ("sign", lambda cl, force: cl.read_certificate("sign", pin=SIGN_PASSWORD, force=force)),
        ("sign", lambda cl, force: cl.read_certificate_der("sign", pin=SIGN_PASSWORD, force=force)),
        ("auth", lambda cl, force: cl.change_pin("auth", AUTH_PIN, NEW_PIN, force=force)),
        ("text", lambda cl, force: cl.basic_four(TEXT_PIN, force=force)),
        ("text", lambda cl, force: cl.individual_number(TEXT_PIN, force=force)),
        ("text", lambda cl, force: cl.check_integrity(TEXT_PIN, force=force)),
    ],
    ids=[
        "verify",
        "sign-auth",
        "sign-sign",
        "read_certificate",
        "read_certificate_der",
        "change_pin",
        "basic_four",
        "individual_number",
        "check_integrity",
    ],
)
def test_force_threads_through_every_pin_taking_method(make_card, pin_name, call):
    card = make_card("icc")
    max_tries = card.pin_status()[pin_name]
    spend(card, pin_name, max_tries - 1)
    with VirtualCardTransport(card) as inner:
        real = RealCardLike(inner)
        client = TextApClient(real) if pin_name == "text" else JpkiClient(real)
        with pytest.raises(LastTryError):
            call(client, False)
        assert card.pin_status()[pin_name] == 1
        call(client, True)
    assert card.pin_status()[pin_name] == max_tries  # the forced VERIFY succeeded


def test_no_retry_query_on_the_virtual_card(make_card):
    """The in-process card cannot be harmed: no empty VERIFY is sent, even at one try left."""
    card = make_card("icc")
    spend(card, "auth", 2)
    tracer = TracingTransport(VirtualCardTransport(card))
    with tracer:
        assert tracer.is_virtual
        JpkiClient(tracer).sign(b"login", pin=AUTH_PIN)
    assert "00200080" not in commands(tracer)
    assert card.pin_status()["auth"] == 3


# --- B. record, replay -----------------------------------------------------------------------


def run_session(transport, profile: str) -> dict[str, object]:
    """A client session touching every kind of exchange the traces carry."""
    client = JpkiClient(transport)
    out: dict[str, object] = {"token": client.token_type()}
    out["auth_ca"] = client.read_certificate_der("auth_ca")
    out["auth"] = client.read_certificate_der("auth", pin=AUTH_PIN if profile == "gpse" else None)
    out["tries"] = client.tries_left("auth")
    out["auth_sig"] = client.sign(b"challenge", pin=AUTH_PIN)
    out["sign"] = client.read_certificate_der("sign", pin=SIGN_PASSWORD)
    out["sign_sig"] = client.sign(digest=hashlib.sha256(b"document").digest(), key="sign")
    return out


def test_record_then_replay_gives_identical_results(make_card, profile, tmp_path):
    path = tmp_path / "session.jsonl"
    with TracingTransport(VirtualCardTransport(make_card(profile)), path) as tracer:
        recorded = run_session(tracer, profile)
    with ReplayTransport(path) as replay:
        replayed = run_session(replay, profile)
        assert replay.remaining == 1  # only the power-off is left
    assert replay.finished
    assert replayed == recorded
    # in-memory records replay the same way, and the header knows the profile
    header, records = load_trace(path)
    assert header.profile == profile and header.virtual is True
    assert header.schema_version == TRACE_SCHEMA_VERSION
    assert [r.data for r in records] == [r.data for r in tracer.records]
    with ReplayTransport(tracer) as replay:
        assert run_session(replay, profile) == recorded


def test_replay_accepts_any_pin_of_the_recorded_length(make_card, tmp_path):
    """Masked bytes are wildcards: replay cannot know the PIN, only its length."""
    path = tmp_path / "t.jsonl"
    with TracingTransport(VirtualCardTransport(make_card("icc")), path) as tracer:
        sig = JpkiClient(tracer).sign(b"x", pin=AUTH_PIN)
    with ReplayTransport(path) as replay:
        assert JpkiClient(replay).sign(b"x", pin="9999") == sig
    with ReplayTransport(path) as replay, pytest.raises(TraceDivergenceError) as err:
        JpkiClient(replay).sign(b"x", pin="12345")  # wrong length: Lc differs
    assert err.value.offset == 4 and "12345" not in str(err.value)
    assert err.value.got == "0020008005**********"


def test_replay_of_a_real_card_trace_repeats_the_guard_queries(make_card, tmp_path):
    path = tmp_path / "real.jsonl"
    with TracingTransport(RealCardLike(VirtualCardTransport(make_card("icc"))), path) as tracer:
        sig = JpkiClient(tracer).sign(b"x", pin=AUTH_PIN)
    assert load_trace(path)[0].virtual is False
    with ReplayTransport(path) as replay:
        assert replay.is_virtual and replay.pin_guard
        assert JpkiClient(replay).sign(b"x", pin=AUTH_PIN) == sig


def test_replay_end_of_trace_and_power_mismatch(make_card, tmp_path):
    path = tmp_path / "t.jsonl"
    with TracingTransport(VirtualCardTransport(make_card("icc")), path) as tracer:
        JpkiClient(tracer).select_ap()
    replay = ReplayTransport(path)
    with pytest.raises(TraceDivergenceError, match="expected <connect>"):
        replay.transmit(CommandAPDU.select_df(c.JPKI_AP_AID).to_bytes())
    replay.connect()
    JpkiClient(replay).select_ap()
    with pytest.raises(TraceDivergenceError, match="expected <disconnect>") as err:
        JpkiClient(replay).select_ap()
    assert err.value.line == 4 and err.value.seq == 3
    replay.disconnect()
    with pytest.raises(TraceDivergenceError, match="end of trace") as err:
        JpkiClient(replay).select_ap()
    assert err.value.line == 5 and err.value.seq is None


def test_transport_errors_are_recorded_and_replayed(make_card, tmp_path):
    path = tmp_path / "t.jsonl"
    tracer = TracingTransport(VirtualCardTransport(make_card("icc")), path)
    with pytest.raises(TransportError, match="not connected"):
        tracer.transmit(bytes.fromhex("00A4040C"))
    tracer.close()
    _, records = load_trace(path)
    assert records[0]["response"] is None and "not connected" in records[0]["error"]
    with pytest.raises(TransportError, match="not connected"):
        ReplayTransport(path).transmit(bytes.fromhex("00A4040C"))


def test_each_exchange_is_on_disk_before_the_next(make_card, tmp_path):
    """Crash safety: the writer flushes per event, so a reader sees it while recording."""
    path = tmp_path / "t.jsonl"
    tracer = TracingTransport(VirtualCardTransport(make_card("icc")), path)
    tracer.connect()
    JpkiClient(tracer).select_ap()
    header, records = load_trace(path)
    assert [r.type for r in records] == ["connect", "exchange"]
    tracer.disconnect()
    tracer.close()


# --- the shipped traces (golden files) -------------------------------------------------------


def test_shipped_traces_are_valid_and_masked():
    for path in (LOGIN_TRACE, SIGNING_TRACE):
        text = path.read_text(encoding="utf-8")
        assert_no_secret(text)
        header, records = load_trace(path)
        assert header.profile == "icc" and header.token_label == c.LABEL_ICC
        assert header.metadata["generator"] == "tools/make_traces.py"
        assert records[0].type == "connect" and records[-1].type == "disconnect"
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        verifies = [
            r["command"]
            for r in records
            if r.type == "exchange" and r["command"].startswith("0020")
        ]
        assert verifies and all(v == "00200080" or "*" in v for v in verifies)
        # no GET CHALLENGE or other randomness in a golden file
        assert not any(r.get("command", "").startswith("0084") for r in records)


def test_shipped_login_trace_replays_to_the_recorded_results(make_traces, tmp_path):
    header, _ = load_trace(LOGIN_TRACE)
    challenge = bytes.fromhex(header.metadata["challenge"])
    with ReplayTransport(LOGIN_TRACE) as replay:
        client = JpkiClient(replay)
        assert client.token_type() is TokenType.CARD
        auth_ca = client.read_certificate_der("auth_ca")
        auth = client.read_certificate_der("auth")
        assert client.tries_left("auth") == 3
        signature = client.sign(challenge, key="auth", pin=AUTH_PIN)
    assert replay.finished
    cert = x509.load_der_x509_certificate(auth)
    cert.public_key().verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    ca = x509.load_der_x509_certificate(auth_ca)
    assert cert.issuer == ca.subject
    # and it is what the generator's card gives today (PKCS#1 v1.5 is deterministic)
    live = make_traces.record_login(tmp_path / LOGIN_TRACE.name)
    assert (live["auth_ca"], live["auth"], live["tries"], live["signature"]) == (
        auth_ca,
        auth,
        3,
        signature,
    )


def test_shipped_signing_trace_replays_to_the_recorded_results(make_traces, tmp_path):
    header, _ = load_trace(SIGNING_TRACE)
    digest = bytes.fromhex(header.metadata["document_sha256"])
    assert digest == hashlib.sha256(make_traces.DOCUMENT).digest()
    with ReplayTransport(SIGNING_TRACE) as replay:
        client = JpkiClient(replay)
        sign = client.read_certificate_der("sign", pin=SIGN_PASSWORD)
        signature = client.sign(digest=digest, key="sign")
    assert replay.finished
    cert = x509.load_der_x509_certificate(sign)
    cert.public_key().verify(signature, make_traces.DOCUMENT, padding.PKCS1v15(), hashes.SHA256())
    live = make_traces.record_signing(tmp_path / SIGNING_TRACE.name)
    assert (live["sign"], live["signature"]) == (sign, signature)


def test_make_traces_regenerates_the_shipped_files(make_traces, tmp_path):
    """Everything but wall-clock time is reproducible: header and every byte on the wire.
    The derived fields (decoded view, modelled time) are left out here because other modules
    own their texts and numbers; ``tools/make_traces.py --check`` compares them too."""
    make_traces.write_all(tmp_path)
    assert make_traces.stale(TRACE_DIR, tmp_path, derived=False) == []


def test_tampered_trace_is_reported_at_the_right_line(tmp_path):
    lines = LOGIN_TRACE.read_text(encoding="utf-8").splitlines(keepends=True)
    target = next(
        i
        for i, line in enumerate(lines)
        if json.loads(line).get("command") == "00A4020C02000A"  # SELECT auth certificate
    )
    record = json.loads(lines[target])
    record["command"] = "00A4020C02000C"  # one command byte changed in the copy
    lines[target] = json.dumps(record, ensure_ascii=False) + "\n"
    copy = tmp_path / "tampered.jsonl"
    copy.write_text("".join(lines), encoding="utf-8")
    with ReplayTransport(copy) as replay, pytest.raises(TraceDivergenceError) as err:
        client = JpkiClient(replay)
        client.token_type()
        client.read_certificate_der("auth_ca")
        client.read_certificate_der("auth")
    e = err.value
    assert (e.line, e.seq, e.offset) == (target + 1, record["seq"], 6)
    assert (e.expected, e.got) == ("00A4020C02000C", "00A4020C02000A")
    message = str(e)
    assert "\n" not in message
    assert f"line {target + 1} (seq {record['seq']})" in message and "byte 6" in message
    assert isinstance(e, TransportError)


def test_divergence_on_a_verify_reports_masked_bytes(tmp_path):
    lines = LOGIN_TRACE.read_text(encoding="utf-8").splitlines(keepends=True)
    target = next(
        i
        for i, line in enumerate(lines)
        if json.loads(line).get("command", "").startswith("0020008004")
    )
    record = json.loads(lines[target])
    record["command"] = "0020009804********"  # VERIFY by SFI instead of the current EF
    lines[target] = json.dumps(record) + "\n"
    copy = tmp_path / "tampered.jsonl"
    copy.write_text("".join(lines), encoding="utf-8")
    header, _ = load_trace(LOGIN_TRACE)
    with ReplayTransport(copy) as replay, pytest.raises(TraceDivergenceError) as err:
        client = JpkiClient(replay)
        client.token_type()
        client.read_certificate_der("auth_ca")
        client.read_certificate_der("auth")
        client.tries_left("auth")
        client.sign(bytes.fromhex(header.metadata["challenge"]), pin=AUTH_PIN)
    assert err.value.line == target + 1 and err.value.offset == 3
    assert err.value.got == "0020008004********"
    assert_no_secret(str(err.value) + repr(err.value))


# --- masking ---------------------------------------------------------------------------------


def test_mask_command_covers_secret_instructions_even_when_malformed():
    assert mask_command(CommandAPDU.verify(0x80, b"1234").to_bytes()) == "0020008004********"
    assert (
        mask_command(CommandAPDU.change_reference_data(b"2468").to_bytes()) == "0024018004********"
    )
    assert mask_command(CommandAPDU.change_key(b"2468").to_bytes()) == "8032008004********"
    # Lc says 6 but 3 bytes follow: not an APDU, still masked from the length byte on
    assert mask_command(bytes.fromhex("0020008006313233")) == "00200080" + "**" * 4
    assert mask_command(bytes.fromhex("00B0000000FF")) == "00B0000000FF"
    assert mask_command(CommandAPDU.verify(0x80).to_bytes()) == "00200080"
    assert mask_command(CommandAPDU.select_ef(0x18).to_bytes()) == "00A4020C020018"


def test_no_pin_in_file_dataframe_records_or_exceptions(make_card, tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    caplog.set_level("DEBUG")
    with TracingTransport(VirtualCardTransport(make_card("icc")), path) as tracer:
        client = JpkiClient(tracer)
        client.sign(b"m", pin=AUTH_PIN)
        client.read_certificate("sign", pin=SIGN_PASSWORD)
        with pytest.raises(WrongPinError) as err:
            client.verify("sign", "WRONG777")
        client.change_pin("auth", AUTH_PIN, NEW_PIN)
        TextApClient(tracer).basic_four(TEXT_PIN)
    frame = decode_trace(path)
    blob = "\n".join(
        [
            path.read_text(encoding="utf-8"),
            frame.to_csv(),
            repr(tracer.records),
            repr(tracer.exchanges),
            tracer.to_dataframe().to_string(),
            str(err.value) + repr(err.value),
            caplog.text,
        ]
    )
    assert_no_secret(blob)
    assert "0024018004********" in blob and "0020008008****************" in blob


# --- decoder ---------------------------------------------------------------------------------


@pytest.fixture
def decoded_session(make_card, tmp_path):
    card = make_card("icc")
    path = tmp_path / "session.jsonl"
    with TracingTransport(VirtualCardTransport(card), path, timing=TimingModel()) as tracer:
        client = JpkiClient(tracer)
        client.token_type()
        client.read_certificate_der("auth")
        client.tries_left("auth")
        with pytest.raises(WrongPinError):
            client.verify("auth", "0000")
        client.sign(b"challenge", pin=AUTH_PIN)
        client.read_certificate_der("sign", pin=SIGN_PASSWORD)
        client.select_ap()
        tracer.transmit(CommandAPDU.read_binary(0, 7, sfi=c.EF_AUTH_CA_CERT).to_bytes())
        TextApClient(tracer).tries_left()
    return card, decode_trace(path)


def test_decoder_names_aps_files_pins_and_keys(decoded_session):
    _, frame = decoded_session
    exchanges = frame[frame.event == "exchange"]
    jpki = "JPKI AP (公的個人認証AP)"
    assert jpki in set(exchanges.ap) and "text AP (券面事項入力補助AP)" in set(exchanges.ap)
    reads = exchanges[exchanges.instruction == "READ BINARY"]
    assert "000A 利用者証明用電子証明書 (auth certificate)" in set(reads.ef)
    assert "0001 署名用電子証明書 (sign certificate)" in set(reads.ef)
    assert reads["offset"].iloc[0] == 0 and reads["length"].iloc[0] == 32  # token label
    # SFI form (jpki-card.md 2.2): READ BINARY 80|0B names the auth CA EF
    sfi = reads[reads.command == "00B08B0007"]
    assert list(sfi.ef) == ["000B 利用者証明用CA証明書 (auth CA certificate)"]
    verifies = exchanges[exchanges.instruction == "VERIFY"]
    assert set(verifies.pin) == {
        "0018 利用者証明用暗証番号 (auth PIN)",
        "001B 署名用パスワード (sign password)",
        "0011 券面事項入力補助用暗証番号 (text AP PIN)",
    }
    signs = exchanges[exchanges.instruction == "COMPUTE DIGITAL SIGNATURE"]
    assert list(signs.key) == ["0017 利用者証明用秘密鍵 (auth private key)"]
    assert "DigestInfo" in signs.p1p2.iloc[0]


def test_decoder_status_words_and_tries(decoded_session):
    _, frame = decoded_session
    ok = frame[frame.sw == "9000"].iloc[0]
    assert (ok.sw_name, ok.sw_en, ok.sw_ja) == ("SUCCESS", "success", "正常終了")
    query = frame[frame.command == "00200080"].iloc[0]
    assert query.tries_left == 3 and "retry-counter query" in query.p1p2
    wrong = frame[(frame.instruction == "VERIFY") & (frame.sw == "63C2")].iloc[0]
    assert wrong.tries_left == 2 and "2 tries left" in wrong.sw_en and "残り2回" in wrong.sw_ja
    assert wrong.command == "0020008004********"


def test_decoder_describes_certificates_read_completely(decoded_session):
    card, frame = decoded_session
    truth = card.certificates()
    certs = frame[frame.cert_subject.notna()]
    assert list(certs.cert_kind) == ["auth", "sign"]
    for (_, row), name in zip(certs.iterrows(), ["auth", "sign"], strict=True):
        facts = describe_certificate(truth[name])
        assert row.cert_subject == facts["subject"] and row.cert_serial == facts["serial_hex"]
        der = truth[name].public_bytes(Encoding.DER)
        assert row.cert_sha256 == hashlib.sha256(der).hexdigest()
        assert row.ef.startswith("000A" if name == "auth" else "0001")


def test_decoder_timing_columns_only_when_modelled(decoded_session, make_card):
    _, frame = decoded_session
    exchanges = frame[frame.event == "exchange"]
    assert (exchanges.air_ms > 0).all() and (exchanges.total_ms >= exchanges.air_ms).all()
    assert frame[frame.event == "connect"].total_ms.iloc[0] > 0
    tracer = TracingTransport(VirtualCardTransport(make_card("icc")))
    with tracer:
        JpkiClient(tracer).select_ap()
    assert "air_ms" not in tracer.decode().columns


def test_decoder_reads_shipped_traces():
    frame = decode_trace(LOGIN_TRACE)
    assert list(frame.event.iloc[[0, -1]]) == ["connect", "disconnect"]
    assert frame.atr.iloc[0] == c.ATR_CONTACT.hex().upper()
    assert set(frame.cert_kind.dropna()) == {"ca", "auth"}
    assert_no_secret(frame.to_csv())


def test_object_labels_match_the_card_builder(make_card):
    """One generic check over all objects (pySim style): the decoder's names are the labels
    the card builder gives each EF, key and PIN (jpki-card.md 3.1-3.5)."""
    for profile in ("icc", "gpse"):
        card = make_card(profile)
        for aid, app in card.files.items():  # inspection of the issued card
            for fid, obj in app.objects.items():
                label = object_label(aid, fid)
                assert label == f"{fid:04X} {obj.label}" or label.startswith(
                    f"{fid:04X} {obj.label} ("), (aid.hex(), hex(fid))


# --- reading: format errors, partial lines ---------------------------------------------------


def good_lines() -> list[str]:
    return SIGNING_TRACE.read_text(encoding="utf-8").splitlines(keepends=True)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty file"),
        ("hello\n", "line 1 is not JSON"),
        ('{"type": "exchange"}\n', "not a trace header"),
        ('{"type": "header", "schema": "pcap"}\n', "not a jpki-workbench trace"),
        (
            '{"type": "header", "schema": "jpki-workbench-trace", "schema_version": 99}\n',
            "schema version 99 is newer",
        ),
        (
            '{"type": "header", "schema": "jpki-workbench-trace", "schema_version": "1"}\n',
            "not a positive integer",
        ),
    ],
)
def test_malformed_header_is_a_one_line_trace_format_error(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceFormatError, match=match) as err:
        load_trace(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: "not json at all\n", "line 3 is not JSON"),
        (lambda r: json.dumps({**r, "type": "apdu"}) + "\n", "unknown event type 'apdu'"),
        (lambda r: json.dumps({**r, "command": "00A4XYZ"}) + "\n", "no valid command hex"),
        (lambda r: json.dumps({**r, "response": None}) + "\n", "neither a response nor an error"),
        (lambda r: json.dumps({k: v for k, v in r.items() if k != "seq"}) + "\n", "integer seq"),
    ],
)
def test_malformed_record_names_its_line(tmp_path, edit, match):
    lines = good_lines()
    lines[2] = edit(json.loads(lines[2]))
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=match) as err:
        load_trace(path)
    assert "\n" not in str(err.value) and "line 3" in str(err.value)
    with pytest.raises(TraceFormatError):
        decode_trace(path)


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(TraceFormatError, match="cannot read"):
        load_trace(tmp_path / "missing.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TraceFormatError, match="not UTF-8"):
        load_trace(tmp_path / "bin.jsonl")


def test_partial_last_line_is_dropped_with_a_warning(tmp_path):
    lines = good_lines()
    full = len(lines) - 1  # records in the intact file
    cut = lines[:-1] + [lines[-1][: len(lines[-1]) // 2]]  # writer died mid-line
    path = tmp_path / "partial.jsonl"
    path.write_text("".join(cut), encoding="utf-8")
    with pytest.warns(TracePartialLineWarning, match=f"line {len(lines)}"):
        _, records = load_trace(path)
    assert len(records) == full - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TracePartialLineWarning)
        # the replay still plays everything that was written completely
        with ReplayTransport(path) as replay:
            JpkiClient(replay).read_certificate_der("sign", pin=SIGN_PASSWORD)
            assert replay.remaining > 0


def test_write_trace_round_trip(tmp_path):
    header, records = load_trace(LOGIN_TRACE)
    copy = tmp_path / "copy.jsonl"
    write_trace(copy, header, records)
    again_header, again = load_trace(copy)
    assert again_header == header and [r.data for r in again] == [r.data for r in records]
    assert decode_trace(copy).equals(decode_trace(LOGIN_TRACE))

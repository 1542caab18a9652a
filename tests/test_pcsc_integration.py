"""The virtual card on the real PC/SC stack (issue 4 items 1-3): pcscd + vpcd + pyscard.

A private pcscd (tests/pcsc_helpers.py: own mount namespace or socket activation, own
reader.conf, own vpcd ports) serves the plastic card (a card image) in "Virtual PCD 00 00" and
the Android token (an SE image: the phone's GlobalPlatform secure element hosting the JPKI
applet) in "Virtual PCD 00 01" through ``jpki-workbench card serve``; the host side talks to
them through :class:`workbench.transport.pcsc.PcscTransport`, bare pyscard, OpenSC and
pcsc-tools, exactly as to a real reader. Every process started here is stopped in fixture
teardown.

The pure parts (61XX/6CXX completion, ATR parsing, reader choice, the vpcd wire protocol
against a fake vpcd, imports without pyscard, CLI argument errors) run everywhere; the rest
skips, with the reason, only when pcscd, vpcd or pyscard is not installed.

libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so the module fixture sets it before
this process's first PC/SC call and checks that nothing else answered on that name first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from pcsc_helpers import (
    ROOT,
    PrivatePcscd,
    serve_cards,
    short_runtime_dir,
    stack_missing,
    stop_process,
)

from workbench.card import VirtualCard
from workbench.errors import CardImageError, SecurityStatusError, TransportError, WrongPinError
from workbench.lifecycle import create_card
from workbench.se import is_se_image, load_token
from workbench.transport.pcsc import (
    CardRemovedError,
    NoCardError,
    NoReaderError,
    PcscTransport,
    ProtocolMismatchError,
    atr_extended_length,
    choose_reader,
    complete_response,
    historical_bytes,
)
from workbench.transport.vpcd import VpcdServer

AUTH_PIN, SIGN_PASSWORD, TEXT_PIN = "1234", "ABC123", "5678"
ISSUED_AT = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)

MISSING = stack_missing()
needs_stack = pytest.mark.skipif(MISSING is not None, reason=f"PC/SC stack not installed: {MISSING}")
needs_opensc = pytest.mark.skipif(shutil.which("pkcs15-tool") is None, reason="opensc (pkcs15-tool) not installed")

ATR_CONTACT = "3BDA13FF8131FB468012392F31C173C601C03B"
ATR_PHONE = "3B86800157424750534513"  # PC/SC Part 3 contactless form, historical bytes "WBGPSE"
ICC, GPSE = 0, 1  # reader index = vpcd slot
SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_KEY = bytes.fromhex("00A4020C020017")
SIGN_SHA256 = bytes.fromhex("802A008033" + "3031300D060960864801650304020105000420" + "11" * 32 + "00")


# --- pure parts: no reader needed -------------------------------------------------------------


class ScriptedSend:
    """A ``send`` for :func:`complete_response` answering from a table, recording the commands."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.sent: list[str] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu.hex().upper())
        return bytes.fromhex(self.answers[apdu.hex().upper()])


def test_61xx_is_followed_by_get_response_until_done():
    """ISO/IEC 7816-4: 61XX -> GET RESPONSE with Le = XX; data joined, last SW returned."""
    send = ScriptedSend({"00CA010000": "AABB6110", "00C0000010": "11" * 16 + "6104", "00C0000004": "22334455" + "9000"})
    assert complete_response(send, bytes.fromhex("00CA010000")) == bytes.fromhex("AABB" + "11" * 16 + "22334455" + "9000")
    assert send.sent == ["00CA010000", "00C0000010", "00C0000004"]


def test_6cxx_resends_with_the_right_le_then_61xx():
    """6CXX -> the same command with Le = XX (once); a 61XX after that is completed too."""
    send = ScriptedSend({"00B0000000": "6C08", "00B0000008": "0102030405060708" + "9000"})
    assert complete_response(send, bytes.fromhex("00B0000000")) == bytes.fromhex("0102030405060708" + "9000")
    send = ScriptedSend({"00B0000005": "6C00", "00B0000000": "6102", "00C0000002": "AAAA" + "9000"})
    assert complete_response(send, bytes.fromhex("00B0000005")) == bytes.fromhex("AAAA9000")


def test_get_response_keeps_the_logical_channel_and_ordinary_answers_pass_through():
    send = ScriptedSend({"01CA010000": "6101", "01C0000001": "FF9000"})
    assert complete_response(send, bytes.fromhex("01CA010000")) == bytes.fromhex("FF9000")
    send = ScriptedSend({"00A4020C020017": "6A82"})
    assert complete_response(send, bytes.fromhex("00A4020C020017")) == bytes.fromhex("6A82")


def test_endless_61xx_is_a_transport_error():
    with pytest.raises(TransportError, match="61XX"):
        complete_response(lambda apdu: b"\x61\x01", bytes.fromhex("00CA010000"))


@pytest.mark.parametrize(
    ("atr", "expected"),
    [
        (ATR_CONTACT, True),  # My Number card, contact: 73 C6 01 C0, b7 of byte 3 set (jpki-card.md 7)
        ("3BC5FF8131FB458073C6010000", False),  # listed contact ATR: 73 C6 01 00, short only
        ("3B888001000005E0B381A1007F", None),  # PC/SC Part 3 contactless: ATQB data, not capabilities
        ("3B86800157424750534513", None),  # the simulator's phone-token ATR ("WBGPSE")
        ("3B038073C6", None),  # card-capabilities object cut short: nothing is guessed
        ("3B", None),
    ],
)
def test_extended_length_from_the_atr(atr, expected):
    """ISO/IEC 7816-4 8.1.1.2.7: extended Lc/Le is announced in the card capabilities."""
    assert atr_extended_length(bytes.fromhex(atr)) is expected


def test_historical_bytes_follow_the_interface_bytes():
    assert historical_bytes(bytes.fromhex(ATR_CONTACT)) == bytes.fromhex("8012392F31C173C601C0")
    assert historical_bytes(bytes.fromhex("3B86800157424750534513")) == b"WBGPSE"
    assert historical_bytes(bytes.fromhex("3BDA13")) is None  # interface bytes cut short


def test_reader_choice_by_index_exact_name_or_part():
    names = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
    assert choose_reader(names, 1) == "Virtual PCD 00 01"
    assert choose_reader(names, "Virtual PCD 00 01") == "Virtual PCD 00 01"
    assert choose_reader(names, "pcd 00 01") == "Virtual PCD 00 01"
    assert choose_reader(names, "virtual") == "Virtual PCD 00 00"
    with pytest.raises(NoReaderError, match="no reader matching 'ACS'"):
        choose_reader(names, "ACS")
    with pytest.raises(NoReaderError, match="no reader number 2"):
        choose_reader(names, 2)
    with pytest.raises(NoReaderError, match="no PC/SC reader"):
        choose_reader([], 0)


def test_default_import_path_does_not_need_pyscard():
    """Issue 4 item 1: workbench, .transport, .client, .cli import without pyscard; PC/SC use
    then fails with one line and exit 2."""
    code = (
        "import sys; sys.modules['smartcard'] = None\n"
        "import workbench, workbench.transport, workbench.client, workbench.cli\n"
        "import workbench.transport.pcsc, workbench.transport.vpcd, workbench.cli.card\n"
        "workbench.cli.build_parser()\n"
        "sys.exit(workbench.cli.main(['card', 'info', '--wait', '0']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "pyscard is not installed" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["card", "serve", "a.jwc", "b.jwc", "c.jwc"], "vpcd has 2 slots"),
        (["card", "serve", "missing.jwc"], "does not exist"),
        (["card", "serve", "a.jwc", "--port", "70000"], "--port must be"),
        (["card", "serve", "a.jwc", "a.jwc"], "two slots at once"),
        (["card", "info", "--wait", "-1"], "--wait must be"),
        (["card", "info", "--reader", " "], "--reader is empty"),
    ],
)
def test_cli_argument_errors_are_one_line(tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2
    assert message in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_card_serve_refuses_what_is_no_token_image_in_one_line(tmp_path):
    """``card serve`` takes a card image or an SE image (workbench.se.load_token); a text file,
    another application's SQLite database, a folder, a symlink loop, and one file under two
    names for the two slots end with one line."""
    import sqlite3

    (tmp_path / "notes.txt").write_text("not a card\n")
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    db.close()
    (tmp_path / "folder").mkdir()
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    os.link(tmp_path / "notes.txt", tmp_path / "hard-link.txt")  # one file, two names
    for names, message in [("notes.txt", "not a card image"), ("other.db", "not a card image"),
                           ("folder", "is a directory"), ("loop1", "symbolic links"),
                           ("notes.txt hard-link.txt", "two slots at once")]:
        out = subprocess.run([sys.executable, "-m", "workbench", "card", "serve", *names.split(), "--port", "1"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 2, (names, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, names
        assert "serving" not in out.stdout


class FakeVpcd:
    """The listening side of vpcd, in the test: accepts the server and speaks its framing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 10.0) -> None:
        self.listener.settimeout(timeout)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(timeout)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        assert self.conn is not None
        size = int.from_bytes(self.conn.recv(2, socket.MSG_WAITALL), "big")
        return self.conn.recv(size, socket.MSG_WAITALL)

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.listener.close()


def test_vpcd_wire_protocol_power_reset_reconnect_and_stop(make_card, tmp_path):
    """The vpcd messages (00 off, 01 on, 02 reset, 04 ATR, APDUs) reach the card; a dropped
    connection is a removal (state cleared) followed by a reconnect; stop closes the image."""
    card = make_card("icc", auth_pin=AUTH_PIN)
    image = tmp_path / "card.jwc"
    card.save(image)
    card.close()
    fake = FakeVpcd()
    server = VpcdServer(image, port=fake.port).start()
    try:
        fake.accept()
        assert fake.ask(b"\x04").hex().upper() == ATR_CONTACT
        fake.send(b"\x01")
        assert fake.ask(SELECT_JPKI) == b"\x90\x00"
        assert fake.ask(bytes.fromhex("00A4020C020018")) == b"\x90\x00"
        assert fake.ask(bytes.fromhex("00200080") + bytes([4]) + AUTH_PIN.encode()) == b"\x90\x00"
        assert fake.ask(SELECT_AUTH_KEY) == b"\x90\x00"
        assert fake.ask(SIGN_SHA256)[-2:] == b"\x90\x00"
        fake.send(b"\x02")  # warm reset: no AP selected, nothing verified (jpki-card.md 2.3)
        assert fake.ask(SELECT_AUTH_KEY) == b"\x6a\x82"
        assert fake.ask(SELECT_JPKI) + fake.ask(SELECT_AUTH_KEY) == b"\x90\x00\x90\x00"
        assert fake.ask(SIGN_SHA256) == b"\x69\x82"
        fake.send(b"\x00")
        assert fake.ask(bytes.fromhex("00A4020C020018")) == b"\x6a\x82"  # powered again, fresh
        assert server.stats["power_on"] == 1 and server.stats["reset"] == 1 and server.stats["power_off"] == 1
        fake.drop()  # pcscd went away: the server comes back by itself
        fake.accept()
        assert fake.ask(b"\x04").hex().upper() == ATR_CONTACT
        assert server.stats["connections"] == 2
    finally:
        server.stop()
        fake.close()
    assert not server.running
    assert server.card.path is None  # the server opened the image, so it closed it
    with VirtualCard.load(image) as again:  # and left it consistent
        assert again.pin_status()["auth"] == 3


def test_vpcd_server_opens_an_se_image_only_through_the_loader_it_is_given(make_card, tmp_path):
    """The transport sits below ``se`` (ARCHITECTURE): by default it opens card images only, and
    the phone's SE image is served when the caller passes ``workbench.se.load_token``. Over the
    vpcd wire the SE answers as the phone in card emulation: the basic channel reaches the JPKI
    applet (MODEL, workbench/se/element.py), MANAGE CHANNEL opens channel 1 (ISO/IEC 7816-4
    11.1), and stop closes the SE image the server opened."""
    phone = make_card("gpse", seed=8)
    image = tmp_path / "phone.jwc"
    phone.save(image)
    phone.close()
    assert is_se_image(image)
    with pytest.raises(CardImageError, match="not a card image"):
        VpcdServer(image, port=1)
    with load_token(image) as token, pytest.raises(TypeError, match="loader opens an image path"):
        VpcdServer(token, port=1, loader=load_token)

    fake = FakeVpcd()
    server = VpcdServer(image, port=fake.port, loader=load_token, reconnect=False).start()
    try:
        assert server.token is not None and (server.token.profile, server.token.label) == ("gpse", "JPKIAPGPSETOKEN")
        fake.accept()
        assert fake.ask(b"\x04").hex().upper() == ATR_PHONE
        fake.send(b"\x01")
        assert fake.ask(SELECT_JPKI) == b"\x90\x00"
        assert fake.ask(bytes.fromhex("00A4020C02000A")) == b"\x90\x00"
        assert fake.ask(bytes.fromhex("00B0000004")) == b"\x69\x82"  # auth certificate gated (jpki-card.md 8)
        assert fake.ask(bytes.fromhex("0070000001")) == b"\x01\x90\x00"  # MANAGE CHANNEL open -> channel 1
        assert fake.ask(bytes.fromhex("01A4040C0AD392F000260100000001")) == b"\x90\x00"
        assert fake.ask(bytes.fromhex("00708001")) == b"\x90\x00"  # close channel 1
        assert fake.ask(bytes.fromhex("01A4040C0AD392F000260100000001")) == b"\x68\x81"  # closed
    finally:
        server.stop()
        fake.close()
    assert not server.running and server.token.path is None  # opened by the server, closed by it
    with load_token(image) as again:
        assert again.profile == "gpse" and again.pin_status() == {"auth": 3, "sign": 5}


# --- the real stack ------------------------------------------------------------------------------


class Served:
    """The ``card serve`` child process for both images; restartable."""

    def __init__(self, images: dict[str, Path], stack: PrivatePcscd, log: Path) -> None:
        self.images, self.stack, self.log = images, stack, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = serve_cards([self.images["icc"], self.images["gpse"]], self.stack.port, self.stack.env, self.log)
        wait_for_cards(present=True, server=self)

    def ensure(self) -> Served:
        """Running again if an earlier test stopped it (so tests do not depend on each other)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            wait_for_cards(present=False)
            self.start()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        process, self.process = self.process, None
        return stop_process(process, sig=sig) if process is not None else 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for_cards(*, present: bool, readers: tuple[int, ...] = (ICC, GPSE), timeout: float = 15.0,
                   server: Served | None = None) -> None:
    """Until pcscd reports the readers full (or empty); it polls vpcd about every 0.4 s. With
    ``server``: fail at once, with its output, when ``card serve`` has exited."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == 0, scard.SCardGetErrorMessage(hr)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server is not None and server.process is not None and server.process.poll() is not None:
                raise AssertionError(f"card serve exited with {server.process.returncode}: {server.log_text()[-2000:]}")
            hr, names = scard.SCardListReaders(ctx, [])
            if hr == 0 and len(names) >= 2:
                hr, states = scard.SCardGetStatusChange(ctx, 0, [(names[i], scard.SCARD_STATE_UNAWARE) for i in readers])
                if hr == 0 and all(bool(s & scard.SCARD_STATE_PRESENT) == present for _, s, _ in states):
                    return
            time.sleep(0.05)
    finally:
        scard.SCardReleaseContext(ctx)
    raise AssertionError(f"readers {readers} not {'full' if present else 'empty'} after {timeout} s")


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivatePcscd]:
    if MISSING:
        pytest.skip(f"PC/SC stack not installed: {MISSING}")
    runtime = short_runtime_dir()
    daemon = PrivatePcscd(runtime)
    if daemon.conflict():
        shutil.rmtree(runtime, ignore_errors=True)
        pytest.skip(daemon.conflict() or "")
    previous = os.environ.get("PCSCLITE_CSOCK_NAME")
    os.environ["PCSCLITE_CSOCK_NAME"] = str(daemon.socket_path)
    from workbench.transport.pcsc import PcscServiceError, list_readers

    # nothing listens on our socket yet; if this finds readers, libpcsclite in this process was
    # already bound to another daemon and the tests would talk to the wrong one
    with pytest.raises(PcscServiceError):
        list_readers()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        if previous is None:
            os.environ.pop("PCSCLITE_CSOCK_NAME", None)
        else:
            os.environ["PCSCLITE_CSOCK_NAME"] = previous
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def expected(authority, stack) -> dict[str, dict[str, bytes]]:
    """Issue both tokens, save their images (a card image, and for the phone an SE image),
    remember their certificates (DER)."""
    out: dict[str, dict[str, bytes]] = {}
    for profile, seed in (("icc", 11), ("gpse", 12)):
        card = create_card(profile, seed=seed, authority=authority, auth_pin=AUTH_PIN,
                           sign_password=SIGN_PASSWORD, text_pin=TEXT_PIN, issued_at=ISSUED_AT)
        card.save(stack.runtime / f"{profile}.jwc")
        out[profile] = {name: cert.public_bytes(Encoding.DER) for name, cert in card.certificates().items()}
        card.close()
    return out


@pytest.fixture(scope="module")
def server_process(stack, expected) -> Iterator[Served]:
    images = {p: stack.runtime / f"{p}.jwc" for p in ("icc", "gpse")}
    server = Served(images, stack, stack.runtime / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(server_process: Served) -> Served:
    """Both cards in their readers, served by ``card serve``."""
    return server_process.ensure()


def jpki(reader: int, **kw: object):
    from workbench.client import JpkiClient

    transport = PcscTransport(reader, **kw)  # type: ignore[arg-type]
    transport.connect()
    return transport, JpkiClient(transport)


@needs_stack
def test_both_cards_in_the_two_vpcd_slots_and_the_stock_tools_see_them(served, stack):
    from workbench.transport.pcsc import list_readers

    assert list_readers() == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
    out = subprocess.run(["opensc-tool", "-r", "0", "-a"], env=stack.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip().replace(":", "").upper() == ATR_CONTACT
    out = subprocess.run(["opensc-tool", "-r", "1", "-a"], env=stack.env, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip().replace(":", "").upper() == "3B86800157424750534513"
    # -c: list the cards once and exit; -n: no ATR analysis (it would try to download a list)
    out = subprocess.run(["pcsc_scan", "-c", "-n"], env=stack.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "Virtual PCD 00 00" in out.stdout and "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B" in out.stdout
    assert "Virtual PCD 00 01" in out.stdout and out.stdout.count("Card inserted") == 2


@needs_stack
@pytest.mark.parametrize("profile", ["icc", "gpse"])
def test_certificates_tries_verify_and_sign_through_pcscd(served, expected, profile):
    """jpki-card.md 3.1, 4.3, 4.5, 8: the same client code as in-process, through PC/SC."""
    reader = ICC if profile == "icc" else GPSE
    transport, client = jpki(reader)
    try:
        assert transport.active_protocol == "T=1"
        assert transport.extended_length is (True if profile == "icc" else None)
        assert client.token_type().value == ("card" if profile == "icc" else "android")
        for name in ("auth_ca", "sign_ca"):
            assert client.read_certificate_der(name) == expected[profile][name]
        if profile == "icc":
            assert client.read_certificate_der("auth") == expected[profile]["auth"]
        else:  # the Android token gates the auth certificate behind the auth PIN (section 8)
            with pytest.raises(SecurityStatusError):
                client.read_certificate_der("auth")
            assert client.read_certificate_der("auth", pin=AUTH_PIN) == expected[profile]["auth"]
        with pytest.raises(SecurityStatusError):
            client.read_certificate_der("sign")
        assert client.read_certificate_der("sign", pin=SIGN_PASSWORD) == expected[profile]["sign"]
        assert (client.tries_left("auth"), client.tries_left("sign")) == (3, 5)
        for key, pin in (("auth", AUTH_PIN), ("sign", SIGN_PASSWORD)):
            signature = client.sign(b"login challenge", key=key, pin=pin)
            client.read_certificate(key, pin=pin).public_key().verify(
                signature, b"login challenge", padding.PKCS1v15(), hashes.SHA256()
            )
    finally:
        transport.disconnect()


class BareReader:
    """One reader through pyscard alone (no workbench code on the host side): hex in,
    (data, SW) out; no GET RESPONSE, no retries, nothing completed behind the test's back."""

    def __init__(self, name: str) -> None:
        from smartcard.System import readers

        found = [r for r in readers() if str(r) == name]
        assert found, f"no reader {name!r} in {[str(r) for r in readers()]}"
        self.connection = found[0].createConnection()
        self.connection.connect()

    @property
    def atr(self) -> str:
        return bytes(self.connection.getATR()).hex().upper()

    def send(self, command: str) -> tuple[bytes, int]:
        data, sw1, sw2 = self.connection.transmit(list(bytes.fromhex(command)))
        return bytes(data), sw1 << 8 | sw2

    def read_der(self, cla: int = 0x00) -> bytes:
        """The current EF's DER object: 4-byte header read, then chunks of at most 256 bytes
        (jpki-card.md 4.1, the first of the three ways clients learn the length)."""
        header, sw = self.send(f"{cla:02X}B0000004")
        assert sw == 0x9000 and header[:2] == b"\x30\x82", (header.hex(), hex(sw))
        size = 4 + int.from_bytes(header[2:4], "big")
        out = b""
        while len(out) < size:
            chunk = min(256, size - len(out))
            data, sw = self.send(f"{cla:02X}B0{len(out):04X}{chunk % 256:02X}")
            assert sw == 0x9000 and data, hex(sw)
            out += data
        return out

    def close(self) -> None:
        self.connection.disconnect()


@needs_stack
def test_phone_se_image_through_pcscd_basic_and_logical_channel(served, expected):
    """The phone token in slot 1 is an SE image (the phone's GlobalPlatform SE hosting the JPKI
    applet), served by ``card serve`` and driven with bare pyscard and hand-written APDUs:

    - basic channel (MODEL, workbench/se/element.py: basic-channel commands reach the JPKI
      applet, so a reader sees what it sees on the plastic card): SELECT the JPKI AP, the auth
      certificate answers 69 82 until VERIFY of 0018 (jpki-card.md 8), then reads in full;
      COMPUTE DIGITAL SIGNATURE with key 0017 (jpki-card.md 4.5) checks with that
      certificate's public key (pyca/cryptography, independent of the card);
    - MANAGE CHANNEL (ISO/IEC 7816-4 11.1; globalplatform.md 9, OMAPI) opens a logical
      channel, the JPKI AP is selected there, and the channel has its own security state:
      the basic channel's VERIFY does not reach it, and it does not disturb the basic channel;
      a closed channel answers 68 81.
    """
    assert is_se_image(served.images["gpse"])  # an SE image, not a card image
    reader = BareReader("Virtual PCD 00 01")
    try:
        assert reader.atr == ATR_PHONE
        # basic channel
        assert reader.send("00A4040C0AD392F000260100000001") == (b"", 0x9000)
        assert reader.send("00A4020C02000A") == (b"", 0x9000)
        assert reader.send("00B0000004") == (b"", 0x6982)  # gated behind the auth PIN
        assert reader.send("00A4020C020018") == (b"", 0x9000)
        assert reader.send("00200080") == (b"", 0x63C3)  # tries left, none spent
        assert reader.send("0020008004" + AUTH_PIN.encode().hex()) == (b"", 0x9000)
        assert reader.send("00A4020C02000A") == (b"", 0x9000)
        auth_der = reader.read_der()
        assert auth_der == expected["gpse"]["auth"]
        challenge_hash = hashes.Hash(hashes.SHA256())
        challenge_hash.update(b"login challenge")
        digest_info = "3031300D060960864801650304020105000420" + challenge_hash.finalize().hex()
        assert reader.send("00A4020C020017") == (b"", 0x9000)
        signature, sw = reader.send("802A008033" + digest_info + "00")
        assert sw == 0x9000 and len(signature) == 256
        x509.load_der_x509_certificate(auth_der).public_key().verify(
            signature, b"login challenge", padding.PKCS1v15(), hashes.SHA256())

        # a logical channel, opened from the basic channel: nothing selected, nothing verified
        number, sw = reader.send("0070000001")
        assert sw == 0x9000 and len(number) == 1 and 1 <= number[0] <= 3
        cla = f"{number[0]:02X}"
        assert reader.send(cla + "A4040C0AD392F000260100000001") == (b"", 0x9000)
        assert reader.send(cla + "A4020C02000B") == (b"", 0x9000)
        assert reader.read_der(number[0]) == expected["gpse"]["auth_ca"]
        assert reader.send(cla + "A4020C02000A") == (b"", 0x9000)
        assert reader.send(cla + "B0000004") == (b"", 0x6982)  # the basic channel's VERIFY stays there
        assert reader.send(cla + "A4020C020017") == (b"", 0x9000)
        # CLA 80 (proprietary) on channel n is 80 | n (ISO/IEC 7816-4 5.4.1)
        assert reader.send(f"{0x80 | number[0]:02X}2A008033" + digest_info + "00") == (b"", 0x6982)
        # the basic channel is still logged in and still signs
        signature_again, sw = reader.send("802A008033" + digest_info + "00")
        assert sw == 0x9000 and signature_again == signature  # PKCS#1 v1.5 is deterministic
        assert reader.send("007080" + cla) == (b"", 0x9000)  # close it
        assert reader.send(cla + "A4040C0AD392F000260100000001") == (b"", 0x6881)
    finally:
        reader.close()


@needs_stack
@needs_opensc
def test_opensc_binds_its_jpki_driver_to_the_phone_token(served, stack, expected):
    """OpenSC's ``jpki`` driver on the served SE image: it binds (the phone ATR is in none of
    its tables; the driver SELECTs the JPKI AP), ``pkcs15-tool -D`` lists the PKCS#15
    emulation with both PINs' tries, read with the empty VERIFY that spends nothing. The auth
    certificate's serial is missing from the listing: OpenSC's emulation marks EF 000A as
    public, and on the phone token it is gated behind the auth PIN (jpki-card.md 8), so
    OpenSC's read gets 69 82. With ``--verify-pin`` OpenSC reads it."""
    def tool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=stack.env, capture_output=True, text=True, timeout=60)

    out = tool("opensc-tool", "-r", "1", "-n")
    assert out.returncode == 0 and out.stdout.strip() == "jpki", out.stdout + out.stderr
    out = tool("pkcs15-tool", "-r", "1", "-D")
    assert out.returncode == 0, out.stderr
    listing = out.stdout
    assert "PKCS#15 Card [JPKI]" in listing
    for label in ("User Authentication Certificate", "Digital Signature Certificate",
                  "User Authentication Certificate CA", "Digital Signature Certificate CA"):
        assert f"X.509 Certificate [{label}]" in listing
    tries = [line.split(":")[1].strip() for line in listing.splitlines() if "Tries left" in line]
    assert tries == ["3", "5"]

    def encoded_serial(name: str) -> str:
        """How pkcs15-tool prints a serial: the DER INTEGER's tag, length and content (X.690
        8.3: two's complement, minimal, so a set top bit gets a 00 in front)."""
        serial = x509.load_der_x509_certificate(expected["gpse"][name]).serial_number
        content = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        return f"Encoded serial : 02 {len(content):02X} {content.hex().upper()}"

    assert encoded_serial("auth_ca") in listing and encoded_serial("sign_ca") in listing
    assert encoded_serial("auth") not in listing  # 69 82 without the auth PIN
    out = tool("pkcs15-tool", "-r", "1", "--verify-pin", "--auth-id", "01", "--pin", AUTH_PIN,
               "--read-certificate", "01")
    assert out.returncode == 0, out.stderr
    assert x509.load_pem_x509_certificate(out.stdout.encode()).public_bytes(Encoding.DER) == expected["gpse"]["auth"]
    transport, client = jpki(GPSE)
    try:
        assert (client.tries_left("auth"), client.tries_left("sign")) == (3, 5)  # OpenSC spent nothing
    finally:
        transport.disconnect()


@needs_stack
def test_reset_and_power_cycle_clear_the_login(served):
    """jpki-card.md 2.3: a warm reset (SCardReconnect RESET) and a power cycle (UNPOWER) clear
    the verified state; so does the transport's default disconnect."""
    transport, client = jpki(ICC, disposition="leave")
    try:
        for cycle in (lambda: transport.reset(), lambda: transport.power_cycle()):
            client.select_ap()
            client.verify("auth", AUTH_PIN)
            assert transport.transmit(SELECT_AUTH_KEY) == b"\x90\x00"
            assert transport.transmit(SIGN_SHA256)[-2:] == b"\x90\x00"  # logged in
            assert bytes.fromhex(ATR_CONTACT) == cycle()
            assert transport.transmit(SELECT_AUTH_KEY) == b"\x6a\x82"  # no AP: fresh card
            assert transport.transmit(SELECT_JPKI) + transport.transmit(SELECT_AUTH_KEY) == b"\x90\x00\x90\x00"
            assert transport.transmit(SIGN_SHA256) == b"\x69\x82"  # the login is gone
    finally:
        transport.disconnect()
    transport, client = jpki(ICC)  # default disposition: reset
    client.select_ap()
    client.verify("auth", AUTH_PIN)
    transport.disconnect()
    transport, client = jpki(ICC)
    try:
        assert transport.transmit(SELECT_AUTH_KEY) == b"\x6a\x82"
    finally:
        transport.disconnect()


@needs_stack
def test_card_info_on_both_readers_without_a_pin(served, stack, expected):
    """``card info``: token type, certificates readable without a PIN, tries; no try spent."""
    def info(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workbench", "card", "info", *args], env=stack.env,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    out = info("--reader", "1", "--json")
    assert out.returncode == 0, out.stderr
    token = json.loads(out.stdout)
    assert token["reader"] == "Virtual PCD 00 01" and token["token_type"] == "android"
    assert set(token["certificates"]) == {"auth_ca", "sign_ca"}
    assert set(token["needs_pin"]) == {"auth", "sign"}
    assert token["tries_left"] == {"auth": 3, "sign": 5}  # no text AP on the phone token
    out = info("--reader", "PCD 00 00")
    assert out.returncode == 0, out.stderr
    assert "card: My Number Card" in out.stdout and "[auth]" in out.stdout and "[auth_ca]" in out.stdout
    assert "[sign]  not shown: needs the sign password" in out.stdout
    assert "text   3" in out.stdout and ATR_CONTACT in out.stdout
    out = info("--reader", "no such reader", "--wait", "0")
    assert out.returncode == 2 and "no reader matching 'no such reader'" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


@needs_stack
def test_unknown_reader_and_empty_reader_are_typed_errors(served):
    with pytest.raises(NoReaderError, match="readers: 'Virtual PCD 00 00', 'Virtual PCD 00 01'"):
        PcscTransport("ACS ACR122U").connect()
    with pytest.raises(NoReaderError, match="no reader number 7"):
        PcscTransport(7).connect()


@needs_stack
def test_server_killed_mid_session_then_restarted_keeps_counters_and_certificates(served, expected):
    """The image commits each counter change as it happens: a killed server loses nothing."""
    transport, client = jpki(ICC)
    gpse_transport, gpse = jpki(GPSE)
    try:
        client.select_ap()
        with pytest.raises(WrongPinError):
            client.verify("auth", "0000")
        gpse.select_ap()
        with pytest.raises(WrongPinError):
            gpse.verify("sign", "WRONG1")
        client.select_ap()  # mid-session: the AP is selected when the server dies
        assert served.stop(signal.SIGKILL) == -signal.SIGKILL
        with pytest.raises(CardRemovedError, match="removed from 'Virtual PCD 00 00'"):
            transport.transmit(SELECT_AUTH_KEY)
    finally:
        transport.disconnect()
        gpse_transport.disconnect()
    wait_for_cards(present=False)
    with pytest.raises(NoCardError, match="no card in 'Virtual PCD 00 00' after waiting 0.3 s"):
        PcscTransport(ICC, wait_timeout=0.3).connect()

    served.start()
    transport, client = jpki(ICC)
    gpse_transport, gpse = jpki(GPSE)
    try:
        assert (client.tries_left("auth"), client.tries_left("sign")) == (2, 5)
        assert (gpse.tries_left("auth"), gpse.tries_left("sign")) == (3, 4)
        assert client.read_certificate_der("auth") == expected["icc"]["auth"]
        assert gpse.read_certificate_der("sign", pin=SIGN_PASSWORD) == expected["gpse"]["sign"]
        client.select_ap()
        client.verify("auth", AUTH_PIN)  # a right value restores the counter
        assert client.tries_left("auth") == 3 and gpse.tries_left("sign") == 5
    finally:
        transport.disconnect()
        gpse_transport.disconnect()


@needs_stack
def test_sigterm_stops_the_server_cleanly_and_the_images_stay_consistent(served):
    assert served.stop(signal.SIGTERM) == 0
    assert "stopped; card image(s) closed" in served.log_text()
    for path in served.images.values():
        wal = Path(f"{path}-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # closed: the WAL was checkpointed
        with load_token(path) as card:  # the card image, and the phone's SE image
            assert card.pin_status()["auth"] == 3
    wait_for_cards(present=False)
    served.start()


@needs_stack
def test_pcscd_restart_the_server_reconnects_by_itself(served, stack):
    """pcscd (and vpcd with it) goes away and comes back: the server reconnects with backoff
    and the cards are back in their readers with their state."""
    stack.restart()
    wait_for_cards(present=True, timeout=20)
    transport, client = jpki(GPSE)
    try:
        assert client.token_type().value == "android" and client.tries_left("sign") == 5
    finally:
        transport.disconnect()
    assert served.log_text().count("card removed: vpcd at") >= 2
    assert served.process is not None and served.process.poll() is None


class ScriptedCard:
    """A T=0-style card that answers 61XX and 6CXX, to drive the transport's completion."""

    atr = bytes.fromhex("3B021450")  # T=0 only, two historical bytes

    def power_on(self) -> bytes:
        return self.atr

    def reset(self) -> bytes:
        return self.atr

    def power_off(self) -> None:
        pass

    answers = {
        "00CA010000": "6110",
        "00C0000010": "11" * 16 + "6104",
        "00C0000004": "22" * 4 + "9000",
        "00CA020000": "6C08",
        "00CA020008": "33" * 8 + "9000",
    }

    def transmit(self, apdu: bytes) -> bytes:
        return bytes.fromhex(self.answers.get(apdu.hex().upper(), "6D00"))


@needs_stack
def test_61xx_and_6cxx_are_completed_by_the_transport_through_pcscd(served, stack):
    """An in-process VpcdServer with a scripted card in slot 0 (the CLI server stands aside;
    SIGINT stops it as cleanly as SIGTERM)."""
    assert served.stop(signal.SIGINT) == 0
    wait_for_cards(present=False, readers=(ICC,))
    server = VpcdServer(ScriptedCard(), port=stack.port).start()
    try:
        assert server.wait_connected(10)
        wait_for_cards(present=True, readers=(ICC,))
        with PcscTransport(ICC) as transport:
            assert transport.active_protocol == "T=0" and transport.is_virtual is False
            assert transport.transmit(bytes.fromhex("00CA010000")) == bytes.fromhex("11" * 16 + "22" * 4 + "9000")
            assert transport.transmit(bytes.fromhex("00CA020000")) == bytes.fromhex("33" * 8 + "9000")
        with PcscTransport(ICC, get_response=False) as raw:
            assert raw.transmit(bytes.fromhex("00CA010000")) == bytes.fromhex("6110")
        with pytest.raises(ProtocolMismatchError, match="does not offer T1"):
            PcscTransport(ICC, protocol="T1").connect()
    finally:
        server.stop()
    assert not server.running
    wait_for_cards(present=False, readers=(ICC,))
    served.start()


def test_no_thread_left_behind():
    """The in-process servers above stop their threads (daemon threads would hide a leak)."""
    assert not [t for t in threading.enumerate() if t.name.startswith("vpcd-")]

"""The phone's secure element as GlobalPlatform describes it: a table of status-word vectors
(globalplatform.md 3-6, 5.10) run by one generic test, then the contents of the answers
(GET STATUS, GET DATA, PUT KEY, SELECT) checked against bytes written out from the spec.

A vector is: the spec rule, the state the SE starts in (``factory``: as a supported phone
leaves the factory; ``installed``: the JPKI instance created by INSTALL, state 07;
``personalised``: keys, certificates, SET STATUS 0F and both PINs registered, as after
smartphone-service.md 15.2 C11), the scene (steps that must answer 9000 unless they end with
``=SW``) and the command under test with its expected status word. Commands are hand-written
hex; ``W:`` sends one wrapped in the open SCP03 session (the host side,
:class:`workbench.se.scp03.HostSession`, does the wrapping: SCP03 itself has its own vectors in
tests/test_se_scp03.py).

Steps: ``SCP:<isd|ssd>:<level>[:<channel>]`` opens a session; ``W:<hex>`` sends a wrapped
command; ``BUDGET:<n>`` sets the GET STATUS response budget; ``BADCRYPTO:<sd>`` runs a
handshake whose host cryptogram has one bit flipped; ``FLIPMAC:<hex>`` sends a wrapped command
with one C-MAC bit flipped; ``RESEND:<hex>`` sends a flipped one (it must answer 6982) and then
the untouched one (a card that kept the session open would accept it); ``REPLAY:<hex>`` sends a
wrapped command (it must answer 9000) and the same bytes again.

The helpers at the top (key pool, certificates, personalisation by hand-written APDUs) are
shared by the other ``tests/test_se_*`` modules.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import NameOID

from workbench.se import SecureElement, gp
from workbench.se.scp03 import HostSession

# --- identifiers, written out from smartphone-service.md 15.1 and globalplatform.md 5.1 -----

ISD = "A000000151000000"
SSD = "D392F000260100005344"
ELF = "D392F00026010000"
MODULE = "D392F000260100000000"
JPKI = "D392F000260100000001"
GP_TEST_KEY = "404142434445464748494A4B4C4D4E4F"  # GPPro's default key (globalplatform.md 8)
AUTH_PIN = "1234"
SIGN_PASSWORD = "ABC123"


def select(aid: str, channel: int = 0, p2: str = "0C") -> str:
    return f"{channel:02X}A404{p2}{len(aid) // 2:02X}{aid}"


def lv(*fields: str) -> str:
    return "".join(f"{len(f) // 2:02X}{f}" for f in fields)


def apdu(header: str, data: str, le: str = "") -> str:
    """A short command: header ‖ Lc ‖ data ‖ [Le]."""
    return f"{header}{len(data) // 2:02X}{data}{le}"


# globalplatform.md 5.3: ELF AID, module AID, instance AID, privileges 00, parameters C9 00,
# no token; P1 0C = install and make selectable (smartphone-service.md 15.2 C4)
INSTALL = apdu("80E60C00", lv(ELF, MODULE, JPKI, "00", "C900", ""), "00")
INSTALL_ONLY = apdu("80E60400", lv(ELF, MODULE, JPKI, "00", "C900", ""), "00")
MAKE_SELECTABLE = apdu("80E60800", lv("", "", JPKI, "00", "", ""), "00")
# [for personalization]: empty, empty, application AID, empty, empty, empty (5.3, C5)
PERSO = apdu("80E62000", lv("", "", JPKI, "", "", ""), "00")
DELETE = apdu("80E40000", "4F0A" + JPKI, "00")  # 5.6
LOCK = apdu("80F04080", JPKI)  # 5.8, smartphone-service.md 15.4 S3
UNLOCK = apdu("80F04000", JPKI)  # 15.5 R3
PERSONALISED = apdu("80F0400F", JPKI)  # 15.2 C10
GET_STATUS_APPS = "80F24000024F0000"  # 5.2: P1 40, legacy, match all
GET_STATUS_APPS_TLV = "80F24002024F0000"
SHA256_DIGEST_INFO = "3031300D060960864801650304020105000420" + "11" * 32
SIGN = apdu("802A0080", SHA256_DIGEST_INFO, "00")  # jpki-card.md 4.5


def verify(value: str, p2: str = "80") -> str:
    return apdu(f"002000{p2}", value.encode().hex())


def set_pin(p2: str, value: str) -> str:
    """RESET RETRY COUNTER P1 02 (new value only), smartphone-service.md 15.2 C11."""
    return apdu(f"002C02{p2}", value.encode().hex())


def sel_ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def dgi(tag: int, value: bytes) -> bytes:
    """One DGI: 2-byte tag, length (1 byte, or FF + 2 bytes from 255 on), value
    (globalplatform.md 5.5)."""
    n = len(value)
    length = bytes([n]) if n < 0xFF else b"\xff" + n.to_bytes(2, "big")
    return tag.to_bytes(2, "big") + length + value


# --- keys made once per test session (RSA-2048 generation is the slow part) -----------------


@functools.cache
def key_pool() -> tuple[rsa.RSAPrivateKey, ...]:
    """Four test key pairs the SE "generates" (SecureElement.factory(keygen=...))."""
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048)
                 for _ in range(4))


@functools.cache
def _ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class PoolKeygen:
    """The SE's key generator in tests: the pool's keys in turn (the first two calls give
    different keys, so auth and sign keys differ)."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def __call__(self, fid: int) -> rsa.RSAPrivateKey:
        return key_pool()[next(self._next) % len(key_pool())]


@functools.cache
def _certificate(n: int, e: int, name: str) -> bytes:
    """A test certificate over the public key (n, e), signed by a test CA made here with
    pyca/cryptography (independent of workbench.pki)."""
    when = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
    public = rsa.RSAPublicNumbers(e, n).public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SE CA")]))
            .public_key(public).serial_number(n % (1 << 63) + 1)
            .not_valid_before(when).not_valid_after(when + dt.timedelta(days=365))
            .sign(_ca_key(), hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def certificate_for(public: rsa.RSAPublicKey | bytes, name: str) -> bytes:
    """A test certificate for ``public`` (a key, or the DER RSAPublicKey the SE answered)."""
    if isinstance(public, bytes):
        public = load_der_public_key(public)  # type: ignore[assignment]
    assert isinstance(public, rsa.RSAPublicKey)
    numbers = public.public_numbers()
    return _certificate(numbers.n, numbers.e, name)


@functools.cache
def ca_certificate(name: str) -> bytes:
    return certificate_for(_ca_key().public_key(), name)


def new_se(**kw: object) -> SecureElement:
    kw.setdefault("seed", b"tests/se")
    kw.setdefault("keygen", PoolKeygen())
    se = SecureElement.factory(**kw)  # type: ignore[arg-type]
    se.power_on()
    return se


# --- a host talking to the SE: plain hex, or wrapped by an SCP03 HostSession -----------------


def sw_of(answer: bytes) -> str:
    return answer[-2:].hex().upper()


@dataclass
class Host:
    """The TSM side for tests: plain APDUs as hex, SCP03 wrapped ones through HostSession."""

    se: SecureElement
    session: HostSession | None = None
    channel: int = 0
    perso_block: int = 0  # the next STORE DATA block number (globalplatform.md 5.5)
    log: list[tuple[bytes, bytes]] = field(default_factory=list)  # (command, answer) on the wire
    answers: list[bytes] = field(default_factory=list)  # every answer, wire and unwrapped

    def raw(self, command: bytes) -> bytes:
        answer = self.se.transmit(command)
        self.log.append((command, answer))
        self.answers.append(answer)
        return answer

    def send(self, hex_command: str) -> bytes:
        return self.raw(bytes.fromhex(hex_command))

    def _on_channel(self, command: bytes) -> bytes:
        return bytes([command[0] | self.channel]) + command[1:]

    def open(self, sd: str = "ssd", level: int = 0x33, channel: int = 0,
             *, flip_cryptogram: bool = False) -> str:
        """SELECT the SD, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE (globalplatform.md 6.1-6.5);
        returns the SW of EXTERNAL AUTHENTICATE."""
        aid = {"ssd": SSD, "isd": ISD}[sd]
        self.channel = channel
        assert sw_of(self.send(select(aid, channel))) == "9000"
        host = HostSession(self.se.key_sets[bytes.fromhex(aid)][0], os.urandom(8), level)
        answer = self.raw(self._on_channel(host.initialize_update()))
        external = bytearray(self._on_channel(host.authenticate(answer)))
        if flip_cryptogram:
            external[5] ^= 0x01  # first byte of the host cryptogram (6.5)
        answer = self.raw(bytes(external))
        self.session = host if sw_of(answer) == "9000" else None
        return sw_of(answer)

    def wrap(self, hex_command: str) -> bytes:
        assert self.session is not None, "no SCP03 session open"
        return self._on_channel(self.session.wrap(bytes.fromhex(hex_command)))

    def w(self, hex_command: str) -> tuple[bytes, str]:
        """Send one command wrapped; (plain response data, SW)."""
        answer = self.raw(self.wrap(hex_command))
        assert self.session is not None
        plain = self.session.unwrap(answer)
        self.answers.append(plain)
        return plain[:-2], sw_of(plain)

    def step(self, step: str) -> str:
        """Run one vector step; its SW as hex."""
        kind, _, arg = step.partition(":")
        if kind == "SCP":
            sd, level, *ch = arg.split(":")
            return self.open(sd, int(level, 16), int(ch[0]) if ch else 0)
        if kind == "W":
            return self.w(arg)[1]
        if kind == "RESET":
            self.se.reset()
            self.session = None
            return "9000"
        if kind == "BUDGET":
            self.se.get_status_budget = int(arg)
            return "9000"
        if kind == "BADCRYPTO":
            return self.open(arg, 0x33, flip_cryptogram=True)
        if kind in ("FLIPMAC", "RESEND"):
            good = self.wrap(arg)
            bad = bytearray(good)
            bad[-2 if len(good) > 5 + good[4] else -1] ^= 0x01  # last MAC byte (Le after it)
            first = sw_of(self.raw(bytes(bad)))
            if kind == "FLIPMAC":
                return first
            assert first == "6982", f"the flipped C-MAC was answered {first}"
            return sw_of(self.raw(good))
        if kind == "REPLAY":
            wrapped = self.wrap(arg)
            first = self.raw(wrapped)
            assert self.session is not None
            assert sw_of(self.session.unwrap(first)) == "9000"
            return sw_of(self.raw(wrapped))
        return sw_of(self.send(step))


def read_public_key(host: Host, generate: int, more: int) -> tuple[bytes, list[bytes]]:
    """STORE DATA DGI A017/A01A, then A117/A11A with a 2-byte offset until the DER
    RSAPublicKey is complete (MODEL chunks, workbench.se.applet). Blocks are not the last one.
    Returns (DER, every answer)."""
    answers = []
    data, sw = host.w(apdu(f"80E208{host.perso_block:02X}", dgi(generate, b"").hex(), "00"))
    assert sw == "9000", sw
    host.perso_block += 1
    answers.append(data)
    assert data[:2] == b"\x30\x82"  # SEQUENCE with a 2-byte length
    total = 4 + int.from_bytes(data[2:4], "big")
    der = data
    while len(der) < total:
        offset = len(der).to_bytes(2, "big")
        chunk, sw = host.w(apdu(f"80E208{host.perso_block:02X}", dgi(more, offset).hex(), "00"))
        assert sw == "9000" and chunk, sw
        host.perso_block += 1
        answers.append(chunk)
        der += chunk
    return der[:total], answers


def store_blocks(host: Host, stream: bytes, *, size: int = 180, last: bool = True,
                 first_block: int = 0) -> list[bytes]:
    """STORE DATA in DGI format (P1 08), cut into ``size``-byte blocks numbered from
    ``first_block``; the final one has P1 88 when ``last`` (globalplatform.md 5.5)."""
    chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
    answers = []
    for n, chunk in enumerate(chunks):
        p1 = "88" if last and n == len(chunks) - 1 else "08"
        data, sw = host.w(apdu(f"80E2{p1}{first_block + n:02X}", chunk.hex(), "00"))
        assert sw == "9000", f"STORE DATA block {first_block + n} answered {sw}"
        answers.append(data)
    return answers


@dataclass
class Personalised:
    auth_public: bytes  # DER RSAPublicKey as the SE answered it
    sign_public: bytes
    auth_cert: bytes
    sign_cert: bytes
    answers: list[bytes]  # every STORE DATA answer


def personalise(se: SecureElement, *, pins: bool = True, level: int = 0x33,
                host: Host | None = None) -> Personalised:
    """smartphone-service.md 15.2 C1-C11 by hand-written APDUs: INSTALL, INSTALL [for
    personalization], key pairs A017/A01A, certificates 000A/0001/000B/0002, token info 0006,
    presence 0008 over several blocks, SET STATUS 0F, then (``pins``) the app registers both
    PINs with RESET RETRY COUNTER."""
    host = host or Host(se)
    assert host.open("ssd", level) == "9000"
    for step in (INSTALL, PERSO):
        assert host.w(step)[1] == "9000", step
    host.perso_block = 0
    auth_der, a1 = read_public_key(host, 0xA017, 0xA117)
    sign_der, a2 = read_public_key(host, 0xA01A, 0xA11A)
    auth_cert = certificate_for(auth_der, "phone auth")
    sign_cert = certificate_for(sign_der, "phone sign")
    stream = b"".join([
        dgi(0x000A, auth_cert), dgi(0x0001, sign_cert),
        dgi(0x000B, ca_certificate("auth CA")), dgi(0x0002, ca_certificate("sign CA")),
        dgi(0x0006, b"JPKIAPGPSETOKEN".ljust(32, b" ")), dgi(0x0008, b"\x8f\x8f\x00"),
    ])
    a3 = store_blocks(host, stream, first_block=host.perso_block)
    assert host.w(PERSONALISED)[1] == "9000"
    if pins:
        for step in (select(JPKI), set_pin("98", AUTH_PIN), set_pin("9B", SIGN_PASSWORD)):
            assert sw_of(host.send(step)) == "9000", step
    return Personalised(auth_der, sign_der, auth_cert, sign_cert, [*a1, *a2, *a3])


def private_windows(se: SecureElement, width: int = 16) -> set[bytes]:
    """Every ``width``-byte window of the applet's private values p, q, d, dP, dQ, qInv (both
    keys), taken out of band with hazmat_private_key."""
    out: set[bytes] = set()
    for fid in (0x0017, 0x001A):
        try:
            key = se.hazmat_private_key(bytes.fromhex(JPKI), fid)
        except Exception:  # noqa: BLE001 - a key that is not there leaks nothing
            continue
        pn = key.private_numbers()
        for value in (pn.p, pn.q, pn.d, pn.dmp1, pn.dmq1, pn.iqmp):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            out.update(raw[i:i + width] for i in range(len(raw) - width + 1))
    return out


def leaks(answer: bytes, windows: set[bytes], width: int = 16) -> bool:
    return any(answer[i:i + width] in windows for i in range(len(answer) - width + 1))


def make_se(base: str) -> SecureElement:
    """A fresh SE in one of the table's start states."""
    se = new_se()
    if base == "installed":
        host = Host(se)
        assert host.open("ssd", 0x33) == "9000" and host.w(INSTALL)[1] == "9000"
    elif base == "personalised":
        personalise(se)
    elif base == "unset":
        personalise(se, pins=False)
    else:
        assert base == "factory"
    se.power_on()  # every vector starts after a reset: no session, nothing selected
    return se


# --- the table ----------------------------------------------------------------------------

LOCKED_APP = ["SCP:ssd:33", f"W:{LOCK}"]
CARD_LOCKED = ["SCP:isd:01", "W:80F0807F"]
TERMINATED = ["SCP:isd:01", "W:80F080FF"]
THREE_CHANNELS = ["0070000001", "0070000001", "0070000001"]

# (rule, start state, scene, command, expected SW)
VECTORS: list[tuple[str, str, list[str], str, str]] = [
    # SELECT (globalplatform.md 5.1, 3)
    ("5.1 SELECT the ISD", "factory", [], select(ISD, p2="00") + "00", "9000"),
    ("5.1 SELECT the JPKI SSD", "factory", [], select(SSD, p2="00") + "00", "9000"),
    ("3 SELECT the JPKI instance before it is installed", "factory", [], select(JPKI), "6A82"),
    ("3 SELECT the JPKI instance once SELECTABLE (07)", "installed", [], select(JPKI), "9000"),
    ("3 SELECT an unknown AID", "factory", [], select("A0000000041010"), "6A82"),
    ("3 SELECT the load file (not an application)", "factory", [], select(ELF), "6A82"),
    ("3 an INSTALLED (03) application is not selectable", "factory",
     ["SCP:ssd:33", f"W:{INSTALL_ONLY}"], select(JPKI), "6A82"),
    ("5.3 INSTALL [for make selectable] 03 -> 07", "factory",
     ["SCP:ssd:33", f"W:{INSTALL_ONLY}", f"W:{MAKE_SELECTABLE}"], select(JPKI), "9000"),
    ("3 SELECT of a LOCKED application answers 6A82 (MODEL)", "personalised", LOCKED_APP,
     select(JPKI), "6A82"),
    ("3 the JPKI AID with P2 04 on a locked applet", "personalised", LOCKED_APP,
     select(JPKI, p2="04"), "6A82"),
    # content management needs an authenticated channel at a level (6.10, MODEL levels)
    ("6.10 INSTALL without a session", "factory", [select(SSD)], INSTALL, "6982"),
    ("6.10 INSTALL without a session, nothing selected (ISD)", "factory", [], INSTALL, "6982"),
    ("6.10 GET STATUS needs a session", "factory", [select(SSD)], GET_STATUS_APPS, "6982"),
    ("6.10 DELETE without a session", "personalised", [select(SSD)], DELETE, "6982"),
    ("6.10 SET STATUS without a session", "personalised", [select(SSD)], LOCK, "6982"),
    ("6.10 STORE DATA without a session", "installed", [select(SSD)], "80E2880000", "6982"),
    ("6.10 a secured CLA 84 without a session", "factory", [select(SSD)],
     "84F240000A4F00" + "00" * 8 + "00", "6982"),
    ("6.10 a plain command inside a C-MAC session is not authenticated", "factory",
     ["SCP:ssd:01"], GET_STATUS_APPS, "6982"),
    ("6.10 a plain INSTALL inside a level-33 session", "factory", ["SCP:ssd:33"], INSTALL, "6982"),
    ("6.10 INSTALL at C-MAC only (01)", "factory", ["SCP:ssd:01"], f"W:{INSTALL}", "9000"),
    ("6.10 GET STATUS at C-MAC only (01)", "factory", ["SCP:ssd:01"], f"W:{GET_STATUS_APPS}",
     "9000"),
    ("6.10 MODEL: STORE DATA needs C-DECRYPTION", "installed", ["SCP:ssd:11", f"W:{PERSO}"],
     "W:80E28800060008038F8F00", "6982"),
    ("6.10 MODEL: STORE DATA at 01", "installed", ["SCP:ssd:01", f"W:{PERSO}"],
     "W:80E28800060008038F8F00", "6982"),
    ("6.10 MODEL: STORE DATA at 03", "installed", ["SCP:ssd:03", f"W:{PERSO}"],
     "W:80E28800060008038F8F00", "9000"),
    ("6.10 MODEL: PUT KEY needs C-DECRYPTION", "factory", ["SCP:ssd:01"],
     "W:" + apdu("80D80081", "31" + ("8810" + "00" * 16 + "03000000") * 3, "00"), "6982"),
    ("5.7 PUT KEY whose KCV does not match", "factory", ["SCP:ssd:03"],
     "W:" + apdu("80D80081", "31" + ("8810" + "00" * 16 + "03000000") * 3, "00"), "6A80"),
    ("5.7 PUT KEY replacing a KVN that does not exist", "factory", ["SCP:ssd:03"],
     "W:" + apdu("80D84481", "31" + ("8810" + "00" * 16 + "03000000") * 3, "00"), "6A88"),
    # INSTALL (5.3)
    ("5.3 INSTALL of an existing instance", "installed", ["SCP:ssd:33"], f"W:{INSTALL}", "6985"),
    ("5.3/5.10 INSTALL from an unknown load file", "factory", ["SCP:ssd:33"],
     "W:" + apdu("80E60C00", lv("D392F00026010099", MODULE, JPKI, "00", "C900", ""), "00"),
     "6A88"),
    ("5.3/5.10 INSTALL of an unknown module", "factory", ["SCP:ssd:33"],
     "W:" + apdu("80E60C00", lv(ELF, "D392F000260100000099", JPKI, "00", "C900", ""), "00"),
     "6A88"),
    ("5.3 INSTALL with truncated LV data", "factory", ["SCP:ssd:33"], "W:80E60C000508D392F000",
     "6A80"),
    ("5.3 INSTALL [for personalization] of an unknown AID", "factory", ["SCP:ssd:33"],
     "W:" + apdu("80E62000", lv("", "", "D392F000260100000009", "", "", ""), "00"), "6A88"),
    ("5.3 INSTALL [for personalization] of a locked application", "personalised", LOCKED_APP,
     f"W:{PERSO}", "6985"),
    # DELETE (5.6)
    ("5.6 DELETE an unknown AID", "factory", ["SCP:ssd:33"],
     "W:" + apdu("80E40000", "4F0AD392F000260100000009", "00"), "6A88"),
    ("5.6 DELETE the JPKI instance", "personalised", ["SCP:ssd:33"], f"W:{DELETE}", "9000"),
    ("5.6 SELECT after DELETE", "personalised", ["SCP:ssd:33", f"W:{DELETE}"], select(JPKI),
     "6A82"),
    ("5.6 DELETE twice", "personalised", ["SCP:ssd:33", f"W:{DELETE}"], f"W:{DELETE}", "6A88"),
    # SET STATUS (5.8) and the transitions of 3
    ("5.8 SET STATUS of an unknown AID", "factory", ["SCP:ssd:33"],
     "W:" + apdu("80F04080", "D392F000260100000009"), "6A88"),
    ("5.8 SET STATUS P1 60 of an unknown AID", "factory", ["SCP:isd:01"],
     "W:" + apdu("80F06080", "D392F000260100000009"), "6A88"),
    ("3 lock 0F -> 8F", "personalised", ["SCP:ssd:33"], f"W:{LOCK}", "9000"),
    ("3 lock of a locked application", "personalised", LOCKED_APP, f"W:{LOCK}", "6985"),
    ("3 unlock 8F -> 0F", "personalised", LOCKED_APP, f"W:{UNLOCK}", "9000"),
    ("3 unlock of an unlocked application", "personalised", ["SCP:ssd:33"], f"W:{UNLOCK}",
     "6985"),
    ("3 SELECT after unlock", "personalised", [*LOCKED_APP, f"W:{UNLOCK}"], select(JPKI), "9000"),
    ("3 application-specific state 0F from 07", "installed", ["SCP:ssd:33"],
     f"W:{PERSONALISED}", "9000"),
    ("3 an application-specific state needs SELECTABLE (not from 03)", "factory",
     ["SCP:ssd:33", f"W:{INSTALL_ONLY}"], f"W:{PERSONALISED}", "6985"),
    ("3 a locked application takes no application-specific state", "personalised", LOCKED_APP,
     f"W:{PERSONALISED}", "6985"),
    ("3 LOCKED = current state with bit 8: an INSTALLED application locks to 83", "factory",
     ["SCP:ssd:33", f"W:{INSTALL_ONLY}"], f"W:{LOCK}", "9000"),
    ("3/5.8 P2 07 is not an application-specific state", "installed", ["SCP:ssd:33"],
     "W:" + apdu("80F04007", JPKI), "6A86"),
    ("5.8 P1 40 locks an SSD (from the ISD)", "factory", ["SCP:isd:01"],
     "W:" + apdu("80F04080", SSD), "9000"),
    ("3 a locked SD is not selectable", "factory", ["SCP:isd:01", "W:" + apdu("80F04080", SSD)],
     select(SSD), "6A82"),
    ("5.8 P1 60 locks the SSD and its applications", "personalised",
     ["SCP:isd:01", "W:" + apdu("80F06080", SSD)], select(JPKI), "6A82"),
    # STORE DATA (5.5)
    ("5.5 STORE DATA without INSTALL [for personalization]", "installed", ["SCP:ssd:33"],
     "W:80E28800060008038F8F00", "6985"),
    ("5.5 STORE DATA block 00", "installed", ["SCP:ssd:33", f"W:{PERSO}"],
     "W:80E28800060008038F8F00", "9000"),
    ("5.5 STORE DATA wrong block number", "installed", ["SCP:ssd:33", f"W:{PERSO}"],
     "W:80E28801060008038F8F00", "6A86"),
    ("5.5 STORE DATA skipping a block", "installed",
     ["SCP:ssd:33", f"W:{PERSO}", "W:80E20800060008038F8F00"], "W:80E28802060008038F8F00",
     "6A86"),
    ("5.5 STORE DATA not in DGI format (P1 structure 10)", "installed",
     ["SCP:ssd:33", f"W:{PERSO}"], "W:80E29000060008038F8F00", "6A86"),
    ("5.5 MODEL: a DGI the applet does not know", "installed", ["SCP:ssd:33", f"W:{PERSO}"],
     "W:80E2880005777702AAAA", "6A88"),
    ("5.5 the last block ends inside a DGI", "installed", ["SCP:ssd:33", f"W:{PERSO}"],
     "W:80E28800050008058F8F", "6A80"),
    ("5.5 MODEL: A117 without a key generated in the sequence", "installed",
     ["SCP:ssd:33", f"W:{PERSO}"], "W:80E2080005A117020000", "6985"),
    # GET STATUS (5.2) and its paging
    ("5.2 GET STATUS applications, legacy", "installed", ["SCP:ssd:33"],
     f"W:{GET_STATUS_APPS}", "9000"),
    ("5.2 GET STATUS applications, TLV", "installed", ["SCP:ssd:33"],
     f"W:{GET_STATUS_APPS_TLV}", "9000"),
    ("5.2 GET STATUS the ISD", "factory", ["SCP:ssd:33"], "W:80F28000024F0000", "9000"),
    ("5.2 GET STATUS load files and modules", "factory", ["SCP:ssd:33"], "W:80F21000024F0000",
     "9000"),
    ("5.2 GET STATUS: nothing matches the AID prefix", "factory", ["SCP:ssd:33"],
     "W:80F24000044F02A00000", "6A88"),
    ("5.2 GET STATUS wrong P1", "factory", ["SCP:ssd:33"], "W:80F20100024F0000", "6A86"),
    ("5.2/9 paging: a small budget answers 63 10", "installed", ["SCP:ssd:33", "BUDGET:13"],
     f"W:{GET_STATUS_APPS}", "6310"),
    ("5.2/9 paging: next occurrence (P2 01) ends with 90 00", "installed",
     ["SCP:ssd:33", "BUDGET:13", f"W:{GET_STATUS_APPS}=6310"], "W:80F24001024F0000", "9000"),
    ("5.2/9 paging in TLV format", "installed", ["SCP:ssd:33", "BUDGET:40"],
     f"W:{GET_STATUS_APPS_TLV}", "6310"),
    ("5.2/9 paging in TLV format, next (P2 03)", "installed",
     ["SCP:ssd:33", "BUDGET:40", f"W:{GET_STATUS_APPS_TLV}=6310"], "W:80F24003024F0000",
     "9000"),
    # MANAGE CHANNEL (OMAPI logical channels, globalplatform.md 9; ISO 7816-4)
    ("9 MANAGE CHANNEL opens channel 1", "factory", [], "0070000001", "9000"),
    ("9 channels 1-3 open, a 4th is refused", "factory", THREE_CHANNELS, "0070000001", "6A81"),
    ("9 MANAGE CHANNEL close", "factory", ["0070000001"], "00708001", "9000"),
    ("9 a command on a channel that was closed", "factory", ["0070000001", "00708001"],
     select(ISD, channel=1), "6881"),
    ("9 a command on a channel never opened", "factory", [], select(ISD, channel=2), "6881"),
    ("9 the basic channel cannot be closed", "factory", [], "00708000", "6A86"),
    ("9 SELECT on channel 1", "personalised", ["0070000001"], select(JPKI, channel=1), "9000"),
    ("9 an SCP03 session on channel 2", "factory", ["0070000001", "0070000001", "SCP:ssd:33:2"],
     f"W:{GET_STATUS_APPS}", "9000"),
    ("9 a closed channel's session is gone when the number is reused", "factory",
     ["0070000001", "SCP:ssd:01:1", "00708001", "0070000001"], f"W:{GET_STATUS_APPS}", "6982"),
    # GET DATA (5.9)
    ("5.9 GET DATA card recognition data", "factory", [], "80CA006600", "9000"),
    ("5.9 GET DATA CPLC", "factory", [], "80CA9F7F00", "9000"),
    ("5.9 GET DATA key information template", "factory", [select(SSD)], "80CA00E000", "9000"),
    ("5.9 GET DATA in a session", "factory", ["SCP:ssd:33"], "W:80CA00E000", "9000"),
    ("5.9/5.10 GET DATA of an unknown tag", "factory", [], "80CA00FE00", "6A88"),
    # SCP03 handshake and session rules (6.4, 6.10)
    ("6.4 MODEL: wrong host cryptogram", "factory", [], "BADCRYPTO:ssd", "6300"),
    ("6.4 after a wrong host cryptogram nothing is open", "factory", ["BADCRYPTO:ssd=6300"],
     "84F240000A4F00" + "00" * 8 + "00", "6982"),
    ("6.5 MODEL: EXTERNAL AUTHENTICATE without INITIALIZE UPDATE", "factory", [select(SSD)],
     "8482330010" + "00" * 16, "6985"),
    ("6.1 INITIALIZE UPDATE with an unknown KVN", "factory", [select(SSD)],
     "8050310008" + "01" * 8 + "00", "6A88"),
    ("6.10 MODEL: a flipped C-MAC bit", "factory", ["SCP:ssd:01"], f"FLIPMAC:{GET_STATUS_APPS}",
     "6982"),
    ("6.10 MODEL: after a C-MAC failure the session is closed", "factory", ["SCP:ssd:01"],
     f"RESEND:{GET_STATUS_APPS}", "6982"),
    ("6.6 a replayed wrapped command is refused", "factory", ["SCP:ssd:01"],
     f"REPLAY:{GET_STATUS_APPS}", "6982"),
    ("6.10 SELECT of another application closes the session", "installed",
     ["SCP:ssd:01", select(JPKI, p2="0C"), select(SSD)], "84F240000A4F00" + "00" * 8 + "00",
     "6982"),
    # card life cycle (3, 5.8 P1 80, 9 item 4)
    ("3 card SECURED -> CARD_LOCKED", "factory", ["SCP:isd:01"], "W:80F0807F", "9000"),
    ("3 card CARD_LOCKED -> SECURED", "factory", CARD_LOCKED, "W:80F0800F", "9000"),
    ("3 card SECURED -> INITIALIZED is not a transition", "factory", ["SCP:isd:01"],
     "W:80F08007", "6985"),
    ("3 MODEL: on CARD_LOCKED the ISD is selectable", "factory", CARD_LOCKED,
     select(ISD, channel=0), "9000"),
    ("3 MODEL: on CARD_LOCKED an SSD is not", "factory", CARD_LOCKED, select(SSD), "6A82"),
    ("3 MODEL: on CARD_LOCKED the JPKI applet is not", "personalised", CARD_LOCKED,
     select(JPKI), "6A82"),
    ("3 MODEL: on CARD_LOCKED a reader's VERIFY does not reach the applet", "personalised",
     [*CARD_LOCKED, "RESET"], verify(AUTH_PIN, "98"), "6D00"),
    ("3 MODEL: the applet selected before CARD_LOCKED stops answering", "personalised",
     ["0070000001", select(JPKI, channel=1), *CARD_LOCKED], "01A4020C020018", "6A82"),
    ("5.8 an SSD cannot change the card's life cycle", "factory", ["SCP:ssd:01"], "W:80F0807F",
     "6982"),
    ("3 card -> TERMINATED", "factory", ["SCP:isd:01"], "W:80F080FF", "9000"),
    ("9 item 4, MODEL: TERMINATED answers GET DATA", "factory", TERMINATED, "80CA9F7F00", "9000"),
    ("9 item 4, MODEL: TERMINATED answers GET DATA (ISO class, nothing selected)", "personalised",
     [*TERMINATED, "RESET"], "00CA006600", "9000"),
    ("9 item 4, MODEL: TERMINATED refuses SELECT", "factory", TERMINATED, select(ISD), "6985"),
    ("9 item 4, MODEL: TERMINATED refuses the applet", "personalised", TERMINATED, select(JPKI),
     "6985"),
    ("9 item 4, MODEL: TERMINATED refuses a session", "factory", TERMINATED,
     "8050000008" + "01" * 8 + "00", "6985"),
    ("3 TERMINATED is irreversible", "factory", TERMINATED, "W:80F0800F", "6985"),
    # ISO class and odd bytes (5.10)
    ("5.10 unknown INS to a security domain", "factory", [select(SSD)], "80EE000000", "6D00"),
    ("5.10 fewer than 4 bytes", "factory", [], "80CA", "6700"),
]


def _split(step: str) -> tuple[str, str]:
    head, sep, sw = step.rpartition("=")
    return (head, sw) if sep and len(sw) == 4 else (step, "9000")


@pytest.mark.parametrize("rule,base,scene,command,expected", VECTORS,
                         ids=[v[0] for v in VECTORS])
def test_gp_status_word_vectors(rule, base, scene, command, expected):
    se = make_se(base)
    host = Host(se)
    for step in scene:
        body, want = _split(step)
        got = host.step(body)
        assert got == want, f"scene step {body} answered {got}, not {want}"
    assert host.step(command) == expected, rule


# --- answers checked byte by byte ---------------------------------------------------------


def test_get_status_legacy_matches_the_spec_illustration():
    """globalplatform.md 5.2: the legacy entries of the SSD (0F, privilege 80) and of the JPKI
    applet in state 0F, written out in the spec."""
    se = make_se("personalised")
    host = Host(se)
    assert host.open() == "9000"
    data, sw = host.w(GET_STATUS_APPS)
    assert sw == "9000"
    assert data.hex().upper() == ("0AD392F0002601000053440F80" "0AD392F0002601000000010F00")


def test_get_status_paging_returns_every_entry_once():
    """5.2 and 9.1: with a budget of one entry per answer, 63 10 until the last, and the
    concatenation is the unpaged answer."""
    se = make_se("installed")
    host = Host(se)
    host.open()
    whole, sw = host.w(GET_STATUS_APPS)
    assert sw == "9000"
    se.get_status_budget = 13  # one legacy entry: 1 + 10 + 1 + 1 bytes
    parts, p2 = [], "00"
    while True:
        data, sw = host.w(f"80F240{p2}024F0000")
        parts.append(data)
        if sw == "9000":
            break
        assert sw == "6310"
        p2 = "01"
    assert len(parts) == 2 and all(len(p) == 13 for p in parts)
    assert b"".join(parts) == whole


def _tlv(data: bytes) -> list[tuple[int, bytes]]:
    """A minimal BER-TLV reader for the tests (1-2 byte tags, short or 81/82 lengths)."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            tag = tag << 8 | data[i]
            i += 1
        n = data[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        out.append((tag, data[i:i + n]))
        i += n
    return out


def test_get_status_tlv_entry_fields():
    """5.2 TLV format: E3 { 4F AID, 9F70 life cycle, C5 privileges (3 bytes), C4 ELF, 84 module,
    CC associated SD }."""
    se = make_se("personalised")
    host = Host(se)
    host.open()
    data, sw = host.w(GET_STATUS_APPS_TLV)
    assert sw == "9000"
    entries = [dict(_tlv(value)) for tag, value in _tlv(data) if tag == 0xE3]
    by_aid = {e[0x4F].hex().upper(): e for e in entries}
    assert set(by_aid) == {SSD, JPKI}
    app = by_aid[JPKI]
    assert app[0x9F70] == b"\x0f" and app[0xC5] == b"\x00\x00\x00"
    assert app[0xC4].hex().upper() == ELF and app[0x84].hex().upper() == MODULE
    assert app[0xCC].hex().upper() == SSD
    assert by_aid[SSD][0xC5] == bytes.fromhex("804000")  # 4: SSD under authorized management


def test_get_data_card_recognition_data_names_gp_and_scp03():
    """5.9: tag 66 { 73 { 06 OID 1.2.840.114283.1 (GlobalPlatform), 64 { 06 SCP03 i=70 } } }.
    The OIDs are decoded with asn1crypto, not with the workbench."""
    from asn1crypto.core import ObjectIdentifier

    answer = make_se("factory").transmit(bytes.fromhex("80CA006600"))
    assert answer[-2:] == b"\x90\x00"
    ((tag, value),) = _tlv(answer[:-2])
    assert tag == 0x66
    ((tag, inner),) = _tlv(value)
    assert tag == 0x73
    parts = dict(_tlv(inner))
    gp_oid = ObjectIdentifier.load(b"\x06" + bytes([len(parts[0x06])]) + parts[0x06]).dotted
    assert gp_oid == "1.2.840.114283.1"
    ((_, scp),) = _tlv(parts[0x64])
    scp_oid = ObjectIdentifier.load(b"\x06" + bytes([len(scp)]) + scp).dotted
    assert scp_oid == "1.2.840.114283.4.3.112"  # SCP 03, i = 70 (6.2)


def test_get_data_cplc_has_42_bytes_and_the_se_serial():
    """5.9 CPLC (GP card production life cycle data): 42 bytes; the IC serial number is bytes
    12-15 (after fabricator, type, OS id, OS date, OS level, fabrication date: 6 x 2 bytes)."""
    se = make_se("factory")
    answer = se.transmit(bytes.fromhex("80CA9F7F00"))
    assert answer[:3] == b"\x9f\x7f\x2a" and answer[-2:] == b"\x90\x00"
    cplc = answer[3:-2]
    assert len(cplc) == 42
    assert cplc[12:16] == bytes.fromhex(se.meta["se_id"])[:4]


def test_get_data_key_information_template():
    """5.9 tag 00E0: one C0 { key id, KVN, type 88 (AES), length 16 } per key of the SSD's key
    set KVN 30 (smartphone-service.md 15.1: AES-128, KVN 30)."""
    se = make_se("factory")
    host = Host(se)
    assert sw_of(host.send(select(SSD))) == "9000"
    answer = host.send("80CA00E000")
    assert answer.hex().upper() == "E012" "C00401308810" "C00402308810" "C00403308810" "9000"


def test_select_of_a_security_domain_answers_an_fci():
    """5.1: FCI template 6F { 84 AID, A5 proprietary data }."""
    answer = make_se("factory").transmit(bytes.fromhex(select(ISD, p2="00") + "00"))
    assert answer[-2:] == b"\x90\x00"
    ((tag, fci),) = _tlv(answer[:-2])
    fields = dict(_tlv(fci))
    assert tag == 0x6F and fields[0x84].hex().upper() == ISD and 0xA5 in fields


def test_isd_holds_the_gp_test_key():
    """MODEL: the ISD carries GlobalPlatform's well-known test key (never a real key); its AES
    KCV computed here with AES-ECB over 16 x 01 (globalplatform.md 6.11)."""
    se = make_se("factory")
    (keys,) = se.key_sets[bytes.fromhex(ISD)]
    assert keys.kvn == 0x30 and keys.enc.hex().upper() == GP_TEST_KEY
    enc = Cipher(algorithms.AES(bytes.fromhex(GP_TEST_KEY)), modes.ECB()).encryptor()
    assert (enc.update(b"\x01" * 16) + enc.finalize())[:3].hex().upper() == "504A77"


def _aes_ecb(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def test_put_key_adds_a_key_set_the_host_can_open():
    """5.7: PUT KEY P1 00 (add), P2 81 (keys 1-3), key type 88, the key AES-ECB encrypted under
    the static DEK (computed here with pyca/cryptography), KCV 3 bytes; the answer is the new
    KVN and the three KCVs; a session then opens with KVN 31."""
    se = make_se("factory")
    host = Host(se)
    assert host.open("ssd", 0x33) == "9000"
    dek = se.key_sets[bytes.fromhex(SSD)][0].dek
    new = [bytes(range(i, i + 16)) for i in (0x10, 0x20, 0x30)]
    body = "31"
    kcvs = b""
    for key in new:
        kcv = _aes_ecb(key, b"\x01" * 16)[:3]
        kcvs += kcv
        body += "8810" + _aes_ecb(dek, key).hex() + "03" + kcv.hex()
    data, sw = host.w(apdu("80D80081", body, "00"))
    assert sw == "9000"
    assert data == b"\x31" + kcvs
    assert {k.kvn for k in se.key_sets[bytes.fromhex(SSD)]} == {0x30, 0x31}
    from workbench.se.scp03 import StaticKeys

    host2 = HostSession(StaticKeys(*new, kvn=0x31), os.urandom(8), 0x33)
    assert sw_of(se.transmit(bytes.fromhex(select(SSD)))) == "9000"
    answer = se.transmit(host2.initialize_update())
    assert se.transmit(host2.authenticate(answer)) == b"\x90\x00"


def test_store_data_level_must_hold_for_the_whole_personalisation():
    """6.10 MODEL: the level needed by STORE DATA (C-MAC + C-DECRYPTION) is that of the
    session, whatever INSTALL [for personalization] was sent at."""
    se = make_se("installed")
    host = Host(se)
    host.open("ssd", 0x01)
    assert host.w(PERSO)[1] == "9000"
    assert host.w("80E28800060008038F8F00")[1] == "6982"
    assert se.files[bytes.fromhex(JPKI)].objects.get(0x0008) is None


def test_manage_channel_numbers_are_reused_after_close():
    """ISO 7816-4 MANAGE CHANNEL: the card assigns the lowest free number (OMAPI)."""
    se = make_se("factory")
    answers = [se.transmit(bytes.fromhex("0070000001")).hex().upper() for _ in range(3)]
    assert answers == ["019000", "029000", "039000"]
    assert se.transmit(bytes.fromhex("00708002")) == b"\x90\x00"
    assert se.transmit(bytes.fromhex("0070000001")).hex().upper() == "029000"


def test_a_new_channel_inherits_a_selection_only_from_a_supplementary_channel():
    """ISO 7816-4 (MANAGE CHANNEL open) and GPC: a channel opened from the basic channel starts
    with the default selection; one opened from a supplementary channel gets that channel's
    application (selected, but with no security state of its own: VERIFY is per channel)."""
    se = make_se("personalised")
    assert sw_of(se.transmit(bytes.fromhex(select(JPKI)))) == "9000"
    assert se.transmit(bytes.fromhex("0070000001")).hex().upper() == "019000"
    # channel 1 has nothing selected: a GP GET DATA there reaches the ISD (key information)
    assert se.transmit(bytes.fromhex("81CA00E000"))[:1] == b"\xe0"
    # from channel 1, with the applet selected and the auth PIN verified, open channel 2
    for step in (select(JPKI, channel=1), "01A4020C020018", "01" + verify(AUTH_PIN)[2:]):
        assert sw_of(se.transmit(bytes.fromhex(step))) == "9000", step
    assert se.transmit(bytes.fromhex("0170000001")).hex().upper() == "029000"
    # the applet is selected on channel 2 (an EF can be selected in it) ...
    assert sw_of(se.transmit(bytes.fromhex("02A4020C020017"))) == "9000"
    # ... but the PIN verified on channel 1 is not verified there
    assert sw_of(se.transmit(bytes.fromhex("82" + SIGN[2:]))) == "6982"
    assert sw_of(se.transmit(bytes.fromhex("01A4020C020017"))) == "9000"
    assert sw_of(se.transmit(bytes.fromhex("81" + SIGN[2:]))) == "9000"


def test_card_lock_and_unlock_restore_the_applet():
    """3: SECURED -> CARD_LOCKED -> SECURED; after it the applet answers again."""
    se = make_se("personalised")
    host = Host(se)
    host.open("isd", 0x01)
    assert host.w("80F0807F")[1] == "9000"
    assert se.card_state == 0x7F
    assert host.w("80F0800F")[1] == "9000"
    assert se.card_state == 0x0F
    assert sw_of(se.transmit(bytes.fromhex(select(JPKI)))) == "9000"
    assert sw_of(se.transmit(bytes.fromhex(verify(AUTH_PIN, "98")))) == "9000"


def test_registry_matches_section_3_after_the_issuance_script():
    """3, smartphone-service.md 15.8: ISD SECURED 0F, ELF LOADED 01, SSD PERSONALIZED 0F, the
    instance 0F associated with the SSD, made from the ELF and module."""
    se = make_se("personalised")
    by_aid = {e.aid.hex().upper(): e for e in se.registry}
    assert {a: by_aid[a].life_cycle for a in by_aid} == {ISD: 0x0F, ELF: 0x01, SSD: 0x0F,
                                                        JPKI: 0x0F}
    app = by_aid[JPKI]
    assert app.kind is gp.EntryKind.APPLICATION
    assert (app.sd_aid.hex().upper(), app.elf_aid.hex().upper(),
            app.module_aid.hex().upper()) == (SSD, ELF, MODULE)


def test_a_custom_atr_given_at_issuance_is_the_one_answered(make_card):
    """jpki-card.md 7-8: the phone token's ATR may be given at issuance; the SE answers it at
    once (not only after a save and a reload)."""
    custom = bytes.fromhex("3B8880010000000000000000")
    se = make_card("gpse", atr=custom)
    assert se.power_on() == custom


def test_meta_recorded_on_a_loaded_image_reaches_the_file(tmp_path):
    path = tmp_path / "phone.se"
    make_se("factory").save(path)
    with SecureElement.load(path) as se:
        se.update_meta(label="JPKIAPGPSETOKEN", serial_number="0123")
    with SecureElement.load(path) as again:
        assert again.meta["serial_number"] == "0123"


@pytest.mark.parametrize("p1,expected", [
    (0x40, [(bytes.fromhex(SSD), 0x0F, 0x80), (bytes.fromhex(JPKI), 0x0F, 0x00)]),
    (0x80, [(bytes.fromhex(ISD), 0x0F, 0x9E)]),
    (0x20, [(bytes.fromhex(ELF), 0x01, 0x00)]),
    (0x10, [(bytes.fromhex(ELF), 0x01, 0x00)]),  # legacy with modules: the list is skipped
])
def test_tsm_get_status_follows_paging(p1, expected):
    """The TSM's GET STATUS (workbench.se.tsm) reads the legacy entries of 5.2 and follows
    63 10; expected values written out from section 3 and 4 (9E: the ISD's privileges)."""
    from workbench.se import TsmSession

    se = make_se("personalised")
    se.get_status_budget = 13
    tsm = TsmSession(se.transmit, se.key_sets[bytes.fromhex(SSD)][0])
    tsm.open()
    assert tsm.get_status(p1) == expected


def test_put_key_uses_the_dek_of_the_session_key_set():
    """5.7, 6.3: SCP03 has no session DEK; the new keys are encrypted under the static DEK of
    the key set the session was opened with. A session opened with KVN 31 adds KVN 32 with
    KVN 31's DEK (not with the SD's first key set's). The length-prefixed form (10 <16 bytes>,
    GPPro) is accepted as well."""
    from workbench.se.scp03 import StaticKeys

    se = make_se("factory")
    host = Host(se)
    assert host.open("ssd", 0x33) == "9000"
    dek30 = se.key_sets[bytes.fromhex(SSD)][0].dek
    k31 = [bytes([0x31, i]) * 8 for i in (1, 2, 3)]
    body = "31" + "".join("8810" + _aes_ecb(dek30, k).hex() + "03" + _aes_ecb(
        k, b"\x01" * 16)[:3].hex() for k in k31)
    assert host.w(apdu("80D80081", body, "00"))[1] == "9000"
    # a session with KVN 31
    assert sw_of(host.send(select(SSD))) == "9000"
    session = HostSession(StaticKeys(*k31, kvn=0x31), os.urandom(8), 0x33)
    answer = se.transmit(bytes.fromhex("8050310008") + session.host_challenge + b"\x00")
    assert se.transmit(session.authenticate(answer)) == b"\x90\x00"
    host.session = session
    k32 = [bytes([0x32, i]) * 8 for i in (1, 2, 3)]
    body = "32" + "".join("881110" + _aes_ecb(k31[2], k).hex() + "00" for k in k32)
    data, sw = host.w(apdu("80D80081", body, "00"))
    assert sw == "9000", sw
    assert data == b"\x32" + b"".join(_aes_ecb(k, b"\x01" * 16)[:3] for k in k32)
    assert {k.kvn: k.enc for k in se.key_sets[bytes.fromhex(SSD)]}[0x32] == k32[0]

"""The service provider's TSM end: SCP03 sessions to the JPKI security domain and the scripts
of smartphone-service.md 15.2 (C1-C10), 15.4-15.7 (lock, unlock, re-personalise, delete).

The TSM never talks to the SE directly: ``transmit`` is whatever carries its APDUs (the phone
app relaying them over an OMAPI logical channel, a trace, the SE in process). Every command
after EXTERNAL AUTHENTICATE is wrapped by :class:`~workbench.se.scp03.HostSession` and every
answer unwrapped and checked, so the relay sees only protected bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from workbench import tlv
from workbench.apdu import INS, SW, CommandAPDU, StatusWord
from workbench.errors import WorkbenchError
from workbench.se import gp
from workbench.se.applet import PUBLIC_KEY_CHUNK, encode_dgi
from workbench.se.scp03 import HostSession, StaticKeys

__all__ = ["TsmError", "TsmExchange", "TsmSession"]

Transmit = Callable[[bytes], bytes]
_MAX_BLOCK = 200  # plaintext per STORE DATA block (well inside the 6.12 limits at level 33)


class TsmError(WorkbenchError):
    """A TSM command the SE refused (``sw``) or an answer that failed its checks."""

    def __init__(self, message: str, sw: int = 0) -> None:
        super().__init__(message)
        self.sw = sw


@dataclass(frozen=True)
class TsmExchange:
    """One APDU of a TSM session as it crossed the relay: what it was for, the plain command,
    the bytes on the wire and the kind of card work (``key_generation`` for the DGI A017/A01A
    blocks, which encryption hides from a classifier; None: classify from the bytes)."""

    what: str
    plain: bytes
    command: bytes
    response: bytes
    operation: str | None = None


class TsmSession:
    """One SCP03 session of the TSM to a security domain (default: the JPKI SSD at level 33,
    smartphone-service.md 15.1), on logical channel ``channel``."""

    def __init__(self, transmit: Transmit, keys: StaticKeys, *, sd_aid: bytes = gp.JPKI_SSD_AID,
                 level: int = 0x33, channel: int = 0,
                 host_challenge: bytes | None = None) -> None:
        if not 0 <= channel <= 3:
            raise TsmError(f"logical channel {channel} is not 0..3")
        self._transmit = transmit
        self._keys = keys
        self.sd_aid = sd_aid
        self.level = level
        self.channel = channel
        self._host = HostSession(keys, host_challenge or os.urandom(8), level)
        self._block = 0
        #: every APDU of the session in order, for per-APDU timing tables (nfc-timing.md 16)
        self.exchanges: list[TsmExchange] = []
        self._operation: str | None = None
        self.sending: tuple[str, str | None] = ("", None)

    def _send_raw(self, what: str, plain: bytes, command: bytes) -> bytes:
        #: what the command in flight is for and its card work, for a relay that records it
        #: (the relay sees only protected bytes)
        self.sending = (what, self._operation)
        response = self._transmit(command)
        self.exchanges.append(TsmExchange(what, plain, command, response, self._operation))
        return response

    # -- plumbing ---------------------------------------------------------------------------

    def _cla(self, apdu: bytes) -> bytes:
        return bytes((apdu[0] | self.channel,)) + apdu[1:]

    def open(self) -> None:
        """SELECT the security domain, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE (15.2 C1, C2)."""
        select = self._cla(CommandAPDU(0x00, INS.SELECT, 0x04, 0x00, self.sd_aid, 256).to_bytes())
        self._expect(self._send_raw("SELECT SD", select, select), "SELECT the security domain")
        init = self._cla(self._host.initialize_update())
        answer = self._send_raw("INITIALIZE UPDATE", init, init)
        self._expect(answer, "INITIALIZE UPDATE")
        ext = self._cla(self._host.authenticate(answer))
        self._expect(self._send_raw("EXTERNAL AUTHENTICATE", ext, ext), "EXTERNAL AUTHENTICATE")
        self._block = 0

    @staticmethod
    def _expect(answer: bytes, what: str) -> bytes:
        sw = int.from_bytes(answer[-2:], "big") if len(answer) >= 2 else -1
        if sw != SW.SUCCESS:
            meaning = StatusWord(sw).meaning if sw >= 0 else "no status word"
            raise TsmError(f"{what}: the SE answered {sw:04X} ({meaning})", max(sw, 0))
        return answer[:-2]

    def send(self, plain: bytes, what: str | None = None) -> tuple[bytes, int]:
        """Wrap, send, unwrap one command: (response data, status word). ``what`` names it
        for the relay's record (default: the instruction's name)."""
        wrapped = self._cla(self._host.wrap(plain))
        if what is None:
            what = CommandAPDU.from_bytes(plain).ins_name if len(plain) >= 4 else "?"
        answer = self._host.unwrap(self._send_raw(what, plain, wrapped))
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    def check(self, plain: bytes, what: str) -> bytes:
        data, sw = self.send(plain, what)
        if sw != SW.SUCCESS:
            raise TsmError(f"{what}: the SE answered {sw:04X} ({StatusWord(sw).meaning})", sw)
        return data

    # -- card content management (globalplatform.md 5) --------------------------------------

    def install_jpki(self) -> None:
        """INSTALL [for install and make selectable] of the JPKI instance (15.2 C4)."""
        fields = (gp.JPKI_ELF_AID, gp.JPKI_MODULE_AID, gp.JPKI_INSTANCE_AID, b"\x00", b"\xc9\x00",
                  b"")
        data = b"".join(bytes((len(f),)) + f for f in fields)
        self.check(CommandAPDU(0x80, INS.INSTALL, 0x0C, 0x00, data, 256).to_bytes(),
                   "INSTALL the JPKI applet")

    def delete_jpki(self, *, missing_ok: bool = False) -> bool:
        """DELETE the JPKI instance, its keys and certificates (15.2 C3, 15.6); False if absent."""
        data = tlv.encode(0x4F, gp.JPKI_INSTANCE_AID)
        answer, sw = self.send(CommandAPDU(0x80, INS.DELETE, 0x00, 0x00, data, 256).to_bytes())
        if sw == SW.DATA_NOT_FOUND and missing_ok:
            return False
        if sw != SW.SUCCESS:
            raise TsmError(f"DELETE the JPKI applet: the SE answered {sw:04X}", sw)
        return True

    def personalise(self) -> None:
        """INSTALL [for personalization] of the JPKI instance (15.2 C5): STORE DATA goes there."""
        fields = (b"", b"", gp.JPKI_INSTANCE_AID, b"", b"", b"")
        data = b"".join(bytes((len(f),)) + f for f in fields)
        self.check(CommandAPDU(0x80, INS.INSTALL, 0x20, 0x00, data, 256).to_bytes(),
                   "INSTALL [for personalization]")
        self._block = 0

    def store(self, dgis: Iterable[tuple[int, bytes]], *, last: bool) -> bytes:
        """STORE DATA in DGI format, cut into blocks; the last block carries P1 bit 8 when
        ``last`` (globalplatform.md 5.5). Returns the concatenated answers."""
        dgis_list = list(dgis)
        stream = b"".join(encode_dgi(tag, value) for tag, value in dgis_list)
        chunks = [stream[i:i + _MAX_BLOCK] for i in range(0, len(stream), _MAX_BLOCK)] or [b""]
        answer = b""
        for n, chunk in enumerate(chunks):
            final = last and n == len(chunks) - 1
            p1 = 0x08 | (0x80 if final else 0x00)
            tags = ", ".join(f"{t:04X}" for t, _ in dgis_list) if n == 0 else "cont."
            answer += self.check(
                CommandAPDU(0x80, INS.STORE_DATA, p1, self._block & 0xFF, chunk,
                            256).to_bytes(), f"STORE DATA block {self._block} (DGI {tags})")
            self._block = 0 if final else self._block + 1
        return answer

    def generate_key(self, which: str) -> rsa.RSAPublicKey:
        """DGI A017 (auth) or A01A (sign): a key pair made in the SE; its public key read back
        in pieces (MODEL, :mod:`workbench.se.applet`)."""
        tag, more = {"auth": (gp.DGI.GENERATE_AUTH_KEY, 0xA117),
                     "sign": (gp.DGI.GENERATE_SIGN_KEY, 0xA11A)}[which]
        self._operation = "key_generation"
        try:
            der = self.store([(tag, b"")], last=False)
        finally:
            self._operation = None
        total = tlv.object_length(der) if der else 0
        while len(der) < total:
            chunk = self.store([(more, len(der).to_bytes(2, "big"))], last=False)
            if not chunk:
                raise TsmError("the SE stopped answering the public key")
            der += chunk[:PUBLIC_KEY_CHUNK]
        key = load_der_public_key(der)
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 2048:
            raise TsmError("the SE answered a public key that is not RSA-2048")
        return key

    def set_status(self, state: int, aid: bytes = gp.JPKI_INSTANCE_AID) -> None:
        """SET STATUS of an application: ``0F`` personalised (C10), ``80`` lock (S3), ``00``
        unlock (R3)."""
        self.check(CommandAPDU(0x80, INS.SET_STATUS, 0x40, state, aid).to_bytes(),
                   f"SET STATUS {state:02X}")

    def lock(self) -> None:
        self.set_status(gp.LOCKED_BIT)

    def unlock(self) -> None:
        self.set_status(0x00)

    def registration_state(self) -> tuple[int, bool, bool]:
        """GET DATA ``DF70`` in the session (15.2 C12, MODEL; see
        :meth:`workbench.se.SecureElement`): (applet life cycle, auth PIN set, signing
        password set). Life cycle 0 means no JPKI applet."""
        raw = self.check(CommandAPDU(0x80, INS.GET_DATA, gp.TAG_REGISTRATION_RECEIPT >> 8,
                                     gp.TAG_REGISTRATION_RECEIPT & 0xFF, b"", 256).to_bytes(),
                         "GET DATA registration state")
        try:
            node, _ = tlv.decode_one(raw)
        except WorkbenchError:
            raise TsmError("the SE answered a malformed registration state") from None
        value = node.value
        if node.tag != gp.TAG_REGISTRATION_RECEIPT or len(value) != 3:
            raise TsmError("the SE answered a malformed registration state")
        return value[0], bool(value[1]), bool(value[2])

    def get_status(self, p1: int = 0x40) -> list[tuple[bytes, int, int]]:
        """(AID, life cycle, privilege byte 1) of every entry of the ``p1`` kind (legacy
        format, following ``63 10``; for ``10`` each entry's list of executable modules,
        globalplatform.md 5.2, is read past)."""
        out: list[tuple[bytes, int, int]] = []
        p2 = 0x00
        while True:
            data, sw = self.send(CommandAPDU(0x80, INS.GET_STATUS, p1, p2, b"\x4f\x00",
                                             256).to_bytes())
            if sw not in (SW.SUCCESS, 0x6310):
                if sw == SW.DATA_NOT_FOUND:
                    return out
                raise TsmError(f"GET STATUS: the SE answered {sw:04X}", sw)
            i = 0
            try:
                while i < len(data):
                    n = data[i]
                    out.append((bytes(data[i + 1:i + 1 + n]), data[i + 1 + n], data[i + 2 + n]))
                    i += n + 3
                    if p1 == 0x10:  # number of modules, then each as length-value
                        count, i = data[i], i + 1
                        for _ in range(count):
                            i += 1 + data[i]
            except IndexError:
                raise TsmError("GET STATUS: the SE answered a malformed legacy entry") from None
            if sw == SW.SUCCESS:
                return out
            p2 = 0x01

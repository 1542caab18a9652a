"""The virtual My Number card and Android phone token: power, reset and the APDU dispatcher.

Behaviour follows jpki-card.md: selection (2), file maps (3), commands (4), status words (5),
PIN rules (6), ATRs (7) and the icc / gpse differences (8). Every byte string given to
:meth:`VirtualCard.transmit` gets a well-formed answer ending in a status word of section 5;
nothing raises and nothing is half-changed (section 10, issue 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from workbench.apdu import SW, CommandAPDU
from workbench.card import image as card_image
from workbench.card.constants import ISD_AID, JPKI_AP_AID
from workbench.card.model import Application, BinaryEF, KeyRef, Node, PinRef, RecordEF
from workbench.card.pin import pin_digest, pin_matches
from workbench.errors import APDUError, PinFormatError, WorkbenchError
from workbench.pki.holder import Holder, Sex

log = logging.getLogger(__name__)


def holder_to_json(holder: Holder) -> dict[str, Any]:
    d = dataclasses.asdict(holder)
    d["birth_date"] = holder.birth_date.isoformat()
    d["sex"] = int(holder.sex)
    return d


def holder_from_json(d: dict[str, Any]) -> Holder:
    d = dict(d)
    d["birth_date"] = date.fromisoformat(d["birth_date"])
    d["sex"] = Sex(d["sex"])
    return Holder(**d)


def _b(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


OK = _b(SW.SUCCESS)
WRONG_LENGTH = _b(SW.WRONG_LENGTH)
CHANNEL = _b(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
SM_SELECT = _b(SW.SECURE_MESSAGING_NOT_SUPPORTED)
SM_DATA = _b(SW.SM_NOT_ALLOWED)
INCOMPATIBLE = _b(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
SECURITY = _b(SW.SECURITY_STATUS_NOT_SATISFIED)
BLOCKED = _b(SW.AUTHENTICATION_BLOCKED)
CONDITIONS = _b(SW.CONDITIONS_NOT_SATISFIED)
NO_EF = _b(SW.NO_CURRENT_EF)
WRONG_DATA = _b(SW.WRONG_DATA)
NOT_FOUND = _b(SW.FILE_NOT_FOUND)
NO_RECORD = _b(SW.RECORD_NOT_FOUND)
WRONG_P1P2 = _b(SW.WRONG_P1P2)
NO_DATA_OBJECT = _b(SW.DATA_NOT_FOUND)
WRONG_OFFSET = _b(SW.WRONG_OFFSET)
BAD_INS = _b(SW.INS_NOT_SUPPORTED)
BAD_CLA = _b(SW.CLA_NOT_SUPPORTED)
INTERNAL = _b(SW.NO_PRECISE_DIAGNOSIS)
_TRIES = [bytes([0x63, 0xC0 | n]) for n in range(16)]

# DigestInfo prefixes the card recognises so that an 80 2A P1=00 over a DigestInfo can use
# OpenSSL's signer (identical output to padding the bytes by hand; PKCS#1 v1.5 is
# deterministic). Anything else is padded and exponentiated here (jpki-card.md 4.5).
_DIGEST_INFO: dict[bytes, hashes.HashAlgorithm] = {
    bytes.fromhex("3021300906052B0E03021A05000414"): hashes.SHA1(),
    bytes.fromhex("302D300D06096086480165030402040500041C"): hashes.SHA224(),
    bytes.fromhex("3031300D060960864801650304020105000420"): hashes.SHA256(),
    bytes.fromhex("3041300D060960864801650304020205000430"): hashes.SHA384(),
    bytes.fromhex("3051300D060960864801650304020305000440"): hashes.SHA512(),
}
_MAX_SIGN_INPUT = 245  # k - 11 for RSA-2048 (jpki-card.md 4.5)


def _raw_type1_signature(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """PKCS#1 v1.5 type-01 padding of arbitrary bytes + the RSA private operation (CRT).

    cryptography signs only hashes it knows; the card signs whatever bytes it is given.
    """
    k = (key.key_size + 7) // 8
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data
    pn = key.private_numbers()
    m = int.from_bytes(em, "big")
    m1 = pow(m, pn.dmp1, pn.p)
    m2 = pow(m, pn.dmq1, pn.q)
    s = m2 + ((pn.iqmp * (m1 - m2)) % pn.p) * pn.q
    return s.to_bytes(k, "big")


class VirtualCard:
    """A virtual My Number card (profile ``"icc"``) or Android phone token (``"gpse"``).

    Create one with :func:`workbench.card.create_card` (or ``VirtualCard.create``), load one
    with :meth:`load`. The card side never hands out secrets: PINs are stored as salted
    digests and private keys are used, never read.
    """

    def __init__(
        self,
        *,
        profile: str,
        atr: bytes,
        salt: bytes,
        apps: list[Application],
        meta: dict[str, Any],
        store: card_image.CardStore | None = None,
    ) -> None:
        self.profile = profile
        self.atr = atr
        self._salt = salt
        self._apps = {app.aid: app for app in apps}
        self._meta = meta
        self._store = store or card_image.CardStore()
        self._lock = threading.RLock()
        self._get_data: dict[int, bytes] = {
            int(tag, 16): bytes.fromhex(value) for tag, value in meta.get("get_data", {}).items()
        }
        self._powered = False
        self._app: Application | None = None
        self._ef: int | None = None
        self._verified: set[int] = set()
        #: test hook: called after the decremented counter is persisted, before the compare
        self._before_compare: Callable[[], None] | None = None

    # ------------------------------------------------------------------ construction, files
    @classmethod
    def create(cls, profile: str = "icc", **kwargs: Any) -> VirtualCard:
        """Issue a new card for a synthetic holder; see :func:`workbench.card.builder.create_card`."""
        from workbench.card.builder import create_card

        return create_card(profile, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VirtualCard:
        """Open a card image; PIN changes are written back to it as they happen."""
        meta, apps, store = card_image.read_image(Path(path))
        return cls._from_meta(meta, apps, store)

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], apps: list[Application], store: card_image.CardStore | None) -> VirtualCard:
        try:
            return cls(
                profile=meta["profile"],
                atr=bytes.fromhex(meta["atr"]),
                salt=bytes.fromhex(meta["salt"]),
                apps=apps,
                meta=meta,
                store=store,
            )
        except (KeyError, ValueError) as exc:
            if store is not None:
                store.close()
            raise card_image.CardImageError(f"card image lacks a valid field ({exc})") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the card to an image file atomically and keep using that file from now on."""
        path = Path(path)
        with self._lock:
            card_image.write_image(path, self._meta, list(self._apps.values()))
            _, _, store = card_image.read_image(path)
            self._store.close()
            self._store = store

    def close(self) -> None:
        """Release the image file (the card stays usable in memory)."""
        with self._lock:
            self._store.close()
            self._store = card_image.CardStore()

    def __enter__(self) -> VirtualCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path | None:
        return self._store.path

    @property
    def holder(self) -> Holder:
        """The synthetic holder the card was issued to."""
        return holder_from_json(self._meta["holder"])

    @property
    def label(self) -> str:
        return str(self._meta["label"])

    @property
    def meta(self) -> dict[str, Any]:
        """Public facts stored with the card (holder, issue time, seed); no secrets."""
        return {k: v for k, v in self._meta.items() if k != "salt"}

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"VirtualCard(profile={self.profile!r}, label={self.label!r}{where})"

    # ------------------------------------------------------------------ power
    def power_on(self) -> bytes:
        """Cold reset: power and return the ATR; the security state starts empty."""
        with self._lock:
            self._powered = True
            self._clear_session()
            return self.atr

    def reset(self) -> bytes:
        """Warm reset: clears the selected AP and every verified state (jpki-card.md 2.3)."""
        return self.power_on()

    def power_off(self) -> None:
        with self._lock:
            self._powered = False
            self._clear_session()

    @property
    def powered(self) -> bool:
        return self._powered

    def _clear_session(self) -> None:
        self._app = None
        self._ef = None
        self._verified.clear()

    # ------------------------------------------------------------------ inspection (not APDU)
    def pin_status(self) -> dict[str, int]:
        """Tries left of every user PIN, by policy name (out of band, for `card show`)."""
        out: dict[str, int] = {}
        for app in self._apps.values():
            for node in app.nodes.values():
                if isinstance(node, PinRef) and node.policy.changeable:
                    out[node.policy.name] = 0 if node.blocked else node.tries_left
        return out

    def certificates(self) -> dict[str, x509.Certificate]:
        """The certificates held in the JPKI AP, parsed (out of band, for inspection)."""
        from workbench.card.builder import JPKI_CERT_EFS
        from workbench.tlv import strip_filler

        app = self._apps[JPKI_AP_AID]
        out: dict[str, x509.Certificate] = {}
        for name, fid in JPKI_CERT_EFS.items():
            node = app.nodes.get(fid)
            if isinstance(node, BinaryEF):
                out[name] = x509.load_der_x509_certificate(strip_filler(node.data))
        return out

    def reset_pin(self, name: str, new_value: str | bytes | None = None) -> None:
        """Out-of-band reset at the municipal office (MODEL, jpki-card.md 6): counter back to
        its maximum and, if given, a new value (format-checked)."""
        with self._lock:
            for app in self._apps.values():
                for fid, node in app.nodes.items():
                    if isinstance(node, PinRef) and node.policy.name == name and node.policy.changeable:
                        if new_value is not None:
                            value = new_value.encode("ascii", "replace") if isinstance(new_value, str) else new_value
                            node.policy.check(value)
                            node.digest = pin_digest(self._salt, value)
                        node.tries_left = node.policy.max_tries
                        self._store.pin_changed(app.aid, fid, node)
                        self._verified.discard(fid)
                        return
        raise WorkbenchError(f"this card has no PIN named {name!r}")

    # ------------------------------------------------------------------ APDU
    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU and return response data + SW1 SW2.

        A card that was never powered is activated implicitly (as a reader does before the
        first command).
        """
        if not isinstance(apdu, (bytes, bytearray, memoryview)):
            raise TypeError("transmit() takes the APDU as bytes")
        raw = bytes(apdu)
        with self._lock:
            if not self._powered:
                self.power_on()
            try:
                return self._dispatch(raw)
            except Exception:  # a bug must not escape to the reader (section 10)
                log.exception("virtual card: internal error while processing %s", raw[:4].hex())
                return INTERNAL

    def _dispatch(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return WRONG_LENGTH
        cla, ins = raw[0], raw[1]
        if cla == 0xFF:
            return BAD_CLA
        if cla & 0x40:  # further interindustry class: logical channels 4-19
            return CHANNEL
        if cla & 0x30:  # command chaining / RFU bits
            return BAD_CLA
        if cla & 0x03:
            return CHANNEL
        if cla & 0x0C:  # secure messaging (jpki-card.md 2.2)
            return SM_DATA if ins in (0xB0, 0x20) else SM_SELECT
        try:
            cmd = CommandAPDU.from_bytes(raw)
        except APDUError:
            return WRONG_LENGTH
        handler = _HANDLERS.get((cla, ins))
        if handler is None:
            return BAD_CLA if (cla ^ 0x80, ins) in _HANDLERS else BAD_INS
        return handler(self, cmd)

    # --- SELECT (jpki-card.md 2.2)
    def _select(self, cmd: CommandAPDU) -> bytes:
        p1, p2 = cmd.p1, cmd.p2
        if p1 == 0x04:
            if p2 not in (0x0C, 0x00, 0x04):
                return WRONG_P1P2
            app = self._apps.get(cmd.data)
            if app is None:
                if cmd.data == ISD_AID and self._meta.get("isd_selectable", False):
                    self._clear_session()
                    return OK
                return NOT_FOUND
            self._clear_session()
            self._app = app
            return OK
        if p1 == 0x02:
            if p2 not in (0x0C, 0x00, 0x04):
                return WRONG_P1P2
            if len(cmd.data) != 2:
                return WRONG_LENGTH
            if self._app is None:
                return NOT_FOUND
            fid = int.from_bytes(cmd.data, "big")
            if fid not in self._app.nodes:
                return NOT_FOUND
            self._ef = fid
            return OK
        if p1 == 0x00:
            if not cmd.data:
                # MF: 6A86 right after reset, 90 00 (state unchanged) with an AP selected (U)
                return OK if self._app is not None else WRONG_P1P2
            return NOT_FOUND
        return WRONG_P1P2

    def _resolve(self, p: int) -> tuple[int | None, Node | None]:
        """Current EF, or the EF named by a ``80 | SFI`` parameter (jpki-card.md 2.2, 4.1)."""
        app = self._app
        if app is None:
            return None, None
        if p == 0x80:
            fid = self._ef
        else:
            fid = p & 0x1F
        if fid is None:
            return None, None
        return fid, app.nodes.get(fid)

    def _allowed(self, access: tuple[int, ...] | None) -> bool:
        return access is None or any(f in self._verified for f in access)

    # --- READ BINARY (jpki-card.md 4.1)
    def _read_binary(self, cmd: CommandAPDU) -> bytes:
        p1 = cmd.p1
        if p1 & 0x80:
            if p1 & 0x60:
                return WRONG_P1P2
            fid, node = self._resolve(0x80 | (p1 & 0x1F))
            if node is None:
                return NOT_FOUND if self._app is not None else NO_EF
            offset = cmd.p2
        else:
            fid, node = self._resolve(0x80)
            if node is None:
                return NO_EF
            offset = (p1 << 8) | cmd.p2
        if not isinstance(node, BinaryEF):
            return INCOMPATIBLE
        if cmd.le is None:
            return WRONG_LENGTH
        if not self._allowed(node.access):
            return SECURITY
        if p1 & 0x80:
            self._ef = fid
        data = node.data
        if offset >= len(data):
            return WRONG_OFFSET
        return data[offset : offset + cmd.le] + OK

    # --- READ RECORD (jpki-card.md 4.2)
    def _read_record(self, cmd: CommandAPDU) -> bytes:
        if cmd.p2 & 0x07 != 0x04:
            return WRONG_P1P2
        sfi = cmd.p2 >> 3
        fid, node = self._resolve(0x80 if sfi == 0 else 0x80 | sfi)
        if node is None:
            return NO_EF if sfi == 0 else NOT_FOUND
        if not isinstance(node, RecordEF):
            return INCOMPATIBLE
        if not self._allowed(node.access):
            return SECURITY
        if sfi:
            self._ef = fid
        if not 1 <= cmd.p1 <= len(node.records):
            return NO_RECORD
        record = node.records[cmd.p1 - 1]
        return record[: cmd.le if cmd.le is not None else 256] + OK

    # --- VERIFY (jpki-card.md 4.3)
    def _verify(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return WRONG_P1P2
        fid, node = self._resolve(cmd.p2)
        if not isinstance(node, PinRef) or fid is None or self._app is None:
            return NO_EF
        if not cmd.data:  # retry-counter query: never spends a try, 63Cx even when verified
            return _TRIES[0 if node.blocked else min(node.tries_left, 15)]
        if node.blocked:
            return BLOCKED
        # Anti-tearing: spend the try and make it durable before comparing.
        node.tries_left -= 1
        self._store.pin_changed(self._app.aid, fid, node)
        if self._before_compare is not None:
            self._before_compare()
        if pin_matches(self._salt, node.digest, cmd.data):
            node.tries_left = node.policy.max_tries
            self._store.pin_changed(self._app.aid, fid, node)
            self._verified.add(fid)
            return OK
        self._verified.discard(fid)
        return _TRIES[min(node.tries_left, 15)]

    # --- CHANGE REFERENCE DATA 00 24 01 80 (jpki-card.md 4.4) and JICSAP CHANGE KEY 80 32
    def _change(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x01 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return WRONG_P1P2
        return self._set_new_value(cmd, jicsap=False)

    def _change_key(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return WRONG_P1P2
        return self._set_new_value(cmd, jicsap=True)

    def _set_new_value(self, cmd: CommandAPDU, *, jicsap: bool) -> bytes:
        fid, node = self._resolve(cmd.p2)
        if not isinstance(node, PinRef) or fid is None or self._app is None:
            return NO_EF
        if (node.policy.name in ("juki", "common")) != jicsap:
            # 共通AP / 住基AP keys change with 80 32 only; JPKI and text AP keys with 00 24
            return BAD_INS if jicsap else CONDITIONS
        if not node.policy.changeable:
            return CONDITIONS
        if node.blocked:
            return BLOCKED
        if fid not in self._verified:
            return SECURITY
        if not cmd.data:
            return WRONG_LENGTH
        try:
            node.policy.check(cmd.data)
        except PinFormatError:
            return WRONG_DATA
        node.digest = pin_digest(self._salt, cmd.data)
        node.tries_left = node.policy.max_tries
        self._store.pin_changed(self._app.aid, fid, node)
        return OK

    # --- COMPUTE DIGITAL SIGNATURE 80 2A (jpki-card.md 4.5)
    def _sign(self, cmd: CommandAPDU) -> bytes:
        app = self._app
        if app is None:
            return NO_EF
        if cmd.p1 > 0x05:
            return WRONG_P1P2
        if cmd.p2 == 0x00:
            key = app.own_key  # text AP / surface AP: the AP's own key, no credential
            if key is None or cmd.p1 != 0x00:
                return WRONG_P1P2
        else:
            if not cmd.p2 & 0x80 or cmd.p2 & 0x60:
                return WRONG_P1P2
            _, node = self._resolve(cmd.p2)
            if not isinstance(node, KeyRef) or node.usage != "sign" or node.key is None:
                return NO_EF
            if not self._allowed(node.access):
                return SECURITY
            key = node.key
        data = cmd.data
        p1 = cmd.p1
        if p1 == 0x00:
            if not 0 < len(data) <= _MAX_SIGN_INPUT:
                return WRONG_LENGTH
            algorithm = _digest_info_algorithm(data)
            if algorithm is not None:
                sig = key.sign(data[-algorithm.digest_size :], padding.PKCS1v15(), Prehashed(algorithm))
            else:
                sig = _raw_type1_signature(key, data)
        elif p1 == 0x01:
            if not data:
                return WRONG_LENGTH
            sig = _raw_type1_signature(key, hashlib.sha256(data).digest())
        elif p1 in (0x02, 0x04):
            if len(data) != 32:
                return WRONG_LENGTH
            pad = padding.PKCS1v15() if p1 == 0x02 else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            sig = key.sign(data, pad, Prehashed(hashes.SHA256()))
        else:
            if not data:
                return WRONG_LENGTH
            pad = padding.PKCS1v15() if p1 == 0x03 else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            sig = key.sign(data, pad, hashes.SHA256())
        return sig + OK

    # --- INTERNAL AUTHENTICATE 00 88 (jpki-card.md 4.6)
    def _internal_authenticate(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return WRONG_P1P2
        _, node = self._resolve(cmd.p2)
        if node is None:
            return NO_EF if self._app is None or cmd.p2 == 0x80 else NOT_FOUND
        if not isinstance(node, KeyRef) or node.usage != "internal-auth" or node.key is None:
            return CONDITIONS
        if not 0 < len(cmd.data) <= 255:
            return WRONG_LENGTH
        return node.key.sign(cmd.data, padding.PKCS1v15(), hashes.SHA256()) + OK

    # --- GET CHALLENGE 00 84 (jpki-card.md 3.6)
    def _get_challenge(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 or cmd.p2:
            return WRONG_P1P2
        if cmd.le is None:
            return WRONG_LENGTH
        if cmd.extended:
            return CONDITIONS
        return os.urandom(cmd.le) + OK

    # --- GET DATA 00 CA (jpki-card.md 3.6)
    def _get_data(self, cmd: CommandAPDU) -> bytes:
        tag = (cmd.p1 << 8) | cmd.p2
        value = self._get_data.get(tag)
        if value is None or (self._app is not None and tag != 0x5F51):
            return NO_DATA_OBJECT
        if cmd.le is None:
            return WRONG_LENGTH
        if len(value) > 256 and not cmd.extended:
            return WRONG_LENGTH
        return value[: cmd.le] + OK

    # --- proprietary commands the card only refuses (jpki-card.md 3.3, 4.6)
    def _set_session_key(self, cmd: CommandAPDU) -> bytes:
        return _b(self._app.session_key_sw) if self._app is not None else SECURITY

    def _set_public_ic_key(self, cmd: CommandAPDU) -> bytes:
        if self._app is not None and 0x0016 in self._app.nodes:
            return WRONG_P1P2
        return BAD_INS

    def _last_command(self, cmd: CommandAPDU) -> bytes:
        return WRONG_LENGTH  # plastic card (and MODEL for the Android token)


def _digest_info_algorithm(data: bytes) -> hashes.HashAlgorithm | None:
    """The hash of ``data`` if it is exactly a DigestInfo the card recognises, else None."""
    for prefix, algorithm in _DIGEST_INFO.items():
        if len(data) == len(prefix) + algorithm.digest_size and data.startswith(prefix):
            return algorithm
    return None


_HANDLERS: dict[tuple[int, int], Callable[[VirtualCard, CommandAPDU], bytes]] = {
    (0x00, 0xA4): VirtualCard._select,
    (0x00, 0xB0): VirtualCard._read_binary,
    (0x00, 0xB2): VirtualCard._read_record,
    (0x00, 0x20): VirtualCard._verify,
    (0x00, 0x24): VirtualCard._change,
    (0x00, 0x84): VirtualCard._get_challenge,
    (0x00, 0x88): VirtualCard._internal_authenticate,
    (0x00, 0xCA): VirtualCard._get_data,
    (0x80, 0x2A): VirtualCard._sign,
    (0x80, 0xAE): VirtualCard._set_session_key,
    (0x80, 0xA2): VirtualCard._set_public_ic_key,
    (0x80, 0x32): VirtualCard._change_key,
    (0x80, 0xFC): VirtualCard._last_command,
}

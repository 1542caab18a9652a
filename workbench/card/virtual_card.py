"""The virtual My Number card and Android phone token: power, reset and the APDU dispatcher.

Behaviour follows jpki-card.md: selection (2), file maps (3), commands (4), status words (5),
PIN rules (6), ATRs (7) and the icc / gpse differences (8). Every byte string given to
:meth:`VirtualCard.transmit` gets a well-formed answer ending in a status word of section 5;
nothing raises and nothing is half-changed (section 10, issue 2).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from workbench import hooks
from workbench.apdu import (
    INS,
    P1_READ_SFI,
    P1_SELECT_BY_DF_NAME,
    P1_SELECT_EF,
    P2_CURRENT_KEY,
    SFI_MASK,
    SW,
    TRIES_BYTES,
    CommandAPDU,
)
from workbench.card import image as card_image
from workbench.card.constants import DIGEST_INFO_PREFIXES, ISD_AID, JPKI_AP_AID, TAG_CONTACT_ATR
from workbench.card.files import CERTIFICATE_EFS, DEFAULT_COLLATION_TRIES, application_spec
from workbench.card.model import (
    Access,
    Application,
    BinaryEF,
    KeyRef,
    ModelOptions,
    Node,
    PinRef,
    RecordEF,
)
from workbench.card.personalise import CardContent, build_applications, node_for
from workbench.card.pin import pin_bytes, pin_digest, pin_matches
from workbench.errors import APDUError, PinFormatError, WorkbenchError
from workbench.holder import Holder, holder_from_json
from workbench.tlv import strip_filler

log = logging.getLogger(__name__)

# Status words as wire bytes, named once in workbench.apdu (SW.X.bytes).
OK = SW.SUCCESS.bytes
_PROPRIETARY = 0x80  # CLA of the JICSAP commands (jpki-card.md 4.5, 4.6)

# DigestInfo prefixes the card recognises so that an 80 2A P1=00 over a DigestInfo can use
# OpenSSL's signer (identical output to padding the bytes by hand; PKCS#1 v1.5 is
# deterministic). Anything else is padded and exponentiated here (jpki-card.md 4.5).
_HASH_BY_NAME: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_DIGEST_INFO: dict[bytes, hashes.HashAlgorithm] = {
    prefix: _HASH_BY_NAME[name] for name, prefix in DIGEST_INFO_PREFIXES.items()
}
_MAX_SIGN_INPUT = 245  # k - 11 for RSA-2048 (jpki-card.md 4.5)
_SELECT_P2 = (0x0C, 0x00, 0x04)  # jpki-card.md 2.2: no FCI; 00/04 answered alike (MODEL)


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


@dataclass(eq=False)
class CardSession:
    """What a card remembers between commands of one session: the selected application, the
    current EF and the verified PINs (jpki-card.md 2.3). Power and reset clear it."""

    app: Application | None = None
    ef: int | None = None
    verified: set[int] = field(default_factory=set)

    def clear(self) -> None:
        self.app = None
        self.ef = None
        self.verified.clear()


@dataclass(frozen=True)
class ObjectView:
    """What can be said of one card object without revealing it (see :attr:`VirtualCard.files`).

    ``kind``: binary, record, key or pin; ``size`` the EF size (filler included) or the record
    count; ``tries_left``/``max_tries`` for PINs; ``usage`` for keys.
    """

    fid: int
    kind: str
    label: str
    access: Access
    size: int | None = None
    tries_left: int | None = None
    max_tries: int | None = None
    pin_name: str | None = None
    usage: str | None = None

    @classmethod
    def of(cls, fid: int, node: Node) -> ObjectView:
        if isinstance(node, BinaryEF):
            return cls(fid, "binary", node.label, node.access, size=len(node.data))
        if isinstance(node, RecordEF):
            return cls(fid, "record", node.label, node.access, size=len(node.records))
        if isinstance(node, KeyRef):
            return cls(fid, "key", node.label, node.access, usage=node.usage)
        return cls(fid, "pin", node.label, None, tries_left=0 if node.blocked else node.tries_left,
                   max_tries=node.policy.max_tries, pin_name=node.policy.name)


@dataclass(frozen=True)
class AppView:
    """One application of :attr:`VirtualCard.files`: its name and objects by FID."""

    aid: bytes
    name: str
    objects: Mapping[int, ObjectView]

    @classmethod
    def of(cls, app: Application) -> AppView:
        return cls(app.aid, app.name,
                   MappingProxyType({fid: ObjectView.of(fid, n) for fid, n in app.nodes.items()}))


class Personalisation:
    """Changes to one application's objects, staged during a personalisation sequence and
    written together (the phone applet's STORE DATA blocks, globalplatform.md 5.5): a process
    killed before :meth:`commit` leaves the old content, never a mix.

    Get one from :meth:`VirtualCard.personalisation`. Objects follow the file tables
    (:mod:`workbench.card.files`): access rules, names and EF capacity come from there.
    """

    def __init__(self, card: VirtualCard, aid: bytes, cert_capacity: str | int) -> None:
        spec = application_spec(aid)
        if spec is None or aid not in card._apps:
            raise WorkbenchError(f"this card has no application {aid.hex().upper()}")
        self._card = card
        self._aid = aid
        self._spec = spec
        self._capacity = cert_capacity
        self._staged: dict[int, Node | None] = {}

    @property
    def pending(self) -> bool:
        return bool(self._staged)

    def _current(self, fid: int) -> Node | None:
        if fid in self._staged:
            return self._staged[fid]
        return self._card._apps[self._aid].nodes.get(fid)

    def put_ef(self, fid: int, data: bytes) -> None:
        """Write (or replace) EF ``fid`` with ``data``."""
        self._staged[fid] = node_for(self._spec, self._card.profile, fid, data, self._capacity)

    def generate_key(self, fid: int, keygen: Callable[[], rsa.RSAPrivateKey]) -> rsa.RSAPublicKey:
        """Make the key pair ``fid`` with ``keygen`` (inside the card) and return only its
        public half; the private key is never handed out."""
        key = keygen()
        self._staged[fid] = node_for(self._spec, self._card.profile, fid, key, self._capacity)
        return key.public_key()

    def clear_pin(self, fid: int) -> None:
        """PIN object ``fid`` back to "not set" with a full counter (password reset, 15.7)."""
        node = self._current(fid)
        if not isinstance(node, PinRef) or not node.policy.changeable:
            raise WorkbenchError(f"{fid:04X} is not a PIN this card lets its issuer reset")
        self._staged[fid] = PinRef(node.policy, b"", node.policy.max_tries, node.label)

    def commit(self) -> None:
        """Write every staged change in one transaction, then use it."""
        if not self._staged:
            return
        card = self._card
        with card._lock:
            card._store.nodes_changed(self._aid, dict(self._staged))
            nodes = card._apps[self._aid].nodes
            for fid, node in self._staged.items():
                if node is None:
                    nodes.pop(fid, None)
                else:
                    nodes[fid] = node
                for session in (card._s, *card._sessions):  # no session keeps it verified
                    session.verified.discard(fid)
            card._apps[self._aid].nodes = dict(sorted(nodes.items()))
        self._staged.clear()

    def discard(self) -> None:
        self._staged.clear()


class VirtualCard:
    """A virtual My Number card (profile ``"icc"``) or Android phone token (``"gpse"``).

    Issue one with :func:`workbench.lifecycle.create_card` (which calls :meth:`personalise`),
    load one with :meth:`load`. The card side never hands out secrets: PINs are stored as salted
    digests and private keys are used, never read by any APDU. :attr:`files` is a read-only
    view of its objects for inspection and tests.
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
        self.options = ModelOptions.from_meta(meta.get("model_options"))
        self._powered = False
        self._s = CardSession()  # the basic channel's session; an SE keeps one per channel
        self._sessions: weakref.WeakSet[CardSession] = weakref.WeakSet()  # an SE's channels

    # ------------------------------------------------------------------ construction, files
    @classmethod
    def personalise(
        cls,
        profile: str,
        content: CardContent,
        *,
        atr: bytes,
        meta: Mapping[str, Any],
        salt: bytes | None = None,
        cert_capacity: str | int = "round256",
        collation_tries: int = DEFAULT_COLLATION_TRIES,
    ) -> VirtualCard:
        """A new card of ``profile`` whose files are its tables filled from ``content``.

        The card knows nothing of who issued it: keys, certificates, PIN values and data
        objects come in ``content`` (see :mod:`workbench.lifecycle.issuance`, which also
        makes ``meta``: holder, issue time, serials). PIN values are digested with ``salt``
        (random when not given) and dropped. ``cert_capacity`` is the EF capacity rule of
        jpki-card.md 4.1; ``collation_tries`` the 照合番号 retry limit (MODEL, 3.4).
        """
        salt = os.urandom(16) if salt is None else salt
        apps = build_applications(profile, content, salt, cert_capacity=cert_capacity,
                                  collation_tries=collation_tries)
        full = dict(meta)
        full.update(
            profile=profile,
            atr=atr.hex().upper(),
            salt=salt.hex(),
            get_data={f"{tag:04X}": value.hex() for tag, value in content.get_data.items()},
        )
        return cls._from_meta(full, apps, None)

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
        self._s.clear()

    def transmit_in(self, session: CardSession, apdu: bytes) -> bytes:
        """Process one command in ``session`` instead of the basic channel's.

        A secure element hosts the JPKI applet on several logical channels at once (OMAPI,
        globalplatform.md 9); each channel has its own selected file and verified PINs, while
        the file system and its retry counters are one. The channel bits of the CLA are the
        host's business: the SE strips them before calling this.
        """
        if not isinstance(apdu, (bytes, bytearray, memoryview)):
            raise TypeError("transmit_in() takes the APDU as bytes")
        raw = bytes(apdu)
        with self._lock:
            self._sessions.add(session)
            previous, self._s = self._s, session
            try:
                return self._dispatch(raw)
            except Exception:  # a bug must not escape to the reader (section 10)
                log.exception("virtual card: internal error while processing %s", raw[:4].hex())
                return SW.NO_PRECISE_DIAGNOSIS.bytes
            finally:
                self._s = previous

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
        app = self._apps[JPKI_AP_AID]
        out: dict[str, x509.Certificate] = {}
        for name, fid in CERTIFICATE_EFS.items():
            node = app.nodes.get(fid)
            if isinstance(node, BinaryEF):
                out[name] = x509.load_der_x509_certificate(strip_filler(node.data))
        return out

    def personalisation(self, aid: bytes, *,
                        cert_capacity: str | int = "round256") -> Personalisation:
        """Stage changes to application ``aid``'s objects (see :class:`Personalisation`)."""
        return Personalisation(self, aid, cert_capacity)

    @property
    def files(self) -> Mapping[bytes, AppView]:
        """Read-only view of every application's objects, by AID then FID (no key, no PIN)."""
        return MappingProxyType({aid: AppView.of(app) for aid, app in self._apps.items()})

    def hazmat_private_key(self, aid: bytes, fid: int) -> rsa.RSAPrivateKey:
        """The private key object ``fid`` of application ``aid``, out of band.

        Hazardous and simulation-only (pyca/cryptography's naming): a real card never gives
        its keys, and no APDU of this one does. Tests use it to prove that no answer ever
        contains key material.
        """
        node = self._apps[aid].nodes.get(fid) if aid in self._apps else None
        if not isinstance(node, KeyRef) or node.key is None:
            raise WorkbenchError(f"no private key at {fid:04X} in AID {aid.hex().upper()}")
        return node.key

    def reset_pin(self, name: str, new_value: str | bytes | None = None) -> None:
        """Out-of-band reset at the municipal office (MODEL, jpki-card.md 6): counter back to
        its maximum and, if given, a new value (format-checked)."""
        with self._lock:
            for app in self._apps.values():
                for fid, node in app.nodes.items():
                    if isinstance(node, PinRef) and node.policy.name == name and node.policy.changeable:
                        if new_value is not None:
                            value = pin_bytes(node.policy, new_value)
                            node.policy.check(value)
                            node.digest = pin_digest(self._salt, value)
                        node.tries_left = node.policy.max_tries
                        self._store.pin_changed(app.aid, fid, node)
                        self._s.verified.discard(fid)
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
                return SW.NO_PRECISE_DIAGNOSIS.bytes

    def _dispatch(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return SW.WRONG_LENGTH.bytes
        cla, ins = raw[0], raw[1]
        if cla == 0xFF:
            return SW.CLA_NOT_SUPPORTED.bytes
        if cla & 0x40:  # further interindustry class: logical channels 4-19
            return SW.LOGICAL_CHANNEL_NOT_SUPPORTED.bytes
        if cla & 0x30:  # command chaining / RFU bits
            return SW.CLA_NOT_SUPPORTED.bytes
        if cla & 0x03:
            return SW.LOGICAL_CHANNEL_NOT_SUPPORTED.bytes
        if cla & 0x0C:  # secure messaging (jpki-card.md 2.2)
            return SW.SM_NOT_ALLOWED.bytes if ins in (INS.READ_BINARY, INS.VERIFY) else SW.SECURE_MESSAGING_NOT_SUPPORTED.bytes
        try:
            cmd = CommandAPDU.from_bytes(raw)
        except APDUError:
            return SW.WRONG_LENGTH.bytes
        handler = _HANDLERS.get((cla, ins))
        if handler is None:
            return SW.CLA_NOT_SUPPORTED.bytes if (cla ^ _PROPRIETARY, ins) in _HANDLERS else SW.INS_NOT_SUPPORTED.bytes
        return handler(self, cmd)

    # --- SELECT (jpki-card.md 2.2)
    def _select(self, cmd: CommandAPDU) -> bytes:
        p1, p2 = cmd.p1, cmd.p2
        if p1 == P1_SELECT_BY_DF_NAME:
            if p2 not in _SELECT_P2:
                return SW.WRONG_P1P2.bytes
            app = self._apps.get(cmd.data)
            if app is None:
                if cmd.data == ISD_AID and self._meta.get("isd_selectable", False):
                    self._clear_session()
                    return OK
                return SW.FILE_NOT_FOUND.bytes
            self._clear_session()
            self._s.app = app
            return OK
        if p1 == P1_SELECT_EF:
            if p2 not in _SELECT_P2:
                return SW.WRONG_P1P2.bytes
            if len(cmd.data) != 2:
                return SW.WRONG_LENGTH.bytes
            if self._s.app is None:
                return SW.FILE_NOT_FOUND.bytes
            fid = int.from_bytes(cmd.data, "big")
            if fid not in self._s.app.nodes:
                return SW.FILE_NOT_FOUND.bytes
            self._s.ef = fid
            return OK
        if p1 == 0x00:
            if not cmd.data:
                # MF: 6A86 right after reset, 90 00 (state unchanged) with an AP selected (U)
                return OK if self._s.app is not None else SW.WRONG_P1P2.bytes
            return SW.FILE_NOT_FOUND.bytes
        return SW.WRONG_P1P2.bytes

    def _resolve(self, p: int) -> tuple[int | None, Node | None]:
        """Current EF, or the EF named by a ``80 | SFI`` parameter (jpki-card.md 2.2, 4.1)."""
        app = self._s.app
        if app is None:
            return None, None
        if p == P2_CURRENT_KEY:
            fid = self._s.ef
        else:
            fid = p & SFI_MASK
        if fid is None:
            return None, None
        return fid, app.nodes.get(fid)

    @staticmethod
    def _pins_set(app: Application, access: tuple[int, ...] | None) -> bool:
        for fid in access or ():
            pin = app.nodes.get(fid)
            if isinstance(pin, PinRef) and not pin.is_set:
                return False
        return True

    def _allowed(self, access: tuple[int, ...] | None) -> bool:
        return access is None or any(f in self._s.verified for f in access)

    # --- READ BINARY (jpki-card.md 4.1)
    def _read_binary(self, cmd: CommandAPDU) -> bytes:
        p1 = cmd.p1
        if p1 & P1_READ_SFI:
            if p1 & 0x60:
                return SW.WRONG_P1P2.bytes
            fid, node = self._resolve(P2_CURRENT_KEY | (p1 & SFI_MASK))
            if node is None:
                return SW.FILE_NOT_FOUND.bytes if self._s.app is not None else SW.NO_CURRENT_EF.bytes
            offset = cmd.p2
        else:
            fid, node = self._resolve(P2_CURRENT_KEY)
            if node is None:
                return SW.NO_CURRENT_EF.bytes
            offset = (p1 << 8) | cmd.p2
        if not isinstance(node, BinaryEF):
            return SW.COMMAND_INCOMPATIBLE_WITH_FILE.bytes
        if cmd.le is None:
            return SW.WRONG_LENGTH.bytes
        if not self._allowed(node.access):
            return SW.SECURITY_STATUS_NOT_SATISFIED.bytes
        if p1 & P1_READ_SFI:
            self._s.ef = fid
        data = node.data
        if offset >= len(data):
            return SW.WRONG_OFFSET.bytes
        return data[offset : offset + cmd.le] + OK

    # --- READ RECORD (jpki-card.md 4.2)
    def _read_record(self, cmd: CommandAPDU) -> bytes:
        if cmd.p2 & 0x07 != 0x04:
            return SW.WRONG_P1P2.bytes
        sfi = cmd.p2 >> 3
        fid, node = self._resolve(P2_CURRENT_KEY | sfi)
        if node is None:
            return SW.NO_CURRENT_EF.bytes if sfi == 0 else SW.FILE_NOT_FOUND.bytes
        if not isinstance(node, RecordEF):
            return SW.COMMAND_INCOMPATIBLE_WITH_FILE.bytes
        if not self._allowed(node.access):
            return SW.SECURITY_STATUS_NOT_SATISFIED.bytes
        if sfi:
            self._s.ef = fid
        if not 1 <= cmd.p1 <= len(node.records):
            return SW.RECORD_NOT_FOUND.bytes
        record = node.records[cmd.p1 - 1]
        return record[: cmd.le if cmd.le is not None else 256] + OK

    # --- VERIFY (jpki-card.md 4.3)
    def _verify(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return SW.WRONG_P1P2.bytes
        fid, node = self._resolve(cmd.p2)
        if not isinstance(node, PinRef) or fid is None or self._s.app is None:
            return SW.NO_CURRENT_EF.bytes
        if not cmd.data:  # retry-counter query: never spends a try (jpki-card.md 4.3)
            if fid in self._s.verified and self.options.verified_query == "9000":
                return OK  # MODEL option: some real cards answer 90 00 once verified
            return TRIES_BYTES[0 if node.blocked else min(node.tries_left, 15)]
        if node.blocked:
            return SW.AUTHENTICATION_BLOCKED.bytes
        if not node.is_set:  # the phone applet before its PINs are registered (MODEL)
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        # Anti-tearing: spend the try and make it durable before comparing.
        node.tries_left -= 1
        self._store.pin_changed(self._s.app.aid, fid, node)
        hooks.reached("card:verify:counter-spent")
        if pin_matches(self._salt, node.digest, cmd.data):
            node.tries_left = node.policy.max_tries
            self._store.pin_changed(self._s.app.aid, fid, node)
            self._s.verified.add(fid)
            return OK
        self._s.verified.discard(fid)
        return TRIES_BYTES[min(node.tries_left, 15)]

    # --- CHANGE REFERENCE DATA 00 24 01 80 (jpki-card.md 4.4) and JICSAP CHANGE KEY 80 32
    def _change(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x01 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return SW.WRONG_P1P2.bytes
        return self._set_new_value(cmd, jicsap=False)

    def _change_key(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return SW.WRONG_P1P2.bytes
        return self._set_new_value(cmd, jicsap=True)

    # --- RESET RETRY COUNTER 00 2C 02 P2: the phone applet's PIN registration
    def _reset_retry_counter(self, cmd: CommandAPDU) -> bytes:
        """Set a PIN object that has no value yet, once (smartphone-service.md 15.2 C11, MODEL).

        P1 ``02``: the data is the new reference value only; P2 ``80`` (current EF) or
        ``80 | SFI`` (``98`` for 0018, ``9B`` for 001B). The plastic card has no such command
        (``6D 00``). A PIN that is set already is refused with ``69 85``: resetting a known
        PIN goes through the card (smartphone-service.md 15.7, DGI A0F0), never through here.
        """
        if self.profile != "gpse":
            return SW.INS_NOT_SUPPORTED.bytes
        if cmd.p1 != 0x02 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return SW.WRONG_P1P2.bytes
        fid, node = self._resolve(cmd.p2)
        if not isinstance(node, PinRef) or fid is None or self._s.app is None:
            return SW.NO_CURRENT_EF.bytes
        if node.is_set:
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        if not cmd.data:
            return SW.WRONG_LENGTH.bytes
        try:
            node.policy.check(cmd.data)
        except PinFormatError:
            return SW.WRONG_DATA.bytes
        node.digest = pin_digest(self._salt, cmd.data)
        node.tries_left = node.policy.max_tries
        self._store.pin_changed(self._s.app.aid, fid, node)
        return OK

    def _set_new_value(self, cmd: CommandAPDU, *, jicsap: bool) -> bytes:
        fid, node = self._resolve(cmd.p2)
        if not isinstance(node, PinRef) or fid is None or self._s.app is None:
            return SW.NO_CURRENT_EF.bytes
        if (node.policy.name in ("juki", "common")) != jicsap:
            # 共通AP / 住基AP keys change with 80 32 only; JPKI and text AP keys with 00 24
            return SW.INS_NOT_SUPPORTED.bytes if jicsap else SW.CONDITIONS_NOT_SATISFIED.bytes
        if not node.policy.changeable:
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        if node.blocked:
            return SW.AUTHENTICATION_BLOCKED.bytes
        if fid not in self._s.verified:
            return SW.SECURITY_STATUS_NOT_SATISFIED.bytes
        if not cmd.data:
            return SW.WRONG_LENGTH.bytes
        try:
            node.policy.check(cmd.data)
        except PinFormatError:
            return SW.WRONG_DATA.bytes
        node.digest = pin_digest(self._salt, cmd.data)
        node.tries_left = node.policy.max_tries
        self._store.pin_changed(self._s.app.aid, fid, node)
        return OK

    # --- COMPUTE DIGITAL SIGNATURE 80 2A (jpki-card.md 4.5)
    def _sign(self, cmd: CommandAPDU) -> bytes:
        app = self._s.app
        if app is None:
            return SW.NO_CURRENT_EF.bytes
        if cmd.p1 > 0x05:
            return SW.WRONG_P1P2.bytes
        if cmd.p2 == 0x00:
            key = app.own_key  # text AP / surface AP: the AP's own key, no credential
            if key is None or cmd.p1 != 0x00:
                return SW.WRONG_P1P2.bytes
        else:
            if not cmd.p2 & 0x80 or cmd.p2 & 0x60:
                return SW.WRONG_P1P2.bytes
            _, node = self._resolve(cmd.p2)
            if not isinstance(node, KeyRef) or node.usage != "sign" or node.key is None:
                return SW.NO_CURRENT_EF.bytes
            if not self._pins_set(app, node.access):
                return SW.CONDITIONS_NOT_SATISFIED.bytes  # phone applet, PINs not registered
            if not self._allowed(node.access):
                return SW.SECURITY_STATUS_NOT_SATISFIED.bytes
            key = node.key
        data = cmd.data
        p1 = cmd.p1
        if p1 == 0x00:
            if not 0 < len(data) <= _MAX_SIGN_INPUT:
                return SW.WRONG_LENGTH.bytes
            algorithm = _digest_info_algorithm(data)
            if algorithm is not None:
                sig = key.sign(data[-algorithm.digest_size :], padding.PKCS1v15(), Prehashed(algorithm))
            else:
                sig = _raw_type1_signature(key, data)
        elif p1 == 0x01:
            if not data:
                return SW.WRONG_LENGTH.bytes
            sig = _raw_type1_signature(key, hashlib.sha256(data).digest())
        elif p1 in (0x02, 0x04):
            if len(data) != 32:
                return SW.WRONG_LENGTH.bytes
            pad = padding.PKCS1v15() if p1 == 0x02 else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            sig = key.sign(data, pad, Prehashed(hashes.SHA256()))
        else:
            if not data:
                return SW.WRONG_LENGTH.bytes
            pad = padding.PKCS1v15() if p1 == 0x03 else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            sig = key.sign(data, pad, hashes.SHA256())
        return sig + OK

    # --- SW.NO_PRECISE_DIAGNOSIS.bytes AUTHENTICATE 00 88 (jpki-card.md 4.6)
    def _internal_authenticate(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 != 0x00 or not cmd.p2 & 0x80 or cmd.p2 & 0x60:
            return SW.WRONG_P1P2.bytes
        _, node = self._resolve(cmd.p2)
        if node is None:
            return SW.NO_CURRENT_EF.bytes if self._s.app is None or cmd.p2 == P2_CURRENT_KEY else SW.FILE_NOT_FOUND.bytes
        if not isinstance(node, KeyRef) or node.usage != "internal-auth" or node.key is None:
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        if not 0 < len(cmd.data) <= 255:
            return SW.WRONG_LENGTH.bytes
        return node.key.sign(cmd.data, padding.PKCS1v15(), hashes.SHA256()) + OK

    # --- GET CHALLENGE 00 84 (jpki-card.md 3.6)
    def _get_challenge(self, cmd: CommandAPDU) -> bytes:
        if cmd.p1 or cmd.p2:
            return SW.WRONG_P1P2.bytes
        if cmd.le is None:
            return SW.WRONG_LENGTH.bytes
        if cmd.extended:
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        return os.urandom(cmd.le) + OK

    # --- GET DATA 00 CA (jpki-card.md 3.6)
    def _get_data(self, cmd: CommandAPDU) -> bytes:
        tag = (cmd.p1 << 8) | cmd.p2
        value = self._get_data.get(tag)
        if value is None or (self._s.app is not None and tag != TAG_CONTACT_ATR):
            return SW.DATA_NOT_FOUND.bytes
        if cmd.le is None:
            return SW.WRONG_LENGTH.bytes
        if len(value) > 256 and not cmd.extended:
            return SW.WRONG_LENGTH.bytes
        return value[: cmd.le] + OK

    # --- proprietary commands the card only refuses (jpki-card.md 3.3, 4.6)
    def _set_session_key(self, cmd: CommandAPDU) -> bytes:
        return SW(self._s.app.session_key_sw).bytes if self._s.app is not None else SW.SECURITY_STATUS_NOT_SATISFIED.bytes

    def _set_public_ic_key(self, cmd: CommandAPDU) -> bytes:
        if self._s.app is not None and 0x0016 in self._s.app.nodes:
            return SW.WRONG_P1P2.bytes
        return SW.INS_NOT_SUPPORTED.bytes

    def _last_command(self, cmd: CommandAPDU) -> bytes:
        return SW.WRONG_LENGTH.bytes  # plastic card (and MODEL for the Android token)


def _digest_info_algorithm(data: bytes) -> hashes.HashAlgorithm | None:
    """The hash of ``data`` if it is exactly a DigestInfo the card recognises, else None."""
    for prefix, algorithm in _DIGEST_INFO.items():
        if len(data) == len(prefix) + algorithm.digest_size and data.startswith(prefix):
            return algorithm
    return None


_HANDLERS: dict[tuple[int, int], Callable[[VirtualCard, CommandAPDU], bytes]] = {
    (0x00, INS.SELECT): VirtualCard._select,
    (0x00, INS.READ_BINARY): VirtualCard._read_binary,
    (0x00, INS.READ_RECORD): VirtualCard._read_record,
    (0x00, INS.VERIFY): VirtualCard._verify,
    (0x00, INS.CHANGE_REFERENCE_DATA): VirtualCard._change,
    (0x00, INS.RESET_RETRY_COUNTER): VirtualCard._reset_retry_counter,
    (0x00, INS.GET_CHALLENGE): VirtualCard._get_challenge,
    (0x00, INS.INTERNAL_AUTHENTICATE): VirtualCard._internal_authenticate,
    (0x00, INS.GET_DATA): VirtualCard._get_data,
    (_PROPRIETARY, INS.COMPUTE_SIGNATURE): VirtualCard._sign,
    (_PROPRIETARY, INS.SET_SESSION_KEY): VirtualCard._set_session_key,
    (_PROPRIETARY, INS.SET_PUBLIC_IC_KEY): VirtualCard._set_public_ic_key,
    (_PROPRIETARY, INS.CHANGE_KEY): VirtualCard._change_key,
    (_PROPRIETARY, INS.LAST_COMMAND): VirtualCard._last_command,
}

"""The phone's GlobalPlatform secure element: security domains, registry, SCP03, logical channels,
and the JPKI applet it hosts (globalplatform.md 3-6, 9; smartphone-service.md 13, 15).

What it holds (MODEL for a supported Osaifu-Keitai phone, smartphone-service.md 3, 15.1):
the Issuer Security Domain (SECURED, its issuer's keys), the JPKI load file with its applet
class, and the JPKI supplementary security domain under authorized management with the TSM's
SCP03 keys (AES-128, KVN 30). The TSM installs, personalises, locks, unlocks and deletes the
JPKI applet instance through an SCP03 session to that SSD; the phone app relays the APDUs over
OMAPI logical channels (13) and, once the applet is personalised, talks to it in plain.

Rules (with the status words of globalplatform.md 5.10):

- **Channels** (ISO 7816-4 5.1.1, OMAPI): the basic channel and channels 1-3 opened with
  MANAGE CHANNEL (``6A 81`` when none is left); a command on a closed channel answers
  ``68 81``. Each channel has its own selection, its own SCP03 session and its own applet
  session (selected file, verified PINs). A channel opened from a supplementary channel starts
  with that channel's application selected (not its verified PINs); one opened from the basic
  channel starts with nothing selected.
- **Selection**: SELECT by AID of a registry entry that is selectable; a locked or only
  INSTALLED application, an unknown AID, and anything but the ISD on a CARD_LOCKED card answer
  ``6A 82``; selecting anything closes the channel's SCP03 session (6.10). What a channel has
  selected stops answering as soon as it is locked or deleted, or the card is locked. MODEL:
  on the basic channel before any SELECT, GlobalPlatform commands (CLA 80/84 with a GP
  instruction) go to the ISD and the rest to the JPKI applet in its "no application selected"
  state, so an external reader sees what it sees on the plastic card (jpki-card.md 2.2, 8).
  On a CARD_LOCKED or TERMINATED card everything goes to the ISD (3; 9 item 4).
- **Content management** (INSTALL, DELETE, SET STATUS, PUT KEY, STORE DATA, GET STATUS)
  needs an open SCP03 session to a security domain: ``69 82`` otherwise, and when the session's
  level is below :attr:`SecureElement.required_levels` (MODEL: C-MAC; STORE DATA and PUT KEY
  carry key material and PINs, so C-MAC + C-DECRYPTION). Such a command sent plain (CLA 80)
  inside an open session carries no C-MAC: ``69 82``, and the session is closed like after a
  wrong C-MAC (6.10 MODEL). An SSD manages only the applications associated with it (``69 85``
  otherwise); the ISD manages all. A STORE DATA sequence belongs to its session: a SELECT, a
  new INITIALIZE UPDATE or a security failure drops what it staged.
- **Persistence**: the SE image (:mod:`workbench.se.image`) receives every change before the
  answer leaves; a factory reset of the phone's app (smartphone-service.md 8, 15.6) is not an
  SE operation and changes nothing here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from workbench import tlv
from workbench.apdu import (
    CLA_PROPRIETARY,
    CLA_SECURE_MESSAGING,
    INS,
    P1_SELECT_BY_DF_NAME,
    SW,
    CommandAPDU,
)
from workbench.card.atr import ATR_GPSE
from workbench.card.constants import PIN_AUTH, PIN_SIGN
from workbench.card.model import PinRef
from workbench.card.virtual_card import AppView, CardSession, VirtualCard
from workbench.errors import APDUError, WorkbenchError
from workbench.holder import Holder, holder_from_json
from workbench.se import gp, scp03
from workbench.se.applet import AppletError, JpkiApplet, KeyGen
from workbench.se.gp import EntryKind, RegistryEntry
from workbench.se.image import SeImage, SeStore, is_se_image, read_image, write_image
from workbench.se.scp03 import SecureChannelError, StaticKeys

__all__ = [
    "MAX_CHANNELS",
    "SecureElement",
    "SeError",
    "default_key_sets",
    "load_token",
]

log = logging.getLogger(__name__)

#: The basic channel and three more (globalplatform.md 9; OMAPI opens 1-3).
MAX_CHANNELS = 4
#: GlobalPlatform's well-known test key (GPPro's default); the simulated SE's keys are
#: synthetic test keys, never real ones.
TEST_KEY = bytes.fromhex("404142434445464748494A4B4C4D4E4F")

_GP_CLA = CLA_PROPRIETARY
_STORE_DATA_LAST = 0x80  # P1 b8 (5.5)
_STORE_DATA_STRUCTURE = 0x18  # P1 b5-b4: 08 DGI, 10 BER-TLV
_STORE_DATA_DGI = 0x08
_INSTALL_FOR_INSTALL = 0x04
_INSTALL_MAKE_SELECTABLE = 0x08
_INSTALL_FOR_PERSONALIZATION = 0x20
_GET_STATUS_TLV = 0x02
_GET_STATUS_NEXT = 0x01
_SW_MORE_DATA = 0x6310  # GET STATUS: more entries (5.2)


class SeError(WorkbenchError):
    """A secure element operation refused out of band (not an APDU answer)."""


def default_key_sets(seed: bytes | None = None) -> dict[bytes, list[StaticKeys]]:
    """Test keys of the ISD and the JPKI SSD (KVN 30). Without a seed both use GlobalPlatform's
    well-known test key; with one, the SSD's keys are derived from it (still test keys)."""
    isd = StaticKeys(TEST_KEY, TEST_KEY, TEST_KEY, kvn=0x30)
    if seed is None:
        ssd = isd
    else:
        parts = [hashlib.sha256(b"jpki-workbench/se/ssd-key/" + name + seed).digest()[:16]
                 for name in (b"enc", b"mac", b"dek")]
        ssd = StaticKeys(*parts, kvn=0x30)
    return {gp.ISD_AID: [isd], gp.JPKI_SSD_AID: [ssd]}


def factory_registry() -> list[RegistryEntry]:
    """The registry of a supported phone's SE before any JPKI instance (MODEL, see module)."""
    return [
        RegistryEntry(gp.ISD_AID, EntryKind.ISD, gp.CardState.SECURED, gp.ISD_PRIVILEGES),
        RegistryEntry(gp.JPKI_ELF_AID, EntryKind.ELF, gp.LOADED, 0, gp.ISD_AID,
                      modules=(gp.JPKI_MODULE_AID,)),
        RegistryEntry(gp.JPKI_SSD_AID, EntryKind.SSD, gp.SdState.PERSONALIZED,
                      gp.SSD_PRIVILEGES, gp.ISD_AID),
    ]


@dataclass(eq=False)
class _Channel:
    number: int
    selected: RegistryEntry | None = None  # None: nothing selected explicitly (basic channel)
    scp: scp03.CardSession | None = None
    kvn: int | None = None  # the static key set the session was opened with (6.1)
    perso_target: bytes | None = None  # application AID after INSTALL [for personalization]
    store_block: int = 0  # the next STORE DATA block number expected (5.5)
    applet_session: CardSession = field(default_factory=CardSession)
    get_status_pending: list[bytes] = field(default_factory=list)  # entries after 63 10 (5.2)

    def reset(self) -> None:
        self.selected = None
        self.scp = None
        self.kvn = None
        self.perso_target = None
        self.store_block = 0
        self.applet_session.clear()
        self.get_status_pending = []


class SecureElement:
    """A GlobalPlatform secure element with the JPKI applet (see the module docstring).

    It is also a token like :class:`workbench.card.VirtualCard` (``power_on``, ``transmit``,
    ``certificates``, ``pin_status``, ``save``, …), so everything that talks to a phone token
    talks to it: in process, through pcscd (``card serve``), in traces.
    """

    profile = "gpse"

    #: Minimum SCP03 security level per command (MODEL, see the module docstring).
    required_levels: Mapping[int, int] = {
        INS.INSTALL: scp03.C_MAC,
        INS.DELETE: scp03.C_MAC,
        INS.SET_STATUS: scp03.C_MAC,
        INS.GET_STATUS: scp03.C_MAC,
        INS.STORE_DATA: scp03.C_MAC | scp03.C_DECRYPTION,
        INS.PUT_KEY: scp03.C_MAC | scp03.C_DECRYPTION,
    }

    def __init__(self, image: SeImage, store: SeStore | None = None, *,
                 keygen: KeyGen | None = None, get_status_budget: int = 256) -> None:
        self._image = image
        self._store = store or SeStore()
        self._keygen = keygen
        self._lock = threading.RLock()
        self.atr = bytes.fromhex(image.meta.get("atr", ATR_GPSE.hex()))
        self.get_status_budget = get_status_budget
        self._applets: dict[bytes, JpkiApplet] = {}
        for aid, (salt, meta, nodes) in image.applets.items():
            self._applets[aid] = JpkiApplet.restore(
                atr=self.atr, salt=salt, meta=meta, nodes=nodes,
                store=self._store.applet_store(aid), keygen=keygen)
        self._channels: dict[int, _Channel] = {}
        self._powered = False

    # ------------------------------------------------------------------ construction, files

    @classmethod
    def factory(cls, *, seed: bytes | None = None,
                key_sets: dict[bytes, list[StaticKeys]] | None = None,
                keygen: KeyGen | None = None, meta: dict[str, Any] | None = None) -> SecureElement:
        """A new SE as a supported phone leaves the factory: ISD, JPKI load file, JPKI SSD with
        the TSM's keys; no JPKI instance yet."""
        kdd = (hashlib.sha256(b"jpki-workbench/se/kdd/" + seed).digest()[:10] if seed is not None
               else os.urandom(10))
        facts = {
            "profile": "gpse",
            "atr": ATR_GPSE.hex().upper(),
            "kdd": kdd.hex().upper(),
            "se_id": hashlib.sha256(b"se-id" + kdd).hexdigest()[:32].upper(),
            **(meta or {}),
        }
        sets = key_sets if key_sets is not None else default_key_sets(seed)
        image = SeImage(facts, {k: list(v) for k, v in sets.items()},
                        {aid: 0 for aid in sets}, factory_registry(), {})
        return cls(image, None, keygen=keygen)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, keygen: KeyGen | None = None) -> SecureElement:
        """Open an SE image; every change is written back to it as it happens."""
        image, store = read_image(path)
        return cls(image, store, keygen=keygen)

    def _snapshot(self) -> SeImage:
        applets = {aid: (a.salt, self._applet_meta(a), a.nodes())
                   for aid, a in self._applets.items()}
        return SeImage(dict(self._image.meta), self._image.key_sets, dict(self._image.counters),
                       [dataclasses.replace(e) for e in self._image.registry], applets)

    @staticmethod
    def _applet_meta(applet: JpkiApplet) -> dict[str, Any]:
        return {k: v for k, v in applet.card._meta.items() if k not in ("salt", "atr")}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the SE to an image file atomically and keep using that file from now on."""
        with self._lock:
            write_image(path, self._snapshot())
            image, store = read_image(path)
            self._store.close()
            self._store = store
            for aid, applet in self._applets.items():
                applet.card._store = store.applet_store(aid)

    def close(self) -> None:
        """Release the image file (the SE stays usable in memory)."""
        with self._lock:
            self._store.close()
            self._store = SeStore()
            for applet in self._applets.values():
                applet.card._store = self._store.applet_store(applet.aid)

    def __enter__(self) -> SecureElement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path | None:
        return self._store.path

    # ------------------------------------------------------------------ out of band (not APDU)

    @property
    def registry(self) -> list[RegistryEntry]:
        """A copy of the registry (globalplatform.md 3)."""
        return [dataclasses.replace(e) for e in self._image.registry]

    @property
    def card_state(self) -> int:
        return self._entry(gp.ISD_AID).life_cycle  # type: ignore[union-attr]

    @property
    def key_sets(self) -> dict[bytes, list[StaticKeys]]:
        """The security domains' static keys (test keys: the host side needs them)."""
        return {aid: list(sets) for aid, sets in self._image.key_sets.items()}

    @property
    def meta(self) -> dict[str, Any]:
        """Public facts of the SE and of the token it carries (holder, issue time, serials)."""
        return dict(self._image.meta)

    def update_meta(self, **facts: Any) -> None:
        """Record facts about the token (the issuer does, e.g. the holder and serials); an SE
        bound to an image file writes them at once, and a new ``atr`` is the one it answers."""
        if {"format", "version"} & set(facts):
            raise SeError("'format' and 'version' belong to the image file, not to the token")
        with self._lock:
            self._store.meta_changed(facts)
            self._image.meta.update(facts)
            if "atr" in facts:
                self.atr = bytes.fromhex(str(facts["atr"]))

    @property
    def jpki(self) -> JpkiApplet | None:
        """The JPKI applet instance, if installed (whatever its life cycle)."""
        return self._applets.get(gp.JPKI_INSTANCE_AID)

    @property
    def label(self) -> str:
        return str(self._image.meta.get("label", "JPKIAPGPSETOKEN"))

    @property
    def holder(self) -> Holder:
        if "holder" not in self._image.meta:
            raise SeError("this SE carries no token issued to a holder yet")
        return holder_from_json(self._image.meta["holder"])

    def _jpki_card(self):  # noqa: ANN202 - a VirtualCard
        applet = self.jpki
        if applet is None:
            raise SeError("the JPKI applet is not installed on this SE")
        return applet.card

    def certificates(self) -> dict[str, x509.Certificate]:
        """The certificates the JPKI applet holds (empty when it is not installed)."""
        return {} if self.jpki is None else self.jpki.card.certificates()

    def pin_status(self) -> dict[str, int]:
        return {} if self.jpki is None else self.jpki.card.pin_status()

    @property
    def files(self) -> Mapping[bytes, AppView]:
        return {} if self.jpki is None else self.jpki.card.files

    def hazmat_private_key(self, aid: bytes, fid: int) -> rsa.RSAPrivateKey:
        """Out of band, simulation only (see :meth:`VirtualCard.hazmat_private_key`)."""
        return self._jpki_card().hazmat_private_key(aid, fid)

    def reset_pin(self, name: str, new_value: str | bytes | None = None) -> None:
        """Out-of-band counter reset (the card's municipal-office reset, for tests)."""
        self._jpki_card().reset_pin(name, new_value)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        jpki = self._entry(gp.JPKI_INSTANCE_AID)
        state = "absent" if jpki is None else f"{jpki.life_cycle:02X}"
        return f"SecureElement(JPKI applet {state}{where})"

    # ------------------------------------------------------------------ power

    def power_on(self) -> bytes:
        """Power and return the ATR (of the phone in card emulation, MODEL: synthetic)."""
        with self._lock:
            self._powered = True
            self._channels = {0: _Channel(0)}
            for applet in self._applets.values():
                applet.abort()
            return self.atr

    def reset(self) -> bytes:
        """Warm reset: every channel closes, every session ends (6.10)."""
        return self.power_on()

    def power_off(self) -> None:
        with self._lock:
            self._powered = False
            self._channels = {}
            for applet in self._applets.values():
                applet.abort()

    @property
    def powered(self) -> bool:
        return self._powered

    # ------------------------------------------------------------------ APDU

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU on the channel its CLA names; never raises for bytes."""
        if not isinstance(apdu, (bytes, bytearray, memoryview)):
            raise TypeError("transmit() takes the APDU as bytes")
        raw = bytes(apdu)
        with self._lock:
            if not self._powered:
                self.power_on()
            try:
                return self._dispatch(raw)
            except Exception:  # a bug must not escape to the reader
                log.exception("secure element: internal error while processing %s", raw[:4].hex())
                return SW.NO_PRECISE_DIAGNOSIS.bytes

    def _dispatch(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return SW.WRONG_LENGTH.bytes
        cla, ins = raw[0], raw[1]
        if cla == 0xFF or cla & 0x30:
            return SW.CLA_NOT_SUPPORTED.bytes
        if cla & 0x40:  # further interindustry class: channels 4-19
            return SW.LOGICAL_CHANNEL_NOT_SUPPORTED.bytes
        channel = self._channels.get(cla & 0x03)
        if channel is None:
            return SW.LOGICAL_CHANNEL_NOT_SUPPORTED.bytes
        proprietary = bool(cla & CLA_PROPRIETARY)
        if self.card_state == gp.CardState.TERMINATED and not (ins == INS.GET_DATA):
            return SW.CONDITIONS_NOT_SATISFIED.bytes
        if not proprietary and ins == INS.MANAGE_CHANNEL:
            return self._manage_channel(channel, raw)
        if (not proprietary and ins == INS.SELECT and len(raw) > 4
                and raw[2] == P1_SELECT_BY_DF_NAME):
            if cla & 0x0C:
                return SW.SECURE_MESSAGING_NOT_SUPPORTED.bytes
            return self._select(channel, raw)
        target = channel.selected
        applet = self._applets.get(target.aid) if target is not None else None
        if applet is not None:
            return applet.process(channel.applet_session, self._plain_cla(raw))
        if target is None and not (proprietary and ins in gp.GP_INS):
            default = self._default_applet()
            if default is not None:  # MODEL: what an external reader sees (module docstring)
                return default.process(channel.applet_session, self._plain_cla(raw))
        return self._security_domain(channel, target or self._entry(gp.ISD_AID), raw)

    @staticmethod
    def _plain_cla(raw: bytes) -> bytes:
        return bytes((raw[0] & ~0x03,)) + raw[1:]

    def _default_applet(self) -> JpkiApplet | None:
        entry = self._entry(gp.JPKI_INSTANCE_AID)
        if (entry is None or not entry.selectable
                or self.card_state in (gp.CardState.CARD_LOCKED, gp.CardState.TERMINATED)):
            return None
        return self._applets.get(entry.aid)

    def _entry(self, aid: bytes) -> RegistryEntry | None:
        for entry in self._image.registry:
            if entry.aid == aid:
                return entry
        return None

    # --- MANAGE CHANNEL (ISO 7816-4 11.1.2)

    def _manage_channel(self, channel: _Channel, raw: bytes) -> bytes:
        try:
            cmd = CommandAPDU.from_bytes(raw)
        except APDUError:
            return SW.WRONG_LENGTH.bytes
        if cmd.p1 == 0x00:  # open: P2 00 = the card assigns the number
            if cmd.p2 != 0x00 or cmd.data:
                return SW.WRONG_P1P2.bytes
            for number in range(1, MAX_CHANNELS):
                if number not in self._channels:
                    new = _Channel(number)
                    if channel.number != 0 and channel.selected is not None:
                        # ISO 7816-4 MANAGE CHANNEL: opened from a supplementary channel, the
                        # new one has that channel's application selected (not its security
                        # state); opened from the basic channel, the default selection
                        new.selected = channel.selected
                        new.applet_session.app = channel.applet_session.app
                    self._channels[number] = new
                    return bytes((number,)) + SW.SUCCESS.bytes
            return bytes.fromhex("6A81")  # no channel left (function not supported)
        if cmd.p1 == 0x80:  # close channel P2
            number = cmd.p2
            if number == 0 or number not in self._channels:
                return SW.WRONG_P1P2.bytes
            self._reset_channel(self._channels.pop(number))
            return SW.SUCCESS.bytes
        return SW.WRONG_P1P2.bytes

    # --- SELECT by AID (globalplatform.md 5.1, 3)

    def _select(self, channel: _Channel, raw: bytes) -> bytes:
        try:
            cmd = CommandAPDU.from_bytes(raw)
        except APDUError:
            return SW.WRONG_LENGTH.bytes
        if cmd.p2 not in (0x00, 0x04, 0x0C):
            return SW.WRONG_P1P2.bytes
        entry = self._entry(cmd.data)
        locked_card = self.card_state == gp.CardState.CARD_LOCKED
        if (entry is None or not entry.selectable
                or (locked_card and entry.kind is not EntryKind.ISD)):
            return SW.FILE_NOT_FOUND.bytes
        self._reset_channel(channel)
        channel.selected = entry
        applet = self._applets.get(entry.aid)
        if applet is not None:
            return applet.process(channel.applet_session, self._plain_cla(raw))
        if cmd.p2 == 0x0C:
            return SW.SUCCESS.bytes
        fci = tlv.encode(0x6F, tlv.encode(0x84, entry.aid) + tlv.encode(
            0xA5, tlv.encode(0x9F6E, b"\x06\x40\x51\x53\x44") + tlv.encode(0x9F65, b"\xff")))
        return fci + SW.SUCCESS.bytes

    # --- security domains (globalplatform.md 5, 6)

    def _security_domain(self, channel: _Channel, sd: RegistryEntry | None, raw: bytes) -> bytes:
        if sd is None or not sd.is_security_domain:
            return SW.INS_NOT_SUPPORTED.bytes
        cla, ins = raw[0], raw[1]
        if cla & _GP_CLA == 0:  # ISO class to a security domain
            if ins == INS.SELECT:
                return SW.WRONG_P1P2.bytes if len(raw) == 4 else SW.FILE_NOT_FOUND.bytes
            if ins == INS.GET_DATA:
                return self._get_data(sd, raw)
            return SW.INS_NOT_SUPPORTED.bytes
        if ins == INS.INITIALIZE_UPDATE and not cla & CLA_SECURE_MESSAGING:
            return self._initialize_update(channel, sd, raw)
        if ins == INS.EXTERNAL_AUTHENTICATE:
            if channel.scp is None:
                return SW.CONDITIONS_NOT_SATISFIED.bytes
            return channel.scp.external_authenticate(self._channel_zero(raw))
        session = channel.scp if channel.scp is not None and channel.scp.is_open else None
        secured = bool(cla & CLA_SECURE_MESSAGING)
        if secured:
            if session is None:
                return SW.SECURITY_STATUS_NOT_SATISFIED.bytes
            try:
                plain = session.unwrap_command(self._channel_zero(raw))
            except SecureChannelError as exc:
                self._abort_personalisation(channel)
                return exc.sw.to_bytes(2, "big")
        else:
            plain = raw
        try:
            cmd = CommandAPDU.from_bytes(plain)
        except APDUError:
            return SW.WRONG_LENGTH.bytes
        data, sw = self._sd_command(channel, sd, cmd, session if secured else None)
        if session is not None and secured:
            try:
                return session.wrap_response(data, sw)
            except SecureChannelError as exc:
                return exc.sw.to_bytes(2, "big")
        return data + sw.to_bytes(2, "big")

    @staticmethod
    def _channel_zero(raw: bytes) -> bytes:
        """SCP03 MACs the CLA with its channel bits cleared (6.6)."""
        return bytes((raw[0] & ~0x03,)) + raw[1:]

    def _initialize_update(self, channel: _Channel, sd: RegistryEntry, raw: bytes) -> bytes:
        sets = self._image.key_sets.get(sd.aid)
        if not sets:
            return SW.DATA_NOT_FOUND.bytes
        kdd = bytes.fromhex(self._image.meta.get("kdd", "00" * 10))
        session = scp03.CardSession(sets, sd.aid, key_diversification_data=kdd,
                                    sequence_counter=self._image.counters.get(sd.aid, 0))
        self._abort_personalisation(channel)
        channel.get_status_pending = []
        channel.scp = session
        answer = session.initialize_update(self._channel_zero(raw))
        # 6.1: the key information starts with the KVN the card chose (P1 00: the first set)
        channel.kvn = answer[10] if answer[-2:] == SW.SUCCESS.bytes else None
        if session.sequence_counter != self._image.counters.get(sd.aid, 0):
            self._image.counters[sd.aid] = session.sequence_counter
            self._store.counter_changed(sd.aid, session.sequence_counter)
        return answer

    def _abort_personalisation(self, channel: _Channel) -> None:
        """Drop the channel's unfinished STORE DATA sequence: a sequence belongs to one session
        and never resumes in another (5.5; the applet commits only at its last block)."""
        target = channel.perso_target
        if target is not None and target in self._applets:
            self._applets[target].abort()
        channel.perso_target = None
        channel.store_block = 0

    def _reset_channel(self, channel: _Channel) -> None:
        """Nothing selected any more: the SCP03 session ends (6.10) and so does an unfinished
        personalisation sequence on the channel."""
        self._abort_personalisation(channel)
        channel.reset()

    def _deselect_unselectable(self) -> None:
        """A channel whose selection became unselectable stops at once: a locked application
        or SD (3), a deleted one (5.6), anything but the ISD on a CARD_LOCKED or TERMINATED
        card (3; 9 item 4)."""
        card_locked = self.card_state in (gp.CardState.CARD_LOCKED, gp.CardState.TERMINATED)
        for ch in self._channels.values():
            if ch.selected is None:
                continue
            entry = self._entry(ch.selected.aid)
            if entry is None or (entry.kind is not EntryKind.ISD
                                 and (gp.is_locked(entry.life_cycle) or card_locked)):
                self._reset_channel(ch)

    def _sd_command(self, channel: _Channel, sd: RegistryEntry, cmd: CommandAPDU,
                    session: scp03.CardSession | None) -> tuple[bytes, int]:
        ins = cmd.ins
        if ins == INS.GET_DATA and (cmd.p1 << 8 | cmd.p2) == gp.TAG_REGISTRATION_RECEIPT:
            return self._registration_state(sd, session)
        if ins == INS.GET_DATA:
            answer = self._get_data(sd, cmd.to_bytes())
            return answer[:-2], int.from_bytes(answer[-2:], "big")
        needed = self.required_levels.get(ins)
        if needed is None:
            return b"", SW.INS_NOT_SUPPORTED
        # ``session`` is None for a plain command: it carries no C-MAC whatever session is open
        level = session.security_level if session is not None else None
        if level is None or level & needed != needed:
            if session is None and channel.scp is not None and channel.scp.is_open:
                # 6.10 MODEL: an unprotected content-management command inside a session is a
                # security failure, like a wrong C-MAC: 69 82 and the session is closed
                channel.scp.close()
                self._abort_personalisation(channel)
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        handler = {
            INS.GET_STATUS: self._get_status,
            INS.INSTALL: self._install,
            INS.DELETE: self._delete,
            INS.SET_STATUS: self._set_status,
            INS.STORE_DATA: self._store_data,
            INS.PUT_KEY: self._put_key,
        }[ins]
        return handler(channel, sd, cmd)

    def _registration_state(self, sd: RegistryEntry,
                            session: scp03.CardSession | None) -> tuple[bytes, int]:
        """GET DATA ``DF70`` to the JPKI SSD inside an SCP03 session with C-MAC: the
        registration receipt of smartphone-service.md 15.2 C12 (MODEL). The spec lets the
        applet MAC ``application id ‖ state``; here the SSD answers inside the TSM's own
        session instead, whose R-MAC (level 33) already binds the answer to that session, so
        the relaying app can neither forge nor replay it. Value: the applet's life cycle
        state (``00`` absent), then ``01``/``00`` for "PIN set" of the auth PIN (0018) and
        the signing password (001B)."""
        if sd.aid != gp.JPKI_SSD_AID:
            return b"", SW.DATA_NOT_FOUND
        if session is None or not session.security_level & scp03.C_MAC:
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        entry = self._entry(gp.JPKI_INSTANCE_AID)
        applet = self._applets.get(gp.JPKI_INSTANCE_AID)
        flags = b"\x00\x00"
        if applet is not None:
            nodes = applet.nodes()
            flags = bytes(int(isinstance(nodes.get(fid), PinRef) and nodes[fid].is_set)
                          for fid in (PIN_AUTH, PIN_SIGN))
        state = entry.life_cycle if entry is not None else 0
        return tlv.encode(gp.TAG_REGISTRATION_RECEIPT, bytes((state,)) + flags), SW.SUCCESS

    # GET DATA (5.9)
    def _get_data(self, sd: RegistryEntry, raw: bytes) -> bytes:
        try:
            cmd = CommandAPDU.from_bytes(raw)
        except APDUError:
            return SW.WRONG_LENGTH.bytes
        tag = cmd.p1 << 8 | cmd.p2
        if tag == 0x0066:  # card recognition data (GP): OID of GlobalPlatform, SCP03 i=70
            value = tlv.encode(0x66, tlv.encode(0x73, tlv.encode(0x06, bytes.fromhex(
                "2A864886FC6B01")) + tlv.encode(0x64, tlv.encode(0x06, bytes.fromhex(
                    "2A864886FC6B040370")))))
        elif tag == 0x9F7F:  # CPLC (synthetic: fabricator "WB", serial from the SE id)
            se_id = bytes.fromhex(self._image.meta.get("se_id", "00" * 16))
            # 42 bytes: fabricator, IC type, OS id, OS date, OS level, fabrication date (6 x 2),
            # then the 4-byte IC serial number at offset 12
            value = tlv.encode(0x9F7F, b"WB" + b"\x00" * 10 + se_id[:4] + b"\x00" * 26)
        elif tag == 0x00E0:  # key information template of this SD
            infos = b"".join(tlv.encode(0xC0, bytes((1 + i, k.kvn, 0x88, len(k.enc))))
                             for k in self._image.key_sets.get(sd.aid, [])
                             for i in range(3))
            value = tlv.encode(0xE0, infos)
        else:
            return SW.DATA_NOT_FOUND.bytes
        return value + SW.SUCCESS.bytes

    # GET STATUS (5.2), with paging 63 10
    def _get_status(self, channel: _Channel, sd: RegistryEntry,
                    cmd: CommandAPDU) -> tuple[bytes, int]:
        if cmd.p2 & ~(_GET_STATUS_TLV | _GET_STATUS_NEXT):
            return b"", SW.WRONG_P1P2
        if cmd.p2 & _GET_STATUS_NEXT:
            pending = channel.get_status_pending
            if not pending:
                return b"", SW.CONDITIONS_NOT_SATISFIED
        else:
            try:
                criteria = {t.tag: t.value for t in tlv.decode(cmd.data, filler=b"")}
            except WorkbenchError:
                return b"", SW.WRONG_DATA
            prefix = criteria.get(0x4F, b"")
            kinds = {0x80: (EntryKind.ISD,), 0x40: (EntryKind.SSD, EntryKind.APPLICATION),
                     0x20: (EntryKind.ELF,), 0x10: (EntryKind.ELF,)}.get(cmd.p1)
            if kinds is None:
                return b"", SW.WRONG_P1P2
            entries = [e for e in self._image.registry if e.kind in kinds
                       and e.aid.startswith(prefix)]
            if not entries:
                return b"", SW.DATA_NOT_FOUND
            tlv_format = bool(cmd.p2 & _GET_STATUS_TLV)
            pending = [self._status_entry(e, tlv_format, with_modules=cmd.p1 == 0x10)
                       for e in entries]
        out = b""
        while pending and len(out) + len(pending[0]) <= self.get_status_budget:
            out += pending.pop(0)
        if not out and pending:  # one entry larger than the budget: send it anyway
            out = pending.pop(0)
        channel.get_status_pending = pending
        return out, (_SW_MORE_DATA if pending else SW.SUCCESS)

    @staticmethod
    def _status_entry(e: RegistryEntry, tlv_format: bool, *, with_modules: bool) -> bytes:
        privileges = e.privileges.to_bytes(3, "big")
        if not tlv_format:
            out = bytes((len(e.aid),)) + e.aid + bytes((e.life_cycle, privileges[0]))
            if with_modules:
                out += bytes((len(e.modules),)) + b"".join(bytes((len(m),)) + m for m in e.modules)
            return out
        body = (tlv.encode(0x4F, e.aid) + tlv.encode(0x9F70, bytes((e.life_cycle,)))
                + tlv.encode(0xC5, privileges))
        if e.elf_aid is not None:
            body += tlv.encode(0xC4, e.elf_aid)
        if e.module_aid is not None:
            body += tlv.encode(0x84, e.module_aid)
        if with_modules:
            body += b"".join(tlv.encode(0x84, m) for m in e.modules)
        if e.sd_aid is not None:
            body += tlv.encode(0xCC, e.sd_aid)
        return tlv.encode(0xE3, body)

    # INSTALL (5.3)
    def _install(self, channel: _Channel, sd: RegistryEntry, cmd: CommandAPDU) -> tuple[bytes, int]:
        fields = _lv_fields(cmd.data)
        if fields is None or len(fields) < 3:
            return b"", SW.WRONG_DATA
        p1 = cmd.p1 & 0x7F
        if p1 in (_INSTALL_FOR_INSTALL, _INSTALL_FOR_INSTALL | _INSTALL_MAKE_SELECTABLE):
            if len(fields) < 5:
                return b"", SW.WRONG_DATA
            elf_aid, module_aid, app_aid, privileges, params = fields[:5]
            elf = self._entry(elf_aid)
            if elf is None or elf.kind is not EntryKind.ELF or module_aid not in elf.modules:
                return b"", SW.DATA_NOT_FOUND
            if self._entry(app_aid) is not None:
                return b"", SW.CONDITIONS_NOT_SATISFIED  # already installed
            if module_aid != gp.JPKI_MODULE_AID or app_aid != gp.JPKI_INSTANCE_AID:
                return b"", SW.WRONG_DATA  # the only applet class this SE knows (MODEL)
            if len(privileges) not in (1, 3) or not params.startswith(b"\xc9"):
                return b"", SW.WRONG_DATA
            if not sd.privileges & gp.Privilege.AUTHORIZED_MANAGEMENT:
                return b"", SW.SECURITY_STATUS_NOT_SATISFIED
            priv = int.from_bytes(privileges.ljust(3, b"\x00"), "big")
            state = (gp.ApplicationState.SELECTABLE if p1 & _INSTALL_MAKE_SELECTABLE
                     else gp.ApplicationState.INSTALLED)
            entry = RegistryEntry(app_aid, EntryKind.APPLICATION, state, priv, sd.aid, elf_aid,
                                  module_aid)
            applet = JpkiApplet.install(atr=self.atr, keygen=self._keygen,
                                        meta={"label": "JPKIAPGPSETOKEN"})
            registry = [*self._image.registry, entry]
            self._store.applet_added(app_aid, applet.salt, self._applet_meta(applet),
                                     applet.nodes())
            self._store.registry_changed(registry)
            applet.card._store = self._store.applet_store(app_aid)
            self._image.registry = registry
            self._applets[app_aid] = applet
            return b"\x00", SW.SUCCESS
        if p1 == _INSTALL_MAKE_SELECTABLE:
            entry = self._managed(sd, fields[2])
            if isinstance(entry, int):
                return b"", entry
            if entry.life_cycle != gp.ApplicationState.INSTALLED:
                return b"", SW.CONDITIONS_NOT_SATISFIED
            self._change(entry, gp.ApplicationState.SELECTABLE)
            return b"\x00", SW.SUCCESS
        if p1 == _INSTALL_FOR_PERSONALIZATION:
            entry = self._managed(sd, fields[2])
            if isinstance(entry, int):
                return b"", entry
            if gp.is_locked(entry.life_cycle) or entry.aid not in self._applets:
                return b"", SW.CONDITIONS_NOT_SATISFIED
            self._abort_personalisation(channel)
            self._applets[entry.aid].abort()  # a new sequence starts from nothing staged (5.5)
            channel.perso_target = entry.aid
            channel.store_block = 0
            return b"\x00", SW.SUCCESS
        return b"", SW.WRONG_P1P2

    def _managed(self, sd: RegistryEntry, aid: bytes) -> RegistryEntry | int:
        """The application ``aid`` if ``sd`` may manage it, else the SW to answer."""
        entry = self._entry(aid)
        if entry is None or entry.kind is not EntryKind.APPLICATION:
            return SW.DATA_NOT_FOUND
        if sd.kind is not EntryKind.ISD and entry.sd_aid != sd.aid:
            return SW.CONDITIONS_NOT_SATISFIED
        return entry

    def _change(self, entry: RegistryEntry, life_cycle: int) -> None:
        registry = [dataclasses.replace(e, life_cycle=life_cycle) if e.aid == entry.aid else e
                    for e in self._image.registry]
        self._store.registry_changed(registry)
        self._image.registry = registry

    # DELETE (5.6)
    def _delete(self, channel: _Channel, sd: RegistryEntry, cmd: CommandAPDU) -> tuple[bytes, int]:
        if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x80):
            return b"", SW.WRONG_P1P2
        try:
            objects = tlv.decode(cmd.data, filler=b"")
        except WorkbenchError:
            return b"", SW.WRONG_DATA
        if len(objects) < 1 or objects[0].tag != 0x4F:
            return b"", SW.WRONG_DATA
        aid = objects[0].value
        entry = self._entry(aid)
        if entry is None:
            return b"", SW.DATA_NOT_FOUND
        if entry.kind is not EntryKind.APPLICATION:
            return b"", SW.CONDITIONS_NOT_SATISFIED  # SDs and load files stay (MODEL)
        managed = self._managed(sd, aid)
        if isinstance(managed, int):
            return b"", managed
        registry = [e for e in self._image.registry if e.aid != aid]
        self._store.registry_changed(registry, removed_applets=(aid,))
        self._image.registry = registry
        for ch in self._channels.values():
            if ch.perso_target == aid:
                self._abort_personalisation(ch)
        self._applets.pop(aid, None)
        self._deselect_unselectable()
        return b"\x00", SW.SUCCESS

    # SET STATUS (5.8, transitions of 3)
    def _set_status(self, channel: _Channel, sd: RegistryEntry,
                    cmd: CommandAPDU) -> tuple[bytes, int]:
        p1, state = cmd.p1, cmd.p2
        if p1 == 0x80:  # the card
            if sd.kind is not EntryKind.ISD:
                return b"", SW.SECURITY_STATUS_NOT_SATISFIED
            current = self.card_state
            allowed = {
                gp.CardState.OP_READY: {gp.CardState.INITIALIZED, gp.CardState.SECURED},
                gp.CardState.INITIALIZED: {gp.CardState.SECURED},
                gp.CardState.SECURED: {gp.CardState.CARD_LOCKED},
                gp.CardState.CARD_LOCKED: {gp.CardState.SECURED},
            }.get(current, set())
            if state == gp.CardState.TERMINATED and current != gp.CardState.TERMINATED:
                allowed = {gp.CardState.TERMINATED}
            if state not in allowed:
                return b"", SW.CONDITIONS_NOT_SATISFIED
            self._change(self._entry(gp.ISD_AID), state)  # type: ignore[arg-type]
            self._deselect_unselectable()
            return b"", SW.SUCCESS
        if p1 not in (0x40, 0x60):
            return b"", SW.WRONG_P1P2
        target = self._entry(cmd.data)
        if target is not None and target.kind is EntryKind.SSD:
            if p1 == 0x60:
                return self._set_sd_tree(sd, target, state)
            return self._set_sd(sd, target, state)
        entry = self._managed(sd, cmd.data)
        if isinstance(entry, int):
            return b"", entry
        if p1 == 0x60:
            return b"", SW.WRONG_P1P2  # P1 60 names a security domain (5.8)
        current = entry.life_cycle
        if state == gp.LOCKED_BIT:  # lock: any unlocked state, bit 8 set (83, 87, 8F; 3)
            if gp.is_locked(current):
                return b"", SW.CONDITIONS_NOT_SATISFIED
            new = gp.lock(current)
        elif state == 0x00:  # unlock
            if not gp.is_locked(current):
                return b"", SW.CONDITIONS_NOT_SATISFIED
            new = gp.unlock(current)
        elif gp.application_specific(state) and state > gp.ApplicationState.SELECTABLE:
            if gp.is_locked(current) or current == gp.ApplicationState.INSTALLED:
                return b"", SW.CONDITIONS_NOT_SATISFIED
            new = state
        else:
            return b"", SW.WRONG_P1P2
        self._change(entry, new)
        self._deselect_unselectable()  # a locked application stops answering at once
        return b"", SW.SUCCESS

    def _set_sd(self, sd: RegistryEntry, target: RegistryEntry, state: int) -> tuple[bytes, int]:
        """SET STATUS P1 40 of a security domain: lock or unlock it alone (5.8, 3); the ISD or
        the SD itself may (MODEL, as for P1 60)."""
        if sd.kind is not EntryKind.ISD and sd.aid != target.aid:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        if state == gp.LOCKED_BIT:
            if gp.is_locked(target.life_cycle):
                return b"", SW.CONDITIONS_NOT_SATISFIED
            new = gp.lock(target.life_cycle)
        elif state == 0x00:
            if not gp.is_locked(target.life_cycle):
                return b"", SW.CONDITIONS_NOT_SATISFIED
            new = gp.unlock(target.life_cycle)
        else:
            return b"", SW.WRONG_P1P2
        self._change(target, new)
        self._deselect_unselectable()
        return b"", SW.SUCCESS

    def _set_sd_tree(self, sd: RegistryEntry, target: RegistryEntry,
                     state: int) -> tuple[bytes, int]:
        if sd.kind is not EntryKind.ISD and sd.aid != target.aid:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        if state not in (0x00, gp.LOCKED_BIT):
            return b"", SW.WRONG_P1P2
        change = gp.lock if state else gp.unlock
        registry = [dataclasses.replace(e, life_cycle=change(e.life_cycle))
                    if e.aid == target.aid or e.sd_aid == target.aid else e
                    for e in self._image.registry]
        self._store.registry_changed(registry)
        self._image.registry = registry
        self._deselect_unselectable()
        return b"", SW.SUCCESS

    # STORE DATA (5.5), routed to the application named by INSTALL [for personalization]
    def _store_data(self, channel: _Channel, sd: RegistryEntry,
                    cmd: CommandAPDU) -> tuple[bytes, int]:
        target = channel.perso_target
        applet = self._applets.get(target) if target is not None else None
        if applet is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        if cmd.p1 & _STORE_DATA_STRUCTURE != _STORE_DATA_DGI:
            return b"", SW.WRONG_P1P2
        if cmd.p2 != channel.store_block & 0xFF:
            applet.abort()
            channel.store_block = 0
            return b"", SW.WRONG_P1P2  # blocks are numbered 00, 01, … (5.5)
        last = bool(cmd.p1 & _STORE_DATA_LAST)
        try:
            answer = applet.store_data(cmd.data, last=last)
        except AppletError as exc:
            channel.store_block = 0
            return b"", exc.sw
        channel.store_block = 0 if last else channel.store_block + 1
        return answer, SW.SUCCESS

    # PUT KEY (5.7): add or replace a key set of this SD
    def _put_key(self, channel: _Channel, sd: RegistryEntry, cmd: CommandAPDU) -> tuple[bytes, int]:
        data = cmd.data
        if len(data) < 1 or cmd.p2 & 0x7F not in (0x01,):
            return b"", SW.WRONG_P1P2
        new_kvn = data[0]
        sets = self._image.key_sets.get(sd.aid, [])
        old = next((k for k in sets if k.kvn == cmd.p1), None) if cmd.p1 else None
        if cmd.p1 and old is None:
            return b"", SW.DATA_NOT_FOUND
        # 5.7: the new keys come encrypted under the static DEK of the key set this session
        # was opened with (SCP03 has no session DEK, 6.3)
        current = next((k for k in sets if k.kvn == channel.kvn), None)
        if current is None:
            return b"", SW.CONDITIONS_NOT_SATISFIED
        dek = current.dek
        keys: list[bytes] = []
        kcvs = b""
        i = 1
        try:
            while i < len(data) and len(keys) < 3:
                key_type, length = data[i], data[i + 1]
                block = data[i + 2:i + 2 + length]
                i += 2 + length
                kcv_len = data[i]
                kcv = data[i + 1:i + 1 + kcv_len]
                i += 1 + kcv_len
                if key_type != 0x88:
                    return b"", SW.WRONG_DATA
                key = scp03.decrypt_key_component(dek, bytes(block))
                if kcv_len and scp03.key_check_value(key) != bytes(kcv):
                    return b"", SW.WRONG_DATA
                keys.append(key)
                kcvs += scp03.key_check_value(key)
            new = StaticKeys(*keys, kvn=new_kvn)
        except (IndexError, scp03.SecureChannelError, ValueError, TypeError):
            return b"", SW.WRONG_DATA
        updated = [k for k in sets if k.kvn not in (cmd.p1, new_kvn)] + [new]
        self._store.key_sets_changed(sd.aid, updated)
        self._image.key_sets[sd.aid] = updated
        return bytes((new_kvn,)) + kcvs, SW.SUCCESS


def _lv_fields(data: bytes) -> list[bytes] | None:
    """INSTALL's data: a sequence of length-value fields (5.3); None when malformed."""
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        if i + 1 + n > len(data):
            return None
        out.append(bytes(data[i + 1:i + 1 + n]))
        i += 1 + n
    return out


def load_token(path: str | os.PathLike[str]) -> VirtualCard | SecureElement:
    """Open a token image, whichever it is: a plastic card's image, or a phone's SE image
    (``card new --profile gpse`` and ``se new`` write those)."""
    if is_se_image(path):
        return SecureElement.load(path)
    return VirtualCard.load(path)

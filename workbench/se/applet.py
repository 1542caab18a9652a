"""The JPKI applet living in the phone's secure element (smartphone-service.md 15.2-15.7).

Once personalised it is the card's JPKI AP with the ``gpse`` differences (jpki-card.md 8): the
same AID, EF numbers and APDUs, label ``JPKIAPGPSETOKEN``, the auth certificate behind the auth
PIN. Its objects and command handling are :class:`workbench.card.VirtualCard`'s (one
application, profile ``gpse``); what the SE adds is how it gets there:

- INSTALL creates it with PIN objects that have no value and no key or certificate;
- STORE DATA in DGI format, routed by INSTALL [for personalization], writes it
  (:data:`workbench.se.gp.DGI`): ``A017`` / ``A01A`` generate the RSA-2048 key pairs **inside
  the SE** and answer only the public key; ``0001``, ``000A``, ``0002``, ``000B``, ``0006``,
  ``0008`` write the certificates and token data; ``A0F0`` clears a PIN to "not set";
- the app sets each PIN once with RESET RETRY COUNTER (``00 2C 02 98`` / ``9B``, C11); until
  then signing answers ``69 85``.

MODEL (the public key does not fit one protected short response, globalplatform.md 6.12):
``A017`` answers the DER ``RSAPublicKey`` from its start, at most :data:`PUBLIC_KEY_CHUNK`
bytes; its header tells the TSM the full length, and DGI ``A117`` / ``A11A`` with a 2-byte
offset answer the rest. A personalisation sequence (STORE DATA blocks up to the one with the
last-block bit) is staged and written in one transaction at its last block: a process killed
in the middle leaves the old content.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from workbench.apdu import SW
from workbench.card import VirtualCard
from workbench.card.constants import JPKI_AP_AID, KEY_AUTH, KEY_SIGN, LABEL_GPSE
from workbench.card.files import JPKI_AP
from workbench.card.image import CardStore
from workbench.card.model import Node
from workbench.card.personalise import ContentError, empty_application
from workbench.card.virtual_card import CardSession, Personalisation
from workbench.errors import WorkbenchError
from workbench.se.gp import DGI

__all__ = ["PUBLIC_KEY_CHUNK", "AppletError", "JpkiApplet", "parse_dgis"]

#: Most bytes of a public key one STORE DATA answer carries (MODEL, see the module docstring).
PUBLIC_KEY_CHUNK = 200
_READ_PUBLIC_KEY = {0xA117: KEY_AUTH, 0xA11A: KEY_SIGN}
_GENERATE = {DGI.GENERATE_AUTH_KEY: KEY_AUTH, DGI.GENERATE_SIGN_KEY: KEY_SIGN}
_EF_DGIS = {DGI.SIGN_CERTIFICATE, DGI.SIGN_CA_CERTIFICATE, DGI.TOKEN_INFO,
            DGI.CERTIFICATE_PRESENCE, DGI.AUTH_CERTIFICATE, DGI.AUTH_CA_CERTIFICATE}

KeyGen = Callable[[int], rsa.RSAPrivateKey]


class AppletError(WorkbenchError):
    """A personalisation command the applet refuses; ``sw`` is its answer."""

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(message)
        self.sw = sw


def parse_dgis(data: bytes) -> list[tuple[int, bytes]]:
    """DGI-format data (globalplatform.md 5.5): 2-byte DGI, length (1 byte, or ``FF`` + 2
    bytes), value; several per block. :class:`AppletError` (6A80) when malformed."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise AppletError("a DGI needs 2 bytes of tag and a length", SW.WRONG_DATA)
        tag = int.from_bytes(data[i:i + 2], "big")
        n = data[i + 2]
        i += 3
        if n == 0xFF:
            if i + 2 > len(data):
                raise AppletError(f"DGI {tag:04X}: truncated 3-byte length", SW.WRONG_DATA)
            n = int.from_bytes(data[i:i + 2], "big")
            i += 2
        if i + n > len(data):
            raise AppletError(f"DGI {tag:04X}: length {n}, {len(data) - i} bytes left",
                              SW.WRONG_DATA)
        out.append((tag, bytes(data[i:i + n])))
        i += n
    return out


def _split_dgis(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete DGIs at the start of ``data`` and the bytes of an unfinished one (a DGI
    may continue in the next STORE DATA block, globalplatform.md 5.5)."""
    done: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            break
        n = data[i + 2]
        head = 3
        if n == 0xFF:
            if i + 5 > len(data):
                break
            n = int.from_bytes(data[i + 3:i + 5], "big")
            head = 5
        if i + head + n > len(data):
            break
        done.append((int.from_bytes(data[i:i + 2], "big"), bytes(data[i + head:i + head + n])))
        i += head + n
    return done, bytes(data[i:])


def encode_dgi(tag: int, value: bytes) -> bytes:
    """One DGI in the format :func:`parse_dgis` reads (for the TSM side)."""
    n = len(value)
    length = bytes((n,)) if n < 0xFF else b"\xff" + n.to_bytes(2, "big")
    return tag.to_bytes(2, "big") + length + value


def _default_keygen(_fid: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JpkiApplet:
    """One installed JPKI applet instance (see the module docstring)."""

    aid = JPKI_AP_AID

    def __init__(self, card: VirtualCard, keygen: KeyGen | None = None) -> None:
        self.card = card
        self._keygen = keygen or _default_keygen
        self._perso: Personalisation | None = None
        self._public: dict[int, bytes] = {}  # DER RSAPublicKey of staged keys, for A117/A11A
        self._partial = b""  # a DGI split across STORE DATA blocks (5.5)

    @classmethod
    def install(cls, *, atr: bytes, store: CardStore | None = None, keygen: KeyGen | None = None,
                salt: bytes | None = None, meta: dict[str, Any] | None = None) -> JpkiApplet:
        """A new instance: PIN objects without values, nothing else (15.2 C4)."""
        salt = os.urandom(16) if salt is None else salt
        full = {"profile": "gpse", "label": LABEL_GPSE, "atr": atr.hex().upper(),
                "salt": salt.hex(), **(meta or {})}
        app = empty_application(JPKI_AP, "gpse")
        card = VirtualCard(profile="gpse", atr=atr, salt=salt, apps=[app], meta=full,
                           store=store)
        return cls(card, keygen)

    @classmethod
    def restore(cls, *, atr: bytes, salt: bytes, meta: dict[str, Any], nodes: dict[int, Node],
                store: CardStore, keygen: KeyGen | None = None) -> JpkiApplet:
        """The instance as an SE image holds it."""
        app = empty_application(JPKI_AP, "gpse")
        app.nodes = dict(sorted(nodes.items()))
        full = {**meta, "profile": "gpse", "atr": atr.hex().upper(), "salt": salt.hex()}
        card = VirtualCard(profile="gpse", atr=atr, salt=salt, apps=[app], meta=full,
                           store=store)
        return cls(card, keygen)

    @property
    def salt(self) -> bytes:
        return bytes.fromhex(self.card._meta["salt"])

    def nodes(self) -> dict[int, Node]:
        return dict(self.card._apps[JPKI_AP_AID].nodes)

    # -- APDUs from a reader or the app (the JPKI AP of jpki-card.md) ------------------------

    def process(self, session: CardSession, apdu: bytes) -> bytes:
        return self.card.transmit_in(session, apdu)

    # -- personalisation (STORE DATA through INSTALL [for personalization]) -------------------

    @property
    def personalising(self) -> bool:
        return self._perso is not None and self._perso.pending

    def store_data(self, data: bytes, *, last: bool) -> bytes:
        """One STORE DATA block in DGI format; answers the concatenated DGI answers."""
        if self._perso is None:
            self._perso = self.card.personalisation(JPKI_AP_AID)
        perso = self._perso
        answer = b""
        try:
            dgis, self._partial = _split_dgis(self._partial + data)
            if last and self._partial:
                raise AppletError("the last STORE DATA block ends inside a DGI", SW.WRONG_DATA)
            for tag, value in dgis:
                answer += self._dgi(perso, tag, value)
        except ContentError as exc:
            self.abort()
            raise AppletError(str(exc), SW.WRONG_DATA) from None
        except AppletError:
            self.abort()
            raise
        if last:
            perso.commit()
            self._perso = None
            self._public.clear()
        return answer

    def abort(self) -> None:
        """Drop a personalisation sequence that did not reach its last block."""
        if self._perso is not None:
            self._perso.discard()
        self._perso = None
        self._public.clear()
        self._partial = b""

    def _dgi(self, perso: Personalisation, tag: int, value: bytes) -> bytes:
        if tag in _GENERATE:
            fid = _GENERATE[tag]
            public = perso.generate_key(fid, lambda: self._keygen(fid))
            der = public.public_bytes(Encoding.DER, PublicFormat.PKCS1)
            self._public[fid] = der
            return der[:PUBLIC_KEY_CHUNK]
        if tag in _READ_PUBLIC_KEY:
            fid = _READ_PUBLIC_KEY[tag]
            der = self._public.get(fid)
            if der is None or len(value) != 2:
                raise AppletError(f"DGI {tag:04X}: no key generated in this sequence, or no "
                                  "2-byte offset", SW.CONDITIONS_NOT_SATISFIED)
            offset = int.from_bytes(value, "big")
            return der[offset:offset + PUBLIC_KEY_CHUNK]
        if tag in _EF_DGIS:
            perso.put_ef(tag, value)
            return b""
        if tag == DGI.CLEAR_PIN:
            if len(value) != 2:
                raise AppletError("DGI A0F0 takes the 2-byte FID of a PIN", SW.WRONG_DATA)
            try:
                perso.clear_pin(int.from_bytes(value, "big"))
            except WorkbenchError as exc:
                raise AppletError(str(exc), SW.WRONG_DATA) from None
            return b""
        raise AppletError(f"DGI {tag:04X} is not one the JPKI applet knows", SW.DATA_NOT_FOUND)

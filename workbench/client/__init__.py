"""Host-side clients: what relying-party software and readers send to a My Number card.

The sequences are those of jpki-card.md 4.7; certificates are read the way real readers read
them (4.1): a short header read, then chunks of at most 256 bytes. PINs are passed in as
``str`` and go only into the VERIFY / CHANGE command bytes: never into a log, a repr or an
exception message.

Real-card safety (CONVENTIONS.md, after pyca/cryptography's "safe by default, hazardous on
request"): on a transport that is not the in-process virtual card, every VERIFY is preceded by
the free retry-counter query (empty VERIFY, jpki-card.md 4.3) and refused with
:class:`~workbench.errors.LastTryError` when one try or fewer remains, because a blocked PIN
can only be unblocked at the municipal office or with the JPKI PIN reset procedure
(jpki-card.md 6). Every method that takes a PIN accepts ``force=True`` to skip that check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from workbench import tlv
from workbench.apdu import (
    P2_CURRENT_KEY,
    SW,
    CommandAPDU,
    ResponseAPDU,
    StatusWord,
    tries_from_sw,
    tries_text,
)
from workbench.card import constants as c
from workbench.card.files import CERTIFICATE_EFS
from workbench.card.pin import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN, PinPolicy, pin_bytes
from workbench.errors import (
    APDUError,
    CardError,
    FileNotFoundOnCardError,
    LastTryError,
    PinBlockedError,
    SecurityStatusError,
    TLVError,
    TransportError,
    WorkbenchError,
    WrongPinError,
)
from workbench.transport import Transport, needs_pin_guard

#: The certificates a client can read, by name (one table: :data:`workbench.card.files.CERTIFICATE_EFS`).
CERTIFICATES = CERTIFICATE_EFS
_PINS: dict[str, tuple[int, int, PinPolicy]] = {  # name -> (PIN EF, key EF, policy)
    "auth": (c.PIN_AUTH, c.KEY_AUTH, AUTH_PIN),
    "sign": (c.PIN_SIGN, c.KEY_SIGN, SIGN_PASSWORD),
}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


class TokenType(StrEnum):
    """What EF 0006's label says the token is (jpki-card.md 3.2)."""

    CARD = "card"  # JPKIAPICCTOKEN2: My Number Card
    ANDROID = "android"  # JPKIAPGPSETOKEN: スマホ用電子証明書 in an Android GP-SE
    IPHONE = "iphone"  # JPKIAPIOSTOKEN
    JUKI = "juki"  # JPKIAPICCTOKEN: old 住基カード

    @property
    def description(self) -> str:
        return {
            "card": "My Number Card (マイナンバーカード)",
            "android": "Android smartphone certificate (スマホ用電子証明書, GP-SE)",
            "iphone": "iPhone smartphone certificate",
            "juki": "Basic Resident Register card (住基カード)",
        }[self.value]


_LABELS = {
    c.LABEL_ICC: TokenType.CARD,
    c.LABEL_GPSE: TokenType.ANDROID,
    c.LABEL_IOS: TokenType.IPHONE,
    c.LABEL_JUKI: TokenType.JUKI,
}


def raise_for_status(rsp: ResponseAPDU, what: str) -> None:
    """Turn an error status word into the matching typed exception."""
    sw = rsp.sw
    if sw == SW.SUCCESS:
        return
    status = StatusWord(sw)
    if sw == SW.SECURITY_STATUS_NOT_SATISFIED:
        raise SecurityStatusError(f"{what}: needs a verified PIN or password (SW 6982)", sw)
    left = tries_from_sw(sw)
    if sw == SW.AUTHENTICATION_BLOCKED or left == 0:
        raise PinBlockedError(
            f"{what}: blocked (SW {sw:04X}); reset it at the municipal office or with the reset flow", sw
        )
    if left is not None:
        raise WrongPinError(f"{what}: wrong value, {tries_text(left)} left (SW {sw:04X})", sw, left)
    if sw == SW.FILE_NOT_FOUND:
        raise FileNotFoundOnCardError(f"{what}: not on this card (SW 6A82)", sw)
    raise CardError(f"{what}: card answered {status}", sw)


# What a blocked credential costs the holder (jpki-card.md 6): said in the LastTryError message
# so that the person at the reader sees why the client stopped.
_BLOCKED_CONSEQUENCE: dict[int, tuple[str, str]] = {  # PIN FID -> (name, consequence)
    c.PIN_AUTH: (
        "auth",
        "a blocked auth PIN can only be reset at the municipal office (市区町村窓口) or with "
        "the JPKI PIN reset procedure (JPKI暗証番号リセット) while the sign password is known",
    ),
    c.PIN_SIGN: (
        "sign",
        "a blocked sign password can only be reset at the municipal office (市区町村窓口) or "
        "with the JPKI PIN reset procedure (JPKI暗証番号リセット) while the auth PIN is known",
    ),
    c.PIN_TEXT: (
        "text",
        "a blocked text AP PIN can only be reset at the municipal office (市区町村窓口)",
    ),
}


class _Client:
    aid: bytes
    name: str

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._in_session = False  # this client has selected its AP on this transport

    def _send(self, cmd: CommandAPDU) -> ResponseAPDU:
        try:
            raw = self.transport.transmit(cmd.to_bytes())
            return ResponseAPDU.from_bytes(raw)
        except APDUError as exc:
            raise TransportError(f"malformed response from the card: {exc}") from None

    def _check(self, cmd: CommandAPDU, what: str) -> bytes:
        rsp = self._send(cmd)
        raise_for_status(rsp, what)
        return rsp.data

    def select_ap(self) -> None:
        """SELECT the application by DF name; also the "logout" (clears verified PINs, 2.3)."""
        self._check(CommandAPDU.select_df(self.aid), f"select {self.name}")
        self._in_session = True

    def select_ef(self, fid: int) -> None:
        self._check(CommandAPDU.select_ef(fid), f"select EF {fid:04X}")

    def read_ef(self, fid: int, *, header: int = 7, what: str | None = None) -> bytes:
        """Read a TLV/DER-structured EF: ``header`` bytes first (4, 7 or 256, as different
        readers do, jpki-card.md 4.1), then chunks of at most 256 bytes up to the encoded length."""
        if header not in (4, 7, 256):
            raise WorkbenchError("header read must be 4, 7 or 256 bytes (jpki-card.md 4.1)")
        label = what or f"EF {fid:04X}"
        self.select_ef(fid)
        head = self._check(CommandAPDU.read_binary(0, header), f"read {label}")
        total = _encoded_length(head, label)
        data = bytearray(head[:total])
        while len(data) < total:
            chunk = self._check(CommandAPDU.read_binary(len(data), min(256, total - len(data))), f"read {label}")
            if not chunk:
                raise CardError(f"read {label}: card returned no data at offset {len(data)}", SW.SUCCESS)
            data += chunk
        return bytes(data[:total])

    def _verify(self, fid: int, value: bytes, what: str, *, force: bool = False) -> None:
        """SELECT the key EF and VERIFY; on a real card check the retry counter first.

        The empty VERIFY costs no try (jpki-card.md 4.3), so asking before every VERIFY is
        free; refusing at one try left keeps a typo from blocking the credential.
        """
        self.select_ef(fid)
        if not force and needs_pin_guard(self.transport):
            left = self._query_tries(what)
            if left is not None and left <= 1:
                raise _last_try_error(fid, what, left)
        self._check(CommandAPDU.verify(P2_CURRENT_KEY, value), what)

    def _tries(self, fid: int, what: str) -> int | None:
        self.select_ef(fid)
        return self._query_tries(what)

    def _query_tries(self, what: str) -> int | None:
        """Empty VERIFY on the current key EF: ``63 Cx`` gives x tries left (4.3).

        ``None``: the card answered ``90 00``, which some real cards do for a PIN verified in
        this session (jpki-card.md 4.3, 12 item 8): verified, count unknown. The counter went
        back to its maximum at that successful VERIFY, so no try is at risk.
        """
        rsp = self._send(CommandAPDU.verify(P2_CURRENT_KEY, None))
        left = tries_from_sw(rsp.sw)
        if left is not None:
            return left
        if rsp.sw == SW.SUCCESS:
            return None
        raise_for_status(rsp, what)
        raise CardError(f"{what}: retry query answered {StatusWord(rsp.sw)} instead of 63Cx", rsp.sw)


def _last_try_error(fid: int, what: str, left: int) -> LastTryError:
    name, consequence = _BLOCKED_CONSEQUENCE.get(
        fid, (f"{fid:04X}", "a blocked credential can only be reset at the municipal office")
    )
    if left <= 0:
        state = "it is already blocked (0 tries left)"
    else:
        state = f"only {left} try left, and one wrong value blocks it"
    return LastTryError(
        f"refusing to VERIFY the {what} on a real card: {state}; {consequence}; "
        "pass force=True to send it anyway",
        name,
        left,
    )


def _encoded_length(head: bytes, what: str) -> int:
    """Total length (tag + length + value) of the BER/DER object at the start of ``head``.

    Works on a 4-, 7- or 256-byte header read (jpki-card.md 4.1)."""
    try:
        return tlv.object_length(head)
    except TLVError as exc:
        raise CardError(f"read {what}: not a TLV object ({exc})", SW.SUCCESS) from None


class JpkiClient(_Client):
    """Client of the JPKI AP (公的個人認証AP): certificates, PIN status, VERIFY, signing."""

    aid = c.JPKI_AP_AID
    name = "JPKI AP"

    def __init__(self, transport: Transport, *, header_read: int = 7) -> None:
        super().__init__(transport)
        self.header_read = header_read

    def token_type(self) -> TokenType:
        self.select_ap()
        self.select_ef(c.EF_TOKEN_INFO)
        raw = self._check(CommandAPDU.read_binary(0, 32), "read token information")
        label = raw.rstrip(b" \x00").decode("ascii", "replace")
        try:
            return _LABELS[label]
        except KeyError:
            raise CardError(f"unknown JPKI token label {label!r}", SW.SUCCESS) from None

    def read_certificate_der(
        self, which: str, *, pin: str | None = None, force: bool = False
    ) -> bytes:
        """DER of ``"sign"``, ``"sign_ca"``, ``"auth"`` or ``"auth_ca"``.

        ``pin`` is the sign password for ``"sign"`` and, on a phone token, the auth PIN for
        ``"auth"``; without it the card answers 6982 and :class:`SecurityStatusError` is raised.
        ``force`` skips the last-try check of :meth:`verify`.
        """
        if which not in CERTIFICATES:
            raise WorkbenchError(f"unknown certificate {which!r}; choose one of {', '.join(CERTIFICATES)}")
        self.select_ap()
        if pin is not None:
            self.verify("sign" if which == "sign" else "auth", pin, force=force)
        return self.read_ef(CERTIFICATES[which], header=self.header_read, what=f"{which} certificate")

    def read_certificate(
        self, which: str, *, pin: str | None = None, force: bool = False
    ) -> x509.Certificate:
        """:meth:`read_certificate_der`, parsed."""
        return x509.load_der_x509_certificate(
            self.read_certificate_der(which, pin=pin, force=force)
        )

    def tries_left(self, which: str) -> int | None:
        """Tries left of ``"auth"`` or ``"sign"`` via the empty VERIFY (spends nothing).

        ``None`` when the card answers ``90 00`` because the PIN is verified in this session
        (some real cards do; the count is then unknown, see :meth:`_query_tries`).
        """
        fid, _, policy = self._pin(which)
        self.select_ap()
        return self._tries(fid, policy.label)

    def verify_format(self, which: str, value: str) -> None:
        """Check a value against the PIN's format rules (jpki-card.md 6) without sending it:
        raises :class:`PinFormatError`. A card would take a malformed value as a wrong one."""
        _, _, policy = self._pin(which)
        policy.check(pin_bytes(policy, value))

    def verify(self, which: str, value: str, *, force: bool = False) -> None:
        """VERIFY the auth PIN or the sign password in the current JPKI AP session.

        The sign password is uppercased first, as real clients do (jpki-card.md 4.3). On a
        real card the retry counter is asked first and :class:`LastTryError` raised at one try
        left or fewer, unless ``force=True`` (module docstring).
        """
        fid, _, policy = self._pin(which)
        self._verify(fid, pin_bytes(policy, value), policy.label, force=force)

    def sign(
        self,
        message: bytes | None = None,
        *,
        key: str = "auth",
        pin: str | None = None,
        hash: str = "sha256",
        digest: bytes | None = None,
        force: bool = False,
    ) -> bytes:
        """Sign with the card's auth or sign key (80 2A 00 80 over a DigestInfo, 4.5).

        Give ``message`` (hashed here with ``hash``) or a precomputed ``digest``. ``pin`` is
        verified right before signing, as clients do; without it the current session must
        already be verified; ``force`` skips the last-try check of :meth:`verify`. Returns the
        256-byte PKCS#1 v1.5 signature.
        """
        pin_fid, key_fid, policy = self._pin(key)
        if hash not in _HASHES:
            raise WorkbenchError(f"unsupported hash {hash!r}; choose one of {', '.join(_HASHES)}")
        if (message is None) == (digest is None):
            raise WorkbenchError("give either a message or a digest to sign")
        if digest is None:
            h = hashlib.new(hash)
            h.update(message or b"")
            digest = h.digest()
        if len(digest) != _HASHES[hash].digest_size:
            raise WorkbenchError(f"a {hash} digest is {_HASHES[hash].digest_size} bytes, got {len(digest)}")
        if pin is not None or not self._in_session:
            self.select_ap()
        if pin is not None:
            self.verify(key, pin, force=force)
        self.select_ef(key_fid)
        return self._check(CommandAPDU.compute_signature(c.DIGEST_INFO_PREFIXES[hash] + digest), f"sign with the {key} key")

    def change_pin(self, which: str, old: str, new: str, *, force: bool = False) -> None:
        """VERIFY the old value, then CHANGE REFERENCE DATA (00 24 01 80, jpki-card.md 4.4).
        The new value's format is checked here first so no try is spent on a typo; ``force``
        skips the last-try check of the VERIFY."""
        _, _, policy = self._pin(which)
        new_raw = pin_bytes(policy, new)
        policy.check(new_raw)
        self.select_ap()
        self.verify(which, old, force=force)
        self._check(CommandAPDU.change_reference_data(new_raw), f"change the {policy.label}")

    def logout(self) -> None:
        self.select_ap()

    @staticmethod
    def _pin(which: str) -> tuple[int, int, PinPolicy]:
        try:
            return _PINS[which]
        except KeyError:
            raise WorkbenchError(f"unknown PIN {which!r}; choose 'auth' or 'sign'") from None


@dataclass(frozen=True)
class BasicFour:
    """基本4情報 as the text AP holds them (jpki-card.md 3.3)."""

    name: str
    address: str
    birth_date: date
    sex: str  # text AP code: 1 male, 2 female, 9 not applicable

    @property
    def sex_label(self) -> str:
        return {"1": "male (男)", "2": "female (女)", "9": "not applicable (適用不能)", "0": "unknown"}.get(
            self.sex, "?"
        )


class TextApClient(_Client):
    """Client of the 券面事項入力補助AP: the 4 basic facts and the individual number.

    Every method taking the text AP PIN accepts ``force=True`` to skip the last-try check
    on a real card (module docstring).
    """

    aid = c.TEXT_AP_AID
    name = "text AP"

    def tries_left(self) -> int | None:
        """Tries left of the text AP PIN (``None``: verified, count unknown)."""
        self.select_ap()
        return self._tries(c.PIN_TEXT, TEXT_PIN.label)

    def _login(self, pin: str, force: bool) -> None:
        self.select_ap()
        self._verify(c.PIN_TEXT, pin_bytes(TEXT_PIN, pin), TEXT_PIN.label, force=force)

    def individual_number(self, pin: str, *, force: bool = False) -> str:
        """個人番号 (EF 0001: ``FF 10 0C`` + 12 digits + filler)."""
        self._login(pin, force)
        obj = tlv.decode_one(self.read_ef(c.EF_TEXT_MY_NUMBER, what="個人番号"))[0]
        return obj.value.decode("ascii")

    def basic_four(self, pin: str, *, force: bool = False) -> BasicFour:
        """基本4情報 (EF 0002: ``FF 20`` { ``DF 21`` offsets, ``DF 22``–``DF 25`` })."""
        self._login(pin, force)
        return _parse_basic_four(self.read_ef(c.EF_TEXT_BASIC_FOUR, what="基本4情報"))

    def check_integrity(self, pin: str, *, force: bool = False,
                        cv_root: rsa.RSAPublicKey | None = None) -> bool:
        """Is the card's 個人番号 and 基本4情報 what its issuer signed? (jpki-card.md 3.3)

        EF 0003 holds SHA-256 hashes of the 個人番号 EF (physical, filler included) and of the
        basic-four value (``DF 22``..``DF 25``) and, in ``DF 33``, the issuer's signature over
        the two hash objects. True only when both hashes match the EFs read now **and** the
        signature verifies with the issuer key that the card-verifiable certificate in EF 0004
        certifies (MODEL: sha256WithRSA, PKCS#1 v1.5). With ``cv_root`` (the authority's CV
        root public key, not on the card) that certificate's own signature is checked too.
        """
        self._login(pin, force)
        # the hash covers the physical EF, filler included: 17 bytes
        self.select_ef(c.EF_TEXT_MY_NUMBER)
        number_ef = self._check(CommandAPDU.read_binary(0, 17), "read 個人番号")
        basic = tlv.decode_one(self.read_ef(c.EF_TEXT_BASIC_FOUR, what="基本4情報"))[0]
        value = b"".join(child.encode() for child in basic.children[1:])
        record = tlv.decode_one(self.read_ef(c.EF_TEXT_SIGNATURE, what="integrity record"))[0]
        cv = tlv.decode_one(self.read_ef(c.EF_TEXT_CV_CERT, what="CV certificate"))[0]
        want_number, want_basic = record.find(0xDF31), record.find(0xDF32)
        signature = record.find(0xDF33)
        if want_number is None or want_basic is None or signature is None:
            return False
        if (want_number.value != hashlib.sha256(number_ef).digest()
                or want_basic.value != hashlib.sha256(value).digest()):
            return False
        issuer_key = _cv_public_key(cv, cv_root)
        if issuer_key is None:
            return False
        return _verifies(issuer_key, signature.value, want_number.encode() + want_basic.encode())


def _verifies(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _cv_public_key(cv: tlv.TLV, root: rsa.RSAPublicKey | None) -> rsa.RSAPublicKey | None:
    """The key a card-verifiable certificate ``7F 21`` certifies (jpki-card.md 3.3 EF 0004):
    body ``5F 4E`` = issuer key id (16) ‖ subject key id (16) ‖ ``90`` exponent ‖ ``91``
    modulus; ``5F 37`` its signature, checked when ``root`` is given. None if malformed."""
    if cv.tag != 0x7F21:
        return None
    body, sig = cv.find(0x5F4E), cv.find(0x5F37)
    if body is None or sig is None or len(body.value) < 32:
        return None
    if root is not None and not _verifies(root, sig.value, body.encode()):
        return None
    try:
        parts = {t.tag: t.value for t in tlv.decode(body.value[32:], filler=b"")}
        numbers = rsa.RSAPublicNumbers(int.from_bytes(parts[0x90], "big"),
                                       int.from_bytes(parts[0x91], "big"))
        return numbers.public_key()
    except (KeyError, ValueError, TLVError):
        return None


def _parse_basic_four(raw: bytes) -> BasicFour:
    obj = tlv.decode_one(raw)[0]
    fields = {child.tag: child.value for child in obj.children}
    try:
        return BasicFour(
            name=fields[0xDF22].decode("utf-8"),
            address=fields[0xDF23].decode("utf-8"),
            birth_date=date(int(fields[0xDF24][:4]), int(fields[0xDF24][4:6]), int(fields[0xDF24][6:8])),
            sex=fields[0xDF25].decode("ascii"),
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise CardError(f"basic-four EF is malformed ({exc})", SW.SUCCESS) from None


__all__ = [
    "BasicFour",
    "CERTIFICATES",
    "JpkiClient",
    "TextApClient",
    "TokenType",
    "needs_pin_guard",
    "raise_for_status",
]

"""The people and devices of the smartphone certificate service, and the Mynaportal app.

- :class:`Person`: a holder (synthetic), the plastic card (profile ``icc``) and the secrets the
  person knows: the card's signing password and auth PIN, and the phone password and PIN they
  will choose. Secrets are :class:`Secret` objects: their repr and str never show the value,
  and they reach a token only inside a VERIFY or RESET RETRY COUNTER, which every trace masks.
- :class:`Phone`: a device record from the catalogue (:mod:`workbench.lifecycle.devices`), its
  GP secure element (:class:`workbench.se.SecureElement`), the Mynaportal app and the app's
  Android-Keystore binding for biometric unlock. A factory reset loses the app's data and the
  Keystore, never the SE (smartphone-service.md 8, 15.6).
- :class:`MynaportalApp`: the host side on the phone (15.2-15.7). It reads the card over NFC
  (:class:`NfcLink`), talks to its own SE over OMAPI logical channels (:class:`OmapiChannel`),
  relays the TSM's SCP03 scripts without seeing their keys, and talks to the authority and
  the relying services through their handlers (in process, or over HTTP). It keeps the new
  phone PIN and password in memory only until it has set them on the SE (A5, C11); they are
  never sent to the authority.

Every APDU and every message goes through the :class:`~workbench.lifecycle.wire.Wire`, which
records it with its channel and modelled time.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from workbench.apdu import INS, SW, CommandAPDU
from workbench.card.constants import LABEL_GPSE, LABEL_ICC, PIN_AUTH, PIN_SIGN
from workbench.card.pin import AUTH_PIN, SIGN_PASSWORD, pin_bytes
from workbench.card.token import Token
from workbench.client import JpkiClient
from workbench.errors import CardError, WorkbenchError
from workbench.holder import Holder
from workbench.lifecycle.authority import ServiceError, tbs_application, tbs_request
from workbench.lifecycle.devices import DeviceModel, check_eligible
from workbench.lifecycle.wire import HttpHandler, Wire
from workbench.pki.describe import decode_basic_four
from workbench.se import gp
from workbench.transport.base import TokenFacts

__all__ = [
    "AppError",
    "MynaportalApp",
    "NfcLink",
    "OmapiChannel",
    "Person",
    "Phone",
    "Result",
    "RfLink",
    "Secret",
]

#: Hosts a phone app talks to: the authority's application API and the relying services.
AUTHORITY = "auth"


class AppError(WorkbenchError):
    """The app (or the phone) refuses or cannot do what was asked; one line, says why."""


class Secret:
    """A PIN or password a person knows. ``repr``/``str`` never show it; :meth:`reveal` is the
    one way to get the value, used only to build the command that carries it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret is a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))


def secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


@dataclass(frozen=True)
class Result:
    """What an operation gave the user: ``ok``, a one-line ``outcome`` (``"ok"``,
    ``"refused: <why>"``) and facts worth a table (never a secret)."""

    ok: bool
    outcome: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def success(cls, **facts: Any) -> Result:
        return cls(True, "ok", facts)

    @classmethod
    def refused(cls, why: str, **facts: Any) -> Result:
        return cls(False, f"refused: {why}", facts)

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.facts.items())
        return self.outcome + (f" ({facts})" if facts else "")


@dataclass(eq=False)
class Person:
    """A holder with a plastic card and the secrets they know (module docstring)."""

    name: str
    holder: Holder
    card: Token
    card_password: Secret
    card_pin: Secret
    phone_password: Secret
    phone_pin: Secret
    pid: str = ""

    def __repr__(self) -> str:
        return f"Person({self.name!r}, card={self.card.label!r})"


# -- links: what carries APDUs ------------------------------------------------------------------

class NfcLink:
    """The app reading a plastic card in NFC Type B reader mode (IsoDep), through the wire.
    A :class:`~workbench.transport.Transport` for :class:`~workbench.client.JpkiClient`."""

    is_virtual = True
    pin_guard = False  # the app shows the tries left and lets the user try (MODEL)

    def __init__(self, wire: Wire, token: Token, device: str) -> None:
        self.wire, self._token, self.device = wire, token, device
        self.token = TokenFacts("icc", LABEL_ICC)

    def connect(self) -> bytes:
        return self.wire.power(self.device, "NFC", self._token, on=True) or b""

    def transmit(self, apdu: bytes) -> bytes:
        return self.wire.apdu(self.device, "NFC", self._token, apdu)

    def disconnect(self) -> None:
        self.wire.power(self.device, "NFC", self._token, on=False)


class RfLink(NfcLink):
    """An external reader (clinic, convenience-store copier) talking to the phone in card
    emulation over RF (smartphone-service.md 13, 15.3): basic channel, the JPKI applet by
    default."""

    def __init__(self, wire: Wire, token: Token, device: str) -> None:
        super().__init__(wire, token, device)
        self.token = TokenFacts("gpse", LABEL_GPSE)

    def connect(self) -> bytes:
        return self.wire.power(self.device, "RF", self._token, on=True) or b""

    def transmit(self, apdu: bytes) -> bytes:
        return self.wire.apdu(self.device, "RF", self._token, apdu)

    def disconnect(self) -> None:
        self.wire.power(self.device, "RF", self._token, on=False)


class OmapiChannel:
    """An OMAPI logical channel from the app to its own SE (android.se.omapi
    ``openLogicalChannel``): MANAGE CHANNEL opens it, every command carries its number in CLA
    (ISO 7816-4 5.4.1), MANAGE CHANNEL closes it. No air time (nfc-timing.md 12.6)."""

    is_virtual = True
    pin_guard = False

    def __init__(self, wire: Wire, se: Token, device: str) -> None:
        self.wire, self._se, self.device = wire, se, device
        self.number: int | None = None
        self.token = TokenFacts("gpse", LABEL_GPSE)

    def connect(self) -> bytes:
        answer = self.wire.apdu(self.device, "OMAPI", self._se, bytes.fromhex("0070000001"))
        if answer[-2:] != b"\x90\x00" or len(answer) != 3:
            raise AppError(f"the SE opened no logical channel (answer {answer.hex().upper()}); "
                           "OMAPI has no channel left")
        self.number = answer[0]
        return self._se.atr

    def transmit(self, apdu: bytes, *, operation: str | None = None,
                 label: str | None = None) -> bytes:
        if self.number is None:
            raise AppError("the OMAPI channel is not open")
        apdu = bytes(apdu)
        routed = bytes(((apdu[0] & 0xFC) | self.number,)) + apdu[1:]
        return self.wire.apdu(self.device, "OMAPI", self._se, routed, operation=operation,
                              label=label)

    def disconnect(self) -> None:
        if self.number is not None:
            self.wire.apdu(self.device, "OMAPI", self._se,
                           bytes((0x00, INS.MANAGE_CHANNEL, 0x80, self.number)))
            self.number = None


# -- the phone --------------------------------------------------------------------------------

class Phone:
    """A phone: catalogue record, SE, app, Keystore, and whether it is online (module
    docstring). ``se`` may be None for a phone without a GP-SE (it is refused at A1)."""

    def __init__(self, name: str, model: DeviceModel, se: Token | None, *, owner: Person,
                 os_version: str | None = None, app_version: int = 60,
                 se_id: str | None = None) -> None:
        self.name = name
        self.model = model
        self.se = se
        self.owner = owner
        self.os_version = os_version
        self.app_version = app_version
        meta = getattr(se, "meta", {}) if se is not None else {}
        self.se_id: str = se_id or str(meta.get("se_id", "")) or f"NO-SE-{name}"
        self.online = True
        self.in_hand = True  # False while lost
        self.keystore: dict[str, bytes] = {}  # MODEL Android Keystore: survives nothing
        self.app = MynaportalApp.__new__(MynaportalApp)  # replaced by Simulation.add_phone

    def __repr__(self) -> str:
        return (f"Phone({self.name!r}, {self.model.model}, app {self.app_version}, "
                f"{'online' if self.online else 'offline'})")

    def factory_reset(self) -> None:
        """Android factory reset: the app's data and the Keystore keys go, the SE content
        (applet, keys, certificates, PIN counters) stays (spec 8, 15.6)."""
        self.keystore.clear()
        self.app.forget()


# -- the app -------------------------------------------------------------------------------------

class MynaportalApp:
    """The Mynaportal app on ``phone`` (module docstring). ``hosts`` maps a host name
    (:data:`AUTHORITY`, a relying service key) to its handler."""

    def __init__(self, phone: Phone, wire: Wire, hosts: Mapping[str, HttpHandler]) -> None:
        self.phone = phone
        self.wire = wire
        self.hosts = hosts
        self.device = f"{phone.name}/app"
        self.forget()

    def forget(self) -> None:
        """The app's own data (what a factory reset or reinstall loses)."""
        self.application_id: str | None = None
        self.types: tuple[str, ...] = ()
        self._new_pins: dict[str, Secret] = {}  # A5: in memory until C11
        self.biometric_enrolled = False

    def __repr__(self) -> str:
        return f"MynaportalApp({self.phone.name!r}, application={self.application_id!r})"

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, host: str, method: str, path: str, body: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        if not self.phone.online:
            raise AppError(f"{self.phone.name} is offline; the app cannot reach the service")
        handler = self.hosts.get(host)
        if handler is None:
            raise AppError(f"the app knows no service {host!r}")
        status, answer = self.wire.http(method, host, path, body or {}, handler,
                                        device=self.device)
        if status >= 400:
            raise ServiceError(str(answer.get("error", f"HTTP {status}")), status)
        return answer

    def _se_channel(self) -> OmapiChannel:
        if self.phone.se is None:
            raise AppError(f"{self.phone.model.model} has no GP-SE")
        channel = OmapiChannel(self.wire, self.phone.se, f"{self.phone.name}/se")
        channel.connect()
        return channel

    def _card(self, person: Person) -> tuple[JpkiClient, NfcLink]:
        link = NfcLink(self.wire, person.card, f"{person.name}/card")
        link.connect()
        return JpkiClient(link), link

    def _card_signature(self, person: Person, password: Secret, tbs: bytes
                        ) -> tuple[bytes, bytes]:
        """A4: SELECT JPKI AP, VERIFY the card signing password, read the signing
        certificate, sign SHA-256(tbs) with the card's signing key. (certificate, signature)"""
        client, link = self._card(person)
        try:
            cert = client.read_certificate_der("sign", pin=password.reveal())
            signature = client.sign(digest=hashlib.sha256(tbs).digest(), key="sign")
        finally:
            link.disconnect()
        return cert, signature

    def _check_device(self) -> None:
        """A1: a supported phone with a GP-SE the app can open a channel to."""
        check_eligible(self.phone.model.model, os_version=self.phone.os_version,
                       app_version=self.phone.app_version)
        channel = self._se_channel()
        try:
            answer = channel.transmit(CommandAPDU(0x00, INS.SELECT, 0x04, 0x00, gp.JPKI_SSD_AID,
                                                  256).to_bytes())
            if answer[-2:] != SW.SUCCESS.bytes:
                raise AppError("the JPKI security domain is not on this SE "
                               f"({answer[-2:].hex().upper()}); the phone is not supported")
        finally:
            channel.disconnect()

    def _relay(self, first: dict[str, Any]) -> dict[str, Any]:
        """Phase C transport: each TSM command to the SE over an OMAPI channel, each answer
        back to the TSM, until the TSM says done. The app sees only protected bytes."""
        channel = self._se_channel()
        answer = first
        try:
            while not answer.get("done"):
                command = bytes.fromhex(answer["command"])
                response = channel.transmit(command, operation=answer.get("operation"),
                                            label=answer.get("what"))
                answer = self._call(AUTHORITY, "POST", f"/v1/tsm/{answer['session']}/exchange",
                                    {"response": response.hex().upper()})
        finally:
            channel.disconnect()
        return answer

    # -- issuance (15.2) -------------------------------------------------------------------

    def apply(self, person: Person, *, card_password: Secret | str | None = None,
              phone_password: Secret | str | None = None, phone_pin: Secret | str | None = None,
              types: tuple[str, ...] = ("sign", "auth")) -> Result:
        """Phase A: device check, challenge, the card read and its signature (the card's
        signing password), the new phone password and PIN checked and kept in memory, the
        application sent. A newer phone supersedes the older one at C13."""
        self._check_device()  # A1
        card_pw = secret(card_password or person.card_password)  # A2
        new_pw = secret(phone_password or person.phone_password)
        new_pin = secret(phone_pin or person.phone_pin)
        ch = self._call(AUTHORITY, "POST", "/v1/applications/challenge", {"purpose": "issue"})
        nonce = bytes.fromhex(ch["nonce"])
        tbs = tbs_application(ch["application_id"], nonce, self.phone.se_id, types,
                              self.phone.app_version)
        cert, signature = self._card_signature(person, card_pw, tbs)  # A4
        AUTH_PIN.check(pin_bytes(AUTH_PIN, new_pin.reveal()))  # A5: formats, before sending
        if "sign" in types:
            SIGN_PASSWORD.check(pin_bytes(SIGN_PASSWORD, new_pw.reveal()))
        answer = self._call(AUTHORITY, "POST", "/v1/applications", {  # A6
            "application_id": ch["application_id"], "requested_types": list(types),
            "card_sign_cert": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode(), "se_id": self.phone.se_id,
            "device_model": self.phone.model.model, "app_version": self.phone.app_version})
        self.application_id = ch["application_id"]
        self.types = types
        self._new_pins = {"auth": new_pin, **({"sign": new_pw} if "sign" in types else {})}
        return Result.success(application=self.application_id, state=answer["state"],
                              ready_at=answer.get("ready_at"),
                              supersedes=answer.get("supersedes"))

    def register(self) -> Result:
        """B3 then phase C: wait for READY_FOR_REGISTRATION, relay the TSM's registration
        script (C1-C10: keys made in the SE), set the phone PIN and password on the SE
        (C11, RESET RETRY COUNTER with new reference data), relay the receipt session
        (C12) after which the authority activates the pair (C13)."""
        if self.application_id is None:
            raise AppError("there is no application to register; apply first")
        status = self._call(AUTHORITY, "GET", f"/v1/applications/{self.application_id}")
        if status["state"] == "APPLIED":
            raise AppError("the server-side issuance is not finished yet (ready at "
                           f"{status.get('ready_at')}); try again later")
        if status["state"] == "READY_FOR_REGISTRATION":
            first = self._call(AUTHORITY, "POST", "/v1/tsm",
                               {"application_id": self.application_id})
            self._relay(first)
        elif status["state"] != "REGISTERED_IN_SE":
            raise AppError(f"the application is {status['state']}; apply again")
        self._set_new_pins()  # C11
        first = self._call(AUTHORITY, "POST", f"/v1/applications/{self.application_id}/complete")
        done = self._relay(first)
        return Result.success(pair=done.get("pair"), superseded=done.get("superseded", []))

    def _set_new_pins(self) -> None:
        """C11 / 15.7: RESET RETRY COUNTER P1=02 (new reference data only) for each PIN the
        app holds in memory; then the values are dropped."""
        if not self._new_pins:
            raise AppError("the app holds no new PIN to set (it was restarted?); reset the PIN "
                           "with the card")
        channel = self._se_channel()
        try:
            client = JpkiClient(channel)
            client.select_ap()
            for which, fid, policy in (("auth", PIN_AUTH, AUTH_PIN),
                                       ("sign", PIN_SIGN, SIGN_PASSWORD)):
                value = self._new_pins.get(which)
                if value is None:
                    continue
                cmd = CommandAPDU(0x00, INS.RESET_RETRY_COUNTER, 0x02, 0x80 | fid,
                                  pin_bytes(policy, value.reveal())).to_bytes()
                answer = channel.transmit(cmd)
                if answer[-2:] != SW.SUCCESS.bytes:
                    raise AppError(f"the SE refused the new {policy.label} "
                                   f"({answer[-2:].hex().upper()})")
        finally:
            channel.disconnect()
        self._new_pins = {}

    # -- use (15.3) ----------------------------------------------------------------------

    def _phone_client(self) -> tuple[JpkiClient, OmapiChannel]:
        channel = self._se_channel()
        return JpkiClient(channel), channel

    def _unlock_pin(self, pin: Secret | str | None, biometric: bool) -> Secret:
        if not biometric:
            return secret(pin or self.phone.owner.phone_pin)
        if not self.phone.model.has_biometrics:
            raise AppError(f"{self.phone.model.model} has no biometric sensor; the option is "
                           "not shown (smartphone-service.md 7)")
        blob = self.phone.keystore.get("jpki-pin")
        if not self.biometric_enrolled or blob is None:
            raise AppError("biometric unlock is not set up in the app (after a factory reset "
                           "it must be set up again); use the PIN")
        key, wrapped = blob[:32], blob[32:]
        value = AESGCM(key).decrypt(wrapped[:12], wrapped[12:], b"jpki-auth-pin")
        return Secret(value.decode())

    def enrol_biometrics(self, pin: Secret | str | None = None) -> Result:
        """Set up face/fingerprint unlock (spec 7, MODEL): the app checks the PIN with the SE,
        then keeps it wrapped under a Keystore key that needs a biometric prompt."""
        if not self.phone.model.has_biometrics:
            raise AppError(f"{self.phone.model.model} has no biometric sensor; the option is "
                           "not shown (smartphone-service.md 7)")
        value = secret(pin or self.phone.owner.phone_pin)
        client, channel = self._phone_client()
        try:
            client.select_ap()
            client.verify("auth", value.reveal())
        finally:
            channel.disconnect()
        key, nonce = AESGCM.generate_key(256), os.urandom(12)
        self.phone.keystore["jpki-pin"] = key + nonce + AESGCM(key).encrypt(
            nonce, value.reveal().encode(), b"jpki-auth-pin")
        self.biometric_enrolled = True
        return Result.success(sensors="+".join(self.phone.model.biometrics))

    def login(self, service: str = "mynaportal-login", *, pin: Secret | str | None = None,
              biometric: bool = False) -> Result:
        """In-app login (15.3): the service's challenge, SELECT JPKI AP, VERIFY the auth PIN
        (typed, or released by a biometric prompt), read the auth certificate, sign the
        challenge; the service verifies and checks revocation."""
        value = self._unlock_pin(pin, biometric)
        ch = self._call(service, "POST", "/challenge", {})
        client, channel = self._phone_client()
        try:
            cert = client.read_certificate_der("auth", pin=value.reveal())
            signature = client.sign(digest=hashlib.sha256(bytes.fromhex(ch["nonce"])).digest(),
                                    key="auth")
        finally:
            channel.disconnect()
        verdict = self._call(service, "POST", "/login", {
            "challenge_id": ch["challenge_id"], "certificate": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode()})
        return _verdict(verdict, biometric=biometric)

    def _sign_for(self, service: str, document: bytes, password: Secret | str | None
                  ) -> tuple[bytes, Result]:
        """The service's challenge, one VERIFY of the phone signing password, the signing
        certificate read, ``nonce ‖ document`` signed, the service's verdict."""
        ch = self._call(service, "POST", "/challenge", {})
        value = secret(password or self.phone.owner.phone_password)
        digest = hashlib.sha256(bytes.fromhex(ch["nonce"]) + document).digest()
        client, channel = self._phone_client()
        try:
            der = client.read_certificate_der("sign", pin=value.reveal())
            signature = client.sign(digest=digest, key="sign")
        finally:
            channel.disconnect()
        verdict = self._call(service, "POST", "/sign", {
            "challenge_id": ch["challenge_id"], "document": base64.b64encode(document).decode(),
            "certificate": base64.b64encode(der).decode(),
            "signature": base64.b64encode(signature).decode()})
        return der, _verdict(verdict)

    def sign(self, document: bytes, service: str = "e-tax", *,
             password: Secret | str | None = None) -> Result:
        """Sign a document for ``service`` with the phone signing key (15.3, e-Tax)."""
        return self._sign_for(service, document, password)[1]

    def prefill(self, service: str = "moving", *, password: Secret | str | None = None
                ) -> Result:
        """Pre-fill an e-application with the 4 basic facts (基本4情報) read from the phone
        signing certificate: one VERIFY of the phone signing password, the certificate read,
        the form signed so the service can trust it; the facts come back as the form's
        fields (``sex`` as the certificate's code, 1/2/3, and ``sex_name``)."""
        der, result = self._sign_for(service, b"e-application form: prefill", password)
        if not result.ok:
            return result
        facts = decode_basic_four(x509.load_der_x509_certificate(der)) or {}
        sex = facts.get("sex")
        return Result.success(name=facts.get("name"), address=facts.get("address"),
                              birth_date=str(facts.get("birth_date")),
                              sex=facts.get("sex_code"),
                              sex_name=getattr(sex, "name", "").lower() or None)

    # -- revocation, release, reset (15.5-15.7) -------------------------------------------

    def revoke(self, *, password: Secret | str | None = None, why: str = "sale") -> Result:
        """User revocation in the app (spec 8, 15.6): signed with the phone signing key under
        the phone signing password; the authority revokes both; the SE content is deleted
        through the TSM at once (the phone is online) or when it next connects."""
        value = secret(password or self.phone.owner.phone_password)
        ch = self._call(AUTHORITY, "POST", "/v1/applications/challenge", {"purpose": "revoke"})
        tbs = tbs_request(ch["application_id"], bytes.fromhex(ch["nonce"]), "revoke",
                          self.phone.se_id)
        client, channel = self._phone_client()
        try:
            cert = client.read_certificate_der("sign", pin=value.reveal())
            signature = client.sign(digest=hashlib.sha256(tbs).digest(), key="sign")
        finally:
            channel.disconnect()
        answer = self._call(AUTHORITY, "POST", "/v1/revocations", {
            "application_id": ch["application_id"], "se_id": self.phone.se_id,
            "phone_sign_cert": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode(), "why": why})
        jobs = self.sync()
        self.forget()
        return Result.success(state=answer["state"], jobs=jobs)

    def release(self, person: Person, *, card_password: Secret | str | None = None) -> Result:
        """一時利用停止の解除 (9.2, 15.5): re-authentication with the card, then the TSM
        unlocks the applet, makes a new signing key pair and writes the new certificate."""
        ch = self._call(AUTHORITY, "POST", "/v1/applications/challenge", {"purpose": "release"})
        tbs = tbs_request(ch["application_id"], bytes.fromhex(ch["nonce"]), "release",
                          self.phone.se_id)
        cert, signature = self._card_signature(
            person, secret(card_password or person.card_password), tbs)
        answer = self._call(AUTHORITY, "POST", "/v1/releases", {
            "application_id": ch["application_id"], "se_id": self.phone.se_id,
            "card_sign_cert": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode()})
        jobs = self.sync()
        return Result.success(state=answer["state"], jobs=jobs)

    def reset_pin(self, person: Person, which: str = "auth", *,
                  new_value: Secret | str | None = None,
                  card_password: Secret | str | None = None) -> Result:
        """A forgotten or blocked phone PIN/password, reset with the card (15.7): card
        signature, the TSM clears the PIN object, the app sets the new value (as C11)."""
        if which not in ("auth", "sign"):
            raise AppError("which must be 'auth' or 'sign'")
        policy = AUTH_PIN if which == "auth" else SIGN_PASSWORD
        value = secret(new_value or (person.phone_pin if which == "auth"
                                     else person.phone_password))
        policy.check(pin_bytes(policy, value.reveal()))
        purpose = f"pin-reset-{which}"
        ch = self._call(AUTHORITY, "POST", "/v1/applications/challenge", {"purpose": purpose})
        tbs = tbs_request(ch["application_id"], bytes.fromhex(ch["nonce"]), purpose,
                          self.phone.se_id)
        cert, signature = self._card_signature(
            person, secret(card_password or person.card_password), tbs)
        self._call(AUTHORITY, "POST", "/v1/pin-resets", {
            "application_id": ch["application_id"], "se_id": self.phone.se_id, "which": which,
            "card_sign_cert": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode()})
        jobs = self.sync()
        self._new_pins = {which: value}
        self._set_new_pins()
        if which == "auth":  # a biometric binding holds the old PIN
            self.phone.keystore.pop("jpki-pin", None)
            self.biometric_enrolled = False
        return Result.success(jobs=jobs)

    def sync(self) -> list[str]:
        """What the app does when it starts online: run the SE jobs the authority holds for
        this phone (lock, delete, new signing key, PIN reset), each a relayed TSM session."""
        if not self.phone.online or self.phone.se is None:  # no GP-SE: nothing the TSM reaches
            return []
        jobs = self._call(AUTHORITY, "GET", f"/v1/phones/{self.phone.se_id}/jobs")["jobs"]
        done = []
        for job in jobs:
            first = self._call(AUTHORITY, "POST", f"/v1/phones/{self.phone.se_id}/jobs",
                               {"job": job})
            self._relay(first)
            done.append(job)
        return done

    def tries_left(self, which: str = "auth") -> int | None:
        """The counter the app shows next to the PIN field (empty VERIFY; spends nothing)."""
        client, channel = self._phone_client()
        try:
            return client.tries_left(which)
        except CardError:
            return None
        finally:
            channel.disconnect()


def _verdict(answer: Mapping[str, Any], **facts: Any) -> Result:
    base = {k: v for k, v in answer.items() if k not in ("accepted", "reason")}
    if answer.get("accepted"):
        return Result.success(**base, **facts)
    return Result.refused(str(answer.get("reason", "refused")), **base, **facts)


HostMap = Mapping[str, Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any]]]]

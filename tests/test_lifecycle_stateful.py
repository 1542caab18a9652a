"""Random sequences of the smartphone certificate service's operations (hypothesis stateful).

One :class:`~workbench.lifecycle.Simulation` per example, two people and up to three phones;
the rules are what users, the hotline and the municipality do (smartphone-service.md 5-10,
15.2-15.8): apply and register, log in and sign, report a loss (hold or revoke), lift the hold,
revoke in the app, factory-reset, go offline and back, change the 4 basic facts, renew the
card, and let the calendar run (hotline hours, CRL publications, Not After).

The machine keeps its own model of each person's live phone pair (5, 8, 9, 10, 15.8) and
predicts, before every operation, whether the rules allow it; a refusal must be one the rules
allow, and anything that is not a :class:`~workbench.errors.WorkbenchError` fails the test.
After every step it checks the issue's invariants:

- at most one phone per person holds valid phone certificates (5), every phone certificate
  that is good in the registry belongs to a live pair, and the authority's live pairs are
  the ones the model predicts;
- a revoked certificate never comes back; after a release the signing certificate is a new
  one and the old one stays revoked (superseded) (9.2, 15.5);
- a held or revoked certificate fails relying-party verification through OCSP at once and
  through a CRL from the next publication on (11.3, 15.4 S2);
- a factory reset revokes nothing (8, 15.6);
- no PIN or password appears on the wire (every record, as JSON) or in the authority's
  database file and its WAL, as ASCII or hex (15.2 A5, CONVENTIONS "Data and safety");
- no recorded APDU carries 16 consecutive bytes of p, q, d (or the CRT values) of any key
  the phones' SEs ever held (14 item 2);
- every pair's history takes only transitions of :data:`~workbench.lifecycle.TRANSITIONS`
  (15.8), and once a phone has run its SE jobs, its SE holds what the authority says.

Bugs this machine found are pinned by the regression tests at the end (each was fixed).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from workbench.card.constants import JPKI_AP_AID, KEY_AUTH, KEY_SIGN
from workbench.errors import WorkbenchError
from workbench.holder import holder_to_json
from workbench.lifecycle import (
    LIVE_STATES,
    TRANSITIONS,
    AppError,
    Event,
    HotlineCall,
    PairState,
    Phone,
    ServiceError,
    Simulation,
)
from workbench.pki import CertState, RevocationReason
from workbench.pki.crl import publication_time
from workbench.pki.holder import synthetic_holder
from workbench.se import gp

# -- the world -------------------------------------------------------------------------------

#: Distinctive secrets (spec 7 formats: 4 digits; 6-16 uppercase letters and digits). The
#: passwords use letters outside A-F, so they cannot hide in hex; the PINs are no year, and
#: the scans below look for them only where a PIN could stand on its own.
PEOPLE: dict[str, dict[str, str]] = {
    "aoi": {"card_password": "QZ7XK4WJ9VPL", "card_pin": "7391",
            "phone_password": "MW8RTY3KX5HN", "phone_pin": "4826"},
    "ren": {"card_password": "JV5KQ9XWZT3R", "card_pin": "6173",
            "phone_password": "HX4ZPL7QWK2M", "phone_pin": "9548"},
}
NAMES = tuple(PEOPLE)
#: Fixed synthetic holders (their 4-digit card security codes are no PIN of PEOPLE).
HOLDER_SEEDS = {"aoi": 11, "ren": 12}
#: Eligible models with a GP-SE, and one without (refused at A1, spec 3).
MODELS = ("Pixel 7", "Galaxy A54", "Xperia 10 IV", "Example phone without GP-SE (synthetic)")
MAX_PHONES = 3
ISSUANCE_DELAY = timedelta(minutes=2)
CRL_INTERVAL = timedelta(hours=1)
#: Relying services by (certificate, revocation method): OCSP is each service's default;
#: the simulation is told to make the convenience store and e-Gov check CRLs (11.3).
RP = {("auth", "ocsp"): "mynaportal-login", ("sign", "ocsp"): "e-tax",
      ("auth", "crl"): "convenience-store", ("sign", "crl"): "e-gov"}
WINDOW = 16  # bytes of a private value that must never appear in an answer
#: The calendar stays before the end of the simulated authority's last CA generation (2033).
HORIZON = datetime.fromisoformat("2032-12-31T00:00:00+00:00")


class KeyPool:
    """Test-only RSA keys instead of generating them in every simulation (~0.25 s each).

    The SE keys of one simulation are all different (a pool key is handed out at most once
    per simulation; the pool grows when one asks for more), so "a new signing key" is really
    new. The plastic cards, which this file does not test, share one key per label.
    """

    def __init__(self) -> None:
        self._se: list[rsa.RSAPrivateKey] = []
        self._card: dict[str, rsa.RSAPrivateKey] = {}

    @staticmethod
    def _new() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def source(self) -> Callable[[str], rsa.RSAPrivateKey]:
        handed = itertools.count()

        def take(label: str) -> rsa.RSAPrivateKey:
            if not label.startswith("se:"):
                if label not in self._card:
                    self._card[label] = self._new()
                return self._card[label]
            i = next(handed)
            while i >= len(self._se):
                self._se.append(self._new())
            return self._se[i]

        return take


KEYS = KeyPool()


def new_simulation() -> Simulation:
    return Simulation(key_source=KEYS.source(), crl_interval=CRL_INTERVAL,
                      issuance_delay=ISSUANCE_DELAY,
                      revocation_by_service={"convenience-store": "crl", "e-gov": "crl"})


def add_people(sim: Simulation) -> None:
    for name, secrets in PEOPLE.items():
        sim.add_person(name, holder=synthetic_holder(HOLDER_SEEDS[name]), **secrets)


def registered(sim: Simulation, phone: Phone, person: str | None = None) -> None:
    """Apply and register ``phone`` for its owner (or ``person``), 15.2."""
    who = sim.person(person or phone.owner)
    assert phone.app.apply(who).ok
    sim.advance(ISSUANCE_DELAY + timedelta(minutes=1))
    assert phone.app.register().ok


# -- looking at SEs, certificates and records ---------------------------------------------------

def jpki_entry(phone: Phone) -> gp.RegistryEntry | None:
    if phone.se is None:
        return None
    return next((e for e in phone.se.registry if e.aid == gp.JPKI_INSTANCE_AID), None)


def applet_usable(phone: Phone) -> bool:
    """The JPKI applet is installed, personalised (not locked) and holds certificates."""
    entry = jpki_entry(phone)
    return (entry is not None and entry.life_cycle == gp.ApplicationState.PERSONALIZED
            and bool(phone_certs(phone)))


def phone_certs(phone: Phone) -> dict[str, x509.Certificate]:
    """The phone certificates in the SE (without the CA certificates stored beside them)."""
    if phone.se is None:
        return {}
    return {k: v for k, v in phone.se.certificates().items() if k in ("sign", "auth")}


def private_windows(key: rsa.RSAPrivateKey) -> set[bytes]:
    pn = key.private_numbers()
    out: set[bytes] = set()
    for value in (pn.p, pn.q, pn.d, pn.dmp1, pn.dmq1, pn.iqmp):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        out.update(raw[i:i + WINDOW] for i in range(len(raw) - WINDOW + 1))
    return out


def apdu_bytes(record: dict[str, Any]) -> Iterator[bytes]:
    """Command (masked bytes dropped) and response of an exchange record."""
    if record.get("type") != "exchange":
        return
    command = str(record.get("command", ""))
    for part in re.split(r"(?:\*\*)+", command):
        if len(part) % 2 == 0:
            yield bytes.fromhex(part)
    yield bytes.fromhex(str(record.get("response", "")))


def leaf_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from leaf_strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaf_strings(v)


_HEX = re.compile(r"[0-9A-Fa-f]+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class SecretScanner:
    """Finds PINs and passwords (label → value) as ASCII or hex (both cases).

    A long password is looked for anywhere. A 4-digit PIN only where it stands alone (no
    letter or digit beside it, so not inside a longer number, hex or base64 string), inside
    short hex or base64 fields (decoded), and inside plain APDUs (no secure messaging), so
    that random bytes cannot match by chance.
    """

    def __init__(self, secrets: dict[str, str]) -> None:
        self.forms: list[tuple[str, bool, str]] = []  # (form, stands alone, label)
        for label, value in secrets.items():
            raw = value.encode()
            for form in dict.fromkeys((value, raw.hex().upper(), raw.hex())):
                self.forms.append((form, len(value) < 8, label))
        self._pins = {v.encode(): label for label, v in secrets.items() if len(v) < 8}

    def _search(self, data: str | bytes) -> str | None:
        for form, alone, label in self.forms:
            needle: str | bytes = form if isinstance(data, str) else form.encode()
            at = data.find(needle)  # type: ignore[arg-type]
            while at >= 0:
                end = at + len(needle)
                if not alone or not (_alnum(data[at - 1:at]) or _alnum(data[end:end + 1])):
                    return label
                at = data.find(needle, at + 1)  # type: ignore[arg-type]
        return None

    def in_record(self, record: dict[str, Any]) -> str | None:
        """The label of a secret in a wire record, or None."""
        strings = list(leaf_strings(record))
        found = self._search("\n".join(strings))
        if found:
            return found
        blobs = [b for b in map(decode_short, strings) if b is not None]
        if record.get("type") == "exchange":
            command = str(record.get("command", ""))
            if len(command) >= 2 and not int(command[:2], 16) & 0x0C:  # no SM bits (7816-4)
                blobs += list(apdu_bytes(record))
        return next((label for blob in blobs for pin, label in self._pins.items()
                     if pin in blob), None)

    def in_file(self, data: bytes) -> str | None:
        return self._search(data)


def _alnum(char: str | bytes) -> bool:
    return bool(char) and (char.isalnum() if isinstance(char, str) else char.isalnum())


def decode_short(text: str) -> bytes | None:
    """A short hex or base64 field (8-64 characters) decoded, else None."""
    if len(text) > 64 or len(text) < 8:
        return None
    try:
        if _HEX.fullmatch(text) and len(text) % 2 == 0:
            return bytes.fromhex(text)
        if _B64.fullmatch(text) and len(text) % 4 == 0:
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
    return None


# -- the model ---------------------------------------------------------------------------------

@dataclass
class LivePair:
    """What the model expects of a person's live pair (15.8)."""

    phone: str
    state: PairState
    sign: int | None
    auth: int
    not_after: datetime


@dataclass
class Application:
    person: str
    phone: str
    at: datetime
    status: str  # "APPLIED", "DONE" (registered), "DEAD" (superseded: apply again)
    polled_ready: bool = False


class ServiceMachine(RuleBasedStateMachine):
    """The service's operations in random order (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.sim = new_simulation()
        self.live: dict[str, LivePair | None] = dict.fromkeys(NAMES)
        self.apps: dict[str, Application] = {}
        self.app_of: dict[str, str | None] = {}  # what each phone's app remembers
        self.queued: list[HotlineCall] = []  # loss calls waiting for the hotline to open
        self.facts_changes = 0
        # what the invariants have seen so far
        self.certs: dict[int, tuple[str, x509.Certificate]] = {}
        self.status: dict[int, tuple[CertState, RevocationReason | None, datetime | None]] = {}
        self.revoked: dict[int, tuple[RevocationReason | None, datetime | None]] = {}
        self.sign_of_pair: dict[str, int | None] = {}
        self.crl_checked: dict[int, tuple[CertState, datetime | None]] = {}
        self.windows: set[bytes] = set()
        self.key_moduli: set[int] = set()
        self.scanned_records = 0
        self.secrets = SecretScanner({f"{name}'s {kind}": value for name, values in
                                      PEOPLE.items() for kind, value in values.items()})

    def teardown(self) -> None:
        self.sim.close()

    # -- helpers --------------------------------------------------------------------------

    @property
    def phones(self) -> list[Phone]:
        return list(self.sim.phones.values())

    def pick(self, index: int) -> Phone:
        return self.phones[index % len(self.phones)]

    def now(self) -> datetime:
        return self.sim.now()

    def card_valid(self, name: str) -> bool:
        cert = self.sim.person(name).card.certificates()["sign"]
        return cert.not_valid_before_utc <= self.now() <= cert.not_valid_after_utc

    def expect(self, what: str, action: Callable[[], Any], refusal: str | None) -> Any:
        """Run ``action``. ``refusal`` None: the rules allow it, it must succeed; else a
        pattern the :class:`WorkbenchError` it must raise matches (a refusal the rules
        allow). Other exceptions propagate and fail the test."""
        try:
            result = action()
        except WorkbenchError as exc:
            if refusal is None:
                raise AssertionError(f"{what} was refused, but the rules allow it: "
                                     f"{type(exc).__name__}: {exc}") from exc
            assert re.search(refusal, str(exc)), (
                f"{what} was refused for a reason the rules do not give: "
                f"{type(exc).__name__}: {exc} (expected /{refusal}/)")
            event(f"refused: {what.split(' on ')[0]}")
            return None
        assert refusal is None, f"{what} succeeded, but the rules refuse it (/{refusal}/)"
        event(f"done: {what.split(' on ')[0].split(' by ')[0]}")
        return result

    def app_start(self, phone: Phone) -> None:
        """The app starts online: it runs the SE jobs waiting for the phone (15.4 S3, 15.6)."""
        if phone.online:
            self.expect(f"sync on {phone.name}", phone.app.sync, None)

    def registry_state(self, serial: int) -> tuple[CertState, RevocationReason | None,
                                                     datetime | None]:
        rec = self.sim.store.registry.certificates(serial=serial)
        assert len(rec) == 1, f"serial {serial:X} is registered {len(rec)} times"
        return rec[0].state, rec[0].reason, rec[0].since

    def owner_live(self, phone: Phone) -> LivePair | None:
        pair = self.live[phone.owner.name]
        return pair if pair is not None and pair.phone == phone.name else None

    def supersede_applications(self, person: str, keep: str | None = None) -> None:
        for app_id, app in self.apps.items():
            if app.person == person and app.status == "APPLIED" and app_id != keep:
                app.status = "DEAD"

    def model_hotline(self, person: str, revoke: bool) -> None:
        """S2 in the model: hold (or revoke) the person's live pair, if any."""
        pair = self.live[person]
        if pair is None:
            return
        if revoke:
            self.live[person] = None
        else:  # a second call about a loss already on hold changes nothing
            pair.state = PairState.ON_HOLD

    def model_time(self, target: datetime) -> None:
        """Due events in time order: before each queued hotline call (at its opening), the
        pairs whose Not After passed expire; then the rest up to ``target``."""
        for call in sorted(self.queued, key=lambda c: c.acted_at):
            if call.acted_at <= target:
                self.model_expiry(call.acted_at)
                self.model_hotline(call.person, call.revoke)
                self.queued.remove(call)
        self.model_expiry(target)

    def model_expiry(self, moment: datetime) -> None:
        for name, pair in self.live.items():
            if pair is not None and moment > pair.not_after:
                self.live[name] = None

    def move_to(self, target: datetime) -> None:
        self.model_time(target)
        self.expect("advance", lambda: self.sim.set_time(target), None)
        assert self.now() == target, f"the calendar stopped at {self.now()}, not {target}"

    # -- setup --------------------------------------------------------------------------------

    @initialize(models=st.tuples(st.sampled_from(MODELS[:3]), st.sampled_from(MODELS)),
                issued=st.tuples(st.booleans(), st.booleans()))
    def setup(self, models: tuple[str, str], issued: tuple[bool, bool]) -> None:
        add_people(self.sim)
        for name, model, issue in zip(NAMES, models, issued, strict=True):
            phone = self.sim.add_phone(f"{name}-1", name, model)
            self.app_of[phone.name] = None
            if issue:
                self.issue_on(phone)

    # -- phones ---------------------------------------------------------------------------------

    @precondition(lambda self: len(self.sim.phones) < MAX_PHONES)
    @rule(owner=st.sampled_from(NAMES), model=st.sampled_from(MODELS))
    def buy_phone(self, owner: str, model: str) -> None:
        name = f"{owner}-{len(self.sim.phones) + 1}"
        self.sim.add_phone(name, owner, model)
        self.app_of[name] = None

    @rule(i=st.integers(0, MAX_PHONES - 1))
    def issue(self, i: int) -> None:
        """15.2 as users do it: apply, wait for the issuance (B), register (C)."""
        self.issue_on(self.pick(i))

    def issue_on(self, phone: Phone) -> None:
        if self.apply_on(phone, sync=True):
            self.move_to(self.now() + ISSUANCE_DELAY + timedelta(minutes=1))
            self.register_on(phone)

    @rule(i=st.integers(0, MAX_PHONES - 1), sync=st.booleans())
    def apply(self, i: int, sync: bool) -> None:
        """15.2 A: the owner applies in the app with the card."""
        self.apply_on(self.pick(i), sync)

    def apply_on(self, phone: Phone, sync: bool) -> bool:
        owner = phone.owner.name  # one person per phone: see test_a_second_person_on_a_phone
        if sync:
            self.app_start(phone)
        refusal = ("has no GP-SE" if phone.se is None else "is offline" if not phone.online
                   else "expired" if not self.card_valid(owner) else None)
        result = self.expect(f"apply on {phone.name}", lambda: phone.app.apply(phone.owner),
                             refusal)
        if result is None:
            return False
        app_id = result.facts["application"]
        self.apps[app_id] = Application(owner, phone.name, self.now(), "APPLIED")
        self.app_of[phone.name] = app_id
        return True

    @rule(i=st.integers(0, MAX_PHONES - 1))
    def register(self, i: int) -> None:
        """15.2 B3, C: registration; C13 supersedes the person's other pair (spec 5)."""
        self.register_on(self.pick(i))

    def register_on(self, phone: Phone) -> None:
        app_id = self.app_of[phone.name]
        app = self.apps.get(app_id) if app_id else None
        self.app_start(phone)
        ready = self.now() >= (app.at if app else self.now()) + ISSUANCE_DELAY
        if app is None:
            refusal = "no application"
        elif not phone.online:
            refusal = "is offline"
        elif app.status == "DEAD" and not ready:  # superseded before B3 finished: says so later
            refusal = "not finished yet"
        elif app.status != "APPLIED":
            refusal = "apply again"
        elif not ready:
            refusal = "not finished yet"
        elif not self.card_valid(app.person):  # spec 6: nothing valid can be issued now
            refusal = "expired"
        else:
            refusal = None
        before = {s: self.registry_state(s) for s in self.certs}
        result = self.expect(f"register on {phone.name}", phone.app.register, refusal)
        if result is None:
            return
        assert app is not None and app_id is not None
        person = self.sim.person(app.person)
        certs = phone_certs(phone)
        assert set(certs) == {"sign", "auth"}, f"registered, but the SE holds {set(certs)}"
        card = person.card.certificates()
        for kind in ("sign", "auth"):  # spec 6 MODEL: Not After follows the card's
            assert certs[kind].not_valid_after_utc == card[kind].not_valid_after_utc
            serial = certs[kind].serial_number
            assert serial not in before, f"the new {kind} certificate reuses serial {serial:X}"
            assert self.registry_state(serial)[0] is CertState.GOOD
        old = self.live[app.person]
        self.live[app.person] = LivePair(phone.name, PairState.ACTIVE,
                                         certs["sign"].serial_number,
                                         certs["auth"].serial_number,
                                         certs["auth"].not_valid_after_utc)
        app.status = "DONE"
        self.supersede_applications(app.person)
        if old is not None:  # spec 5: the previous phone's pair is revoked (superseded)
            for serial in (old.sign, old.auth):
                if serial is not None:
                    state, reason, _ = self.registry_state(serial)
                    assert state is CertState.REVOKED, f"{serial:X} is {state} after a new phone"
                    if before.get(serial, (None,))[0] is not CertState.REVOKED:
                        assert reason is RevocationReason.SUPERSEDED, reason

    @rule(i=st.integers(0, MAX_PHONES - 1))
    def poll_application(self, i: int) -> None:
        """The app shows how far the application is (GET /v1/applications/{id}, B3)."""
        phone = self.pick(i)
        app_id = self.app_of[phone.name]
        if app_id is None:
            return
        status, answer = self.sim.authority.handle("GET", f"/v1/applications/{app_id}", {})
        assert status == 200, answer
        app = self.apps[app_id]
        if app.status == "DONE":
            assert answer["state"] == "ACTIVE", answer
        elif app.status == "DEAD":  # a superseded application never looks ready again
            allowed = {"REVOKED"}
            if self.now() < app.at + ISSUANCE_DELAY:
                allowed.add("APPLIED")
            assert answer["state"] in allowed, answer
        elif self.now() < app.at + ISSUANCE_DELAY:
            assert answer["state"] == "APPLIED", answer
        else:
            assert answer["state"] == "READY_FOR_REGISTRATION", answer
            app.polled_ready = True

    # -- use ------------------------------------------------------------------------------------

    def use_refusal(self, phone: Phone) -> str | None:
        if not phone.online:
            return "is offline"
        if phone.se is None:
            return "has no GP-SE"
        entry = jpki_entry(phone)
        if entry is None or gp.is_locked(entry.life_cycle):
            return "6A82|not on this card"  # absent, or locked (15.4 S3)
        if not applet_usable(phone):  # left half-installed by a failed registration (see
            return "6985"  # test_registration_after_the_card_expired_is_refused_before...)
        return None

    @rule(i=st.integers(0, MAX_PHONES - 1), kind=st.sampled_from(["auth", "sign"]),
          sync=st.booleans())
    def use(self, i: int, kind: str, sync: bool) -> None:
        """15.3: log in to Mynaportal (auth, OCSP) or sign for e-Tax (sign, OCSP); the
        service's verdict follows the registry at once."""
        phone = self.pick(i)
        if sync:
            self.app_start(phone)
        action = phone.app.login if kind == "auth" else (lambda: phone.app.sign(b"doc"))
        result = self.expect(f"{kind} on {phone.name}", action, self.use_refusal(phone))
        if result is None:
            return
        cert = phone_certs(phone)[kind]
        state = self.registry_state(cert.serial_number)[0]
        valid = cert.not_valid_before_utc <= self.now() <= cert.not_valid_after_utc
        assert result.ok == (state is CertState.GOOD and valid), (
            f"the {kind} certificate {cert.serial_number:X} is {state.value}, valid time "
            f"{valid}, but the service says {result.outcome}")

    # -- loss, release, revocation ---------------------------------------------------------------

    @rule(person=st.sampled_from(NAMES), revoke=st.booleans())
    def report_loss(self, person: str, revoke: bool) -> None:
        """9.1: the hotline holds (or revokes) the live pair, now or at its next opening."""
        now = self.now()
        opening = self.sim.hotline.next_opening(now)
        pair = self.live[person]
        if opening > now:
            call = self.expect("loss call", lambda: self.sim.report_loss(person,
                                                                           revoke=revoke), None)
            assert call.acted_at == opening
            self.queued.append(call)
            return
        if pair is not None and pair.state is PairState.ON_HOLD and not revoke:
            refusal: str | None = "already on hold"
        else:
            refusal = None
        before = {s: self.registry_state(s) for s in self.certs}
        if self.expect("loss call", lambda: self.sim.report_loss(person, revoke=revoke),
                       refusal) is None:
            return
        self.model_hotline(person, revoke)
        if pair is None:
            return
        for serial in (pair.sign, pair.auth):  # 15.8: certificateHold / keyCompromise
            if serial is None or before[serial][0] is CertState.REVOKED:
                continue
            state, reason, _ = self.registry_state(serial)
            if revoke:
                assert (state, reason) == (CertState.REVOKED, RevocationReason.KEY_COMPROMISE)
            else:
                assert state is CertState.HELD, state

    @rule(i=st.none() | st.integers(0, MAX_PHONES - 1), person=st.sampled_from(NAMES))
    def release(self, i: int | None, person: str) -> None:
        """9.2, 15.5: the hold lifted with the card; auth back to good, a new signing
        certificate (the old one revoked, superseded). ``i`` None: on the phone the person's
        live pair is on (the phone that was found)."""
        pair = self.live[person]
        phone = (self.sim.phone(pair.phone) if i is None and pair is not None
                 else self.pick(i or 0))
        if not phone.online:
            refusal: str | None = "is offline"
        elif not self.card_valid(person):
            refusal = "expired"
        elif pair is None or pair.phone != phone.name or pair.state is not PairState.ON_HOLD:
            refusal = "not on hold for this person"
        else:
            refusal = None
        old_sign = phone_certs(phone).get("sign")
        old_state = None if old_sign is None else self.registry_state(old_sign.serial_number)
        if self.expect(f"release on {phone.name} by {person}",
                       lambda: phone.app.release(self.sim.person(person)), refusal) is None:
            return
        assert pair is not None and old_sign is not None and old_state is not None
        certs = phone_certs(phone)
        assert applet_usable(phone), "released, but the applet is not usable"
        new_sign = certs["sign"].serial_number
        assert new_sign != old_sign.serial_number, "the old signing certificate came back"
        assert certs["sign"].public_key().public_numbers() != \
            old_sign.public_key().public_numbers(), "the new signing certificate has the old key"
        assert certs["auth"].serial_number == pair.auth
        state, reason, _ = self.registry_state(old_sign.serial_number)
        assert state is CertState.REVOKED
        if old_state[0] is not CertState.REVOKED:
            assert reason is RevocationReason.SUPERSEDED, reason
        assert self.registry_state(new_sign)[0] is CertState.GOOD
        assert self.registry_state(pair.auth)[0] is CertState.GOOD
        pair.state, pair.sign = PairState.ACTIVE, new_sign

    @rule(i=st.integers(0, MAX_PHONES - 1), sync=st.booleans())
    def revoke_in_app(self, i: int, sync: bool) -> None:
        """8, 15.6: the owner revokes in the app with the phone signing password."""
        phone = self.pick(i)
        if sync:
            self.app_start(phone)
        pair = self.owner_live(phone)
        refusal = self.use_refusal(phone)
        if refusal is None:
            sign = phone_certs(phone).get("sign")
            if pair is None or sign is None or sign.serial_number != pair.sign:
                refusal = "not the current phone signing certificate|already (REVOKED|EXPIRED)"
        if self.expect(f"revocation on {phone.name}", phone.app.revoke, refusal) is None:
            return
        assert pair is not None
        self.live[phone.owner.name] = None
        self.app_of[phone.name] = None
        assert not phone_certs(phone), "revoked online, but the SE still holds certificates"
        for serial in (pair.sign, pair.auth):
            assert serial is not None
            state, reason, _ = self.registry_state(serial)
            assert state is CertState.REVOKED
            assert reason in (RevocationReason.CESSATION_OF_OPERATION,
                              RevocationReason.AFFILIATION_CHANGED), reason

    @rule(i=st.integers(0, MAX_PHONES - 1))
    def factory_reset(self, i: int) -> None:
        """8, 15.6: the app's data goes, the SE and every certificate stay as they were."""
        phone = self.pick(i)
        registry = [(r.serial, r.state, r.reason, r.since)
                    for r in self.sim.store.registry.certificates()]
        pairs = [(p.pair_id, p.state) for p in self.sim.authority.pairs()]
        se = {k: c.serial_number for k, c in phone_certs(phone).items()}
        entry = jpki_entry(phone)
        phone.factory_reset()
        self.app_of[phone.name] = None
        assert [(r.serial, r.state, r.reason, r.since)
                for r in self.sim.store.registry.certificates()] == registry
        assert [(p.pair_id, p.state) for p in self.sim.authority.pairs()] == pairs
        assert {k: c.serial_number for k, c in phone_certs(phone).items()} == se
        assert jpki_entry(phone) == entry

    @rule(i=st.integers(0, MAX_PHONES - 1), online=st.booleans(), sync=st.booleans())
    def connectivity(self, i: int, online: bool, sync: bool) -> None:
        phone = self.pick(i)
        phone.online = online
        if sync:
            self.app_start(phone)

    # -- card events ----------------------------------------------------------------------------

    @rule(person=st.sampled_from(NAMES))
    def change_basic_facts(self, person: str) -> None:
        """10, 15.7: a move: the phone signing certificate revoked (affiliationChanged), the
        phone auth certificate kept."""
        self.facts_changes += 1
        pair = self.live[person]
        before = {s: self.registry_state(s) for s in self.certs}
        street = f"西{self.facts_changes}-{self.facts_changes % 9 + 1}"
        self.expect("address change", lambda: self.sim.change_basic_facts(
            person, street=street), None)
        if pair is None:
            return
        if pair.state is PairState.ACTIVE:
            pair.state = PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN
        if pair.sign is not None and before[pair.sign][0] is not CertState.REVOKED:
            state, reason, _ = self.registry_state(pair.sign)
            assert (state, reason) == (CertState.REVOKED, RevocationReason.AFFILIATION_CHANGED)
        assert self.registry_state(pair.auth)[:2] == before[pair.auth][:2]

    @rule(person=st.sampled_from(NAMES))
    def renew_card(self, person: str) -> None:
        """15.7: a new card; the phone pair keeps its old Not After."""
        before = {s: self.registry_state(s) for s in self.certs}
        self.expect("card renewal", lambda: self.sim.renew_card(person), None)
        assert {s: self.registry_state(s) for s in self.certs} == before

    # -- the calendar ---------------------------------------------------------------------------

    @rule(delta=st.sampled_from([timedelta(minutes=3), timedelta(minutes=40),
                                 timedelta(hours=5), timedelta(hours=14), timedelta(days=3)]))
    def advance(self, delta: timedelta) -> None:
        self.move_to(self.now() + delta)

    @rule(past=st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(minutes=7)]))
    def next_crl(self, past: timedelta) -> None:
        """11.3: from the next publication on, a held or revoked certificate fails a CRL
        check: each change is checked at the first publication after it (checking every
        certificate at every publication would cost a validation each)."""
        boundary = publication_time(self.now(), CRL_INTERVAL) + CRL_INTERVAL
        self.move_to(boundary + past)
        published = publication_time(self.now(), CRL_INTERVAL)
        for serial, (kind, cert) in self.certs.items():
            state, reason, since = self.registry_state(serial)
            if state is CertState.GOOD or self.crl_checked.get(serial) == (state, since):
                continue
            assert since is not None
            if since < published:
                self.assert_rejected(cert, kind, "crl", state, reason)
                self.crl_checked[serial] = (state, since)

    @precondition(lambda self: any(p is not None for p in self.live.values()))
    @rule(person=st.sampled_from(NAMES), after=st.booleans())
    def near_not_after(self, person: str, after: bool) -> None:
        """15.8: the pair expires at Not After (the card's certificates, spec 6): the calendar
        jumps to the evening before (23:00 JST, the hotline closed) or the day after."""
        pair = self.live[person]
        if pair is None:
            return
        target = pair.not_after + (timedelta(days=1) if after else -timedelta(hours=1))
        if self.now() < target < HORIZON:
            self.move_to(target)

    def assert_rejected(self, cert: x509.Certificate, kind: str, method: str,
                        state: CertState, reason: RevocationReason | None) -> None:
        verdict = self.sim.service(RP[kind, method]).check(cert, usage=kind)
        assert not verdict.accepted, (
            f"{RP[kind, method]} ({method}) accepts {kind} certificate "
            f"{cert.serial_number:X}, which is {state.value} ({reason})")
        if self.now() <= cert.not_valid_after_utc:
            want = ("on hold (certificateHold)" if state is CertState.HELD
                    else f"revoked ({reason.value if reason else 'unspecified'})")
            assert verdict.reason == want, (method, verdict)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def the_world_is_consistent(self) -> None:
        self.observe_certificates()
        self.check_model_agrees()
        self.check_one_phone_per_person()
        self.check_revoked_stay_revoked()
        self.check_signing_certificate_replacements()
        self.check_transitions()
        self.check_ses_match_the_authority()
        self.check_no_secrets_stored_or_sent()
        self.check_no_private_key_on_the_wire()

    def observe_certificates(self) -> None:
        """Every phone certificate the registry knows is one an SE held; each one that
        became held or revoked fails OCSP at once (15.4 S2)."""
        for phone in self.phones:
            for kind, cert in phone_certs(phone).items():
                self.certs.setdefault(cert.serial_number, (kind, cert))
            if phone.se is not None and phone.se.jpki is not None:
                for fid in (KEY_AUTH, KEY_SIGN):
                    try:
                        key = phone.se.hazmat_private_key(JPKI_AP_AID, fid)
                    except WorkbenchError:
                        continue
                    n = key.private_numbers().public_numbers.n
                    if n not in self.key_moduli:
                        self.key_moduli.add(n)
                        fresh = private_windows(key)
                        self.scan_for_windows(self.sim.wire.records[:self.scanned_records],
                                              fresh)
                        self.windows |= fresh
        registry = [r for r in self.sim.store.registry.certificates()
                    if r.token == "gpse" and r.kind in ("sign", "auth")]
        unseen = {f"{r.serial:X}" for r in registry} - {f"{s:X}" for s in self.certs}
        assert not unseen, f"phone certificates no SE ever held: {unseen}"
        for rec in registry:
            now = (rec.state, rec.reason, rec.since)
            if rec.state is not CertState.GOOD and self.status.get(rec.serial) != now:
                kind, cert = self.certs[rec.serial]
                self.assert_rejected(cert, kind, "ocsp", rec.state, rec.reason)
            self.status[rec.serial] = now

    def check_model_agrees(self) -> None:
        """The authority's live pairs are the ones the rules of 5, 8, 9, 10 and 15.8 give."""
        se_of = {p.name: p.se_id for p in self.phones}
        for name in NAMES:
            pair = self.sim.authority.live_pair(self.sim.person(name).pid)
            want = self.live[name]
            got = None if pair is None else (pair.se_id, pair.state, pair.sign_serial,
                                             pair.auth_serial)
            expected = None if want is None else (se_of[want.phone], want.state, want.sign,
                                                  want.auth)
            assert got == expected, f"{name}: the authority has {got}, the rules give {expected}"

    def check_one_phone_per_person(self) -> None:
        """Spec 5: at most one live pair and one phone with valid certificates per person;
        a phone certificate good in the registry belongs to a live pair."""
        pairs = self.sim.authority.pairs()
        live_pairs = {p.pair_id: p for p in pairs if p.state in LIVE_STATES}
        owner_of = {}
        for p in pairs:
            for serial in p.serials():
                owner_of[serial] = p
        valid_phones: dict[str, set[str]] = {}
        for phone in self.phones:
            for kind, cert in phone_certs(phone).items():
                serial = cert.serial_number
                if self.registry_state(serial)[0] is not CertState.GOOD or not (
                        cert.not_valid_before_utc <= self.now() <= cert.not_valid_after_utc):
                    continue  # expired certificates keep their registry answer (registry.py)
                pair = owner_of.get(serial)
                assert pair is not None and pair.pair_id in live_pairs, (
                    f"{phone.name} holds {kind} certificate {serial:X}, good in the registry "
                    f"and in its validity, of a pair that is "
                    f"{pair.state.value if pair else 'unknown'}")
                valid_phones.setdefault(pair.person, set()).add(phone.name)
        for person, phones in valid_phones.items():
            assert len(phones) <= 1, f"person {person} has valid certificates on {phones}"
        people = [p.person for p in live_pairs.values()]
        assert len(people) == len(set(people)), f"two live pairs for one person: {people}"

    def check_revoked_stay_revoked(self) -> None:
        for serial, (state, reason, since) in self.status.items():
            if serial in self.revoked:
                assert (state, reason, since) == (CertState.REVOKED, *self.revoked[serial]), (
                    f"{serial:X} was revoked ({self.revoked[serial]}), now {state.value} "
                    f"({reason}, {since})")
            elif state is CertState.REVOKED:
                self.revoked[serial] = (reason, since)

    def check_signing_certificate_replacements(self) -> None:
        """9.2, 15.5 R2: when a pair's signing certificate changes, the old one is revoked."""
        for pair in self.sim.authority.pairs():
            old = self.sign_of_pair.get(pair.pair_id)
            if old is not None and pair.sign_serial != old:
                assert old in self.revoked, f"{pair.pair_id} replaced {old:X}, not revoked"
            self.sign_of_pair[pair.pair_id] = pair.sign_serial

    def check_transitions(self) -> None:
        """15.8: each pair's history follows TRANSITIONS from NONE, in time order."""
        state: dict[str, PairState] = {}
        last: dict[str, datetime] = {}
        for h in self.sim.authority.history():
            before = state.get(h["pair"], PairState.NONE)
            allowed = TRANSITIONS[before]
            ev = Event(h["event"])
            assert ev in allowed and allowed[ev] is PairState(h["state"]), (
                f"{h['pair']}: {before.value} --{ev.value}--> {h['state']} is not in 15.8")
            assert h["at"] >= last.get(h["pair"], h["at"]), f"history out of time order: {h}"
            state[h["pair"]], last[h["pair"]] = PairState(h["state"]), h["at"]
        for pair in self.sim.authority.pairs():
            assert state.get(pair.pair_id, PairState.NONE) is pair.state

    def check_ses_match_the_authority(self) -> None:
        """Once a phone has run its SE jobs (none waiting), its SE holds what the authority
        says: an ACTIVE pair usable, an ON_HOLD pair locked (S3), a revoked one deleted."""
        phone_of = {p.se_id: p for p in self.phones}
        for pair in self.sim.authority.pairs():
            phone = phone_of[pair.se_id]
            if phone.se is None or self.sim.authority.jobs(pair.se_id):
                continue
            entry = jpki_entry(phone)
            held = {c.serial_number for c in phone_certs(phone).values()}
            where = f"{phone.name} ({pair.state.value} pair {pair.pair_id})"
            if pair.state is PairState.ACTIVE:
                assert entry is not None and not gp.is_locked(entry.life_cycle), where
                assert held == set(pair.serials()), f"{where}: SE holds {held}"
            elif pair.state is PairState.ON_HOLD:
                assert entry is not None and gp.is_locked(entry.life_cycle), where
                assert pair.auth_serial in held, where
            elif pair.state is PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN:
                assert entry is not None and not gp.is_locked(entry.life_cycle), where
                assert pair.auth_serial in held, where
            elif pair.state is PairState.REVOKED and pair.auth_serial is not None:
                assert pair.auth_serial not in held, f"{where}: not deleted"

    def check_no_secrets_stored_or_sent(self) -> None:
        """15.2 A5: PINs and passwords never go on the wire or into the authority's file."""
        for record in self.sim.wire.records[self.scanned_records:]:
            found = self.secrets.in_record(record)
            assert found is None, (f"{found} is in wire record {record.get('seq')}: "
                                   f"{json.dumps(record)[:300]}")
        path = Path(self.sim.store.path)
        for part in (path, Path(f"{path}-wal")):
            if part.exists():
                found = self.secrets.in_file(part.read_bytes())
                assert found is None, f"{found} is in {part.name}"

    def check_no_private_key_on_the_wire(self) -> None:
        records = self.sim.wire.records
        self.scan_for_windows(records[self.scanned_records:], self.windows)
        self.scanned_records = len(records)

    @staticmethod
    def scan_for_windows(records: list[dict[str, Any]], windows: set[bytes]) -> None:
        if not windows:
            return
        for record in records:
            for data in apdu_bytes(record):
                for i in range(len(data) - WINDOW + 1):
                    assert data[i:i + WINDOW] not in windows, (
                        f"APDU record {record.get('seq')} carries private key bytes")


TestServiceSequences = ServiceMachine.TestCase
TestServiceSequences.settings = settings(
    max_examples=12, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_the_secrets_cannot_be_confused_with_other_data() -> None:
    """The scans above can only fail for a real leak: the passwords contain letters outside
    hex, the PINs are no year and are not in the fixed holders' data (whose 4-digit
    security code lives in the database), and each form is found where it would leak."""
    pins = {v for values in PEOPLE.values() for k, v in values.items() if k.endswith("pin")}
    assert len(pins) == 4 and all(len(p) == 4 and not 1900 <= int(p) <= 2100 for p in pins)
    for values in PEOPLE.values():
        for kind, value in values.items():
            if kind.endswith("password"):
                assert re.search(r"[G-Z]", value) and 12 <= len(value) <= 16
    holders = json.dumps([holder_to_json(synthetic_holder(s)) for s in HOLDER_SEEDS.values()],
                         ensure_ascii=False)
    scan = SecretScanner({"pin": "7391", "pw": PEOPLE["aoi"]["phone_password"]})
    assert SecretScanner(dict.fromkeys(pins, "pin")).in_file(holders.encode()) is None
    assert scan.in_file(b'\x00\x17{"pin": "7391"}') == "pin"
    assert scan.in_file(b"x 37333931 y") == "pin"
    assert scan.in_file(b"A1F73910 2025-10-06 serial 5F7391AB 1234-5678") is None
    assert scan.in_file(b"..." + PEOPLE["aoi"]["phone_password"].encode().hex().encode()) == "pw"
    assert scan.in_record({"type": "message", "request": {"pin": "7391"}}) == "pin"
    assert scan.in_record({"type": "message", "request": {"p": "AB" + b"7391".hex()}}) == "pin"
    assert scan.in_record({"type": "exchange", "command": "0020008004" + b"7391".hex(),
                           "response": "9000"}) == "pin"
    assert scan.in_record({"type": "exchange", "command": "0020008004********",
                           "response": "9000"}) is None
    assert scan.in_record({"type": "message", "duration_ms": 7391.5, "seq": 7391,
                           "path": "/v1/applications/app-7391aa", "nonce": "AB7391CD"}) is None
    assert scan.in_record({"type": "exchange", "command": "00", "response": PEOPLE["aoi"][
        "phone_password"].encode().hex().upper() + "9000"}) == "pw"


# -- bugs the machine found (fixed), pinned ----------------------------------------------------------

@pytest.fixture
def sim() -> Iterator[Simulation]:
    with new_simulation() as s:
        add_people(s)
        yield s


@pytest.mark.parametrize("job", ["delete", "lock"])
def test_stale_se_jobs_do_not_hit_a_new_applet(sim: Simulation, job: str) -> None:
    """Spec 5, 15.4 S3, 15.6: a job queued for a pair that is gone (delete after a newer
    phone superseded it, lock after a hold reported while offline) must not act on the pair
    registered later on the same phone."""
    aoi = sim.person("aoi")
    first = sim.add_phone("first", aoi)
    registered(sim, first)
    first.online = False
    if job == "delete":
        registered(sim, sim.add_phone("second", aoi))  # first superseded: delete queued
    else:
        sim.report_loss(aoi)  # hold while offline: lock queued
    assert sim.authority.jobs(first.se_id) == [job]
    first.online = True
    registered(sim, first)  # the app registers without syncing first (its register())
    first.app.sync()
    pair = sim.authority.live_pair(aoi.pid)
    assert pair is not None and pair.state is PairState.ACTIVE and pair.se_id == first.se_id
    assert applet_usable(first), f"the {job} job of the old pair hit the new applet"
    assert first.app.login().ok


def test_a_second_loss_call_does_not_stop_the_calendar(sim: Simulation) -> None:
    """9.1 MODEL: calls while the hotline is closed are acted on at the next opening; a
    second call about the same loss must not break the calendar."""
    aoi = sim.person("aoi")
    registered(sim, sim.add_phone("phone", aoi))
    sim.set_time(datetime.fromisoformat("2025-10-10T13:00:00+00:00"))  # Fri 22:00 JST: closed
    sim.report_loss(aoi)
    sim.report_loss(aoi)  # called again, the same night
    target = datetime.fromisoformat("2025-10-11T03:00:00+00:00")
    try:
        sim.set_time(target)
    finally:
        assert sim.now() == target
    assert sim.authority.live_pair(aoi.pid).state is PairState.ON_HOLD


def test_a_second_person_on_a_phone(sim: Simulation) -> None:
    """Spec 5, 15.2 C3: the SE has one JPKI applet. When ren registers on the phone that
    holds aoi's live pair, the authority's TSM deletes aoi's keys; aoi's pair must not stay
    ACTIVE with good certificates nobody holds (revoke it, or refuse the registration)."""
    aoi, ren = sim.person("aoi"), sim.person("ren")
    phone = sim.add_phone("shared", aoi)
    registered(sim, phone)
    aoi_serials = {c.serial_number for c in phone_certs(phone).values()}
    try:
        registered(sim, phone, "ren")
    except WorkbenchError:
        pass  # refusing is one correct answer
    pair = sim.authority.live_pair(aoi.pid)
    in_se = {c.serial_number for c in phone_certs(phone).values()}
    good = {s for s in aoi_serials
            if sim.store.registry.certificates(serial=s)[0].state is CertState.GOOD}
    assert pair is None or good <= in_se, (
        f"aoi's pair is {pair.state.value}, its good certificates are gone from the SE "
        f"(now ren's: {sim.authority.live_pair(ren.pid) is not None})")


def test_a_superseded_application_cannot_be_registered(sim: Simulation) -> None:
    """Spec 5, 15.2 C13: once a newer registration superseded an application, registering it
    must be refused before anything is issued: otherwise the person ends up with good
    certificates on two phones, and relying parties accept both."""
    aoi = sim.person("aoi")
    x, y = sim.add_phone("x", aoi), sim.add_phone("y", aoi)
    x.app.apply(aoi)
    y.app.apply(aoi)
    sim.advance(timedelta(minutes=3))
    status, answer = sim.authority.handle("GET", f"/v1/applications/{x.app.application_id}", {})
    assert (status, answer["state"]) == (200, "READY_FOR_REGISTRATION")  # the app polls
    assert y.app.register().ok  # supersedes x's application (C13)
    issued = len(sim.store.registry.certificates())
    with pytest.raises((AppError, ServiceError), match="apply again"):
        x.app.register()
    assert len(sim.store.registry.certificates()) == issued, "certificates issued anyway"
    accepted = [p.name for p in (x, y) if applet_usable(p) and p.app.login().ok]
    assert accepted == ["y"], f"relying parties accept aoi's certificates on {accepted}"


def test_registration_after_the_card_expired_is_refused_before_the_se_is_touched(
        sim: Simulation) -> None:
    """Spec 6, 15.2 B-C: phone certificates follow the card's validity. An application
    registered after the card's certificates expired must be refused with a reason the user
    can act on (renew the card), before the TSM deletes what the SE holds."""
    ren = sim.person("ren")
    phone = sim.add_phone("phone", ren)
    registered(sim, phone)
    assert phone.app.apply(ren).ok  # applied again, registered only years later
    sim.set_time(ren.card.certificates()["auth"].not_valid_after_utc + timedelta(days=1))
    before = (jpki_entry(phone), {k: c.serial_number for k, c in phone_certs(phone).items()})
    with pytest.raises(ServiceError) as refused:
        phone.app.register()
    assert "expired" in str(refused.value) and refused.value.status < 500, refused.value
    assert (jpki_entry(phone), {k: c.serial_number for k, c in phone_certs(phone).items()}
            ) == before


def test_the_calendar_acts_on_events_in_time_order(sim: Simulation) -> None:
    """9.1, 15.8: "due events happen on the way at their own time". A loss reported on the
    last evening of the pair's validity (hotline closed) reaches the hotline the next
    morning, after Not After: the pair has expired by then and cannot be put on hold, and
    its history must not go back in time."""
    aoi = sim.person("aoi")
    registered(sim, sim.add_phone("phone", aoi))
    pair = sim.authority.live_pair(aoi.pid)
    sim.set_time(pair.not_after - timedelta(hours=1))  # 23:00 JST, closed until 09:30
    call = sim.report_loss(aoi)
    assert call.acted_at > pair.not_after
    sim.advance(timedelta(hours=12))
    history = sim.authority.history(pair.pair_id)
    assert [h["at"] for h in history] == sorted(h["at"] for h in history), history[-2:]
    assert [h["event"] for h in history][-1:] == ["expiry"]

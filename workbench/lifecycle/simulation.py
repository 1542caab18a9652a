"""One simulated world of the smartphone certificate service, on a controllable calendar.

:class:`Simulation` puts the parts together: a stored authority (SQLite, in a folder of its
own) with its service side (:class:`~workbench.lifecycle.authority.ServiceAuthority`), the
OCSP responder and CRL repository, the relying services of spec 11.1, the hotline with its
schedule (9.1), people with plastic cards, phones with secure elements and the Mynaportal app,
and the :class:`~workbench.lifecycle.wire.Wire` that records everything they say to each other.

The clock is a :class:`~workbench.pki.FixedClock`: nothing moves unless :meth:`advance` (or
:meth:`set_time`) moves it, and every due event happens on the way, stamped with its own time:
a loss reported while the hotline is closed is acted on at the next opening, pairs expire at
their Not After. Events go to :attr:`log` (one row each: calendar time, actor, what,
facts), which :meth:`events_frame` turns into a DataFrame with the registry's view.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.hazmat.primitives.asymmetric import rsa

from workbench.card.token import Token
from workbench.errors import WorkbenchError
from workbench.holder import Holder
from workbench.lifecycle.actors import AUTHORITY, AppError, MynaportalApp, Person, Phone, Secret
from workbench.lifecycle.authority import ServiceAuthority, ServiceError
from workbench.lifecycle.calendar import HotlineSchedule, schedule
from workbench.lifecycle.devices import find_model
from workbench.lifecycle.issuance import issue_card
from workbench.lifecycle.relying import REPOSITORY, Reader, RelyingParty, repository_handler
from workbench.lifecycle.services import SERVICES
from workbench.lifecycle.states import Event
from workbench.lifecycle.wire import HttpHandler, Wire
from workbench.pki import AuthorityProfile, AuthorityStore, FixedClock, RevocationReason
from workbench.pki.clock import FileClock
from workbench.pki.holder import synthetic_holder
from workbench.pki.keys import derive_seed, generate_rsa_key
from workbench.pki.ocsp import OcspResponder
from workbench.se import SecureElement, gp
from workbench.timing import TimingModel

__all__ = ["DEFAULT_START", "HotlineCall", "Simulation", "SimulationError"]

#: Default start of a simulation: a weekday morning after every service of 11.1 has started.
DEFAULT_START = datetime(2025, 10, 6, 1, 0, tzinfo=UTC)  # Monday 10:00 JST
#: The repository's base URL put in certificates (never fetched: the wire carries requests).
REPOSITORY_URL = "http://repository.jpki-workbench.invalid"


#: The NFC transceive timeout the Mynaportal app sets (15.2 A4: "at least 5 s"; MODEL: 5 s).
APP_NFC_TIMEOUT_MS = 5000.0


class SimulationError(WorkbenchError):
    """A simulation was asked something impossible (unknown person, clock backwards, …)."""


@dataclass(frozen=True)
class HotlineCall:
    """A loss reported to the hotline: when it was called, when it is acted on (the next
    opening if closed), and whether the owner asked to revoke instead of hold."""

    person: str
    called_at: datetime
    acted_at: datetime
    revoke: bool
    schedule: str


class Simulation:
    """The world (module docstring). ``folder`` keeps the authority database and images
    (default: a temporary folder removed with the object); ``seed`` makes people, cards and
    SEs reproducible too (slow: seeded RSA keys are derived in pure Python). The authority's
    CA keys are always seeded (from ``seed``, or a fixed simulation seed), so they come from
    the seeded-key cache (:func:`workbench.pki.keys.key_cache_folder`) after the first run;
    ``revocation`` is ``"ocsp"`` or ``"crl"`` for every relying service,
    ``revocation_by_service`` overrides it per service key; ``crl_cache``
    how long a CRL-checking service keeps a downloaded CRL (default: until nextUpdate).
    ``key_source`` (label → RSA key) replaces the generation of card and SE keys, for scale
    benchmarks with a pool of pre-generated test keys only. ``clock``: a
    :class:`~workbench.pki.FileClock` shares the calendar with other processes (``pki serve
    --clock FILE`` answering the application API over HTTP); it is set to ``start``.
    """

    def __init__(self, *, start: datetime = DEFAULT_START, folder: str | Path | None = None,
                 seed: int | None = None, hotline: str | HotlineSchedule = "itmedia-2023",
                 issuance_delay: timedelta = timedelta(minutes=2),
                 crl_interval: timedelta = timedelta(hours=24),
                 revocation: str = "ocsp", revocation_by_service: dict[str, str] | None = None,
                 crl_cache: timedelta | None = None, timing: TimingModel | None = None,
                 key_source: Callable[[str], rsa.RSAPrivateKey] | None = None,
                 clock: FixedClock | FileClock | None = None) -> None:
        if start.tzinfo is None:
            raise SimulationError("start must be an aware datetime (e.g. ...tzinfo=UTC)")
        self._tmp = tempfile.TemporaryDirectory(prefix="jpki-sim-") if folder is None else None
        self.folder = Path(self._tmp.name if self._tmp else folder)  # type: ignore[arg-type]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.key_source = key_source
        self.clock = clock if clock is not None else FixedClock(start)
        if clock is not None:
            self.clock.set(start)
        profile = AuthorityProfile(repository_url=REPOSITORY_URL, ocsp_aia=True,
                                   crl_interval=crl_interval)
        self.store = AuthorityStore.open(self.folder / "authority.db", create=True,
                                         profile=profile, clock=self.clock,
                                         seed=derive_seed("simulation" if seed is None else seed,
                                                          "ca"))
        self.authority = ServiceAuthority(self.store, seed=seed, issuance_delay=issuance_delay)
        self.responder = OcspResponder(self.store.authority, self.store.registry, clock=self.clock)
        # the Mynaportal app raises IsoDep's 618 ms default to at least 5 s (15.2 A4; MODEL:
        # exactly 5 s); pass ``timing`` for another host timeout
        self.wire = Wire(self.clock.now, timing or TimingModel(host_timeout_ms=APP_NFC_TIMEOUT_MS))
        self.hotline = hotline if isinstance(hotline, HotlineSchedule) else schedule(hotline)
        self.repository: HttpHandler = repository_handler(self.store, self.responder.respond)
        methods = dict(revocation_by_service or {})
        unknown = set(methods) - set(SERVICES)
        if unknown:
            raise SimulationError(f"unknown services {sorted(unknown)}; known: "
                                  f"{', '.join(SERVICES)}")
        for method in (revocation, *methods.values()):
            if method not in ("ocsp", "crl"):
                raise SimulationError(f"revocation must be 'ocsp' or 'crl', not {method!r}")
        self.services: dict[str, RelyingParty] = {
            key: RelyingParty(spec, store=self.store, wire=self.wire, repository=self.repository,
                              revocation=methods.get(key, revocation), crl_cache=crl_cache,
                              seed=None if seed is None else derive_seed(seed, "rp", key))
            for key, spec in SERVICES.items()}
        self.hosts: dict[str, HttpHandler] = {AUTHORITY: self.authority.handle,
                                              REPOSITORY: self.repository,
                                              **{k: rp.handle for k, rp in self.services.items()}}
        self.people: dict[str, Person] = {}
        self.phones: dict[str, Phone] = {}
        self._phone_of_se: dict[str, Phone] = {}  # se_id → phone, for pushes (O(1) at scale)
        self.log: list[dict[str, Any]] = []
        self._reports: list[HotlineCall] = []
        self._card_serials: list[tuple[str, str, int]] = []  # every card certificate issued
        #: reach online phones at once when the service has SE jobs for them (a push); a
        #: scenario run turns this off and delivers pushes itself, so its trace marks them
        self.auto_push = True

    def close(self) -> None:
        self.store.close()
        for phone in self.phones.values():
            if phone.se is not None:
                phone.se.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Simulation({self.now().isoformat()}, {len(self.people)} people, "
                f"{len(self.phones)} phones, hotline {self.hotline.name})")

    # -- the calendar -----------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def note(self, actor: str, what: str, **facts: Any) -> None:
        """One line in the event log (and a NOTE on the wire)."""
        # after: the authority's newest history row when this happened, to put the log and
        # the history in the order things happened where their calendar times are equal
        self.log.append({"calendar": self.now(), "actor": actor, "what": what, **facts,
                         "_after": self.authority.last_history_seq()})
        self.wire.note(f"{actor}: {what}", **facts)

    def advance(self, delta: timedelta) -> datetime:
        """Move the calendar forward; due events happen on the way at their own time."""
        if delta < timedelta(0):
            raise SimulationError("the calendar only moves forward")
        return self.set_time(self.now() + delta)

    def set_time(self, when: datetime) -> datetime:
        """Move the calendar to ``when`` (not backwards), acting on due events in order."""
        if when.tzinfo is None:
            raise SimulationError("times must be aware datetimes")
        if when < self.now():
            raise SimulationError(f"the calendar only moves forward (now "
                                  f"{self.now():%Y-%m-%d %H:%M}, asked {when:%Y-%m-%d %H:%M})")
        # due events happen on the way at their own time (15.8): before each waiting hotline
        # call, the issuances and expiries that fell before it
        for call in sorted(self._reports, key=lambda c: c.acted_at):
            if call.acted_at <= when:
                self.clock.set(max(call.acted_at, self.now()))
                self._catch_up()
                self._reports.remove(call)
                self._act_on(call)
        self.clock.set(when)
        self._catch_up()
        return when

    def _catch_up(self) -> None:
        self.authority.issue_due()
        for pair in self.authority.expire_due():
            self.note("authority", "pair expired", pair=pair.pair_id)

    # -- people and phones ----------------------------------------------------------------

    def add_person(self, name: str, *, holder: Holder | None = None,
                   card_password: str = "ABC123", card_pin: str = "1234",
                   phone_password: str = "PHONE7", phone_pin: str = "5678") -> Person:
        """A person with a new plastic card from the authority (enrolled in the person
        registry) and the secrets they will use. Only synthetic people."""
        if name in self.people:
            raise SimulationError(f"there is already a person called {name!r}")
        if holder is None:
            holder = synthetic_holder(None if self.seed is None
                                      else derive_seed(self.seed, "person", name))
        card = self._new_card(holder, card_password, card_pin)
        person = Person(name, holder, card, Secret(card_password), Secret(card_pin),
                        Secret(phone_password), Secret(phone_pin))
        person.pid = self.authority.enrol_card(holder, card.certificates())
        self.people[name] = person
        self.note("municipality", "card issued", person=name, card=card.label)
        return person

    def _new_card(self, holder: Holder, password: str, pin: str) -> Token:
        card = issue_card(self.store, "icc", holder=holder, auth_pin=pin, sign_password=password,
                          issued_at=self.now(), key_source=self.key_source,
                          seed=None if self.seed is None else self._seed_int("card", holder))
        self._card_serials.extend(
            (holder.individual_number, kind, cert.serial_number)
            for kind, cert in card.certificates().items() if kind in ("sign", "auth"))
        return card

    def _seed_int(self, *labels: Any) -> int:
        assert self.seed is not None
        raw = derive_seed(self.seed, *(str(x) for x in labels), str(len(self.log)))
        return int.from_bytes(raw[:8], "big")

    def add_phone(self, name: str, owner: str | Person, model: str = "Pixel 7", *,
                  app_version: int = 60, os_version: str | None = None,
                  online: bool = True) -> Phone:
        """A phone of a catalogue ``model`` for ``owner``: an SE fresh from the factory (JPKI
        SSD with the TSM's keys, which the SE issuer gives the TSM) if the model has a GP-SE."""
        if name in self.phones:
            raise SimulationError(f"there is already a phone called {name!r}")
        person = self.person(owner)
        device = find_model(model)
        se = None
        if device.os == "Android" and device.gp_se:
            se = SecureElement.factory(
                seed=None if self.seed is None else derive_seed(self.seed, "se", name),
                keygen=self._se_keygen(name))
            se.power_on()
        phone = Phone(name, device, se, owner=person, os_version=os_version,
                      app_version=app_version)
        if se is not None:
            self.authority.enrol_se(phone.se_id, se.key_sets[gp.JPKI_SSD_AID][0])
        phone.online = online
        phone.app = MynaportalApp(phone, self.wire, self.hosts)
        self.phones[name] = phone
        self._phone_of_se.setdefault(phone.se_id, phone)
        self.note(person.name, "phone bought", phone=name, model=device.model)
        return phone

    def _se_keygen(self, phone: str) -> Callable[[int], rsa.RSAPrivateKey] | None:
        """Key generation inside a phone's SE: the key source of a benchmark, seeded keys for
        a seeded simulation (every generation its own seed, so a re-issued key is new), else
        the SE's own (random) generator."""
        source = self.key_source
        if source is not None:
            return lambda fid: source(f"se:{fid:04X}")
        if self.seed is None:
            return None
        seed = self.seed
        counter = iter(range(1 << 30))
        return lambda fid: generate_rsa_key(derive_seed(seed, "se-key", phone, str(fid),
                                                        str(next(counter))))

    def person(self, who: str | Person) -> Person:
        if isinstance(who, Person):
            return who
        try:
            return self.people[who]
        except KeyError:
            raise SimulationError(f"no person {who!r}; known: {', '.join(self.people) or 'none'}"
                                  ) from None

    def phone(self, which: str | Phone) -> Phone:
        if isinstance(which, Phone):
            return which
        try:
            return self.phones[which]
        except KeyError:
            raise SimulationError(f"no phone {which!r}; known: {', '.join(self.phones) or 'none'}"
                                  ) from None

    def reader(self, service: str) -> Reader:
        """An external reader of ``service`` (clinic, copier)."""
        return Reader(self.service(service), self.wire)

    def service(self, key: str) -> RelyingParty:
        try:
            return self.services[key]
        except KeyError:
            raise SimulationError(f"no relying service {key!r}; known: {', '.join(self.services)}"
                                  ) from None

    # -- the hotline and the municipal office ------------------------------------------------

    def report_loss(self, who: str | Person, *, revoke: bool = False) -> HotlineCall:
        """The owner calls the hotline (9.1, 15.4 S1): acted on now if it is open, else at
        the next opening (MODEL). ``revoke``: ask for revocation instead of a hold (the
        phone will not be found)."""
        person = self.person(who)
        now = self.now()
        call = HotlineCall(person.name, now, self.hotline.next_opening(now), revoke,
                           self.hotline.name)
        self.note("hotline", "loss reported" if call.acted_at == now else
                  "loss reported while closed; acted on at the next opening",
                  person=person.name, acted_at=call.acted_at.isoformat())
        if call.acted_at <= now:
            self._act_on(call, queued=False)  # the operator answers at once: refusals raise
        else:
            self._reports.append(call)
        return call

    def _act_on(self, call: HotlineCall, *, queued: bool = True) -> None:
        person = self.people[call.person]
        try:
            pair = self.authority.hotline(person.pid, revoke=call.revoke, at=self.now(),
                                          invalid_since=call.called_at if call.revoke else None)
        except ServiceError as exc:  # e.g. a second call about a loss already on hold
            if not queued:
                raise
            # a call waiting for the opening must not stop the calendar half-way
            self.note("hotline", f"nothing done: {exc}", person=call.person)
            return
        if pair is None:
            self.note("hotline", "nothing to suspend: no live phone certificates",
                      person=call.person)
            return
        self.note("hotline", "certificates revoked" if call.revoke else "certificates on hold",
                  person=call.person, pair=pair.pair_id)
        if self.auto_push:
            self.push(pair.se_id)

    def push(self, se_id: str) -> list[str]:
        """The TSM reaches a phone that is online (a push to the app): its jobs run now."""
        phone = self._phone_of_se.get(se_id)
        if phone is not None and phone.online and phone.se is not None:
            try:
                return phone.app.sync()
            except (AppError, WorkbenchError) as exc:
                self.note("tsm", f"push failed: {exc}", phone=phone.name)
        return []

    def change_basic_facts(self, who: str | Person, **changes: Any) -> Person:
        """A 4-basic-facts change (moving, marriage; spec 10): the municipality revokes the
        card signing certificate (affiliationChanged), the phone signing certificate goes
        with it (MODEL), the phone auth certificate stays; the card gets a new signing
        certificate.

        MODEL: the simulation re-issues the card with the new facts instead of re-writing
        only its signing certificate, so the card's auth certificate is replaced too: the old
        one is revoked as superseded, so that no certificate stays good that no card holds.
        A real card keeps its auth certificate through a change of address."""
        person = self.person(who)
        holder = _replace_holder(person.holder, **changes)  # checked before anything changes
        if holder == person.holder:
            raise SimulationError("nothing changed: give a new name, address, birth date or sex")
        old = person.card.certificates()
        self.store.registry.revoke(old["sign"].serial_number,
                                   RevocationReason.AFFILIATION_CHANGED)
        if "auth" in old:
            self.store.registry.revoke(old["auth"].serial_number, RevocationReason.SUPERSEDED)
        self.authority.card_event(person.pid, Event.BASIC_FACTS_CHANGED)
        person.holder = holder
        person.card = self._new_card(holder, person.card_password.reveal(),
                                     person.card_pin.reveal())
        self.authority.enrol_card(holder, person.card.certificates())
        self.note("municipality", "4 basic facts changed; card signing certificate renewed",
                  person=person.name, changed=sorted(changes))
        return person

    def renew_card(self, who: str | Person) -> Person:
        """Card (and certificate) renewal: a new card; the phone pair keeps its old Not After
        and must be applied for again (15.7)."""
        person = self.person(who)
        old = person.card.certificates()
        for kind in ("sign", "auth"):
            if kind in old:
                self.store.registry.revoke(old[kind].serial_number, RevocationReason.SUPERSEDED)
        person.card = self._new_card(person.holder, person.card_password.reveal(),
                                     person.card_pin.reveal())
        self.authority.enrol_card(person.holder, person.card.certificates())
        self.note("municipality", "card renewed", person=person.name)
        return person

    def death_or_abroad(self, who: str | Person) -> None:
        """Death or moving abroad: every certificate of the person revoked (15.7)."""
        person = self.person(who)
        for kind, cert in person.card.certificates().items():
            if kind in ("sign", "auth"):
                self.store.registry.revoke(cert.serial_number,
                                           RevocationReason.CESSATION_OF_OPERATION)
        self.authority.card_event(person.pid, Event.DEATH_OR_ABROAD)
        self.note("municipality", "death or moving abroad registered", person=person.name)

    # -- views --------------------------------------------------------------------------------

    def certificate_states(self) -> pd.DataFrame:
        """Every card and phone certificate of the simulation, including replaced ones, with
        its registry state now (person, token, certificate kind, serial, state, reason)."""
        owners: dict[int, tuple[str, str, str]] = {}
        by_number = {p.holder.individual_number: p.name for p in self.people.values()}
        for number, kind, serial in self._card_serials:
            owners[serial] = (by_number.get(number, "?"), "card", kind)
        phones = {p.se_id: p.name for p in self.phones.values()}
        people = {p.pid: p.name for p in self.people.values()}
        for cert in self.authority.certificates():
            owners[cert["serial"]] = (people.get(cert["person"], cert["person"]),
                                      phones.get(cert["se_id"], cert["se_id"]), cert["kind"])
        rows = []
        for rec in self.store.registry.certificates():
            if rec.serial not in owners:
                continue
            person, where, kind = owners[rec.serial]
            status = self.store.registry.status(rec.issuer_key_id, rec.serial, self.now())
            rows.append({"person": person, "token": where, "certificate": kind,
                         "serial": f"0x{rec.serial:X}", "state": status.state.value,
                         "reason": status.reason.value if status.reason else ""})
        order = {s: i for i, s in enumerate(owners)}
        rows.sort(key=lambda r: order[int(r["serial"], 16)])
        return pd.DataFrame(rows, columns=["person", "token", "certificate", "serial", "state",
                                           "reason"])

    def events_frame(self) -> pd.DataFrame:
        """Pair state changes (from the authority's history) and the log, in calendar order."""
        rows = []
        phones = {p.se_id: p.name for p in self.phones.values()}
        people = {p.pid: p.name for p in self.people.values()}
        # at equal calendar times, the order things happened in: a history row (seq s) after
        # the log lines written before it (_after < s), before those written after it
        for entry in self.log:
            rows.append({"calendar": entry["calendar"], "actor": entry["actor"],
                         "what": entry["what"], "person": entry.get("person", ""),
                         "phone": entry.get("phone", ""), "pair": entry.get("pair", ""),
                         "state": "", "_order": 2 * entry.get("_after", 0) + 1})
        for h in self.authority.history():
            rows.append({"calendar": h["at"], "actor": "authority", "what": h["event"],
                         "person": people.get(h["person"], h["person"]),
                         "phone": phones.get(h["se_id"], h["se_id"]), "pair": h["pair"],
                         "state": h["state"], "_order": 2 * h["seq"]})
        columns = ["calendar", "actor", "what", "person", "phone", "pair", "state"]
        frame = pd.DataFrame(rows, columns=[*columns, "_order"])
        frame = frame.sort_values(["calendar", "_order"], kind="stable")
        return frame[columns].reset_index(drop=True)


def _replace_holder(holder: Holder, **changes: Any) -> Holder:
    allowed = {"family_name", "given_name", "birth_date", "sex", "prefecture", "municipality",
               "street", "municipality_code"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise SimulationError(f"cannot change {unknown[0]!r}; the 4 basic facts are "
                              f"{', '.join(sorted(allowed))}")
    try:
        return dataclasses.replace(holder, **changes)
    except (TypeError, ValueError, WorkbenchError) as exc:
        raise SimulationError(f"cannot change {sorted(changes)}: {exc}") from None

"""Running a scenario: a stepped run over a :class:`~workbench.lifecycle.Simulation`, its
trace, DataFrames and timing plot, saving it, and replaying a saved run.

Every action a step can name is in :data:`ACTIONS`, with its kind:

- ``client``: what the phone app or an external reader does (apply, register, login, sign,
  revoke, release, …). A replay re-runs these against the recorded answers.
- ``local``: a change to a phone in someone's hands (lost, found, offline, factory reset) or a
  new person or phone; a replay makes the same change to its stand-ins.
- ``world``: what happens at the authority, the hotline, the municipal office or a relying
  service's own check, and the calendar moving. A replay does not re-run these: their effect
  is in the recorded answers.

When the service reaches an online phone on its own (a hold locks the applet, a device change
deletes the old one), the run records a ``push`` and the app's sync that follows; a replay
re-runs that sync where the recording has it.

PINs and passwords never appear in step parameters: a step says ``pin="wrong"`` or
``new_value="new"`` and the run picks the values (:data:`WRONG_PIN`, :data:`NEW_PIN`, …),
which only ever travel masked.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import TraceDivergenceError, TraceFormatError, WorkbenchError
from workbench.lifecycle.actors import MynaportalApp, Person, Phone, Result, Secret
from workbench.lifecycle.devices import find_model
from workbench.lifecycle.simulation import DEFAULT_START, Simulation
from workbench.lifecycle.wire import ReplayWire, jsonable
from workbench.pki import FixedClock
from workbench.pki.crl import CRL_EPOCH
from workbench.scenarios.model import Scenario, ScenarioError, Step
from workbench.transport.trace import TraceHeader, dumps_line, load_trace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ACTIONS",
    "Action",
    "ReplayReport",
    "ScenarioRun",
    "StepResult",
    "replay_scenario",
    "run_scenario",
]

#: The values behind the symbolic PINs of step parameters (synthetic, test-only).
WRONG_PIN = "0000"
WRONG_PASSWORD = "WRONG9"
NEW_PIN = "2468"
NEW_PASSWORD = "NEWPW42"

COMPONENTS = ("air_ms", "card_ms", "host_ms", "network_ms")


@dataclass(frozen=True)
class Action:
    """A step action: its kind (module docstring) and what it does."""

    kind: str
    run: Callable[[Any, str, dict[str, Any]], Result | None]
    help: str


@dataclass(frozen=True)
class StepResult:
    """What one step did."""

    index: int
    step: Step
    outcome: str
    as_expected: bool
    calendar: datetime
    facts: Mapping[str, Any] = field(default_factory=dict)
    wall_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def __str__(self) -> str:
        mark = "✓" if self.as_expected else "✗"
        return f"{mark} {self.index:2d} {self.step.describe()}: {self.outcome}"


def _pin(phone: Phone, value: Any, which: str = "auth") -> Secret | None:
    if value in (None, "", "right"):
        return None
    if value == "wrong":
        right = (phone.owner.phone_pin if which == "auth" else phone.owner.phone_password)
        wrong = WRONG_PIN if which == "auth" else WRONG_PASSWORD
        return Secret(wrong if right.reveal() != wrong else "1111" if which == "auth"
                      else "WRONG8")
    if value == "new":
        return Secret(NEW_PIN if which == "auth" else NEW_PASSWORD)
    raise ScenarioError(f"a PIN in a step is 'right', 'wrong' or 'new' (never a value), not "
                        f"{value!r}")


def _outcome(step: Step, outcome: str) -> bool:
    kind = outcome.split(":", 1)[0]
    if kind != step.expect:
        return False
    return step.reason is None or step.reason.lower() in outcome.lower()


# -- actions ------------------------------------------------------------------------------------

def _a_person(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    person = run.world.add_person(actor)
    return Result.success(card=person.card.label)


def _a_buy_phone(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = run.world.add_phone(p["phone"], actor, p.get("model", "Pixel 7"),
                                app_version=int(p.get("app_version", 60)),
                                os_version=p.get("os_version"), online=p.get("online", True))
    return Result.success(model=phone.model.model, se=phone.se is not None)


def _phone(run: ScenarioRun, actor: str) -> Phone:
    return run.world.phone(actor)


def _a_apply(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    types = tuple(p.get("types", ("sign", "auth")))
    return phone.app.apply(phone.owner, types=types)


def _a_register(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    return _phone(run, actor).app.register()


def _a_login(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    return phone.app.login(p.get("service", "mynaportal-login"), pin=_pin(phone, p.get("pin")),
                           biometric=bool(p.get("biometric", False)))


def _a_sign(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    document = str(p.get("document", "tax return 2025")).encode()
    return phone.app.sign(document, p.get("service", "e-tax"),
                          password=_pin(phone, p.get("password"), "sign"))


def _a_prefill(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    return phone.app.prefill(p.get("service", "moving"),
                             password=_pin(phone, p.get("password"), "sign"))


def _a_revoke(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    return phone.app.revoke(password=_pin(phone, p.get("password"), "sign"),
                            why=str(p.get("why", "sale")))


def _a_release(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    return phone.app.release(phone.owner)


def _a_reset_pin(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    which = str(p.get("which", "auth"))
    result = phone.app.reset_pin(phone.owner, which,
                                 new_value=_pin(phone, p.get("new_value", "new"), which))
    new = _pin(phone, p.get("new_value", "new"), which)
    if new is not None:  # the person now knows the new value
        if which == "auth":
            phone.owner.phone_pin = new
        else:
            phone.owner.phone_password = new
    return result


def _a_enrol_biometrics(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    return _phone(run, actor).app.enrol_biometrics()


def _a_sync(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    return Result.success(jobs=_phone(run, actor).app.sync())


def _a_use_reader(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    service = actor.split(":", 1)[1] if ":" in actor else actor
    phone = _phone(run, p["phone"])
    return run.world.reader(service).use(phone, _pin(phone, p.get("pin")))


def _a_lose(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    phone.in_hand = False
    phone.online = bool(p.get("online", False))
    return Result.success(online=phone.online)


def _a_found(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    phone = _phone(run, actor)
    phone.in_hand = True
    phone.online = True
    return Result.success()


def _a_offline(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    _phone(run, actor).online = False
    return Result.success()


def _a_online(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    _phone(run, actor).online = True
    return Result.success()


def _a_factory_reset(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    _phone(run, actor).factory_reset()
    return Result.success()


def _a_advance(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    delta = timedelta(days=float(p.get("days", 0)), hours=float(p.get("hours", 0)),
                      minutes=float(p.get("minutes", 0)))
    run.sim.advance(delta)
    return Result.success(now=run.sim.now().isoformat())


def _a_until(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    target = p["time"]
    sim = run.sim
    if target == "next-opening":
        when = sim.hotline.next_opening(sim.now() + timedelta(seconds=1))
    elif target == "next-crl":
        interval = sim.store.authority.profile.crl_interval
        when = CRL_EPOCH + ((sim.now() - CRL_EPOCH) // interval + 1) * interval
    else:
        when = target if isinstance(target, datetime) else datetime.fromisoformat(str(target))
    sim.set_time(when)
    return Result.success(now=sim.now().isoformat())


def _a_report_loss(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    call = run.sim.report_loss(actor, revoke=bool(p.get("revoke", False)))
    return Result.success(acted_at=call.acted_at.isoformat(),
                          waited_h=round((call.acted_at - call.called_at).total_seconds() / 3600,
                                         2))


def _a_change_basic_facts(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    changes = {k: v for k, v in p.items() if k != "person"}
    run.sim.change_basic_facts(p["person"], **changes)
    return Result.success(changed=sorted(changes))


def _a_renew_card(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    run.sim.renew_card(p["person"])
    return Result.success()


def _a_death(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    run.sim.death_or_abroad(p["person"])
    return Result.success()


def _a_check(run: ScenarioRun, actor: str, p: dict[str, Any]) -> Result:
    """A relying service checks a certificate the phone holds (or held): ``which`` is
    ``current`` (what the SE holds now), ``first`` or ``previous`` (earlier ones seen)."""
    phone = _phone(run, p["phone"])
    kind = str(p.get("certificate", "auth"))
    which = str(p.get("which", "current"))
    seen = [c for k, c in run.seen.get(phone.name, []) if k == kind]
    if which == "current":
        cert = (phone.se.certificates() if phone.se is not None else {}).get(kind)
    elif which == "first":
        cert = seen[0] if seen else None
    elif which == "previous":
        cert = seen[-2] if len(seen) > 1 else None
    else:
        raise ScenarioError(f"which is current, first or previous, not {which!r}")
    if cert is None:
        return Result.refused(f"no {which} {kind} certificate on {phone.name}")
    verdict = run.sim.service(actor).check(cert, usage=kind)
    facts = {"serial": f"{cert.serial_number:X}", "revocation": verdict.revocation}
    if verdict.accepted:
        return Result.success(**facts)
    return Result.refused(verdict.reason, **facts)


ACTIONS: dict[str, Action] = {
    "person": Action("local", _a_person, "a person gets a plastic card (municipal office)"),
    "buy_phone": Action("local", _a_buy_phone, "the person gets a phone of a catalogue model"),
    "apply": Action("client", _a_apply, "application in the app with the card (15.2 A)"),
    "register": Action("client", _a_register, "registration into the SE (15.2 B3, C)"),
    "login": Action("client", _a_login, "in-app login to a service (15.3)"),
    "sign": Action("client", _a_sign, "sign a document for a service (15.3)"),
    "prefill": Action("client", _a_prefill, "pre-fill a form with the 4 basic facts"),
    "revoke": Action("client", _a_revoke, "user revocation in the app (8, 15.6)"),
    "release": Action("client", _a_release, "lift the suspension with the card (9.2, 15.5)"),
    "reset_pin": Action("client", _a_reset_pin, "reset a phone PIN with the card (15.7)"),
    "enrol_biometrics": Action("client", _a_enrol_biometrics, "set up biometric unlock (7)"),
    "sync": Action("client", _a_sync, "the app starts online and runs waiting SE jobs"),
    "use": Action("client", _a_use_reader, "an external reader reads the phone over RF"),
    "lose": Action("local", _a_lose, "the phone is lost (offline unless online=true)"),
    "found": Action("local", _a_found, "the phone is back in its owner's hand, online"),
    "offline": Action("local", _a_offline, "the phone goes offline"),
    "online": Action("local", _a_online, "the phone comes online (no app start yet)"),
    "factory_reset": Action("local", _a_factory_reset, "Android factory reset (SE survives)"),
    "advance": Action("world", _a_advance, "the calendar moves on"),
    "until": Action("world", _a_until, "the calendar moves to a time, next-opening or "
                    "next-crl"),
    "report_loss": Action("world", _a_report_loss, "the owner calls the hotline (9.1)"),
    "change_basic_facts": Action("world", _a_change_basic_facts, "4 basic facts change (10)"),
    "renew_card": Action("world", _a_renew_card, "the card and its certificates are renewed"),
    "death_or_abroad": Action("world", _a_death, "death or moving abroad is registered"),
    "check": Action("world", _a_check, "a relying service checks a phone certificate"),
}


# -- the replay's stand-ins ---------------------------------------------------------------------

class _RecordedToken:
    """A token that exists only in a recording: it has facts, never answers."""

    profile = "recorded"

    def __init__(self, label: str, meta: dict[str, Any]) -> None:
        self.atr = b""
        self._label = label
        self._meta = meta

    @property
    def label(self) -> str:
        return self._label

    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    @property
    def path(self) -> None:
        return None

    def transmit(self, apdu: bytes) -> bytes:  # pragma: no cover - ReplayWire never calls it
        raise WorkbenchError("a recorded token cannot answer")

    def power_on(self) -> bytes:  # pragma: no cover
        return b""

    reset = power_on

    def power_off(self) -> None:  # pragma: no cover
        return None

    def certificates(self) -> dict[str, Any]:
        return {}

    def pin_status(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        return None


class _ReplayWorld:
    """People and phones rebuilt from a trace header, talking over a :class:`ReplayWire`."""

    def __init__(self, records: list[dict[str, Any]], actors: Mapping[str, Any],
                 start: datetime) -> None:
        self.clock = FixedClock(start)
        self.wire = ReplayWire(records, self.clock.now)
        self.actors = actors
        self.people: dict[str, Person] = {}
        self.phones: dict[str, Phone] = {}
        self.hosts: dict[str, Any] = {}

    def add_person(self, name: str) -> Person:
        from workbench.pki.holder import synthetic_holder

        facts = self.actors.get("people", {}).get(name, {})
        person = Person(name, synthetic_holder(0), _RecordedToken(facts.get("card", ""), {}),
                        Secret("ABC123"), Secret("1234"), Secret("PHONE7"), Secret("5678"))
        self.people[name] = person
        return person

    def add_phone(self, name: str, owner: str, model: str, *, app_version: int = 60,
                  os_version: str | None = None, online: bool = True) -> Phone:
        facts = self.actors.get("phones", {}).get(name, {})
        device = find_model(model)
        se = _RecordedToken("", {"se_id": facts.get("se_id", "")}) if facts.get("se_id") \
            else None
        phone = Phone(name, device, se, owner=self.people[owner], os_version=os_version,
                      app_version=app_version, se_id=facts.get("se_id"))
        phone.online = online
        phone.app = MynaportalApp(phone, self.wire, _NoHosts())
        self.phones[name] = phone
        return phone

    def phone(self, name: str) -> Phone:
        return self.phones[name]

    def person(self, name: str) -> Person:
        return self.people[name]

    def reader(self, service: str) -> Any:
        from workbench.lifecycle.relying import Reader

        class _Party:
            key = service

            @staticmethod
            def handle(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                raise WorkbenchError("a replay never reaches a service")

        return Reader(_Party(), self.wire)  # type: ignore[arg-type]


class _NoHosts(dict):  # type: ignore[type-arg]
    """Every host exists in a replay; the replay wire answers for it."""

    def get(self, key: str, default: Any = None) -> Any:
        def unreachable(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict]:
            raise WorkbenchError("a replay never reaches a service")

        return unreachable


# -- a run ------------------------------------------------------------------------------------------

class ScenarioRun:
    """A scenario being run over a fresh :class:`Simulation` (module docstring).

    Step through it with :meth:`next` (or run the rest with :meth:`run`), look at
    :attr:`state`, start again with :meth:`reset`. :attr:`trace` is the recording,
    :attr:`steps`, :attr:`events`, :attr:`states` and :attr:`timing` are DataFrames,
    :meth:`plot` draws the modelled time by component, :meth:`save` writes everything.
    """

    def __init__(self, scenario: Scenario, values: Mapping[str, Any]) -> None:
        self.scenario = scenario
        self.values = dict(values)
        self._steps = scenario.filled_steps(self.values)
        self.sim: Simulation
        self.reset()

    # -- lifecycle of the run -----------------------------------------------------------------

    def _simulation(self) -> Simulation:
        v = self.values
        seed = v.get("seed")
        return Simulation(
            start=v.get("start") or DEFAULT_START,
            seed=None if seed in (None, -1) else int(seed),
            hotline=v.get("hotline", "itmedia-2023"),
            revocation=v.get("revocation", "ocsp"),
            revocation_by_service=dict(self.scenario.revocation_by_service),
            crl_interval=timedelta(hours=float(v.get("crl_interval_hours", 24))),
            issuance_delay=timedelta(minutes=float(v.get("issuance_delay_minutes", 2))),
        )

    def reset(self) -> ScenarioRun:
        """Start again from step 0 in a new simulation."""
        old = getattr(self, "sim", None)
        if old is not None:
            old.close()
        self.sim = self._simulation()
        self.sim.auto_push = False  # the run delivers pushes itself, recorded as such
        self.world: Any = self.sim
        self.results: list[StepResult] = []
        self.seen: dict[str, list[tuple[str, Any]]] = {}
        self._snapshots: list[dict[str, Any]] = []
        self._spans: list[tuple[int, int]] = []  # (first, end) wire record positions per step
        self.started = datetime.now(UTC)
        return self

    def close(self) -> None:
        self.sim.close()

    def __enter__(self) -> ScenarioRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"ScenarioRun({self.scenario.name!r}, step {self.position}/{len(self._steps)}, "
                f"{'all as expected' if self.ok else 'NOT as expected'})")

    @property
    def position(self) -> int:
        """Index of the next step."""
        return len(self.results)

    @property
    def finished(self) -> bool:
        return self.position >= len(self._steps)

    @property
    def ok(self) -> bool:
        """Every step so far came out as the scenario expects."""
        return all(r.as_expected for r in self.results)

    @property
    def pending(self) -> list[Step]:
        return self._steps[self.position:]

    @property
    def all_steps(self) -> list[Step]:
        return list(self._steps)

    def next(self) -> StepResult:
        """Run the next step; :class:`ScenarioError` when the run is finished."""
        if self.finished:
            raise ScenarioError(f"scenario {self.scenario.name} is finished ({len(self._steps)} "
                                "steps); reset() to run it again")
        index = self.position
        step = self._steps[index]
        action = ACTIONS.get(step.action)
        if action is None:
            raise ScenarioError(f"step {index}: unknown action {step.action!r}")
        wire = self.sim.wire
        first = len(wire.records)
        wire.step(index, step.actor, step.action, dict(step.params))
        t = time.perf_counter()
        facts: Mapping[str, Any] = {}
        world = action.kind == "world"
        if world:  # what the service side does is recorded as such (a replay skips it)
            wire._depth += 1
        try:
            result = action.run(self, step.actor, dict(step.params))
            outcome = result.outcome if result is not None else "ok"
            facts = dict(result.facts) if result is not None else {}
        except WorkbenchError as exc:
            outcome = f"error: {type(exc).__name__}: {exc}"
        finally:
            if world:
                wire._depth -= 1
        for se_id in self._pushes():
            phone = next(p for p in self.sim.phones.values() if p.se_id == se_id)
            wire._emit({"type": "push", "index": index, "phone": phone.name})
            try:
                phone.app.sync()
            except WorkbenchError as exc:
                self.sim.note("tsm", f"push to {phone.name} failed: {exc}")
        wall = (time.perf_counter() - t) * 1000
        expected = _outcome(step, outcome)
        wire._emit({"type": "outcome", "index": index, "outcome": outcome,
                    "ok": outcome == "ok", "expected": step.expect, "as_expected": expected})
        self._spans.append((first, len(wire.records)))
        result_obj = StepResult(index, step, outcome, expected, self.sim.now(),
                                jsonable(facts), round(wall, 3))
        self.results.append(result_obj)
        self._observe(index)
        return result_obj

    def _pushes(self) -> list[str]:
        """SEs the service would reach now: online phones with waiting jobs (a push)."""
        out = []
        for phone in self.sim.phones.values():
            if phone.online and phone.se is not None:
                if self.sim.authority.jobs(phone.se_id):
                    out.append(phone.se_id)
        return out

    def run(self) -> ScenarioRun:
        """Run every remaining step."""
        while not self.finished:
            self.next()
        return self

    def __iter__(self) -> Iterator[StepResult]:
        while not self.finished:
            yield self.next()

    def _observe(self, index: int) -> None:
        """After each step: the certificates every phone holds (for ``check``) and every
        certificate's state (:attr:`states`)."""
        for phone in self.sim.phones.values():
            if phone.se is None:
                continue
            held = self.seen.setdefault(phone.name, [])
            for kind, cert in phone.se.certificates().items():
                if kind in ("sign", "auth") and all(c.serial_number != cert.serial_number
                                                    for _, c in held):
                    held.append((kind, cert))
        frame = self.sim.certificate_states()
        for row in frame.to_dict("records"):
            self._snapshots.append({"step": index, "calendar": self.sim.now(), **row})

    @property
    def state(self) -> dict[str, Any]:
        """Where the run stands: calendar time, the next step, every pair's state."""
        people = {p.pid: p.name for p in self.sim.people.values()}
        phones = {p.se_id: p.name for p in self.sim.phones.values()}
        return {
            "scenario": self.scenario.name,
            "calendar": self.sim.now().isoformat(),
            "position": self.position,
            "steps": len(self._steps),
            "next": self._steps[self.position].describe() if not self.finished else None,
            "pairs": [{"person": people.get(p.person, p.person),
                       "phone": phones.get(p.se_id, p.se_id), "state": p.state.value}
                      for p in self.sim.authority.pairs()],
            "as_expected": self.ok,
        }

    # -- what the run produced ---------------------------------------------------------------

    @property
    def trace(self) -> list[dict[str, Any]]:
        """The header and every event (schema 2 of :mod:`workbench.transport.trace`)."""
        return [self.header().to_dict(), *self.sim.wire.records]

    def header(self) -> TraceHeader:
        phones = {name: {"model": p.model.model, "app_version": p.app_version,
                         "os_version": p.os_version, "se_id": p.se_id if p.se else None,
                         "owner": p.owner.name} for name, p in self.sim.phones.items()}
        people = {name: {"card": p.card.label} for name, p in self.sim.people.items()}
        try:
            tool_version = version("jpki-workbench")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            tool_version = ""
        return TraceHeader(
            tool_version=tool_version, created=self.started.isoformat(), profile=None,
            virtual=True, description=f"scenario {self.scenario.name}: {self.scenario.shows}",
            timing_model=self.sim.wire.timing.label,
            metadata={"scenario": self.scenario.name, "params": jsonable(self.values),
                      "actors": {"people": people, "phones": phones}})

    @property
    def steps(self) -> pd.DataFrame:
        """One row per step: actor, action, outcome, APDUs per channel, modelled time by
        component (air, card, host, network) and the wall time of the simulation."""
        rows = []
        records = self.sim.wire.records
        for result, (first, end) in zip(self.results, self._spans, strict=True):
            counts, times = _tally(records[first:end])
            rows.append({"index": result.index, "actor": result.step.actor,
                         "action": result.step.action,
                         "params": json.dumps(jsonable(dict(result.step.params)),
                                              ensure_ascii=False),
                         "expected": result.step.expect + (f" ({result.step.reason})"
                                                           if result.step.reason else ""),
                         "outcome": result.outcome, "as_expected": result.as_expected,
                         "calendar": result.calendar, **counts, **times,
                         "modelled_ms": round(sum(times.values()), 3),
                         "wall_ms": result.wall_ms})
        return pd.DataFrame(rows, columns=["index", "actor", "action", "params", "expected",
                                           "outcome", "as_expected", "calendar", "nfc", "omapi",
                                           "rf", "http", *COMPONENTS, "modelled_ms", "wall_ms"])

    @property
    def timing(self) -> pd.DataFrame:
        """One row per APDU or message: step, channel, device, what, modelled components."""
        from workbench.analysis import decode_scenario

        rows = []
        records = self.sim.wire.records
        decoded = decode_scenario(records)
        names = dict(zip(decoded["seq"], decoded["what"], strict=True))  # as the wire table says
        for result, (first, end) in zip(self.results, self._spans, strict=True):
            for rec in records[first:end]:
                if rec["type"] not in ("exchange", "message", "connect") or rec.get(
                        "channel") == "NOTE":
                    continue
                t = rec.get("timing", {})
                what = (rec.get("label") or names.get(rec["seq"]) or rec.get("command", "")[:10]
                        if rec["type"] ==
                        "exchange" else f"{rec.get('method', '')} {rec.get('host', '')}"
                        f"{rec.get('path', '')}" if rec["type"] == "message" else "activation")
                if t.get("timed_out"):
                    what += " (timed out)"
                rows.append({"step": result.index, "action": result.step.action,
                             "seq": rec["seq"], "channel": rec.get("channel"),
                             "device": rec.get("device"), "what": what,
                             "server_side": bool(rec.get("server_side")),
                             "air_ms": t.get("air_ms", 0.0) + t.get("wtx_ms", 0.0)
                             + t.get("activation_ms", 0.0),
                             "card_ms": t.get("card_ms", 0.0), "host_ms": t.get("host_ms", 0.0),
                             "network_ms": t.get("network_ms", 0.0)})
        return pd.DataFrame(rows, columns=["step", "action", "seq", "channel", "device", "what",
                                           "server_side", *COMPONENTS])

    @property
    def wire(self) -> pd.DataFrame:
        """Every APDU and message so far, decoded (:func:`workbench.analysis.decode_scenario`):
        step, channel, device, what, application, object, status first; raw bytes last."""
        from workbench.analysis import decode_scenario

        return decode_scenario(self.sim.wire.records)

    @property
    def events(self) -> pd.DataFrame:
        """Calendar events: pair state changes and what the hotline, municipality and
        authority did, in time order."""
        return self.sim.events_frame()

    @property
    def states(self) -> pd.DataFrame:
        """Every certificate's registry state after each step (long format)."""
        return pd.DataFrame(self._snapshots, columns=["step", "calendar", "person", "token",
                                                      "certificate", "serial", "state",
                                                      "reason"])

    def plot(self, ax: Any = None) -> Figure:
        """Modelled time of each step by component (air, card, host, network)."""
        from workbench.scenarios.plotting import timing_chart

        return timing_chart(self.steps, title=self.scenario.title, ax=ax)

    def summary(self) -> str:
        """One line per step: ✓/✗, index, step, outcome, modelled time."""
        frame = self.steps
        lines = [f"{self.scenario.name}: {self.scenario.shows}"]
        for row in frame.itertuples():
            mark = "✓" if row.as_expected else "✗"
            lines.append(f"{mark} {row.index:2d}  {row.actor:<16} {row.action:<18} "
                         f"{row.modelled_ms:9.1f} ms  {row.outcome}")
        lines.append("all steps as expected" if self.ok else "SOME STEPS NOT AS EXPECTED")
        return "\n".join(lines)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``trace.jsonl``, ``steps.csv``, ``events.csv``, ``states.csv`` and
        ``timing.png`` into ``folder`` (created if missing)."""
        out = Path(folder)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScenarioError(f"cannot create {out}: {exc.strerror or exc}") from None
        if not out.is_dir():
            raise ScenarioError(f"{out} is not a folder")
        tmp = out / ".trace.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for obj in self.trace:
                fh.write(dumps_line(obj))
        os.replace(tmp, out / "trace.jsonl")
        self.steps.to_csv(out / "steps.csv", index=False)
        self.events.to_csv(out / "events.csv", index=False)
        self.states.to_csv(out / "states.csv", index=False)
        fig = self.plot()
        fig.savefig(out / "timing.png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return out


def _tally(records: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, float]]:
    counts = {"nfc": 0, "omapi": 0, "rf": 0, "http": 0}
    times = dict.fromkeys(COMPONENTS, 0.0)
    for rec in records:
        t = rec.get("timing") or {}
        channel = rec.get("channel")
        if rec["type"] == "exchange":
            counts[str(channel).lower()] = counts.get(str(channel).lower(), 0) + 1
        elif rec["type"] == "message" and channel == "HTTP":
            counts["http"] += 1
        times["air_ms"] += t.get("air_ms", 0.0) + t.get("wtx_ms", 0.0) + t.get(
            "activation_ms", 0.0)
        times["card_ms"] += t.get("card_ms", 0.0)
        times["host_ms"] += t.get("host_ms", 0.0)
        times["network_ms"] += t.get("network_ms", 0.0)
    return counts, {k: round(v, 3) for k, v in times.items()}




def run_scenario(name: str, *, step: bool = False, **params: Any) -> ScenarioRun:
    """Run the scenario ``name`` with ``params`` (see :func:`workbench.scenarios.describe`);
    ``step=True`` returns the run before its first step, for stepping."""
    from workbench.scenarios.library import get

    scenario = get(name)
    run = ScenarioRun(scenario, scenario.values(params))
    return run if step else run.run()


# -- replay -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplayReport:
    """What a replay found: ``ok`` when every client step sent exactly what was recorded and
    came to the recorded outcome; else ``divergence`` says where, in one line."""

    scenario: str
    steps: pd.DataFrame
    divergence: str | None
    replayed: int
    skipped: int

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def __str__(self) -> str:
        def steps(n: int, kind: str) -> str:
            return f"{n} {kind} step{'' if n == 1 else 's'}"

        head = (f"replay of {self.scenario}: {steps(self.replayed, 'client')} re-run, "
                f"{steps(self.skipped, 'world')} taken from the recording (outcomes checked "
                "against their verdicts)")
        return head + ("; no divergence" if self.ok else f"; DIVERGED: {self.divergence}")


def replay_scenario(trace: str | os.PathLike[str]) -> ReplayReport:
    """Re-run the client side of a recorded scenario (a ``trace.jsonl`` or the folder
    :meth:`ScenarioRun.save` wrote) against the recorded answers (module docstring)."""
    from workbench.scenarios.library import get

    path = Path(trace)
    if path.is_dir():
        path = path / "trace.jsonl"
    if not path.exists():
        raise ScenarioError(f"no trace at {path}")
    header, records = load_trace(path)
    meta = header.metadata
    if "scenario" not in meta or "actors" not in meta:
        raise TraceFormatError(
            f"{path}: not a scenario trace (its header names no scenario run with its actors; "
            "a card session trace replays with workbench.transport.ReplayTransport)")
    scenario = get(str(meta["scenario"]))
    values = scenario.values({k: v for k, v in meta.get("params", {}).items()
                              if k in scenario.params})
    steps = scenario.filled_steps(values)
    raw = [{**r.data, "_line": r.line} for r in records]  # _line: for divergence reports
    by_step: dict[int, dict[str, Any]] = {}
    outcomes: dict[int, dict[str, Any]] = {}
    pushes: dict[int, list[str]] = {}
    for rec in raw:
        if rec["type"] == "step":
            by_step[rec["index"]] = rec
        elif rec["type"] == "outcome":
            outcomes[rec["index"]] = rec
        elif rec["type"] == "push":
            pushes.setdefault(rec["index"], []).append(rec["phone"])
    first = next((r for r in raw if r["type"] == "step"), None)
    start = datetime.fromisoformat(first["calendar"]) if first else datetime.now(UTC)
    world = _ReplayWorld(raw, meta.get("actors", {}), start)
    runner = _ReplayRunner(world)
    rows = []
    divergence: str | None = None
    replayed = skipped = 0
    for index, step in enumerate(steps):
        rec = by_step.get(index)
        recorded = outcomes.get(index, {}).get("outcome")
        if rec is None or recorded is None:
            divergence = (f"step {index} ({step.describe()}) is missing from the recording")
            break
        verdict = outcomes[index].get("as_expected")
        if verdict is not None and bool(verdict) != _outcome(step, recorded):
            # world steps are not re-run; their recorded outcome must at least agree with the
            # verdict recorded beside it under the scenario's own rule
            divergence = (f"step {index} ({step.describe()}): the recorded outcome {recorded!r} "
                          f"does not fit the recorded verdict (as_expected={bool(verdict)}; the "
                          f"scenario expects {step.expect!r})")
            break
        world.clock.set(datetime.fromisoformat(rec["calendar"]))
        kind = ACTIONS[step.action].kind
        got = recorded
        try:
            if kind in ("client", "local"):
                result = ACTIONS[step.action].run(runner, step.actor, dict(step.params))
                got = result.outcome if result is not None else "ok"
        except TraceDivergenceError as exc:
            first = world.wire.first_divergence or exc
            divergence = f"step {index} ({step.describe()}): {first}"
            got = "diverged"
        except WorkbenchError as exc:
            got = f"error: {type(exc).__name__}: {exc}"
        if divergence is None:
            for phone in pushes.get(index, []):
                try:
                    world.phones[phone].app.sync()
                except TraceDivergenceError as exc:
                    first = world.wire.first_divergence or exc
                    divergence = f"step {index} (push to {phone}): {first}"
                    got = "diverged"
                    break
                except WorkbenchError:
                    pass
        if kind == "client":
            replayed += 1
        elif kind == "world":
            skipped += 1
        rows.append({"index": index, "actor": step.actor, "action": step.action, "kind": kind,
                     "recorded": recorded, "replayed": got, "same": got == recorded})
        if divergence is None and got != recorded:
            divergence = (f"step {index} ({step.describe()}): recorded outcome {recorded!r}, "
                          f"the replay came to {got!r}")
        if divergence is not None:
            break
    if divergence is None and world.wire.remaining:
        divergence = (f"the recording holds {world.wire.remaining} more client APDUs or "
                      "messages than the replay sent")
    frame = pd.DataFrame(rows, columns=["index", "actor", "action", "kind", "recorded",
                                        "replayed", "same"])
    return ReplayReport(scenario.name, frame, divergence, replayed, skipped)


class _ReplayRunner:
    """What actions see during a replay: the stand-in world (``world``)."""

    def __init__(self, world: _ReplayWorld) -> None:
        self.world = world
        self.sim = world
        self.seen: dict[str, list[tuple[str, Any]]] = {}

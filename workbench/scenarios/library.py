"""The named scenarios: every procedure of the smartphone certificate service as data.

Each scenario says in one line what rule it shows (smartphone-service.md sections in
brackets) and declares its steps; :func:`run_scenario` runs them. Common parameters
(:data:`COMMON`) choose the calendar start, the hotline schedule (9.1), the relying services'
revocation method (11.3), the CRL interval, the issuance delay (15.2 B) and the phone model.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pandas as pd

from workbench.lifecycle.calendar import SCHEDULES
from workbench.lifecycle.devices import load_catalogue
from workbench.lifecycle.services import SERVICES
from workbench.scenarios.model import Param, Scenario, ScenarioError, Step

__all__ = ["COMMON", "SCENARIOS", "describe", "get", "scenario_frame"]

JST = timezone(timedelta(hours=9))

_MODELS = tuple(load_catalogue())
_ELIGIBLE = tuple(m for m, d in load_catalogue().items() if d.eligible)

#: Parameters every scenario takes.
COMMON: dict[str, Param] = {
    "start": Param(datetime(2025, 10, 6, 10, 0, tzinfo=JST), "calendar start (JST Monday "
                   "10:00 by default, after every service of 11.1 started)", datetime,
                   low=datetime(2023, 5, 11, tzinfo=JST),  # the service's first day (1)
                   high=datetime(2030, 1, 1, tzinfo=JST)),  # inside the simulated CAs' validity
    "hotline": Param("itmedia-2023", "hotline schedule (9.1)", str, tuple(SCHEDULES)),
    "revocation": Param("ocsp", "how relying services check revocation (11.3)", str,
                        ("ocsp", "crl")),
    "crl_interval_hours": Param(24.0, "CRL publication interval in hours (11.3 MODEL)", float,
                                low=0.25, high=24.0 * 31),
    "issuance_delay_minutes": Param(2.0, "server-side issuance time (15.2 B MODEL)", float,
                                    low=0.0, high=7 * 24 * 60.0),
    "model": Param("Pixel 7", "the phone model (device catalogue, 3)", str, _MODELS),
    "seed": Param(-1, "seed for reproducible people and keys (-1: random, fast)", int,
                  low=-1, high=2**63 - 1),
}


def _issued(phone: str = "phone", person: str = "hanako", model: str = "{model}") -> list[Step]:
    """A person with a card and a phone whose certificates are issued and registered."""
    return [
        Step(person, "person", says="a person with a My Number Card"),
        Step(person, "buy_phone", {"phone": phone, "model": model}),
        Step(phone, "apply", says="the card's signing password and a card signature apply "
             "for new certificates (15.2 A)"),
        Step("clock", "advance", {"minutes": "{issuance_delay_minutes}"},
             says="the server-side issuance procedure runs (15.2 B)"),
        Step(phone, "register", says="keys made in the SE, certificates written, PINs set "
             "(15.2 C)"),
    ]


def _person_step(name: str) -> Step:
    return Step(name, "person", says="a person with a My Number Card")


def _s(name: str, title: str, shows: str, steps: list[Step], *,
       revocation_by_service: dict[str, str] | None = None, **extra: Param) -> Scenario:
    return Scenario(name, title, shows, tuple(steps), {**COMMON, **extra},
                    dict(revocation_by_service or {}))


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    _s("issuance", "Issuance into a phone",
       "apply with the card, server-side issuance, registration into the SE, first login "
       "(4, 15.2)", [
           *_issued(),
           Step("mynaportal-login", "check", {"phone": "phone", "certificate": "auth"},
                says="OCSP now answers good for the phone auth certificate"),
           Step("phone", "login", says="in-app login with the 4-digit PIN"),
       ]),
    _s("login-pin", "Login with the PIN",
       "a wrong PIN costs one of 3 tries, the right one logs in and restores the counter "
       "(7, 15.3)", [
           *_issued(),
           Step("phone", "login", {"pin": "wrong"}, expect="error", reason="tries left",
                says="a wrong PIN: 2 tries left"),
           Step("phone", "login", says="the right PIN logs in"),
       ]),
    _s("login-biometric", "Login with biometrics",
       "biometric unlock must be set up in the app first; then the PIN is released by the "
       "prompt (7 MODEL)", [
           *_issued(),
           Step("phone", "login", {"biometric": True}, expect="error", reason="not set up",
                says="not set up yet"),
           Step("phone", "enrol_biometrics", says="the app checks the PIN and wraps it in "
                "the Keystore"),
           Step("phone", "login", {"biometric": True}, says="face or fingerprint logs in"),
       ]),
    _s("etax-signing", "Signing an e-Tax return",
       "the phone signing certificate signs for e-Tax from the 2024 tax year filing (11.1)", [
           *_issued(),
           Step("phone", "sign", {"service": "e-tax", "document": "tax return 2025"},
                says="signed with the phone signing key, checked by e-Tax"),
           Step("phone", "sign", {"service": "e-tax", "password": "wrong"}, expect="error",
                reason="tries left", says="a wrong signing password costs one of 5 tries"),
       ]),
    _s("prefill-4-facts", "Pre-filling with the 4 basic facts",
       "an e-application is pre-filled with name, address, birth date and sex read from the "
       "phone signing certificate (15.3)", [
           *_issued(),
           Step("phone", "prefill", {"service": "moving"}, says="the form gets the 4 facts"),
       ]),
    _s("lost-found", "Lost, suspended, found, released",
       "a hold is instant for OCSP; on release the auth certificate comes back and the "
       "signing certificate is re-issued (9, 15.4, 15.5)", [
           *_issued(),
           Step("phone", "lose", says="the phone is lost (switched off)"),
           Step("hanako", "report_loss", says="the hotline puts both certificates on hold"),
           Step("mynaportal-login", "check", {"phone": "phone"}, expect="refused",
                reason="hold", says="relying parties refuse it at once (OCSP)"),
           Step("phone", "found", says="found and back online: the waiting lock reaches the "
                "SE at once (S3)"),
           Step("phone", "release", says="lifting the hold with the card (R1-R3)"),
           Step("phone", "login", says="the auth certificate is back"),
           Step("phone", "sign", says="a new signing certificate signs"),
           Step("e-tax", "check", {"phone": "phone", "certificate": "sign", "which": "first"},
                expect="refused", reason="superseded",
                says="the old signing certificate stays revoked"),
       ]),
    _s("lost-revoked", "Lost for good",
       "a phone that will not be found is revoked at the hotline, for good (9.1, 15.8)", [
           *_issued(),
           Step("phone", "lose"),
           Step("hanako", "report_loss", {"revoke": True}, says="revoked, keyCompromise"),
           Step("mynaportal-login", "check", {"phone": "phone"}, expect="refused",
                reason="keyCompromise"),
           Step("e-tax", "check", {"phone": "phone", "certificate": "sign"}, expect="refused",
                reason="keyCompromise"),
       ]),
    _s("lost-outside-hotline-hours", "Lost on a Friday night",
       "a loss reported while the hotline is closed is acted on at the next opening: until "
       "then the certificates are still accepted (9.1 MODEL)", [
           *_issued(),
           Step("phone", "lose"),
           Step("hanako", "report_loss", says="called while the hotline is closed"),
           Step("mynaportal-login", "check", {"phone": "phone"}, says="still accepted: the "
                "exposure window"),
           Step("clock", "until", {"time": "next-opening"}, says="the hotline opens: hold"),
           Step("mynaportal-login", "check", {"phone": "phone"}, expect="refused",
                reason="hold"),
       ], start=dataclasses.replace(
           COMMON["start"], default=datetime(2025, 10, 10, 22, 0, tzinfo=JST),
           help="calendar start (JST Friday 22:00: the itmedia-2023 hotline is closed)")),
    _s("sale-revoked", "Revoked before a sale",
       "the owner revokes in the app with the phone signing password before selling; the SE "
       "content is deleted (8, 15.6)", [
           *_issued(),
           Step("phone", "revoke", {"why": "sale"}, says="revoked, cessationOfOperation; "
                "applet deleted"),
           Step("mynaportal-login", "check", {"phone": "phone", "which": "first"},
                expect="refused", reason="cessationOfOperation"),
           Step("phone", "login", expect="error", reason="not on this",
                says="nothing left on the phone to log in with"),
       ]),
    _s("factory-reset-without-revocation", "Factory reset without revocation",
       "a factory reset keeps the SE: the certificates stay valid until revoked; only the "
       "biometric binding is lost (8, 15.6)", [
           *_issued(),
           Step("phone", "enrol_biometrics"),
           Step("phone", "factory_reset", says="Android data and Keystore gone, SE untouched"),
           Step("mynaportal-login", "check", {"phone": "phone"},
                says="still valid: a reset revokes nothing"),
           Step("phone", "login", {"biometric": True}, expect="error", reason="not set up",
                says="the biometric binding is gone"),
           Step("phone", "login", says="anyone with the PIN can still log in"),
       ]),
    _s("device-change", "Device change",
       "issuing to a new phone revokes the old phone's certificates at once (superseded) and "
       "deletes them when the old phone next connects (5)", [
           *_issued("old-phone"),
           Step("old-phone", "offline", says="the old phone is switched off in a drawer"),
           Step("hanako", "buy_phone", {"phone": "new-phone", "model": "Galaxy A54"}),
           Step("new-phone", "apply"),
           Step("clock", "advance", {"minutes": "{issuance_delay_minutes}"}),
           Step("new-phone", "register", says="the old pair is superseded at C13"),
           Step("new-phone", "login"),
           Step("reader:convenience-store", "use", {"phone": "old-phone"}, expect="refused",
                reason="superseded", says="held to a copier (RF works offline): the service "
                "refuses the old phone's certificate, superseded"),
           Step("old-phone", "online", says="the old phone comes back online: the TSM "
                "deletes its applet at once"),
           Step("old-phone", "login", expect="error", reason="not on this",
                says="nothing left on the old phone"),
       ]),
    _s("address-change", "Address change",
       "a 4-basic-facts change revokes the card and phone signing certificates "
       "(affiliationChanged) and keeps the auth one; a new application brings a signing "
       "certificate with the new address (10, 15.7 MODEL)", [
           *_issued(),
           Step("municipality", "change_basic_facts",
                {"person": "hanako", "prefecture": "東京都", "municipality": "千代田区",
                 "street": "霞が関１丁目２番３号", "municipality_code": "13101"},
                says="moving to Chiyoda, Tokyo: new address on the card"),
           Step("e-tax", "check", {"phone": "phone", "certificate": "sign"}, expect="refused",
                reason="affiliationChanged"),
           Step("phone", "login", says="the auth certificate carries no address: still valid"),
           Step("phone", "apply", says="apply again with the new card signing certificate"),
           Step("clock", "advance", {"minutes": "{issuance_delay_minutes}"}),
           Step("phone", "register"),
           Step("phone", "prefill", says="the new address"),
       ]),
    _s("card-renewal", "Card renewal",
       "phone certificates follow the card's validity; after a card renewal they keep the old "
       "Not After until applied for again (6, 15.7)", [
           *_issued(),
           Step("municipality", "renew_card", {"person": "hanako"}),
           Step("phone", "login", says="the phone pair is untouched"),
           Step("phone", "apply", says="apply again with the new card"),
           Step("clock", "advance", {"minutes": "{issuance_delay_minutes}"}),
           Step("phone", "register", says="the new pair follows the new card; the old one is "
                "superseded"),
           Step("mynaportal-login", "check", {"phone": "phone", "which": "first"},
                expect="refused", reason="superseded"),
       ]),
    _s("pin-lock-reset", "PIN locked, reset with the card",
       "three wrong PINs block the phone auth PIN; the card resets it without touching keys "
       "or certificates (7, 15.7)", [
           *_issued(),
           Step("phone", "login", {"pin": "wrong"}, expect="error", reason="2 tries"),
           Step("phone", "login", {"pin": "wrong"}, expect="error", reason="1 try"),
           Step("phone", "login", {"pin": "wrong"}, expect="error", reason="blocked"),
           Step("phone", "login", expect="error", reason="blocked",
                says="even the right PIN is refused now"),
           Step("phone", "reset_pin", {"which": "auth", "new_value": "new"},
                says="card password + card read, the TSM clears the PIN, the app sets it"),
           Step("phone", "login", says="the new PIN works; the certificates are the same"),
           Step("mynaportal-login", "check", {"phone": "phone", "which": "first"}),
       ]),
    _s("ineligible-phone", "An ineligible phone",
       "a phone without a GP-SE, without NFC Type B, excluded by its maker, or with an old "
       "app is refused with the reason (3)", [
           _person_step("hanako"),
           Step("hanako", "buy_phone", {"phone": "phone", "model": "{model}",
                                         "app_version": "{app_version}"}),
           Step("phone", "apply", expect="error", reason="{expect_reason}",
                says="refused before the card is read"),
       ], model=Param("Galaxy M23 5G", "the phone model (device catalogue, 3)", str, _MODELS),
       app_version=Param(60, "Mynaportal app version (54 or later needed)", int),
       expect_reason=Param("excluded", "what the refusal must mention", str)),
    _s("clinic-health-insurance", "At the clinic",
       "the phone held to the clinic's reader, the auth PIN typed on the reader, checked "
       "online (11.1, 15.3)", [
           *_issued(),
           Step("reader:health-insurance", "use", {"phone": "phone"},
                says="RF card emulation: same APDUs as the card"),
       ]),
    _s("death-or-abroad", "Death or moving abroad",
       "every certificate of the person is revoked, card and phone (10, 15.7)", [
           *_issued(),
           Step("phone", "offline"),
           Step("municipality", "death_or_abroad", {"person": "hanako"}),
           Step("reader:health-insurance", "use", {"phone": "phone"}, expect="refused",
                reason="cessationOfOperation", says="the phone certificates are revoked"),
           Step("phone", "online", says="the TSM deletes the revoked applet"),
           Step("phone", "apply", expect="error", reason="revoked",
                says="no new application: the card signing certificate is revoked too"),
       ]),
    _s("certificate-expiry", "Certificates run out",
       "the phone certificates expire with the card's (their Not After follows the card's "
       "certificates); relying services refuse them as expired (6, 15.8)", [
           *_issued(),
           Step("clock", "advance", {"days": 365 * 6}, says="six years later: past the "
                "certificates' Not After (5th birthday after issuance)"),
           Step("mynaportal-login", "check", {"phone": "phone"}, expect="refused",
                reason="expired"),
           Step("phone", "login", expect="refused", reason="expired"),
           Step("phone", "apply", expect="error", reason="not valid now",
                says="a new application needs a new card certificate first"),
       ]),
    _s("crl-vs-ocsp", "CRL versus OCSP after a hold",
       "OCSP refuses a held certificate at once; a CRL-checking service accepts it until the "
       "next CRL it downloads (11.3)", [
           *_issued(),
           Step("convenience-store", "check", {"phone": "phone"},
                says="the CRL-checking service downloads today's CRL"),
           Step("phone", "lose", {"online": True}),
           Step("hanako", "report_loss"),
           Step("mynaportal-login", "check", {"phone": "phone"}, expect="refused",
                reason="hold", says="OCSP: refused at once"),
           Step("convenience-store", "check", {"phone": "phone"},
                says="CRL: still accepted from the cached list"),
           Step("clock", "until", {"time": "next-crl"}, says="the next CRL is published"),
           Step("convenience-store", "check", {"phone": "phone"}, expect="refused",
                reason="hold", says="the new CRL lists it"),
       ], revocation_by_service={"convenience-store": "crl"},
       revocation=Param("ocsp", "revocation method of the other services (the convenience "
                        "store checks CRLs in this scenario)", str, ("ocsp", "crl"))),
]}


def get(name: str) -> Scenario:
    """The scenario called ``name``; :class:`ScenarioError` lists the names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"no scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
                            ) from None


def describe(name: str) -> str:
    """The scenario's steps and parameters as text."""
    s = get(name)
    lines = [f"{s.name}: {s.title}", f"  shows: {s.shows}", "  steps:"]
    for i, step in enumerate(s.steps):
        expect = step.expect + (f" ({step.reason})" if step.reason else "")
        lines.append(f"    {i:2d}. {step.describe()} → {expect}"
                     + (f"  — {step.says}" if step.says else ""))
    lines.append("  parameters:")
    for key, p in s.params.items():
        lines.append(f"    {key} = {p.default!s}: {p.help}")
    return "\n".join(lines)


def scenario_frame() -> pd.DataFrame:
    """One row per scenario: name, title, what it shows, number of steps."""
    return pd.DataFrame([{"name": s.name, "title": s.title, "shows": s.shows,
                          "steps": len(s.steps)} for s in SCENARIOS.values()])


_SERVICES_USED = {step.actor for s in SCENARIOS.values() for step in s.steps
                  if step.action == "check"} | {"mynaportal-login", "e-tax", "moving"}
assert _SERVICES_USED <= set(SERVICES), _SERVICES_USED - set(SERVICES)


def markdown() -> str:
    """``docs/service-model.md``: the pair's state machine, the event → reason table, the
    application API and every scenario, generated from the code (``make docs``)."""
    from workbench.lifecycle.authority import API
    from workbench.lifecycle.states import APPLET_LIFE_CYCLE, EVENTS, TRANSITIONS

    out = ["# The smartphone service as the workbench models it", "",
           "Generated from the code by `make docs` (`tools/make_docs.py`); do not edit. The "
           "facts behind it are in [smartphone-service.md](smartphone-service.md) (sections "
           "15.2-15.8 are MODEL there, and so is everything here).", "",
           '<a id="s1"></a>', "## 1. Phone certificate pair: states and transitions", "",
           "| state | event | next state |", "|---|---|---|"]
    for state, moves in TRANSITIONS.items():
        if not moves:
            out.append(f"| {state.value} | (final) | |")
        for event, target in moves.items():
            out.append(f"| {state.value} | {event.value} | {target.value} |")
    out += ["", "The GP life cycle of the JPKI applet beside it:", "",
            "| from | to | by |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in APPLET_LIFE_CYCLE]
    out += ["", '<a id="s2"></a>', "## 2. Events and the revocation reasons they publish", "",
            "| event | phone sign certificate | phone auth certificate | CRL reason | what |",
            "|---|---|---|---|---|"]
    for event, rule in EVENTS.items():
        out.append(f"| {event.value} | {rule.sign or '-'} | {rule.auth or '-'} | "
                   f"{rule.reason.value if rule.reason else '-'} | {rule.note} |")
    out += ["", '<a id="s3"></a>', "## 3. The application API", "",
            "Served in process (`ServiceAuthority.handle`) and by `jpki-workbench pki serve "
            "--workers 1` under `/v1/` as JSON.", "", "| method | path | what |",
            "|---|---|---|"]
    out += [f"| {m} | `{p}` | {w} |" for m, p, w in API]
    out += ["", '<a id="s4"></a>', "## 4. Scenarios", "",
            "Run one with `jpki-workbench scenario run NAME` or "
            "`workbench.scenarios.run_scenario(NAME)`. Every scenario takes the common "
            "parameters:", "", "| parameter | default | allowed | what |", "|---|---|---|---|"]
    for key, p in COMMON.items():
        allowed = ", ".join(str(c) for c in p.choices) if p.choices and len(p.choices) < 5 \
            else p.allowed
        out.append(f"| `{key}` | {p.default} | {allowed} | {p.help} |")
    for s in SCENARIOS.values():
        out += ["", f"### {s.name}: {s.title}", "", s.shows[0].upper() + s.shows[1:] + ".", "",
                "| # | actor | action | parameters | expected | shows |", "|---|---|---|---|---|---|"]
        for i, step in enumerate(s.steps):
            params = ", ".join(f"{k}={v}" for k, v in step.params.items())
            expect = step.expect + (f" ({step.reason})" if step.reason else "")
            out.append(f"| {i} | {step.actor} | {step.action} | {params} | {expect} | "
                       f"{step.says} |")
        extra = {k: p for k, p in s.params.items() if k not in COMMON or p is not COMMON[k]}
        if extra:
            out += ["", "Own parameters: " + "; ".join(f"`{k}` = {p.default} ({p.help})"
                                                       for k, p in extra.items()) + "."]
    return "\n".join(out)

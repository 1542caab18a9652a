"""Issuance: putting an authority's keys and certificates onto a card or phone token.

This is the one place that knows both sides: the authority (:mod:`workbench.pki`) makes keys
and certificates and knows nothing about cards; the card (:mod:`workbench.card`) takes a
prepared file system and knows nothing about authorities. Here a holder's card is issued:
keys are generated (seeded for reproducible demos), the certificates are issued for them, the
text and surface APs are encoded with the authority's card-verifiable issuer keys, and the
whole :class:`~workbench.card.personalise.CardContent` is handed to
:meth:`VirtualCard.personalise <workbench.card.VirtualCard.personalise>`. The secure element's
JPKI applet is personalised from the same content (the SE issue builds on it).

Rules: jpki-card.md 3 (file maps), 6 (PIN formats), 8 (phone token), 9 (certificates); the
holder under 15 gets no signing certificate (3.1, EF 0008).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.apdu import INS, SW, CommandAPDU
from workbench.card import VirtualCard
from workbench.card import constants as c
from workbench.card.atr import contact_atr_data, resolve_atr
from workbench.card.content import (
    certificate_presence,
    common_ap_items,
    number_b,
    surface_ap_items,
    text_ap_items,
    token_info,
)
from workbench.card.files import DEFAULT_COLLATION_TRIES, PROFILES
from workbench.card.model import ModelOptions
from workbench.card.personalise import CardContent
from workbench.card.pin import AUTH_PIN, SIGN_PASSWORD, TEXT_PIN, pin_bytes
from workbench.errors import WorkbenchError
from workbench.holder import Holder, holder_to_json
from workbench.pki import Authority, Hierarchy, derive_seed, generate_rsa_key, synthetic_holder
from workbench.pki.clock import jst_date
from workbench.pki.profiles import age_on
from workbench.pki.store import AuthorityStore, StoreError
from workbench.se import SecureElement, TsmSession, gp, load_token

__all__ = [
    "DEFAULT_AUTH_PIN",
    "DEFAULT_SIGN_PASSWORD",
    "SIGN_MIN_AGE",
    "create_card",
    "issue_card",
    "load_token",
]

DEFAULT_AUTH_PIN = "1234"
DEFAULT_SIGN_PASSWORD = "ABC123"
#: Holders under 15 get no signing certificate (jpki-card.md 3.1, EF 0008).
SIGN_MIN_AGE = 15


def create_card(
    profile: str = "icc",
    holder: Holder | None = None,
    *,
    authority: Authority | None = None,
    seed: int | None = None,
    auth_pin: str = DEFAULT_AUTH_PIN,
    sign_password: str = DEFAULT_SIGN_PASSWORD,
    text_pin: str | None = None,
    issued_at: datetime | None = None,
    atr: str | bytes | None = None,
    collation_tries: int = DEFAULT_COLLATION_TRIES,
    cert_capacity: str | int = "round256",
    card_expiry: date | None = None,
    serial: str | None = None,
    under15_sign_pin: str = "blocked",
    verified_query: str = "63Cx",
    key_source: Callable[[str], rsa.RSAPrivateKey] | None = None,
) -> VirtualCard | SecureElement:
    """Issue a virtual card (``"icc"``) or Android phone token (``"gpse"``).

    ``seed`` makes the holder, every key and every certificate serial reproducible (seeded keys
    are for demos and tests only). PINs are format-checked here (jpki-card.md 6) and stored
    only as salted digests. ``text_pin`` defaults to ``auth_pin`` (many holders set the 4-digit
    PINs alike at issuance). The phone token (jpki-card.md 8) is a
    :class:`~workbench.se.SecureElement` hosting the JPKI applet, installed and personalised
    through SCP03 with its key pairs generated inside the SE (smartphone-service.md 15.2): the
    JPKI AP only, label ``JPKIAPGPSETOKEN``, the auth certificate behind the auth PIN.

    A holder under 15 gets no signing certificate (EF 0008 starts ``00``, jpki-card.md 3.1):
    EF 0001 and the key 001A are absent. What the card holds at the signing password 001B is
    not public; ``under15_sign_pin`` chooses (MODEL): ``"blocked"`` (default) keeps the object
    without a value, blocked (empty VERIFY ``63 C0``, VERIFY ``69 84``), which is what PC/SC
    middleware that queries both PINs (OpenSC's ``jpki`` driver) needs to bind the card;
    ``"absent"`` leaves it out too (SELECT ``6A 82``). ``verified_query`` is the card's answer
    to the empty VERIFY of a verified PIN (:class:`workbench.card.model.ModelOptions`).
    ``key_source`` (label → key) replaces key generation for the card's own keys, e.g. a pool
    of pre-generated test keys in scale benchmarks (never for anything else).
    """
    if profile not in PROFILES:
        raise WorkbenchError(f"unknown profile {profile!r}; choose 'icc' (plastic card) or 'gpse' "
                             "(Android token)")
    if not 1 <= collation_tries <= 15:
        raise WorkbenchError("collation_tries must be between 1 and 15 (63Cx carries 4 bits)")
    if under15_sign_pin not in ("blocked", "absent"):
        raise WorkbenchError(f"under15_sign_pin must be 'blocked' or 'absent', got "
                             f"{under15_sign_pin!r}")
    try:
        options = ModelOptions(verified_query=verified_query)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    auth_value = pin_bytes(AUTH_PIN, auth_pin)
    sign_value = pin_bytes(SIGN_PASSWORD, sign_password)
    text_value = pin_bytes(TEXT_PIN, text_pin if text_pin is not None else auth_pin)
    AUTH_PIN.check(auth_value)
    SIGN_PASSWORD.check(sign_value)
    TEXT_PIN.check(text_value)
    atr_bytes = resolve_atr(profile, atr)

    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    holder = holder or synthetic_holder(seed)
    authority = authority or Authority()
    at = issued_at or authority.clock.now()
    expiry = card_expiry or authority.card_expiry(holder, at)

    def key(label: str) -> rsa.RSAPrivateKey:
        if key_source is not None:
            return key_source(label)
        return generate_rsa_key(derive_seed(seed, "card", profile, label) if seed is not None
                                else None)

    def new_serial() -> int:
        return rng.getrandbits(63) | (1 << 56)

    # a 29 February birthday counts on 1 March in common years here (the rule this has always used)
    has_sign = age_on(holder.birth_date, jst_date(at), leap_day="mar1") >= SIGN_MIN_AGE
    salt = os.urandom(16) if seed is None else derive_seed(seed, "card", profile, "salt")[:16]
    card_serial = serial or "".join(str(rng.randrange(10)) for _ in range(16))
    label = c.LABEL_ICC if profile == "icc" else c.LABEL_GPSE

    if profile == "gpse":
        return _issue_phone_token(
            holder, authority, at=at, expiry=expiry, seed=seed, label=label, serial=card_serial,
            auth_value=auth_value, sign_value=sign_value if has_sign else None, atr=atr_bytes,
            new_serial=new_serial, rng=rng if seed is not None else None, options=options)

    content = CardContent()
    content.pins.update({
        "pin:auth": auth_value,
        "pin:text": text_value,
        "pin:number_a": holder.individual_number.encode("ascii"),
        "pin:number_b": number_b(holder, expiry).encode("ascii"),
        "pin:birth": holder.era_yymmdd().encode("ascii"),
    })
    der = Encoding.DER
    auth_key = key("auth")
    auth_cert = authority.issue_auth_certificate(
        holder, auth_key.public_key(), at=at, card_expiry=expiry, token=profile,
        serial=new_serial(), rng=rng if seed is not None else None,
    )
    content.items.update({
        "key:auth": auth_key,
        "certificate:auth": auth_cert.public_bytes(der),
        "certificate:auth_ca": authority.current_ca(Hierarchy.AUTH, at).certificate.public_bytes(der),
        "certificate:sign_ca": authority.current_ca(Hierarchy.SIGN, at).certificate.public_bytes(der),
        "token_info": token_info(label, card_serial),
        "certificate_presence": certificate_presence(has_sign),
    })
    cert_serials = {"auth": auth_cert.serial_number}
    if has_sign:
        sign_key = key("sign")
        sign_cert = authority.issue_signing_certificate(
            holder, sign_key.public_key(), at=at, card_expiry=expiry, token=profile,
            serial=new_serial(), rng=rng if seed is not None else None,
        )
        cert_serials["sign"] = sign_cert.serial_number
        content.items.update({"key:sign": sign_key, "certificate:sign": sign_cert.public_bytes(der)})
        content.pins["pin:sign"] = sign_value
    elif under15_sign_pin == "blocked":
        content.blocked_pins.add("pin:sign")

    if profile == "icc":
        keys = {name: key(name) for name in ("text", "surface", "common")}
        root = authority.cv_issuer("root")
        content.items["key:text"] = keys["text"]
        content.items["key:surface"] = keys["surface"]
        content.items["key:common"] = keys["common"]
        content.items.update(text_ap_items(holder, keys["text"], authority.cv_issuer("text"), root))
        content.items.update(surface_ap_items(holder, keys["surface"],
                                              authority.cv_issuer("surface"), root, expiry))
        content.items.update(common_ap_items(holder, card_serial, expiry))
        content.get_data = {
            c.TAG_CARD_ID: card_serial.encode(),
            c.TAG_MUNICIPALITY: holder.municipality_code.encode(),
            c.TAG_CARD_EXPIRY: expiry.strftime("%Y%m%d").encode(),
            c.TAG_CONTACT_ATR: contact_atr_data(atr_bytes),
        }
    meta: dict[str, Any] = {
        "label": label,
        "holder": holder_to_json(holder),
        "issued_at": at.isoformat(),
        "card_expiry": expiry.isoformat(),
        "serial_number": card_serial,
        "seed": seed,
        "certificate_serials": {k: f"0x{v:X}" for k, v in cert_serials.items()},
        "isd_selectable": profile == "icc",
    }
    if options != ModelOptions():
        meta["model_options"] = dataclasses.asdict(options)
    return VirtualCard.personalise(profile, content, atr=atr_bytes, meta=meta, salt=salt,
                                   cert_capacity=cert_capacity,
                                   collation_tries=collation_tries)


def _seeded_keygen(seed: int | None) -> Callable[[int], rsa.RSAPrivateKey]:
    """Key generation inside the SE: the first key pair of each slot is the seeded one the
    plastic-card path would make (reproducible demos, test-only); later ones (a re-issued
    signing key after a release, smartphone-service.md 9.2) are fresh."""
    used: set[int] = set()

    def generate(fid: int) -> rsa.RSAPrivateKey:
        label = {c.KEY_AUTH: "auth", c.KEY_SIGN: "sign"}[fid]
        if seed is not None and fid not in used:
            used.add(fid)
            return generate_rsa_key(derive_seed(seed, "card", "gpse", label))
        return generate_rsa_key(None)

    return generate


def _issue_phone_token(
    holder: Holder, authority: Authority, *, at: datetime, expiry: date, seed: int | None,
    label: str, serial: str, auth_value: bytes, sign_value: bytes | None, atr: bytes,
    new_serial: Callable[[], int], rng: random.Random | None, options: ModelOptions,
) -> SecureElement:
    """The Android token the way the service makes it (smartphone-service.md 15.2 C1-C11):
    a factory SE, the TSM's SCP03 session at level 33 to the JPKI SSD, INSTALL, key pairs
    generated in the SE, certificates issued for them and written with STORE DATA, SET STATUS
    ``0F``, then the app registers the PINs with RESET RETRY COUNTER."""
    if options != ModelOptions():
        raise WorkbenchError("verified_query is a plastic-card MODEL option here; the phone "
                             "applet answers the empty VERIFY with 63Cx")
    se_seed = None if seed is None else derive_seed(seed, "card", "gpse", "se")
    se = SecureElement.factory(seed=se_seed, keygen=_seeded_keygen(seed))
    se.power_on()
    tsm = TsmSession(se.transmit, se.key_sets[gp.JPKI_SSD_AID][0],
                     host_challenge=None if se_seed is None else se_seed[:8])
    tsm.open()
    tsm.install_jpki()
    tsm.personalise()
    der = Encoding.DER
    auth_cert = authority.issue_auth_certificate(
        holder, tsm.generate_key("auth"), at=at, card_expiry=expiry, token="gpse",
        serial=new_serial(), rng=rng)
    cert_serials = {"auth": auth_cert.serial_number}
    dgis = [(gp.DGI.AUTH_CERTIFICATE, auth_cert.public_bytes(der))]
    if sign_value is not None:
        sign_cert = authority.issue_signing_certificate(
            holder, tsm.generate_key("sign"), at=at, card_expiry=expiry, token="gpse",
            serial=new_serial(), rng=rng)
        cert_serials["sign"] = sign_cert.serial_number
        dgis.append((gp.DGI.SIGN_CERTIFICATE, sign_cert.public_bytes(der)))
    dgis += [
        (gp.DGI.AUTH_CA_CERTIFICATE, authority.current_ca(Hierarchy.AUTH, at).certificate
         .public_bytes(der)),
        (gp.DGI.SIGN_CA_CERTIFICATE, authority.current_ca(Hierarchy.SIGN, at).certificate
         .public_bytes(der)),
        (gp.DGI.TOKEN_INFO, token_info(label, serial)),
        (gp.DGI.CERTIFICATE_PRESENCE, certificate_presence(sign_value is not None)),
    ]
    tsm.store(dgis, last=True)
    tsm.set_status(gp.ApplicationState.PERSONALIZED)
    # the app, in plain over OMAPI inside the phone: each PIN registered once (C11)
    set_pins = [(0x98, auth_value)] + ([(0x9B, sign_value)] if sign_value is not None else [])
    se.transmit(CommandAPDU.select_df(c.JPKI_AP_AID).to_bytes())
    for p2, value in set_pins:
        answer = se.transmit(CommandAPDU(0x00, INS.RESET_RETRY_COUNTER, 0x02, p2, value).to_bytes())
        if answer != SW.SUCCESS.bytes:
            raise WorkbenchError(f"the phone applet refused a PIN registration ({answer.hex()})")
    se.power_off()
    se.update_meta(
        label=label,
        holder=holder_to_json(holder),
        issued_at=at.isoformat(),
        card_expiry=expiry.isoformat(),
        serial_number=serial,
        seed=seed,
        certificate_serials={k: f"0x{v:X}" for k, v in cert_serials.items()},
        atr=atr.hex().upper(),
    )
    return se


def issue_card(store: AuthorityStore, profile: str = "icc",
               **create_card_kwargs: Any) -> VirtualCard | SecureElement:
    """Issue a card or phone token with a stored authority and register its certificates.

    Takes :func:`create_card`'s keywords (not ``authority``). The signing and
    user-authentication certificates are registered with the holder's municipality code as
    CRL partition (jpki-card.md 9.7) and the token profile; the issuing CA certificates are
    registered too, in one transaction, so OCSP and CRLs know them at once.
    """
    if "authority" in create_card_kwargs:
        raise StoreError("issue_card uses the stored authority; do not pass authority=")
    card = create_card(profile, authority=store.authority, **create_card_kwargs)
    certs = card.certificates()
    chosen = [certs[name] for name in ("sign", "auth", "sign_ca", "auth_ca") if name in certs]
    store.register_issued(chosen, partition=card.holder.municipality_code, token=profile)
    return card


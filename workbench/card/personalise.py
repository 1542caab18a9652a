"""Personalisation: a card's file system made from its tables and a prepared content.

The card layer knows its applications (:mod:`workbench.card.files`) and how each EF is
encoded (:mod:`workbench.card.content`), but not where keys, certificates and PIN values
come from: the issuer hands them over as a :class:`CardContent` and this module fills every
row of the tables with it. PIN values are digested here with the card's salt and never kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from workbench.card.content import pad_ef
from workbench.card.files import (
    DEFAULT_COLLATION_TRIES,
    PROFILES,
    ApSpec,
    applications_for,
    with_collation_tries,
)
from workbench.card.model import Application, BinaryEF, KeyRef, Node, PinRef, RecordEF
from workbench.card.pin import pin_digest
from workbench.errors import WorkbenchError

__all__ = [
    "CardContent",
    "ContentError",
    "build_applications",
    "check_pins",
    "empty_application",
    "node_for",
]

ContentValue = bytes | rsa.RSAPrivateKey | list[bytes]


class ContentError(WorkbenchError):
    """Personalisation content that does not fit the card's tables."""


@dataclass(repr=False)
class CardContent:
    """What an issuer puts onto a card, keyed by the content names of the file tables.

    ``items``: EF bytes (``"certificate:auth"``, ``"token_info"``, ``"text:basic_four"``…),
    private keys (``"key:auth"``…) and record lists (``"common:record"``). ``pins``: the PIN
    and password values (``"pin:auth"``…) as the card compares them (raw ASCII, the sign
    password uppercased); they are digested at :func:`build_applications` and never stored.
    ``get_data``: MF-level data objects by tag (jpki-card.md 3.6). ``blocked_pins``: PIN rows
    present without a value, blocked from the start (the signing password object of a holder
    under 15, MODEL, see :func:`workbench.lifecycle.create_card`).
    """

    items: dict[str, ContentValue] = field(default_factory=dict)
    pins: dict[str, bytes] = field(default_factory=dict)
    get_data: dict[int, bytes] = field(default_factory=dict)
    blocked_pins: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # never show a PIN or a key
        return (f"CardContent(items={sorted(self.items)}, pins={sorted(self.pins)} (masked), "
                f"get_data={[f'{t:04X}' for t in sorted(self.get_data)]})")


def _value(spec: ApSpec, row_content: str, content: CardContent) -> ContentValue:
    try:
        return content.items[row_content]
    except KeyError:
        raise ContentError(f"{spec.name}: no content {row_content!r} for its EFs") from None


def build_applications(
    profile: str,
    content: CardContent,
    salt: bytes,
    *,
    cert_capacity: str | int = "round256",
    collation_tries: int = DEFAULT_COLLATION_TRIES,
) -> list[Application]:
    """Every application of ``profile`` with each of its table's rows filled from ``content``.

    Optional rows (the signing certificate, key and password of a holder under 15) are left
    out when their content is missing; anything else missing raises :class:`ContentError`.
    """
    if profile not in PROFILES:
        raise ContentError(f"unknown profile {profile!r}; choose 'icc' (plastic card) or 'gpse' "
                           "(Android token)")
    if not 1 <= collation_tries <= 15:
        raise ContentError("collation_tries must be between 1 and 15 (63Cx carries 4 bits)")
    apps: list[Application] = []
    for spec in applications_for(profile):
        nodes: dict[int, Node] = {}
        for row in spec.files:
            key = row.content
            have = key is not None and (key in content.pins or key in content.blocked_pins
                                        if row.kind == "pin" else key in content.items)
            if key is not None and not have and row.optional:
                continue
            access = row.access_for(profile)
            label = row.name_ja
            if row.kind == "binary":
                data = row.fixed if row.fixed is not None else _value(spec, key or "", content)
                if not isinstance(data, bytes):
                    raise ContentError(f"{spec.name}: content {key!r} must be bytes")
                nodes[row.fid] = BinaryEF(pad_ef(data, cert_capacity) if row.padded else data,
                                          access, label)
            elif row.kind == "record":
                records = _value(spec, key or "", content)
                if not isinstance(records, list):
                    raise ContentError(f"{spec.name}: content {key!r} must be a list of records")
                nodes[row.fid] = RecordEF(list(records), access, label)
            elif row.kind == "key":
                private = None if key is None else _value(spec, key, content)
                if private is not None and not isinstance(private, rsa.RSAPrivateKey):
                    raise ContentError(f"{spec.name}: content {key!r} must be an RSA private key")
                nodes[row.fid] = KeyRef(private, access, row.usage, label)
            else:
                assert row.policy is not None
                policy = with_collation_tries(row.policy, collation_tries)
                if policy.always_blocked or key in content.blocked_pins:
                    nodes[row.fid] = PinRef(policy, b"", 0, label)
                    continue
                if key not in content.pins:
                    raise ContentError(f"{spec.name}: no value for {policy.label}")
                nodes[row.fid] = PinRef(policy, pin_digest(salt, content.pins[key]),
                                        policy.max_tries, label)
        own = None
        if spec.own_key is not None:
            own = _value(spec, spec.own_key, content)
            if not isinstance(own, rsa.RSAPrivateKey):
                raise ContentError(f"{spec.name}: content {spec.own_key!r} must be an RSA key")
        apps.append(Application(spec.aid, spec.name, nodes, own, spec.session_key_sw))
    return apps


def check_pins(content: CardContent, profile: str) -> None:
    """Check every user PIN of ``content`` against its rules (jpki-card.md 6) before use."""
    for spec in applications_for(profile):
        for row in spec.files:
            if row.kind != "pin" or row.policy is None or not row.policy.changeable:
                continue
            value = content.pins.get(row.content or "")
            if value is not None:
                row.policy.check(value)


def empty_application(spec: ApSpec, profile: str) -> Application:
    """An application as an applet is installed: its PIN objects without values (not set),
    content-less objects (the SET PUBLIC IC KEY reference), and no EF or key yet; the issuer's
    personalisation writes them (:class:`workbench.card.virtual_card.Personalisation`)."""
    nodes: dict[int, Node] = {}
    for row in spec.files:
        if row.kind == "pin":
            assert row.policy is not None
            blocked = row.policy.always_blocked
            nodes[row.fid] = PinRef(row.policy, b"", 0 if blocked else row.policy.max_tries,
                                    row.name_ja)
        elif row.kind == "key" and row.content is None:
            nodes[row.fid] = KeyRef(None, row.access_for(profile), row.usage, row.name_ja)
        elif row.kind == "binary" and row.fixed is not None:
            nodes[row.fid] = BinaryEF(row.fixed, row.access_for(profile), row.name_ja)
    return Application(spec.aid, spec.name, nodes, None, spec.session_key_sw)


def node_for(spec: ApSpec, profile: str, fid: int, value: bytes | rsa.RSAPrivateKey,
             cert_capacity: str | int = "round256") -> Node:
    """The node that row ``fid`` of ``spec`` becomes with ``value`` (an EF's bytes or a key)."""
    row = spec.by_fid.get(fid)
    if row is None:
        raise ContentError(f"{spec.name} has no object {fid:04X}")
    access = row.access_for(profile)
    if row.kind == "binary":
        if not isinstance(value, bytes):
            raise ContentError(f"{row.label} takes bytes")
        return BinaryEF(pad_ef(value, cert_capacity) if row.padded else value, access,
                        row.name_ja)
    if row.kind == "key" and row.content is not None:
        if not isinstance(value, rsa.RSAPrivateKey):
            raise ContentError(f"{row.label} takes an RSA private key")
        return KeyRef(value, access, row.usage, row.name_ja)
    raise ContentError(f"{row.label} is not written by personalisation")

"""The card's applications as data: for each AP, a table of its files (the pySim way).

One row per EF, key object or PIN reference: FID, Japanese and English name, what kind of node
it is, who may read or use it, and where its content comes from. Three things are derived
from these tables and from nothing else:

- the card's file system (:func:`workbench.card.personalise.build_applications` fills each row
  from a :class:`~workbench.card.personalise.CardContent`);
- the trace decoder's names for what a command touched (:func:`object_label`);
- the generated table in ``docs/card-files.md`` (``make docs``, ``tools/make_docs.py``).

Rows follow jpki-card.md section 3 (file maps), 6 (PIN rules) and 8 (the Android token's
differences: the auth certificate needs the auth PIN, only the JPKI AP exists).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from workbench.apdu import SW
from workbench.card import constants as c
from workbench.card.model import Access
from workbench.card.pin import (
    AUTH_PIN,
    COMMON_PIN,
    JUKI_PIN,
    SIGN_PASSWORD,
    TEXT_PIN,
    PinPolicy,
    blocked_policy,
    collation_policy,
)

__all__ = [
    "APPLICATIONS",
    "CERTIFICATE_EFS",
    "PROFILES",
    "Access",
    "ApSpec",
    "FileSpec",
    "application_spec",
    "applications_for",
    "markdown_table",
    "object_label",
]

#: Token profiles: ``icc`` the plastic My Number Card, ``gpse`` the Android phone token
#: (jpki-card.md 8).
PROFILES = ("icc", "gpse")

#: MODEL (jpki-card.md 3.4): the retry limit of 照合番号A/B and the birth-date key is not
#: public; personalisation may set another (``collation_tries``).
DEFAULT_COLLATION_TRIES = 10

_BOTH = frozenset(PROFILES)
_ICC = frozenset({"icc"})


@dataclass(frozen=True)
class FileSpec:
    """One object of an application.

    ``kind``: ``binary`` (transparent EF), ``record`` (record EF), ``key`` (private key, never
    readable) or ``pin`` (a key reference VERIFY targets). ``content`` names the item of the
    personalisation content that fills it (``None`` for objects without content: the SET PUBLIC
    IC KEY reference, always-blocked keys); ``fixed`` is constant content. ``padded`` EFs are
    allocated with filler to the card's EF capacity rule (jpki-card.md 4.1 MODEL).
    ``optional`` rows are left out when the content lacks their item (the signing certificate,
    key and password of a holder under 15, jpki-card.md 3.1 EF 0008). ``access_by_profile``
    overrides ``access`` for one profile (the phone token's auth certificate, 8).
    """

    fid: int
    name_ja: str
    name_en: str | None
    kind: Literal["binary", "record", "key", "pin"]
    content: str | None = None
    access: Access = None
    access_by_profile: tuple[tuple[str, Access], ...] = ()
    fixed: bytes | None = None
    padded: bool = False
    optional: bool = False
    usage: str = "sign"  # keys: "sign" (80 2A), "internal-auth" (00 88), "none"
    policy: PinPolicy | None = None  # pins
    section: str = ""

    def access_for(self, profile: str) -> Access:
        """Who may read or use this object on ``profile``."""
        for name, access in self.access_by_profile:
            if name == profile:
                return access
        return self.access

    @property
    def label(self) -> str:
        """``"0018 利用者証明用暗証番号 (auth PIN)"``: FID, name and English gloss."""
        return f"{self.fid:04X} {self.name_ja}" + (f" ({self.name_en})" if self.name_en else "")


@dataclass(frozen=True)
class ApSpec:
    """One application (DF selected by name) and its files.

    ``own_key`` names the content item of the key that signs ``80 2A 00 00`` without a
    credential (text AP and surface AP, jpki-card.md 3.3, 3.4); ``session_key_sw`` is what
    SET SESSION KEY (``80 AE``) answers there (3.3).
    """

    aid: bytes
    name: str
    files: tuple[FileSpec, ...]
    profiles: frozenset[str] = _BOTH
    own_key: str | None = None
    session_key_sw: int = SW.SECURITY_STATUS_NOT_SATISFIED
    section: str = ""
    by_fid: dict[int, FileSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {f.fid: f for f in self.files}
        if len(table) != len(self.files):
            raise ValueError(f"{self.name}: two rows with the same FID")
        object.__setattr__(self, "by_fid", table)


def _collation(name: str, label: str, length: int) -> PinPolicy:
    return collation_policy(name, label, length, length, DEFAULT_COLLATION_TRIES)


# --- JPKI AP (jpki-card.md 3.1; phone token 8) ------------------------------------------------

JPKI_AP = ApSpec(
    c.JPKI_AP_AID,
    c.AP_NAMES[c.JPKI_AP_AID],
    (
        FileSpec(c.EF_SIGN_CERT, "署名用電子証明書", "sign certificate", "binary",
                 "certificate:sign", access=(c.PIN_SIGN,), padded=True, optional=True,
                 section="3.1"),
        FileSpec(c.EF_SIGN_CA_CERT, "署名用CA証明書", "sign CA certificate", "binary",
                 "certificate:sign_ca", padded=True, section="3.1"),
        FileSpec(c.EF_TOKEN_INFO, "token information", None, "binary", "token_info",
                 section="3.2"),
        FileSpec(c.EF_CERT_PRESENCE, "certificate presence", None, "binary",
                 "certificate_presence", section="3.1"),
        FileSpec(c.EF_JPKI_0009, "protected (purpose unknown)", None, "binary", access=(),
                 fixed=b"\x00" * 16, section="3.1"),
        FileSpec(c.EF_AUTH_CERT, "利用者証明用電子証明書", "auth certificate", "binary",
                 "certificate:auth", access_by_profile=(("gpse", (c.PIN_AUTH,)),), padded=True,
                 section="3.1, 8"),
        FileSpec(c.EF_AUTH_CA_CERT, "利用者証明用CA証明書", "auth CA certificate", "binary",
                 "certificate:auth_ca", padded=True, section="3.1"),
        FileSpec(c.KEY_IC_PUBLIC, "SET PUBLIC IC KEY reference", None, "key", usage="none",
                 section="3.1, 4.6"),
        FileSpec(c.KEY_AUTH, "利用者証明用秘密鍵", "auth private key", "key", "key:auth",
                 access=(c.PIN_AUTH,), section="3.1, 4.5"),
        FileSpec(c.PIN_AUTH, "利用者証明用暗証番号", "auth PIN", "pin", "pin:auth",
                 policy=AUTH_PIN, section="3.1, 6"),
        FileSpec(c.KEY_SIGN, "署名用秘密鍵", "sign private key", "key", "key:sign",
                 access=(c.PIN_SIGN,), optional=True, section="3.1, 4.5"),
        FileSpec(c.PIN_SIGN, "署名用パスワード", "sign password", "pin", "pin:sign",
                 policy=SIGN_PASSWORD, optional=True, section="3.1, 6"),
    ),
    section="3.1",
)

# --- 券面事項入力補助AP (jpki-card.md 3.3) ------------------------------------------------------

_TEXT_ANY = (c.PIN_TEXT, c.PIN_TEXT_NUMBER_A, c.PIN_TEXT_NUMBER_B)

TEXT_AP = ApSpec(
    c.TEXT_AP_AID,
    c.AP_NAMES[c.TEXT_AP_AID],
    (
        FileSpec(c.EF_TEXT_MY_NUMBER, "個人番号", "individual number", "binary",
                 "text:my_number", access=(c.PIN_TEXT, c.PIN_TEXT_NUMBER_A), section="3.3"),
        FileSpec(c.EF_TEXT_BASIC_FOUR, "基本4情報", "name, address, birth date, sex", "binary",
                 "text:basic_four", access=(c.PIN_TEXT, c.PIN_TEXT_NUMBER_B), padded=True,
                 section="3.3"),
        FileSpec(c.EF_TEXT_SIGNATURE, "integrity record", None, "binary", "text:integrity",
                 access=_TEXT_ANY, section="3.3"),
        FileSpec(c.EF_TEXT_CV_CERT, "CV certificate", None, "binary", "text:cv_certificate",
                 section="3.3"),
        FileSpec(c.EF_TEXT_AP_INFO, "AP basic info", None, "binary", "text:ap_info",
                 section="3.3"),
        FileSpec(c.EF_TEXT_SESSION_KEY, "session-key public key", None, "binary",
                 "text:session_key", access=_TEXT_ANY, section="3.3"),
        FileSpec(c.EF_TEXT_SIGNED_KEY, "signed public key", None, "binary", "text:signed_key",
                 access=_TEXT_ANY, section="3.3"),
        FileSpec(c.EF_TEXT_0008, "unknown (16 x FF)", None, "binary", access=_TEXT_ANY,
                 fixed=b"\xff" * 16, section="3.3"),
        FileSpec(c.PIN_TEXT, "券面事項入力補助用暗証番号", "text AP PIN", "pin", "pin:text",
                 policy=TEXT_PIN, section="3.3, 6"),
        FileSpec(c.PIN_TEXT_BLOCKED, "blocked key 0012", None, "pin",
                 policy=blocked_policy("text-0012", "text AP key 0012"), section="3.3"),
        FileSpec(c.PIN_TEXT_NUMBER_A, "照合番号A (text AP)", "individual number as key", "pin",
                 "pin:number_a", policy=_collation("text-number-a", "照合番号A (text AP)", 12),
                 section="3.3"),
        FileSpec(c.PIN_TEXT_NUMBER_B, "照合番号B (text AP)",
                 "birth date + expiry + security code", "pin", "pin:number_b",
                 policy=_collation("text-number-b", "照合番号B (text AP)", 14), section="3.3"),
    ),
    profiles=_ICC,
    own_key="key:text",
    session_key_sw=SW.CONDITIONS_NOT_SATISFIED,  # MODEL (3.3): no session implemented
    section="3.3",
)

# --- 券面AP (jpki-card.md 3.4) ------------------------------------------------------------------

SURFACE_AP = ApSpec(
    c.SURFACE_AP_AID,
    c.AP_NAMES[c.SURFACE_AP_AID],
    (
        FileSpec(c.EF_SURFACE_AGE, "age record", None, "binary", "surface:age",
                 access=(c.PIN_SURFACE_BIRTH,), section="3.4"),
        FileSpec(c.EF_SURFACE_FACE, "card face", None, "binary", "surface:face",
                 access=(c.PIN_SURFACE_NUMBER_A, c.PIN_SURFACE_NUMBER_B), section="3.4"),
        FileSpec(c.EF_SURFACE_AP_INFO, "AP basic info", None, "binary", "surface:ap_info",
                 section="3.4"),
        FileSpec(c.EF_SURFACE_CV_CERT, "CV certificate", None, "binary",
                 "surface:cv_certificate", section="3.4"),
        FileSpec(c.EF_SURFACE_NUMBER_IMAGE, "rendered 個人番号", "individual number image",
                 "binary", "surface:number_image", access=(c.PIN_SURFACE_NUMBER_A,),
                 section="3.4"),
        FileSpec(c.EF_SURFACE_0006, "unknown", None, "binary", access=(), fixed=b"\xff" * 16,
                 section="3.4"),
        FileSpec(c.PIN_SURFACE_BIRTH, "生年月日 key (surface AP)", "birth-date key", "pin",
                 "pin:birth", policy=_collation("surface-birth", "生年月日 key (surface AP)", 6),
                 section="3.4"),
        FileSpec(c.PIN_SURFACE_NUMBER_B, "照合番号B (surface AP)",
                 "birth date + expiry + security code", "pin", "pin:number_b",
                 policy=_collation("surface-number-b", "照合番号B (surface AP)", 14),
                 section="3.4"),
        FileSpec(c.PIN_SURFACE_NUMBER_A, "照合番号A (surface AP)", "individual number as key",
                 "pin", "pin:number_a",
                 policy=_collation("surface-number-a", "照合番号A (surface AP)", 12),
                 section="3.4"),
    ),
    profiles=_ICC,
    own_key="key:surface",
    session_key_sw=SW.SESSION_KEY_NOT_SUPPORTED,
    section="3.4",
)

# --- 共通AP and 住基AP (jpki-card.md 3.5, all uncertain) -----------------------------------------

COMMON_AP = ApSpec(
    c.COMMON_AP_AID,
    c.AP_NAMES[c.COMMON_AP_AID],
    (
        FileSpec(c.EF_COMMON_RECORD, "serial, municipality, expiry", None, "record",
                 "common:record", section="3.5"),
        FileSpec(c.EF_COMMON_KEY_ID, "key reference", None, "binary", "common:key_reference",
                 section="3.5"),
        FileSpec(c.KEY_COMMON_INTERNAL_AUTH, "INTERNAL AUTHENTICATE key", None, "key",
                 "key:common", usage="internal-auth", section="3.5, 4.6"),
        FileSpec(c.PIN_JUKI, "共通AP PIN", "common AP PIN", "pin", "pin:text",
                 policy=COMMON_PIN, section="3.5"),
    ),
    profiles=_ICC,
    session_key_sw=SW.SESSION_KEY_NOT_SUPPORTED,
    section="3.5",
)

JUKI_AP = ApSpec(
    c.JUKI_AP_AID,
    c.AP_NAMES[c.JUKI_AP_AID],
    (
        FileSpec(c.EF_JUKI_KEY_ID, "key reference", None, "binary", "common:key_reference",
                 section="3.5"),
        FileSpec(c.PIN_JUKI, "住基 PIN", "住民基本台帳用暗証番号", "pin", "pin:text",
                 policy=JUKI_PIN, section="3.5"),
    ),
    profiles=_ICC,
    section="3.5",
)

#: Every application, in the order a card lists them.
APPLICATIONS: tuple[ApSpec, ...] = (JPKI_AP, TEXT_AP, SURFACE_AP, COMMON_AP, JUKI_AP)

_BY_AID = {ap.aid: ap for ap in APPLICATIONS}

#: The certificate EFs of the JPKI AP by the names clients, the CLI and notebooks use.
CERTIFICATE_EFS: dict[str, int] = {
    "sign": c.EF_SIGN_CERT,
    "sign_ca": c.EF_SIGN_CA_CERT,
    "auth": c.EF_AUTH_CERT,
    "auth_ca": c.EF_AUTH_CA_CERT,
}


def applications_for(profile: str) -> Iterator[ApSpec]:
    """The applications a token of ``profile`` holds (jpki-card.md 8)."""
    return (ap for ap in APPLICATIONS if profile in ap.profiles)


def application_spec(aid: bytes) -> ApSpec | None:
    """The table of the application with DF name ``aid``, if the card model knows it."""
    return _BY_AID.get(aid)


def object_label(aid: bytes | None, fid: int) -> str:
    """``"0018 利用者証明用暗証番号 (auth PIN)"`` in application ``aid``; the FID alone for an
    object the tables do not know (another card, another AP)."""
    ap = _BY_AID.get(aid or b"")
    row = ap.by_fid.get(fid) if ap is not None else None
    return row.label if row is not None else f"{fid:04X}"


def with_collation_tries(policy: PinPolicy, tries: int) -> PinPolicy:
    """A 照合番号 / birth-date policy with ``tries`` (MODEL, jpki-card.md 3.4)."""
    if policy.changeable or policy.always_blocked:
        return policy
    return dataclasses.replace(policy, max_tries=tries)


def _access_text(access: Access, ap: ApSpec) -> str:
    if access is None:
        return "free"
    if access == ():
        return "never"
    return " or ".join(f"{ap.by_fid[f].name_en or ap.by_fid[f].name_ja} ({f:04X})"
                       for f in access)


def markdown_table() -> str:
    """The tables as Markdown, for ``docs/card-files.md`` (generated, never edited by hand)."""
    lines = [
        "# The card's files (generated)",
        "",
        "Generated from `workbench/card/files.py` by `make docs` (`tools/make_docs.py`); do not",
        "edit by hand. Sections refer to [jpki-card.md](jpki-card.md).",
        "",
    ]
    for ap in APPLICATIONS:
        profiles = ", ".join(sorted(ap.profiles))
        lines += [f"## {ap.name}", "",
                  f"AID `{ap.aid.hex(' ').upper()}` — profiles: {profiles} — "
                  f"[jpki-card.md {ap.section}](jpki-card.md#s{ap.section})", "",
                  "| FID | name | kind | access | content | section |",
                  "|---|---|---|---|---|---|"]
        for f in ap.files:
            access = _access_text(f.access, ap)
            for profile, other in f.access_by_profile:
                access += f"; on {profile}: {_access_text(other, ap)}"
            content = f.content or ("constant" if f.fixed is not None else "—")
            if f.optional:
                content += " (optional)"
            name = f.name_ja + (f" — {f.name_en}" if f.name_en else "")
            lines.append(f"| `{f.fid:04X}` | {name} | {f.kind} | {access} | {content} | "
                         f"{f.section} |")
        lines.append("")
    return "\n".join(lines)

"""GlobalPlatform facts the simulated secure element uses, named once (globalplatform.md 3-5),
and the JPKI identifiers of the phone service (smartphone-service.md 15.1, MODEL).

Life-cycle states, privileges and the transitions allowed between states are data here, so the
SE's dispatcher, ``se show`` and the tests read the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from workbench.card.constants import JPKI_AP_AID

__all__ = [
    "DGI",
    "ISD_AID",
    "JPKI_ELF_AID",
    "JPKI_INSTANCE_AID",
    "JPKI_MODULE_AID",
    "JPKI_SSD_AID",
    "ApplicationState",
    "CardState",
    "EntryKind",
    "Privilege",
    "RegistryEntry",
    "SdState",
    "describe_privileges",
    "is_locked",
    "lock",
    "unlock",
]

# --- AIDs (globalplatform.md 5.1; smartphone-service.md 15.1, MODEL where invented) -----------

#: The GlobalPlatform Issuer Security Domain (8 bytes; the plastic card answers the 7-byte
#: form A0 00 00 01 51 00 00 in its MF state, jpki-card.md 2.1: a different thing).
ISD_AID = bytes.fromhex("A000000151000000")
#: The JPKI applet instance: the same AID as the card's JPKI AP, so readers select it alike.
JPKI_INSTANCE_AID = JPKI_AP_AID
JPKI_ELF_AID = bytes.fromhex("D392F00026010000")  # the package (MODEL)
JPKI_MODULE_AID = bytes.fromhex("D392F000260100000000")  # the applet class (MODEL)
JPKI_SSD_AID = bytes.fromhex("D392F000260100005344")  # the JPKI security domain "…SD" (MODEL)


class CardState(IntEnum):
    """Card (ISD) life cycle, globalplatform.md 3."""

    OP_READY = 0x01
    INITIALIZED = 0x07
    SECURED = 0x0F
    CARD_LOCKED = 0x7F
    TERMINATED = 0xFF


class ApplicationState(IntEnum):
    """Application life cycle, globalplatform.md 3 (application-specific states have the low
    three bits 111; ``0F`` is the JPKI applet's "personalised", smartphone-service.md 15.8)."""

    INSTALLED = 0x03
    SELECTABLE = 0x07
    PERSONALIZED = 0x0F  # application specific: the JPKI applet is ready (15.2 C10)


class SdState(IntEnum):
    """Security domain life cycle, globalplatform.md 3."""

    INSTALLED = 0x03
    SELECTABLE = 0x07
    PERSONALIZED = 0x0F


LOADED = 0x01  # executable load file (globalplatform.md 3)
LOCKED_BIT = 0x80  # application / SD: LOCKED = the current state with bit 8 set (3)


def is_locked(state: int) -> bool:
    return bool(state & LOCKED_BIT)


def lock(state: int) -> int:
    return state | LOCKED_BIT


def unlock(state: int) -> int:
    """Back to the state the entry had when it was locked (``8F`` → ``0F``; globalplatform.md
    3's "restores 07" holds for an application locked from 07)."""
    return state & ~LOCKED_BIT


def application_specific(state: int) -> bool:
    """An application-specific state SET STATUS may set: low three bits 111 (3)."""
    return state & 0x07 == 0x07 and not state & LOCKED_BIT


class Privilege(IntEnum):
    """Privilege bits as (byte index, mask) packed into one int: byte 1 in bits 16-23
    (globalplatform.md 4)."""

    SECURITY_DOMAIN = 0x800000
    DAP_VERIFICATION = 0x400000
    DELEGATED_MANAGEMENT = 0x200000
    CARD_LOCK = 0x100000
    CARD_TERMINATE = 0x080000
    CARD_RESET = 0x040000
    CVM_MANAGEMENT = 0x020000
    MANDATED_DAP = 0x010000
    TRUSTED_PATH = 0x008000
    AUTHORIZED_MANAGEMENT = 0x004000
    TOKEN_VERIFICATION = 0x002000
    GLOBAL_DELETE = 0x001000
    GLOBAL_LOCK = 0x000800
    GLOBAL_REGISTRY = 0x000400
    FINAL_APPLICATION = 0x000200
    GLOBAL_SERVICE = 0x000100
    RECEIPT_GENERATION = 0x000080
    CIPHERED_LOAD_FILE = 0x000040
    CONTACTLESS_ACTIVATION = 0x000020
    CONTACTLESS_SELF_ACTIVATION = 0x000010


#: A typical ISD: security domain, card lock, card terminate, card reset, CVM management
#: (byte 1 ``9E``), plus authorized management (globalplatform.md 4).
ISD_PRIVILEGES = 0x9E4000
#: The JPKI SSD under authorized management: ``80 40 00`` (4).
SSD_PRIVILEGES = 0x804000


def describe_privileges(value: int) -> list[str]:
    """Names of the privileges set in a 3-byte value (for ``se show``)."""
    names = []
    for p in Privilege:
        if value & p == p:
            names.append(p.name.lower().replace("_", " "))
    return names


class EntryKind(StrEnum):
    """What a registry entry is (globalplatform.md 3)."""

    ISD = "isd"
    SSD = "ssd"
    ELF = "elf"  # executable load file (a Java Card package)
    APPLICATION = "application"


@dataclass
class RegistryEntry:
    """One line of the SE's registry (globalplatform.md 3, GET STATUS 5.2)."""

    aid: bytes
    kind: EntryKind
    life_cycle: int
    privileges: int = 0
    sd_aid: bytes | None = None  # associated security domain
    elf_aid: bytes | None = None  # applications: their load file
    module_aid: bytes | None = None  # applications: their class
    modules: tuple[bytes, ...] = field(default_factory=tuple)  # load files: their classes

    @property
    def selectable(self) -> bool:
        if self.kind is EntryKind.ELF or is_locked(self.life_cycle):
            return False
        return self.life_cycle & 0x07 == 0x07 or self.kind is EntryKind.ISD

    @property
    def is_security_domain(self) -> bool:
        return self.kind in (EntryKind.ISD, EntryKind.SSD)


class DGI(IntEnum):
    """Data grouping identifiers the JPKI applet accepts in STORE DATA (smartphone-service.md
    15.2 C6, C7, C9 and 15.7; the A0xx ones are invented, MODEL)."""

    GENERATE_AUTH_KEY = 0xA017  # generate the RSA-2048 key pair 0017 in the SE, answer its public key
    GENERATE_SIGN_KEY = 0xA01A  # the same for 001A
    CLEAR_PIN = 0xA0F0  # value: FID of a PIN object: back to "not set", counter at maximum
    SIGN_CERTIFICATE = 0x0001
    SIGN_CA_CERTIFICATE = 0x0002
    TOKEN_INFO = 0x0006
    CERTIFICATE_PRESENCE = 0x0008
    AUTH_CERTIFICATE = 0x000A
    AUTH_CA_CERTIFICATE = 0x000B


#: Proprietary-class instructions that belong to GlobalPlatform (security domains); other
#: CLA 80 instructions (JICSAP's 80 2A, 80 32, …) belong to the JPKI applet (globalplatform.md 5).
GP_INS = frozenset({0x50, 0x82, 0xCA, 0xCB, 0xD8, 0xE2, 0xE4, 0xE6, 0xE8, 0xF0, 0xF2})

#: GET DATA tag of the registration receipt (smartphone-service.md 15.2 C12, MODEL).
TAG_REGISTRATION_RECEIPT = 0xDF70

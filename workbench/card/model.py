"""The objects inside a card application: EFs, keys and PIN references.

The card's file system is data: each application is a dict of FID → node, built once by
:mod:`workbench.card.personalise` and saved to the card image by :mod:`workbench.card.image`.
Only PIN references change after issuance (their digest and retry counter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from workbench.card.pin import PinPolicy

#: ``access`` of a node: ``None`` = free; otherwise the FIDs of the PIN references (in the same
#: application) any one of which, once verified, opens it (e.g. text AP EF 0001: PIN or 照合番号A);
#: ``()`` = never (protected objects).
Access = tuple[int, ...] | None


@dataclass
class BinaryEF:
    """A transparent EF. ``data`` is the whole allocated EF, filler included (jpki-card.md 4.1)."""

    data: bytes
    access: Access = None
    label: str = ""


@dataclass
class RecordEF:
    """A record-structured EF (共通AP EF 0001, jpki-card.md 3.5); records are numbered from 1."""

    records: list[bytes]
    access: Access = None
    label: str = ""


@dataclass
class KeyRef:
    """A private key object. Never readable; used by 80 2A or INTERNAL AUTHENTICATE.

    ``usage``: ``"sign"`` (80 2A with a selected key), ``"internal-auth"`` (00 88),
    ``"none"`` (an object that exists but does nothing, e.g. 0016).
    """

    key: rsa.RSAPrivateKey | None
    access: Access = None
    usage: str = "sign"
    label: str = ""


@dataclass
class PinRef:
    """A PIN / password key reference with its retry counter (jpki-card.md 4.3, 6)."""

    policy: PinPolicy
    digest: bytes
    tries_left: int
    label: str = ""

    def __repr__(self) -> str:  # never show the digest
        return f"PinRef({self.policy.name!r}, tries_left={self.tries_left})"

    @property
    def blocked(self) -> bool:
        return self.policy.always_blocked or self.tries_left == 0

    @property
    def is_set(self) -> bool:
        """False for a PIN object that has no value yet (the phone applet's PINs before the
        app registers them, smartphone-service.md 15.2 C10-C11): VERIFY then answers ``69 85``
        and RESET RETRY COUNTER may set it once."""
        return bool(self.digest) or self.blocked


Node = BinaryEF | RecordEF | KeyRef | PinRef


@dataclass
class Application:
    """One DF selected by name. ``own_key`` signs ``80 2A 00 00`` without a credential
    (text AP and surface AP, jpki-card.md 3.3/3.4); ``session_key_sw`` is what 80 AE answers."""

    aid: bytes
    name: str
    nodes: dict[int, Node] = field(default_factory=dict)
    own_key: rsa.RSAPrivateKey | None = None
    session_key_sw: int = 0x6982


#: MODEL choices where real cards are reported to differ (jpki-card.md 4.3, 10 item 3, 12).
VERIFIED_QUERY_ANSWERS = ("63Cx", "9000")


@dataclass(frozen=True)
class ModelOptions:
    """Behaviour the public sources leave open, chosen per card and stored in its image.

    ``verified_query``: what the empty VERIFY answers for a PIN verified in this session.
    ``"63Cx"`` (default) is what middleware requires (jpki-card.md 10 item 3: the tries left,
    never ``90 00``); ``"9000"`` is what some real cards are reported to answer once verified
    (clients such as jpki-rs and myna-card accept both), so client code can be tested against
    it.
    """

    verified_query: str = "63Cx"

    def __post_init__(self) -> None:
        if self.verified_query not in VERIFIED_QUERY_ANSWERS:
            raise ValueError(f"verified_query must be one of {VERIFIED_QUERY_ANSWERS}, "
                             f"got {self.verified_query!r}")

    @classmethod
    def from_meta(cls, data: object) -> ModelOptions:
        return cls(**data) if isinstance(data, dict) else cls()

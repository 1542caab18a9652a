"""Sample sessions: the recorded traces the workbench ships, and how they are made.

The traces in ``workbench/data/traces/`` (also reachable as ``data/traces/`` in a checkout)
are golden files (CONVENTIONS.md, Tests): notebooks and tests replay them, so they must come
from a reproducible card. The card is issued from fixed seeds at a fixed time, the PINs are
the documented test values, the login challenge and the signed document are fixed bytes (no
GET CHALLENGE, no randomness), and RSA PKCS#1 v1.5 signatures are deterministic
(jpki-card.md 4.5). Only the wall-clock fields change from run to run.

:func:`trace_path` finds a shipped trace through :mod:`importlib.resources`, so a notebook
copied out of the repository still finds it. ``tools/make_traces.py`` regenerates them.
Every key here is test-only material (a seeded key is known to anyone who knows the seed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from workbench.analysis import TracingTransport
from workbench.card import VirtualCard
from workbench.client import JpkiClient
from workbench.errors import WorkbenchError
from workbench.lifecycle import create_card
from workbench.pki import Authority, FixedClock
from workbench.timing import TimingModel
from workbench.transport import VirtualCardTransport

__all__ = [
    "LOGIN",
    "SAMPLES",
    "SIGNING",
    "comparable",
    "make_card",
    "record_login",
    "record_signing",
    "shipped_traces",
    "stale",
    "trace_path",
    "write_all",
]


def shipped_traces() -> Path:
    """The folder of the traces shipped with the package."""
    return Path(str(resources.files("workbench") / "data" / "traces"))


def trace_path(name: str) -> Path:
    """A shipped trace by file name (``"card-read-and-login.jsonl"``, ``"signing.jsonl"``)."""
    path = shipped_traces() / name
    if not path.is_file():
        names = ", ".join(sorted(p.name for p in shipped_traces().glob("*.jsonl")))
        raise WorkbenchError(f"no shipped trace {name!r}; the package has {names}")
    return path



CARD_SEED = 7
AUTHORITY_SEED = b"tests"
ISSUED_AT = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
AUTH_PIN = "1234"  # test-only value, never a real PIN
SIGN_PASSWORD = "ABC123"  # test-only value
TEXT_PIN = "5678"  # test-only value (not used by these traces; keeps the card = tests' card)

#: What a relying party would send as its login challenge; fixed so the trace is reproducible.
LOGIN_CHALLENGE = hashlib.sha256(b"jpki-workbench fixed login challenge #1").digest()
#: The document whose SHA-256 the signing trace signs.
DOCUMENT = "申請書 (application form) — jpki-workbench sample document, synthetic".encode()

LOGIN = "card-read-and-login.jsonl"
SIGNING = "signing.jsonl"

#: Fields that hold wall-clock time and may differ between two regenerations.
WALL_CLOCK_FIELDS = frozenset({"created", "start", "end", "duration_ms", "t_ms"})
#: Fields derived from the bytes by other modules: the decoder's view (workbench.apdu's SW
#: texts, the card labels) and modelled time (workbench.timing). Compared unless asked not to.
DERIVED_FIELDS = frozenset({"decoded", "timing", "timing_model"})


def make_card() -> VirtualCard:
    """The plastic card (``icc``) every shipped trace is recorded from."""
    authority = Authority(seed=AUTHORITY_SEED, clock=FixedClock(ISSUED_AT))
    return create_card(
        "icc",
        seed=CARD_SEED,
        authority=authority,
        issued_at=ISSUED_AT,
        auth_pin=AUTH_PIN,
        sign_password=SIGN_PASSWORD,
        text_pin=TEXT_PIN,
    )


def _metadata(scenario: str, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "card": {
            "profile": "icc",
            "seed": CARD_SEED,
            "authority_seed": AUTHORITY_SEED.decode(),
            "issued_at": ISSUED_AT.isoformat(),
        },
        "generator": "tools/make_traces.py",
        **extra,
    }


def record_login(path: Path, card: VirtualCard | None = None) -> dict[str, Any]:
    """Token type, CA + auth certificates, tries query, VERIFY auth PIN, sign the challenge.

    The login of jpki-card.md 4.7: the relying party checks the auth certificate and the
    signature over its challenge. Returns what the client obtained, for checks.
    """
    card = card or make_card()
    tracer = TracingTransport(
        VirtualCardTransport(card),
        path,
        description="My Number Card: read the auth CA and auth certificates, then log in "
        "(利用者証明用電子証明書でログイン)",
        timing=TimingModel(),
        metadata=_metadata(
            "card-read-and-login",
            challenge=LOGIN_CHALLENGE.hex(),
            signature_hash="sha256",
            pins="test values; masked in this file",
        ),
    )
    with tracer:
        client = JpkiClient(tracer)
        token = client.token_type()
        auth_ca = client.read_certificate_der("auth_ca")
        auth = client.read_certificate_der("auth")
        tries = client.tries_left("auth")
        signature = client.sign(LOGIN_CHALLENGE, key="auth", pin=AUTH_PIN)
    return {
        "token": token,
        "auth_ca": auth_ca,
        "auth": auth,
        "tries": tries,
        "signature": signature,
    }


def record_signing(path: Path, card: VirtualCard | None = None) -> dict[str, Any]:
    """VERIFY the sign password, read the sign certificate, sign a document hash (4.7)."""
    card = card or make_card()
    digest = hashlib.sha256(DOCUMENT).digest()
    tracer = TracingTransport(
        VirtualCardTransport(card),
        path,
        description="My Number Card: sign a document with the signing certificate "
        "(署名用電子証明書で電子署名)",
        timing=TimingModel(),
        metadata=_metadata(
            "signing",
            document_sha256=digest.hex(),
            signature_hash="sha256",
            pins="test values; masked in this file",
        ),
    )
    with tracer:
        client = JpkiClient(tracer)
        sign = client.read_certificate_der("sign", pin=SIGN_PASSWORD)
        signature = client.sign(digest=digest, key="sign")
    return {"sign": sign, "signature": signature, "digest": digest}


SAMPLES: dict[str, Callable[[Path, VirtualCard | None], dict[str, Any]]] = {
    LOGIN: record_login,
    SIGNING: record_signing,
}


def write_all(out: Path) -> None:
    """Record every scenario into ``out``, each on a freshly issued card."""
    out.mkdir(parents=True, exist_ok=True)
    for name, record in SAMPLES.items():
        record(out / name, None)


def comparable(path: Path, *, derived: bool = True) -> list[dict[str, Any]]:
    """The lines of a trace without wall-clock fields (and without the derived fields if
    ``derived`` is False): what two regenerations must agree on."""
    drop = WALL_CLOCK_FIELDS | (frozenset() if derived else DERIVED_FIELDS)
    lines = path.read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


def stale(shipped: Path, fresh: Path, *, derived: bool = True) -> list[str]:
    """Names of the traces in ``shipped`` that differ from those in ``fresh``."""
    return [
        name
        for name in SAMPLES
        if not (shipped / name).exists()
        or comparable(shipped / name, derived=derived) != comparable(fresh / name, derived=derived)
    ]

"""The virtual My Number card and Android phone token (jpki-card.md)."""

from workbench.card.builder import (
    DEFAULT_AUTH_PIN,
    DEFAULT_SIGN_PASSWORD,
    JPKI_CERT_EFS,
    PROFILES,
    create_card,
)
from workbench.card.virtual_card import VirtualCard, holder_from_json

__all__ = [
    "DEFAULT_AUTH_PIN",
    "DEFAULT_SIGN_PASSWORD",
    "JPKI_CERT_EFS",
    "PROFILES",
    "VirtualCard",
    "create_card",
    "holder_from_json",
]

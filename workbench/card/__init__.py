"""The virtual My Number card and Android phone token (jpki-card.md).

Layering (ARCHITECTURE): ``card`` imports only ``apdu``, ``tlv``, ``holder``, ``errors``,
``hooks`` and ``sqlitefile``; nothing from ``pki``, ``client``, ``transport`` or ``cli``. Its
applications are tables (:mod:`workbench.card.files`); a card is personalised from outside
(:meth:`VirtualCard.personalise`, called by :func:`workbench.lifecycle.create_card`).
"""

from workbench.card.files import CERTIFICATE_EFS, PROFILES
from workbench.card.personalise import CardContent
from workbench.card.token import Token
from workbench.card.virtual_card import AppView, ObjectView, VirtualCard

__all__ = [
    "CERTIFICATE_EFS",
    "PROFILES",
    "AppView",
    "CardContent",
    "ObjectView",
    "Token",
    "VirtualCard",
]

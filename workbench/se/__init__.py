"""The Android token's GlobalPlatform secure element (globalplatform.md; smartphone-service.md
13-15).

- :mod:`workbench.se.scp03`: SCP03, host side and card side (globalplatform.md 6, 7);
- :class:`SecureElement` (:mod:`workbench.se.element`): the ISD, the JPKI security domain,
  the registry with its life cycles, card content management, logical channels, and the JPKI
  applet it hosts (:mod:`workbench.se.applet`); persisted as an SE image
  (:mod:`workbench.se.image`);
- :class:`TsmSession` (:mod:`workbench.se.tsm`): the TSM's scripts over SCP03.

Layering (ARCHITECTURE): ``se`` builds on ``card`` (the applet is the card's JPKI AP),
``apdu``, ``tlv`` and ``sqlitefile``; ``lifecycle`` uses it, nothing below does.
"""

from workbench.se import gp
from workbench.se.applet import JpkiApplet
from workbench.se.element import (
    MAX_CHANNELS,
    SecureElement,
    SeError,
    default_key_sets,
    load_token,
)
from workbench.se.image import SeImageError, is_se_image
from workbench.se.scp03 import *  # noqa: F403 - the public names of scp03, listed in its __all__
from workbench.se.scp03 import __all__ as _scp03_all
from workbench.se.tsm import TsmError, TsmSession

__all__ = [
    *_scp03_all,
    "MAX_CHANNELS",
    "JpkiApplet",
    "SeError",
    "SeImageError",
    "SecureElement",
    "TsmError",
    "TsmSession",
    "default_key_sets",
    "gp",
    "is_se_image",
    "load_token",
]

"""The Android token's GlobalPlatform Secure Element (globalplatform.md).

For now this package holds the SCP03 secure channel (:mod:`workbench.se.scp03`,
globalplatform.md 6), host side and card side; its public names are re-exported here.
"""

from workbench.se.scp03 import *  # noqa: F403 - the public names of scp03, listed in its __all__
from workbench.se.scp03 import __all__ as _scp03_all

__all__ = [*_scp03_all]

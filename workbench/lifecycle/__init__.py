"""The service around the certificates: issuing cards and phone tokens, and (as it grows) the
smartphone certificate service's actors, states and rules.

Layering (ARCHITECTURE): ``lifecycle`` sits above ``card``, ``pki``, ``se`` and ``client``
and may import all of them; nothing below imports it. :mod:`workbench.lifecycle.issuance` is
the one place that puts an authority's keys and certificates onto a card.
"""

from workbench.lifecycle.issuance import (
    DEFAULT_AUTH_PIN,
    DEFAULT_SIGN_PASSWORD,
    create_card,
    issue_card,
    load_token,
)

__all__ = ["DEFAULT_AUTH_PIN", "DEFAULT_SIGN_PASSWORD", "create_card", "issue_card", "load_token"]

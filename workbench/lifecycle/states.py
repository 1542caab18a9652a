"""The smartphone certificate pair's states and the events that move it, as data
(smartphone-service.md 15.8, MODEL), with the revocation reason each event publishes.

The state machine belongs to the pair of phone certificates (署名用 and 利用者証明用) on one
phone; the GP applet life cycle runs beside it (:data:`APPLET_LIFE_CYCLE`). Every transition
the service makes is checked against :data:`TRANSITIONS`, so a rule the spec does not allow
cannot happen by accident, and tests and plots read the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workbench.errors import WorkbenchError
from workbench.pki import RevocationReason

__all__ = [
    "APPLET_LIFE_CYCLE",
    "EVENTS",
    "LIVE_STATES",
    "TRANSITIONS",
    "Event",
    "EventRule",
    "PairState",
    "StateError",
    "next_state",
]


class PairState(StrEnum):
    """States of a phone's certificate pair (15.8)."""

    NONE = "NONE"
    APPLIED = "APPLIED"
    READY_FOR_REGISTRATION = "READY_FOR_REGISTRATION"
    ACTIVE = "ACTIVE"
    ON_HOLD = "ON_HOLD"
    ACTIVE_AUTH_ONLY_PENDING_SIGN = "ACTIVE_AUTH_ONLY_PENDING_SIGN"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Event(StrEnum):
    """What happens to a phone's certificates (15.8's event table)."""

    APPLY = "apply"
    ISSUED = "issued"  # server-side issuance procedure done (B3)
    REGISTERED = "registered"  # written into the SE, active (C13)
    HOTLINE_HOLD = "hotline-hold"
    RELEASE = "release"  # found: auth hold lifted, sign revoked and re-issued (9.2)
    SIGN_REREGISTERED = "sign-reregistered"  # the new signing certificate written (R3)
    HOTLINE_REVOKE = "hotline-revoke"  # not found
    USER_REVOCATION = "user-revocation"  # sale, trade-in, repair, disposal (8)
    SUPERSEDED = "superseded"  # issuance on a newer phone (5)
    BASIC_FACTS_CHANGED = "basic-facts-changed"  # 4 basic facts changed on the card (10)
    DEATH_OR_ABROAD = "death-or-abroad"
    CA_INCIDENT = "ca-incident"  # simulation only
    EXPIRY = "expiry"


@dataclass(frozen=True)
class EventRule:
    """What an event does to each certificate of the pair, and the CRL reason it publishes
    (15.8). ``sign``/``auth``: ``"revoke"``, ``"hold"``, ``"release"``, ``"reissue"``
    (revoke, then a new certificate), ``"keep"`` or ``None`` (the event issues, nothing to
    publish)."""

    sign: str | None
    auth: str | None
    reason: RevocationReason | None
    note: str


EVENTS: dict[Event, EventRule] = {
    Event.SUPERSEDED: EventRule("revoke", "revoke", RevocationReason.SUPERSEDED,
                                "issuance on a new device revokes the old device's pair"),
    Event.USER_REVOCATION: EventRule("revoke", "revoke", RevocationReason.CESSATION_OF_OPERATION,
                                     "the owner revokes in the app before a sale or repair"),
    Event.HOTLINE_HOLD: EventRule("hold", "hold", RevocationReason.CERTIFICATE_HOLD,
                                  "loss reported to the hotline: both on hold"),
    Event.RELEASE: EventRule("reissue", "release", RevocationReason.SUPERSEDED,
                             "found: auth hold removed (removeFromCRL), sign revoked and "
                             "re-issued"),
    Event.HOTLINE_REVOKE: EventRule("revoke", "revoke", RevocationReason.KEY_COMPROMISE,
                                    "not found: revoked instead of held"),
    Event.BASIC_FACTS_CHANGED: EventRule("revoke", "keep", RevocationReason.AFFILIATION_CHANGED,
                                         "4 basic facts changed: the sign certificate carries "
                                         "them, the auth certificate does not (10, MODEL)"),
    Event.DEATH_OR_ABROAD: EventRule("revoke", "revoke", RevocationReason.CESSATION_OF_OPERATION,
                                     "death or moving abroad"),
    Event.CA_INCIDENT: EventRule("revoke", "revoke", RevocationReason.CA_COMPROMISE,
                                 "CA incident (simulation only)"),
    Event.APPLY: EventRule(None, None, None, "application sent (A8)"),
    Event.ISSUED: EventRule(None, None, None, "server-side issuance procedure done (B3)"),
    Event.REGISTERED: EventRule(None, None, None, "written into the SE and active (C13)"),
    Event.SIGN_REREGISTERED: EventRule(None, None, None, "new signing certificate written (R3)"),
    Event.EXPIRY: EventRule(None, None, None, "Not After passed"),
}

#: States in which a pair holds certificates (possibly on hold): at most one pair per person
#: is in one of them (smartphone-service.md 5).
LIVE_STATES = frozenset({PairState.ACTIVE, PairState.ON_HOLD,
                         PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN})

#: Allowed transitions (15.8): state → {event: next state}.
TRANSITIONS: dict[PairState, dict[Event, PairState]] = {
    PairState.NONE: {Event.APPLY: PairState.APPLIED},
    PairState.APPLIED: {Event.ISSUED: PairState.READY_FOR_REGISTRATION,
                        Event.SUPERSEDED: PairState.REVOKED},
    PairState.READY_FOR_REGISTRATION: {Event.REGISTERED: PairState.ACTIVE,
                                       Event.SUPERSEDED: PairState.REVOKED},
    PairState.ACTIVE: {
        Event.HOTLINE_HOLD: PairState.ON_HOLD,
        Event.HOTLINE_REVOKE: PairState.REVOKED,
        Event.USER_REVOCATION: PairState.REVOKED,
        Event.SUPERSEDED: PairState.REVOKED,
        Event.BASIC_FACTS_CHANGED: PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN,
        Event.DEATH_OR_ABROAD: PairState.REVOKED,
        Event.CA_INCIDENT: PairState.REVOKED,
        Event.EXPIRY: PairState.EXPIRED,
    },
    PairState.ON_HOLD: {
        Event.RELEASE: PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN,
        Event.BASIC_FACTS_CHANGED: PairState.ON_HOLD,
        Event.HOTLINE_REVOKE: PairState.REVOKED,
        Event.USER_REVOCATION: PairState.REVOKED,
        Event.SUPERSEDED: PairState.REVOKED,
        Event.DEATH_OR_ABROAD: PairState.REVOKED,
        Event.CA_INCIDENT: PairState.REVOKED,
        Event.EXPIRY: PairState.EXPIRED,
    },
    PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN: {
        Event.SIGN_REREGISTERED: PairState.ACTIVE,
        Event.BASIC_FACTS_CHANGED: PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN,
        Event.HOTLINE_HOLD: PairState.ON_HOLD,
        Event.HOTLINE_REVOKE: PairState.REVOKED,
        Event.USER_REVOCATION: PairState.REVOKED,
        Event.SUPERSEDED: PairState.REVOKED,
        Event.DEATH_OR_ABROAD: PairState.REVOKED,
        Event.CA_INCIDENT: PairState.REVOKED,
        Event.EXPIRY: PairState.EXPIRED,
    },
    PairState.REVOKED: {},
    PairState.EXPIRED: {},
}

#: The GP life cycle of the JPKI applet beside the pair (15.8): (from, to, step).
APPLET_LIFE_CYCLE: tuple[tuple[str, str, str], ...] = (
    ("absent", "07 SELECTABLE", "INSTALL (C4)"),
    ("07 SELECTABLE", "0F personalised", "SET STATUS (C10)"),
    ("0F personalised", "8F locked", "SET STATUS lock (S3)"),
    ("8F locked", "0F personalised", "SET STATUS unlock (R3)"),
    ("0F personalised", "deleted", "DELETE (15.6, C3)"),
    ("8F locked", "deleted", "DELETE (15.6, C3)"),
)


class StateError(WorkbenchError):
    """An event the state machine does not allow in the current state."""


def next_state(state: PairState, event: Event) -> PairState:
    """The state after ``event``; :class:`StateError` when 15.8 does not allow it."""
    allowed = TRANSITIONS[state]
    if event not in allowed:
        names = ", ".join(e.value for e in allowed) or "none"
        raise StateError(f"{event.value} is not possible for a phone certificate pair that is "
                         f"{state.value} (possible: {names})")
    return allowed[event]

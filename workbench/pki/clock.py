"""Time for the simulated authority: a clock you can hold still or move.

Certificate validity in JPKI is anchored on Japanese calendar days: every Not After is
23:59:59 JST, i.e. ``14:59:59Z`` (jpki-card.md 9.2, 9.3, 9.7). Validation, rollover and
revocation scenarios are only reproducible when "now" is under the caller's control, so every
part of :mod:`workbench.pki` that needs the current time takes a :class:`Clock` or an explicit
``at`` datetime; nothing sleeps (CONVENTIONS.md, "No sleeping for time").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from workbench.errors import PkiError

#: Japan Standard Time, UTC+9, no daylight saving time.
JST = timezone(timedelta(hours=9), "JST")


def as_utc(t: datetime, what: str = "time") -> datetime:
    """Return ``t`` converted to UTC; naive datetimes are refused.

    A naive datetime is ambiguous by nine hours here (JST vs UTC), which is exactly the size
    of error that moves a Not After onto the wrong calendar day.
    """
    if not isinstance(t, datetime):
        raise PkiError(f"{what} must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise PkiError(f"{what} {t.isoformat()} has no timezone; pass an aware datetime "
                       "(e.g. tzinfo=UTC or tzinfo=JST)")
    return t.astimezone(UTC)


def jst_date(t: datetime) -> date:
    """The calendar day in Japan at instant ``t`` (the day an issuance 'happens' on)."""
    return as_utc(t).astimezone(JST).date()


def end_of_day_jst(d: date) -> datetime:
    """23:59:59 JST on day ``d`` = ``d`` 14:59:59Z: the Not After form (jpki-card.md 9.7)."""
    return datetime.combine(d, time(14, 59, 59), tzinfo=UTC)


def start_of_day_jst(d: date) -> datetime:
    """00:00:00 JST on day ``d`` (= the previous day 15:00:00Z), as an aware UTC datetime."""
    return datetime.combine(d, time(0, 0, 0), tzinfo=JST).astimezone(UTC)


class Clock:
    """Source of the current instant (timezone-aware, UTC).

    A plain base class rather than a :class:`typing.Protocol` so that ``isinstance`` works and
    subclasses get a clear error if they forget :meth:`now`; any object with a ``now()`` that
    returns an aware datetime is accepted where a clock is expected.
    """

    def now(self) -> datetime:
        """The current instant as an aware UTC datetime."""
        raise NotImplementedError


class SystemClock(Clock):
    """The host's wall clock; the default when no clock is given."""

    def now(self) -> datetime:
        """The current instant from the operating system, in UTC."""
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that only moves when told to: for tests, notebooks and replayed scenarios."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "clock start")

    def now(self) -> datetime:
        """The instant the clock was last set or advanced to."""
        return self._now

    def set(self, t: datetime) -> None:
        """Jump to ``t`` (may go backwards: validation at a past moment is a normal use)."""
        self._now = as_utc(t, "clock time")

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (or back, for a negative ``delta``) and return the new instant."""
        if not isinstance(delta, timedelta):
            raise PkiError(f"advance() needs a timedelta, not {type(delta).__name__}")
        self._now = self._now + delta
        return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"

"""Time for the simulated authority: a clock you can hold still or move.

Certificate validity in JPKI is anchored on Japanese calendar days: every Not After is
23:59:59 JST, i.e. ``14:59:59Z`` (jpki-card.md 9.2, 9.3, 9.7). Validation, rollover and
revocation scenarios are only reproducible when "now" is under the caller's control, so every
part of :mod:`workbench.pki` that needs the current time takes a :class:`Clock` or an explicit
``at`` datetime; nothing sleeps (CONVENTIONS.md, "No sleeping for time").
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

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


class FileClock(Clock):
    """A controllable clock shared by processes: the current instant is written in a file.

    ``pki serve --clock FILE`` in one process and ``pki hold --clock FILE`` in another agree on
    "now", and a test or a scenario moves both by rewriting the file (:meth:`set`,
    :meth:`advance`) instead of sleeping (CONVENTIONS.md). The file holds one ISO 8601 instant
    with a time zone; it is re-read whenever it changes. A missing or unreadable file is a
    one-line :class:`~workbench.errors.PkiError`.
    """

    def __init__(self, path: str | os.PathLike[str], start: datetime | None = None) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._now: datetime | None = None
        if start is not None:
            self.set(start)
        else:
            self.now()  # fail now, not at the first request, if the file is not a clock

    def now(self) -> datetime:
        """The instant in the file (re-read when the file changed)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise PkiError(f"clock file {self.path}: {exc.strerror or exc}") from None
        key = (st.st_mtime_ns, st.st_size)
        if key != self._seen or self._now is None:
            text = self.path.read_text(encoding="utf-8").strip()
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise PkiError(f"clock file {self.path} does not hold an ISO 8601 time "
                               f"(got {text[:40]!r})") from None
            self._now = as_utc(value, f"clock file {self.path}")
            self._seen = key
        return self._now

    def set(self, t: datetime) -> None:
        """Write ``t`` (atomically: a reader never sees half a time)."""
        value = as_utc(t, "clock time")
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(value.isoformat() + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._seen = None

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (or back) by ``delta`` and return the new instant."""
        if not isinstance(delta, timedelta):
            raise PkiError(f"advance() needs a timedelta, not {type(delta).__name__}")
        value = self.now() + delta
        self.set(value)
        return value

    def __repr__(self) -> str:
        return f"FileClock({str(self.path)!r})"

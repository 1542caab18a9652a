"""When the loss hotline answers: hotline schedules on the Japanese calendar.

A lost phone's certificates are suspended by a call to the マイナンバー総合フリーダイヤル
(smartphone-service.md 9.1). When the call is *acted on* depends on the hotline's hours, and the
public sources disagree: the 2023 launch coverage gives weekdays 9:30–20:00 and weekends and
holidays 9:30–17:30, the later J-LIS pages 24 hours, 365 days. Both are kept as presets
(:data:`SCHEDULES`, MODEL in 9.1) so a scenario can show how long a stolen phone stays usable
under each; the gap between the loss and the suspension is what the relying parties see in
their CRL/OCSP answers (smartphone-service.md 14, requirement 3).

Hours are local times in Japan (JST, UTC+9, no daylight saving time). "Holidays" are the
national holidays of 国民の祝日に関する法律, including substitute holidays (振替休日) and the
"citizens' holiday" (国民の休日), taken from the maintained ``holidays`` library rather than
re-derived here: the equinox days and the moved Olympic holidays of 2020/2021 are exactly the
cases a home-made rule gets wrong.

MODEL choices (smartphone-service.md 9.1 says nothing about them):

- a day's hours are the half-open interval ``[open, close)``: a call at 20:00:00 on a weekday
  finds the line closed, one at 09:30:00 finds it open;
- weekends and national holidays share one set of hours; 2 and 3 January and 29–31 December
  are ordinary days (they are not national holidays) — no year-end closure is modelled;
- every instant is handled as an aware datetime; naive ones are refused, because nine hours
  of ambiguity (JST vs UTC) moves a call across closing time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal

import holidays

from workbench.errors import WorkbenchError
from workbench.pki.clock import JST

__all__ = [
    "HOLIDAY_YEARS",
    "SCHEDULES",
    "CalendarError",
    "HotlineSchedule",
    "holiday_name",
    "is_national_holiday",
    "schedule",
]

#: The free number for loss and theft reports (smartphone-service.md 9.1).
HOTLINE_NUMBER = "0120-95-0178"

#: Years for which the ``holidays`` library knows Japan's national holidays: from 1949 (the
#: first full year of the 1948 holiday law) to 2099. Years after the current one are the
#: library's projection (equinox days are announced by the Cabinet a year ahead).
HOLIDAY_YEARS = range(holidays.Japan.start_year, holidays.Japan.end_year + 1)

#: A day's opening hours, local JST wall-clock times ``(open, close)``, close exclusive.
Hours = tuple[time, time]

#: How long :meth:`HotlineSchedule.next_opening` looks ahead before it gives up. Japan's
#: longest run of consecutive days off (Golden Week 2019) was ten days; a year is plenty.
_SEARCH_DAYS = 366


class CalendarError(WorkbenchError, ValueError):
    """A naive datetime, a date outside the known holiday years, or an unknown schedule."""


def _jst_day(d: date) -> date:
    """The calendar day in Japan for ``d``: a date as is, an aware datetime converted to JST."""
    if isinstance(d, datetime):
        return _aware(d, "day").astimezone(JST).date()
    if not isinstance(d, date):
        raise CalendarError(f"expected a date, not {type(d).__name__}")
    return d


def _aware(t: datetime, what: str) -> datetime:
    if not isinstance(t, datetime):
        raise CalendarError(f"{what} must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise CalendarError(
            f"{what} {t.isoformat()} has no timezone; pass an aware datetime "
            "(e.g. tzinfo=JST or tzinfo=UTC)"
        )
    return t


@cache
def _japan(language: str) -> holidays.HolidayBase:
    """One cached calendar per language; it fills in each year on first use."""
    return holidays.country_holidays("JP", language=language)


def _covered(day: date) -> date:
    if day.year not in HOLIDAY_YEARS:
        raise CalendarError(
            f"{day.isoformat()}: Japan's national holidays are known for "
            f"{HOLIDAY_YEARS.start}–{HOLIDAY_YEARS.stop - 1} only"
        )
    return day


def is_national_holiday(d: date) -> bool:
    """Whether ``d`` is a national holiday in Japan (substitute holidays included).

    Weekends are *not* holidays here; :meth:`HotlineSchedule.hours_on` treats both alike.
    An aware datetime is taken as the JST day it falls on. Covers :data:`HOLIDAY_YEARS`
    (1949–2099); other years raise :class:`CalendarError` instead of answering "no".
    """
    return _covered(_jst_day(d)) in _japan("ja")


def holiday_name(d: date, *, language: Literal["ja", "en"] = "ja") -> str | None:
    """The holiday's official name (``"元日"``, ``"振替休日"``) or ``None`` on other days.

    ``language="en"`` gives the English name (``"New Year's Day"``). Same coverage as
    :func:`is_national_holiday`.
    """
    if language not in ("ja", "en"):
        raise CalendarError(f"language must be 'ja' or 'en', not {language!r}")
    calendar = _japan("ja" if language == "ja" else "en_US")
    return calendar.get(_covered(_jst_day(d)))


def _fmt(hours: Hours | None) -> str:
    if hours is None:
        return "closed"
    return f"{hours[0]:%H:%M}–{hours[1]:%H:%M}"


@dataclass(frozen=True)
class HotlineSchedule:
    """When a hotline answers, as data (smartphone-service.md 9.1, MODEL presets).

    Either ``always_open`` or day hours: ``weekday_hours`` for Monday–Friday that are not
    national holidays, ``holiday_hours`` for Saturdays, Sundays and national holidays. ``None``
    for one of them means closed on those days. Times are JST wall-clock times; ``close`` is
    exclusive (module docstring).
    """

    name: str
    label_en: str
    label_ja: str
    weekday_hours: Hours | None = None
    holiday_hours: Hours | None = None
    always_open: bool = False
    phone: str = HOTLINE_NUMBER
    source: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise CalendarError("a hotline schedule needs a name")
        if self.always_open:
            if self.weekday_hours is not None or self.holiday_hours is not None:
                raise CalendarError(
                    f"schedule {self.name!r}: always_open takes no weekday or holiday hours"
                )
            return
        if self.weekday_hours is None and self.holiday_hours is None:
            raise CalendarError(
                f"schedule {self.name!r} is never open; give weekday or holiday hours "
                "or always_open=True"
            )
        for kind, hours in (("weekday", self.weekday_hours), ("holiday", self.holiday_hours)):
            if hours is None:
                continue
            if (
                len(hours) != 2
                or not all(isinstance(h, time) and h.tzinfo is None for h in hours)
                or not hours[0] < hours[1]
            ):
                raise CalendarError(
                    f"schedule {self.name!r}: {kind} hours must be (open, close) naive JST "
                    f"times with open < close, got {hours!r}"
                )

    def hours_on(self, day: date) -> Hours | None:
        """The ``(open, close)`` JST times on the Japanese calendar day ``day``; ``None`` when
        closed all day. An always-open schedule has no day hours: it raises, ask
        :meth:`is_open` instead."""
        if self.always_open:
            raise CalendarError(f"schedule {self.name!r} is always open; it has no day hours")
        day = _jst_day(day)
        if day.weekday() >= 5 or is_national_holiday(day):
            return self.holiday_hours
        return self.weekday_hours

    def is_open(self, t: datetime) -> bool:
        """Whether a call at instant ``t`` reaches an operator (``open <= t < close``)."""
        local = _aware(t, "t").astimezone(JST)
        if self.always_open:
            return True
        hours = self.hours_on(local.date())
        if hours is None:
            return False
        return hours[0] <= local.time() < hours[1]

    def next_opening(self, t: datetime) -> datetime:
        """When a loss reported at ``t`` is acted on: ``t`` itself if open, else the next
        opening instant (over nights, weekends and holidays). Always an aware UTC datetime."""
        t_utc = _aware(t, "t").astimezone(UTC)
        if self.always_open:
            return t_utc
        local = t_utc.astimezone(JST)
        day = local.date()
        for _ in range(_SEARCH_DAYS):
            hours = self.hours_on(day)
            if hours is not None:
                opens = datetime.combine(day, hours[0], tzinfo=JST)
                closes = datetime.combine(day, hours[1], tzinfo=JST)
                if local < closes:
                    return max(opens, local).astimezone(UTC)
            day += timedelta(days=1)
        raise CalendarError(  # pragma: no cover - __post_init__ forbids a never-open schedule
            f"schedule {self.name!r} does not open within {_SEARCH_DAYS} days of {t.isoformat()}"
        )

    def open_intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The open periods within ``[start, end)``, clipped to it, as UTC pairs (for plots)."""
        lo = _aware(start, "start").astimezone(UTC)
        hi = _aware(end, "end").astimezone(UTC)
        if hi < lo:
            raise CalendarError(f"end {hi.isoformat()} is before start {lo.isoformat()}")
        if lo == hi:
            return []
        if self.always_open:
            return [(lo, hi)]
        out: list[tuple[datetime, datetime]] = []
        day = lo.astimezone(JST).date()
        last = hi.astimezone(JST).date()
        while day <= last:
            hours = self.hours_on(day)
            if hours is not None:
                a = max(lo, datetime.combine(day, hours[0], tzinfo=JST).astimezone(UTC))
                b = min(hi, datetime.combine(day, hours[1], tzinfo=JST).astimezone(UTC))
                if a < b:
                    out.append((a, b))
            day += timedelta(days=1)
        return out

    def __str__(self) -> str:
        if self.always_open:
            hours = "open 24 hours, 365 days"
        else:
            hours = (
                f"weekdays {_fmt(self.weekday_hours)}, weekends and national holidays "
                f"{_fmt(self.holiday_hours)} JST (closing time exclusive)"
            )
        return f"{self.name} — {self.label_en} / {self.label_ja}, tel. {self.phone}: {hours}"


#: The two presets of smartphone-service.md 9.1 (MODEL: the simulated hotline's schedule).
SCHEDULES: dict[str, HotlineSchedule] = {
    s.name: s
    for s in (
        HotlineSchedule(
            name="itmedia-2023",
            label_en="Loss hotline (hours of the 2023 launch coverage)",
            label_ja="マイナンバー総合フリーダイヤル（2023年開始時の受付時間）",
            weekday_hours=(time(9, 30), time(20, 0)),
            holiday_hours=(time(9, 30), time(17, 30)),
            source="smartphone-service.md 9.1 (ITM-2305)",
        ),
        HotlineSchedule(
            name="jlis-24h",
            label_en="Loss and theft reports, 24 hours (later J-LIS pages)",
            label_ja="紛失・盗難の一時停止受付（24時間365日）",
            always_open=True,
            source="smartphone-service.md 9.1 (J-LIS lost.html, JPKI-FAQ)",
        ),
    )
}


def schedule(name: str) -> HotlineSchedule:
    """A preset from :data:`SCHEDULES` by name; an unknown name lists the allowed ones."""
    try:
        return SCHEDULES[name]
    except (KeyError, TypeError):
        allowed = ", ".join(sorted(SCHEDULES))
        raise CalendarError(f"unknown hotline schedule {name!r}; choose one of: {allowed}") from None

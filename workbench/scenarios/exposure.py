"""The exposure window of a lost phone: from the moment it is lost, how long each relying
service would still accept its certificates (issue 10, part 3).

A lost phone's certificates are put on hold by a call to the loss hotline (smartphone-service.md
9.1, 15.4 S2). Until a relying service learns of the hold, whoever holds the phone can still
use them. How long that is depends on four things, each a parameter here:

(a) the hotline's hours (9.1: the 2023 launch hours ``itmedia-2023`` or the later 24-hour
    service ``jlis-24h``, :mod:`workbench.lifecycle.calendar`): a call while it is closed is
    acted on at the next opening;
(b) how long the owner takes to notice the loss (``notice_hours``);
(c) how the service checks revocation (11.3): OCSP sees the registry at once, a CRL only with
    the next publication;
(d) how the service caches CRLs (``crl_refresh_hours``).

:func:`exposure_frame` sweeps a week of loss times in closed form (no simulation), one row per
loss time and configuration; :func:`summary` gives median and maximum exposure per
configuration; :func:`plot_exposure` draws it; :func:`check_against_simulation` replays sample
rows in a real :class:`~workbench.lifecycle.Simulation` and finds, by bisection on its
calendar, the minute each service stops accepting the phone's certificate.

Closed form (all instants whole minutes; ``I`` the CRL interval, ``E`` the CRL epoch)::

    noticed_at          = loss_at + notice_hours
    hold_at             = schedule.next_opening(noticed_at)
    ocsp_accepted_until = hold_at
    crl_accepted_until  = E + (floor((hold_at - E) / I) + 1) · I   # first boundary > hold_at
    exposure (hours)    = accepted_until - loss_at

"Accepted until" is the first instant the service refuses (exclusive end of acceptance).

MODEL choices (smartphone-service.md says nothing about them; each is a parameter or stated
here so a reader can disagree with it):

- **Loss times**: one week from a Monday 00:00 JST, every ``step_minutes`` (15 → 672 points).
  ``week_start`` picks the week; the default is the week of 2025-10-06 (no holiday, every
  service of 11.1 that takes the auth certificate has started), ``"holiday"`` the week of
  2025-10-13, whose Monday is スポーツの日 (a national holiday: weekend hours, 9.1).
- **Resolution**: whole minutes. Notice times, CRL intervals and keep times must be whole
  minutes, so every instant of the closed form is one the minute-resolution check can meet.
- **Noticing**: the owner notices the loss ``notice_hours`` after it and calls the hotline at
  once; nothing else delays the call.
- **Hotline**: a call while the hotline is closed is acted on at its next opening
  (:meth:`~workbench.lifecycle.calendar.HotlineSchedule.next_opening`, 9.1 MODEL); the
  owner asks for a hold, not for revocation (15.8: hotline report → certificateHold), and the
  hold is recorded at that instant. Nobody lifts it within the window.
- **The finder**: uses the phone at any moment; the phone PIN is not counted as a barrier
  (the question is what the relying side still accepts, not whether the finder can unlock).
- **OCSP** (11.3 "real time"): the service asks on every check and the responder answers from
  the registry as of that instant (its cache is invalidated by the registry change), so
  acceptance ends exactly at the hold.
- **CRL publication** (11.3 "updated periodically"; :mod:`workbench.pki.crl`): publications
  at ``E + k · I`` with ``E`` = :data:`~workbench.pki.crl.CRL_EPOCH` (1970-01-01 00:00 JST, so
  daily CRLs appear at 00:00 JST); the publication at boundary ``P`` lists the registry as of
  ``P − 1 s``. A hold therefore appears in the first publication *strictly after* it: a hold
  landing exactly on a boundary waits a whole interval. nextUpdate is the next boundary.
- **CRL caching by the service** (:class:`~workbench.lifecycle.relying.RelyingParty`): the
  service checks on every login and keeps a downloaded CRL until its nextUpdate or until
  ``crl_refresh_hours`` have passed since the download, whichever comes first
  (``crl_cache``; ``None``: until nextUpdate), and downloads the publication in force as soon
  as it drops its copy. Consequence, derived rather than assumed: a copy it still keeps at
  ``t`` was published at the latest boundary ``≤ t`` (its nextUpdate is still ahead), so the
  copy in use is always the publication in force and ``crl_refresh_hours`` never changes the
  exposure; it only adds downloads. No cache could do worse without refusing everyone: an
  older list is past its nextUpdate, which a hard-fail service treats as no revocation
  information. The check against the simulation confirms this for the values given.

The check (:func:`check_against_simulation`): for each sample row, a simulated world on the
row's hotline schedule, CRL interval and CRL caching, in which ``mynaportal-login`` checks by
OCSP and ``convenience-store`` by CRL (both take the auth certificate, 11.1); a person gets a
phone pair an hour before the loss, the phone is lost (offline) at ``loss_at``, the owner calls
the hotline at ``noticed_at``, and each service is asked about the phone's auth certificate at
probe instants. The calendar only moves forward, so a probe earlier than the world's clock is
answered by a replay of the same world from its start; the replays share the card and SE keys
(generated once per call, kept in memory only), so each is the same world. The search asks
both services at 1, 2, 4, … minutes after the minute before the loss until each has refused
(one world), then bisects each bracket to the minute; a refusal costs a replay for any
later-asked earlier minute, which is why it gallops first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import product
from numbers import Real
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.lifecycle.calendar import HOLIDAY_YEARS, SCHEDULES, HotlineSchedule
from workbench.lifecycle.services import SERVICES, available
from workbench.pki.clock import JST
from workbench.pki.crl import CRL_EPOCH
from workbench.scenarios.model import ScenarioError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from workbench.lifecycle.simulation import Simulation

__all__ = [
    "COLUMNS",
    "DEFAULT_WEEK",
    "METHODS",
    "WEEKS",
    "check_against_simulation",
    "exposure_frame",
    "plot_exposure",
    "summary",
]

#: Named weeks (MODEL): each starts on a Monday 00:00 JST.
WEEKS: dict[str, date] = {
    "default": date(2025, 10, 6),  # an ordinary week, after every auth service of 11.1 started
    "holiday": date(2025, 10, 13),  # Monday 2025-10-13 is スポーツの日 (Sports Day)
}
DEFAULT_WEEK = WEEKS["default"]

#: The revocation methods compared (11.3) and the relying service the check asks for each
#: (both take the auth certificate, 11.1).
METHODS: dict[str, str] = {"ocsp": "mynaportal-login", "crl": "convenience-store"}

#: The columns of :func:`exposure_frame`, in order.
COLUMNS = (
    "configuration", "schedule", "notice_hours", "crl_interval_hours", "crl_refresh_hours",
    "loss_at", "noticed_at", "hold_at", "hotline_closed", "ocsp_accepted_until",
    "crl_accepted_until", "ocsp_exposure_h", "crl_exposure_h",
)

#: The Android service launched on 2023-05-11 (smartphone-service.md 2): no week before it.
_FIRST_WEEK = date(2023, 5, 15)
_WEEK = timedelta(days=7)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_MAX_NOTICE_HOURS = 24 * 7
_MAX_INTERVAL_HOURS = 24 * 366  # AuthorityProfile.crl_interval allows up to 366 days
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# --- arguments ---------------------------------------------------------------------------------

def _week(value: object) -> date:
    """The Monday a week starts, from None, a name in WEEKS, an ISO date, a date, or an aware
    datetime at 00:00 JST."""
    allowed = ("the Monday the week starts (a date, an ISO date text, or an aware datetime at "
               f"00:00 JST) or one of: {', '.join(WEEKS)}")
    if value is None:
        return DEFAULT_WEEK
    day: date
    if isinstance(value, str):
        if value in WEEKS:
            return WEEKS[value]
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ScenarioError(f"week_start: {value!r} is not {allowed}") from None
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ScenarioError(f"week_start: {value.isoformat()} has no time zone; give "
                                f"{allowed}")
        local = value.astimezone(JST)
        if local.time() != time(0):
            raise ScenarioError(f"week_start: {value.isoformat()} is not 00:00 JST; give {allowed}")
        day = local.date()
    elif isinstance(value, date):
        day = value
    else:
        raise ScenarioError(f"week_start: {value!r} is not {allowed}")
    if day.weekday() != 0:
        raise ScenarioError(f"week_start: {day.isoformat()} is a {_WEEKDAYS_EN[day.weekday()]}, "
                            f"not a Monday; give {allowed}")
    last = HOLIDAY_YEARS.stop - 1
    if day < _FIRST_WEEK or (day + timedelta(days=14)).year > last:
        raise ScenarioError(f"week_start: {day.isoformat()} is outside the weeks this analysis "
                            f"covers: Mondays from {_FIRST_WEEK.isoformat()} (the service "
                            f"started 2023-05-11) to mid-December {last} (the holiday calendar)")
    return day


def _schedules(value: object) -> list[HotlineSchedule]:
    names = [value] if isinstance(value, str) else value
    allowed = ", ".join(sorted(SCHEDULES))
    if not isinstance(names, list | tuple) or not names:
        raise ScenarioError(f"schedule: {value!r} is not a schedule name or a list of them "
                            f"({allowed})")
    out = []
    for name in names:
        if not isinstance(name, str) or name not in SCHEDULES:
            raise ScenarioError(f"schedule: {name!r} is not one of: {allowed}")
        if SCHEDULES[name] not in out:
            out.append(SCHEDULES[name])
    return out


def _hours(name: str, value: object, *, low: float, high: float, low_open: bool,
           allow_none: bool = False) -> list[float | None]:
    """Hours as a list (one number, ``None`` where allowed, or a sequence of them), each in
    whole minutes within ``low``..``high`` (``low`` excluded when ``low_open``)."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    bound = f"{'more than' if low_open else 'at least'} {low:g} and at most {high:g}"
    allowed = (f"a number of hours (or a list of them) {bound}, in whole minutes"
               + (", or None" if allow_none else ""))
    if not items:
        raise ScenarioError(f"{name}: an empty list; give {allowed}")
    out: list[float | None] = []
    for item in items:
        if item is None and allow_none:
            hours: float | None = None
        else:
            if isinstance(item, bool) or not isinstance(item, Real):
                raise ScenarioError(f"{name}: {item!r} is not {allowed}")
            hours = float(item)
            minutes = hours * 60
            if (not math.isfinite(hours) or hours < low or (low_open and hours == low)
                    or hours > high or abs(minutes - round(minutes)) > 1e-9):
                raise ScenarioError(f"{name}: {item!r} is not {allowed}")
            hours = round(minutes) / 60
        if hours not in out:
            out.append(hours)
    return out


def _step(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1440:
        raise ScenarioError(f"step_minutes: {value!r} is not a whole number of minutes from 1 "
                            "to 1440")
    return value


def _minutes(hours: float) -> timedelta:
    return timedelta(minutes=round(hours * 60))


# --- the closed form ---------------------------------------------------------------------------

def _first_publication_after(t: datetime, interval: timedelta) -> datetime:
    """The first CRL boundary strictly after ``t``: the publication at boundary ``P`` lists
    the registry as of ``P − 1 s`` (module docstring), so a change exactly at ``P`` waits for
    ``P + interval``. ``t`` is in whole seconds."""
    k = (t - CRL_EPOCH) // interval
    return (CRL_EPOCH + (k + 1) * interval).astimezone(JST)


@dataclass(frozen=True)
class _Config:
    schedule: HotlineSchedule
    notice_hours: float
    crl_interval_hours: float
    crl_refresh_hours: float | None

    @property
    def label(self) -> str:
        text = (f"{self.schedule.name}, notice {self.notice_hours:g} h, "
                f"CRL every {self.crl_interval_hours:g} h")
        if self.crl_refresh_hours is not None:
            text += f", RP keeps a CRL ≤ {self.crl_refresh_hours:g} h"
        return text

    def row(self, loss: datetime) -> dict[str, Any]:
        noticed = loss + _minutes(self.notice_hours)
        hold = self.schedule.next_opening(noticed).astimezone(JST)
        crl_until = _first_publication_after(hold, _minutes(self.crl_interval_hours))
        return {
            "configuration": self.label, "schedule": self.schedule.name,
            "notice_hours": self.notice_hours, "crl_interval_hours": self.crl_interval_hours,
            "crl_refresh_hours": (math.nan if self.crl_refresh_hours is None
                                  else self.crl_refresh_hours),
            "loss_at": loss, "noticed_at": noticed, "hold_at": hold,
            "hotline_closed": hold > noticed, "ocsp_accepted_until": hold,
            "crl_accepted_until": crl_until,
            "ocsp_exposure_h": (hold - loss) / _HOUR, "crl_exposure_h": (crl_until - loss) / _HOUR,
        }


def exposure_frame(*, week_start: date | datetime | str | None = None,
                   schedule: str | Sequence[str] = "itmedia-2023",
                   notice_hours: float | Sequence[float] = (0, 2),
                   crl_interval_hours: float | Sequence[float] = 24,
                   crl_refresh_hours: float | None | Sequence[float | None] = None,
                   step_minutes: int = 15) -> pd.DataFrame:
    """The exposure window for every loss time of one week and every configuration, in closed
    form (module docstring), one row per loss time × configuration, columns :data:`COLUMNS`.

    A configuration is one schedule × CRL interval × CRL refresh × notice time; every
    parameter but ``week_start`` and ``step_minutes`` takes one value or a list. Instants are
    JST; ``*_exposure_h`` are hours from ``loss_at`` to the method's ``*_accepted_until`` (the
    first instant the service refuses); ``hotline_closed``: the call at ``noticed_at`` found
    the hotline closed. Bad arguments raise :class:`ScenarioError`.
    """
    monday = _week(week_start)
    schedules = _schedules(schedule)
    notices = _hours("notice_hours", notice_hours, low=0, high=_MAX_NOTICE_HOURS, low_open=False)
    intervals = _hours("crl_interval_hours", crl_interval_hours, low=0,
                       high=_MAX_INTERVAL_HOURS, low_open=True)
    refreshes = _hours("crl_refresh_hours", crl_refresh_hours, low=0, high=_MAX_INTERVAL_HOURS,
                       low_open=True, allow_none=True)
    step = timedelta(minutes=_step(step_minutes))
    start = datetime.combine(monday, time(0), tzinfo=JST)
    losses = [start + i * step for i in range(-(-_WEEK // step))]
    rows = [
        _Config(s, n, i, r).row(loss)  # type: ignore[arg-type]
        for s, i, r, n in product(schedules, intervals, refreshes, notices)
        for loss in losses
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("loss_at", "noticed_at", "hold_at", "ocsp_accepted_until",
                   "crl_accepted_until"):
        frame[column] = pd.to_datetime(frame[column]).dt.tz_convert(JST)
    return frame


def _check_frame(frame: object, needed: Sequence[str] = COLUMNS) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ScenarioError(f"frame: a DataFrame from exposure_frame() is needed, not "
                            f"{type(frame).__name__}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ScenarioError(f"frame: not an exposure_frame() result; missing columns "
                            f"{', '.join(missing)}")
    if frame.empty:
        raise ScenarioError("frame: it has no rows; give an exposure_frame() result")
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: the share of loss times whose call found the hotline closed, and the
    median and maximum exposure in hours for OCSP and for CRLs."""
    frame = _check_frame(frame)
    rows = []
    for label, group in frame.groupby("configuration", sort=False):
        first = group.iloc[0]
        rows.append({
            "configuration": label, "schedule": first["schedule"],
            "notice_hours": first["notice_hours"],
            "crl_interval_hours": first["crl_interval_hours"],
            "crl_refresh_hours": first["crl_refresh_hours"],
            "loss_times": len(group),
            "hotline_closed_share": round(float(group["hotline_closed"].mean()), 4),
            **{f"{m}_{stat}_h": round(float(getattr(group[f"{m}_exposure_h"], stat)()), 4)
               for m in METHODS for stat in ("median", "max")},
        })
    return pd.DataFrame(rows)


# --- the plot ----------------------------------------------------------------------------------

def _closed_periods(schedule: HotlineSchedule, start: datetime,
                    end: datetime) -> list[tuple[datetime, datetime]]:
    """The complement of the schedule's open intervals within ``[start, end)``."""
    out = []
    cursor = start
    for a, b in schedule.open_intervals(start, end):
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def plot_exposure(frame: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Hours of exposure against the loss time: one line per configuration and method (OCSP
    solid, CRL dashed; so ``2 × configurations`` lines), the hours a schedule's hotline is
    closed shaded, days and hours labelled in JST. Returns the matplotlib Figure (``ax`` to
    draw into an existing one)."""
    import matplotlib.dates as mdates

    frame = _check_frame(frame)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(11, 4.8))
    else:
        fig = ax.figure
    start = frame["loss_at"].min().to_pydatetime()
    end = frame["loss_at"].max().to_pydatetime()
    span_end = max(end, start + _WEEK)
    shades = ("0.85", "0.70")
    for i, name in enumerate(dict.fromkeys(frame["schedule"])):
        hotline = SCHEDULES[name]
        if hotline.always_open:
            continue
        for j, (a, b) in enumerate(_closed_periods(hotline, start, span_end)):
            ax.axvspan(a, b, color=shades[i % len(shades)], alpha=0.5, lw=0,
                       label=f"hotline closed ({name})" if j == 0 else None)
    colours = [f"C{i}" for i in range(10)]
    for i, (label, group) in enumerate(frame.groupby("configuration", sort=False)):
        times = [t.to_pydatetime() for t in group["loss_at"]]
        colour = colours[i % len(colours)]
        ax.plot(times, group["ocsp_exposure_h"], color=colour, lw=1.4, ls="-",
                label=f"{label} · OCSP")
        ax.plot(times, group["crl_exposure_h"], color=colour, lw=1.4, ls="--",
                label=f"{label} · CRL")
    ax.set_xlim(start, span_end)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(mdates.DayLocator(tz=JST))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %m-%d", tz=JST))
    ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=(6, 12, 18), tz=JST))
    ax.set_xlabel("loss time (JST)")
    ax.set_ylabel("exposure (hours the certificates stay accepted)")
    ax.set_title(f"Lost phone: exposure window by loss time, week of {start:%Y-%m-%d} "
                 "(smartphone-service.md 9.1, 11.3)")
    ax.grid(axis="y", alpha=0.3)
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    return fig


# --- the check against the simulation ----------------------------------------------------------

_PERSON = "hanako"
_PHONE = "phone"


@dataclass
class _World:
    """One run of the simulated world for one sample row (module docstring)."""

    sim: Simulation
    cert: x509.Certificate
    loss: datetime
    noticed: datetime
    lost: bool = False
    reported: bool = False

    def advance_to(self, t: datetime) -> None:
        """Move the calendar to ``t``, losing the phone and calling the hotline on the way."""
        if not self.lost and t >= self.loss:
            self.sim.set_time(self.loss)
            phone = self.sim.phone(_PHONE)
            phone.in_hand = False
            phone.online = False
            self.lost = True
        if not self.reported and t >= self.noticed:
            self.sim.set_time(self.noticed)
            self.sim.report_loss(_PERSON)
            self.reported = True
        self.sim.set_time(t)

    def accepted(self, service: str, t: datetime) -> bool:
        self.advance_to(t)
        return self.sim.service(service).check(self.cert, usage="auth").accepted


@dataclass
class _Replays:
    """Worlds for one sample: a probe goes to the world whose clock is latest but not after
    it; when every world is past it, a new replay of the same world is built."""

    build: Callable[[], _World]
    worlds: list[_World] = field(default_factory=list)
    probes: int = 0

    def accepted(self, service: str, t: datetime) -> bool:
        usable = [w for w in self.worlds if w.sim.now() <= t]
        if usable:
            world = max(usable, key=lambda w: w.sim.now())
        else:
            world = self.build()
            self.worlds.append(world)
        self.probes += 1
        return world.accepted(service, t)

    def close(self) -> None:
        for world in self.worlds:
            world.sim.close()
        self.worlds.clear()


def _first_refusals(replays: _Replays, services: Sequence[str], lo: datetime,
                    bound: datetime) -> dict[str, datetime | None]:
    """For each service, the first minute after ``lo`` it refuses, at minute resolution.

    Steps of 1, 2, 4, … minutes forward from ``lo``, every service asked at each step, until
    each has refused once (all in one world: the calendar only moves forward), then, per
    service, bisection between its last acceptance and that refusal. ``None`` for a service
    that already refuses at ``lo`` or still accepts at ``bound``.
    """
    last: dict[str, datetime] = {}
    found: dict[str, datetime | None] = {}
    for service in services:
        if replays.accepted(service, lo):
            last[service] = lo
        else:
            found[service] = None
    refused: dict[str, datetime] = {}
    t, step = lo, _MINUTE
    while len(refused) < len(last) and t < bound:
        t, step = min(t + step, bound), step * 2
        for service in last:
            if service not in refused:
                if replays.accepted(service, t):
                    last[service] = t
                else:
                    refused[service] = t
    for service, accepted_at in last.items():
        if service not in refused:
            found[service] = None
            continue
        a, b = accepted_at, refused[service]
        while b - a > _MINUTE:
            mid = a + (b - a) // _MINUTE // 2 * _MINUTE
            if replays.accepted(service, mid):
                a = mid
            else:
                b = mid
        found[service] = b
    return found


def _key_pool() -> Callable[[str], rsa.RSAPrivateKey]:
    """Card and SE keys by label, generated on first use and reused by every replay of one
    check (memory only; the simulation's ``key_source``)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys: dict[str, rsa.RSAPrivateKey] = {}

    def source(label: str) -> rsa.RSAPrivateKey:
        if label not in keys:
            keys[label] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return keys[label]

    return source


def _world_builder(row: pd.Series, keys: Callable[[str], rsa.RSAPrivateKey]
                   ) -> Callable[[], _World]:
    from workbench.lifecycle.simulation import Simulation

    loss = row["loss_at"].to_pydatetime()
    noticed = row["noticed_at"].to_pydatetime()
    refresh = row["crl_refresh_hours"]
    crl_cache = None if pd.isna(refresh) else _minutes(float(refresh))
    interval = _minutes(float(row["crl_interval_hours"]))

    def build() -> _World:
        sim = Simulation(start=loss - _HOUR, hotline=row["schedule"], crl_interval=interval,
                         revocation="ocsp", revocation_by_service={METHODS["crl"]: "crl"},
                         crl_cache=crl_cache, key_source=keys)
        try:
            person = sim.add_person(_PERSON)
            phone = sim.add_phone(_PHONE, person)
            for step in (lambda: phone.app.apply(person), lambda: phone.app.register()):
                result = step()
                if not result.ok:
                    raise ScenarioError(f"samples: the simulated issuance before "
                                        f"{loss.isoformat()} failed: {result.outcome}")
                sim.advance(timedelta(minutes=3))
            assert phone.se is not None
            cert = phone.se.certificates()["auth"]
        except BaseException:
            sim.close()
            raise
        return _World(sim, cert, loss, noticed)

    return build


def _sample_labels(frame: pd.DataFrame, count: int) -> list[Hashable]:
    """``count`` rows: a weekday loss in open hours, a Friday-night loss, the loss whose hold
    lands nearest a CRL boundary, then rows spread evenly over the frame."""
    loss = frame["loss_at"].dt
    weekday = (loss.day_of_week < 5) & ~frame["hotline_closed"]
    at_eleven = weekday & (loss.hour == 11) & (loss.minute == 0)
    friday_night = (loss.day_of_week == 4) & (loss.hour == 22) & (loss.minute == 0)
    interval = pd.to_timedelta(frame["crl_interval_hours"], unit="h")
    after = frame["crl_accepted_until"] - frame["hold_at"]  # in (0, interval]
    distance = pd.concat([after, interval - after], axis=1).min(axis=1)
    picks: list[Hashable] = []
    for mask in (at_eleven if at_eleven.any() else weekday,
                 friday_night if friday_night.any() else frame["hotline_closed"]):
        hits = frame.index[mask.to_numpy()]
        if len(hits):
            picks.append(_plain(hits[0]))
    picks.append(_plain(distance.idxmin()))
    rest = [_plain(i) for i in frame.index if i not in picks]
    stride = max(1, len(rest) // max(1, count))
    picks.extend(rest[::stride])
    return list(dict.fromkeys(picks))[:count]


def _plain(label: Any) -> Hashable:
    """A numpy scalar index label as the Python value it stands for."""
    return label.item() if hasattr(label, "item") else label


def _labels(frame: pd.DataFrame, samples: object) -> list[Hashable]:
    if isinstance(samples, int) and not isinstance(samples, bool):
        if not 1 <= samples <= len(frame):
            raise ScenarioError(f"samples: {samples} is not a number of rows from 1 to "
                                f"{len(frame)}, or a list of the frame's index labels")
        return _sample_labels(frame, samples)
    if isinstance(samples, list | tuple | pd.Index) and len(samples):
        missing = [s for s in samples if s not in frame.index]
        if missing:
            raise ScenarioError(f"samples: {missing[0]!r} is not an index label of the frame; "
                                "give a number of rows or a list of index labels")
        return list(dict.fromkeys(samples))
    raise ScenarioError(f"samples: {samples!r} is not a number of rows or a non-empty list of "
                        "the frame's index labels")


def _simulate(row: pd.Series, keys: Callable[[str], rsa.RSAPrivateKey]
              ) -> tuple[dict[str, datetime | None], int, int]:
    """({method: first refused minute}, worlds built, probes) for one sample row."""
    loss = row["loss_at"].to_pydatetime()
    for method, key in METHODS.items():
        ok, why = available(SERVICES[key], loss)
        if not ok:
            raise ScenarioError(f"samples: the check asks {key} ({method}) and {why}")
    interval = _minutes(float(row["crl_interval_hours"]))
    # A bound that needs no closed form: days past the longest closure of either schedule
    # (16 h), plus a whole CRL interval. A service still accepting there is reported (None).
    bound = row["noticed_at"].to_pydatetime() + timedelta(days=3) + interval
    replays = _Replays(_world_builder(row, keys))
    try:
        found = _first_refusals(replays, list(METHODS.values()), loss - _MINUTE, bound)
        return ({m: found[k] for m, k in METHODS.items()}, len(replays.worlds),
                replays.probes)
    finally:
        replays.close()


def check_against_simulation(frame: pd.DataFrame,
                             samples: int | Sequence[Hashable] = 3) -> pd.DataFrame:
    """Compare the closed form with the simulation for sample rows of ``frame``.

    ``samples``: a number of rows (picked as a weekday loss in open hours, a Friday-night
    loss, the loss whose hold is nearest a CRL boundary, then spread evenly) or a list of
    the frame's index labels. For each row and method: the closed form's accepted-until, the
    first minute the simulated service refused (found by bisection on the simulated
    calendar; ``NaT`` if it refused already before the loss or still accepted days later),
    ``same``, and ``worlds`` / ``probes``: the replays built and the checks asked for the
    row, both methods together (0 for a row whose world and loss an earlier row already
    answered). Loss times must fall on days both services of :data:`METHODS` accept
    smartphone certificates.
    """
    frame = _check_frame(frame)
    labels = _labels(frame, samples)
    keys = _key_pool()
    done: dict[tuple[Any, ...], tuple[dict[str, datetime | None], int, int]] = {}
    rows = []
    for label in labels:
        row = frame.loc[label]
        memo = (row["schedule"], float(row["crl_interval_hours"]),
                None if pd.isna(row["crl_refresh_hours"]) else float(row["crl_refresh_hours"]),
                row["loss_at"], row["noticed_at"])
        if memo in done:
            results, worlds, probes = done[memo][0], 0, 0
        else:
            done[memo] = _simulate(row, keys)
            results, worlds, probes = done[memo]
        for method, found in results.items():
            closed = row[f"{method}_accepted_until"]
            simulated = pd.NaT if found is None else pd.Timestamp(found).tz_convert(JST)
            rows.append({
                "sample": label, "configuration": row["configuration"],
                "loss_at": row["loss_at"], "hold_at": row["hold_at"], "method": method,
                "service": METHODS[method], "closed_form": closed, "simulated": simulated,
                "same": bool(found is not None and simulated == closed),
                "worlds": worlds, "probes": probes,
            })
    out = pd.DataFrame(rows)
    for column in ("loss_at", "hold_at", "closed_form", "simulated"):
        out[column] = pd.to_datetime(out[column]).dt.tz_convert(JST)
    return out

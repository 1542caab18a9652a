"""Plots for the notebooks (matplotlib). They draw what :mod:`workbench.scenarios` and
:mod:`workbench.lifecycle` computed; no protocol logic lives here (ARCHITECTURE).

- :func:`scenario_gantt`: a scenario's modelled time as a timeline, one row per step, each
  APDU or message a segment split into air, card, host and network time;
- :func:`apdu_bars`: per-APDU stacked bars labelled with the trace's seq and a short name;
- :func:`certificate_timeline`: the calendar life of every certificate (card and phone, sign
  and auth) with the service's events marked;
- :func:`state_diagram`: the phone certificate pair's state machine with one state lit;
- :func:`timing_grid`: modelled time of one session across bit rates and card profiles;
- :func:`workbench.scenarios.exposure.plot_exposure` is re-exported as :func:`exposure`.

Japanese labels need a CJK font: :func:`use_cjk_font` (called on import) puts Noto Sans CJK
(Debian ``fonts-noto-cjk``) first in matplotlib's fallback list when it is installed.
Times people read are JST (labelled); protocol times stay UTC where the protocol says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta, timezone
from typing import Any

import matplotlib
import matplotlib.patches
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

from workbench.lifecycle.states import TRANSITIONS, PairState
from workbench.scenarios.plotting import COLOURS, timing_chart

__all__ = [
    "COLOURS",
    "JST",
    "STATE_COLOURS",
    "apdu_bars",
    "certificate_timeline",
    "scenario_gantt",
    "state_diagram",
    "timing_chart",
    "timing_grid",
    "use_cjk_font",
]

JST = timezone(timedelta(hours=9), "JST")
_LABELS = {"air_ms": "air (ISO 14443-B)", "card_ms": "card / SE", "host_ms": "host",
           "network_ms": "network"}
#: Colour of each registry state in calendar plots.
STATE_COLOURS = {"good": "#54A24B", "held": "#F2B701", "revoked": "#E45756",
                 "unknown": "#BAB0AC"}
_CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic")


def use_cjk_font() -> str | None:
    """Put a Japanese-capable font first in matplotlib's sans-serif list (keeping the rest as
    fallbacks); returns its name, or None when none is installed (glyphs would be boxes)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in _CJK_FONTS:
        if name in installed:
            current = [f for f in matplotlib.rcParams["font.sans-serif"] if f != name]
            matplotlib.rcParams["font.sans-serif"] = [name, *current]
            matplotlib.rcParams["font.family"] = "sans-serif"
            return name
    return None


CJK_FONT = use_cjk_font()


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def _short(rec: dict[str, Any]) -> str:
    if rec.get("label"):
        return str(rec["label"])
    return str(rec.get("what", ""))


def scenario_gantt(timing: pd.DataFrame, *, title: str = "", ax: Any = None) -> Figure:
    """A timeline of modelled time (seconds from the first APDU, steps one after another):
    one row per step, each APDU/message a bar split by component. ``timing`` is
    :attr:`ScenarioRun.timing`; server-side messages (a relying party's OCSP query) are drawn
    on their step's row too. No user time (typing, holding the card) is modelled."""
    rows = timing.copy()
    rows["total"] = rows[list(COLOURS)].sum(axis=1)
    rows = rows[rows["total"] > 0]
    steps = list(dict.fromkeys(zip(rows["step"], rows["action"], strict=True)))
    fig, ax = _axes(ax, (10, 0.5 * max(len(steps), 1) + 1.5))
    labels = [f"{s}. {a}" for s, a in steps]
    position = {key: i for i, key in enumerate(steps)}
    t = 0.0
    seen: set[str] = set()
    for rec in rows.itertuples():
        y = position[(rec.step, rec.action)]
        for comp, colour in COLOURS.items():
            width = getattr(rec, comp) / 1000
            if width <= 0:
                continue
            ax.barh(y, width, left=t, color=colour, height=0.6,
                    label=_LABELS[comp] if comp not in seen else None)
            seen.add(comp)
            t += width
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("modelled time from the first APDU (s)")
    ax.set_title(title or "where the time goes, step by step")
    if seen:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def apdu_bars(timing: pd.DataFrame, *, title: str = "", ax: Any = None,
              channels: Iterable[str] = ("NFC", "OMAPI", "RF")) -> Figure:
    """Per-APDU stacked bars (air, card, host), x labelled ``seq what`` as in the trace, so the
    chart and the tables name each APDU alike."""
    rows = timing[timing["channel"].isin(list(channels))]
    fig, ax = _axes(ax, (max(6.0, 0.28 * len(rows) + 2), 3.6))
    labels = [f"{r.seq} {str(r.what)[:14]}" for r in rows.itertuples()]
    bottom = [0.0] * len(rows)
    for comp in ("air_ms", "card_ms", "host_ms"):
        values = list(rows[comp])
        ax.bar(range(len(rows)), values, bottom=bottom, color=COLOURS[comp], label=_LABELS[comp])
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(rows)), labels, rotation=90, fontsize="x-small")
    ax.set_ylabel("modelled time (ms)")
    ax.set_xlabel("trace seq and command")
    ax.set_title(title or "modelled time per APDU")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def certificate_timeline(states: pd.DataFrame, events: pd.DataFrame | None = None, *,
                         x: str = "auto", title: str = "", ax: Any = None) -> Figure:
    """Each certificate (``person token certificate serial``) as a row, coloured by its
    registry state after each step of a run (:attr:`ScenarioRun.states`).

    ``x="calendar"`` spreads the steps over calendar time (JST) and marks ``events`` (pair
    state changes, hotline and municipality actions) as dotted lines; ``x="step"`` gives each
    step the same width, for runs whose steps mostly happen within a minute; ``"auto"``
    chooses calendar when the steps span more than a few hours."""
    if states.empty:
        fig, ax = _axes(ax, (9, 2))
        ax.set_title(title or "no certificates yet")
        return fig
    import matplotlib.dates as mdates

    frame = states.copy()
    frame["calendar"] = pd.to_datetime(frame["calendar"], utc=True).dt.tz_convert(JST)
    frame["row"] = (frame["person"] + " · " + frame["token"] + " · " + frame["certificate"]
                    + " …" + frame["serial"].astype(str).str[-4:])
    rows = list(dict.fromkeys(frame["row"]))
    steps = sorted(set(frame["step"]))
    span = frame["calendar"].max() - frame["calendar"].min()
    if x == "auto":
        x = "calendar" if span >= pd.Timedelta(hours=3) else "step"
    if x not in ("calendar", "step"):
        raise ValueError(f"x must be 'calendar', 'step' or 'auto', not {x!r}")
    fig, ax = _axes(ax, (10, 0.42 * len(rows) + 1.9))
    if x == "calendar":
        moments = {s: mdates.date2num(frame[frame["step"] == s]["calendar"].iloc[0])
                   for s in steps}
        width = max((moments[steps[-1]] - moments[steps[0]]) * 0.06, 1 / 96)
        edges = {s: moments[s] for s in steps}
        last = moments[steps[-1]] + width
    else:
        edges = {s: float(i) for i, s in enumerate(steps)}
        last = float(len(steps))
    order = [*steps]
    for y, row in enumerate(rows):
        part = frame[frame["row"] == row].set_index("step")
        for k, step in enumerate(order):
            if step not in part.index:
                continue
            left = edges[step]
            right = edges[order[k + 1]] if k + 1 < len(order) else last
            state = part.loc[step, "state"]
            ax.barh(y, max(right - left, 1e-6), left=left, height=0.55,
                    color=STATE_COLOURS.get(str(state), "#999999"))
    if x == "calendar" and events is not None and not events.empty:
        marks = events[events["actor"].isin(["authority", "hotline", "municipality"])]
        marks = marks.assign(calendar=pd.to_datetime(marks["calendar"], utc=True)
                             .dt.tz_convert(JST)).drop_duplicates(["calendar", "what"])
        for n, rec in enumerate(marks.itertuples()):
            pos = mdates.date2num(rec.calendar)
            ax.axvline(pos, color="#555555", linestyle=":", linewidth=0.8)
            ax.text(pos, -0.7 - 0.45 * (n % 3), str(rec.what), fontsize="x-small",
                    ha="left", va="bottom", color="#333333")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=JST))
        ax.set_xlabel("calendar time (JST)")
        fig.autofmt_xdate()
    else:
        ax.set_xticks([edges[s] + 0.5 for s in steps], [str(s) for s in steps],
                      fontsize="small")
        ax.set_xlabel("after step")
    ax.set_yticks(range(len(rows)), rows, fontsize="small")
    ax.invert_yaxis()
    handles = [matplotlib.patches.Patch(color=c, label=s) for s, c in STATE_COLOURS.items()
               if s in set(frame["state"])]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.set_title(title or "certificate states (registry) after each step")
    fig.tight_layout()
    return fig


#: Where each state sits in :func:`state_diagram` (x, y).
_STATE_XY = {
    PairState.NONE: (0, 2), PairState.APPLIED: (1, 2), PairState.READY_FOR_REGISTRATION: (2, 2),
    PairState.ACTIVE: (3, 2), PairState.ON_HOLD: (3, 0.8),
    PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN: (4.4, 0.8), PairState.REVOKED: (1.6, 0.2),
    PairState.EXPIRED: (4.4, 2.6),
}
_STATE_TEXT = {
    PairState.NONE: "NONE", PairState.APPLIED: "APPLIED\n申請",
    PairState.READY_FOR_REGISTRATION: "READY\n発行済", PairState.ACTIVE: "ACTIVE\n利用可",
    PairState.ON_HOLD: "ON HOLD\n一時利用停止", PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN:
    "AUTH ONLY\n署名用 再発行待ち", PairState.REVOKED: "REVOKED\n失効",
    PairState.EXPIRED: "EXPIRED\n期限切れ",
}


def state_diagram(current: PairState | str | None = None, *, ax: Any = None,
                  title: str = "") -> Figure:
    """The phone certificate pair's state machine (smartphone-service.md 15.8) drawn as boxes
    and arrows from :data:`workbench.lifecycle.states.TRANSITIONS`, ``current`` lit."""
    lit = PairState(current) if current else None
    fig, ax = _axes(ax, (8, 3.4))
    for state, moves in TRANSITIONS.items():
        x0, y0 = _STATE_XY[state]
        for target in set(moves.values()):
            if target is state:
                continue
            x1, y1 = _STATE_XY[target]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": "#888888", "lw": 0.8,
                                    "shrinkA": 22, "shrinkB": 22,
                                    "connectionstyle": "arc3,rad=0.08"})
    for state, (x, y) in _STATE_XY.items():
        on = state is lit
        ax.text(x, y, _STATE_TEXT[state], ha="center", va="center", fontsize="small",
                fontweight="bold" if on else "normal",
                bbox={"boxstyle": "round,pad=0.4", "fc": "#F58518" if on else "#F0F0F0",
                      "ec": "#333333" if on else "#AAAAAA"})
    ax.set_xlim(-0.6, 5.0)
    ax.set_ylim(-0.3, 3.0)
    ax.axis("off")
    ax.set_title(title or f"phone certificate pair: {lit.value if lit else 'no pair yet'}")
    fig.tight_layout()
    return fig


def timing_grid(grid: pd.DataFrame, *, ax: Any = None, title: str = "") -> Figure:
    """Total modelled time against bit rate, one line per card profile. ``grid`` has
    columns ``kbit/s``, ``card profile`` and ``total ms``."""
    fig, ax = _axes(ax, (7, 3.2))
    for profile, part in grid.groupby("card profile", sort=False):
        ax.plot(part["kbit/s"], part["total ms"] / 1000, marker="o", label=f"card: {profile}")
    ax.set_xscale("log", base=2)
    rates = sorted(set(grid["kbit/s"]))
    ax.set_xticks(rates, labels=[str(int(r)) for r in rates])
    ax.set_xlabel("bit rate (kbit/s, both directions)")
    ax.set_ylabel("modelled time (s)")
    ax.set_title(title or "the same session at other bit rates and card speeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def exposure(frame: pd.DataFrame, ax: Any = None) -> Figure:
    """The exposure-window plot (:func:`workbench.scenarios.exposure.plot_exposure`)."""
    from workbench.scenarios.exposure import plot_exposure

    return plot_exposure(frame, ax=ax)

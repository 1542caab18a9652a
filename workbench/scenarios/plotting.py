"""The timing chart of a scenario run: modelled time of each step, stacked by component."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["COLOURS", "timing_chart"]

#: One colour per modelled component (air, card, host, network), kept across every plot.
COLOURS = {"air_ms": "#4C78A8", "card_ms": "#F58518", "host_ms": "#54A24B",
           "network_ms": "#B279A2"}
_LABELS = {"air_ms": "air (ISO 14443-B)", "card_ms": "card / SE processing",
           "host_ms": "host (app, reader)", "network_ms": "network"}


def timing_chart(steps: pd.DataFrame, *, title: str = "", ax: Any = None) -> Any:
    """Horizontal stacked bars, one per step that took modelled time, in seconds.
    Returns the matplotlib Figure (``ax`` to draw into an existing one)."""
    import matplotlib

    if ax is None:
        matplotlib.use(matplotlib.get_backend())  # respects a notebook's inline backend
        import matplotlib.pyplot as plt

        busy = steps[steps["modelled_ms"] > 0]
        fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(busy), 1) + 1.4))
    else:
        fig = ax.figure
        busy = steps[steps["modelled_ms"] > 0]
    if busy.empty:  # e.g. an ineligible phone: refused before anything crossed a wire
        ax.text(0.5, 0.5, "no modelled time: no APDU or message was exchanged",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title or "modelled time by component")
        fig.tight_layout()
        return fig
    labels = [f"{r.index}. {r.actor} {r.action}" for r in busy.itertuples()]
    left = [0.0] * len(busy)
    for comp, colour in COLOURS.items():
        values = [v / 1000 for v in busy[comp]]
        ax.barh(labels, values, left=left, color=colour, label=_LABELS[comp])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("modelled time (s)")
    ax.set_title(title or "modelled time by component")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig

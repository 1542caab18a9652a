"""Widgets for the notebooks. They hold no protocol logic: they call the clients, the
scenarios and the lifecycle, and show what came back (ARCHITECTURE, rules of the house).

- :class:`PinPanel`: type a PIN (masked), VERIFY, see the answer and the tries left;
- :class:`ScenarioStepper`: Next / Back / Reset / Run all through a scenario, with the pair's
  state diagram, the APDU and message table growing row by row, and the timing chart;
- :class:`PhonePicker`: a phone from the device catalogue; an ineligible one says why;
- :class:`CalendarClock`: move a simulation's calendar; the certificate states follow;
- :class:`TraceViewer`: a scenario trace decoded, filtered by channel and device, secrets
  shown as the masks they are.

State that tests and notebooks read lives in plain widget values (``Label.value``,
``HTML.value``, ``Image.value``) and attributes, not only in an ``Output`` widget, because an
Output's captured text is filled by the frontend, not by the kernel (docs/testing.md 2).
"""

from __future__ import annotations

import html
import io
import warnings
from datetime import datetime, time, timedelta
from typing import Any

import ipywidgets as widgets
import pandas as pd

from workbench.client import JpkiClient
from workbench.errors import (
    CardError,
    LastTryError,
    PinBlockedError,
    PinFormatError,
    TransportError,
    WorkbenchError,
    WrongPinError,
)

_LABELS = {
    "auth": ("auth PIN (利用者証明用暗証番号)", "4 digits"),
    "sign": ("signing password (署名用パスワード)", "6-16 A-Z / 0-9"),
}


class PinPanel:
    """Type a PIN, press VERIFY, see what the card answered and how many tries are left.

    The typed value is cleared as soon as it has been sent and is never shown or logged. The
    panel first checks the format (jpki-card.md 6) so a typo costs no try.
    """

    def __init__(self, client: JpkiClient, which: str = "auth") -> None:
        if which not in _LABELS:
            raise WorkbenchError(f"unknown PIN {which!r}; choose 'auth' or 'sign'")
        self.client = client
        self.which = which
        label, hint = _LABELS[which]
        self.pin = widgets.Password(description="PIN", placeholder=hint)
        self.button = widgets.Button(description="VERIFY", button_style="primary")
        self.title = widgets.HTML(f"<b>{label}</b>")
        self.status = widgets.Label(value=self._tries_text())
        self.button.on_click(self._on_verify)
        with warnings.catch_warnings():  # Enter submits (ipywidgets 8 still sends "submit")
            warnings.simplefilter("ignore", DeprecationWarning)
            self.pin.on_submit(lambda _w: self._on_verify())

    def _tries_text(self) -> str:
        try:
            left = self.client.tries_left(self.which)
        except PinBlockedError:
            return "blocked: reset it at the municipal office"
        return f"tries left: {left}"

    def _on_verify(self, _button: widgets.Button | None = None) -> None:
        value, self.pin.value = self.pin.value, ""
        try:
            self.client.verify_format(self.which, value)
            self.client.select_ap()
            self.client.verify(self.which, value)
        except PinFormatError as exc:
            self.status.value = f"not sent: {exc}"
        except WrongPinError as exc:
            self.status.value = f"wrong value (SW {exc.sw:04X}): tries left: {exc.tries_left}"
        except PinBlockedError as exc:
            self.status.value = f"blocked (SW {exc.sw:04X}): reset it at the municipal office"
        except LastTryError as exc:  # the retry guard refused before anything was sent
            self.status.value = f"not sent: {exc}"
        except CardError as exc:
            self.status.value = f"card error: {exc}"
        except TransportError as exc:
            self.status.value = f"reader error: {exc}"
        else:
            self.status.value = f"verified (SW 9000): {self._tries_text()}"

    @property
    def widget(self) -> widgets.VBox:
        return widgets.VBox([self.title, widgets.HBox([self.pin, self.button]), self.status])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- shared rendering ---------------------------------------------------------------------------

def _png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (and the figure closed: widgets hold images)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _table(frame: pd.DataFrame, *, highlight_last: int = 0, max_rows: int = 400,
           newest_first: bool = False) -> str:
    """An HTML table that scrolls instead of pushing columns off screen; the last
    ``highlight_last`` rows are highlighted (and shown first with ``newest_first``)."""
    shown = frame.tail(max_rows)
    body = []
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    start = len(shown) - highlight_last
    for i, row in enumerate(shown.itertuples(index=False)):
        style = ' style="background:#FFF3D6"' if i >= start else ""
        cells = "".join(f"<td>{_cell(v)}</td>" for v in row)
        body.append(f"<tr{style}>{cells}</tr>")
    if newest_first:
        body.reverse()
    return ('<div style="max-height:22em;overflow:auto;font-size:85%">'
            '<table class="wb-table"><thead><tr>' + header + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    text = html.escape(str(value))
    if "**" in text:  # a masked secret: show that it is one
        text = text.replace("**", '<mark title="masked secret">**</mark>')
    return text


# -- the scenario stepper -----------------------------------------------------------------------

class ScenarioStepper:
    """Step through a scenario (:func:`workbench.scenarios.run_scenario`): Next, Back, Reset,
    Run all. After each step: the step and its outcome (:attr:`step_info`), the state diagram
    of the pair the step touched (:attr:`diagram`, PNG), the APDUs and messages so far with
    the new ones highlighted (:attr:`table`), the timing chart (:attr:`chart`) and the
    certificate states (:attr:`states`). Back re-runs the scenario up to the previous step
    (keys are fresh, outcomes the same)."""

    def __init__(self, scenario: Any = "issuance", **params: Any) -> None:
        from workbench.scenarios import ScenarioRun, run_scenario

        self.run: ScenarioRun = (scenario if isinstance(scenario, ScenarioRun)
                                 else run_scenario(scenario, step=True, **params))
        self.next_button = widgets.Button(description="Next ▶", button_style="primary")
        self.back_button = widgets.Button(description="◀ Back")
        self.reset_button = widgets.Button(description="Reset")
        self.all_button = widgets.Button(description="Run all ▶▶")
        self.title = widgets.HTML()
        self.step_info = widgets.HTML()
        self.diagram = widgets.Image(format="png", layout=widgets.Layout(max_width="560px"))
        self.chart = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))
        self.table = widgets.HTML()
        self.states = widgets.HTML()
        self.current_state: str = "NONE"
        self.next_button.on_click(lambda _b: self.next())
        self.back_button.on_click(lambda _b: self.back())
        self.reset_button.on_click(lambda _b: self.reset())
        self.all_button.on_click(lambda _b: self.run_all())
        self._seen = 0
        self._render(new_rows=0)

    # actions (the buttons call these; tests and notebooks may call them directly)
    def next(self) -> None:
        if self.run.finished:
            self.step_info.value = "<b>finished</b>: Reset to start again"
            return
        before = len(self.run.wire)
        self.run.next()
        self._render(new_rows=len(self.run.wire) - before)

    def back(self) -> None:
        target = max(self.run.position - 1, 0)
        self.run.reset()
        for _ in range(target):
            self.run.next()
        self._render(new_rows=0)

    def reset(self) -> None:
        self.run.reset()
        self._render(new_rows=0)

    def run_all(self) -> None:
        before = len(self.run.wire)
        self.run.run()
        self._render(new_rows=len(self.run.wire) - before)

    def _focus_state(self) -> str:
        history = self.run.sim.authority.history()
        return str(history[-1]["state"]) if history else "NONE"

    def _render(self, new_rows: int) -> None:
        from workbench import plots
        from workbench.lifecycle.states import PairState

        run = self.run
        total = len(run.all_steps)
        self.title.value = (f"<h4>{html.escape(run.scenario.title)}</h4>"
                            f"<p>{html.escape(run.scenario.shows)}</p>")
        if run.results:
            last = run.results[-1]
            mark = "✓" if last.as_expected else "✗"
            says = f"<br><i>{html.escape(last.step.says)}</i>" if last.step.says else ""
            self.step_info.value = (
                f"<b>step {last.index + 1} of {total}</b>: {html.escape(last.step.describe())}"
                f" → {mark} <code>{html.escape(last.outcome)}</code>{says}<br>calendar "
                f"{last.calendar.astimezone(plots.JST):%Y-%m-%d %H:%M} JST")
        else:
            nxt = run.all_steps[0].describe() if total else "nothing"
            self.step_info.value = f"<b>ready</b>: {total} steps; next: {html.escape(nxt)}"
        self.current_state = self._focus_state()
        self.diagram.value = _png(plots.state_diagram(PairState(self.current_state)))
        wire = run.wire
        self.rows = wire
        self.table.value = _table(wire.drop(columns=["server_side"]), highlight_last=new_rows,
                                  newest_first=True)
        steps = run.steps
        if (steps["modelled_ms"] > 0).any():
            self.chart.value = _png(plots.timing_chart(steps, title=run.scenario.title))
        else:
            self.chart.value = b""
        self.states.value = _table(run.sim.certificate_states())
        self.next_button.disabled = run.finished
        self.all_button.disabled = run.finished

    @property
    def widget(self) -> widgets.VBox:
        buttons = widgets.HBox([self.back_button, self.next_button, self.all_button,
                                self.reset_button])
        return widgets.VBox([self.title, buttons, self.step_info, self.diagram,
                             widgets.HTML("<b>APDUs and messages</b> (newest first, "
                                          "highlighted; raw bytes in the last columns)"),
                             self.table, widgets.HTML("<b>modelled time by step</b>"),
                             self.chart, widgets.HTML("<b>certificates</b> (registry)"),
                             self.states])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- the phone picker ----------------------------------------------------------------------------

class PhonePicker:
    """A phone from the device catalogue (smartphone-service.md 3) with its app and OS
    version; :attr:`verdict` says ``eligible`` or why not, :attr:`details` its row."""

    def __init__(self, model: str = "Pixel 7", app_version: int = 60) -> None:
        from workbench.lifecycle.devices import load_catalogue

        self._catalogue = load_catalogue()
        self.model = widgets.Dropdown(options=list(self._catalogue), value=model,
                                      description="model")
        self.app_version = widgets.BoundedIntText(value=app_version, min=0, max=999,
                                                  description="app ver.")
        self.os_version = widgets.Text(value="", placeholder="e.g. 13 (blank: not checked)",
                                       description="Android")
        self.verdict = widgets.Label()
        self.details = widgets.HTML()
        for w in (self.model, self.app_version, self.os_version):
            w.observe(lambda _change: self._update(), names="value")
        self._update()

    @property
    def value(self) -> str:
        return str(self.model.value)

    @property
    def eligible(self) -> bool:
        return self.verdict.value == "eligible"

    def _update(self) -> None:
        from workbench.lifecycle.devices import eligibility

        ok, why = eligibility(self.model.value, app_version=int(self.app_version.value),
                              os_version=self.os_version.value.strip() or None,
                              catalogue=self._catalogue)
        self.verdict.value = "eligible" if ok else f"not eligible: {why}"
        d = self._catalogue[self.model.value]
        self.details.value = (
            f"{html.escape(d.maker)} · GP-SE {'yes' if d.gp_se else 'no'} · NFC Type B "
            f"{'yes' if d.nfc_type_b else 'no'} · biometrics "
            f"{html.escape('+'.join(d.biometrics) or 'none')}<br><small>"
            f"{html.escape(d.note)} ({html.escape(d.source)})</small>")

    @property
    def widget(self) -> widgets.VBox:
        return widgets.VBox([widgets.HBox([self.model, self.app_version, self.os_version]),
                             self.verdict, self.details])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- the calendar clock --------------------------------------------------------------------------

class CalendarClock:
    """Move a :class:`~workbench.lifecycle.Simulation`'s calendar: jump to a date and time
    (JST) or advance by an hour, a day or a week. Due events happen on the way (a loss
    reported while the hotline was closed is acted on at the opening); :attr:`states` shows
    every certificate's state after the move, :attr:`now` the time, :attr:`message` what
    happened or why not."""

    def __init__(self, sim: Any) -> None:
        from workbench.plots import JST

        self.sim = sim
        self._jst = JST
        here = sim.now().astimezone(JST)
        self.day = widgets.DatePicker(value=here.date(), description="date")
        self.time = widgets.Text(value=here.strftime("%H:%M"), description="time (JST)")
        self.jump_button = widgets.Button(description="jump")
        self.buttons = {label: widgets.Button(description=label)
                        for label in ("+1 hour", "+1 day", "+1 week")}
        self.now = widgets.Label()
        self.message = widgets.Label()
        self.states = widgets.HTML()
        self.jump_button.on_click(lambda _b: self.jump())
        steps = {"+1 hour": timedelta(hours=1), "+1 day": timedelta(days=1),
                 "+1 week": timedelta(weeks=1)}
        for label, button in self.buttons.items():
            button.on_click(lambda _b, d=steps[label]: self.advance(d))
        self._render("")

    def jump(self) -> None:
        from workbench.errors import WorkbenchError

        try:
            hh, mm = (int(x) for x in self.time.value.strip().split(":"))
            when = datetime.combine(self.day.value, time(hh, mm), tzinfo=self._jst)
        except (ValueError, TypeError):
            self.message.value = f"not a time: {self.time.value!r} (HH:MM, JST)"
            return
        try:
            self.sim.set_time(when)
        except WorkbenchError as exc:
            self.message.value = str(exc)
            return
        self._render(f"moved to {when:%Y-%m-%d %H:%M} JST")

    def advance(self, delta: timedelta) -> None:
        self.sim.advance(delta)
        self._render(f"advanced {delta}")

    def _render(self, message: str) -> None:
        here = self.sim.now().astimezone(self._jst)
        self.now.value = f"now: {here:%Y-%m-%d %a %H:%M} JST"
        self.day.value = here.date()
        self.time.value = here.strftime("%H:%M")
        self.message.value = message
        self.states.value = _table(self.sim.certificate_states())

    @property
    def widget(self) -> widgets.VBox:
        return widgets.VBox([self.now, widgets.HBox([self.day, self.time, self.jump_button]),
                             widgets.HBox(list(self.buttons.values())), self.message,
                             self.states])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# -- the trace viewer ----------------------------------------------------------------------------

class TraceViewer:
    """A scenario trace (a run, a ``trace.jsonl`` or its folder, or records) decoded
    (:func:`workbench.analysis.decode_scenario`), filtered by channel, device and a text
    (matched against what, application and object). :attr:`frame` is the filtered table;
    masked secrets are marked, never filled in."""

    def __init__(self, source: Any) -> None:
        from workbench.analysis import decode_scenario

        self.all = decode_scenario(_records(source))
        channels = ["all", *sorted(set(self.all["channel"].dropna()))]
        devices = ["all", *sorted(set(self.all["device"].dropna()))]
        self.channel = widgets.Dropdown(options=channels, value="all", description="channel")
        self.device = widgets.Dropdown(options=devices, value="all", description="device")
        self.text = widgets.Text(value="", placeholder="e.g. VERIFY, 001B, JPKI",
                                 description="contains")
        self.server_side = widgets.Checkbox(value=False, description="server side too")
        self.count = widgets.Label()
        self.table = widgets.HTML()
        for w in (self.channel, self.device, self.text, self.server_side):
            w.observe(lambda _change: self._update(), names="value")
        self._update()

    def _update(self) -> None:
        frame = self.all
        if self.channel.value != "all":
            frame = frame[frame["channel"] == self.channel.value]
        if self.device.value != "all":
            frame = frame[frame["device"] == self.device.value]
        if not self.server_side.value:
            frame = frame[~frame["server_side"]]
        needle = self.text.value.strip().lower()
        if needle:
            hay = (frame["what"].astype(str) + " " + frame["ap"].astype(str) + " "
                   + frame["object"].astype(str)).str.lower()
            frame = frame[hay.str.contains(needle, regex=False)]
        self.frame = frame
        self.count.value = f"{len(frame)} of {len(self.all)} rows"
        self.table.value = _table(frame.drop(columns=["server_side"]))

    @property
    def widget(self) -> widgets.VBox:
        return widgets.VBox([widgets.HBox([self.channel, self.device]),
                             widgets.HBox([self.text, self.server_side]), self.count,
                             self.table])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _records(source: Any) -> list[dict[str, Any]]:
    from pathlib import Path

    from workbench.transport.trace import load_trace

    if hasattr(source, "trace"):  # a ScenarioRun
        return [r for r in source.trace if r.get("type") != "header"]
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            path = path / "trace.jsonl"
        _, records = load_trace(path)
        return [dict(r.data) for r in records]
    return [dict(r) for r in source if r.get("type") != "header"]


__all__ = ["CalendarClock", "PhonePicker", "PinPanel", "ScenarioStepper", "TraceViewer"]

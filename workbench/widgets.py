"""Widgets for the notebooks. They hold no protocol logic: they call the clients and show
what came back (ARCHITECTURE, rules of the house).

State that tests and notebooks read lives in plain widget values (``Label.value``), not only in
an ``Output`` widget, because an Output's captured text is filled by the frontend, not by the
kernel (docs/testing.md 2).
"""

from __future__ import annotations

import ipywidgets as widgets

from workbench.client import JpkiClient
from workbench.errors import (
    CardError,
    PinBlockedError,
    PinFormatError,
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
        except CardError as exc:
            self.status.value = f"card error: {exc}"
        else:
            self.status.value = f"verified (SW 9000): {self._tries_text()}"

    @property
    def widget(self) -> widgets.VBox:
        return widgets.VBox([self.title, widgets.HBox([self.pin, self.button]), self.status])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

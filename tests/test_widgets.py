"""Widgets without a kernel (docs/testing.md 2): traits fire
observers synchronously and Button.click() runs the handlers."""

from __future__ import annotations

import pytest

from tests.conftest import AUTH_PIN, SIGN_PASSWORD
from workbench.client import JpkiClient
from workbench.transport import VirtualCardTransport
from workbench.widgets import PinPanel


@pytest.fixture
def panel(make_card):
    card = make_card("icc")
    t = VirtualCardTransport(card)
    t.connect()
    yield PinPanel(JpkiClient(t), "auth"), card
    t.disconnect()


def test_panel_verify_flow(panel):
    p, card = panel
    assert p.status.value == "tries left: 3"
    p.pin.value = "0000"
    p.button.click()
    assert p.status.value == "wrong value (SW 63C2): tries left: 2"
    assert p.pin.value == ""  # cleared as soon as it was sent
    p.pin.value = AUTH_PIN
    p.button.click()
    assert p.status.value == "verified (SW 9000): tries left: 3"
    assert card.pin_status()["auth"] == 3


def test_panel_format_check_costs_no_try(panel):
    p, card = panel
    p.pin.value = "12"
    p.button.click()
    assert p.status.value.startswith("not sent:")
    assert card.pin_status()["auth"] == 3


def test_panel_blocked(panel):
    p, card = panel
    for _ in range(3):
        p.pin.value = "9999"
        p.button.click()
    assert p.status.value.startswith("blocked (SW 63C0)")
    p.pin.value = AUTH_PIN
    p.button.click()
    assert p.status.value == "blocked (SW 6984): reset it at the municipal office"


def test_sign_panel_and_no_secret_in_repr(make_card):
    card = make_card("gpse")
    with VirtualCardTransport(card) as t:
        p = PinPanel(JpkiClient(t), "sign")
        p.pin.value = SIGN_PASSWORD.lower()
        p.button.click()
        assert p.status.value == "verified (SW 9000): tries left: 5"
        assert SIGN_PASSWORD not in repr(p.widget) and SIGN_PASSWORD.lower() not in repr(p.widget)

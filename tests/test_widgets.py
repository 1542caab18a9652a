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


class _GuardedTransport(VirtualCardTransport):
    """A virtual card the client treats like a real one: its retry guard applies."""

    pin_guard = True


def test_panel_says_when_the_retry_guard_refused(make_card):
    card = make_card("icc")
    with _GuardedTransport(card) as t:
        p = PinPanel(JpkiClient(t), "auth")
        for left in (2, 1):
            p.pin.value = "0000"
            p.button.click()
            assert p.status.value == f"wrong value (SW 63C{left}): tries left: {left}"
        p.pin.value = AUTH_PIN
        p.button.click()  # one try left: the client refuses before sending anything
        assert p.status.value.startswith("not sent: "), p.status.value
        assert AUTH_PIN not in p.status.value
        assert JpkiClient(t).tries_left("auth") == 1  # nothing was spent


def test_enter_in_the_pin_pad_submits(panel):
    p, card = panel
    p.pin.value = "0000"
    p.pin._handle_string_msg(None, {"event": "submit"}, None)  # what the frontend sends on Enter
    assert p.status.value == "wrong value (SW 63C2): tries left: 2"
    assert p.pin.value == ""


# -- the smartphone service's widgets ----------------------------------------------------------

from datetime import date, timedelta  # noqa: E402

from workbench.lifecycle import Simulation  # noqa: E402
from workbench.widgets import CalendarClock, PhonePicker, ScenarioStepper, TraceViewer  # noqa: E402


def test_the_stepper_walks_an_issuance():
    stepper = ScenarioStepper("issuance")
    try:
        assert "ready" in stepper.step_info.value and stepper.current_state == "NONE"
        empty_diagram = stepper.diagram.value
        stepper.next_button.click()  # person
        stepper.next_button.click()  # buy phone
        stepper.next_button.click()  # apply
        assert stepper.current_state == "APPLIED"
        assert stepper.diagram.value != empty_diagram
        assert "step 3 of 7" in stepper.step_info.value and "✓" in stepper.step_info.value
        rows_after_apply = len(stepper.rows)
        assert set(stepper.rows["channel"]) >= {"NFC", "HTTP", "OMAPI"}
        assert stepper.table.value.count("#FFF3D6") == rows_after_apply  # all new, highlighted
        stepper.next_button.click()  # clock
        stepper.next_button.click()  # register
        assert stepper.current_state == "ACTIVE"
        assert len(stepper.rows) > rows_after_apply + 40
        assert stepper.chart.value[:4] == b"\x89PNG"
        assert "good" in stepper.states.value
        stepper.back_button.click()
        assert stepper.run.position == 4 and stepper.current_state == "READY_FOR_REGISTRATION"
        stepper.all_button.click()
        assert stepper.run.finished and stepper.next_button.disabled and stepper.run.ok
        stepper.reset_button.click()
        assert stepper.run.position == 0 and len(stepper.rows) == 0
    finally:
        stepper.run.close()


def test_the_stepper_table_masks_secrets():
    stepper = ScenarioStepper("login-pin")
    try:
        stepper.all_button.click()
        verify = stepper.rows[stepper.rows["what"] == "VERIFY"]
        assert len(verify) > 0
        assert all("**" in c for c in verify["command"] if len(c) > 10)
        assert '<mark title="masked secret">' in stepper.table.value
        assert "PHONE7" not in stepper.table.value
    finally:
        stepper.run.close()


def test_the_phone_picker_says_why():
    picker = PhonePicker()
    assert picker.value == "Pixel 7" and picker.eligible and picker.verdict.value == "eligible"
    picker.model.value = "Galaxy M23 5G"
    assert not picker.eligible and "excluded" in picker.verdict.value
    picker.model.value = "iPhone 15"
    assert "Apple Wallet" in picker.verdict.value
    picker.model.value = "Pixel 7"
    picker.app_version.value = 53
    assert "too old" in picker.verdict.value
    picker.app_version.value = 60
    picker.model.value = "Pixel 4a (5G)"
    picker.os_version.value = "12"
    assert "needs Android 13" in picker.verdict.value
    assert "fingerprint" in picker.details.value


def test_the_calendar_clock_moves_a_simulation():
    with Simulation() as sim:
        person = sim.add_person("hanako")
        phone = sim.add_phone("phone", person)
        phone.app.apply(person)
        sim.advance(timedelta(minutes=3))
        phone.app.register()
        clock = CalendarClock(sim)
        assert clock.now.value.startswith("now: 2025-10-06 Mon 10:03 JST")
        # Friday 22:00 JST: the loss waits for Saturday 09:30
        clock.day.value = date(2025, 10, 10)
        clock.time.value = "22:00"
        clock.jump_button.click()
        assert clock.now.value == "now: 2025-10-10 Fri 22:00 JST"
        sim.report_loss("hanako")
        clock.buttons["+1 hour"].click()
        assert "held" not in clock.states.value
        clock.buttons["+1 day"].click()
        assert "held" in clock.states.value
        clock.day.value = date(2025, 1, 1)
        clock.jump_button.click()
        assert "only moves forward" in clock.message.value
        clock.time.value = "25 o'clock"
        clock.jump_button.click()
        assert clock.message.value.startswith("not a time")


def test_the_trace_viewer_filters(tmp_path):
    from workbench.scenarios import run_scenario

    with run_scenario("login-pin") as run:
        folder = run.save(tmp_path / "run")
        viewer = TraceViewer(folder)
        everything = len(viewer.frame)
        viewer.channel.value = "NFC"
        assert 0 < len(viewer.frame) < everything and set(viewer.frame["channel"]) == {"NFC"}
        viewer.channel.value = "all"
        viewer.text.value = "verify"
        assert set(viewer.frame["what"]) == {"VERIFY"}
        assert viewer.count.value == f"{len(viewer.frame)} of {len(viewer.all)} rows"
        viewer.text.value = ""
        viewer.server_side.value = True
        assert len(viewer.frame) > everything  # the services' OCSP queries
        assert len(TraceViewer(run).all) == len(viewer.all)

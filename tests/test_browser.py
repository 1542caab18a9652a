"""The notebooks in a real browser: JupyterLab served on loopback, Debian's Chromium driven by
Playwright (docs/testing.md 3). Restart-and-run-all must complete; the PIN pad must render and
answer a real click and Enter; the issuance stepper must follow a person's clicks. Screenshots
go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port as _free_port

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored; CI keeps the screenshots here

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium not installed (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("labroot")
    shutil.copytree(ROOT / "notebooks", root, dirs_exist_ok=True)
    cfg = tmp_path_factory.mktemp("jupyter_config")
    (cfg / "labconfig").mkdir()
    (cfg / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # JupyterLab 4 virtualises notebook cells outside the viewport ("windowing"); a test that
    # looks for the last cell's widget must have every cell in the DOM.
    settings = tmp_path_factory.mktemp("lab_settings")
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTER_CONFIG_DIR=str(cfg),
        JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")),
        JUPYTER_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    env.pop("MPLBACKEND", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         # window.jupyterapp: drive JupyterLab by its commands, not by clicking menus (robust
         # on a loaded machine; the same hook Galata uses)
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("jupyter lab did not start: " + (root / "server.log").read_text()[-2000:])
            time.sleep(0.25)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


_NOTEBOOK = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_KERNEL_IDLE = f"""() => {{
    const w = {_NOTEBOOK};
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle';
}}"""
_LAST_CELL_RAN = f"""() => {{
    const w = {_NOTEBOOK};
    if (!w || !w.content) return false;
    const cells = w.content.widgets.filter(c => c.model.type === 'code');
    return cells.length > 0 && cells[cells.length - 1].model.executionCount !== null;
}}"""


def test_start_here_runs_and_pin_pad_answers(lab, browser):
    from playwright.sync_api import expect

    base, token = lab
    page = browser.new_page()
    page.goto(f"{base}/lab/tree/00_start_here.ipynb?token={token}")
    page.wait_for_function(_KERNEL_IDLE, timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    # The server and its kernel are new (module fixture): run all on the fresh, idle kernel.
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(_LAST_CELL_RAN, timeout=180_000)
    page.wait_for_function(_KERNEL_IDLE, timeout=60_000)
    expect(page.locator(".jp-OutputArea-output", has_text="signature verifies with the auth certificate")).to_be_visible()
    page.locator(".jp-CodeCell").last.scroll_into_view_if_needed()
    pin = page.locator(".widget-text input[type=password]").last
    try:
        expect(pin).to_be_visible(timeout=20_000)
    except AssertionError:
        # Under heavy load JupyterLab can render a widget's output before its widget manager
        # holds the model and fall back to the text repr; run the notebook again, as a person would.
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(_KERNEL_IDLE, timeout=180_000)
        page.locator(".jp-CodeCell").last.scroll_into_view_if_needed()
        expect(pin).to_be_visible(timeout=60_000)
    expect(page.locator(".widget-label", has_text="tries left: 3").last).to_be_visible()
    pin.fill("0000")
    page.locator("button.jupyter-button", has_text="VERIFY").last.click()
    expect(page.locator(".widget-label", has_text="wrong value (SW 63C2): tries left: 2").last).to_be_visible(timeout=30_000)
    pin.fill("1234")
    pin.press("Enter")  # Enter submits, like the VERIFY button
    expect(page.locator(".widget-label", has_text="verified (SW 9000): tries left: 3").last).to_be_visible(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "start_here.png"), full_page=True)
    page.close()


def test_issuance_stepper_in_the_browser(lab, browser):
    """The issuance notebook, restarted and run in JupyterLab; then a person's clicks on the
    stepper's Next until the registration is done: the table, the state diagram and the
    timing plot must follow."""
    from playwright.sync_api import expect

    base, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 2000})
    page.goto(f"{base}/lab/tree/03_issuance_into_a_phone.ipynb?token={token}")
    page.wait_for_function(_KERNEL_IDLE, timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(_LAST_CELL_RAN, timeout=600_000)
    page.wait_for_function(_KERNEL_IDLE, timeout=120_000)
    next_button = page.locator("button.jupyter-button", has_text="Next ▶").first
    try:
        expect(next_button).to_be_visible(timeout=30_000)
    except AssertionError:  # see test_start_here: re-run once, as a person would
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(_KERNEL_IDLE, timeout=600_000)
        expect(next_button).to_be_visible(timeout=60_000)
    next_button.scroll_into_view_if_needed()
    stepper = page.locator(".widget-vbox", has=next_button).first
    diagram = stepper.locator("img").first
    before = diagram.get_attribute("src")
    expect(stepper.locator(".widget-html", has_text="ready")).to_be_visible()
    for step in range(1, 6):  # person, phone, apply, issuance time, registration
        next_button.click()
        expect(stepper.locator(".widget-html", has_text=f"step {step} of")).to_be_visible(
            timeout=180_000)
    status = stepper.locator(".widget-html", has_text="step 5 of").filter(has_text="register")
    expect(status.first).to_be_visible()  # the status line names the step just done
    table = stepper.locator("table.wb-table").first
    expect(table.locator("td", has_text="STORE DATA block").first).to_be_attached()
    expect(table.locator("td", has_text="OMAPI").first).to_be_attached()
    assert diagram.get_attribute("src") != before  # the state diagram was redrawn (ACTIVE)
    chart = stepper.locator("img").nth(1)  # the diagram first, the timing chart below
    assert (chart.get_attribute("src") or "").startswith("blob:") or \
        (chart.get_attribute("src") or "").startswith("data:")
    box = chart.bounding_box()
    assert box is not None and box["height"] > 50  # the timing plot is drawn
    stepper.screenshot(path=str(ARTIFACTS / "stepper.png"))
    tour = os.environ.get("JPKI_WORKBENCH_TOUR_DIR")
    if tour:  # `make tour-images`: the README's screenshot
        stepper.screenshot(path=str(Path(tour) / "stepper.png"))
    page.screenshot(path=str(ARTIFACTS / "issuance_notebook.png"), full_page=False)
    page.close()

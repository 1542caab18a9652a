"""Shared fixtures. Cards are issued with a seed: keys are deterministic and cached in the
process, so a fresh card per test costs milliseconds, not a key generation."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime

import matplotlib
import pytest

matplotlib.use("Agg")

from workbench.card import VirtualCard  # noqa: E402
from workbench.lifecycle import create_card  # noqa: E402
from workbench.pki import Authority, FixedClock  # noqa: E402

ISSUED_AT = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
AUTH_PIN = "1234"
SIGN_PASSWORD = "ABC123"
TEXT_PIN = "5678"


@pytest.fixture(scope="session")
def authority() -> Authority:
    return Authority(seed=b"tests", clock=FixedClock(ISSUED_AT))


@pytest.fixture
def make_card(authority: Authority) -> Callable[..., VirtualCard]:
    def make(profile: str = "icc", seed: int = 7, **kw: object) -> VirtualCard:
        kw.setdefault("auth_pin", AUTH_PIN)
        kw.setdefault("sign_password", SIGN_PASSWORD)
        kw.setdefault("text_pin", TEXT_PIN)
        kw.setdefault("issued_at", ISSUED_AT)
        return create_card(profile, seed=seed, authority=authority, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture(params=["icc", "gpse"])
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def fail_on_widget_callback_errors(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest):
    """ipywidgets only logs exceptions raised in callbacks; make them fail the test."""
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("allow_callback_errors"):
        return
    bad = [r for r in caplog.get_records("call") if r.getMessage().startswith("Exception in callback")]
    if bad:
        pytest.fail("widget callback raised: " + bad[0].getMessage(), pytrace=False)


#: Independent checkers and real parts the suite relies on (CONVENTIONS.md, "Real parts, not
#: mocks"): a skip that names one of them means an oracle is missing.
_ORACLES = ("openssl", "pcscd", "vpcd", "pyscard", "opensc", "chromium", "playwright",
            "pcsc_scan", "cfssl")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Under CI=true a test skipped for a missing oracle fails instead, so losing an
    independent checker is loud (CI installs them all in .ci/run)."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("CI", "").lower() not in ("true", "1"):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    missing = [name for name in _ORACLES if name in reason.lower()]
    if missing:
        report.outcome = "failed"
        report.longrepr = (f"CI=true and an oracle is missing ({', '.join(missing)}): {reason}. "
                           ".ci/run must install it.")

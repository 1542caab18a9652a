"""OpenSC's ``jpki`` driver binds a card issued to a holder under 15 (jpki-card.md 3.1, 12).

Such a card has no signing certificate (EF 0008 starts ``00``). OpenSC's PKCS#15 emulation
asks the retry counter of both JPKI PINs while it binds; with the MODEL default (the signing
password object present, blocked) ``pkcs15-tool -D`` lists the card, through the real pcscd and
vsmartcard's vpcd, like any card. Run on the real stack, as the other OpenSC tests are.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pcsc_helpers import (
    PrivatePcscd,
    free_port_pair,
    serve_cards,
    short_runtime_dir,
    stack_missing,
    stop_process,
)

from workbench.pki import synthetic_holder

MISSING = stack_missing()
needs_stack = pytest.mark.skipif(MISSING is not None,
                                 reason=f"PC/SC stack not installed: {MISSING}")
needs_opensc = pytest.mark.skipif(shutil.which("pkcs15-tool") is None,
                                  reason="opensc (pkcs15-tool) not installed")


@pytest.fixture(scope="module")
def child_card_on_the_stack(authority) -> Iterator[tuple[PrivatePcscd, Path]]:
    if MISSING:
        pytest.skip(f"PC/SC stack not installed: {MISSING}")
    from workbench.lifecycle import create_card

    runtime = short_runtime_dir()
    port = free_port_pair()
    daemon = PrivatePcscd(runtime, port)
    if daemon.conflict():
        shutil.rmtree(runtime, ignore_errors=True)
        pytest.skip(daemon.conflict() or "")
    daemon.start()
    holder = synthetic_holder(31, birth_date=date(2014, 6, 1))  # 10 years old at issuance
    card = create_card("icc", holder, seed=31, authority=authority, issued_at=authority.clock.now())
    image = runtime / "child.jwc"
    card.save(image)
    card.close()
    server = serve_cards([image], port, daemon.env, runtime / "serve.log")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until pcscd sees the card
            out = subprocess.run(["opensc-tool", "-r", "0", "-a"], env=daemon.env,
                                 capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                break
            time.sleep(0.2)
        yield daemon, image
    finally:
        stop_process(server)
        daemon.stop()
        shutil.rmtree(runtime, ignore_errors=True)


@needs_stack
@needs_opensc
def test_pkcs15_tool_lists_the_card_of_a_holder_under_15(child_card_on_the_stack):
    daemon, _ = child_card_on_the_stack
    out = subprocess.run(["pkcs15-tool", "--reader", "0", "-D"], env=daemon.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "User Authentication Certificate" in out.stdout
    # the signing password object is there, blocked: OpenSC reports 0 tries
    sign_pin = out.stdout.split("PIN [Digital Signature PIN]")[1].split("\n\n")[0]
    assert "Tries left     : 0" in sign_pin
    assert "Unsupported card" not in out.stderr

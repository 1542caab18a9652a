"""CI cannot go green without its oracles: under CI=true a skip for a missing independent
checker (OpenSSL, pcscd/vpcd, pyscard, OpenSC, Chromium, CFSSL) fails (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT

_PROBE = '''
import pytest

@pytest.mark.skipif(True, reason="openssl CLI missing")
def test_marked(): pass

def test_inside(): pytest.skip("Chromium not installed (apt-get install chromium)")

def test_other(): pytest.skip("not applicable on this profile")
'''


def _run(tmp_path, ci: str) -> subprocess.CompletedProcess[str]:
    probe = ROOT / "tests" / f"test_zz_oracle_probe_{os.getpid()}.py"
    probe.write_text(_PROBE, encoding="utf-8")
    try:
        env = dict(os.environ, CI=ci)
        return subprocess.run([sys.executable, "-m", "pytest", str(probe), "-q", "-rA",
                               "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
    finally:
        probe.unlink()


def test_a_skip_for_a_missing_oracle_fails_under_ci(tmp_path) -> None:
    out = _run(tmp_path, "true").stdout
    assert "oracle is missing (openssl)" in out and "oracle is missing (chromium)" in out
    assert "SKIPPED" in out and "not applicable" in out  # other skips stay skips
    assert "1 failed, 1 skipped, 1 error" in out  # the marked skip fails at setup


def test_outside_ci_the_same_skips_are_skips(tmp_path) -> None:
    proc = _run(tmp_path, "")
    assert proc.returncode == 0 and "3 skipped" in proc.stdout

"""The command line's safety and its one-line errors, driven as a user drives it (subprocesses).

``--force`` replaces only a card image; the authority database is created private and a
readable one is reported; argument mistakes are one line; ``card export`` reads certificates
through the card's own access rules and never takes a secret on argv.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest
from cryptography import x509

from tests.helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "card.jwc"
    proc = run_cli("card", "new", str(path), "--seed", "8", "--auth-pin", "2468",
                   "--sign-password", "SAFE2468")
    assert proc.returncode == 0, proc.stderr
    return path


def one_line_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr


@pytest.mark.parametrize(("args", "text"), [
    (["card", "new", "{tmp}/x.jwc", "--seed", "abc"], "invalid int value: 'abc'"),
    (["card", "new"], "required: path"),
    (["pki", "serve", "--db", "{tmp}/a.db", "--workers", "two"], "invalid int value"),
    (["pki", "hold"], "required"),
    (["card", "export", "{tmp}/x.jwc", "--cert", "nope"], "invalid choice: 'nope'"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_argument_mistakes_are_one_line(tmp_path, args, text):
    one_line_error(run_cli(*[a.format(tmp=tmp_path) for a in args]), text)


@pytest.mark.parametrize("kind", ["text", "sqlite", "folder"])
def test_force_replaces_only_a_card_image(tmp_path, kind):
    target = tmp_path / "target.jwc"
    if kind == "text":
        target.write_text("my notes, not a card")
        before = target.read_bytes()
    elif kind == "sqlite":
        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE songs (title TEXT)")
        conn.commit()
        conn.close()
        before = target.read_bytes()
    else:
        target.mkdir()
        before = b""
    one_line_error(run_cli("card", "new", str(target), "--force", "--seed", "1"),
                   "not a card image")
    if kind != "folder":
        assert target.read_bytes() == before
    else:
        assert target.is_dir() and not any(target.iterdir())


def test_force_replaces_a_card_image(tmp_path, image):
    target = tmp_path / "old.jwc"
    assert run_cli("card", "new", str(target), "--seed", "2").returncode == 0
    proc = run_cli("card", "new", str(target), "--force", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_the_authority_database_is_private_and_a_readable_one_is_reported(tmp_path):
    db = tmp_path / "authority.db"
    assert run_cli("pki", "init", "--db", str(db), "--seed", "x").returncode == 0
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    os.chmod(db, 0o644)
    proc = run_cli("pki", "list", "--db", str(db))
    assert proc.returncode == 0
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "chmod 600" in warning[0] and "0644" in warning[0]


def test_export_free_certificates_and_the_sign_certificate_with_a_secret(tmp_path, image):
    out = tmp_path / "auth.pem"
    proc = run_cli("card", "export", str(image), "--cert", "auth", "--pem", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert x509.load_pem_x509_certificate(out.read_bytes()).subject
    # the sign certificate needs the password: from the environment, never from argv
    env = dict(os.environ, CARD_SECRET="SAFE2468")
    proc = subprocess.run([sys.executable, "-m", "workbench", "card", "export", str(image),
                           "--cert", "sign", "--pin-env", "CARD_SECRET", "--out",
                           str(tmp_path / "sign.der")], capture_output=True, text=True,
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert x509.load_der_x509_certificate((tmp_path / "sign.der").read_bytes()).subject
    assert "SAFE2468" not in proc.stdout + proc.stderr
    # without a source of the secret and without a terminal: one line, nothing written
    proc = subprocess.run([sys.executable, "-m", "workbench", "card", "export", str(image),
                           "--cert", "sign", "--out", str(tmp_path / "none.der")],
                          capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          timeout=120)
    one_line_error(proc, "needs the sign password")
    assert not (tmp_path / "none.der").exists()
    # a wrong password costs a try and says so in one line, without echoing it
    env = dict(os.environ, CARD_SECRET="WRONG999")
    proc = subprocess.run([sys.executable, "-m", "workbench", "card", "export", str(image),
                           "--cert", "sign", "--pin-env", "CARD_SECRET"], capture_output=True,
                          text=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, timeout=120)
    one_line_error(proc, "4 tries left")
    assert "WRONG999" not in proc.stderr


def test_show_prints_where_revocation_is_checked(tmp_path):
    db = tmp_path / "a.db"
    assert run_cli("pki", "init", "--db", str(db), "--seed", "y", "--repository-url",
                   "http://127.0.0.1:18999", "--ocsp-aia").returncode == 0
    card = tmp_path / "c.jwc"
    assert run_cli("card", "new", str(card), "--authority", str(db), "--seed", "4").returncode == 0
    out = run_cli("card", "show", str(card)).stdout
    assert "CRL DP" in out and "http://127.0.0.1:18999/crl/" in out
    assert "OCSP       http://127.0.0.1:18999/ocsp" in out


def test_apdu_wording(image):
    out = run_cli("card", "apdu", str(image), "00A4040C0AD392F000260100000001", "00A4020C020018",
                  "00200080", "002000800431313131").stdout
    assert "retry-counter query: 3 tries left" in out
    assert "verification failed, 2 tries left" in out

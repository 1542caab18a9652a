"""The command line (issue 2 item 7): card new / show / apdu, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli as run
from workbench.cli import main

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "card.jwc"
    assert main(["card", "new", str(path), "--seed", "5", "--auth-pin", "2580", "--sign-password", "PASS2580"]) == 0
    return path


def test_new_and_show(image, capsys):
    assert main(["card", "show", str(image)]) == 0
    out = capsys.readouterr().out
    assert "JPKIAPICCTOKEN2" in out and "[sign]" in out and "[auth_ca]" in out
    assert "2580" not in out and "PASS2580" not in out
    assert main(["card", "show", str(image), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tries_left"] == {"auth": 3, "sign": 5, "text": 3, "juki": 3, "common": 3}
    assert info["certificates"]["sign"]["serial_hex"].startswith("0x")
    assert info["holder"]["individual_number"].startswith("********")


def test_seed_is_reproducible(tmp_path, capsys):
    a, b = tmp_path / "a.jwc", tmp_path / "b.jwc"
    for p in (a, b):
        assert main(["card", "new", str(p), "--seed", "42", "--profile", "gpse", "--issued-at", "2025-04-01"]) == 0
    capsys.readouterr()
    shown = []
    for p in (a, b):
        main(["card", "show", str(p), "--json"])
        info = json.loads(capsys.readouterr().out)
        info.pop("path")
        shown.append(info)
    assert shown[0] == shown[1]
    assert shown[0]["token_label"] == "JPKIAPGPSETOKEN"


def test_apdu_decodes_and_masks(image, capsys):
    pin = b"2580".hex()
    assert main(["card", "apdu", str(image), "00A4040C0AD392F000260100000001", "00A4020C020018",
                 f"0020008004{pin}", "00 20 00 80", "00B0000004"]) == 0
    out = capsys.readouterr().out
    assert pin not in out.lower()
    assert "63C3" in out and "9000" in out
    assert "6981" in out  # READ BINARY on the PIN object (jpki-card.md 3.1 MODEL)
    assert "照合不一致" in out or "残り" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["card", "apdu", "{img}", "00A4ZZ"], "not an APDU in hex"),
        (["card", "apdu", "{img}", "00A"], "not an APDU in hex"),
        (["card", "new", "{tmp}/x.jwc", "--profile", "ios"], "unknown profile"),
        (["card", "new", "{tmp}/x.jwc", "--auth-pin", "12345"], "exactly 4"),
        (["card", "new", "{tmp}/x.jwc", "--sign-password", "ABCDEFG"], "letter and one digit"),
        (["card", "new", "{img}"], "already exists"),
        (["card", "show", "{tmp}/missing.jwc"], "does not exist"),
        (["card", "show", "{tmp}/corrupt.jwc"], "not a card image"),
        (["card", "new", "{tmp}/x.jwc", "--atr", "nfc"], "unknown ATR profile"),
        (["card", "new", "{tmp}/x.jwc", "--issued-at", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_errors_are_one_line(image, tmp_path, args, message):
    corrupt = tmp_path / "corrupt.jwc"
    corrupt.write_bytes(b"garbage bytes")
    args = [a.format(img=image, tmp=tmp_path) for a in args]
    before = image.read_bytes()
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert image.read_bytes() == before
    assert corrupt.read_bytes() == b"garbage bytes"
    assert not (tmp_path / "x.jwc").exists()


def test_usage_error_exit_code():
    proc = run("card")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_lab_fills_a_folder_without_overwriting(tmp_path):
    from tests.helpers import run_cli

    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "00_start_here.ipynb").write_text("mine")
    done = run_cli("lab", str(folder), "--dry-run", "--no-browser")
    assert done.returncode == 0, done.stderr
    from tests.helpers import ROOT
    from workbench.cli.lab import prepare

    shipped = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert f"would copy {len(shipped) - 1} notebooks into {folder}" in done.stdout
    assert [p.name for p in folder.iterdir()] == ["00_start_here.ipynb"]  # a dry run writes nothing
    prepare(folder)  # what the command does before it starts JupyterLab
    assert (folder / "00_start_here.ipynb").read_text() == "mine"  # a user's edit stays
    assert {p.name for p in folder.glob("*.ipynb")} == shipped
    assert f"--notebook-dir={folder}" in done.stdout and "--no-browser" in done.stdout
    assert "news_url=None" in done.stdout
    bad = run_cli("lab", str(tmp_path / "nb" / "00_start_here.ipynb"), "--dry-run")
    assert bad.returncode == 2 and "is not a folder" in bad.stderr

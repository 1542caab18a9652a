"""``jpki-workbench se new / show / apdu`` run as a user runs them (a subprocess each): exit
status, one-line errors without a traceback, images left untouched when refused, and ``se
show`` never printing a key (only key check values, globalplatform.md 6.11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.helpers import run_cli
from tests.test_se_element import ELF, ISD, JPKI, SSD, make_se
from workbench.se import SecureElement


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _kcv(key: bytes) -> str:
    """AES KCV: first 3 bytes of AES-ECB(key, 16 x 01) (globalplatform.md 6.11)."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return (enc.update(b"\x01" * 16) + enc.finalize())[:3].hex().upper()


@pytest.fixture
def personalised_image(tmp_path) -> Path:
    path = tmp_path / "phone.se"
    se = make_se("personalised")
    se.save(path)
    se.close()
    return path


def test_se_new_makes_a_factory_image(tmp_path):
    path = tmp_path / "phone.se"
    result = run_cli("se", "new", str(path), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with SecureElement.load(path) as se:
        assert {e.aid.hex().upper(): e.life_cycle for e in se.registry} == {
            ISD: 0x0F, ELF: 0x01, SSD: 0x0F}
        assert se.jpki is None


def test_se_new_refuses_an_existing_file_without_force(tmp_path):
    path = tmp_path / "phone.se"
    make_se("factory").save(path)
    before = path.read_bytes()
    line = _one_line_error(run_cli("se", "new", str(path)))
    assert "--force" in line
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind", ["text", "card-image"])
def test_se_new_force_replaces_only_se_images(tmp_path, kind):
    path = tmp_path / "other"
    if kind == "text":
        path.write_text("my notes\n")
    else:
        from workbench.card.image import write_image

        write_image(path, {"profile": "icc"}, [])
    before = path.read_bytes()
    line = _one_line_error(run_cli("se", "new", str(path), "--force"))
    assert "not an SE image" in line
    assert path.read_bytes() == before


def test_se_new_force_replaces_an_se_image_and_seed_is_reproducible(tmp_path):
    a, b = tmp_path / "a.se", tmp_path / "b.se"
    assert run_cli("se", "new", str(a), "--seed", "9").returncode == 0
    assert run_cli("se", "new", str(b)).returncode == 0
    assert run_cli("se", "new", str(b), "--seed", "9", "--force").returncode == 0
    with SecureElement.load(a) as one, SecureElement.load(b) as two:
        assert one.meta["se_id"] == two.meta["se_id"]
        assert one.key_sets == two.key_sets


def _secrets_hex(path: Path) -> list[str]:
    """Every key the image holds, as hex (static SCP03 keys; the applet's p, q, d)."""
    out = []
    with SecureElement.load(path) as se:
        for sets in se.key_sets.values():
            for k in sets:
                out += [k.enc.hex(), k.mac.hex(), k.dek.hex()]
        for fid in (0x0017, 0x001A):
            pn = se.hazmat_private_key(bytes.fromhex(JPKI), fid).private_numbers()
            out += [f"{v:x}"[:32] for v in (pn.p, pn.q, pn.d)]
    return out


def test_se_show_text_and_json_show_kcvs_never_keys(personalised_image):
    path = personalised_image
    text = run_cli("se", "show", str(path))
    assert text.returncode == 0, text.stderr
    as_json = run_cli("se", "show", str(path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    for out in (text.stdout, as_json.stdout):
        for secret in _secrets_hex(path):
            assert secret.lower() not in out.lower()
    info = json.loads(as_json.stdout)
    with SecureElement.load(path) as se:
        expected_kcv = {aid.hex().upper(): [{n: _kcv(getattr(k, n)) for n in ("enc", "mac", "dek")}
                                            for k in sets]
                        for aid, sets in se.key_sets.items()}
    assert {aid: [k["kcv"] for k in sets] for aid, sets in info["key_sets"].items()} == expected_kcv
    assert info["key_sets"][ISD][0]["kcv"]["enc"] == "504A77"  # 40..4F test key (6.11)
    states = {e["aid"]: e["life_cycle"] for e in info["registry"]}
    assert states == {ISD: "0F", ELF: "01", SSD: "0F", JPKI: "0F"}
    assert info["jpki_applet"]["installed"] is True
    assert set(info["jpki_applet"]["certificates"]) >= {"auth", "sign"}
    assert info["jpki_applet"]["tries_left"] == {"auth": 3, "sign": 5}
    assert JPKI in text.stdout and "504A77" in text.stdout


def test_se_apdu_plain_and_inside_scp03(personalised_image):
    """Plain: GET DATA 0066 from the ISD. --scp03 33: GET STATUS inside a session to the SSD
    answers the registry entries of globalplatform.md 5.2 (SSD 0F 80, applet 0F 00)."""
    path = personalised_image
    plain = run_cli("se", "apdu", str(path), "80CA006600")
    assert plain.returncode == 0, plain.stderr
    assert "< 6618731606072A864886FC6B01640B06092A864886FC6B040370 9000" in plain.stdout
    wrapped = run_cli("se", "apdu", str(path), "--scp03", "33", "80F24000024F0000")
    assert wrapped.returncode == 0, wrapped.stderr
    assert "SCP03 open to " + SSD in wrapped.stdout
    assert f"< 0A{SSD}0F800A{JPKI}0F00 9000" in wrapped.stdout
    refused = run_cli("se", "apdu", str(path), "80F24000024F0000")  # the same, no session
    assert refused.returncode == 0 and "< 6982" in refused.stdout


@pytest.mark.parametrize("args,needle", [
    (["se", "apdu", "{path}", "00A4zz"], "not an APDU in hex"),
    (["se", "apdu", "{path}", "00A404", "123"], "not an APDU in hex"),
    (["se", "apdu", "{path}", "--scp03", "44", "80CA006600"], "--scp03"),
    (["se", "apdu", "{missing}", "80CA006600"], "does not exist"),
    (["se", "show", "{missing}"], "does not exist"),
    (["se", "apdu", "{text}", "80CA006600"], "SE image"),
    (["se", "show", "{text}"], "SE image"),
])
def test_se_cli_mistakes_are_one_line_and_touch_nothing(tmp_path, args, needle):
    path, text = tmp_path / "phone.se", tmp_path / "notes.txt"
    make_se("factory").save(path)
    text.write_text("not an image\n")
    before = {p: p.read_bytes() for p in (path, text)}
    argv = [a.format(path=path, missing=tmp_path / "missing.se", text=text) for a in args]
    line = _one_line_error(run_cli(*argv))
    assert needle in line
    assert {p: p.read_bytes() for p in (path, text)} == before
    assert not (tmp_path / "missing.se").exists()

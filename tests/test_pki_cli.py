"""``card new --authority`` and ``pki init|revoke|hold|release|status|list|crl`` (issue 3 item 7).

The events of smartphone-service.md 8–10 from the shell, with the reasons of 15.8; mistakes
end with one line on stderr and exit status 2, never a traceback. Commands that take effect
"now" are given ``--at`` so the tests do not depend on the wall clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.helpers import run_cli as run
from workbench.cli import main
from workbench.pki.crl import LoadedCrl
from workbench.pki.status import RevocationReason
from workbench.pki.store import AuthorityStore

ROOT = Path(__file__).parents[1]
ISSUED = "2025-04-01T10:00+09:00"
REVOKED_AT = "2025-04-01T12:00+09:00"
NEXT_PUBLICATION = "2025-04-02T00:00+09:00"


@pytest.fixture(scope="module")
def authority(tmp_path_factory) -> tuple[Path, dict[str, str], str]:
    """An authority with one phone token issued through `card new --authority`."""
    base = tmp_path_factory.mktemp("pki-cli")
    db = base / "authority.db"
    assert main(["pki", "init", "--db", str(db), "--seed", "tests",
                 "--repository-url", "http://127.0.0.1:8765"]) == 0
    card = base / "phone.jwc"
    assert main(["card", "new", str(card), "--profile", "gpse", "--seed", "9",
                 "--issued-at", ISSUED, "--authority", str(db)]) == 0
    with AuthorityStore.open(db) as store:
        recs = {c.kind: c for c in store.registry.certificates() if c.kind != "ca"}
        municipality = recs["auth"].partition
    assert municipality is not None
    return db, {k: f"0x{v.serial:X}" for k, v in recs.items()}, municipality


def test_card_new_registers_with_a_new_authority(tmp_path, capsys) -> None:
    db = tmp_path / "fresh.db"
    assert main(["card", "new", str(tmp_path / "c.jwc"), "--profile", "gpse", "--seed", "9",
                 "--issued-at", ISSUED, "--authority", str(db)]) == 0
    out = capsys.readouterr().out
    assert "registered with the authority" in out and db.exists()
    assert main(["card", "show", str(tmp_path / "c.jwc"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["certificates"]
    on_card = {shown[name]["serial_hex"].upper() for name in ("sign", "auth")}
    with AuthorityStore.open(db) as store:
        registered = {f"0X{c.serial:X}" for c in store.registry.certificates() if c.kind != "ca"}
    assert registered == on_card
    assert main(["card", "new", str(tmp_path / "d.jwc"), "--profile", "gpse", "--seed", "10",
                 "--issued-at", ISSUED, "--authority", str(db)]) == 0  # the same authority
    with AuthorityStore.open(db) as store:
        registered_now = store.registry.certificates()
    assert len([c for c in registered_now if c.kind == "ca"]) == 2  # one CA per hierarchy
    assert len([c for c in registered_now if c.kind != "ca"]) == 4


def test_hold_release_revoke_and_status(authority, capsys) -> None:
    db, serials, _ = authority
    auth = serials["auth"]
    assert main(["pki", "hold", auth, "--db", str(db), "--at", "2025-04-01T11:00+09:00"]) == 0
    assert main(["pki", "release", auth, "--db", str(db), "--at", "2025-04-01T11:30+09:00"]) == 0
    assert main(["pki", "revoke", str(int(auth, 16)), "--db", str(db), "--reason",
                 "key-compromise", "--at", REVOKED_AT]) == 0
    out = capsys.readouterr().out
    assert f"held {auth}" in out and f"released {auth}" in out
    assert f"revoked {auth}" in out and "keyCompromise" in out
    assert main(["pki", "status", auth, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "revoked since 2025-04-01T03:00:00Z (keyCompromise)" in out
    actions = [line.split()[1] for line in out.splitlines()
               if line.strip() and line.split()[0].isdigit()]
    assert actions == ["issue", "hold", "release", "revoke"]
    assert main(["pki", "status", auth, "--db", str(db), "--at", "2025-04-01T11:10+09:00"]) == 0
    assert "status         held since 2025-04-01T02:00:00Z" in capsys.readouterr().out


def test_crl_writes_der_and_pem(authority, tmp_path, capsys) -> None:
    db, serials, municipality = authority
    sign = serials["sign"]
    assert main(["pki", "revoke", sign, "--db", str(db), "--reason", "superseded", "--at",
                 REVOKED_AT]) == 0
    der_path, pem_path = tmp_path / "auth.crl", tmp_path / "sign.pem"
    assert main(["pki", "crl", "--db", str(db), "--ca", "sign", "--partition", municipality,
                 "--at", NEXT_PUBLICATION, "--out", str(pem_path), "--pem"]) == 0
    assert main(["pki", "crl", "--db", str(db), "--ca", "sign", "--generation", "3", "--at",
                 NEXT_PUBLICATION, "--out", str(der_path)]) == 0
    out = capsys.readouterr().out
    assert "thisUpdate 2025-04-01T15:00:00Z" in out and "1 entries" in out
    crl = x509.load_pem_x509_crl(pem_path.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(sign, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.superseded)
    assert LoadedCrl.from_der(der_path.read_bytes()).is_revoked(int(sign, 16)) == (
        RevocationReason.SUPERSEDED, entry.revocation_date_utc)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed over


def test_list_shows_registered_certificates(authority, capsys) -> None:
    db, serials, municipality = authority
    assert main(["pki", "list", "--db", str(db), "--partition", municipality]) == 0
    out = capsys.readouterr().out
    assert serials["auth"] in out and serials["sign"] in out


def test_errors_are_one_line_with_status_2(authority, tmp_path) -> None:
    db, serials, _ = authority
    cases = [
        (["pki", "revoke", "12ab", "--db", str(db)], "not a serial number"),
        (["pki", "revoke", serials["auth"], "--db", str(db), "--reason", "bored"],
         "unknown revocation reason"),
        (["pki", "revoke", "0x1", "--db", str(db)], "never registered"),
        (["pki", "hold", serials["auth"], "--db", str(tmp_path / "missing.db")],
         "no authority database"),
        (["pki", "crl", "--db", str(db), "--partition", "47201", "--out",
          str(tmp_path / "x.crl")], "partition"),
        (["pki", "status", "0x1", "--db", str(db), "--at", "yesterday"], "not an ISO 8601"),
    ]
    for argv, expected in cases:
        res = run(*argv)
        assert res.returncode == 2, (argv, res.stderr)
        assert expected in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "missing.db").exists()


def test_revoking_twice_is_refused(authority) -> None:
    db, _, _ = authority
    with AuthorityStore.open(db) as store:
        victim = next(c for c in store.registry.certificates() if c.kind == "ca")
    first = run("pki", "revoke", f"0x{victim.serial:X}", "--db", str(db), "--reason",
                "cACompromise", "--at", REVOKED_AT)
    assert first.returncode == 0, first.stderr
    again = run("pki", "revoke", f"0x{victim.serial:X}", "--db", str(db))
    assert again.returncode == 2
    assert "already revoked; revocation is final" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_corrupt_database_is_refused_and_kept(tmp_path) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"definitely not sqlite" * 10)
    res = run("pki", "status", "1", "--db", str(db))
    assert res.returncode == 2 and "untouched" in res.stderr
    assert db.read_bytes() == b"definitely not sqlite" * 10
    res = run("card", "new", str(tmp_path / "c.jwc"), "--authority", str(db), "--seed", "1")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not (tmp_path / "c.jwc").exists()


def test_init_refuses_an_existing_database(authority) -> None:
    db, _, _ = authority
    res = run("pki", "init", "--db", str(db))
    assert res.returncode == 2 and "already exists" in res.stderr

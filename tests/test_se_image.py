"""SE image files: the phone's secure element on disk (workbench.se.image; the SE content
survives, globalplatform.md 9 item 5, smartphone-service.md 15.6).

Durability is shown with real processes that die (``os._exit``) at named points of
:mod:`workbench.hooks` or between two APDUs of the TSM's script, and a reload that must find
the old state or the new one, never a mix.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.helpers import ROOT, run_cli
from tests.test_se_applet import public_der, sign_with
from tests.test_se_element import (
    AUTH_PIN,
    JPKI,
    SIGN_PASSWORD,
    SSD,
    Host,
    apdu,
    make_se,
    sel_ef,
    select,
    sw_of,
    verify,
)
from workbench.se import SecureElement, SeImageError

JPKI_AID = bytes.fromhex(JPKI)


def read_ef(se: SecureElement, fid: int) -> bytes:
    for step in (select(JPKI), sel_ef(fid)):
        assert sw_of(se.transmit(bytes.fromhex(step))) == "9000", step
    answer = se.transmit(bytes.fromhex("00B0000000"))
    assert sw_of(answer) == "9000"
    return answer[:-2]


def initialize_update_counter(se: SecureElement, host_challenge: str = "1122334455667788"
                              ) -> tuple[bytes, int]:
    """(card challenge, sequence counter) of an INITIALIZE UPDATE to the SSD (6.1: KDD 10,
    key info 3, challenge 8, cryptogram 8, counter 3)."""
    assert sw_of(se.transmit(bytes.fromhex(select(SSD)))) == "9000"
    answer = se.transmit(bytes.fromhex(f"8050000008{host_challenge}00"))
    assert sw_of(answer) == "9000" and len(answer) == 32 + 2
    return answer[13:21], int.from_bytes(answer[29:32], "big")


# --- round trip ----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    """Registry (with a locked SSD tree and app state), key sets (one added with PUT KEY),
    sequence counters, the applet's nodes (keys, certificates) and tries all come back."""
    se = make_se("personalised")
    host = Host(se)
    assert host.open("ssd", 0x33) == "9000"
    from tests.test_se_element import _aes_ecb

    dek = se.key_sets[bytes.fromhex(SSD)][0].dek
    body = "31" + "".join("8810" + _aes_ecb(dek, bytes([i]) * 16).hex() + "00"
                          for i in (1, 2, 3))
    assert host.w(apdu("80D80081", body, "00"))[1] == "9000"
    for step in (select(JPKI), sel_ef(0x001B), verify("WRONG1")):
        se.transmit(bytes.fromhex(step))
    _, counter = initialize_update_counter(se)
    path = tmp_path / "phone.se"
    se.save(path)
    se.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # keys inside (sqlitefile)
    with SecureElement.load(path) as again:
        assert again.registry == se.registry
        assert again.key_sets == se.key_sets
        assert {k.kvn for k in again.key_sets[bytes.fromhex(SSD)]} == {0x30, 0x31}
        assert again.pin_status() == se.pin_status() == {"auth": 3, "sign": 4}
        assert {k: c.serial_number for k, c in again.certificates().items()} == {
            k: c.serial_number for k, c in se.certificates().items()}
        for fid in (0x0017, 0x001A):
            assert again.hazmat_private_key(JPKI_AID, fid).private_numbers() == \
                se.hazmat_private_key(JPKI_AID, fid).private_numbers()
        assert again.meta == se.meta
        # the sequence counter went on from where it was (6.4: one per INITIALIZE UPDATE)
        assert initialize_update_counter(again)[1] == counter + 1
        again.reset()
        assert sw_of(again.transmit(bytes.fromhex(select(JPKI)))) == "9000"
        assert sw_of(again.transmit(bytes.fromhex(sel_ef(0x001B)))) == "9000"
        assert again.transmit(bytes.fromhex(verify(SIGN_PASSWORD))) == b"\x90\x00"


def test_changes_reach_the_file_as_they_happen(tmp_path):
    """image.py: every change is committed before the answer leaves: a second reader sees a
    spent try, a lock and a counter without the first SE being closed."""
    path = tmp_path / "phone.se"
    se = make_se("personalised")
    se.save(path)
    for step in (select(JPKI), sel_ef(0x0018), verify("0000")):
        se.transmit(bytes.fromhex(step))
    host = Host(se)
    assert host.open() == "9000" and host.w(apdu("80F04080", JPKI))[1] == "9000"
    with SecureElement.load(path) as other:
        assert other.pin_status()["auth"] == 2
        assert next(e for e in other.registry if e.aid == JPKI_AID).life_cycle == 0x8F
        _, counter = initialize_update_counter(other)
    assert counter == 2  # personalisation used 0, Host.open 1, this one 2 (6.4)
    se.close()


@pytest.mark.parametrize(
    "content",
    [b"not an SE image, just text\n", b"SQLite format 3\x00" + b"\x00" * 200, b""],
    ids=["text", "truncated-sqlite", "empty"],
)
def test_foreign_files_are_refused_in_one_line_and_left_untouched(tmp_path, content):
    path = tmp_path / "bad.se"
    path.write_bytes(content)
    with pytest.raises(SeImageError) as err:
        SecureElement.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == content
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_another_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something else')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SeImageError, match="not an SE image") as err:
        SecureElement.load(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_a_card_image_is_not_an_se_image(tmp_path):
    from workbench.card.image import write_image

    path = tmp_path / "card.jwc"
    write_image(path, {"profile": "icc"}, [])  # a (content-less) plastic card's image
    before = path.read_bytes()
    with pytest.raises(SeImageError, match="not an SE image"):
        SecureElement.load(path)
    assert path.read_bytes() == before


def test_the_sequence_counter_survives_processes(tmp_path):
    """6.4 with i bit 10: the card challenge comes from a sequence counter that counts one
    per INITIALIZE UPDATE; two sessions in two processes (the CLI, as a user runs it) with the
    same host challenge get different card challenges and consecutive counters."""
    path = tmp_path / "phone.se"
    make_se("factory").save(path)
    seen = []
    for _ in range(2):
        result = run_cli("se", "apdu", str(path), select(SSD), "8050000008" "1122334455667788" "00")
        assert result.returncode == 0, result.stderr
        answer = result.stdout.strip().splitlines()[-1].split()[1]  # "< <data> 9000 ..."
        data = bytes.fromhex(answer)
        seen.append((data[13:21], int.from_bytes(data[29:32], "big")))
    (c1, n1), (c2, n2) = seen
    assert c1 != c2 and n2 == n1 + 1


# --- really killed processes ---------------------------------------------------------------

_PERSO_CHILD = textwrap.dedent(
    """
    import os, sys
    from workbench import hooks
    from workbench.se import SecureElement
    from tests.test_se_element import (PERSO, Host, apdu, certificate_for, dgi,
                                       read_public_key)

    kill, path = sys.argv[1], sys.argv[2]
    se = SecureElement.load(path)
    se.power_on()
    host = Host(se)
    assert host.open() == "9000" and host.w(PERSO)[1] == "9000"
    der, _ = read_public_key(host, 0xA01A, 0xA11A)  # 15.5 R3: a new signing key pair
    cert = certificate_for(der, "re-issued signing certificate")
    print("NEW", der.hex(), cert.hex(), flush=True)
    stream = (dgi(0x0001, cert) + dgi(0x0006, b"JPKIAPGPSETOKEN".ljust(32, b"*"))
              + dgi(0x0008, bytes.fromhex("8F8F01")))
    blocks = [stream[i:i + 180] for i in range(0, len(stream), 180)]
    for n, chunk in enumerate(blocks):
        last = n == len(blocks) - 1
        if last and kill == "before-last-block":
            os._exit(9)
        if last and kill.startswith("row-"):
            written = [0]
            limit = int(kill[4:])  # the commit writes 4 rows: 001A, 0001, 0006, 0008

            def die(point):
                written[0] += 1
                if written[0] == limit:
                    os._exit(9)

            hooks.install("card:nodes:row-written", die)
        data, sw = host.w(apdu(f"80E2{'88' if last else '08'}{host.perso_block:02X}",
                               chunk.hex(), "00"))
        assert sw == "9000", sw
        host.perso_block += 1
        if n == 1 and kill == "between-blocks":
            os._exit(9)
    os._exit(7)  # the sequence committed
    """
)

_KILL_POINTS = {  # kill point -> the state the image must hold afterwards
    "between-blocks": "old",
    "before-last-block": "old",
    "row-1": "old",
    "row-4": "old",
    "committed": "new",
}


def _state(path: Path) -> tuple[bytes, bytes, bytes, bytes]:
    """(signing public key, signing certificate, EF 0006, EF 0008) of the image's applet."""
    from cryptography.hazmat.primitives.serialization import Encoding

    with SecureElement.load(path) as se:
        return (public_der(se, 0x001A), se.certificates()["sign"].public_bytes(Encoding.DER),
                read_ef(se, 0x0006)[:32], read_ef(se, 0x0008)[:3])


def test_killed_during_store_data_leaves_old_or_new_never_a_mix(tmp_path):
    """globalplatform.md 5.5, applet.py: a personalisation sequence (15.5 R3: new signing key
    A01A, its certificate 0001, token info 0006, 0008) is one transaction at its last block.
    A child process running the TSM script dies (os._exit) between two STORE DATA blocks,
    before the last block, after the first and after the last row of the final commit
    (``card:nodes:row-written``), or not at all; the reloaded image is entirely before or
    entirely after the personalisation."""
    base = tmp_path / "base.se"
    se = make_se("personalised")
    se.save(base)
    se.close()
    old = _state(base)
    children = {}
    for kill in _KILL_POINTS:
        path = tmp_path / f"{kill}.se"
        path.write_bytes(base.read_bytes())
        os.chmod(path, 0o600)
        children[kill] = (path, subprocess.Popen(
            [sys.executable, "-c", _PERSO_CHILD, kill, str(path)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for kill, (path, child) in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == (7 if kill == "committed" else 9), (kill, err)
        _, key_hex, cert_hex = out.split()
        new = (bytes.fromhex(key_hex), bytes.fromhex(cert_hex),
               b"JPKIAPGPSETOKEN".ljust(32, b"*"), bytes.fromhex("8F8F01"))
        state = _state(path)
        assert state in (old, new), f"{kill}: a mix of old and new"
        assert state == (old if _KILL_POINTS[kill] == "old" else new), kill
    # the old state is whole: its key still signs for its certificate
    with SecureElement.load(children["row-4"][0]) as se:
        signature = sign_with(se, 0x001A, 0x001B, SIGN_PASSWORD, b"still whole")
        se.certificates()["sign"].public_key().verify(
            signature, b"still whole", padding.PKCS1v15(), hashes.SHA256())
    with SecureElement.load(children["committed"][0]) as se:
        signature = sign_with(se, 0x001A, 0x001B, SIGN_PASSWORD, b"new key")
        x509.load_der_x509_certificate(new[1]).public_key().verify(
            signature, b"new key", padding.PKCS1v15(), hashes.SHA256())


def test_kill_between_decrement_and_compare_spends_the_try(tmp_path):
    """jpki-card.md 4.3 and issue 2, for the SE-hosted applet: the retry counter is spent and
    committed before the PIN is compared. The child dies at ``card:verify:counter-spent`` with
    the right PIN in flight; the reloaded image shows the try spent."""
    path = tmp_path / "phone.se"
    se = make_se("personalised")
    se.save(path)
    se.close()
    child = textwrap.dedent(
        f"""
        import os, sys
        from workbench import hooks
        from workbench.se import SecureElement
        se = SecureElement.load({str(path)!r})
        hooks.install("card:verify:counter-spent", lambda point: os._exit(9))
        for step in ({select(JPKI)!r}, "00A4020C020018", {verify(AUTH_PIN)!r}):
            se.transmit(bytes.fromhex(step))
        sys.exit(0)  # not reached
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, timeout=120)
    assert proc.returncode == 9
    with SecureElement.load(path) as again:
        assert again.pin_status()["auth"] == 2
        for step in (select(JPKI), "00A4020C020018"):
            assert sw_of(again.transmit(bytes.fromhex(step))) == "9000"
        assert again.transmit(bytes.fromhex(verify(AUTH_PIN))) == b"\x90\x00"
        assert again.pin_status()["auth"] == 3

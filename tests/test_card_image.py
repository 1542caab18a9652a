"""Card images: save/load, durable counters, anti-tearing, corrupt files (issue 2, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_card_status_words import JPKI, V_AUTH, sel, verify
from workbench.card import VirtualCard
from workbench.card import constants as c
from workbench.errors import CardImageError
from workbench.lifecycle import load_token


def test_save_load_round_trip(make_card, profile, tmp_path):
    card = make_card(profile)
    path = tmp_path / "card.jwc"
    card.save(path)
    card.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # holds private keys
    with load_token(path) as again:  # a card image, or the phone's SE image
        assert again.profile == profile
        assert again.atr == card.atr
        assert {k: v.serial_number for k, v in again.certificates().items()} == {
            k: v.serial_number for k, v in card.certificates().items()
        }
        assert again.transmit(bytes.fromhex(JPKI))[-2:] == b"\x90\x00"
        assert again.transmit(bytes.fromhex(sel(c.PIN_AUTH) ))[-2:] == b"\x90\x00"
        assert again.transmit(bytes.fromhex(V_AUTH)) == b"\x90\x00"


def test_counter_changes_are_persisted_as_they_happen(make_card, tmp_path):
    path = tmp_path / "card.jwc"
    card = make_card("icc")
    card.save(path)
    for h in (JPKI, sel(c.PIN_AUTH), verify("0000")):
        card.transmit(bytes.fromhex(h))
    # a second process-independent reader sees the spent try without the card being closed
    with VirtualCard.load(path) as other:
        assert other.pin_status()["auth"] == 2
    card.close()


def test_kill_between_decrement_and_compare_spends_the_try(make_card, tmp_path):
    """Issue 2: the counter is decremented and persisted *before* the PIN is compared, so a
    process killed mid-VERIFY gives no free guess. The child really dies (os._exit) at the
    hook between the two steps, with the correct PIN in flight."""
    path = tmp_path / "card.jwc"
    make_card("icc").save(path)
    child = textwrap.dedent(
        f"""
        import os, sys
        from workbench import hooks
        from workbench.card import VirtualCard
        card = VirtualCard.load({str(path)!r})
        hooks.install("card:verify:counter-spent", lambda point: os._exit(9))
        card.transmit(bytes.fromhex({JPKI!r}))
        card.transmit(bytes.fromhex({sel(c.PIN_AUTH)!r}))
        card.transmit(bytes.fromhex({V_AUTH!r}))
        sys.exit(0)  # not reached
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).parents[1], timeout=120)
    assert proc.returncode == 9
    with VirtualCard.load(path) as card:
        assert card.pin_status()["auth"] == 2


def test_missing_image(tmp_path):
    with pytest.raises(CardImageError, match="does not exist"):
        VirtualCard.load(tmp_path / "nope.jwc")


@pytest.mark.parametrize(
    "content",
    [b"", b"not a card at all", b"SQLite format 3\x00" + b"\x00" * 200, os.urandom(4096)],
    ids=["empty", "text", "truncated-sqlite", "random"],
)
def test_corrupt_image_is_refused_and_left_untouched(tmp_path, content):
    path = tmp_path / "bad.jwc"
    path.write_bytes(content)
    with pytest.raises(CardImageError):
        VirtualCard.load(path)
    assert path.read_bytes() == content
    assert not Path(f"{path}-wal").exists()


def test_sqlite_but_not_a_card(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CardImageError, match="not a card image"):
        VirtualCard.load(path)
    assert path.read_bytes() == before


def test_save_replaces_atomically(make_card, tmp_path):
    """A failed save leaves the previous image whole; a good save replaces it in one step."""
    path = tmp_path / "card.jwc"
    first = make_card("icc", seed=1)
    first.save(path)
    first.close()
    before = path.read_bytes()
    with pytest.raises(CardImageError):
        make_card("icc", seed=2).save(tmp_path / "missing-folder" / "card.jwc")
    assert path.read_bytes() == before
    second = make_card("icc", seed=2)
    second.save(path)
    second.close()
    with VirtualCard.load(path) as card:
        assert card.meta["seed"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

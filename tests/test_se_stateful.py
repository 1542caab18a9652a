"""Random content-management sequences against the secure element (hypothesis stateful).

The machine keeps its own model of what globalplatform.md 3 allows (the JPKI instance's life
cycle, the card's, the keys answered by DGI A017/A01A, the PINs) and after every step compares
it with ``se.registry`` and the applet's keys. Across all sequences: transitions happen only
as section 3's table says; no answer, on the wire or unwrapped, contains a byte window of any
private key the SE could hold; a locked applet never signs; keys survive lock and unlock and
are gone after DELETE (smartphone-service.md 14 item 2, 15.4-15.6).
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.test_se_element import (
    AUTH_PIN,
    DELETE,
    INSTALL,
    INSTALL_ONLY,
    JPKI,
    MAKE_SELECTABLE,
    PERSO,
    SSD,
    Host,
    apdu,
    certificate_for,
    dgi,
    key_pool,
    new_se,
    personalise,
    read_public_key,
    select,
    set_pin,
    store_blocks,
    sw_of,
    verify,
)

JPKI_AID = bytes.fromhex(JPKI)
ABSENT = None
SIGN_INPUT = bytes.fromhex("3031300D060960864801650304020105000420") + bytes(range(32))


@functools.cache
def pool_windows(width: int = 16) -> frozenset[bytes]:
    """Every ``width``-byte window of p, q, d, dP, dQ, qInv of every key the SE can make."""
    out: set[bytes] = set()
    for key in key_pool():
        pn = key.private_numbers()
        for value in (pn.p, pn.q, pn.d, pn.dmp1, pn.dmq1, pn.iqmp):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            out.update(raw[i:i + width] for i in range(len(raw) - width + 1))
    return frozenset(out)


def expected_set_status(state: int, p2: int) -> tuple[str, int]:
    """globalplatform.md 3 and 5.8 for an application: (SW, new state)."""
    locked = bool(state & 0x80)
    if p2 == 0x80:  # lock: the current state with bit 8 set, from any unlocked state
        return ("6985", state) if locked else ("9000", state | 0x80)
    if p2 == 0x00:  # unlock: back to the state it was locked in
        return ("9000", state & 0x7F) if locked else ("6985", state)
    if p2 & 0x07 == 0x07 and p2 > 0x07 and not p2 & 0x80:  # application-specific
        if locked or state == 0x03:
            return "6985", state
        return "9000", p2
    return "6A86", state


class SecureElementMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.se = new_se()
        self.host = Host(self.se)
        self.state: int | None = ABSENT  # the JPKI instance's life cycle, None = absent
        self.card_locked = False
        self.keys: dict[int, bytes] = {}  # fid -> DER RSAPublicKey answered by the SE
        self.certificates: set[str] = set()
        self.pins: dict[str, int | None] = {"auth": None, "sign": None}  # tries, None = not set
        self.channels = {0}
        self.answers_checked = 0

    # -- helpers --------------------------------------------------------------------------

    def _tsm(self, sd: str = "ssd") -> bool:
        """Open an SCP03 session (level 33); False when the card state forbids it."""
        if self.card_locked and sd == "ssd":
            assert sw_of(self.host.send(select(SSD))) == "6A82"  # 3: only the ISD
            return False
        assert self.host.open(sd, 0x33) == "9000"
        return True

    @property
    def selectable(self) -> bool:
        s = self.state
        return s is not None and s & 0x07 == 0x07 and not s & 0x80 and not self.card_locked

    def _fresh_instance(self) -> None:
        self.keys = {}
        self.certificates = set()
        self.pins = {"auth": None, "sign": None}

    def _issue(self, level: int = 0x33) -> None:
        """smartphone-service.md 15.2 C3-C11: DELETE of an old instance, INSTALL, keys,
        certificates, SET STATUS 0F, both PINs registered."""
        if self.state is not ABSENT:
            assert self._tsm() and self.host.w(DELETE)[1] == "9000"
        done = personalise(self.se, host=self.host, level=level)
        self.state = 0x0F
        self.keys = {0x0017: done.auth_public, 0x001A: done.sign_public}
        self.certificates = {"auth", "sign", "auth_ca", "sign_ca"}
        self.pins = {"auth": 3, "sign": 5}

    @initialize(start=st.sampled_from(["issued", "factory"]))
    def start(self, start: str) -> None:
        """As the phone leaves the factory, or after the issuance (so that lock, unlock,
        signing and DELETE are reached in short sequences)."""
        if start == "issued":
            self._issue()

    # -- the TSM: content management over SCP03 ---------------------------------------------

    # hypothesis draws the first entries most often: the lock cycle comes first
    @rule(op=st.sampled_from(["lock, sign, unlock", "lock", "unlock", "card unlock", "delete",
                              "state 1F", "install 0C", "state 0F", "card lock", "state 07",
                              "state 8F", "state 03", "install 04", "make selectable"]))
    def manage(self, op: str) -> None:
        """SET STATUS P1 40 (5.8), DELETE (5.6), INSTALL (5.3) of the JPKI instance in a
        level-33 session to the SSD; SET STATUS P1 80 of the card through the ISD."""
        if op.startswith("card"):
            self._tsm("isd")
            lock = op == "card lock"
            sw = self.host.w("80F0807F" if lock else "80F0800F")[1]
            assert sw == ("9000" if lock != self.card_locked else "6985")  # 3: 0F <-> 7F
            self.card_locked = lock
            return
        if not self._tsm():
            return
        if op.startswith("install"):
            sw = self.host.w(INSTALL if op == "install 0C" else INSTALL_ONLY)[1]
            if self.state is not ABSENT:
                assert sw == "6985"
                return
            assert sw == "9000"
            self.state = 0x07 if op == "install 0C" else 0x03
            self._fresh_instance()
            return
        if op == "delete":
            sw = self.host.w(DELETE)[1]
            assert sw == ("6A88" if self.state is ABSENT else "9000")
            self.state = ABSENT
            self._fresh_instance()
            return
        if op == "make selectable":
            sw = self.host.w(MAKE_SELECTABLE)[1]
            if self.state is ABSENT:
                assert sw == "6A88"
            elif self.state == 0x03:
                assert sw == "9000"
                self.state = 0x07
            else:
                assert sw == "6985"
            return
        if op == "lock, sign, unlock":
            # 15.4 S3 then 15.5 R3: the app has the applet selected on a channel of its own
            # while the TSM locks it on the basic channel; then a signing try on that channel
            if len(self.channels) == 1:
                self._open_channel()
            ch = max(self.channels)
            self.host.send(select(JPKI, channel=ch))
            assert self._tsm()
            self._set_status(0x80)
            self._sign(ch)
            assert self._tsm()
            self._set_status(0x00)
            return
        self._set_status({"lock": 0x80, "unlock": 0x00}[op] if "lock" in op
                         else int(op[-2:], 16))

    def _open_channel(self) -> None:
        answer = self.host.send("0070000001")  # MANAGE CHANNEL open from the basic channel
        free = [n for n in (1, 2, 3) if n not in self.channels]
        if not free:
            assert sw_of(answer) == "6A81"
            return
        assert answer == bytes([free[0]]) + b"\x90\x00"
        self.channels.add(free[0])

    def _set_status(self, p2: int) -> None:
        sw = self.host.w(apdu(f"80F040{p2:02X}", JPKI))[1]
        if self.state is ABSENT:
            assert sw == "6A88"
            return
        want, new = expected_set_status(self.state, p2)
        event(f"SET STATUS {self.state:02X} --{p2:02X}-> {want}")
        assert sw == want, (hex(self.state), hex(p2))
        self.state = new

    @precondition(lambda self: self.state is ABSENT or 0x0017 not in self.keys)
    @rule(level=st.sampled_from([0x33, 0x03]))
    def reissue(self, level: int) -> None:
        """A new issuance (15.6 model change, 15.2 C3): whatever was there is replaced
        (at level 33, or 03 whose answers carry the public keys in clear). Only from a state
        without an auth key, or it would crowd out everything else."""
        if self.card_locked:
            return
        self._issue(level)

    @rule(which=st.sampled_from(["auth", "sign", "both"]), clear_auth_pin=st.booleans())
    def personalise(self, which: str, clear_auth_pin: bool) -> None:
        """INSTALL [for personalization], key generation, certificates, last block."""
        if not self._tsm():
            return
        sw = self.host.w(PERSO)[1]
        if self.state is ABSENT:
            assert sw == "6A88"
            return
        if self.state & 0x80:
            assert sw == "6985"
            return
        assert sw == "9000"
        self.host.perso_block = 0
        new: dict[int, bytes] = {}
        stream = b""
        for name, fid, gen, more, ef in (("auth", 0x0017, 0xA017, 0xA117, 0x000A),
                                         ("sign", 0x001A, 0xA01A, 0xA11A, 0x0001)):
            if which in (name, "both"):
                der, _ = read_public_key(self.host, gen, more)
                new[fid] = der
                self.certificates.add(name)
                stream += dgi(ef, certificate_for(der, name))
        if clear_auth_pin:
            stream += dgi(0xA0F0, b"\x00\x18")
        store_blocks(self.host, stream, first_block=self.host.perso_block)
        self.keys.update(new)
        if clear_auth_pin:
            self.pins["auth"] = None

    # -- the phone app and readers, on any open channel --------------------------------------

    @rule(op=st.sampled_from(["sign", "sign", "select", "set auth PIN", "set sign password",
                              "wrong PIN"]), data=st.data())
    def use(self, op: str, data: st.DataObject) -> None:
        ch = data.draw(st.sampled_from(sorted(self.channels)), label="channel")
        if op == "sign":
            self._sign(ch)
            return
        cla = f"{ch:02X}"
        selected = sw_of(self.host.send(select(JPKI, channel=ch)))
        assert selected == ("9000" if self.selectable else "6A82")
        if selected != "9000":
            return
        if op in ("set auth PIN", "set sign password"):  # 15.2 C11: once while not set
            name, p2, value = (("auth", "98", AUTH_PIN) if op == "set auth PIN"
                               else ("sign", "9B", "ABC123"))
            sw = sw_of(self.host.send(cla + set_pin(p2, value)[2:]))
            assert sw == ("9000" if self.pins[name] is None else "6985")
            if self.pins[name] is None:
                self.pins[name] = 3 if name == "auth" else 5
        elif op == "wrong PIN":
            sw = sw_of(self.host.send(cla + verify("0000", "98")[2:]))
            tries = self.pins["auth"]
            if tries is None:
                assert sw == "6985"
            elif tries == 0:
                assert sw == "6984"
            else:
                self.pins["auth"] = tries - 1
                assert sw == f"63C{tries - 1:X}"

    def _sign(self, ch: int) -> None:
        """15.3: SELECT, VERIFY 0018, 80 2A with key 0017 by SFI (jpki-card.md 4.5). It signs
        only when everything holds, and the signature verifies with the public key the SE
        answered when it generated the key (before any lock and unlock); a locked or
        unselectable applet never signs, whatever reaches it."""
        cla = f"{ch:02X}"
        sign_cmd = f"{0x80 | ch:02X}" + apdu("2A0097", SIGN_INPUT.hex(), "00")
        selected = sw_of(self.host.send(select(JPKI, channel=ch)))
        assert selected == ("9000" if self.selectable else "6A82")
        if selected != "9000":
            assert sw_of(self.host.send(cla + verify(AUTH_PIN, "98")[2:])) != "9000"
            assert sw_of(self.host.send(sign_cmd)) != "9000"
            event("sign: applet not selectable" + (
                " (locked)" if self.state is not None and self.state & 0x80 else ""))
            return
        tries = self.pins["auth"]
        sw = sw_of(self.host.send(cla + verify(AUTH_PIN, "98")[2:]))
        ok_pin = tries is not None and tries > 0
        assert sw == ("9000" if ok_pin else "6985" if tries is None else "6984")
        if ok_pin:
            self.pins["auth"] = 3
        answer = self.host.send(sign_cmd)
        if ok_pin and 0x0017 in self.keys:
            assert sw_of(answer) == "9000"
            event("sign: signed")
            load_der_public_key(self.keys[0x0017]).verify(  # type: ignore[union-attr]
                answer[:-2], SIGN_INPUT[-32:], padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            assert sw_of(answer) != "9000"

    @rule(op=st.sampled_from(["open", "open", "close", "reset"]), data=st.data())
    def channels(self, op: str, data: st.DataObject) -> None:
        """MANAGE CHANNEL (OMAPI: channels 1-3) and the reset that closes them all."""
        if op == "reset":
            self.se.reset()
            self.channels = {0}
        elif op == "open":
            self._open_channel()
        elif len(self.channels) > 1:
            ch = data.draw(st.sampled_from(sorted(self.channels - {0})), label="close")
            assert self.host.send(f"007080{ch:02X}") == b"\x90\x00"
            self.channels.discard(ch)
            assert sw_of(self.host.send(select(JPKI, channel=ch))) == "6881"

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def registry_matches_the_model(self) -> None:
        entry = next((e for e in self.se.registry if e.aid == JPKI_AID), None)
        assert (None if entry is None else entry.life_cycle) == self.state
        assert self.se.card_state == (0x7F if self.card_locked else 0x0F)

    @invariant()
    def keys_are_the_ones_answered(self) -> None:
        for fid in (0x0017, 0x001A):
            if fid in self.keys:
                held = self.se.hazmat_private_key(JPKI_AID, fid).public_key()
                assert held.public_bytes(Encoding.DER, PublicFormat.PKCS1) == self.keys[fid]
            elif self.state is not ABSENT:
                try:
                    self.se.hazmat_private_key(JPKI_AID, fid)
                except Exception:  # noqa: BLE001 - no key: as expected
                    continue
                raise AssertionError(f"a key at {fid:04X} the model does not know")
        assert set(self.se.certificates()) == self.certificates
        if self.state is ABSENT:
            assert self.se.jpki is None

    @invariant()
    def no_answer_contains_private_key_bytes(self) -> None:
        windows = pool_windows()
        for answer in self.host.answers[self.answers_checked:]:
            assert not any(answer[i:i + 16] in windows for i in range(len(answer) - 15))
        self.answers_checked = len(self.host.answers)


SecureElementMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestSecureElementMachine = SecureElementMachine.TestCase

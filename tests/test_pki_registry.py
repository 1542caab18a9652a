"""The revocation registry and the persistent authority store (issue 3 items 1, 2).

Rules under test: the state machine of smartphone-service.md 15.8 (hold = 一時利用停止 9.1,
release = 解除 9.2, revocation is final, sections 8 and 10), history-aware status for OCSP and
CRLs (11.3), and durability: a change is one SQLite transaction, so a process killed in the
middle leaves no half-written revocation. Time comes from a FixedClock; nothing sleeps.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from workbench.lifecycle import issue_card
from workbench.pki import Authority, AuthorityProfile, FixedClock, synthetic_holder
from workbench.pki.crl import LoadedCrl, crl_for, publication_time
from workbench.pki.registry import Registry, RegistryAction, RegistryError
from workbench.pki.status import CertState, RevocationReason
from workbench.pki.store import AuthorityStore, StoreError

ROOT = Path(__file__).parents[1]
SEED = b"tests"  # same as tests/conftest.py: the CA keys are derived once per process
T0 = datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
ISSUED = T0 - timedelta(days=1)
SECOND = timedelta(seconds=1)
EE_KEY = rsa.generate_private_key(65537, 2048)  # one key for every test certificate
HOLDER = synthetic_holder(1)
OTHER_HOLDER = synthetic_holder(4)

_AUTHORITY = Authority(seed=SEED, clock=FixedClock(T0))


def _issue(serial: int, *, holder=HOLDER, generation: int | None = None,
           at: datetime = ISSUED) -> x509.Certificate:
    return _AUTHORITY.issue_auth_certificate(holder, EE_KEY.public_key(), at=at, serial=serial,
                                             generation=generation)


CERTS = {serial: _issue(serial) for serial in (0x1001, 0x1002, 0x1003, 0x1004)}
OTHER = {serial: _issue(serial, holder=OTHER_HOLDER) for serial in (0x2001, 0x2002)}
IKID = _AUTHORITY.ca("auth", 3).key_identifier


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def registry(clock: FixedClock) -> Registry:
    reg = Registry(None, clock)
    for cert in CERTS.values():
        reg.register(cert, partition=HOLDER.municipality_code, token="icc")
    yield reg
    reg.close()


def _state(reg: Registry, serial: int, at: datetime | None = None) -> CertState:
    return reg.status(IKID, serial, at).state


# --- the state machine (smartphone-service.md 8, 9, 15.8) ------------------------------------

def test_revoked_at_t_is_good_just_before_and_revoked_after(registry, clock) -> None:
    """status() is history-aware: OCSP answers for any moment (11.3)."""
    t = clock.advance(timedelta(hours=3))
    event = registry.revoke(0x1001, RevocationReason.KEY_COMPROMISE)
    assert event.at == t and event.action is RegistryAction.REVOKE
    assert _state(registry, 0x1001, t - SECOND) is CertState.GOOD
    status = registry.status(IKID, 0x1001, t)
    assert status.state is CertState.REVOKED and status.since == t
    assert status.reason is RevocationReason.KEY_COMPROMISE
    assert _state(registry, 0x1001, t + SECOND) is CertState.REVOKED
    clock.advance(timedelta(days=400))
    assert _state(registry, 0x1001) is CertState.REVOKED


def test_hold_then_release_returns_to_good(registry, clock) -> None:
    """一時利用停止 (9.1) then 解除 (9.2, 15.5 R2): held in between, good again after."""
    held_at = clock.advance(timedelta(hours=1))
    registry.hold(0x1002)
    status = registry.status(IKID, 0x1002)
    assert status.state is CertState.HELD
    assert status.reason is RevocationReason.CERTIFICATE_HOLD and status.since == held_at
    released_at = clock.advance(timedelta(hours=5))
    registry.release(0x1002)
    assert registry.status(IKID, 0x1002).is_good
    assert _state(registry, 0x1002, released_at - SECOND) is CertState.HELD
    assert _state(registry, 0x1002, held_at - SECOND) is CertState.GOOD
    assert [e.action for e in registry.history(0x1002)] == [
        RegistryAction.ISSUE, RegistryAction.HOLD, RegistryAction.RELEASE]


def test_a_held_certificate_can_be_revoked(registry, clock) -> None:
    """Hotline revoke instead of hold when the phone is not found (15.8: keyCompromise)."""
    registry.hold(0x1003)
    clock.advance(timedelta(days=2))
    registry.revoke(0x1003, RevocationReason.KEY_COMPROMISE)
    assert _state(registry, 0x1003) is CertState.REVOKED


@pytest.mark.parametrize("action", ["revoke", "hold", "release"])
def test_a_revoked_certificate_never_comes_back(registry, action) -> None:
    registry.revoke(0x1001, RevocationReason.CESSATION_OF_OPERATION)
    with pytest.raises(RegistryError) as info:
        getattr(registry, action)(0x1001)
    message = str(info.value)
    assert "\n" not in message and "0x1001" in message and "revoked" in message
    assert _state(registry, 0x1001) is CertState.REVOKED
    assert len(registry.history(0x1001)) == 2


def test_refused_steps_say_why(registry) -> None:
    with pytest.raises(RegistryError, match="not on hold"):
        registry.release(0x1001)
    registry.hold(0x1001)
    with pytest.raises(RegistryError, match="already on hold"):
        registry.hold(0x1001)
    with pytest.raises(RegistryError, match="never registered"):
        registry.revoke(0x9999)
    with pytest.raises(RegistryError, match="use hold"):
        registry.revoke(0x1002, RevocationReason.CERTIFICATE_HOLD)
    with pytest.raises(RegistryError, match="delta CRLs"):
        registry.revoke(0x1002, RevocationReason.REMOVE_FROM_CRL)
    with pytest.raises(RegistryError, match="unknown revocation reason"):
        registry.revoke(0x1002, "sideways")  # type: ignore[arg-type]


def test_reason_names_are_accepted_as_text(registry) -> None:
    registry.revoke(0x1002, "affiliation-changed")  # type: ignore[arg-type]
    assert registry.status(IKID, 0x1002).reason is RevocationReason.AFFILIATION_CHANGED


def test_events_are_recorded_in_time_order(registry, clock) -> None:
    """A change may be backdated, but not before the certificate's last recorded event."""
    registry.hold(0x1001, at=T0)
    with pytest.raises(RegistryError, match="time order"):
        registry.release(0x1001, at=T0 - timedelta(minutes=1))
    with pytest.raises(RegistryError, match="time order"):
        registry.revoke(0x1002, at=ISSUED - SECOND)  # before its issuance
    registry.revoke(0x1002, at=T0 - timedelta(hours=2))  # backdated but after issuance: fine
    assert _state(registry, 0x1002, T0 - timedelta(hours=2)) is CertState.REVOKED


def test_unknown_serials_and_moments_before_issuance(registry) -> None:
    """UNKNOWN: never registered, or asked about a moment before the certificate existed."""
    assert _state(registry, 0x7777) is CertState.UNKNOWN
    assert _state(registry, 0x1001, ISSUED - SECOND) is CertState.UNKNOWN
    assert _state(registry, 0x1001, ISSUED) is CertState.GOOD
    other_issuer = _AUTHORITY.ca("auth", 2).key_identifier
    assert registry.status(other_issuer, 0x1001).state is CertState.UNKNOWN


def test_expiry_is_a_separate_matter(registry, clock) -> None:
    """After Not After the registry keeps its answer (good stays good, revoked stays revoked);
    validity is checked by path validation, not by the registry (RFC 5280 6.1.3)."""
    registry.revoke(0x1001, RevocationReason.SUPERSEDED)
    not_after = CERTS[0x1001].not_valid_after_utc
    later = not_after + timedelta(days=30)
    assert _state(registry, 0x1001, later) is CertState.REVOKED
    assert _state(registry, 0x1002, later) is CertState.GOOD


def test_serial_ambiguous_across_issuers_needs_the_issuer(clock) -> None:
    """Generations share one DN (jpki-card.md 9.2): the same serial may exist under two keys."""
    reg = Registry(None, clock)
    gen2 = _issue(0x5005, generation=2, at=datetime(2023, 8, 1, tzinfo=UTC))
    gen3 = _issue(0x5005)
    reg.register(gen2)
    reg.register(gen3)
    with pytest.raises(RegistryError, match="issuer_key_id") as info:
        reg.revoke(0x5005)
    assert "2 issuing CAs" in str(info.value)
    gen2_id = _AUTHORITY.ca("auth", 2).key_identifier
    reg.revoke(0x5005, RevocationReason.CA_COMPROMISE, issuer_key_id=gen2_id)
    assert reg.status(gen2_id, 0x5005).state is CertState.REVOKED
    assert reg.status(IKID, 0x5005).state is CertState.GOOD
    assert len(reg.history(0x5005, gen2_id)) == 2


def test_registration_records_the_certificate_facts(registry) -> None:
    (rec,) = registry.certificates(serial=0x1001)
    assert rec.issuer_key_id == IKID and rec.kind == "auth" and rec.hierarchy == "auth"
    assert rec.partition == HOLDER.municipality_code and rec.token == "icc"
    assert rec.not_before == ISSUED and rec.not_after == CERTS[0x1001].not_valid_after_utc
    assert rec.subject.startswith("C=JP, CN=")
    registry.register(CERTS[0x1001])  # the same certificate again: nothing changes
    assert len(registry.history(0x1001)) == 1
    clash = _AUTHORITY.issue_auth_certificate(OTHER_HOLDER, EE_KEY.public_key(), at=ISSUED,
                                              serial=0x1001)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(clash)


def test_a_self_issued_ca_certificate_is_its_own_issuer(registry) -> None:
    """CA certificates carry no AKI (9.2); their SKI names the key that would revoke them."""
    ca = _AUTHORITY.ca("auth", 3).certificate
    registry.register(ca)
    assert registry.status(IKID, ca.serial_number).is_good
    assert registry.certificates(kind="ca")[0].issuer_key_id == IKID


def test_history_is_append_only_in_the_database(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register(CERTS[0x1001])
        reg.revoke(0x1001)
    conn = sqlite3.connect(path)
    for statement in ("DELETE FROM events", "UPDATE events SET action = 'issue'"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
    conn.close()


def test_changes_survive_a_restart(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register(CERTS[0x1001])
        reg.hold(0x1001)
    with Registry(path, clock) as reg:
        assert _state(reg, 0x1001) is CertState.HELD
        assert reg.check_integrity() == []


def test_bulk_revocation_is_all_or_nothing(clock) -> None:
    reg = Registry(None, clock)
    reg.register_serials(IKID, range(1, 101), not_before=ISSUED, not_after=T0 + timedelta(days=9))
    reg.revoke(50)
    with pytest.raises(RegistryError, match="already revoked"):
        reg.revoke_many(range(1, 101), RevocationReason.CA_COMPROMISE)
    assert [_state(reg, s) for s in (1, 49, 51, 100)] == [CertState.GOOD] * 4
    assert reg.revoke_many([s for s in range(1, 101) if s != 50],
                           RevocationReason.CA_COMPROMISE) == 99
    assert len(reg.entries_for_crl(IKID, clock.now())) == 100
    assert reg.check_integrity() == []


def test_entries_for_crl_follow_the_moment_and_the_partition(registry, clock) -> None:
    registry.register(OTHER[0x2001], partition=OTHER_HOLDER.municipality_code)
    t1 = clock.advance(timedelta(hours=1))
    registry.revoke(0x1001, RevocationReason.KEY_COMPROMISE)
    registry.hold(0x2001)
    t2 = clock.advance(timedelta(hours=1))
    registry.hold(0x1002)
    t3 = clock.advance(timedelta(hours=1))
    registry.release(0x1002)
    assert registry.entries_for_crl(IKID, t1 - SECOND) == []
    assert [e.serial for e in registry.entries_for_crl(IKID, t1)] == [0x1001, 0x2001]
    at_t2 = registry.entries_for_crl(IKID, t2)
    assert [(e.serial, e.reason) for e in at_t2] == [
        (0x1001, RevocationReason.KEY_COMPROMISE), (0x1002, RevocationReason.CERTIFICATE_HOLD),
        (0x2001, RevocationReason.CERTIFICATE_HOLD)]
    assert at_t2[1].since == t2
    # a released hold is simply gone (removeFromCRL would only appear in a delta CRL)
    assert [e.serial for e in registry.entries_for_crl(IKID, t3)] == [0x1001, 0x2001]
    assert [e.serial for e in registry.entries_for_crl(IKID, t3, HOLDER.municipality_code)] == [
        0x1001]


# --- killed processes (durability) -----------------------------------------------------------

_CHILD = textwrap.dedent("""
    import os, sys
    from datetime import datetime
    from workbench import hooks
    from workbench.pki import registry as r
    from workbench.pki.clock import FixedClock
    from workbench.pki.status import RevocationReason

    path, now, action, point, serials = sys.argv[1:6]
    reg = r.Registry(path, FixedClock(datetime.fromisoformat(now)))

    def hook(name):
        if name != "registry:" + point:
            return
        if action == "exit":
            os._exit(17)  # dies between two statements of the open transaction
        print("reached", name, flush=True)
        sys.stdin.readline()  # wait here, inside the transaction, to be SIGKILLed

    hooks.install("*", hook)
    numbers = [int(s) for s in serials.split(",")] if "," in serials else [int(serials)]
    if len(numbers) == 1:
        getattr(reg, action if action != "exit" else "revoke")(numbers[0])
    else:
        reg.revoke_many(range(numbers[0], numbers[1]), RevocationReason.CA_COMPROMISE)
    print("committed", flush=True)
    sys.stdin.readline()
""")


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("point", ["revoke:event-recorded", "revoke:state-updated"])
def test_a_process_dying_mid_revocation_leaves_no_half_revocation(tmp_path, clock, point) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register(CERTS[0x1001])
    proc = _child(str(path), T0.isoformat(), "exit", point, str(0x1001))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 17, err
    with Registry(path, clock) as reg:
        assert _state(reg, 0x1001) is CertState.GOOD
        assert [e.action for e in reg.history(0x1001)] == [RegistryAction.ISSUE]
        assert reg.check_integrity() == []
        reg.revoke(0x1001)  # and the registry is fully usable
        assert _state(reg, 0x1001) is CertState.REVOKED


def _sigkill_at(path: Path, point: str, serials: str) -> None:
    proc = _child(str(path), T0.isoformat(), "revoke", point, serials)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.split()[0] in ("reached", "committed"), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_sigkill_during_a_bulk_revocation_revokes_nothing(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register_serials(IKID, range(1, 20001), not_before=ISSUED,
                             not_after=T0 + timedelta(days=9))
    _sigkill_at(path, "revoke_many:events-recorded", "1,20001")
    with Registry(path, clock) as reg:
        assert reg.entries_for_crl(IKID, clock.now()) == []
        assert reg.check_integrity() == []
        assert reg.revoke_many(range(1, 20001), RevocationReason.CA_COMPROMISE) == 20000


def test_a_committed_revocation_survives_sigkill(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register_serials(IKID, range(1, 2001), not_before=ISSUED,
                             not_after=T0 + timedelta(days=9))
    _sigkill_at(path, "never", "1,2001")  # killed right after COMMIT returned
    with Registry(path, clock) as reg:
        assert len(reg.entries_for_crl(IKID, clock.now())) == 2000
        assert reg.check_integrity() == []


# --- files that are not ours -----------------------------------------------------------------

def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    garbage = b"this is not a database\x00" * 50
    path.write_bytes(garbage)
    for opener in (lambda: Registry(path, clock), lambda: AuthorityStore.open(path),
                   lambda: AuthorityStore.open(path, create=True)):
        with pytest.raises((RegistryError, StoreError)) as info:
            opener()
        assert "\n" not in str(info.value) and "untouched" in str(info.value)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]


def test_another_applications_database_is_refused_and_left_untouched(tmp_path, clock) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="another application"):
        Registry(path, clock)
    with pytest.raises(StoreError, match="not a jpki-workbench authority"):
        AuthorityStore.open(path, create=True)
    assert path.read_bytes() == before


def test_a_damaged_database_page_is_a_one_line_error(tmp_path, clock) -> None:
    path = tmp_path / "r.db"
    with Registry(path, clock) as reg:
        reg.register(CERTS[0x1001])
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page after the header
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryError) as info:
        Registry(path, clock)
    assert "\n" not in str(info.value)


def test_a_missing_store_is_not_created_without_create(tmp_path) -> None:
    path = tmp_path / "nothing.db"
    with pytest.raises(StoreError, match="no authority database"):
        AuthorityStore.open(path)
    assert not path.exists()


# --- the persistent authority ---------------------------------------------------------------

def test_the_store_keeps_identity_settings_and_registry_across_restarts(tmp_path, clock) -> None:
    path = tmp_path / "authority.db"
    profile = AuthorityProfile(repository_url="http://127.0.0.1:8765/", ocsp_aia=True,
                               crl_interval=timedelta(hours=6))
    with AuthorityStore.open(path, create=True, profile=profile, clock=clock) as store:
        assert store.registry.clock is store.authority.clock is clock
        ca_der = store.ca("sign", 3).certificate.public_bytes(Encoding.DER)
        card = issue_card(store, "gpse", seed=11, issued_at=T0)
    serials = {k: int(v, 16) for k, v in card.meta["certificate_serials"].items()}
    with AuthorityStore.open(path, clock=clock) as store:
        assert store.authority.profile == profile
        assert store.authority.profile.repository_url == "http://127.0.0.1:8765"
        assert store.authority.ca("sign", 3).certificate.public_bytes(Encoding.DER) == ca_der
        recs = {c.kind: c for c in store.registry.certificates()
                if c.serial in serials.values()}
        assert set(recs) == {"sign", "auth"}
        assert {r.partition for r in recs.values()} == {card.holder.municipality_code}
        assert {r.token for r in recs.values()} == {"gpse"}
        assert len(store.registry.certificates(kind="ca")) == 2
        store.registry.hold(serials["auth"])
    with AuthorityStore.open(path, clock=clock) as store:
        auth_ca = store.authority.current_ca("auth", T0)
        assert store.registry.status(auth_ca.key_identifier, serials["auth"]).state is (
            CertState.HELD)


def test_reopening_with_other_settings_is_refused(tmp_path, clock) -> None:
    path = tmp_path / "authority.db"
    AuthorityStore.open(path, create=True, seed=b"one", clock=clock).close()
    with pytest.raises(StoreError, match="different seed"):
        AuthorityStore.open(path, create=True, seed=b"two")
    with pytest.raises(StoreError, match="different profile"):
        AuthorityStore.open(path, profile=AuthorityProfile(crl_interval=timedelta(hours=1)))


def test_issue_card_refuses_another_authority(tmp_path, clock) -> None:
    with AuthorityStore.open(tmp_path / "a.db", create=True, seed=SEED, clock=clock) as store:
        with pytest.raises(StoreError, match="stored authority"):
            issue_card(store, "gpse", authority=_AUTHORITY)


# --- property: the rules hold for any sequence of events -----------------------------------

_PROP_CERTS = {**CERTS, **OTHER}
_REASONS = [r for r in RevocationReason
            if r not in (RevocationReason.CERTIFICATE_HOLD, RevocationReason.REMOVE_FROM_CRL)]


class RegistryMachine(RuleBasedStateMachine):
    """Random revoke/hold/release/publish sequences with a moving clock.

    Checks: a revoked certificate never comes back; history only grows; status agrees with the
    model at every step and, for every published CRL, with the CRL's entries at its thisUpdate
    (smartphone-service.md 11.3: the CRL shows what was known at publication time).
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(T0)
        self.reg = Registry(None, self.clock)
        for cert in CERTS.values():
            self.reg.register(cert, partition=HOLDER.municipality_code)
        for cert in OTHER.values():
            self.reg.register(cert, partition=OTHER_HOLDER.municipality_code)
        self.model: dict[int, tuple[str, datetime | None]] = {
            s: ("good", None) for s in _PROP_CERTS}
        self.histories = {s: self.reg.history(s) for s in _PROP_CERTS}
        self.published: dict[tuple[str | None, datetime], bytes] = {}

    def teardown(self) -> None:
        self.reg.close()

    @rule(seconds=st.integers(0, 3 * 86400))
    def advance(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @rule(serial=st.sampled_from(sorted(_PROP_CERTS)), reason=st.sampled_from(_REASONS))
    def revoke(self, serial: int, reason: RevocationReason) -> None:
        if self.model[serial][0] == "revoked":
            with pytest.raises(RegistryError):
                self.reg.revoke(serial, reason)
        else:
            self.reg.revoke(serial, reason)
            self.model[serial] = ("revoked", self.clock.now())

    @rule(serial=st.sampled_from(sorted(_PROP_CERTS)))
    def hold(self, serial: int) -> None:
        if self.model[serial][0] != "good":
            with pytest.raises(RegistryError):
                self.reg.hold(serial)
        else:
            self.reg.hold(serial)
            self.model[serial] = ("held", self.clock.now())

    @rule(serial=st.sampled_from(sorted(_PROP_CERTS)))
    def release(self, serial: int) -> None:
        if self.model[serial][0] != "held":
            with pytest.raises(RegistryError):
                self.reg.release(serial)
        else:
            self.reg.release(serial)
            self.model[serial] = ("good", None)

    @rule(partition=st.sampled_from([None, HOLDER.municipality_code,
                                     OTHER_HOLDER.municipality_code]))
    def publish(self, partition: str | None) -> None:
        now = self.clock.now()
        # the shared module authority has its own clock: give the moment explicitly
        der = crl_for(_AUTHORITY, "auth", 3, partition, now, registry=self.reg)
        this_update = publication_time(now, _AUTHORITY.profile.crl_interval)
        key = (partition, this_update)
        if key in self.published:
            assert self.published[key] == der  # the same publication, the same bytes
        self.published[key] = der
        loaded = LoadedCrl.from_der(der)
        assert loaded.this_update == this_update
        scope = [s for s, c in _PROP_CERTS.items()
                 if partition is None or (c in CERTS.values()) == (partition == HOLDER.municipality_code)]
        expected = {}
        for serial in scope:
            status = self.reg.status(IKID, serial, this_update - SECOND)
            if status.state in (CertState.REVOKED, CertState.HELD):
                expected[serial] = (status.reason, status.since)
        assert {s: loaded.is_revoked(s) for s in loaded.serials()} == expected

    @invariant()
    def status_matches_the_model(self) -> None:
        for serial, (state, since) in self.model.items():
            status = self.reg.status(IKID, serial)
            assert status.state.value == state
            if state == "revoked":
                assert since is not None
                assert self.reg.status(IKID, serial, since).state is CertState.REVOKED
                assert self.reg.status(IKID, serial, since - SECOND).state is not (
                    CertState.REVOKED)

    @invariant()
    def history_only_grows(self) -> None:
        for serial, before in self.histories.items():
            now = self.reg.history(serial)
            assert now[:len(before)] == before
            actions = [e.action for e in now]
            assert actions[0] is RegistryAction.ISSUE
            if RegistryAction.REVOKE in actions:
                assert actions[-1] is RegistryAction.REVOKE
                assert actions.count(RegistryAction.REVOKE) == 1
            self.histories[serial] = now


RegistryMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_registry_rules_hold_for_any_sequence = RegistryMachine.TestCase

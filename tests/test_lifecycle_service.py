"""The service side of the smartphone certificate service: the application API's rules and
refusals, its state in the authority's SQLite file, the hotline, and the same API over real
HTTP from a separate ``pki serve`` process giving the same results as in process."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port
from workbench.errors import PinFormatError
from workbench.lifecycle import (
    AppError,
    Event,
    IneligibleDeviceError,
    PairState,
    ServiceAuthority,
    ServiceError,
    Simulation,
    SimulationError,
    StateError,
    next_state,
)
from workbench.lifecycle.wire import http_handler
from workbench.pki import RevocationReason
from workbench.pki.clock import FileClock


@pytest.fixture
def sim():
    with Simulation() as s:
        yield s


def _issued(sim: Simulation, person: str = "hanako", phone: str = "phone", model: str = "Pixel 7"):
    p = sim.people.get(person) or sim.add_person(person)
    ph = sim.add_phone(phone, p, model)
    ph.app.apply(p)
    sim.advance(timedelta(minutes=3))
    ph.app.register()
    return p, ph


def test_issuance_makes_an_active_pair_with_both_certificates_good(sim: Simulation) -> None:
    person, phone = _issued(sim)
    pair = sim.authority.live_pair(person.pid)
    assert pair is not None and pair.state is PairState.ACTIVE and pair.se_id == phone.se_id
    states = sim.certificate_states()
    assert set(states[states["token"] == "phone"]["state"]) == {"good"}
    # Not After follows the card's certificates (spec 6)
    certs = phone.se.certificates()
    card = person.card.certificates()
    assert certs["sign"].not_valid_after_utc == card["sign"].not_valid_after_utc
    assert certs["auth"].not_valid_after_utc == card["auth"].not_valid_after_utc
    # new key pairs, not the card's
    assert certs["auth"].public_key().public_numbers() != card["auth"].public_key().public_numbers()
    history = [h["event"] for h in sim.authority.history(pair.pair_id)]
    assert history == ["apply", "issued", "registered"]


def test_the_api_refuses_with_one_line_reasons(sim: Simulation) -> None:
    auth = sim.authority
    assert auth.handle("GET", "/v1/nothing", {})[0] == 404
    assert auth.handle("POST", "/elsewhere", {})[0] == 404
    status, answer = auth.handle("POST", "/v1/applications/challenge", {"purpose": "party"})
    assert status == 400 and "unknown purpose" in answer["error"]
    status, answer = auth.handle("POST", "/v1/applications", {"application_id": "x"})
    assert status == 400 and "missing field" in answer["error"]
    status, answer = auth.handle("POST", "/v1/applications", [])  # type: ignore[arg-type]
    assert status == 400 and "JSON object" in answer["error"]
    status, answer = auth.handle("POST", "/v1/tsm/tsm-nope/exchange", {"response": "9000"})
    assert status == 404 and "--workers 1" in answer["error"]
    status, answer = auth.handle("GET", "/v1/applications/app-nope", {})
    assert status == 404
    # the right path with the wrong method says which method; an unknown SE is not "no jobs"
    status, answer = auth.handle("GET", "/v1/applications/challenge", {})
    assert status == 405 and "use POST" in answer["error"]
    status, answer = auth.handle("GET", "/v1/tsm", {})
    assert status == 405 and "use POST" in answer["error"]
    status, answer = auth.handle("GET", "/v1/phones/XYZ/jobs", {})
    assert status == 404 and "unknown secure element" in answer["error"]
    status, answer = auth.handle("POST", "/v1/applications", {
        "application_id": "a", "requested_types": ["sign"], "app_version": 60, "se_id": "x"})
    assert status == 400 and "auth certificate is always part" in answer["error"]


def _application(sim: Simulation, phone, **changes):  # noqa: ANN001
    """A well-formed application body for ``phone`` signed by its owner's card."""
    from workbench.client import JpkiClient
    from workbench.lifecycle.actors import NfcLink
    from workbench.lifecycle.authority import tbs_application

    ch = sim.authority.challenge("issue")
    types = ("sign", "auth")
    tbs = tbs_application(ch["application_id"], bytes.fromhex(ch["nonce"]), phone.se_id, types,
                          changes.get("app_version", 60))
    link = NfcLink(sim.wire, phone.owner.card, "card")
    link.connect()
    client = JpkiClient(link)
    cert = client.read_certificate_der("sign", pin=phone.owner.card_password.reveal())
    signature = client.sign(digest=hashlib.sha256(tbs).digest(), key="sign")
    body = {"application_id": ch["application_id"], "requested_types": list(types),
            "card_sign_cert": base64.b64encode(cert).decode(),
            "signature": base64.b64encode(signature).decode(), "se_id": phone.se_id,
            "device_model": "Pixel 7", "app_version": 60}
    body.update(changes)
    return body


def test_application_rules(sim: Simulation) -> None:
    person = sim.add_person("hanako")
    phone = sim.add_phone("phone", person)
    auth = sim.authority
    status, answer = auth.handle("POST", "/v1/applications", _application(sim, phone,
                                                                          app_version=53))
    assert status == 403 and "54 or later" in answer["error"]
    bad = _application(sim, phone)
    bad["signature"] = base64.b64encode(b"\x00" * 256).decode()
    status, answer = auth.handle("POST", "/v1/applications", bad)
    assert status == 403 and "does not verify" in answer["error"]
    unknown_se = _application(sim, phone, se_id="FFFF")
    assert auth.handle("POST", "/v1/applications", unknown_se)[1]["error"].startswith(
        "this phone's secure element is not one the TSM can reach")
    good = _application(sim, phone)
    status, answer = auth.handle("POST", "/v1/applications", good)
    assert status == 202 and answer["state"] == "APPLIED"
    status, answer = auth.handle("POST", "/v1/applications", good)  # replayed application
    assert status == 409 and "not a fresh issue challenge" in answer["error"]
    stale = _application(sim, phone)
    sim.advance(timedelta(minutes=11))
    status, answer = auth.handle("POST", "/v1/applications", stale)
    assert status == 410 and "expired" in answer["error"]


def test_a_revoked_card_signing_certificate_cannot_apply(sim: Simulation) -> None:
    person = sim.add_person("hanako")
    phone = sim.add_phone("phone", person)
    sim.store.registry.revoke(person.card.certificates()["sign"].serial_number,
                              RevocationReason.AFFILIATION_CHANGED)
    with pytest.raises(ServiceError, match="card's signing certificate is revoked"):
        phone.app.apply(person)


def test_the_app_refuses_before_the_card_is_read(sim: Simulation) -> None:
    person = sim.add_person("hanako")
    old_app = sim.add_phone("phone", person, app_version=50)
    with pytest.raises(IneligibleDeviceError, match="version 50 is too old"):
        old_app.app.apply(person)
    iphone = sim.add_phone("iphone", person, "iPhone 15")
    with pytest.raises(IneligibleDeviceError, match="Apple Wallet"):
        iphone.app.apply(person)
    ok = sim.add_phone("pixel", person)
    with pytest.raises(PinFormatError):
        ok.app.apply(person, phone_pin="12345")
    assert not any(r.get("channel") == "NFC" and r.get("device") == "hanako/card"
                   and r["type"] == "exchange" and r["command"].startswith("802A")
                   for r in sim.wire.records[:1])


def test_register_before_the_server_side_issuance_is_done(sim: Simulation) -> None:
    person = sim.add_person("hanako")
    phone = sim.add_phone("phone", person)
    phone.app.apply(person)
    with pytest.raises(AppError, match="not finished yet"):
        phone.app.register()
    sim.advance(timedelta(minutes=2))
    assert phone.app.register().ok


def test_only_the_newest_phone_is_valid(sim: Simulation) -> None:
    person, old = _issued(sim, phone="old")
    old.online = False
    _, new = _issued(sim, phone="new")
    pairs = sim.authority.pairs_of(person.pid)
    assert [p.state for p in pairs] == [PairState.REVOKED, PairState.ACTIVE]
    states = sim.certificate_states()
    assert set(states[states["token"] == "old"]["reason"]) == {"superseded"}
    assert sim.authority.jobs(old.se_id) == ["delete"]
    old.online = True
    assert old.app.sync() == ["delete"]
    assert old.se.certificates() == {}
    assert sim.authority.jobs(old.se_id) == []


def test_hotline_hours_and_the_queue(sim: Simulation) -> None:
    person, phone = _issued(sim)
    # Friday 2025-10-10 22:00 JST: closed under itmedia-2023 until Saturday 09:30
    sim.set_time(datetime(2025, 10, 10, 13, 0, tzinfo=UTC))
    call = sim.report_loss(person)
    assert call.acted_at == datetime(2025, 10, 11, 0, 30, tzinfo=UTC)
    assert sim.authority.live_pair(person.pid).state is PairState.ACTIVE
    sim.advance(timedelta(hours=12))
    pair = sim.authority.live_pair(person.pid)
    assert pair.state is PairState.ON_HOLD
    held = [h for h in sim.authority.history(pair.pair_id) if h["event"] == "hotline-hold"]
    assert held[0]["at"] == call.acted_at
    with pytest.raises(SimulationError, match="only moves forward"):
        sim.set_time(datetime(2025, 10, 1, tzinfo=UTC))


def test_release_reissues_the_signing_certificate(sim: Simulation) -> None:
    person, phone = _issued(sim)
    first_sign = phone.se.certificates()["sign"]
    first_auth = phone.se.certificates()["auth"]
    sim.report_loss(person)  # the phone is online: the lock is pushed at once
    with pytest.raises(Exception, match="6A82|not on this"):
        phone.app.login()
    result = phone.app.release(person)
    assert result.ok and any(j.startswith("reissue-sign") for j in result.facts["jobs"])
    now = phone.se.certificates()
    assert now["sign"].serial_number != first_sign.serial_number
    assert now["auth"].serial_number == first_auth.serial_number
    reg = sim.store.registry
    assert reg.certificates(serial=first_sign.serial_number)[0].state.value == "revoked"
    assert reg.certificates(serial=first_auth.serial_number)[0].state.value == "good"
    assert phone.app.login().ok and phone.app.sign(b"x").ok


def test_state_machine_table() -> None:
    assert next_state(PairState.ACTIVE, Event.HOTLINE_HOLD) is PairState.ON_HOLD
    assert next_state(PairState.ON_HOLD, Event.RELEASE) is PairState.ACTIVE_AUTH_ONLY_PENDING_SIGN
    with pytest.raises(StateError, match="hotline-hold is not possible .* REVOKED"):
        next_state(PairState.REVOKED, Event.HOTLINE_HOLD)
    with pytest.raises(StateError):
        next_state(PairState.NONE, Event.REGISTERED)


def test_state_survives_in_the_database(sim: Simulation) -> None:
    person, phone = _issued(sim)
    again = ServiceAuthority(sim.store)  # a second process would open it like this
    assert again.live_pair(person.pid).pair_id == sim.authority.live_pair(person.pid).pair_id
    raw = Path(sim.store.path).read_bytes()
    wal = Path(str(sim.store.path) + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    for secret in (person.phone_password, person.card_password):
        assert secret.reveal().encode() not in raw


def _serve(db: Path, clock: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "pki", "serve", "--db", str(db), "--clock",
         str(clock), "--workers", "1", "--port", str(port), "--issuance-delay", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise AssertionError(f"pki serve did not start: {line} {proc.stderr.read()}")
    assert "application API http://127.0.0.1" in line
    return proc, f"http://127.0.0.1:{port}"


def test_the_application_api_over_real_http_gives_the_same_results(tmp_path: Path) -> None:
    results = {}
    for mode in ("in-process", "http"):
        folder = tmp_path / mode
        clock = tmp_path / f"{mode}.clock"
        sim = Simulation(folder=folder, clock=FileClock(clock,
                                                         datetime(2025, 10, 6, 1, tzinfo=UTC)))
        proc = None
        try:
            person = sim.add_person("hanako")
            phone = sim.add_phone("phone", person)
            if mode == "http":
                proc, url = _serve(folder / "authority.db", clock)
                phone.app.hosts = {**sim.hosts, "auth": http_handler(url)}
            out = [phone.app.apply(person).outcome]
            sim.advance(timedelta(minutes=3))
            out.append(phone.app.register().outcome)
            cert = phone.se.certificates()["auth"]
            out.append(phone.app.login().outcome)
            out.append(phone.app.sign(b"tax").outcome)
            out.append(phone.app.revoke().outcome)
            out.append(sim.service("mynaportal-login").check(cert, usage="auth").reason)
            out.append(json.dumps([(h["event"], h["state"]) for h in sim.authority.history()]))
            out.append(str(sorted(phone.se.certificates())))
            if mode == "http":
                status, answer = http_handler(url)("POST", "/v1/applications",
                                                   {"application_id": 5})
                out.append(f"{status} {answer['error'][:30]}")
                _api_errors_are_json(url)
            results[mode] = out
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            sim.close()
    assert results["http"][:-1] == results["in-process"]
    assert results["in-process"][5] == "revoked (cessationOfOperation)"
    assert results["http"][-1] == "400 malformed request: missing fie"


def _api_errors_are_json(url: str) -> None:
    """Every answer under /v1, errors from the HTTP layer included, is JSON with a reason."""
    import urllib.error
    import urllib.request

    def ask(method: str, path: str, data: bytes | None = None) -> tuple[int, str, dict]:
        request = urllib.request.Request(url + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers["content-type"], json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["content-type"], json.loads(exc.read())

    status, kind, body = ask("DELETE", "/v1/applications/challenge")
    assert (status, kind) == (405, "application/json") and "use GET or POST" in body["error"]
    status, kind, body = ask("POST", "/v1/applications/challenge", b"{" + b" " * 200_000 + b"}")
    assert (status, kind) == (413, "application/json") and "request body larger" in body["error"]
    status, kind, body = ask("GET", "/v1/applications/challenge")
    assert (status, kind) == (405, "application/json") and "use POST" in body["error"]


def test_more_workers_do_not_serve_the_api(tmp_path: Path) -> None:
    sim = Simulation(folder=tmp_path)
    sim.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "pki", "serve", "--db",
         str(tmp_path / "authority.db"), "--workers", "2", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "application API needs --workers 1" in line
        status, answer = http_handler(f"http://127.0.0.1:{port}")(
            "POST", "/v1/applications/challenge", {})
        assert status == 503 and "--workers 1" in answer["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert os.path.exists(tmp_path / "authority.db")


def test_the_app_timeout_is_five_seconds_and_a_cut_transceive_is_flagged() -> None:
    """15.2 A4 MODEL: the app raises IsoDep's 618 ms to 5 s, so the card's signature over NFC
    fits; with Android's default on a slow card it would not, and the record says so."""
    from workbench.lifecycle.simulation import APP_NFC_TIMEOUT_MS
    from workbench.timing import TimingModel

    with Simulation() as s:
        assert s.wire.timing.host_timeout_ms == APP_NFC_TIMEOUT_MS == 5000.0
        _issued(s)
        assert not any(r.get("timing", {}).get("timed_out") for r in s.wire.records)
    with Simulation(timing=TimingModel(host_timeout_ms=50.0)) as s:
        _issued(s)
        cut = [r for r in s.wire.records if r.get("timing", {}).get("timed_out")]
        assert cut and {r["channel"] for r in cut} == {"NFC"}  # OMAPI has no such timeout
        assert all(r["timing"]["total_ms"] == 50.0 for r in cut)


def test_a_stop_right_after_start_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGTERM as soon as `pki serve --workers 2` says it serves: the parent must stop its
    workers, not die by the default action and leave them running (found after a test run
    left two workers behind on a loaded machine)."""
    sim = Simulation(folder=tmp_path)
    sim.close()
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "pki", "serve", "--db",
             str(tmp_path / "authority.db"), "--workers", "2", "--port", str(port), "--no-api"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert "serving" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)  # at once: the window a default action would hit
        code = proc.wait(timeout=30)
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", "--", f"--port {port} --no-api"], capture_output=True,
                              text=True).stdout.split()
        for pid in left:  # do not leave them running even when the test fails
            os.kill(int(pid), signal.SIGKILL)
        assert code == 0, f"killed by the signal (status {code}), not stopped by its handler"
        assert not left, f"workers left running: {left}"

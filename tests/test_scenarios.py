"""Every scenario runs and comes out as the rule it illustrates, from Python and the command
line; every recorded run replays without divergence and a tampered one is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.helpers import run_cli
from workbench.errors import TraceFormatError
from workbench.scenarios import (
    SCENARIOS,
    ScenarioError,
    describe,
    replay_scenario,
    run_scenario,
    scenario_frame,
)

# Values the outcome of each scenario must show (beyond "every step as expected"): the rule.
RULES = {
    "device-change": (11, "refused: revoked (superseded)"),
    "lost-outside-hotline-hours": (7, "ok"),
    "ineligible-phone": (2, "excluded"),
    "lost-found": (12, "superseded"),
    "sale-revoked": (6, "cessationOfOperation"),
    "factory-reset-without-revocation": (7, "ok"),
    "address-change": (6, "affiliationChanged"),
    "pin-lock-reset": (7, "blocked"),
    "crl-vs-ocsp": (9, "ok"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every scenario run once, saved (the replay tests reuse the folders)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name in SCENARIOS:
        with run_scenario(name) as run:
            assert run.ok, run.summary()
            out[name] = run.save(root / name)
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_comes_out_as_its_rule(saved: dict[str, Path], name: str) -> None:
    steps = pd.read_csv(saved[name] / "steps.csv")
    assert steps["as_expected"].all(), steps[["index", "action", "outcome"]].to_string()
    assert len(steps) == len(SCENARIOS[name].steps)
    if name in RULES:
        index, text = RULES[name]
        assert text in steps.loc[index, "outcome"], steps.loc[index].to_dict()


def test_the_old_phone_after_a_device_change_is_refused_as_superseded(
        saved: dict[str, Path]) -> None:
    steps = pd.read_csv(saved["device-change"] / "steps.csv")
    old = steps[(steps["params"].str.contains("old-phone")) & (steps["action"] == "use")]
    assert list(old["outcome"]) == ["refused: revoked (superseded)"]


def test_events_at_the_same_moment_are_in_the_order_they_happened(
        saved: dict[str, Path]) -> None:
    """The log (a phone bought) and the authority's history (registered) share calendar
    times; the frame keeps the order things happened in, not 'all log lines first'."""
    events = pd.read_csv(saved["device-change"] / "events.csv")
    what = list(zip(events["what"], events["phone"].fillna(""), strict=True))
    assert what.index(("registered", "old-phone")) < what.index(("phone bought", "new-phone"))
    assert what.index(("phone bought", "new-phone")) < what.index(("apply", "new-phone"))
    assert what.index(("superseded", "old-phone")) < what.index(("registered", "new-phone"))


def test_a_loss_outside_hotline_hours_is_held_at_the_next_opening(
        saved: dict[str, Path]) -> None:
    events = pd.read_csv(saved["lost-outside-hotline-hours"] / "events.csv",
                         parse_dates=["calendar"])
    hold = events[events["what"] == "hotline-hold"]
    assert len(hold) == 1
    # called Friday 22:00 JST (13:00 UTC): the itmedia-2023 hotline opens Saturday 09:30 JST
    assert hold["calendar"].iloc[0] == pd.Timestamp("2025-10-11T00:30:00+00:00")


def test_every_recorded_run_replays_without_divergence(saved: dict[str, Path]) -> None:
    for name, folder in saved.items():
        report = replay_scenario(folder)
        assert report.ok, f"{name}: {report}"
        assert report.steps["same"].all()


def _tamper(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    shutil.copytree(src, dst)
    lines = (dst / "trace.jsonl").read_text().splitlines()
    lines = edit(lines)
    (dst / "trace.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def test_a_tampered_card_signature_is_caught(saved: dict[str, Path], tmp_path: Path) -> None:
    def flip_signature(lines: list[str]) -> list[str]:
        out = []
        done = False
        for line in lines:
            rec = json.loads(line)
            # the card's answer to COMPUTE DIGITAL SIGNATURE over NFC (15.2 A4)
            if (not done and rec.get("type") == "exchange" and rec.get("channel") == "NFC"
                    and rec["command"].startswith("802A")):
                rec["response"] = ("00" if rec["response"][:2] != "00" else "01") + \
                    rec["response"][2:]
                done = True
            out.append(json.dumps(rec, ensure_ascii=False))
        assert done
        return out

    report = replay_scenario(_tamper(saved["issuance"], tmp_path / "t", flip_signature))
    assert not report.ok
    assert "POST auth/v1/applications" in report.divergence  # the app forwards what it got


def test_a_tampered_verdict_is_caught(saved: dict[str, Path], tmp_path: Path) -> None:
    def accept_everything(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            rec = json.loads(line)
            if rec.get("type") == "message" and rec.get("path") == "/login":
                rec["response"] = {**rec["response"], "accepted": True, "reason": "valid"}
            out.append(json.dumps(rec, ensure_ascii=False))
        return out

    report = replay_scenario(_tamper(saved["device-change"], tmp_path / "t", accept_everything))
    assert not report.ok
    assert "recorded outcome 'refused: revoked (superseded)'" in report.divergence


def test_a_world_step_outcome_that_contradicts_its_verdict_is_caught(
        saved: dict[str, Path], tmp_path: Path) -> None:
    """World steps (a relying party's check) are taken from the recording, not re-run; an
    outcome changed without its verdict no longer fits the scenario's rule."""
    def refuse_the_login_check(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            rec = json.loads(line)
            if rec.get("type") == "outcome" and rec.get("outcome") == "ok" and rec["index"] == 5:
                rec["outcome"] = "refused: revoked"
            out.append(json.dumps(rec, ensure_ascii=False))
        return out

    report = replay_scenario(_tamper(saved["issuance"], tmp_path / "w", refuse_the_login_check))
    assert not report.ok and "does not fit the recorded verdict" in report.divergence, report


def test_a_dropped_line_is_caught(saved: dict[str, Path], tmp_path: Path) -> None:
    def drop_an_apdu(lines: list[str]) -> list[str]:
        index = next(i for i, line in enumerate(lines)
                     if '"channel":"OMAPI"' in line and '"type":"exchange"' in line)
        return lines[:index] + lines[index + 1:]

    report = replay_scenario(_tamper(saved["login-pin"], tmp_path / "t", drop_an_apdu))
    assert not report.ok and "diverged" in report.divergence


def test_replay_of_something_else_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no trace"):
        replay_scenario(tmp_path)
    (tmp_path / "trace.jsonl").write_text("hello\n")
    with pytest.raises(TraceFormatError):
        replay_scenario(tmp_path)
    # a card session trace (its header names a sample, not a scenario run): said plainly
    from importlib.resources import files
    card_trace = files("workbench") / "data" / "traces" / "signing.jsonl"
    with pytest.raises(TraceFormatError, match="not a scenario trace"):
        replay_scenario(str(card_trace))


def test_no_secret_in_a_trace(saved: dict[str, Path]) -> None:
    """The people's PINs and passwords never reach a trace (they travel masked)."""
    for name, folder in saved.items():
        text = (folder / "trace.jsonl").read_text()
        # the passwords, in clear or hex (4-digit PINs are too short to search for in random
        # hex; the masked-command check below covers them)
        for secret in ("PHONE7", "ABC123", "NEWPW42"):
            assert secret not in text, (name, secret)
            assert secret.encode().hex().upper() not in text.upper(), (name, secret)
        for line in text.splitlines():
            rec = json.loads(line)
            if rec.get("type") == "exchange" and rec["command"][2:4] in ("20", "2C", "24"):
                if len(rec["command"]) > 10:  # a VERIFY/RESET with data: masked
                    assert set(rec["command"][10:]) == {"*"}, (name, rec["command"])


def test_stepping_a_run() -> None:
    run = run_scenario("login-pin", step=True)
    try:
        assert run.position == 0 and not run.finished and run.state["next"]
        first = run.next()
        assert first.index == 0 and first.as_expected
        assert run.state["position"] == 1
        rest = list(run)
        assert run.finished and len(rest) == len(run.all_steps) - 1
        with pytest.raises(ScenarioError, match="finished"):
            run.next()
        run.reset()
        assert run.position == 0 and run.results == []
        run.run()
        assert run.ok
        assert {p["state"] for p in run.state["pairs"]} == {"ACTIVE"}
    finally:
        run.close()


def test_the_run_frames_and_plot() -> None:
    with run_scenario("issuance") as run:
        steps = run.steps
        register = steps[steps["action"] == "register"].iloc[0]
        assert register["omapi"] > 20 and register["nfc"] == 0 and register["http"] > 20
        assert register["card_ms"] > 2000  # two RSA key generations in the SE
        apply = steps[steps["action"] == "apply"].iloc[0]
        assert apply["nfc"] > 5 and apply["air_ms"] > 0
        assert set(run.timing["channel"]) >= {"NFC", "OMAPI", "HTTP"}
        states = run.states
        final = states[states["step"] == states["step"].max()]
        phone = final[final["token"] == "phone"]
        assert set(phone["state"]) == {"good"} and len(phone) == 2
        assert "registered" in set(run.events["what"])
        fig = run.plot()
        assert isinstance(fig, Figure)
        assert len(fig.axes[0].patches) == 4 * int((steps["modelled_ms"] > 0).sum())


def test_bad_parameters_are_one_line_errors() -> None:
    with pytest.raises(ScenarioError, match="parameter model: 'Foo' is not one of"):
        run_scenario("issuance", model="Foo")
    with pytest.raises(ScenarioError, match="has no parameter 'colour'"):
        run_scenario("issuance", colour="red")
    with pytest.raises(ScenarioError, match="parameter start: .* ISO 8601"):
        run_scenario("issuance", start="tomorrow")
    with pytest.raises(ScenarioError, match="no scenario 'nope'; choose one of"):
        run_scenario("nope")


def test_parameters_change_the_outcome() -> None:
    """The 24-hour hotline holds at once: the exposure step is refused, as it should be."""
    with run_scenario("lost-outside-hotline-hours", hotline="jlis-24h") as run:
        step = run.steps.iloc[7]
        assert step["outcome"] == "refused: on hold (certificateHold)"
        assert not run.ok


def test_catalogue_views() -> None:
    frame = scenario_frame()
    assert len(frame) == len(SCENARIOS) >= 15
    assert "device-change" in describe("device-change")


def test_the_command_line(tmp_path: Path) -> None:
    listing = run_cli("scenario", "list")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == len(SCENARIOS)
    out = tmp_path / "run"
    done = run_cli("scenario", "run", "lost-revoked", "--param", "hotline=jlis-24h",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "all steps as expected" in done.stdout
    assert {p.name for p in out.iterdir()} >= {"trace.jsonl", "steps.csv", "events.csv",
                                                "states.csv", "timing.png"}
    again = run_cli("scenario", "replay", str(out))
    assert again.returncode == 0 and "no divergence" in again.stdout
    bad = run_cli("scenario", "run", "issuance", "--param", "revocation=fax")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("jpki-workbench: error: parameter revocation: 'fax' is not "
                                  "one of: ocsp, crl")
    worse = run_cli("scenario", "run", "issuance", "--param", "revocation")
    assert worse.returncode == 2 and "KEY=VALUE" in worse.stderr
    assert "Traceback" not in bad.stderr + worse.stderr
    differs = run_cli("scenario", "run", "lost-outside-hotline-hours", "--param",
                      "hotline=jlis-24h")
    assert differs.returncode == 1 and "NOT AS EXPECTED" in differs.stdout


@pytest.mark.parametrize("param, value", [
    ("crl_interval_hours", "nan"), ("crl_interval_hours", "inf"), ("crl_interval_hours", "-5"),
    ("issuance_delay_minutes", "1e12"), ("issuance_delay_minutes", "-3"),
    ("start", "2099-01-01T10:00+09:00"), ("seed", "-7")])
def test_out_of_range_parameters_are_one_line(param: str, value: str) -> None:
    bad = run_cli("scenario", "run", "issuance", "--param", f"{param}={value}")
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith(f"jpki-workbench: error: parameter {param}: ")
    assert len(bad.stderr.strip().splitlines()) == 1 and not bad.stdout


def test_exposure_refuses_a_file_as_out_before_working(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    bad = run_cli("scenario", "exposure", "--out", str(precious))
    assert bad.returncode == 2 and "is not a folder" in bad.stderr and not bad.stdout
    assert precious.read_text() == "keep me"


def test_a_run_without_modelled_time_plots_a_sentence_not_empty_axes() -> None:
    fig = run_scenario("ineligible-phone", seed=1).plot()
    assert [t.get_text() for t in fig.axes[0].texts] == [
        "no modelled time: no APDU or message was exchanged"]

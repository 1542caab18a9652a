"""The exposure-window analysis (issue 10 part 3): closed form, frame, plot, and the closed form
checked against the simulation.

Expected values are derived in the comments from the rules they test, not copied from the
code: the hotline hours of smartphone-service.md 9.1 (itmedia-2023: weekdays 9:30–20:00,
weekends and national holidays 9:30–17:30, closing time exclusive; jlis-24h: always open) and
the CRL publication rule of 11.3 as the simulator models it (publications at 00:00 JST plus
multiples of the interval; the publication at boundary P lists the registry as of P − 1 s).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from workbench.pki.clock import JST  # noqa: E402
from workbench.scenarios.exposure import (  # noqa: E402
    COLUMNS,
    check_against_simulation,
    exposure_frame,
    plot_exposure,
    summary,
)
from workbench.scenarios.model import ScenarioError  # noqa: E402


def jst(*args: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=JST))


def row(frame: pd.DataFrame, loss: pd.Timestamp, **where: object) -> pd.Series:
    mask = frame["loss_at"] == loss
    for column, value in where.items():
        mask &= frame[column] == value
    rows = frame[mask]
    assert len(rows) == 1, (loss, where, len(rows))
    return rows.iloc[0]


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    """The default week (Monday 2025-10-06), both schedules, notice 0 and 2 h, daily CRLs."""
    return exposure_frame(schedule=["itmedia-2023", "jlis-24h"])


# --- the closed form, hand-computed cases ----------------------------------------------------

def test_friday_night_loss_waits_for_the_saturday_opening(week: pd.DataFrame) -> None:
    """9.1 itmedia-2023: Friday 2025-10-10 22:00 is after the weekday closing (20:00); Saturday
    opens at 09:30. OCSP sees the hold at once: 11.5 h. The daily CRL published Saturday 00:00
    was cut before the hold; the next one, Sunday 00:00, lists it: 26 h."""
    r = row(week, jst(2025, 10, 10, 22, 0), schedule="itmedia-2023", notice_hours=0)
    assert r["hotline_closed"]
    assert r["hold_at"] == jst(2025, 10, 11, 9, 30)
    assert r["ocsp_accepted_until"] == jst(2025, 10, 11, 9, 30)
    assert r["ocsp_exposure_h"] == 11.5
    assert r["crl_accepted_until"] == jst(2025, 10, 12, 0, 0)
    assert r["crl_exposure_h"] == 26.0
    # noticed two hours later (Saturday 00:00): still the 09:30 opening
    r = row(week, jst(2025, 10, 10, 22, 0), schedule="itmedia-2023", notice_hours=2)
    assert r["noticed_at"] == jst(2025, 10, 11, 0, 0)
    assert r["hold_at"] == jst(2025, 10, 11, 9, 30)
    assert (r["ocsp_exposure_h"], r["crl_exposure_h"]) == (11.5, 26.0)


def test_the_24_hour_hotline_holds_at_once(week: pd.DataFrame) -> None:
    """9.1 jlis-24h: the call at Friday 22:00 is acted on at 22:00; the next CRL (Saturday
    00:00) lists it: 2 h."""
    r = row(week, jst(2025, 10, 10, 22, 0), schedule="jlis-24h", notice_hours=0)
    assert not r["hotline_closed"]
    assert r["hold_at"] == jst(2025, 10, 10, 22, 0)
    assert (r["ocsp_exposure_h"], r["crl_exposure_h"]) == (0.0, 2.0)


def test_a_hold_exactly_on_a_crl_boundary_waits_a_whole_interval(week: pd.DataFrame) -> None:
    """pki/crl.py: the publication at P lists the registry as of P − 1 s. Noticed two hours
    after a Friday 22:00 loss, the 24-hour hotline holds at Saturday 00:00, exactly a
    boundary: the Saturday list does not have it, the Sunday 00:00 one does (26 h, not 2 h).
    A loss at Monday 00:00 noticed at once likewise gives 24 h; one at 23:45 gives 15 min."""
    r = row(week, jst(2025, 10, 10, 22, 0), schedule="jlis-24h", notice_hours=2)
    assert r["hold_at"] == jst(2025, 10, 11, 0, 0)
    assert r["crl_accepted_until"] == jst(2025, 10, 12, 0, 0)
    assert r["crl_exposure_h"] == 26.0
    r = row(week, jst(2025, 10, 6, 0, 0), schedule="jlis-24h", notice_hours=0)
    assert r["crl_accepted_until"] == jst(2025, 10, 7, 0, 0)
    r = row(week, jst(2025, 10, 6, 23, 45), schedule="jlis-24h", notice_hours=0)
    assert r["crl_accepted_until"] == jst(2025, 10, 7, 0, 0)
    assert r["crl_exposure_h"] == 0.25


def test_a_six_hour_crl_interval_publishes_at_00_06_12_18_jst() -> None:
    """Boundaries are counted from a JST midnight: with 6 h they fall at 00, 06, 12, 18 JST.
    A Wednesday 12:00 loss in open hours is held at 12:00, on a boundary: the 18:00 list has
    it. One at 11:45 is on the 12:00 list."""
    frame = exposure_frame(notice_hours=0, crl_interval_hours=6)
    r = row(frame, jst(2025, 10, 8, 12, 0))
    assert r["hold_at"] == jst(2025, 10, 8, 12, 0)
    assert r["crl_accepted_until"] == jst(2025, 10, 8, 18, 0)
    assert row(frame, jst(2025, 10, 8, 11, 45))["crl_accepted_until"] == jst(2025, 10, 8, 12, 0)
    # evening: the hotline closes at 20:00 (exclusive), so 20:00 waits for Thursday 09:30 and
    # the Thursday 12:00 list
    r = row(frame, jst(2025, 10, 8, 20, 0))
    assert r["hold_at"] == jst(2025, 10, 9, 9, 30)
    assert r["crl_accepted_until"] == jst(2025, 10, 9, 12, 0)


def test_a_national_holiday_uses_the_weekend_hours(week: pd.DataFrame) -> None:
    """Monday 2025-10-13 is スポーツの日: the hotline closes at 17:30, so an 18:00 call waits
    for Tuesday 09:30 (15.5 h). The Monday before is an ordinary weekday, open until 20:00."""
    holiday = exposure_frame(week_start="holiday", notice_hours=0)
    r = row(holiday, jst(2025, 10, 13, 18, 0))
    assert r["hotline_closed"]
    assert r["hold_at"] == jst(2025, 10, 14, 9, 30)
    assert r["ocsp_exposure_h"] == 15.5
    ordinary = row(week, jst(2025, 10, 6, 18, 0), schedule="itmedia-2023", notice_hours=0)
    assert not ordinary["hotline_closed"]
    assert ordinary["ocsp_exposure_h"] == 0.0


def test_the_rp_crl_cache_never_changes_the_exposure() -> None:
    """The RP drops its copy at nextUpdate at the latest, so the copy in use is always the
    publication in force: a shorter keep time only adds downloads (module docstring)."""
    frame = exposure_frame(crl_refresh_hours=[None, 2, 36])
    by = {k: g.reset_index(drop=True) for k, g in frame.groupby(
        frame["crl_refresh_hours"].fillna(-1))}
    assert set(by) == {-1, 2, 36}
    for group in by.values():
        pd.testing.assert_series_equal(group["crl_accepted_until"],
                                       by[-1]["crl_accepted_until"])


# --- the frame, the summary, the plot ----------------------------------------------------------

def test_the_frame_has_one_row_per_loss_time_and_configuration(week: pd.DataFrame) -> None:
    assert list(week.columns) == list(COLUMNS)
    assert len(week) == 672 * 4  # 7 days × 96 quarter hours × (2 schedules × 2 notice times)
    assert week["configuration"].nunique() == 4
    for _, group in week.groupby("configuration"):
        losses = group["loss_at"]
        assert losses.iloc[0] == jst(2025, 10, 6, 0, 0)  # Monday 00:00 JST
        assert losses.iloc[-1] == jst(2025, 10, 12, 23, 45)
        assert (losses.diff().dropna() == pd.Timedelta(minutes=15)).all()
    assert week["loss_at"].iloc[0].utcoffset() == timedelta(hours=9)
    assert (week["crl_accepted_until"] > week["hold_at"]).all()
    assert (week["hold_at"] >= week["noticed_at"]).all()
    assert len(exposure_frame(step_minutes=60, notice_hours=0)) == 168


def test_the_week_can_be_given_as_a_date_text_or_an_aware_instant() -> None:
    a = exposure_frame(week_start="2025-10-13", notice_hours=0, step_minutes=360)
    b = exposure_frame(week_start=datetime(2025, 10, 12, 15, 0, tzinfo=UTC), notice_hours=0,
                       step_minutes=360)
    c = exposure_frame(week_start="holiday", notice_hours=0, step_minutes=360)
    assert a["loss_at"].iloc[0] == jst(2025, 10, 13, 0, 0)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_summary_gives_median_and_max_per_configuration(week: pd.DataFrame) -> None:
    table = summary(week).set_index("configuration")
    assert len(table) == 4
    itm = table.loc["itmedia-2023, notice 0 h, CRL every 24 h"]
    # longest wait: a call at weekend closing (17:30) waits for 09:30 the next day: 16 h; the
    # CRL then comes at the following midnight: Saturday 17:30 → Monday 00:00 = 30.5 h
    assert (itm["ocsp_max_h"], itm["crl_max_h"]) == (16.0, 30.5)
    # open 5 × 10.5 h + 2 × 8 h = 68.5 h of 168 h: closed for 99.5 / 168 of the loss times
    assert itm["hotline_closed_share"] == round(99.5 / 168, 4)
    jlis = table.loc["jlis-24h, notice 0 h, CRL every 24 h"]
    # the CRL exposure is the time to the next midnight: 24, 23.75, …, 0.25 h each day, whose
    # median is (12.25 + 12) / 2
    assert (jlis["ocsp_median_h"], jlis["ocsp_max_h"]) == (0.0, 0.0)
    assert (jlis["crl_median_h"], jlis["crl_max_h"]) == (12.125, 24.0)


def test_the_plot_draws_a_line_per_configuration_and_method_and_shades_closed_hours(
        week: pd.DataFrame) -> None:
    fig = plot_exposure(week)
    try:
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        assert len(ax.lines) == 2 * 4  # OCSP and CRL for each of the 4 configurations
        # itmedia-2023 is closed Monday 00:00–09:30, the five nights from a weekday 20:00 to
        # 09:30 (Monday–Friday), Saturday 17:30–Sunday 09:30, and from Sunday 17:30 to the
        # week's end: 1 + 5 + 1 + 1 = 8 periods
        assert len(ax.patches) == 8
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[0] == "Mon 10-06"  # ticks at JST midnights, labelled in JST
        assert ax.get_xlabel() == "loss time (JST)"
    finally:
        plt.close(fig)
    only_24h = exposure_frame(schedule="jlis-24h", notice_hours=0)
    fig = plot_exposure(only_24h)
    try:
        assert len(fig.axes[0].lines) == 2
        assert len(fig.axes[0].patches) == 0  # never closed
    finally:
        plt.close(fig)


# --- the closed form against the simulation --------------------------------------------------

def test_the_closed_form_matches_the_simulated_calendar() -> None:
    """Three sample losses, each replayed in a simulated world (OCSP: mynaportal-login, CRL:
    convenience-store) with the minute the service stops accepting found by bisection:

    - weekday open hours: Wednesday 11:00, itmedia-2023, noticed at once;
    - Friday night: 22:00, itmedia-2023, noticed at Saturday 00:00, held at 09:30;
    - a hold exactly on a CRL boundary: Wednesday 12:00 with 6-hourly CRLs, and a relying
      party that drops its CRL copy after 2 h (which must change nothing).

    A fourth row, a copy of the first with its CRL answer moved by 15 minutes, must come out
    different: the check can fail.
    """
    frame = exposure_frame(notice_hours=(0, 2), crl_interval_hours=(24, 6),
                           crl_refresh_hours=(None, 2))
    plain = (frame["crl_refresh_hours"].isna()) & (frame["crl_interval_hours"] == 24)
    weekday = frame.index[plain & (frame["loss_at"] == jst(2025, 10, 8, 11, 0))
                          & (frame["notice_hours"] == 0)][0]
    friday = frame.index[plain & (frame["loss_at"] == jst(2025, 10, 10, 22, 0))
                         & (frame["notice_hours"] == 2)][0]
    boundary = frame.index[(frame["crl_refresh_hours"] == 2)
                           & (frame["crl_interval_hours"] == 6)
                           & (frame["loss_at"] == jst(2025, 10, 8, 12, 0))
                           & (frame["notice_hours"] == 0)][0]
    wrong = frame.loc[[weekday]].copy()
    wrong.index = ["wrong"]
    wrong["crl_accepted_until"] += pd.Timedelta(minutes=15)
    frame = pd.concat([frame, wrong])

    result = check_against_simulation(frame, samples=[weekday, friday, boundary, "wrong"])
    assert len(result) == 8  # 4 samples × 2 methods
    real = result[result["sample"] != "wrong"]
    assert real["same"].all(), real.to_string()
    simulated = real.set_index(["sample", "method"])["simulated"]
    assert simulated[(friday, "ocsp")] == jst(2025, 10, 11, 9, 30)
    assert simulated[(friday, "crl")] == jst(2025, 10, 12, 0, 0)
    assert simulated[(boundary, "crl")] == jst(2025, 10, 8, 18, 0)
    assert simulated[(weekday, "ocsp")] == jst(2025, 10, 8, 11, 0)
    tampered = result[result["sample"] == "wrong"].set_index("method")
    assert tampered.loc["ocsp", "same"] and not tampered.loc["crl", "same"]
    assert tampered.loc["crl", "simulated"] == simulated[(weekday, "crl")]


# --- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "names"), [
    ({"week_start": "2025-10-08"}, "week_start"),  # a Wednesday
    ({"week_start": datetime(2025, 10, 6)}, "week_start"),  # naive
    ({"week_start": datetime(2025, 10, 6, 9, 0, tzinfo=JST)}, "week_start"),  # not 00:00
    ({"week_start": "someday"}, "week_start"),
    ({"week_start": "2022-10-03"}, "week_start"),  # before the service
    ({"schedule": "weekends-only"}, "schedule"),
    ({"schedule": []}, "schedule"),
    ({"notice_hours": -1}, "notice_hours"),
    ({"notice_hours": 0.01}, "notice_hours"),  # not whole minutes
    ({"notice_hours": "2"}, "notice_hours"),
    ({"notice_hours": True}, "notice_hours"),
    ({"crl_interval_hours": 0}, "crl_interval_hours"),
    ({"crl_interval_hours": float("nan")}, "crl_interval_hours"),
    ({"crl_refresh_hours": -2}, "crl_refresh_hours"),
    ({"step_minutes": 0}, "step_minutes"),
    ({"step_minutes": 7.5}, "step_minutes"),
])
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], names: str) -> None:
    with pytest.raises(ScenarioError, match=f"^{names}: ") as info:
        exposure_frame(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_bad_frames_and_samples_are_refused(week: pd.DataFrame) -> None:
    with pytest.raises(ScenarioError, match="^frame: "):
        summary(week.drop(columns=["hold_at"]))
    with pytest.raises(ScenarioError, match="^frame: "):
        plot_exposure("not a frame")  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="^samples: "):
        check_against_simulation(week, samples=0)
    with pytest.raises(ScenarioError, match="^samples: "):
        check_against_simulation(week, samples=["nope"])
    # a week before the convenience-store service (the check's CRL service) started
    early = exposure_frame(week_start="2023-06-05", notice_hours=0, step_minutes=1440)
    with pytest.raises(ScenarioError, match="^samples: .*convenience-store"):
        check_against_simulation(early, samples=1)

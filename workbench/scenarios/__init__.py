"""Procedures as data: the smartphone service's scenarios, their runs, replays and the
exposure-window analysis; and the sample card sessions the workbench ships.

- :func:`run_scenario` / :class:`ScenarioRun`: run or step a named scenario (:data:`SCENARIOS`),
  with its trace, steps/events/states/timing DataFrames and timing plot.
- :func:`replay_scenario`: re-run the client side of a saved run against its recording.
- :mod:`workbench.scenarios.samples`: the recorded card sessions shipped in ``data/traces``.

Layering (ARCHITECTURE): ``scenarios`` sits above ``lifecycle`` and ``analysis``; widgets,
plots and notebooks call it.
"""

from workbench.scenarios.library import COMMON, SCENARIOS, describe, get, scenario_frame
from workbench.scenarios.model import Param, Scenario, ScenarioError, Step
from workbench.scenarios.run import (
    ACTIONS,
    ReplayReport,
    ScenarioRun,
    StepResult,
    replay_scenario,
    run_scenario,
)
from workbench.scenarios.samples import record_login, record_signing, trace_path

__all__ = [
    "ACTIONS",
    "COMMON",
    "SCENARIOS",
    "Param",
    "ReplayReport",
    "Scenario",
    "ScenarioError",
    "ScenarioRun",
    "Step",
    "StepResult",
    "describe",
    "get",
    "record_login",
    "record_signing",
    "replay_scenario",
    "run_scenario",
    "scenario_frame",
    "trace_path",
]

"""What a scenario is: readable declarations of steps and parameters, no logic.

A :class:`Scenario` is a name, one line saying what it shows, its parameters
(:class:`Param`, with defaults, allowed values and help) and its steps. A :class:`Step` names
an actor (a person, a phone, ``clock``, ``hotline``, ``municipality``, a relying service or a
reader), an action, its parameters, and the outcome the rule it illustrates expects:
``"ok"``, ``"refused"`` (a relying party said no) or ``"error"`` (the app, the card or the
authority refused), optionally with a ``reason`` the outcome must mention. Parameter values
are written ``"{name}"`` inside step parameters and filled in when the scenario runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["EXPECTATIONS", "Param", "Scenario", "ScenarioError", "Step"]

#: What a step may expect.
EXPECTATIONS = ("ok", "refused", "error")


class ScenarioError(WorkbenchError):
    """A scenario was asked for wrongly (unknown name, bad parameter, stepping past the end)."""


@dataclass(frozen=True)
class Param:
    """One scenario parameter: default, type (``str``, ``int``, ``float``, ``bool``,
    ``datetime``), allowed values (``choices``) and one line of help."""

    default: Any
    help: str
    kind: type = str
    choices: tuple[Any, ...] | None = None
    low: Any = None  # inclusive bounds for numbers and times (None: unbounded)
    high: Any = None

    def parse(self, name: str, value: Any) -> Any:
        """``value`` (a command-line string or a Python value) as this parameter's type;
        :class:`ScenarioError` naming the parameter and the allowed values otherwise."""
        try:
            parsed = _coerce(self.kind, value)
        except (TypeError, ValueError, OverflowError):
            raise ScenarioError(f"parameter {name}: {value!r} is not {self.allowed}") from None
        if self.choices is not None and parsed not in self.choices:
            raise ScenarioError(f"parameter {name}: {value!r} is not {self.allowed}")
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise ScenarioError(f"parameter {name}: {value!r} is not {self.allowed}")
        if ((self.low is not None and parsed < self.low)
                or (self.high is not None and parsed > self.high)):
            raise ScenarioError(f"parameter {name}: {value!r} is not {self.allowed}")
        return parsed

    @property
    def allowed(self) -> str:
        if self.choices is not None:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        text = {str: "a text", int: "a whole number", float: "a finite number",
                bool: "true or false", datetime: "an ISO 8601 time with its offset "
                "(e.g. 2025-10-10T22:00+09:00)"}[self.kind]
        if self.low is not None and self.high is not None:
            text += f" from {_bound(self.low)} to {_bound(self.high)}"
        elif self.low is not None:
            text += f" of at least {_bound(self.low)}"
        elif self.high is not None:
            text += f" of at most {_bound(self.high)}"
        return text


def _bound(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if isinstance(value, datetime) else f"{value:g}"


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ValueError(value)
    if kind is datetime:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    if kind is int and isinstance(value, bool | float):
        raise ValueError(value)
    if kind is float and isinstance(value, bool):
        raise ValueError(value)
    return kind(value)


@dataclass(frozen=True)
class Step:
    """One step (module docstring). ``says`` is what a reader should notice."""

    actor: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    expect: str = "ok"
    reason: str | None = None
    says: str = ""

    def __post_init__(self) -> None:
        if self.expect not in EXPECTATIONS:
            raise ScenarioError(f"a step expects one of {', '.join(EXPECTATIONS)}, not "
                                f"{self.expect!r}")

    def filled(self, values: Mapping[str, Any]) -> Step:
        """The step with ``"{name}"`` placeholders replaced by parameter values (a value that
        is the whole string keeps its type)."""
        def fill(v: Any) -> Any:
            if isinstance(v, str) and v.startswith("{") and v.endswith("}") and v[1:-1] in values:
                return values[v[1:-1]]
            if isinstance(v, str) and "{" in v:
                return v.format(**values)
            return v

        reason = fill(self.reason) if self.reason is not None else None
        return Step(fill(self.actor), self.action, {k: fill(v) for k, v in self.params.items()},
                    self.expect, reason, fill(self.says) if self.says else "")

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.actor} {self.action}" + (f" ({params})" if params else "")


@dataclass(frozen=True)
class Scenario:
    """A named procedure (module docstring). ``revocation_by_service`` fixes the revocation
    method of some relying services in this scenario (e.g. a CRL-checking store)."""

    name: str
    title: str
    shows: str
    steps: tuple[Step, ...]
    params: Mapping[str, Param] = field(default_factory=dict)
    revocation_by_service: Mapping[str, str] = field(default_factory=dict)

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given`` (parsed); unknown names are an error."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ScenarioError(f"scenario {self.name} has no parameter {unknown[0]!r} "
                                f"(its parameters: {known})")
        out = {name: p.default for name, p in self.params.items()}
        for name, value in given.items():
            out[name] = self.params[name].parse(name, value)
        return out

    def filled_steps(self, values: Mapping[str, Any]) -> list[Step]:
        return [s.filled(values) for s in self.steps]

"""``jpki-workbench scenario …``: the smartphone service's procedures from the shell.

``scenario list`` names every scenario and what it shows; ``scenario show NAME`` prints its
steps and parameters; ``scenario run NAME [--param key=value …] [--out DIR]`` runs it, prints
one line per step and writes ``trace.jsonl``, ``steps.csv``, ``events.csv``, ``states.csv``
and ``timing.png``; ``scenario replay DIR`` re-runs the client side of a saved run against
its recording; ``scenario exposure`` computes the exposure windows after a lost phone.

Exit status: 0 when every step came out as the scenario expects (or the replay matched),
1 when some step did not (or the replay diverged), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli.common import CliError

__all__ = ["add_commands"]


def add_commands(group: argparse.ArgumentParser) -> None:
    """The ``scenario`` group's commands."""
    sub = group.add_subparsers(dest="command", required=True, metavar="COMMAND",
                               parser_class=type(group))

    listing = sub.add_parser("list", help="every scenario, one line each")
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", help="a scenario's steps and parameters")
    show.add_argument("name")
    show.set_defaults(func=_show)

    run = sub.add_parser("run", help="run a scenario, print its steps, write its outputs")
    run.add_argument("name")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="set a parameter (see `scenario show NAME`); repeatable")
    run.add_argument("--out", type=Path, default=None,
                     help="folder for trace.jsonl, steps.csv, events.csv, states.csv, "
                          "timing.png")
    run.add_argument("--json", action="store_true", help="print the steps as JSON lines")
    run.set_defaults(func=_run)

    replay = sub.add_parser("replay", help="re-run a saved run's client side against its "
                                           "recording")
    replay.add_argument("path", type=Path, help="the folder `scenario run --out` wrote, or its "
                                                "trace.jsonl")
    replay.set_defaults(func=_replay)

    exposure = sub.add_parser("exposure", help="how long a lost phone stays usable, over a "
                                               "week of loss times")
    exposure.add_argument("--schedule", default="itmedia-2023",
                          help="hotline schedule: itmedia-2023 or jlis-24h")
    exposure.add_argument("--crl-interval", type=float, default=24.0, metavar="HOURS",
                          help="CRL publication interval in hours (default 24)")
    exposure.add_argument("--notice", type=float, action="append", default=None,
                          metavar="HOURS", help="hours until the owner notices the loss "
                                                "(repeatable; default 0 and 2)")
    exposure.add_argument("--week", default=None, metavar="DATE",
                          help="the Monday the week starts (ISO date), or 'default' or 'holiday' "
                               "(a week with a national holiday)")
    exposure.add_argument("--out", type=Path, default=None,
                          help="folder for exposure.csv and exposure.png")
    exposure.set_defaults(func=_exposure)


def _list(args: argparse.Namespace) -> int:
    from workbench.scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    for name, scenario in SCENARIOS.items():
        print(f"{name:<{width}}  {scenario.shows}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from workbench.scenarios import describe

    print(describe(args.name))
    return 0


def _params(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _run(args: argparse.Namespace) -> int:
    from workbench.scenarios import get, run_scenario

    scenario = get(args.name)
    params = scenario.values(_params(args.param))  # bad parameters fail before any work
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out} exists and is not a folder")
    with run_scenario(args.name, **params) as run:
        if args.json:
            for row in run.steps.to_dict("records"):
                print(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                  for k, v in row.items()}, ensure_ascii=False))
        else:
            print(run.summary())
        if args.out is not None:
            folder = run.save(args.out)
            print(f"wrote {folder}/trace.jsonl, steps.csv, events.csv, states.csv, timing.png")
        return 0 if run.ok else 1


def _replay(args: argparse.Namespace) -> int:
    from workbench.scenarios import replay_scenario

    report = replay_scenario(args.path)
    print(report)
    return 0 if report.ok else 1


def _exposure(args: argparse.Namespace) -> int:
    from workbench.scenarios import exposure

    kwargs: dict[str, object] = {"schedule": args.schedule,
                                 "crl_interval_hours": args.crl_interval}
    if args.notice:
        kwargs["notice_hours"] = tuple(args.notice)
    if args.week:
        kwargs["week_start"] = args.week
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out} exists and is not a folder")  # before the work
    frame = exposure.exposure_frame(**kwargs)  # type: ignore[arg-type]
    print(exposure.summary(frame).to_string(index=False))
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {args.out}: {exc.strerror or exc}") from None
        frame.to_csv(args.out / "exposure.csv", index=False)
        fig = exposure.plot_exposure(frame)
        fig.savefig(args.out / "exposure.png", dpi=110, bbox_inches="tight")
        print(f"wrote {args.out}/exposure.csv, exposure.png")
    return 0

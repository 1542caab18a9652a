"""Regenerate the README's tour images in ``docs/images/`` (``make tour-images``).

``issuance-timing.png``: where the modelled time of an issuance into a phone goes (a seeded run
of the ``issuance`` scenario, :func:`workbench.plots.scenario_gantt`). The stepper screenshot,
``stepper.png``, is taken by the browser test (``tests/test_browser.py``) when
``JPKI_WORKBENCH_TOUR_DIR`` names this folder; ``make tour-images`` runs both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from workbench import plots  # noqa: E402
from workbench.scenarios import run_scenario  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with run_scenario("issuance", seed=1) as run:
        fig = plots.scenario_gantt(run.timing, title="Issuance into a phone (申請 → 発行 → 登録): "
                                   "modelled time")
        fig.savefig(OUT / "issuance-timing.png", dpi=100, bbox_inches="tight")
    print(f"wrote {OUT / 'issuance-timing.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate the recorded traces shipped in ``workbench/data/traces/``, deterministically.

How they are made is :mod:`workbench.scenarios.samples`; this is its command line.

Usage::

    python tools/make_traces.py            # rewrite the shipped traces
    python tools/make_traces.py --out DIR  # write elsewhere
    python tools/make_traces.py --check    # exit 1 if the shipped traces are stale
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from workbench.scenarios.samples import SAMPLES, shipped_traces, stale, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=shipped_traces(), help="directory to write")
    parser.add_argument(
        "--check", action="store_true", help="regenerate into a temporary directory and compare"
    )
    args = parser.parse_args(argv)
    if not args.check:
        write_all(args.out)
        print(f"wrote {', '.join(SAMPLES)} to {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_all(Path(tmp))
        bad = stale(args.out, Path(tmp))
    if bad:
        print(
            f"stale traces in {args.out}: {', '.join(bad)}; run tools/make_traces.py",
            file=sys.stderr,
        )
        return 1
    print(f"traces in {args.out} are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

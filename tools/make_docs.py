"""Regenerate the generated pages of ``docs/`` from the code they describe.

``docs/card-files.md`` is the card's file tables (:func:`workbench.card.files.markdown_table`);
``docs/service-model.md`` the smartphone service's states, events, API and scenarios
(:func:`workbench.scenarios.library.markdown`).
``--check`` exits 1 when a page is stale (the test suite runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.card.files import markdown_table
from workbench.scenarios.library import markdown as service_model

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {"card-files.md": markdown_table, "service-model.md": service_model}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, make in PAGES.items():
        text = make() + "\n"
        path = DOCS / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale generated docs: {', '.join(stale)}; run make docs", file=sys.stderr)
        return 1
    print("generated docs are up to date" if args.check else f"wrote {', '.join(PAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

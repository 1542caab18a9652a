"""Make stored notebook outputs quiet in diffs: widget model ids become zeros (nbval ignores
them anyway; see docs/testing.md 1.5)."""

from __future__ import annotations

import sys

import nbformat

WIDGET = "application/vnd.jupyter.widget-view+json"


def normalize(path: str) -> bool:
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET)
            if view and view.get("model_id") != "0" * 32:
                view["model_id"] = "0" * 32
                changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        if normalize(p):
            print(f"normalized {p}")

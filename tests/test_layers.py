"""The layers of ARCHITECTURE stay layers: who may import whom, and no import cycles.

The import graph is read with the standard library's ``ast`` from the source files, so the
check covers imports inside functions too (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` count for the layer rules but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"

#: Each layer and the layers it must never import (ARCHITECTURE, "Layers" and rules of the
#: house). The bottom modules (apdu, tlv, holder, errors, hooks, sqlitefile) import only each
#: other.
FORBIDDEN: dict[str, set[str]] = {
    "bottom": {"card", "transport", "client", "pki", "se", "timing", "analysis", "lifecycle",
               "scenarios", "widgets", "plots", "cli"},
    "card": {"pki", "client", "transport", "se", "timing", "analysis", "lifecycle", "scenarios",
             "widgets", "plots", "cli"},
    "transport": {"client", "pki", "se", "analysis", "lifecycle", "scenarios", "widgets", "plots",
                  "cli"},
    "timing": {"card", "transport", "client", "pki", "se", "analysis", "lifecycle", "scenarios",
               "widgets", "plots", "cli"},
    "client": {"pki", "se", "analysis", "lifecycle", "scenarios", "widgets", "plots", "cli"},
    "pki": {"card", "client", "transport", "se", "analysis", "lifecycle", "scenarios", "widgets",
            "plots", "cli"},
    "se": {"client", "analysis", "lifecycle", "scenarios", "widgets", "plots", "cli"},
    "analysis": {"lifecycle", "scenarios", "widgets", "plots", "cli"},
    "lifecycle": {"scenarios", "widgets", "plots", "cli"},
    "scenarios": {"widgets", "plots", "cli"},
    "widgets": {"cli"},
    "plots": {"cli", "widgets"},
    "cli": {"widgets", "plots"},
}
BOTTOM = {"apdu", "tlv", "holder", "errors", "hooks", "sqlitefile"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package root and __main__
    first = parts[1]
    if first in BOTTOM:
        return "bottom"
    return first


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, under TYPE_CHECKING) for every workbench import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for inner in ast.walk(node):
                typing_only.add(id(inner))
    for node in ast.walk(tree):
        flag = id(node) in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench"):
                    found.append((alias.name, node.lineno, flag))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("workbench"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                # `from package import submodule` depends on the submodule, not on the package
                found.append((sub if sub in modules else node.module, node.lineno, flag))
    return found


def _graph() -> dict[str, list[tuple[str, int, bool]]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


GRAPH = _graph()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_layer_imports_a_layer_above_it(module: str) -> None:
    layer = _layer(module)
    if layer is None:
        return
    bad = [
        f"{module}:{line} imports {target}"
        for target, line, _ in GRAPH[module]
        if (_layer(target) or "") in FORBIDDEN.get(layer, set())
    ]
    assert not bad, "; ".join(bad)


def test_the_named_rules_of_the_issue_hold() -> None:
    """card ↛ pki/client/transport/cli; transport ↛ client/pki/cli; pki ↛ cli/card."""
    rules = {"card": {"pki", "client", "transport", "cli"},
             "transport": {"client", "pki", "cli"},
             "pki": {"cli", "card"}}
    for module, imports in GRAPH.items():
        for target, line, _ in imports:
            assert _layer(target) not in rules.get(_layer(module) or "", set()), (
                f"{module}:{line} imports {target}")


def test_no_import_cycles() -> None:
    edges = {m: {t for t, _, typing_only in imps if not typing_only and t in GRAPH and t != m}
             for m, imps in GRAPH.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    # unless a submodule imports the package back; keep those edges, they are real cycles
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles[:5])


def test_the_graph_is_read() -> None:
    """The reader sees the imports it must judge (so the tests above cannot pass vacuously)."""
    assert any(
        t == "workbench.card.constants" for t, _, _ in GRAPH["workbench.card.files"])
    assert any(t.startswith("workbench.pki") for t, _, _ in GRAPH["workbench.lifecycle.issuance"])
    assert any(flag for imps in GRAPH.values() for _, _, flag in imps)  # TYPE_CHECKING seen

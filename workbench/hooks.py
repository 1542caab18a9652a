"""Named points inside multi-step writes, where a test may stop or kill the process.

Durability is shown, not claimed (CONVENTIONS.md): tests run a real child process, install a
hook at a named point (for example between "the retry counter was spent" and "the PIN is
compared"), let the child ``os._exit`` there, and check what the file holds afterwards. The
code under test calls :func:`reached` at each point; without an installed hook that is one
dictionary lookup. Point names are ``"<layer>:<operation>:<moment>"``, e.g.
``"card:verify:counter-spent"`` or ``"registry:revoke:event-recorded"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["install", "installed", "reached", "uninstall"]

_hooks: dict[str, Callable[[str], None]] = {}


def reached(point: str) -> None:
    """Called by the code at ``point``; runs the hook installed there, if any."""
    hook = _hooks.get(point) or _hooks.get("*")
    if hook is not None:
        hook(point)


def install(point: str, hook: Callable[[str], None]) -> None:
    """Run ``hook(point)`` whenever the code reaches ``point`` (``"*"``: every point)."""
    _hooks[point] = hook


def uninstall(point: str) -> None:
    _hooks.pop(point, None)


@contextmanager
def installed(point: str, hook: Callable[[str], None]) -> Iterator[None]:
    """:func:`install` for the duration of a ``with`` block."""
    install(point, hook)
    try:
        yield
    finally:
        uninstall(point)

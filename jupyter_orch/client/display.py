"""How client objects show themselves in a notebook: a registry of display factories by
kind ("future", "run", "progress"), filled by whoever can draw there (``jupyter_orch.kernel``
registers its ipywidgets views). The client imports no notebook code: with nothing
registered, or outside a Jupyter kernel, its objects fall back to plain text."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

Factory = Callable[..., Any]

_factories: dict[str, Factory] = {}
_lock = threading.Lock()


def register(kind: str, factory: Factory) -> None:
    """Draw objects of ``kind`` with ``factory`` from now on (replaces an earlier one):
    ``"future"``: ``factory(future)`` returns an object with ``_repr_mimebundle_``;
    ``"run"``: ``factory(handle)`` displays a workflow run in the running cell;
    ``"progress"``: ``factory(bar)`` returns a view with ``widget``, ``draw(final)``, ``show()``."""
    with _lock:
        _factories[kind] = factory


def lookup(kind: str) -> Factory | None:
    """The factory registered for ``kind``, or None (the caller falls back to text)."""
    with _lock:
        return _factories.get(kind)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets render)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def notebook_factory(kind: str) -> Factory | None:
    """The factory for ``kind`` when running in a notebook, else None."""
    return lookup(kind) if in_notebook() else None

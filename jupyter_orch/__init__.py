"""jupyter-orch: Jupyter-native orchestration of ML work on GPUs.

``jupyter_orch.connect()`` gives a client to the orchestrator the current kernel's server
runs; the server extension (``OrchApp``) is the API service and scheduler.
"""

from __future__ import annotations

import sys
from typing import Any

from ._version import __version__

__all__ = [
    "__version__",
    "connect",
    "Client",
    "Future",
    "RemoteError",
    "remote",
    "gather",
    "as_completed",
    "output",
]
_CLIENT_NAMES = frozenset(
    {
        "connect",
        "Client",
        "Future",
        "RemoteError",
        "TaskFailed",
        "TaskCancelled",
        "remote",
        "gather",
        "as_completed",
    }
)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import OrchApp

    return [{"module": "jupyter_orch", "app": OrchApp}]


def output(name: str, value: Any) -> None:
    """Record ``value`` (JSON) as output ``name`` of the running notebook: later workflow
    steps read it as ``{{ tasks.STEP.outputs.NAME }}``, the API as the task's outputs."""
    from .kernel.record import output as record

    record(name, value)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_orch``: the ``%%orch`` / ``%orch`` magics."""
    from .kernel import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    # the client is imported lazily: the server imports this package at start-up
    if name in _CLIENT_NAMES:
        from . import client

        _install_notebook_views()
        return getattr(client, name)
    raise AttributeError(name)


def _install_notebook_views() -> None:
    """Inside IPython, register the kernel's views of futures, runs and progress (live
    widgets) with the client's display registry, as ``%load_ext jupyter_orch`` does, so a
    notebook that only does ``jupyter_orch.connect()`` shows them. The client imports no
    notebook code; this package root sits above both, and a script (no IPython loaded)
    never imports the kernel package. Idempotent and cheap: ipywidgets loads when a view
    is drawn."""
    if "IPython" in sys.modules:
        from .kernel import displays

        displays.install()

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
    "report",
    "checkpoint",
    "should_preempt",
    "uniform",
    "loguniform",
    "randint",
    "quniform",
    "choice",
]
_SPACE_NAMES = frozenset({"uniform", "loguniform", "randint", "quniform", "choice"})
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


def report(step: int | None = None, group: str | None = None, **metrics: Any) -> None:
    """Record metrics of the running task: ``report(step=10, group="validation", loss=0.3,
    acc=0.9)``. Numbers only (a NaN or an infinity is a gap); ``group`` defaults to
    ``training``; a bad report raises ``SpecError`` naming the field. The server keeps them
    per attempt, apart from the log. Outside a task a report is checked, then dropped with a
    warning (once per process)."""
    global _report
    if _report is None:
        from .metrics_report import report as send

        _report = send
    _report(step, group, **metrics)


_report: Any = None


def should_preempt() -> bool:
    """Inside a task: True once it is asked to stop (preempted for a task of higher
    priority, cancelled, or its node going away). Save a checkpoint
    (``jupyter_orch.checkpoint.save``) and return: the task is queued again and its next
    attempt resumes from it (``restore_latest()``). From the first call on, the stop no
    longer interrupts the task with an exception; it has the server's grace period
    (``c.OrchApp.preemption_grace``) before it is killed. Always False outside a task."""
    lifetime = sys.modules.get("jupyter_orch.worker.lifetime")  # loaded in every executor
    return bool(lifetime is not None and lifetime.should_preempt())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_orch``: the ``%%orch`` / ``%orch`` magics."""
    from .kernel import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    # the client is imported lazily: the server imports this package at start-up
    if name == "checkpoint":  # jupyter_orch.checkpoint.save(...) without importing it first
        import importlib

        return importlib.import_module(".checkpoint", __name__)
    if name in _SPACE_NAMES:  # a search space's distributions: client.search(fn, {"lr": loguniform(...)})
        from .core import space

        return getattr(space, name)
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

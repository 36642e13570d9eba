"""Human output for the CLI: the renderers live in :mod:`jupyter_orch.client.render` (the
``%orch`` magics use them too); every name stays importable from here."""

from __future__ import annotations

from ..client.render import (
    STATE_STYLE,
    _running_for,
    ago,
    cluster_table,
    console,
    duration,
    resources,
    run_tree,
    runs_table,
    schedules_table,
    size,
    state,
    step_line,
    steps_table,
    task_detail,
    tasks_table,
    when,
    workers_table,
)

__all__ = [
    "STATE_STYLE",
    "size",
    "duration",
    "ago",
    "resources",
    "state",
    "tasks_table",
    "task_detail",
    "workers_table",
    "cluster_table",
    "when",
    "_running_for",
    "runs_table",
    "step_line",
    "run_tree",
    "steps_table",
    "schedules_table",
    "console",
]

"""Where a task's checkpoints live: the one rule the server (which tells each task, and
lists them) and the task's own ``jupyter_orch.checkpoint`` (which writes them) share."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

ENV = "JUPYTER_ORCH_CHECKPOINTS"
"""The environment variable a task finds its checkpoint directory (or URL) in."""

MANIFEST = "_checkpoint.json"
"""Written last into each checkpoint's directory: without it the checkpoint was cut short."""


def task_dir(root: str, task_id: str, env: Mapping[str, str] | None = None, *, step: bool = False) -> str:
    """``<root>/<task id>``, or for a workflow ``step`` ``$ORCH_RUN_DIR/checkpoints/<task id>``
    (kept with the run's other files). Always ends in the task's own id: no task is given,
    or lists, another's checkpoints."""
    run_dir = (env or {}).get("ORCH_RUN_DIR") if step else None
    base = posixpath.join(run_dir, "checkpoints") if run_dir else root
    return posixpath.join(base.rstrip("/") or "/", task_id)

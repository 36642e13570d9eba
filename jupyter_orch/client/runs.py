"""Workflow runs from the client: ``client.submit_workflow(path, params=...)`` sends the file
and its notebooks and returns a :class:`RunHandle` to wait on, inspect, cancel or retry the
run; in a notebook the handle shows as the "run" view of :mod:`.display` (the kernel side
registers a live DAG)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import OrchError

if TYPE_CHECKING:
    from .http import HttpApi

WAIT_SLICE = 30.0  # seconds per long poll


class WorkflowFailed(OrchError):
    """The run ended failed or cancelled; ``run`` is its status, steps included."""

    code = "workflow_failed"

    def __init__(self, run: dict[str, Any]) -> None:
        bad = [s for s in run.get("steps") or [] if s.get("state") in ("failed", "cancelled")]
        detail = "; ".join(f"{s['name']} {s['state']}: {s.get('error') or ''}".rstrip(": ") for s in bad[:3])
        super().__init__(
            f"workflow run {run['id']} ({run['name']}) {run['state']}" + (f": {detail}" if detail else "")
        )
        self.run = run


def request_for(workflow: str | Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The POST /workflows body: a file is checked here first (every problem with its line
    and column) and sent with its notebooks; a mapping is sent as the document."""
    from ..workflows.bundle import bundle

    if isinstance(workflow, Mapping):
        return {
            "workflow": dict(workflow),
            "params": dict(params or {}),
            "files": notebooks_here(workflow, os.getcwd()),
            "base_dir": os.getcwd(),  # a personal server may read the rest there; a shared one does not
        }
    return bundle(os.fspath(workflow), params)


def notebooks_here(workflow: Mapping[str, Any], base_dir: str) -> dict[str, Any]:
    """The notebooks a workflow given as a mapping names (plain paths, relative to
    ``base_dir``), read here: the server and the workers need not see this disk."""
    files: dict[str, Any] = {}
    tasks = workflow.get("tasks")
    for task in tasks if isinstance(tasks, list) else []:
        path = task.get("notebook") if isinstance(task, Mapping) else None
        if isinstance(path, str) and "{{" not in path and path not in files:
            full = os.path.join(base_dir, path)
            if os.path.isfile(full):
                with open(full, encoding="utf-8") as f:
                    files[path] = json.load(f)
    return files


class RunHandle:
    """One workflow run. ``status()`` asks the server; ``wait()`` blocks until the run ends."""

    def __init__(self, api: HttpApi, view: dict[str, Any]) -> None:
        self._api = api
        self.id: str = view["id"]
        self.name: str = view.get("name", "")
        self._view = view

    def __repr__(self) -> str:
        return f"<RunHandle {self.name} {self.id} {self._view.get('state')}>"

    @property
    def state(self) -> str:
        return str(self._view.get("state"))

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self._view.get("steps") or [])

    def status(self) -> dict[str, Any]:
        """The run with each step's state, reason, error and times."""
        self._view = self._api.get(f"/workflows/{self.id}")
        return self._view

    def wait(self, timeout: float | None = None, *, raise_on_failure: bool = False) -> dict[str, Any]:
        """Block until the run has ended (or ``timeout`` seconds passed); its final status.
        ``raise_on_failure``: raise :class:`WorkflowFailed` unless it succeeded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE if deadline is None else max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))
            self._view = self._api.get(f"/workflows/{self.id}/wait", timeout=f"{left:.3f}")
            if self._view["state"] != "running" or (deadline is not None and time.monotonic() >= deadline):
                break
        if raise_on_failure and self._view["state"] not in ("running", "succeeded"):
            raise WorkflowFailed(self._view)
        return self._view

    def step(self, name: str) -> dict[str, Any]:
        for s in self.steps or self.status()["steps"]:
            if s["name"] == name:
                return s
        raise KeyError(f"run {self.id} has no step {name!r}")

    def outputs(self, name: str) -> dict[str, Any]:
        """What a notebook step recorded with ``jupyter_orch.output``."""
        return dict(self._api.get(f"/tasks/{self.step(name)['task_id']}/outputs")["outputs"])

    def cancel(self) -> dict[str, Any]:
        self._view = self._api.post(f"/workflows/{self.id}/cancel")
        return self._view

    def retry(self) -> RunHandle:
        """Run again what failed or never ran (the same run, resumed)."""
        self._view = self._api.post(f"/workflows/{self.id}/retry")
        return self

    def files(self) -> list[dict[str, Any]]:
        """The files in the run's directory (``ORCH_RUN_DIR``)."""
        return list(self._api.get(f"/workflows/{self.id}/files")["files"])

    def read_file(self, path: str) -> bytes:
        data, _ = self._api.request("GET", f"/workflows/{self.id}/files/{path}", raw=True)
        return bytes(data)

    def _ipython_display_(self) -> None:
        """In a notebook, the registered "run" view (the kernel's live DAG); else text."""
        from .display import lookup

        factory = lookup("run")
        if factory is None:
            print(repr(self))
        else:
            factory(self)

    def _repr_json_(self) -> Any:
        return json.loads(json.dumps(self._view))

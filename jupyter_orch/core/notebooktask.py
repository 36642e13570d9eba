"""A notebook task as every submitter builds it (the client's ``run_notebook``, the CLI's
``submit-notebook``, the server's "Run as job"): the spec fields every kind of task shares,
and the notebook payload the worker's runner reads. Pure: the caller reads the notebook."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import SpecError
from .ids import new_id


def task_fields(
    cpus: float,
    memory: str | int | None,
    gpus: int,
    gpu_type: str | None,
    labels: Mapping[str, str] | None,
    image: str | None,
    priority: int,
    retries: int,
    retry_backoff: float | None,
    timeout: float | None,
    env: Mapping[str, str] | None,
    *,
    preemptible: bool = False,
) -> dict[str, Any]:
    """The spec fields every kind of task shares, from ``submit``'s keyword options."""
    if isinstance(gpus, bool) or not isinstance(gpus, int):
        raise SpecError(f"gpus must be a whole number, not {gpus!r}", field="resources.gpus")
    resources: dict[str, Any] = {"cpus": cpus, "gpus": gpus}
    if memory is not None:
        resources["memory"] = memory
    if gpu_type:
        resources["gpu_type"] = gpu_type
    if labels:
        resources["labels"] = dict(labels)
    return {
        "resources": resources,
        "image": image,
        "priority": priority,
        "retries": retries,
        "retry_backoff": retry_backoff,
        "timeout": timeout,
        "env": dict(env or {}),
        "preemptible": preemptible,
    }


def notebook_payload(
    notebook: Mapping[str, Any], parameters: Mapping[str, Any] | None, kernel: str | None, name: str
) -> bytes:
    """The notebook and its run's settings, as the worker's runner reads them."""
    try:
        body = json.dumps(
            {"notebook": notebook, "parameters": dict(parameters or {}), "kernel": kernel, "name": name}
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"notebook parameters must be JSON values: {exc}", field="parameters") from None
    return body.encode()


def notebook_spec(
    notebook_path: str, name: str, parameters: Mapping[str, Any] | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A notebook task's spec (``fields`` from :func:`task_fields`); ``notebook_path`` is
    where it was read, kept in the metadata the sidebar and ``jupyter orch status`` show."""
    return {
        "id": new_id(),
        "kind": "notebook",
        "name": name,
        **fields,
        "metadata": {"notebook": notebook_path, "parameters": dict(parameters or {})},
    }

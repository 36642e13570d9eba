"""A workflow run request turned into a :class:`~jupyter_orch.core.runs.RunPlan`: the file's
text checked (every problem with its line and column; nothing runs when there is one),
params typed, the notebooks taken from the request (the client sends them: workers and the
server need not share its disk) or, on the server's machine, from ``base_dir``.

The request (``POST /workflows`` and a schedule's stored copy)::

    {"source": "<the file's text>", "filename": "pipeline.yaml", "params": {"lr": 0.1},
     "files": {"prepare.ipynb": {...notebook JSON...}}, "base_dir": "/home/me/project"}
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import SpecError
from ..core.ids import new_id
from ..core.params import apply_params
from ..core.runs import RunPlan, plan_run
from ..core.templates import TEMPLATE, render
from ..core.workflow import build
from . import loader

MAX_FILES = 1000


def plan_request(
    body: Any, *, owner: str, prepare_dir: Callable[[str], str], schedule_id: str | None = None
) -> RunPlan:
    """The run a request asks for; ``prepare_dir(run_id)`` makes the run's directory and
    returns what its steps see as ``ORCH_RUN_DIR``."""
    if not isinstance(body, Mapping):
        raise SpecError("a workflow run request is a JSON object with the file's text as source")
    filename = body.get("filename") or "<workflow>"
    if not isinstance(filename, str):
        raise SpecError("filename must be a string", field="filename")
    source = body.get("source")
    if source is None and isinstance(body.get("workflow"), Mapping):
        # a document sent as JSON: lines of that (characters as they are: YAML refuses the
        # surrogate pairs json.dumps would write for an emoji)
        source = json.dumps(body["workflow"], indent=1, ensure_ascii=False)
    if not isinstance(source, str) or not source.strip():
        raise SpecError("source must be the workflow file's text (YAML or JSON)", field="source")
    files = body.get("files") or {}
    if not isinstance(files, Mapping) or len(files) > MAX_FILES:
        raise SpecError(f"files must map at most {MAX_FILES} notebook paths to notebooks", field="files")
    base_dir = body.get("base_dir")
    if base_dir is not None and not isinstance(base_dir, str):
        raise SpecError("base_dir must be a directory path", field="base_dir")
    params = body.get("params") or {}
    if not isinstance(params, Mapping):
        raise SpecError("params must be an object of param names to values", field="params")

    def on_disk(path: str) -> str | None:
        full = os.path.join(base_dir, path) if base_dir else None
        return full if full and os.path.isfile(full) else None

    def exists(path: str) -> bool:
        return path in files or on_disk(path) is not None

    doc = loader.parse(source, filename)
    problems = loader.problems_of(doc, notebook_exists=exists)
    if problems:
        raise loader.WorkflowFileInvalid(filename, problems)
    workflow = build(doc.data, exists, checked=True)
    values = apply_params(workflow.params, params)
    notebooks: dict[str, Any] = {}
    for step in workflow.steps:
        if step.kind != "notebook" or step.target in notebooks:
            continue
        path = step.target
        if TEMPLATE.search(path):
            path = str(render(path, {"params": values}, f"tasks.{step.name}.notebook"))
        notebooks[step.target] = _notebook(path, files, on_disk(path))
    run_id = new_id()
    return plan_run(
        workflow,
        values,
        owner=owner,
        run_dir=prepare_dir(run_id),
        notebooks=notebooks,
        source=filename,
        sys_path=[base_dir] if base_dir else [],
        run_id=run_id,
        now=time.time(),
        schedule_id=schedule_id,
    )


def _notebook(path: str, files: Mapping[str, Any], disk_path: str | None) -> Any:
    content = files.get(path)
    if content is None and disk_path is not None:
        with open(disk_path, encoding="utf-8") as f:
            content = f.read()
    if content is None:
        raise SpecError(f"notebook {path} was not sent with the workflow", field=f"files.{path}")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError as exc:
            raise SpecError(f"notebook {path} is not valid JSON: {exc}", field=f"files.{path}") from None
    if not isinstance(content, Mapping) or not isinstance(content.get("cells"), list):
        raise SpecError(f"notebook {path} is not a notebook (no cells)", field=f"files.{path}")
    return content

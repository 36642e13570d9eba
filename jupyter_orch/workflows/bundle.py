"""The client's side of a workflow run request: the file checked where it is (every problem
with its line and column, before anything is sent) and sent with the notebooks it names,
so neither the server nor the workers need to see the user's disk."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..core.params import apply_params
from ..core.templates import TEMPLATE, render
from . import loader


def bundle(path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The request for the workflow file at ``path`` (client side): the file checked first
    (``WorkflowFileInvalid`` lists every problem), its notebooks read and attached."""
    workflow, doc = loader.load(path)
    base_dir = os.path.dirname(os.path.abspath(path))
    values = apply_params(workflow.params, params)
    files: dict[str, Any] = {}
    for step in workflow.steps:
        if step.kind == "notebook":
            target = step.target
            if TEMPLATE.search(target):
                target = str(render(target, {"params": values}, f"tasks.{step.name}.notebook"))
            full = os.path.join(base_dir, target)
            if target not in files and os.path.isfile(full):
                with open(full, encoding="utf-8") as f:
                    files[target] = json.load(f)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return {
        "source": source,
        "filename": os.path.basename(path),
        "params": dict(params or {}),
        "files": files,
        "base_dir": base_dir,
    }

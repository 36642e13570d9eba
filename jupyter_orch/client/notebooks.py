"""Notebook tasks from the client: ``client.run_notebook(path, parameters=...)`` sends the
notebook itself (workers need not share the kernel's disk) with its parameters, and the
future's result is a :class:`NotebookResult`: the executed notebook and what it recorded
with ``jupyter_orch.output``. The result is JSON, never unpickled."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ..core.errors import SpecError
from ..core.notebooktask import notebook_payload
from .futures import TaskFailed


@dataclass
class NotebookResult:
    notebook: Any  # an nbformat NotebookNode
    outputs: dict[str, Any]

    def __repr__(self) -> str:
        cells = len(self.notebook.get("cells", []))
        return f"<jupyter_orch.NotebookResult {cells} cells, outputs {self.outputs!r}>"

    def save(self, path: str) -> str:
        import nbformat

        nbformat.write(self.notebook, path)
        return path


class NotebookFailed(TaskFailed):
    """A cell of the notebook raised; ``notebook`` is the run up to that cell (or None)."""

    notebook: Any = None


def param_value(text: str) -> Any:
    """A parameter given as text (``-p lr=0.1``): a YAML value (0.1, 3, true, [1, 2]), else
    the text itself."""
    import yaml

    if not text.strip():
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def read_result(blob: bytes) -> NotebookResult:
    import nbformat

    data = json.loads(bytes(blob))
    return NotebookResult(nbformat.from_dict(data["notebook"]), dict(data.get("outputs") or {}))


def payload(path: str, parameters: dict[str, Any] | None, kernel: str | None) -> bytes:
    """The notebook and its run's settings, as the worker's runner reads them."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise SpecError(f"no notebook at {path}", field="path") from None
    except Exception as exc:  # not JSON, not a notebook
        raise SpecError(f"{path} is not a readable notebook: {exc}", field="path") from None
    return notebook_payload(nb, parameters, kernel, os.path.basename(path))

"""Real notebooks, executed by nbclient in a real ipykernel whose environment points at a
real server (as a kernel of JupyterLab with the extension would be)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


class Notebook:
    """Cells run one by one in one kernel; ``nb`` holds the outputs as a saved notebook would."""

    def __init__(
        self, orch: Any, workdir: Path, allow_errors: bool = False, kernel_args: list[str] | None = None
    ) -> None:
        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(
            self.nb,
            timeout=120,
            kernel_name="python3",
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(workdir)}},
            extra_arguments=list(kernel_args or []),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
        env["MPLBACKEND"] = "agg"
        if orch is not None:  # None: a kernel that knows of no server
            env.update(JUPYTER_ORCH_URL=orch.url, JUPYTER_ORCH_TOKEN=orch.token)
        self._env = env
        self._ctx: Any = None

    def __enter__(self) -> Notebook:
        self._ctx = self.client.setup_kernel(env=self._env)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)

    def run(self, source: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell


def text(cell: Any, name: str = "stdout") -> str:
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == name)


def result(cell: Any) -> dict[str, Any]:
    found = [o for o in cell.outputs if o["output_type"] == "execute_result"]
    assert len(found) == 1, cell.outputs
    return found[0]["data"]


def error(cell: Any) -> dict[str, Any]:
    found = [o for o in cell.outputs if o["output_type"] == "error"]
    assert len(found) == 1, cell.outputs
    return found[0]


def widget(notebook: Notebook, data: dict[str, Any]) -> dict[str, Any]:
    """The state of the widget a displayed output shows."""
    return dict(notebook.client.widget_state[data["application/vnd.jupyter.widget-view+json"]["model_id"]])


def children(notebook: Notebook, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The states of a box widget's children (``IPY_MODEL_<id>`` references)."""
    return [dict(notebook.client.widget_state[ref.removeprefix("IPY_MODEL_")]) for ref in state["children"]]


def status_line(notebook: Notebook, data: dict[str, Any]) -> str:
    """The HTML of a displayed task view's status line (the first child of its box)."""
    return str(children(notebook, widget(notebook, data))[0]["value"])

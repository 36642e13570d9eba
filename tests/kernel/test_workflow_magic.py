"""``%orch workflow FILE``, in a real notebook on a real server: the run shown as a live DAG
that ends with each step's state, the handle bound, bad files named line by line."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest

from jupyter_orch.workflows.loader import WorkflowFileInvalid, load

from support.notebook import children, error, text, widget

WIDGET = "application/vnd.jupyter.widget-view+json"

FLOW = """\
name: demo
params: {word: hi}
tasks:
  - name: prep
    shell: 'true'
  - name: train
    depends: [prep]
    shell: exit 3
  - name: report
    depends: [train]
    shell: 'true'
  - name: side
    depends: [prep]
    shell: echo {{ params.word }}
"""


def said(cell):
    return text(cell, "stderr") + "".join(
        o.get("evalue", "") for o in cell.outputs if o["output_type"] == "error"
    )


def views(notebook, cell):
    """The widget views the cell displayed: their DAG's HTML (the first child of the view's
    box) as the notebook last saw it."""
    shown = [o["data"] for o in cell.outputs if WIDGET in o.get("data", {})]
    return [children(notebook, widget(notebook, data))[0]["value"] for data in shown]


def states(page):
    return dict(re.findall(r'<g class="orch-step" data-step="([^"]+)" data-state="([^"]+)"', page))


def test_a_workflow_runs_shown_as_a_live_dag_and_binds_its_handle(notebook, tmp_path: Path):
    flow = tmp_path / "demo.yaml"
    flow.write_text(FLOW)
    cell = notebook.run(f"r = %orch workflow {flow} -p word hey --wait")
    [page] = views(notebook, cell)
    assert states(page) == {
        "prep": "succeeded",
        "train": "failed",
        "report": "upstream_failed",
        "side": "succeeded",
    }
    assert "demo" in page and "4 of 4 steps done (1 failed, 1 upstream failed)" in page
    failures = re.search(r'<table class="orch-errors">.*</table>', page).group(0)
    assert 'data-step="train"' in failures and "report" not in failures  # the failure itself, once
    check = notebook.run("print(type(r).__name__, r.state, r.status()['params'])")
    assert text(check) == "RunHandle failed {'word': 'hey'}\n"

    # as the cell's value: shown once (not again as the returned handle), and bound to _
    cell = notebook.run(f"%orch workflow {flow} --wait")
    [page] = views(notebook, cell)
    assert states(page)["side"] == "succeeded"
    again = notebook.run("print(_.state, _.id != r.id)\n_")
    assert text(again) == "failed True\n"
    assert len(views(notebook, again)) == 1  # a handle shown in a later cell: a view of its own


def test_an_invalid_file_shows_every_problem_with_its_line_and_column(notebook, tmp_path: Path):
    flow = tmp_path / "bad.yaml"
    flow.write_text(
        "name: bad\ntasks:\n  - name: a\n    shell: 'true'\n    depends: [nope]\n  - name: b\n    shel: echo\n"
    )
    with pytest.raises(WorkflowFileInvalid) as invalid:
        load(str(flow))
    assert len(invalid.value.details) >= 2
    cell = notebook.run(f"%orch workflow {flow}")
    shown = said(cell)
    assert f"{flow} is not a valid workflow" in shown
    for detail in invalid.value.details:
        assert detail in shown
    assert f"{flow}:5:" in shown and f"{flow}:7:" in shown  # depends: [nope], shel:
    assert "Traceback" not in shown and not [o for o in cell.outputs if o.get("traceback")]
    assert not views(notebook, cell)


def test_usage_and_a_missing_file(notebook, tmp_path: Path):
    assert "usage: %orch workflow FILE" in said(notebook.run("%orch workflow"))
    assert "usage: %orch workflow FILE" in said(notebook.run("%orch workflow f.yaml -p onlyname"))
    assert f"no workflow file at {tmp_path / 'none.yaml'}" in said(
        notebook.run(f"%orch workflow {tmp_path / 'none.yaml'}")
    )


def test_interrupting_the_wait_cancels_the_run(notebook, orch, tmp_path: Path):
    flow = tmp_path / "slow.yaml"
    flow.write_text(
        "name: slow\ntasks:\n  - name: nap\n    shell: sleep 120\n  - name: after\n    depends: [nap]\n    shell: 'true'\n"
    )
    pid = int(text(notebook.run("import os; print(os.getpid())")))

    def running(event, _):
        task = event.get("task") or {}
        step = (task.get("metadata") or {}).get("step") or {}
        return step.get("workflow") == "slow" and step.get("name") == "nap" and task["state"] == "running"

    with orch.events("task") as events:

        def interrupt_once_running():
            events.wait(running)
            os.kill(pid, signal.SIGINT)  # what the notebook's stop button does

        waiter = threading.Thread(target=interrupt_once_running, daemon=True)
        waiter.start()
        cell = notebook.run(f"r = %orch workflow {flow} --wait")
        waiter.join(60)
    assert error(cell)["ename"] == "KeyboardInterrupt"
    stderr = text(cell, "stderr")
    assert "interrupted; workflow run" in stderr and "cancelled" in stderr
    run_id = stderr.split("workflow run ")[1].split()[0]
    run = orch.api().get(f"/workflows/{run_id}/wait", timeout=30)
    assert run["state"] == "cancelled"
    assert {s["name"]: s["state"] for s in run["steps"]}["nap"] == "cancelled"

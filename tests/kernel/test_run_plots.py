"""The workflow view's metric plots, on a real server with a real workflow: a function step
that reports is drawn live under the DAG (its plot titled by the step, its points the step's),
a step that reports nothing adds no plot, another task's points stay out, and a run that had
ended before it was shown still shows its curves."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import cloudpickle
import ipywidgets

import jupyter_orch
from jupyter_orch.kernel import dag

from support.notebook import children, text, widget

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

WIDGET = "application/vnd.jupyter.widget-view+json"

STEPS = """
import os
import time

import jupyter_orch


def fit(n=4, gate=""):
    for step in range(n):
        jupyter_orch.report(step=step, loss=1.0 / (step + 1))
    while gate and not os.path.exists(gate):  # the test lets it go once the plot is drawn
        time.sleep(0.05)
    jupyter_orch.report(step=n, loss=0.0, group="validation")
    return n


def quiet():
    return "reported nothing"
"""

FLOW = """\
name: plotted
tasks:
  - name: train
    function: orch_dag_plotsteps:fit
    parameters: {{n: 4, gate: "{gate}"}}
  - name: tidy
    depends: [train]
    function: orch_dag_plotsteps:quiet
"""

TRAIN = {("loss", "training", ""): ([0.0, 1.0, 2.0, 3.0], [1.0, 0.5, 1 / 3, 0.25])}
VALIDATION = {("loss", "validation", ""): ([4.0], [0.0])}


def other(n):
    """A task outside the run that reports too."""
    for step in range(n):
        jupyter_orch.report(step=step, loss=99.0)
    return n


def workflow(tmp_path: Path, gate: str = "") -> Path:
    (tmp_path / "orch_dag_plotsteps.py").write_text(STEPS)
    flow = tmp_path / "plotted.yaml"
    flow.write_text(FLOW.format(gate=gate))
    return flow


def drawn(view: dag.RunView) -> threading.Event:
    """An event set once an image is under the DAG."""
    seen = threading.Event()

    def check(change):
        if any(isinstance(w, ipywidgets.Image) for w in change["new"]):
            seen.set()

    view.box.observe(check, names="children")
    if len(view.box.children) > 1:
        seen.set()
    return seen


def assert_plotted(view: dag.RunView, handle) -> None:
    """Only the reporting step has a plot, titled by the step, with exactly its points."""
    train = handle.step("train")["task_id"]
    assert set(view.plots.plots) == {train}
    plot = view.plots.plots[train]
    assert plot.title == "train" and plot.data() == {**TRAIN, **VALIDATION}
    assert plot.draws >= 1 and plot.due_in() is None  # the last points are drawn
    [dag_html, image] = view.box.children
    assert dag_html is view.widget and 'data-step="tidy" data-state="succeeded"' in dag_html.value
    assert isinstance(image, ipywidgets.Image) and image.format == "png"
    assert bytes(image.value).startswith(b"\x89PNG") and len(image.value) > 1000
    assert view.plots.images() == {"train": image}


def test_a_reporting_step_is_drawn_live_under_the_dag_and_a_quiet_one_is_not(orch, tmp_path: Path):
    gate = tmp_path / "orch_dag_gate"
    client = orch.client()
    handle = client.submit_workflow(workflow(tmp_path, str(gate)))
    view = dag.RunView(handle)
    try:
        assert drawn(view).wait(60)  # while the step still waits at its gate
        assert handle.status()["state"] == "running"
        train = handle.step("train")["task_id"]
        assert view.plots.plots[train].data() == TRAIN
        # another task reporting meanwhile, on the same events stream, is not this run's
        assert client.submit(other, 3).result(60) == 3
        gate.touch()
        assert handle.wait(60)["state"] == "succeeded"
        assert view.join(60)
        assert view.followed_by == "events"
        assert view.plots.live >= 1  # the point reported after the gate came as an event
        assert_plotted(view, handle)
    finally:
        gate.touch()
        view.close()


def test_an_ended_runs_view_reads_its_curves_once(orch, tmp_path: Path):
    handle = orch.client().submit_workflow(workflow(tmp_path))
    assert handle.wait(60)["state"] == "succeeded"
    view = dag.RunView(handle)
    assert view.join(30)
    assert view.followed_by == "" and view.plots.live == 0  # nothing to follow: read once
    assert_plotted(view, handle)
    view.close()
    assert view.box.comm is None and view.box.children[1].comm is None


def test_the_workflow_magic_shows_the_dag_and_the_plot_in_one_box(notebook, tmp_path: Path):
    flow = workflow(tmp_path)
    cell = notebook.run(f"r = %orch workflow {flow} --wait\nprint(r.state)")
    assert text(cell) == "succeeded\n"
    [shown] = [o["data"] for o in cell.outputs if WIDGET in o.get("data", {})]
    box = widget(notebook, shown)
    assert box["_model_name"] == "VBoxModel"
    dag_html, image = children(notebook, box)  # as the notebook last saw them: the final curves
    assert 'data-step="train" data-state="succeeded"' in dag_html["value"]
    assert image["_model_name"] == "ImageModel" and image["format"] == "png"


# ---------------------------------------------------------------------------- the plots alone
class Records:
    """``GET /tasks/{id}/metrics?format=records`` over fixed records (pages of 2)."""

    def __init__(self, records):
        self.records = records
        self.asked = []

    def get(self, path, *, format, limit, after=None):
        self.asked.append((path, after))
        task_id = path.split("/")[2]
        since = tuple(map(int, after.split(":"))) if after else (0, -1)
        rows = [r for r in self.records.get(task_id, []) if (r["attempt"], r["offset"]) > since]
        page = rows[:2]
        more = len(rows) > 2
        return {"records": page, "next": f"{page[-1]['attempt']}:{page[-1]['offset']}" if more else None}


def event(task_id, offset, *points):
    """A ``metrics`` event of attempt 1: ``points`` as ``(step, acc)``."""
    rows = [[1.0, step, "training", {"acc": acc}] for step, acc in points]
    return {"type": "metrics", "task_id": task_id, "attempt": 1, "offset": offset, "points": rows}


def rec(attempt, offset, step, **values):
    return {"attempt": attempt, "offset": offset, "ts": 1.0, "step": step, "group": "training", **values}


def test_points_read_back_and_live_are_drawn_once_in_step_order_and_many_steps_are_named():
    from jupyter_orch.kernel import runplots

    api = Records({"t1": [rec(1, i, i, acc=i / 10) for i in range(5)]})
    shown = []
    plots = runplots.RunPlots(api, shown.append)
    steps = [{"name": f"s{i}", "task_id": f"t{i}", "started_at": 1.0} for i in range(runplots.MAX_PLOTS + 3)]
    plots.steps(steps)
    # a live event for the second step first, then the first step read back (pages of 2)
    assert plots.on_event(event("t2", 0, (0, 0.5)))
    assert not plots.on_event(event("elsewhere", 0, (0, 0.5)))
    plots.catch_up(runplots.started(steps[:2]))
    assert [p for p, _ in api.asked] == [
        "/tasks/t0/metrics",
        "/tasks/t1/metrics",
        "/tasks/t1/metrics",
        "/tasks/t1/metrics",
    ]
    # the same points again as events and as a second read: drawn once
    plots.on_event(event("t1", 4, (4, 9.9), (5, 0.6)))
    api.records["t1"].append(rec(1, 5, 5, acc=0.6))  # stored, and read once more
    plots.catch_up(steps[1:2])
    assert api.asked[-1] == ("/tasks/t1/metrics", "1:4")  # only what came after the last read
    assert plots.plots["t1"].data() == {
        ("acc", "training", ""): ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.6])
    }
    assert "t0" not in plots.plots  # reported nothing: no plot
    plots.finish()
    assert list(plots.images()) == ["s1", "s2"]  # in the run's order, not the order drawn
    assert shown[-1] == list(plots.images().values())
    # past MAX_PLOTS, the other steps that report are named, not drawn
    for s in steps[3:]:
        plots.on_event(event(s["task_id"], 0, (0, 1.0)))
    assert len(plots.plots) == runplots.MAX_PLOTS and len(plots.skipped) == 2
    assert all(p.max_rate == runplots.RATE / runplots.MAX_PLOTS for p in plots.plots.values())
    note = shown[-1][-1]
    assert (
        isinstance(note, ipywidgets.HTML)
        and "2 more step(s) reported metrics, not drawn here: s13, s14" in note.value
    )
    plots.close()

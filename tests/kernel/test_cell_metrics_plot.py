"""The live learning curve in the cell: a ``%%orch run`` cell that reports metrics shows one
plot (updated in place, its last state holding every point); a displayed future does too,
under its status line; the points are the task's, read back through the API."""

from __future__ import annotations

import base64
import io

from matplotlib.image import imread

from support.notebook import result, text, widget

TRAIN = """%%orch run
import jupyter_orch
for step in range(40):
    jupyter_orch.report(step=step, loss=1 / (step + 1))
    if step % 10 == 9:
        jupyter_orch.report(step=step, group="validation", loss=1.2 / (step + 1))
print("trained")
"""


def pngs(cell) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.outputs
        if out["output_type"] == "display_data" and "image/png" in out.get("data", {})
    ]


def test_a_cell_that_reports_shows_one_live_plot(notebook, orch) -> None:
    cell = notebook.run(TRAIN)
    assert "trained" in text(cell)
    [png] = pngs(cell)  # one display, updated in place: its final state stays in the notebook
    image = imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 200
    [task] = orch.api().get("/tasks", limit=1)["tasks"]
    series = orch.api().get(f"/tasks/{task['id']}/metrics")["series"]
    assert {(s["group"], s["count"]) for s in series} == {("training", 40), ("validation", 4)}


def test_a_cell_that_reports_nothing_shows_no_plot(notebook) -> None:
    cell = notebook.run("%%orch run\nprint('no metrics')")
    assert pngs(cell) == [] and "no metrics" in text(cell)


def test_a_displayed_future_draws_its_curve_under_its_status(notebook) -> None:
    cell = notebook.run(
        "import jupyter_orch\n"
        "from jupyter_orch.kernel.widgets import TaskStatusView\n"
        "def fit(n):\n"
        "    for step in range(n):\n"
        "        jupyter_orch.report(step=step, acc=step / n)\n"
        "    return n\n"
        "view = TaskStatusView(jupyter_orch.connect().submit(fit, 30))\n"
        "view"
    )
    done = notebook.run(
        "print(view.followed.wait(60), view.future.result(60), view.plot.points)\n"
        "print([type(w).__name__ for w in view.box.children], view.image.format, len(view.image.value) > 1000)\n"
        "print('succeeded' in view.widget.value)"
    )
    assert text(done) == "True 30 30\n['HTML', 'Image'] png True\nTrue\n"
    # the box the cell displayed is the view's (the frontend syncs its children as they change)
    assert widget(notebook, result(cell))["_model_name"] == "VBoxModel"

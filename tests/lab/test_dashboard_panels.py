"""The dashboard's workflow DAG and experiments panels in a real JupyterLab, driven in Chromium:
a workflow whose last step skips two layers is drawn whole with every edge routed around the
boxes (read from the SVG's geometry in the page) and a click on a step opens its log; a grid
search whose trials report metrics (waiting on a file halfway) is overlaid live, one line per
trial, with its trials table (the best marked) and a trial's checkpoints. Every wait is on
something the page shows or on a file the test writes."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from conftest import lab_server
from playwright.sync_api import expect

from support.orchserver import OrchServer

pytestmark = pytest.mark.timeout(300)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its functions go to workers by value

LONG = 60_000  # ms: tasks on local workers, on a busy machine
SPACE = {"lr": [0.1, 0.01], "width": [8, 16]}  # a grid: 4 trials
STEPS = 5  # each trial reports loss and acc at steps 0..4
HALF = 3  # ... the first 3 before it waits for its go file


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    """conftest.py's server, with the app exposed (``window.jupyterapp``) to run commands."""
    with lab_server(
        tmp_path_factory.mktemp("dash-panels"), ["--LabApp.expose_app_in_browser=True"]
    ) as server:
        yield server


def trial(go: str, lr: float, width: int) -> float:
    """A trial: loss and acc at steps 0..2, waits for ``go``, steps 3..4, then a checkpoint."""
    import os
    import tempfile
    import time

    import jupyter_orch
    import jupyter_orch.checkpoint

    loss = lr * width
    print(f"trial lr={lr} width={width}", flush=True)
    for step in range(STEPS):
        if step == HALF:
            while not os.path.exists(go):
                time.sleep(0.05)
        value = loss * (STEPS - step)
        jupyter_orch.report(step=step, loss=value, acc=1 / (1 + value))
    model = os.path.join(tempfile.mkdtemp(), "model.txt")
    with open(model, "w") as f:
        f.write("w" * 1000)
    jupyter_orch.checkpoint.save(model, {"loss": loss, "lr": lr}, step=STEPS - 1)
    return loss


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def open_panel(ui: Any, panel: str) -> Any:
    ui.page.evaluate(f"window.jupyterapp.commands.execute('jupyter-orch:dashboard', {{panel: '{panel}'}})")
    node = ui.page.locator(f'[data-testid="orch-dash-{panel}"]')
    expect(node).to_be_visible()
    return node


# the geometry of the drawn DAG, read in the page: every edge sampled along its length (in the
# SVG's own coordinates) against every step's box, shrunk by a pixel so touching is no crossing
EDGES_THROUGH_BOXES = """svg => {
  const boxes = [...svg.querySelectorAll('[data-testid="orch-dagp-node"]')].map(g => {
    const r = g.querySelector('rect');
    const v = k => parseFloat(r.getAttribute(k));
    return { step: g.dataset.step, x: v('x'), y: v('y'), w: v('width'), h: v('height') };
  });
  const hits = [];
  const edges = [...svg.querySelectorAll('[data-testid="orch-dagp-edge"]')];
  for (const p of edges) {
    const length = p.getTotalLength();
    for (let s = 0; s <= length; s += 0.5) {
      const q = p.getPointAtLength(s);
      for (const b of boxes) {
        if (q.x > b.x + 1 && q.x < b.x + b.w - 1 && q.y > b.y + 1 && q.y < b.y + b.h - 1) {
          hits.push(`${p.dataset.from}->${p.dataset.to} through ${b.step}`);
        }
      }
    }
  }
  return { edges: edges.map(p => `${p.dataset.from}->${p.dataset.to}`).sort(), hits: [...new Set(hits)],
           boxes: boxes.length, width: svg.getBoundingClientRect().width,
           room: svg.parentElement.clientWidth };
}"""


def test_the_dag_panel_draws_the_whole_run_with_edges_around_the_steps(ui: Any) -> None:
    name = unique("ui-dag")
    source = textwrap.dedent(
        f"""
        name: {name}
        tasks:
          - name: prepare
            shell: echo prepared
          - name: train
            depends: [prepare]
            shell: echo trained-{name}
          - name: side
            depends: [prepare]
            shell: echo side
          - name: evaluate
            depends: [train]
            shell: echo evaluated
          - name: report
            depends: [evaluate, prepare]
            shell: echo reported
        """
    )
    run = ui.server.api().post("/workflows", {"source": source, "filename": f"{name}.yaml"})
    row = ui.row("workflow", run["id"])
    expect(row).to_be_visible(timeout=LONG)
    row.click()
    panel = open_panel(ui, "dag")
    expect(panel).to_have_attribute("data-run", run["id"])
    nodes = panel.locator('[data-testid="orch-dagp-node"]')
    expect(nodes).to_have_count(5)
    for step in ("prepare", "train", "side", "evaluate", "report"):
        node = nodes.and_(ui.page.locator(f'[data-step="{step}"]'))
        expect(node).to_have_attribute("data-state", "succeeded", timeout=LONG)
        expect(node.locator(".jp-OrchDagP-status")).to_contain_text("succeeded")
    expect(panel.locator('[data-testid="orch-dagp-summary"]')).to_contain_text("5/5 steps done")

    svg = panel.locator('[data-testid="orch-dagp-svg"]')
    drawn = svg.evaluate(EDGES_THROUGH_BOXES)
    assert drawn["boxes"] == 5
    assert drawn["edges"] == sorted(
        ["prepare->train", "prepare->side", "train->evaluate", "evaluate->report", "prepare->report"]
    )
    assert drawn["hits"] == [], drawn
    assert drawn["width"] <= drawn["room"] + 1  # fitted to the panel's width
    # the edge that skips two layers crosses them through gaps: straight runs across columns
    skip = panel.locator('[data-testid="orch-dagp-edge"][data-from="prepare"][data-to="report"]')
    assert len(re.findall(r"L", skip.get_attribute("d") or "")) == 2
    ui.screenshot("dashboard-dag", panel)

    # a click on a step selects its task and opens its log
    nodes.and_(ui.page.locator('[data-step="train"]')).click()
    expect(nodes.and_(ui.page.locator('[data-step="train"]'))).to_have_class(
        re.compile(r"\bjp-mod-selected\b")
    )
    lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
    expect(lines.filter(has_text=f"trained-{name}")).to_have_count(1, timeout=LONG)


def test_the_experiments_panel_overlays_a_searchs_trials_live(ui: Any) -> None:
    name = unique("ui-exp")
    go = Path(ui.server.root) / f"{name}.go"
    client = ui.server.client()
    try:
        search = client.search(
            trial, SPACE, str(go), metric="loss", scheduler="grid", max_concurrent=2, name=name
        )
        panel = open_panel(ui, "experiments")
        picker = panel.locator('[data-testid="orch-exp-search"]')
        expect(picker.locator(f'option[value="{search.id}"]')).to_have_count(1, timeout=LONG)
        picker.select_option(search.id)
        # its running trials are drawn as they report: two lines of HALF points each
        chart = panel.locator('[data-testid="orch-exp-chart"][data-metric="loss"]')
        lines = chart.locator('[data-testid="orch-exp-line"]')
        expect(lines).to_have_count(2, timeout=LONG)
        for i in range(2):
            expect(lines.nth(i)).to_have_attribute("data-points", str(HALF), timeout=LONG)
        expect(panel.locator('[data-testid="orch-exp-chart"][data-metric="acc"]')).to_have_count(1)
        expect(panel).to_have_attribute("data-live", "open")
        ui.screenshot("dashboard-experiments-running", panel)

        go.write_text("go")  # the rest of the points come live; the other trials start and end
        expect(lines).to_have_count(4, timeout=LONG)
        for i in range(4):
            expect(lines.nth(i)).to_have_attribute("data-points", str(STEPS), timeout=LONG)
        trials = panel.locator('[data-testid="orch-exp-trial"]')
        expect(trials).to_have_count(4, timeout=LONG)
        for i in range(4):
            expect(trials.nth(i)).to_have_attribute("data-state", "succeeded", timeout=LONG)
        # the trials of the search, each a line; the best trial marked in its table
        found = client.get_search(search.id)
        task_ids = sorted(t["task_id"] for t in found.trials())
        assert sorted(lines.evaluate_all("ls => ls.map(l => l.dataset.task)")) == task_ids
        best = found.best
        assert best is not None and best["params"] == {"lr": 0.01, "width": 8}
        marked = trials.and_(ui.page.locator('[data-best="true"]'))
        expect(marked).to_have_count(1)
        expect(marked).to_have_attribute("data-number", str(best["number"]))
        expect(marked).to_have_class(re.compile(r"\bjp-mod-best\b"))
        expect(panel.locator('[data-testid="orch-exp-best"]')).to_contain_text("best loss 0.08 at step 4")

        # a trial's checkpoints: step, size, metadata
        marked.click()
        section = panel.locator('[data-testid="orch-exp-checkpoints-section"]')
        expect(section).to_have_attribute("data-task", best["task_id"])
        rows = section.locator('[data-testid="orch-exp-checkpoint"]')
        expect(rows).to_have_count(1, timeout=LONG)
        expect(rows.first).to_have_attribute("data-step", str(STEPS - 1))
        expect(rows.first.locator('[data-col="size"]')).to_have_text("1000 B")
        expect(rows.first.locator('[data-col="metadata"]')).to_contain_text("loss=0.08")
        ui.screenshot("dashboard-experiments", panel)
    finally:
        go.write_text("go")


STEP_MODULE = """
import jupyter_orch

def train(lr):
    for step in range(3):
        jupyter_orch.report(step=step, val_loss=abs(lr - 0.1) * 10 / (step + 1))
    return {"lr": lr}

def use(lr):
    return {"chosen": lr}
"""


def test_a_search_step_shows_its_trials_and_opens_the_experiments_panel(ui: Any, tmp_path: Path) -> None:
    name = unique("ui-tuned")
    module = f"dagpanel_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text(STEP_MODULE)
    flow = tmp_path / f"{name}.yaml"
    flow.write_text(
        textwrap.dedent(
            f"""
            name: {name}
            tasks:
              - name: tune
                function: {module}:train
                parameters: {{lr: 0.5}}
                search:
                  space: {{lr: [0.5, 0.1, 0.01]}}
                  metric: val_loss
                  mode: min
                  scheduler: grid
                  max_concurrent: 2
              - name: use
                depends: [tune]
                function: {module}:use
                parameters: {{lr: "{{{{ tasks.tune.outputs.lr }}}}"}}
            """
        )
    )
    run = ui.server.client().submit_workflow(flow)
    row = ui.row("workflow", run.id)
    expect(row).to_be_visible(timeout=LONG)
    row.click()
    panel = open_panel(ui, "dag")
    expect(panel).to_have_attribute("data-run", run.id)
    tune = panel.locator('[data-testid="orch-dagp-node"][data-step="tune"]')
    expect(tune).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(tune.locator('[data-testid="orch-dagp-search"]')).to_have_text("3/3 trials · best 0", timeout=LONG)
    search_id = tune.get_attribute("data-search")
    assert search_id
    # its trials line leads to the experiments panel, with the search's trials overlaid
    tune.locator('[data-testid="orch-dagp-search"]').click()
    experiments = ui.page.locator('[data-testid="orch-dash-experiments"]')
    expect(experiments).to_be_visible()
    expect(experiments.locator('[data-testid="orch-exp-search"]')).to_have_value(search_id)
    lines = experiments.locator(
        '[data-testid="orch-exp-chart"][data-metric="val_loss"] [data-testid="orch-exp-line"]'
    )
    expect(lines).to_have_count(3, timeout=LONG)
    for i in range(3):
        expect(lines.nth(i)).to_have_attribute("data-points", "3")
    expect(experiments.locator('[data-testid="orch-exp-trial"][data-best="true"]')).to_have_count(1)

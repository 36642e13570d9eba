"""The PyTorch training example (examples/training/training_torch.ipynb) run as a user runs
it, cell by cell in a real kernel, against a server that allows preemption: the first run
reports its training and validation curves every epoch and keeps its last checkpoints; with
every slot training, an urgent task preempts one run, which stops at an epoch boundary and
resumes from the epoch after its checkpoint; an ASHA search over the learning rate and the
hidden size stops some trials early and names the best."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from support.notebook import Notebook, result, text
from support.orchserver import OrchServer

ROOT = Path(__file__).resolve().parents[2]


def line_after(out: str, prefix: str) -> str:
    [line] = [x for x in out.splitlines() if x.startswith(prefix)]
    return line[len(prefix) :]


@pytest.mark.timeout(600)
def test_the_torch_training_example_reports_is_preempted_resumes_and_is_searched(
    orch_factory, tmp_path: Path
) -> None:
    server: OrchServer = orch_factory(
        "server", workers=2, args=["--OrchApp.preemption=True", "--OrchApp.preemption_grace=30"]
    )
    server.start()
    server.wait_workers()
    shutil.copytree(ROOT / "examples" / "training", tmp_path / "example")
    nb = nbformat.read(tmp_path / "example" / "training_torch.ipynb", as_version=4)
    cells = []
    with Notebook(server, tmp_path / "example") as kernel:
        for cell in nb.cells:
            if cell.cell_type == "code":
                ran = kernel.run(cell.source)
                errors = [o for o in ran.outputs if o["output_type"] == "error"]
                assert not errors, errors
                cells.append(ran)
        # the first run's points, as the user reads them back
        points = json.loads(text(kernel.run("import json; print(json.dumps(first.metrics()))")))
    out = "\n".join(text(c) for c in cells)
    assert "worker slots: 2" in out
    assert "inputs (1800, 2) labels [600, 600, 600]" in out

    # the first run: its result, a point per epoch and group, its last three checkpoints
    [line] = [x for x in out.splitlines() if x.startswith("{'val_accuracy'")]  # the first run's result
    first = ast.literal_eval(line)
    assert first["epochs"] == 30 and first["val_accuracy"] > 0.9
    assert "60 points, epochs 0 to 29" in out
    for group in ("training", "validation"):
        curve = [p for p in points if p["group"] == group]
        assert [p["step"] for p in curve] == list(range(30)), curve
        assert all(p["attempt"] == 1 for p in curve)
        assert curve[-1]["loss"] < curve[0]["loss"] and curve[-1]["accuracy"] > curve[0]["accuracy"]
    assert [p for p in points if p["group"] == "validation"][-1]["accuracy"] == first["val_accuracy"]
    kept = re.findall(r"^checkpoint \S+-a1 epoch (\d+) \['model.pt'\] (\d+) bytes$", out, re.M)
    assert [int(e) for e, _ in kept] == [27, 28, 29] and all(int(size) > 0 for _, size in kept)
    table = result(cells[4])["text/plain"]  # the last epochs' losses and accuracies by group
    assert "accuracy" in table and "validation" in table and "29" in table

    # preempted at an epoch boundary, resumed from the epoch after its checkpoint
    assert "urgent result: 6" in out
    assert "nothing was preempted" not in out
    assert out.count("['preempted', 'succeeded']") == 1 and out.count("['succeeded']") == 1
    assert "preempted for task" in out and "(stopped in time)" in out
    assert out.count("'epochs': 300}") == 2  # both runs ended with their 300 epochs
    [stop] = re.findall(r"^preempted after epoch (\d+): checkpoint saved$", out, re.M)
    epoch = int(stop)
    assert epoch < 299
    assert f"resuming from the checkpoint of epoch {epoch} (attempt 1)" in out
    assert f"attempt 1: epochs 0 to {epoch}\nattempt 2: epochs {epoch + 1} to 299" in out
    resumed = re.findall(r"^checkpoint \S+ attempt 2 epoch (\d+)$", out, re.M)
    assert [int(e) for e in resumed] == [297, 298, 299]

    # the search: the best trial, the trials best first, ASHA's stops
    best = ast.literal_eval(line_after(out, "best trial: "))
    assert best["value"] > 0.95 and best["params"]["hidden"] in (8, 32, 128)
    assert 1e-3 <= best["params"]["lr"] <= 1e-1
    rows = re.findall(r"^#(\d+)\s+(\w+)\s+best accuracy ([\d.]+) at epoch (\d+) (\{.*\})$", out, re.M)
    assert len(rows) == 12 and int(rows[0][0]) == best["number"]
    assert ast.literal_eval(rows[0][4]) == best["params"]
    states = [state for _, state, *_ in rows]
    assert set(states) <= {"succeeded", "stopped"} and "stopped" in states and "succeeded" in states
    assert out.count("stopped early by ASHA") == states.count("stopped")
    html = result(cells[-2])["text/html"]  # the search shown: its trials table
    assert "search torch mlp" in html and "succeeded" in html and "best accuracy" in html
    kept = re.findall(r"^best trial's checkpoint \S+ epoch (\d+) (\{.*\})$", out, re.M)
    assert [int(e) for e, _ in kept] == [24, 25, 26]
    assert all(ast.literal_eval(m)["lr"] == best["params"]["lr"] for _, m in kept)

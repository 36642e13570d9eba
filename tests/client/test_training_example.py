"""The training example (examples/training/training.ipynb) run as a user runs it, cell by
cell in a real kernel, against a server that allows preemption: the first run reports its
curve and checkpoints; with every slot training, an urgent task preempts one run, which
resumes from its checkpoint and finishes."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from support.notebook import Notebook, text
from support.orchserver import OrchServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_training_example_is_preempted_and_resumes(orch_factory, tmp_path: Path) -> None:
    server: OrchServer = orch_factory(
        "server", workers=2, args=["--OrchApp.preemption=True", "--OrchApp.preemption_grace=30"]
    )
    server.start()
    server.wait_workers()
    shutil.copytree(ROOT / "examples" / "training", tmp_path / "example")
    nb = nbformat.read(tmp_path / "example" / "training.ipynb", as_version=4)
    said = []
    with Notebook(server, tmp_path / "example") as kernel:
        for cell in nb.cells:
            if cell.cell_type == "code":
                ran = kernel.run(cell.source)
                errors = [o for o in ran.outputs if o["output_type"] == "error"]
                assert not errors, errors
                said.append(text(ran))
    out = "\n".join(said)
    assert "worker slots: 2" in out
    [line] = [x for x in out.splitlines() if x.startswith("{'val_accuracy'")]  # the first run's result
    first = eval(line)
    assert first["epochs"] == 150 and first["val_accuracy"] > 0.9
    assert "urgent result: 6" in out
    assert "['preempted', 'succeeded']" in out and "preempted for task" in out
    assert "(stopped in time)" in out and "resuming from the checkpoint of epoch" in out
    assert "attempt 2 epoch 299" in out and "nothing was preempted" not in out

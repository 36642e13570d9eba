"""The example pipeline (examples/pipeline): a valid workflow whose notebooks, run on real
workers in dependency order with their templates filled in from upstream outputs, train
and evaluate a real scikit-learn model and write the report. (Until the engine runs
workflows itself, this test walks the steps as it will.)"""

from __future__ import annotations

from pathlib import Path

from jupyter_orch.core.templates import render
from jupyter_orch.workflows.loader import load

PIPELINE = Path(__file__).resolve().parents[2] / "examples" / "pipeline" / "pipeline.yaml"


def test_the_example_pipeline_trains_evaluates_and_reports(orch, tmp_path):
    workflow, _ = load(str(PIPELINE))
    assert [s.name for s in workflow.steps] == ["prepare", "train", "evaluate", "report"]
    client = orch.client()
    run_dir = tmp_path / "run"
    context = {"params": {"rows": 1500, "C": 0.5}, "tasks": {}, "run": {"id": "test", "dir": str(run_dir)}}
    for step in workflow.steps:
        parameters = render(dict(step.parameters), context, f"tasks.{step.name}.parameters")
        result = client.run_notebook(
            str(PIPELINE.parent / step.target), parameters, env={"ORCH_RUN_DIR": str(run_dir)}, name=step.name
        ).result(180)
        context["tasks"][step.name] = {"outputs": result.outputs}
    outputs = context["tasks"]
    assert outputs["prepare"]["outputs"]["rows"] == 1500  # "{{ params.rows }}" arrived as an int
    assert outputs["train"]["outputs"]["model_path"] == str(run_dir / "model-C0.5.pkl")
    accuracy = outputs["evaluate"]["outputs"]["accuracy"]
    assert 0.7 < accuracy <= 1.0
    report = Path(outputs["report"]["outputs"]["report_path"]).read_text()
    assert f"test accuracy {accuracy:.3f}" in report and "<table>" in report

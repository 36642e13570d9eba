"""The example pipeline (examples/pipeline) end to end: submitted as a workflow, its four
notebooks run on real workers with papermill parameters, each step's templates filled in
from what upstream notebooks recorded; a real scikit-learn model is trained and evaluated
and the report lands in the run's directory, which the API serves."""

from __future__ import annotations

from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "examples" / "pipeline" / "pipeline.yaml"


def test_the_example_pipeline_trains_evaluates_and_reports(orch):
    client = orch.client()
    run = client.submit_workflow(PIPELINE, params={"rows": 1500, "C": 0.5})
    final = run.wait(300)
    assert final["state"] == "succeeded", [(s["name"], s["state"], s.get("error")) for s in final["steps"]]
    assert [s["name"] for s in final["steps"]] == ["prepare", "train", "evaluate", "report"]
    assert all(s["notebook_url"] for s in final["steps"])  # each executed notebook is kept
    prepare = run.outputs("prepare")
    assert prepare["rows"] == 1500  # "{{ params.rows }}" arrived as an int
    train = run.outputs("train")
    assert train["model_path"] == f"{final['run_dir']}/model-C0.5.pkl"
    accuracy = run.outputs("evaluate")["accuracy"]
    assert 0.7 < accuracy <= 1.0
    report_path = Path(run.outputs("report")["report_path"])
    files = {f["path"] for f in run.files()}
    assert report_path.name in files and "model-C0.5.pkl" in files
    report = run.read_file(report_path.name).decode()
    assert f"test accuracy {accuracy:.3f}" in report and "<table>" in report


TUNED = PIPELINE.with_name("tuned.yaml")


def test_the_tuned_pipeline_searches_train_and_evaluates_the_best_trials_model(orch):
    client = orch.client()
    run = client.submit_workflow(TUNED, params={"rows": 1500})
    final = run.wait(400)
    assert final["state"] == "succeeded", [(s["name"], s["state"], s.get("error")) for s in final["steps"]]
    train_step = next(s for s in final["steps"] if s["name"] == "train")
    search = client.get_search(train_step["search_id"])
    trials = search.trials()
    assert len(trials) == 4 and all(t["state"] == "succeeded" for t in trials)
    best = search.best
    assert best is not None and best["value"] == max(t["best"] for t in trials)
    # the step's outputs are the best trial's: its C, its model, its validation accuracy
    train = run.outputs("train")
    assert train["C"] == pytest.approx(best["params"]["C"])
    assert train["val_accuracy"] == pytest.approx(best["value"])
    assert train["model_path"] == f"{final['run_dir']}/model-C{train['C']}.pkl"
    # each trial's executed notebook is kept, with its own C injected by papermill
    for trial in trials:
        notebook = orch.api().get(f"/tasks/{trial['task_id']}")
        assert notebook["notebook_url"]
    assert 0.7 < run.outputs("evaluate")["accuracy"] <= 1.0
    assert run.read_file(Path(run.outputs("report")["report_path"]).name)

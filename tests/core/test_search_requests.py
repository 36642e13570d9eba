"""A workflow step's search, pure: its block checked with the field named, its trials as
copies of the step, and what the step ends as from its ended search."""

from __future__ import annotations

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.records import SearchRow
from jupyter_orch.core.runs import plan_run
from jupyter_orch.core.search import SearchConfig, SearchState, TrialPlan
from jupyter_orch.core.searchrequests import check_step_search, step_outcome, step_trial
from jupyter_orch.core.workflow import build

BLOCK = {"space": {"lr": [0.1, 0.01]}, "metric": "loss", "scheduler": "grid"}


def workflow() -> dict:
    return {
        "name": "w",
        "tasks": [
            {"name": "a", "function": "m:a"},
            {
                "name": "tune",
                "depends": ["a"],
                "function": "m:train",
                "parameters": {"x": "{{ tasks.a.outputs.x }}", "lr": 1.0},
                "env": {"K": "v"},
                "search": BLOCK,
            },
        ],
    }


@pytest.mark.parametrize(
    ("raw", "field", "text"),
    [
        ({"space": {"lr": [1]}}, "metric", "name the metric"),
        ({"metric": "m"}, "space", "needs a space"),
        ({**BLOCK, "bogus": 1}, "bogus", "unknown search setting"),
        ({**BLOCK, "scheduler": "asha"}, "max_t", "asha needs max_t"),
        (
            {**BLOCK, "space": {"lr": {"uniform": [2, 1]}}, "scheduler": "random", "max_trials": 2},
            "space.lr",
            "",
        ),
        ({**BLOCK, "space": {"lr": {"uniform": [0, 1]}}}, "scheduler", "grid search needs a space of lists"),
    ],
)
def test_a_wrong_block_names_its_field(raw, field, text):
    with pytest.raises(SpecError) as info:
        check_step_search(raw)
    assert info.value.field == field and text in info.value.message


def test_the_step_plans_as_a_search_step_and_its_trials_copy_it_with_their_parameters():
    flow = build(workflow())
    tune = flow.step("tune")
    assert tune.search == check_step_search(BLOCK)
    plan = plan_run(flow, {}, owner="ann", run_dir="/runs/r", notebooks={}, run_id="r")
    step_spec = next(s for s in plan.specs if s.name == "tune")
    assert step_spec.metadata["step"]["search"]["config"]["metric"] == "loss"
    assert [v.get("search") for v in plan.run.steps] == [None, True]

    row = SearchRow(id="s1", name="w/tune", owner="ann")
    trial = step_trial(step_spec, row, TrialPlan(3, {"lr": 0.01}))
    assert trial.id != step_spec.id and trial.kind == "function" and trial.owner == "ann"
    assert trial.depends == step_spec.depends and trial.resources == step_spec.resources
    assert trial.env["K"] == "v" and trial.env["ORCH_RUN_DIR"] == "/runs/r"
    assert trial.env["JUPYTER_ORCH_SEARCH_ID"] == "s1" and trial.env["JUPYTER_ORCH_TRIAL"] == "3"
    assert trial.metadata["trial"] == {"search": "s1", "number": 3, "params": {"lr": 0.01}}
    step = trial.metadata["step"]
    assert "run" not in step and "search" not in step and "cache" not in step  # not a step of the run
    assert step["refs"] == step_spec.metadata["step"]["refs"] and step["name"] == "w/tune #3 lr=0.01"


def ended(*trials: tuple[str, list[float]], state: str = "succeeded", error: str | None = None):
    """A search over ``lr`` whose trial ``i`` reported the values and ended as said."""
    config = SearchConfig(metric="loss", scheduler="random", max_trials=len(trials))
    search = SearchState(config, {"lr": {"uniform": [0, 1]}})
    for plan, (ending, values) in zip(search.next_trials(0), trials, strict=True):
        search.started(plan.number, f"t{plan.number}")
        points = [[0.0, i, None, {"loss": v}] for i, v in enumerate(values)]
        search.on_points(f"t{plan.number}", enumerate(points))
        search.ended(f"t{plan.number}", ending)
    row = SearchRow(id="s", name="w/tune", state=state, request={"error": error} if error else {})
    return row, search


def test_the_step_takes_the_best_trial_that_ran_to_the_end():
    # trial 1 had the best value but was cancelled: no outputs; trial 2 is the best that ended
    row, search = ended(("succeeded", [5.0, 3.0]), ("cancelled", [0.5]), ("succeeded", [4.0, 2.0]))
    outcome = step_outcome(row, search)
    assert outcome.state == "succeeded" and outcome.task_id == "t2"
    assert "trial #2 was best of 3 (loss 2 at step 1;" in outcome.text


@pytest.mark.parametrize(
    ("trials", "state", "error", "expected", "text"),
    [
        ((("succeeded", [1.0]),), "cancelled", None, "cancelled", "its search s was cancelled"),
        (
            (("failed", []),),
            "failed",
            "every trial failed",
            "failed",
            "its search s failed: every trial failed",
        ),
        ((("succeeded", []),), "succeeded", None, "failed", "no trial that ran to the end reported loss"),
        ((("cancelled", [1.0]),), "succeeded", None, "failed", "no trial ran to the end"),
    ],
)
def test_a_search_without_a_finished_best_trial_ends_its_step_saying_why(
    trials, state, error, expected, text
):
    row, search = ended(*trials, state=state, error=error)
    outcome = step_outcome(row, search)
    assert outcome.state == expected and outcome.task_id is None and text in outcome.text

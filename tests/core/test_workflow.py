"""Workflow documents, pure: the graph rules, matrix fan-out, typed params."""

from __future__ import annotations

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.params import Param, apply_params, coerce
from jupyter_orch.core.workflow import WorkflowInvalid, build, check


def doc(*steps, **extra):
    return {"name": "wf", "tasks": list(steps), **extra}


def messages(d, **kw):
    return [(p.where(), p.message) for p in check(d, **kw)]


def test_a_good_workflow_builds_with_defaults_and_matrix():
    wf = build(
        doc(
            {"name": "prepare", "shell": "echo prep"},
            {
                "name": "sweep",
                "depends": ["prepare"],
                "function": "pkg.mod:fit",
                "matrix": {"lr": [0.1, 0.01], "depth": [2]},
            },
            {"name": "report", "depends": ["sweep"], "shell": "echo {{ params.lr }}", "retries": 0},
            params={"lr": 0.5},
            defaults={"retries": 2, "resources": {"cpus": 2}},
        )
    )
    assert [s.name for s in wf.steps] == [
        "prepare",
        "sweep[lr=0.1,depth=2]",
        "sweep[lr=0.01,depth=2]",
        "report",
    ]
    assert wf.step("report").depends == ("sweep[lr=0.1,depth=2]", "sweep[lr=0.01,depth=2]")
    assert wf.step("sweep[lr=0.01,depth=2]").parameters == {"lr": 0.01, "depth": 2}
    assert wf.step("prepare").retries == 2 and wf.step("report").retries == 0  # a step's own value wins
    assert wf.step("prepare").resources.cpus == 2
    assert wf.params["lr"] == Param("lr", "float", 0.5)


def test_every_problem_is_reported_with_its_path():
    got = messages(
        doc(
            {"name": "a", "shell": "echo", "depends": ["b"]},
            {"name": "a", "shell": "x", "notebook": "n.ipynb"},
            {"name": "c", "depends": ["prepare"]},
            {"name": "9bad", "function": "not a reference"},
        )
    )
    assert ("tasks[0].depends[0]", "unknown dependency 'b' (no step has that name)") in got
    assert ("tasks[1].name", "step name 'a' is used twice (first by tasks[0])") in got
    assert (
        "tasks[1]",
        "step 'a' needs exactly one of notebook, function, shell (it has notebook and shell)",
    ) in got
    assert ("tasks[2]", "step 'c' needs exactly one of notebook, function, shell (it has none)") in got
    assert any(where == "tasks[3].name" for where, _ in got)
    assert (
        "tasks[3].function",
        "function 'not a reference' must be written module:function (e.g. mypkg.train:fit)",
    ) in got


def test_a_cycle_is_named_in_order():
    got = messages(
        doc(
            {"name": "a", "shell": "x", "depends": ["c"]},
            {"name": "b", "shell": "x", "depends": ["a"]},
            {"name": "c", "shell": "x", "depends": ["b"]},
        )
    )
    assert ("tasks[0].depends", "dependency cycle: a → c → b → a") in got


def test_unknown_dependency_suggests_the_close_name():
    got = messages(doc({"name": "prepare", "shell": "x"}, {"name": "t", "shell": "x", "depends": ["prepar"]}))
    assert got == [
        (
            "tasks[1].depends[0]",
            "unknown dependency 'prepar' (no step has that name; did you mean 'prepare'?)",
        )
    ]


def test_templates_name_declared_params_and_upstream_steps_only():
    got = messages(
        doc(
            {"name": "a", "shell": "x"},
            {"name": "b", "shell": "x"},
            {
                "name": "c",
                "depends": ["a"],
                "notebook": "c.ipynb",
                "parameters": {
                    "p": "{{ params.lr }}",
                    "q": "{{ tasks.b.outputs.x }}",
                    "r": "{{ tasks.a.outputs.x }}",
                    "s": "{{ oops }}",
                },
            },  # fmt: skip
            params={"other": 1},
        )
    )
    assert ("tasks[2].parameters.p", "{{ params.lr }}: no param 'lr' is declared under params") in got
    assert (
        "tasks[2].parameters.q",
        "{{ tasks.b.outputs.x }}: step 'b' is not upstream of 'c' (add it to depends)",
    ) in got
    assert not any(where == "tasks[2].parameters.r" for where, _ in got)
    assert any(where == "tasks[2].parameters.s" for where, _ in got)


def test_a_missing_notebook_fails_validation():
    d = doc({"name": "a", "notebook": "here.ipynb"}, {"name": "b", "notebook": "gone.ipynb"})
    got = messages(d, notebook_exists=lambda p: p == "here.ipynb")
    assert got == [
        (
            "tasks[1].notebook",
            "notebook 'gone.ipynb' does not exist (paths are relative to the workflow file)",
        )
    ]
    with pytest.raises(WorkflowInvalid) as info:
        build(d, notebook_exists=lambda p: p == "here.ipynb")
    assert info.value.field == "tasks[1].notebook"


def test_params_are_typed_and_overrides_checked():
    params = build(doc({"name": "a", "shell": "x"}, params={"lr": 0.01, "epochs": 3, "name": "m", "fast": False,
                                                            "layers": {"type": "list", "default": [1, 2]}})).params  # fmt: skip
    values = apply_params(params, {"lr": "0.1", "epochs": "5", "fast": "true", "layers": "[3, 4]"})
    assert values == {"lr": 0.1, "epochs": 5, "name": "m", "fast": True, "layers": [3, 4]}
    assert apply_params(params, {"epochs": 7, "lr": 1})["lr"] == 1.0  # JSON values too; an int is a float
    with pytest.raises(SpecError, match="param epochs must be an int, not 'many'") as info:
        apply_params(params, {"epochs": "many"})
    assert info.value.field == "params.epochs"
    with pytest.raises(SpecError, match="unknown param 'lrr'"):
        apply_params(params, {"lrr": 1})
    with pytest.raises(SpecError, match="must be a bool"):
        coerce(params["fast"], "perhaps")
    with pytest.raises(SpecError, match="has no default"):
        apply_params(build(doc({"name": "a", "shell": "x"}, params={"n": {"type": "int"}})).params, {})

"""Workflow files: every problem at its line and column, the shipped schema, the example."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from jupyter_orch.workflows.loader import WorkflowFileInvalid, load, loads, schema

BAD = """\
name: broken
params: {lr: 0.01}
tasks:
  - name: a
    depends: [b]
    shell: echo {{ params.lr }}
    colour: red
  - name: b
    depends: [a]
    shell: echo
  - name: c
    depends: [prep]
    notebook: missing.ipynb
    retries: many
"""


def located(text, **kw):
    with pytest.raises(WorkflowFileInvalid) as info:
        loads(text, "flow.yaml", **kw)
    return [p.format("flow.yaml") for p in info.value.problems]


def test_every_problem_is_reported_at_its_line_and_column(tmp_path):
    got = located(BAD, base_dir=str(tmp_path))
    assert got == [
        "flow.yaml:5:14: tasks[0].depends: dependency cycle: a → b → a",
        "flow.yaml:7:5: tasks[0].colour: unknown field 'colour' (known: cache, depends, description, env, function, "
        "image, matrix, name, notebook, parameters, resources, retries, retry_backoff, search, shell, timeout)",
        "flow.yaml:12:15: tasks[2].depends[0]: unknown dependency 'prep' (no step has that name)",
        "flow.yaml:13:15: tasks[2].notebook: notebook 'missing.ipynb' does not exist (paths are relative to the workflow file)",
        'flow.yaml:14:14: tasks[2].retries: must be a whole number, not "many"',
    ]


def test_json_files_are_located_too_and_broken_syntax_is_one_problem():
    text = json.dumps({"name": "j", "tasks": [{"name": "a", "shell": "x", "depends": ["zz"]}]}, indent=2)
    (problem,) = located(text)
    assert problem.startswith("flow.yaml:8:") and "unknown dependency 'zz'" in problem
    (problem,) = located("name: x\ntasks: [\n  - a: 1\n")
    assert problem.startswith("flow.yaml:3:") and "not valid YAML or JSON" in problem


def test_duplicate_keys_and_missing_fields():
    got = located("name: x\nname: y\ntasks:\n  - shell: echo\n")
    assert "flow.yaml:2:1: name: the key appears twice" in got
    assert any(p.startswith("flow.yaml:4:5: tasks[0]: 'name' is required") for p in got)


def test_the_shipped_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


def test_a_valid_file_loads_relative_to_its_folder(tmp_path):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "train.ipynb").write_text("{}")
    path = tmp_path / "flow.yaml"
    path.write_text("name: ok\ntasks:\n  - name: train\n    notebook: nb/train.ipynb\n")
    workflow, _ = load(str(path))
    assert [s.name for s in workflow.steps] == ["train"]


def test_jupyter_orch_validate(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "name: sweep\nparams: {lr: 0.1, epochs: 3}\ntasks:\n  - name: prep\n    shell: echo\n"
        "  - name: fit\n    depends: [prep]\n    function: m:f\n    matrix: {lr: [1, 2, 3]}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    run = [sys.executable, "-m", "jupyter_orch", "validate"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout
        == f"{good}: workflow 'sweep' is valid: 2 steps (4 after matrix fan-out), params: lr (float), epochs (int)\n"
    )
    failed = subprocess.run(
        [*run, str(good), str(bad), str(tmp_path / "none.yaml")], capture_output=True, text=True
    )
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert f"{bad}:5:14: tasks[0].depends: dependency cycle: a → b → a" in lines
    assert f"{bad}: 5 problem(s); nothing would run" in lines
    assert any(line.startswith(f"{tmp_path / 'none.yaml'}: cannot read it") for line in lines)


def test_the_server_serves_the_schema_it_validates_with(orch):
    import urllib.request

    req = urllib.request.Request(
        orch.url + "/orch/api/v1/workflows/schema", headers={"Authorization": f"Bearer {orch.token}"}
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "application/schema+json"
        served = json.loads(resp.read())
    assert served == schema() and served["title"] == "jupyter-orch workflow"

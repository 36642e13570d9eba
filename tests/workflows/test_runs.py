"""Workflow runs on a real server with real local workers: steps as tasks with their
templates filled in from upstream results, failures stopping only their descendants,
retry of what failed, the step cache, cancelling, the run's files, and bad input refused
with nothing run."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from jupyter_orch.client.runs import WorkflowFailed
from jupyter_orch.core.errors import SpecError

STEPS = """
import os, pathlib

def source(n):
    return {"x": n, "items": list(range(n))}

def double(x):
    return x * 2

def maybe_fail(flag):
    if os.path.exists(flag):
        raise RuntimeError("the flag file is there")
    return {"ok": True}

def counted(path, value):
    with open(path, "a") as f:
        f.write(f"{value}\\n")
    return {"value": value}

def score(lr, depth):
    return {"score": lr * depth}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flowsteps.py").write_text(STEPS)
    return tmp_path


def step(run: dict, name: str) -> dict:
    return next(s for s in run["steps"] if s["name"] == name)


def test_a_failure_stops_its_descendants_while_an_independent_branch_finishes_then_retry(orch, project):
    flag = project / "fail-now"
    flag.write_text("x")
    path = write(
        project,
        "flow.yaml",
        f"""
        name: branches
        params: {{n: 3}}
        tasks:
          - name: a
            function: flowsteps:source
            parameters: {{n: "{{{{ params.n }}}}"}}
          - name: b
            depends: [a]
            function: flowsteps:maybe_fail
            parameters: {{flag: "{flag}"}}
          - name: c
            depends: [a]
            function: flowsteps:double
            parameters: {{x: "{{{{ tasks.a.outputs.x }}}}"}}
          - name: d
            depends: [b]
            shell: echo d ran
        """,
    )
    client = orch.client()
    run = client.submit_workflow(path, params={"n": 4})
    final = run.wait(120)
    assert final["state"] == "failed"
    assert step(final, "a")["state"] == "succeeded"
    assert step(final, "b")["state"] == "failed"
    assert "the flag file is there" in step(final, "b")["error"]
    assert step(final, "c")["state"] == "succeeded"  # the independent branch went on
    assert client.future(step(final, "c")["task_id"]).result(10) == 8  # {{ tasks.a.outputs.x }} is 4
    assert step(final, "d")["state"] == "upstream_failed"
    assert "dependency b" in step(final, "d")["error"]
    with pytest.raises(WorkflowFailed, match="b failed"):
        run.wait(10, raise_on_failure=True)

    flag.unlink()
    before = {s["name"]: s for s in final["steps"]}
    run.retry()
    again = run.wait(120)
    assert again["state"] == "succeeded"
    after = {s["name"]: s for s in again["steps"]}
    for name in ("a", "c"):  # what had succeeded was not run again
        assert after[name]["attempt"] == before[name]["attempt"] == 1
        assert after[name]["ended_at"] == before[name]["ended_at"]
    assert after["b"]["state"] == after["d"]["state"] == "succeeded"
    assert after["b"]["attempt"] == 2


def test_a_cacheable_step_is_reused_when_nothing_changed_and_says_so(orch, project):
    counter = project / "counter.txt"
    path = write(
        project,
        "cached.yaml",
        f"""
        name: cached
        params: {{v: 1}}
        tasks:
          - name: first
            function: flowsteps:source
            parameters: {{n: 2}}
          - name: expensive
            depends: [first]
            cache: true
            function: flowsteps:counted
            parameters: {{path: "{counter}", value: "{{{{ params.v }}}}"}}
        """,
    )
    client = orch.client()
    one = client.submit_workflow(path).wait(120)
    two = client.submit_workflow(path).wait(120)
    assert one["state"] == two["state"] == "succeeded"
    assert not step(one, "expensive")["cached"]
    cached = step(two, "expensive")
    assert cached["cached"] and cached["attempt"] == 0
    assert step(one, "expensive")["task_id"] in cached["reason"]
    assert counter.read_text().splitlines() == ["1"]  # it ran once
    assert client.future(cached["task_id"]).result(10) == {"value": 1}  # the result is there

    three = client.submit_workflow(path, params={"v": 2}).wait(120)  # a param it uses changed
    assert not step(three, "expensive")["cached"]
    assert counter.read_text().splitlines() == ["1", "2"]


def test_matrix_steps_fan_out_and_a_later_step_gets_every_output_in_order(orch, project):
    path = write(
        project,
        "sweep.yaml",
        """
        name: sweep
        tasks:
          - name: sweep
            function: flowsteps:score
            matrix: {lr: [1, 10], depth: [2, 3]}
          - name: best
            depends: [sweep]
            function: flowsteps:double
            parameters: {x: "{{ tasks.sweep.outputs.score }}"}
        """,
    )
    client = orch.client()
    final = client.submit_workflow(path).wait(120)
    assert final["state"] == "succeeded"
    names = [s["name"] for s in final["steps"]]
    assert names == [
        "sweep[lr=1,depth=2]",
        "sweep[lr=1,depth=3]",
        "sweep[lr=10,depth=2]",
        "sweep[lr=10,depth=3]",
        "best",
    ]
    # double() of the list of scores: the list repeated
    assert client.future(step(final, "best")["task_id"]).result(10) == [2, 3, 20, 30] * 2


def test_shell_steps_share_the_run_directory_which_the_api_lists_and_serves(orch, project):
    path = write(
        project,
        "files.yaml",
        """
        name: files
        tasks:
          - name: a
            function: flowsteps:source
            parameters: {n: 5}
          - name: write
            depends: [a]
            shell: mkdir -p "$ORCH_RUN_DIR/out" && echo "x={{ tasks.a.outputs.x }} run={{ run.id }}" > "$ORCH_RUN_DIR/out/report.txt"
          - name: read
            depends: [write]
            shell: grep -q "x=5" "$ORCH_RUN_DIR/out/report.txt"
        """,
    )
    client = orch.client()
    run = client.submit_workflow(path)
    final = run.wait(120)
    assert final["state"] == "succeeded", final
    files = run.files()
    assert [f["path"] for f in files] == ["out/report.txt"]
    assert run.read_file("out/report.txt").decode() == f"x=5 run={run.id}\n"
    api = orch.api()
    with pytest.raises(Exception, match="no file"):
        api.get(f"/workflows/{run.id}/files/nothing.txt")


def test_cancelling_a_run_cancels_its_running_step_and_skips_the_rest(orch, project):
    path = write(
        project,
        "slow.yaml",
        """
        name: slow
        tasks:
          - name: wait
            shell: echo started; sleep 60
          - name: after
            depends: [wait]
            shell: echo never
        """,
    )
    client = orch.client()
    run = client.submit_workflow(path)
    orch.wait_log(step(run.status(), "wait")["task_id"], "started")
    run.cancel()
    final = run.wait(30)
    assert final["state"] == "cancelled"
    assert step(final, "wait")["state"] == "cancelled"
    assert step(final, "after")["state"] == "upstream_failed"


def test_a_template_naming_an_output_a_step_did_not_record_fails_that_step_in_words(orch, project):
    path = write(
        project,
        "missing.yaml",
        """
        name: missing
        tasks:
          - name: a
            function: flowsteps:source
            parameters: {n: 1}
          - name: b
            depends: [a]
            function: flowsteps:double
            parameters: {x: "{{ tasks.a.outputs.nope }}"}
        """,
    )
    final = orch.client().submit_workflow(path).wait(120)
    b = step(final, "b")
    assert b["state"] == "failed" and b["error_kind"] == "template"
    assert "step 'a' recorded no output 'nope'" in b["error"]


def test_invalid_files_and_wrong_params_are_refused_with_nothing_run(orch, project):
    api = orch.api()
    before = len(api.get("/workflows", limit=1000)["runs"])
    source = "name: loop\ntasks:\n  - name: a\n    depends: [b]\n    shell: 'true'\n  - name: b\n    depends: [a]\n    shell: 'true'\n"
    with pytest.raises(SpecError) as info:
        api.post("/workflows", {"source": source, "filename": "loop.yaml"})
    assert any("loop.yaml:4:" in p and "a → b → a" in p for p in info.value.details)
    with pytest.raises(SpecError, match="notebook 'missing.ipynb' does not exist"):
        api.post("/workflows", {"source": "name: nb\ntasks:\n  - name: a\n    notebook: missing.ipynb\n"})
    typed = "name: typed\nparams: {lr: 0.1}\ntasks:\n  - name: a\n    shell: 'true'\n"
    with pytest.raises(SpecError, match="param lr must be a float") as info:
        api.post("/workflows", {"source": typed, "params": {"lr": "fast"}})
    assert info.value.field == "params.lr"
    assert len(api.get("/workflows", limit=1000)["runs"]) == before
    # the client checks a file before sending it: every problem with its line
    bad = write(
        project, "bad.yaml", "name: bad\ntasks:\n  - name: a\n    depends: [nope]\n    shell: 'true'\n"
    )
    with pytest.raises(SpecError, match=r"bad.yaml:4:\d+: .*unknown dependency 'nope'"):
        orch.client().submit_workflow(bad)


def test_runs_are_listed_newest_first_and_events_follow_them(orch, project):
    path = write(project, "tiny.yaml", "name: tiny\ntasks:\n  - name: a\n    shell: 'true'\n")
    client = orch.client()
    with orch.events("run") as events:
        run = client.submit_workflow(path)
        ended = events.wait(
            lambda e, _: e["type"] == "run" and e["run"]["id"] == run.id and e["run"]["state"] != "running"
        )
    assert ended["run"]["state"] == "succeeded"
    runs = client.runs()
    assert runs[0]["id"] == run.id and runs[0]["name"] == "tiny"
    assert [r["id"] for r in client.runs(state="succeeded")][0] == run.id
    assert client.run(run.id).status()["steps"][0]["state"] == "succeeded"
    assert json.loads(json.dumps(run.status()))["source"] == "tiny.yaml"
    assert time.time() - runs[0]["created_at"] < 600

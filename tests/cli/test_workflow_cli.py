"""The workflow commands of ``jupyter orch`` as a user types them, against a real server:
``run`` (and ``--wait``), ``runs``, ``status``/``cancel`` of a run, ``schedule``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

STEPS = """
def ok(n=1):
    return {"n": n}

def boom():
    raise ValueError("boom from the step")
"""


def orch_cli(server, *args, timeout=120):
    env = dict(os.environ, JUPYTER_ORCH_URL=server.url, JUPYTER_ORCH_TOKEN=server.token, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cliflowsteps.py").write_text(STEPS)
    return tmp_path


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run_ids(server) -> set[str]:
    return {r["id"] for r in server.api().get("/workflows", limit=1000)["runs"]}


FAILING = """
name: clifail
tasks:
  - name: first
    function: cliflowsteps:ok
  - name: breaks
    depends: [first]
    function: cliflowsteps:boom
  - name: side
    depends: [first]
    shell: echo side
  - name: last
    depends: [breaks, side]
    shell: echo never
"""


def test_run_wait_of_a_failing_workflow_exits_1_then_runs_and_status_show_it(orch, project):
    path = write(project, "fail.yaml", FAILING)
    result = orch_cli(orch, "run", path, "--wait")
    assert result.returncode == 1, result.stderr
    out = result.stdout + result.stderr
    assert "boom from the step" in out
    lines = result.stdout.splitlines()
    for name, state in (("first", "succeeded"), ("breaks", "failed"), ("side", "succeeded")):
        assert any(line.startswith(f"{name}  {state}") for line in lines), result.stdout
    assert any(line.startswith("last  upstream_failed") for line in lines), result.stdout
    assert "step breaks failed: ValueError" in result.stderr
    run_id = result.stderr.split("started run ", 1)[1].split()[0]

    listed = orch_cli(orch, "runs")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    assert "clifail" in row and "failed" in row and " 4 " in row
    only_ok = orch_cli(orch, "runs", "--state", "succeeded", "--json")
    assert run_id not in {r["id"] for r in json.loads(only_ok.stdout)}

    status = orch_cli(orch, "status", run_id)
    assert status.returncode == 0, status.stderr
    tree = status.stdout.splitlines()
    assert "clifail" in tree[0] and run_id in tree[0] and "failed" in tree[0]

    def depth(name: str) -> int:
        line = next(x for x in tree if f" {name}  " in x)
        return line.index(name)

    assert depth("first") < depth("breaks") == depth("side") < depth("last")
    assert "also after side" in next(x for x in tree if " last  " in x)
    assert "boom from the step" in next(x for x in tree if " breaks  " in x)
    as_json = json.loads(orch_cli(orch, "status", run_id, "--json").stdout)
    assert {s["name"]: s["state"] for s in as_json["steps"]}["last"] == "upstream_failed"


def test_run_with_params_without_wait_prints_the_id_and_a_good_run_exits_0(orch, project):
    path = write(
        project,
        "ok.yaml",
        """
        name: cliok
        params: {n: 1}
        tasks:
          - name: only
            function: cliflowsteps:ok
            parameters: {n: "{{ params.n }}"}
        """,
    )
    started = orch_cli(orch, "run", path, "-p", "n=5")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert len(run_id) == 26
    run = orch.api().get(f"/workflows/{run_id}/wait", timeout=60)
    assert run["state"] == "succeeded" and run["params"] == {"n": 5}

    waited = orch_cli(orch, "run", path, "-p", "n=7", "--wait", "--json")
    assert waited.returncode == 0, waited.stderr
    final = json.loads(waited.stdout)
    assert final["state"] == "succeeded" and final["params"] == {"n": 7}


def test_a_bad_file_prints_each_problem_with_its_place_and_sends_nothing(orch, project):
    path = write(
        project,
        "bad.yaml",
        """
        name: clibad
        tasks:
          - name: a
            shell: echo a
          - name: b
            depends: [nowhere]
            shel: echo b
        """,
    )
    before = run_ids(orch)
    result = orch_cli(orch, "run", path, "--wait")
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith(path + ":")]
    assert len(problems) >= 2, result.stderr
    for line in problems:
        _, line_no, col, _ = line[len(path) :].split(":", 3)
        assert int(line_no) > 1 and int(col) >= 1
    assert any("nowhere" in p for p in problems)
    assert "nothing was submitted" in result.stderr
    assert run_ids(orch) == before


def test_a_param_of_the_wrong_type_is_refused_naming_it(orch, project):
    path = write(
        project, "typed.yaml", "name: typed\nparams: {n: 1}\ntasks:\n  - name: a\n    shell: echo a\n"
    )
    before = run_ids(orch)
    result = orch_cli(orch, "run", path, "-p", "n=many")
    assert result.returncode == 1
    assert "param n must be an int" in result.stderr and "params.n" in result.stderr
    unknown = orch_cli(orch, "run", path, "-p", "m=1")
    assert unknown.returncode == 1 and "unknown param 'm'" in unknown.stderr
    assert run_ids(orch) == before


def test_run_wait_exits_130_when_the_run_is_cancelled(orch, project):
    path = write(project, "long.yaml", "name: clilong\ntasks:\n  - name: nap\n    shell: sleep 60\n")
    env = dict(os.environ, JUPYTER_ORCH_URL=orch.url, JUPYTER_ORCH_TOKEN=orch.token)
    with orch.events("task") as events:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_orch", "run", path, "--wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            first = proc.stderr.readline()
            run_id = first.split("started run ", 1)[1].split()[0]
            events.wait(
                lambda e, _: (
                    e["task"]["metadata"].get("step", {}).get("run") == run_id
                    and e["task"]["state"] == "running"
                ),
                timeout=60,
            )
            cancelled = orch_cli(orch, "cancel", run_id)
            assert cancelled.returncode == 0 and f"cancelled run {run_id}" in cancelled.stdout
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "nap  cancelled" in out
    assert orch.api().get(f"/workflows/{run_id}")["state"] == "cancelled"
    again = orch_cli(orch, "cancel", run_id)
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_schedule_add_list_remove(orch, project):
    path = write(
        project, "nightly.yaml", "name: nightly\nparams: {n: 1}\ntasks:\n  - name: a\n    shell: echo a\n"
    )
    added = orch_cli(
        orch, "schedule", "add", path, "--cron", "0 3 * * *", "--name", "cli-nightly", "-p", "n=2"
    )
    assert added.returncode == 0, added.stderr
    assert "cli-nightly" in added.stdout and "0 3 * * *" in added.stdout and "next run" in added.stdout
    schedule_id = added.stdout.split()[1]
    assert len(schedule_id) == 26

    listed = orch_cli(orch, "schedule", "list")
    row = next(line for line in listed.stdout.splitlines() if schedule_id in line)
    assert "cli-nightly" in row and "0 3 * * *" in row and " 03:00 " in " " + row.split("0 3 * * *")[1]
    as_json = json.loads(orch_cli(orch, "schedule", "list", "--json").stdout)
    mine = next(s for s in as_json if s["id"] == schedule_id)
    assert mine["params"] == {"n": 2} and mine["last_run_id"] is None and mine["next_at"] > mine["created_at"]

    bad = orch_cli(orch, "schedule", "add", path, "--cron", "at three")
    assert bad.returncode == 1 and "not a cron expression" in bad.stderr and "(cron)" in bad.stderr
    wrong = orch_cli(orch, "schedule", "add", path, "--cron", "0 3 * * *", "-p", "n=many")
    assert wrong.returncode == 1 and "params.n" in wrong.stderr

    removed = orch_cli(orch, "schedule", "remove", schedule_id)
    assert removed.returncode == 0 and f"removed schedule {schedule_id}" in removed.stdout
    assert schedule_id not in orch_cli(orch, "schedule", "list").stdout
    gone = orch_cli(orch, "schedule", "remove", schedule_id)
    assert gone.returncode == 1 and "no schedule" in gone.stderr

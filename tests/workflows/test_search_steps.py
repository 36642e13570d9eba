"""A workflow step with ``search:``: on a real server with real local workers, its trials are
copies of the step with the trial's parameters (templates filled in from upstream steps),
the step ends with the outputs of the best trial that ran to the end, later steps read them
as the step's, a failed search fails the step (and retry starts a new search), cancelling
the run cancels the search, and a wrong block is refused naming file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupyter_orch.core.errors import SpecError

STEPS = """
import os
import jupyter_orch

def prepare(n):
    return {"offset": n}

def train(offset, lr, epochs=3, flag="", gate=""):
    if flag and os.path.exists(flag):
        raise RuntimeError("the flag file is there")
    loss = None
    for epoch in range(1, epochs + 1):
        loss = abs(lr - 0.1) * 10 / epoch + offset
        jupyter_orch.report(step=epoch, val_loss=loss)
    if gate:
        print("waiting", flush=True)
        while not os.path.exists(gate):
            import time; time.sleep(0.05)
    return {"lr": lr, "loss": loss, "offset": offset}

def pick(lr, loss):
    return {"chosen": lr, "loss": loss}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "searchsteps_mod.py").write_text(STEPS)
    return tmp_path


def step(run: dict, name: str) -> dict:
    return next(s for s in run["steps"] if s["name"] == name)


FLOW = """
name: tuned
params: {{n: 3}}
tasks:
  - name: prepare
    function: searchsteps_mod:prepare
    parameters: {{n: "{{{{ params.n }}}}"}}
  - name: tune
    depends: [prepare]
    function: searchsteps_mod:train
    parameters: {{offset: "{{{{ tasks.prepare.outputs.offset }}}}", epochs: 3, flag: "{flag}", gate: "{gate}"}}
    search:
      space: {{lr: [0.5, 0.1, 0.01]}}
      metric: val_loss
      mode: min
      scheduler: {scheduler}
      max_concurrent: 2
  - name: use
    depends: [tune]
    function: searchsteps_mod:pick
    parameters: {{lr: "{{{{ tasks.tune.outputs.lr }}}}", loss: "{{{{ tasks.tune.outputs.loss }}}}"}}
"""


def flow(project: Path, *, flag: str = "", gate: str = "", scheduler: str = "grid") -> Path:
    return write(project, "tuned.yaml", FLOW.format(flag=flag, gate=gate, scheduler=scheduler))


def submit_and_wait_for_search(server, path: Path):
    """The run of the workflow at ``path`` and its search step's search, once started."""
    with server.events("search") as events:
        run = server.client().submit_workflow(path)
        started = events.wait(
            lambda e, _: e["type"] == "search" and (e["search"]["step"] or {}).get("run") == run.id,
            timeout=120,
        )
    return run, started["search"]["id"]


def test_a_search_step_runs_its_trials_and_later_steps_get_the_best_trials_outputs(orch, project):
    client = orch.client()
    run = client.submit_workflow(flow(project), params={"n": 4})
    final = run.wait(180)
    assert final["state"] == "succeeded", final
    tune = step(final, "tune")
    assert tune["search"] is True and tune["search_id"]
    assert tune["state"] == "succeeded" and tune["attempt"] == 0  # never sent to a worker
    assert "trial #1 was best of 3" in tune["reason"] and "lr=0.1" in tune["reason"]

    search = client.get_search(tune["search_id"])
    assert search.state == "succeeded"
    trials = search.trials()
    assert sorted(t["params"]["lr"] for t in trials) == [0.01, 0.1, 0.5]
    assert all(t["state"] == "succeeded" for t in trials)
    # each trial had the upstream template filled in (offset 4) and reported per epoch
    best = trials[0]
    assert best["params"] == {"lr": 0.1} and best["best"] == pytest.approx(4.0)
    assert client.future(best["task_id"]).result(10) == {"lr": 0.1, "loss": 4.0, "offset": 4}
    assert [p["val_loss"] for p in client.future(best["task_id"]).metrics()] == [4.0, 4.0, 4.0]
    # the later step read the best trial's outputs as the search step's
    assert client.future(step(final, "use")["task_id"]).result(10) == {"chosen": 0.1, "loss": 4.0}
    view = orch.api().get(f"/searches/{tune['search_id']}")
    assert view["step"] == {"task_id": tune["task_id"], "run": run.id, "name": "tune"}
    assert view["name"] == "tuned/tune"


def test_a_search_whose_trials_all_fail_fails_its_step_and_retry_starts_a_new_search(orch, project):
    flag = project / "fail-now"
    flag.write_text("x")
    client = orch.client()
    run = client.submit_workflow(flow(project, flag=str(flag)))
    final = run.wait(180)
    assert final["state"] == "failed"
    tune = step(final, "tune")
    assert tune["state"] == "failed" and tune["error_kind"] == "search"
    assert f"its search {tune['search_id']} failed: every trial failed" in tune["error"]
    assert "the flag file is there" in tune["error"]
    assert step(final, "use")["state"] == "upstream_failed"
    first_search = tune["search_id"]

    flag.unlink()
    run.retry()
    again = run.wait(180)
    assert again["state"] == "succeeded", again
    tune = step(again, "tune")
    assert tune["search_id"] and tune["search_id"] != first_search
    assert client.future(step(again, "use")["task_id"]).result(10)["chosen"] == 0.1
    assert step(again, "prepare")["attempt"] == 1  # what had succeeded did not run again


def test_cancelling_the_run_cancels_the_steps_search_and_its_trials(orch, project):
    client = orch.client()
    run, search_id = submit_and_wait_for_search(orch, flow(project, gate=str(project / "never.go")))
    assert step(run.status(), "tune")["search_id"] == search_id
    search = client.get_search(search_id)
    running = [t for t in search.trials() if t["task_id"]]
    orch.wait_log(running[0]["task_id"], "waiting")
    run.cancel()
    final = run.wait(60)
    assert final["state"] == "cancelled"
    assert step(final, "tune")["state"] == "cancelled"
    assert step(final, "use")["state"] == "upstream_failed"
    ended = client.get_search(search_id)
    ended.result(60)
    assert ended.state == "cancelled"
    for trial in ended.trials():
        if trial["task_id"]:
            assert orch.api().get(f"/tasks/{trial['task_id']}")["state"] == "cancelled"


def test_cancelling_the_search_cancels_its_step_and_what_depends_on_it(orch, project):
    client = orch.client()
    run, search_id = submit_and_wait_for_search(orch, flow(project, gate=str(project / "never.go")))
    client.get_search(search_id).cancel()
    final = run.wait(60)
    assert final["state"] == "cancelled"
    tune = step(final, "tune")
    assert tune["state"] == "cancelled" and tune["error"] == f"its search {search_id} was cancelled"
    assert step(final, "use")["state"] == "upstream_failed"


@pytest.mark.parametrize(
    ("block", "where", "message"),
    [
        ("    search: {space: {lr: [1]}}\n", "bad.yaml:6:", "tasks[0].search: 'metric' is required"),
        (
            "    search: {space: {lr: [1]}, metric: m, scheduler: asha}\n",
            "bad.yaml:6:",
            "asha needs max_t",
        ),
        (
            "    search: {space: {lr: {uniform: [2, 1]}}, metric: m, scheduler: random, max_trials: 2}\n",
            "bad.yaml:6:",
            "space.lr",
        ),
        (
            "    matrix: {x: [1, 2]}\n    search: {space: {lr: [1]}, metric: m, scheduler: grid}\n",
            "bad.yaml:7:",
            "search and matrix cannot be used on one step",
        ),
    ],
)
def test_a_wrong_search_block_is_refused_naming_its_line(orch, project, block, where, message):
    path = write(
        project,
        "bad.yaml",
        "name: bad\ntasks:\n  - name: a\n    function: searchsteps_mod:train\n    parameters: {offset: 1}\n"
        + block,
    )
    before = orch.api().get("/searches")["searches"]
    with pytest.raises(SpecError) as info:
        orch.client().submit_workflow(path)
    assert where in str(info.value) and message in str(info.value)
    assert orch.api().get("/searches")["searches"] == before


def test_a_search_on_a_shell_step_is_refused():
    from jupyter_orch.core.workflow import check

    block = {"space": {"lr": [1]}, "metric": "m", "scheduler": "grid"}
    problems = check({"name": "x", "tasks": [{"name": "a", "shell": "true", "search": block}]})
    assert [(p.where(), p.message) for p in problems if "search" in p.where()] == [
        (
            "tasks[0].search",
            "search needs a function or notebook step (the trial's parameters are its inputs), not shell",
        )
    ]


def test_a_search_step_goes_on_with_the_same_search_after_the_server_is_killed(orch_factory, project):
    server = orch_factory(args=["--OrchApp.worker_grace=30"]).start()
    server.wait_workers()
    gate = project / "go"
    client = server.client()
    run, search_id = submit_and_wait_for_search(server, flow(project, gate=str(gate)))
    first = next(t for t in client.get_search(search_id).trials() if t["task_id"])
    server.wait_log(first["task_id"], "waiting")

    server.stop(kill=True)  # SIGKILL: no clean shutdown
    server.start()
    server.wait_workers(2)
    handle = server.client().run(run.id)
    assert handle.state == "running"
    gate.touch()
    final = handle.wait(180)
    assert final["state"] == "succeeded", final
    tune = step(final, "tune")
    assert tune["search_id"] == search_id  # taken up again, not started anew
    assert [s["id"] for s in server.api().get("/searches")["searches"]] == [search_id]
    trials = server.client().get_search(search_id).trials()
    assert sorted(t["params"]["lr"] for t in trials) == [0.01, 0.1, 0.5]  # each trial ran once
    assert server.client().future(step(final, "use")["task_id"]).result(10)["chosen"] == 0.1

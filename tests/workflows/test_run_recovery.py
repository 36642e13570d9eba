"""A workflow run survives the server being killed mid-run (SQLite and PostgreSQL): the
step that was running is re-attached, the steps after it run, and the run ends as it
would have; nothing is run twice."""

from __future__ import annotations

import pytest

FLOW = """
name: survive
tasks:
  - name: first
    shell: echo first >> "$ORCH_RUN_DIR/log.txt"
  - name: gate
    depends: [first]
    shell: echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo gate >> "$ORCH_RUN_DIR/log.txt"
  - name: after
    depends: [gate]
    shell: echo after >> "$ORCH_RUN_DIR/log.txt"
  - name: broken
    depends: [first]
    shell: exit 3
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_run_goes_on_after_the_server_is_killed(orch_factory, tmp_path, database, request):
    db_url = request.getfixturevalue("pg_url") if database == "postgresql" else None
    server = orch_factory(db_url=db_url, args=["--OrchApp.worker_grace=30"]).start()
    server.wait_workers()
    path = tmp_path / "survive.yaml"
    gate = tmp_path / "gate.go"
    path.write_text(FLOW.format(gate=gate))
    run = server.client().submit_workflow(path)
    gate_id = next(s["task_id"] for s in run.status()["steps"] if s["name"] == "gate")
    server.wait_log(gate_id, "started")

    server.stop(kill=True)  # SIGKILL: no clean shutdown
    server.start()
    server.wait_workers(2)
    handle = server.client().run(run.id)
    assert handle.state == "running"
    gate.touch()
    final = handle.wait(60)
    states = {s["name"]: s["state"] for s in final["steps"]}
    assert states == {"first": "succeeded", "gate": "succeeded", "after": "succeeded", "broken": "failed"}
    assert final["state"] == "failed" and final["ended_at"]
    assert handle.read_file("log.txt").decode().split() == ["first", "gate", "after"]  # each ran once
    assert server.api().get("/workflows", state="failed")["runs"][0]["id"] == run.id

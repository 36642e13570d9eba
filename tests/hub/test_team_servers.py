"""Team mode end to end under a real JupyterHub: the orchestrator is the hub's service (on
PostgreSQL, its local workers with stand-in GPUs), and the users' own single-user servers,
spawned by the hub, run no engine (client mode). alice's kernel runs ``%%orch run`` and a
workflow through it; bob gets 403/404 on each of alice's resources, REST and WebSocket,
asked directly or through his own server; the hub admin sees both; bob's quota of one GPU
makes his second GPU task wait with the sentence, and alice's GPU cell says its place in
line until the admin cancels bob's; alice's schedule fires while her server
is stopped. Every wait is on a log line, an HTTP answer or an event."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
import websocket

from jupyter_orch.client.http import HttpApi

from support.hubprocess import PROXY
from support.kernelws import Kernel
from support.rawhttp import raw
from support.teamhub import TeamHub

PIPELINE = """\
name: alices-pipeline
tasks:
  - name: prepare
    notebook: prepare.ipynb
    parameters: {rows: 7}
  - name: report
    depends: [prepare]
    shell: echo "rows={{ tasks.prepare.outputs.rows }}"
"""
TICK = "name: tick\ntasks:\n  - name: tick\n    shell: echo tick while alice is away\n"


def prepare_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("rows = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("import jupyter_orch\njupyter_orch.output('rows', rows * 6)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def team(tmp_path: Path, pg_url: str) -> Any:
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run scripts/hub-test-deps.sh (scripts/test.sh does)")
    if shutil.which("jupyterhub-singleuser", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("jupyterhub is not installed: pip install -e '.[test]'")
    hub = TeamHub(
        tmp_path / "team",
        service_args=[f"--OrchApp.db_url={pg_url}", '--OrchApp.quotas={"users": {"bob": {"gpus": 1}}}'],
        fake_gpus=1,
    )
    try:
        yield hub.start()
    finally:
        hub.cleanup()


def wait_for_event(
    api: HttpApi, types: str, until: Any, timeout: float = 150, already: Any = None
) -> dict[str, Any] | None:
    """Follow the user's events until ``until(event)``; subscribed first, then ``already()``
    asked (True: nothing to wait for), so a change between the two cannot be missed."""
    ws = websocket.create_connection(
        api.ws_url(f"/events?types={types}"),
        header=[f"{k}: {v}" for k, v in api.headers().items()],
        timeout=timeout,
    )
    try:
        json.loads(ws.recv())  # hello
        if already is not None and already():
            return None
        while True:
            event = json.loads(ws.recv())
            if until(event):
                return event
    finally:
        ws.close()


@pytest.mark.timeout(600)
def test_users_servers_use_the_one_service_each_with_only_their_own_work(team: TeamHub) -> None:
    alice_token, bob_token, boss_token = (team.user_token(u) for u in ("alice", "bob", "boss"))
    home = team.home("alice")
    prepare_notebook(home / "prepare.ipynb")
    (home / "pipeline.yaml").write_text(PIPELINE)
    team.start_server("alice")
    team.start_server("bob")
    assert not list(home.rglob("orch.sqlite"))  # her server runs no engine
    alice = team.orch(alice_token)

    # alice's kernel, in her server, runs a cell and a workflow on the service's workers
    kernel = Kernel(team.server_url("alice"), alice_token)
    try:
        assert kernel.execute("%load_ext jupyter_orch").errors == []
        cell = kernel.execute("%%orch run\nprint('answer', 6 * 7)")
        assert cell.errors == [] and "answer 42" in cell.text, cell
        flow = kernel.execute("%orch workflow pipeline.yaml --wait")
        assert flow.errors == [], flow
    finally:
        kernel.close()
    (run,) = alice.get("/workflows")["runs"]
    assert (run["name"], run["state"], run["owner"]) == ("alices-pipeline", "succeeded", "alice")
    tasks = alice.get("/tasks")["tasks"]
    assert {t["owner"] for t in tasks} == {"alice"} and len(tasks) >= 3
    report = next(t for t in tasks if t["name"] == "report")
    assert "rows=42" in alice.get(f"/tasks/{report['id']}/logs")["lines"][0]["text"]

    # bob, directly and through his own server: nothing of alice's, REST or WebSocket
    for base in (team.orch(bob_token).url, team.server_url("bob")):
        for path in (f"/tasks/{report['id']}", f"/tasks/{report['id']}/logs", f"/workflows/{run['id']}"):
            status, body = raw(SimpleNamespace(url=base, token=bob_token), "GET", path)
            assert status in (403, 404) and "rows=42" not in json.dumps(body), (base, path, status, body)
        bob = HttpApi(base, bob_token)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                bob.ws_url(f"/tasks/{report['id']}/logs/follow"),
                header=[f"{k}: {v}" for k, v in bob.headers().items()],
                timeout=60,
            )
        assert refused.value.status_code in (403, 404)
        assert bob.get("/tasks")["tasks"] == []

    # bob's quota of 1 GPU: his second GPU task waits, and says why
    bob = HttpApi(team.server_url("bob"), bob_token)  # as his sidebar asks
    gpu = {"kind": "shell", "command": "sleep 300", "resources": {"gpus": 1}}
    first = bob.post("/tasks", gpu)
    wait_for_event(
        bob,
        "task",
        lambda e: e.get("task", {}).get("id") == first["id"] and e["task"]["state"] == "running",
        already=lambda: bob.get(f"/tasks/{first['id']}")["state"] == "running",
    )
    second = bob.post("/tasks", gpu)
    assert bob.get(f"/tasks/{second['id']}")["reason"] == "waiting: you use 1 of your 1 GPUs"

    # alice's cell wants the GPU bob holds: the cell says its place in line while it waits
    kernel = Kernel(team.server_url("alice"), alice_token)
    said_place = threading.Event()
    cell: dict[str, Any] = {}

    def run_cell() -> None:
        cell["out"] = kernel.execute(
            "%%orch run --gpus 1\nprint('trained on', __import__('os').environ['CUDA_VISIBLE_DEVICES'])",
            timeout=180,
            on_text=lambda text: "in line" in text and said_place.set(),
        )

    try:
        assert kernel.execute("%load_ext jupyter_orch").errors == []
        running = threading.Thread(target=run_cell, daemon=True)
        running.start()
        assert said_place.wait(120), cell

        # the hub admin sees both users' work, and cancels bob's: alice's cell runs on the GPU
        boss = team.orch(boss_token)
        assert {"alice", "bob"} <= {t["owner"] for t in boss.get("/tasks?owner=*")["tasks"]}
        for task in (first, second):
            assert boss.post(f"/tasks/{task['id']}/cancel")["state"] == "cancelled"
        running.join(180)
        assert not running.is_alive()
    finally:
        kernel.close()
    assert cell["out"].errors == [] and "trained on 0" in cell["out"].text, cell
    assert (
        "is waiting: 1st in line for GPUs (fair share: your recent use is 0.0 GPU-hours)" in cell["out"].text
    )

    # alice's schedule belongs to the service: it fires while her server is stopped
    schedule = HttpApi(team.server_url("alice"), alice_token).post(
        "/workflows/schedules", {"source": TICK, "filename": "tick.yaml", "cron": "* * * * *"}
    )
    team.stop_server("alice")
    ticked = wait_for_event(
        alice, "task", lambda e: e.get("task", {}).get("name") == "tick" and e["task"]["state"] == "succeeded"
    )
    (fired,) = [r for r in alice.get("/workflows")["runs"] if r.get("schedule_id") == schedule["id"]]
    assert ticked is not None and fired["state"] == "succeeded" and ticked["task"]["owner"] == "alice"
    assert "tick while alice is away" in alice.get(f"/tasks/{ticked['task']['id']}/logs")["lines"][0]["text"]

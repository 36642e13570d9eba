"""Failures the engine must survive, with real processes: a worker killed mid-task, the
server killed mid-run, a worker's connection dropped. Assertions are on what the user
then sees through the API and the client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.proxy import CuttableProxy


def running_event(task_id):
    return lambda e, _: (
        e.get("type") == "task" and e["task"]["id"] == task_id and e["task"]["state"] == "running"
    )


def worker_of(server, task_id):
    return server.api().get(f"/tasks/{task_id}")["worker_id"]


def static_worker(server, token, url, *args):
    """``jupyter orch worker`` started by hand (the static provider's way), tagged for cleanup."""
    env = dict(os.environ, JUPYTER_ORCH_TOKEN=token, ORCH_TEST_TAG=server.tag)
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_orch.worker", "--server", url, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_gate_command(tmp: Path, name: str) -> str:
    """A shell task that says it started, then waits for the test to open its gate."""
    gate = tmp / f"{name}.go"
    return f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished"


@pytest.mark.parametrize("retries", [0, 1])
def test_killed_worker_mid_task(orch_factory, tmp_path, retries):
    server = orch_factory(args=["--OrchApp.worker_grace=2", "--LocalProvider.restart_delay=0.2"]).start()
    server.wait_workers()
    api = server.api()
    marker = tmp_path / "first-attempt"
    command = (
        f"if [ -e {marker} ]; then echo second attempt; else touch {marker}; echo first attempt; sleep 60; fi"
    )
    task = api.post("/tasks", {"kind": "shell", "command": command, "retries": retries, "retry_backoff": 0.1})
    server.wait_log(task["id"], "first attempt")
    victim = worker_of(server, task["id"])
    os.kill(server.local_worker_pids()[victim], signal.SIGKILL)
    done = api.get(f"/tasks/{task['id']}/wait", timeout=60)
    attempts = api.get(f"/tasks/{task['id']}")["attempts"]
    assert attempts[0]["state"] == "lost"
    assert "was lost while running this task" in attempts[0]["error"]
    if retries:
        assert done["state"] == "succeeded"
        assert [a["state"] for a in attempts] == ["lost", "succeeded"]
        assert attempts[1]["worker_id"] != victim
        assert "second attempt" in api.get(f"/tasks/{task['id']}/logs")["lines"][0]["text"]
    else:
        assert done["state"] == "failed"
        assert done["error_kind"] == "worker_lost"
        # the provider saw the process die: no wait for the worker grace
        assert "was killed by SIGKILL" in done["error"]
    # the provider replaced the dead worker
    server.wait_workers(2)


def test_server_killed_mid_run_loses_nothing(orch_factory, tmp_path):
    server = orch_factory(args=["--OrchApp.worker_grace=30"]).start()
    server.wait_workers()
    api = server.api()
    client = server.client()
    finished = client.submit_shell("echo early")
    assert finished.result(30) is None
    running = client.submit_shell(wait_gate_command(tmp_path, "run"), name="long")
    assert running.accepted()
    waiting = api.post(
        "/tasks", {"kind": "shell", "command": "true", "resources": {"labels": {"gpu": "none-here"}}}
    )
    server.wait_log(running.id, "started")

    server.stop(kill=True)  # SIGKILL: no clean shutdown at all
    server.start()
    # the same local workers come back (adopted), and the running task is re-attached
    workers = server.wait_workers(2)
    assert len(workers) == 2
    assert "adopted 2 local worker(s)" in server.log_text()
    api = server.api()
    assert api.get(f"/tasks/{running.id}")["state"] == "running"
    assert api.get(f"/tasks/{waiting['id']}")["state"] == "pending"
    (tmp_path / "run.go").touch()
    # the client's future learns the result through its reconnected session
    assert running.result(60) is None
    detail = api.get(f"/tasks/{running.id}")
    assert detail["state"] == "succeeded" and len(detail["attempts"]) == 1
    assert [line["text"].strip() for line in api.get(f"/tasks/{running.id}/logs")["lines"]] == [
        "started",
        "finished",
    ]
    assert api.get(f"/tasks/{finished.id}")["state"] == "succeeded"
    assert "no worker has label gpu=none-here" in api.get(f"/tasks/{waiting['id']}")["reason"]


def test_dropped_worker_connection_keeps_the_task(orch_factory, tmp_path):
    server = orch_factory(workers=0, args=["--OrchApp.worker_grace=30"]).start()
    api = server.api()
    token = api.post("/workers/tokens", {"name": "behind-proxy"})["token"]
    proxy = CuttableProxy(server.port)
    worker = static_worker(
        server, token, f"http://127.0.0.1:{proxy.port}", "--name", "flaky", "--max-backoff", "0.5"
    )
    try:
        server.wait_workers(1)
        task = api.post("/tasks", {"kind": "shell", "command": wait_gate_command(tmp_path, "drop")})
        server.wait_log(task["id"], "started")
        with server.events("worker") as events:
            proxy.cut()
            events.wait(lambda e, ws: any(w["state"] == "disconnected" for w in ws.values()))
            events.wait(lambda e, ws: any(w["state"] == "connected" for w in ws.values()))  # back by itself
        (tmp_path / "drop.go").touch()
        done = api.get(f"/tasks/{task['id']}/wait", timeout=60)
        assert done["state"] == "succeeded"
        assert len(api.get(f"/tasks/{task['id']}")["attempts"]) == 1
        lines = [line["text"].strip() for line in api.get(f"/tasks/{task['id']}/logs")["lines"]]
        assert lines == ["started", "finished"]
    finally:
        worker.terminate()
        worker.wait(30)
        proxy.close()


def test_worker_with_a_bad_or_revoked_token_is_refused(orch_factory):
    server = orch_factory(workers=0).start()
    api = server.api()
    env = dict(os.environ, ORCH_TEST_TAG=server.tag)
    bad = subprocess.run(
        [sys.executable, "-m", "jupyter_orch.worker", "--server", server.url, "--token", "orch_forged"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "refused" in (bad.stdout + bad.stderr)
    server.wait_for_log("refused a worker connection")

    issued = api.post("/workers/tokens", {"name": "soon-revoked"})
    worker = static_worker(server, issued["token"], server.url, "--max-backoff", "0.2")
    try:
        server.wait_workers(1)
        api.delete(f"/workers/tokens/{issued['id']}")
        assert worker.wait(60) == 2  # disconnected, then refused on reconnect
        assert api.get("/workers/tokens")["tokens"][0]["revoked_at"] is not None
    finally:
        if worker.poll() is None:
            worker.kill()


def test_result_for_a_task_the_worker_does_not_hold_is_refused(orch_factory, tmp_path):
    from jupyter_orch.core import protocol

    server = orch_factory(workers=1).start()
    server.wait_workers(1)
    api = server.api()
    task = api.post("/tasks", {"kind": "shell", "command": wait_gate_command(tmp_path, "own")})
    server.wait_log(task["id"], "started")
    token = api.post("/workers/tokens", {"name": "intruder"})["token"]
    ws = server.ws("/workers/connect", token=token)
    ws.send(protocol.encode({"type": "hello", "worker_id": "intruder-1", "name": "intruder", "slots": 1}))
    assert json.loads(ws.recv())["type"] == "welcome"
    ws.send_binary(
        protocol.encode(
            {"type": "finished", "task_id": task["id"], "attempt": 1, "ok": True, "error": None},
            [("result", b"forged")],
        )
    )
    reply = json.loads(ws.recv())
    assert reply["type"] == "refuse" and reply["task_id"] == task["id"]
    ws.close()
    server.wait_for_log("does not hold; refused")
    assert api.get(f"/tasks/{task['id']}")["state"] == "running"
    (tmp_path / "own.go").touch()
    assert api.get(f"/tasks/{task['id']}/wait", timeout=30)["state"] == "succeeded"


@pytest.mark.postgres
def test_postgresql_store_round_trip_and_restart(orch_factory, pg_url, tmp_path):
    server = orch_factory(workers=1, db_url=pg_url, args=["--OrchApp.worker_grace=30"]).start()
    server.wait_workers(1)
    assert "database postgresql" in server.log_text()
    client = server.client()
    assert client.submit_shell("echo on postgres").result(30) is None
    running = client.submit_shell(wait_gate_command(tmp_path, "pg"))
    assert running.accepted()
    server.wait_log(running.id, "started")
    server.stop(kill=True)
    server.start()
    server.wait_workers(1)
    (tmp_path / "pg.go").touch()
    assert running.result(60) is None
    assert len(server.api().get(f"/tasks/{running.id}")["attempts"]) == 1

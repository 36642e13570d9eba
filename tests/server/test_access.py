"""Deny by default, with several users on one server (``owner_from = identity``, users as
JupyterHub gives them: see ``support/identities.py``). Each test is a leak that was found
with two users, now refused: bob reads none of alice's tasks, runs, logs or results,
manages none of the service's tokens, and his own worker runs only his tasks. Wider rights
come only from the JupyterHub scopes ``custom:orch:read-all`` and ``custom:orch:admin`` (or
being a hub admin), never from being logged in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import websocket

from jupyter_orch.client.http import HttpApi
from jupyter_orch.core.errors import Forbidden

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer
from support.rawhttp import raw

USERS = hub_users(
    alice={"groups": ["ml-team"]},
    erin={"groups": ["ml-team"]},
    bob={},
    carol={"scopes": ["custom:orch:read-all"]},
    dana={"scopes": ["custom:orch:admin"]},
    hubadmin={"admin": True},
)


def api(server: OrchServer, user: str) -> HttpApi:
    return server.api(f"{user}-token")


def shell(command: str = "echo hello") -> dict[str, Any]:
    return {"kind": "shell", "command": command}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    server = OrchServer(tmp_path_factory.mktemp("access"), workers=1, args=IDENTITY_ARGS, env=USERS)
    try:
        server.start()
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def alices(hub: OrchServer) -> dict[str, Any]:
    """A task and a workflow run of alice's, ended."""
    task = api(hub, "alice").post("/tasks", shell("echo alice-secret-output"))
    api(hub, "alice").get(f"/tasks/{task['id']}/wait?timeout=60")
    return task


def test_a_user_lists_only_their_own_tasks_and_asking_for_anothers_is_refused(
    hub: OrchServer, alices: dict[str, Any]
) -> None:
    bobs = api(hub, "bob").post("/tasks", shell())
    listed = api(hub, "bob").get("/tasks")["tasks"]
    assert [t["id"] for t in listed] == [bobs["id"]]
    for owner in ("alice", "*"):
        with pytest.raises(Forbidden, match="custom:orch:read-all"):
            api(hub, "bob").get(f"/tasks?owner={owner}")
    # the right to read all comes from a JupyterHub scope, or from being an admin
    for reader in ("carol", "dana", "hubadmin"):
        assert [t["id"] for t in api(hub, reader).get("/tasks?owner=alice")["tasks"]] == [alices["id"]]
        everyone = {t["id"] for t in api(hub, reader).get("/tasks?owner=*")["tasks"]}
        assert {alices["id"], bobs["id"]} <= everyone
    assert api(hub, "carol").get("/tasks")["tasks"] == []  # by default, one's own


def test_another_users_task_its_result_and_logs_are_refused(hub: OrchServer, alices: dict[str, Any]) -> None:
    task_id = alices["id"]
    for path in (
        f"/tasks/{task_id}",
        f"/tasks/{task_id}/wait?timeout=1",
        f"/tasks/{task_id}/result",
        f"/tasks/{task_id}/logs",
        f"/tasks/{task_id}/metrics",
        f"/tasks/{task_id}/metrics?format=records",
        f"/tasks/{task_id}/checkpoints",
    ):
        status, body = raw(hub, "GET", path, token="bob-token")
        assert status == 403 and body["error"] == "forbidden", path
        assert "alice-secret-output" not in json.dumps(body)
    for action in ("cancel", "retry"):
        status, _ = raw(hub, "POST", f"/tasks/{task_id}/{action}", {}, token="bob-token")
        assert status == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:  # before the upgrade
        hub.ws(f"/tasks/{task_id}/logs/follow", token="bob-token")
    assert refused.value.status_code == 403
    assert b"alice-secret-output" not in (refused.value.resp_body or b"")
    # one who may read all reads it, but may not change it
    logs = api(hub, "carol").get(f"/tasks/{task_id}/logs")
    assert any("alice-secret-output" in line["text"] for line in logs["lines"])
    status, _ = raw(hub, "POST", f"/tasks/{task_id}/retry", {}, token="carol-token")
    assert status == 403


def test_an_admin_cancels_anyones_task(hub: OrchServer) -> None:
    task = api(hub, "bob").post("/tasks", shell("sleep 60"))
    assert api(hub, "dana").post(f"/tasks/{task['id']}/cancel", {})["state"] == "cancelled"
    assert api(hub, "bob").get(f"/tasks/{task['id']}")["state"] == "cancelled"


def test_the_events_stream_carries_only_the_users_own_tasks(hub: OrchServer) -> None:
    ws = hub.ws("/events?types=task", token="bob-token")
    ws.settimeout(60)
    try:
        json.loads(ws.recv())  # hello: subscribed from here on
        hers = api(hub, "alice").post("/tasks", shell())
        his = api(hub, "bob").post("/tasks", shell())
        seen: set[str] = set()
        while True:  # until bob's task ends: alice's, submitted first, was news before it
            task = json.loads(ws.recv())["task"]
            seen.add(task["id"])
            if task["id"] == his["id"] and task["state"] == "succeeded":
                break
        assert hers["id"] not in seen
    finally:
        ws.close()


def test_worker_tokens_are_a_users_own_and_shared_ones_an_admins(hub: OrchServer) -> None:
    server_tokens = api(hub, "hubadmin").get("/workers/tokens")["tokens"]
    local = [t for t in server_tokens if t["provider"] == "local"]
    assert local, "the admin sees the local provider's token"
    # bob sees and revokes none of the service's tokens: the local worker stays connected
    assert api(hub, "bob").get("/workers/tokens")["tokens"] == []
    status, _ = raw(hub, "DELETE", f"/workers/tokens/{local[0]['id']}", token="bob-token")
    assert status == 404
    assert any(w["state"] == "connected" for w in api(hub, "hubadmin").get("/workers")["workers"])
    # his own token: his, seen by him and the admin, not by alice
    mine = api(hub, "bob").post("/workers/tokens", {"name": "bobs-laptop"})
    assert mine["owner"] == "bob"
    assert [t["id"] for t in api(hub, "bob").get("/workers/tokens")["tokens"]] == [mine["id"]]
    assert api(hub, "alice").get("/workers/tokens")["tokens"] == []
    status, _ = raw(hub, "DELETE", f"/workers/tokens/{mine['id']}", token="alice-token")
    assert status == 404
    # a shared worker's token is an admin's to issue
    with pytest.raises(Forbidden, match="custom:orch:admin"):
        api(hub, "bob").post("/workers/tokens", {"name": "shared", "shared": True})
    shared = api(hub, "dana").post("/workers/tokens", {"name": "shared", "shared": True})
    assert shared["owner"] == ""
    raw(hub, "DELETE", f"/workers/tokens/{mine['id']}", token="bob-token")
    raw(hub, "DELETE", f"/workers/tokens/{shared['id']}", token="dana-token")


def test_the_provider_settings_are_an_admins(hub: OrchServer) -> None:
    assert api(hub, "bob").get("/workers")["provider"] == {}
    assert api(hub, "hubadmin").get("/workers")["provider"]["name"] == "local"


def test_runs_of_another_user_are_refused(hub: OrchServer) -> None:
    source = "name: hers\ntasks:\n  - name: one\n    shell: echo run-secret\n"
    run = api(hub, "alice").post("/workflows", {"source": source, "filename": "hers.yaml"})
    with pytest.raises(Forbidden):
        api(hub, "bob").get("/workflows?owner=alice")
    assert all(r["owner"] == "bob" for r in api(hub, "bob").get("/workflows")["runs"])
    for path in (f"/workflows/{run['id']}", f"/workflows/{run['id']}/files"):
        status, body = raw(hub, "GET", path, token="bob-token")
        assert status == 403 and "run-secret" not in json.dumps(body), path
    status, _ = raw(hub, "POST", f"/workflows/{run['id']}/cancel", {}, token="bob-token")
    assert status == 403
    assert api(hub, "carol").get(f"/workflows/{run['id']}")["id"] == run["id"]


def test_a_run_request_reads_nothing_of_the_servers_disk(hub: OrchServer) -> None:
    """``base_dir`` (a personal server reads a run's notebooks from its own disk) is ignored
    when users share the server: alice cannot make it read a file of someone else's."""
    theirs = hub.root / "someone-else"
    theirs.mkdir(exist_ok=True)
    (theirs / "private.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    source = "name: peek\ntasks:\n  - name: one\n    notebook: private.ipynb\n"
    for path in ("/workflows", "/workflows/schedules"):
        body = {"source": source, "filename": "peek.yaml", "base_dir": str(theirs), "cron": "0 * * * *"}
        if path == "/workflows":
            body.pop("cron")
        status, answer = raw(hub, "POST", path, body, token="alice-token")
        assert status == 400, (path, answer)
        assert "private.ipynb" in answer["message"], answer
    assert all(r["name"] != "peek" for r in api(hub, "alice").get("/workflows")["runs"])


def _wait_connected(server: OrchServer, token: str, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    ws = server.ws("/events?types=worker", token=token)
    ws.settimeout(timeout)
    try:
        hello = json.loads(ws.recv())
        workers = {w["name"]: w for w in hello["workers"]}
        while workers.get(name, {}).get("state") != "connected" and time.monotonic() < deadline:
            event = json.loads(ws.recv())
            workers[event["worker"]["name"]] = event["worker"]
        return workers[name]
    finally:
        ws.close()


def test_a_users_own_worker_runs_only_their_tasks(orch_factory) -> None:
    server = orch_factory(workers=0, args=IDENTITY_ARGS, env=USERS).start()
    token = api(server, "bob").post("/workers/tokens", {"name": "bobs-gpu-box"})["token"]
    worker = server.start_worker(token, "--name", "bobs-gpu-box")
    try:
        view = _wait_connected(server, "bob-token", "bobs-gpu-box")
        assert view["owner"] == "bob"
        # alice does not even see it; her task waits, and says why without naming it
        assert api(server, "alice").get("/workers")["workers"] == []
        hers = api(server, "alice").post("/tasks", shell("echo hers"))
        his = api(server, "bob").post("/tasks", shell("echo his"))
        assert api(server, "bob").get(f"/tasks/{his['id']}/wait?timeout=60")["state"] == "succeeded"
        waiting = api(server, "alice").get(f"/tasks/{hers['id']}")
        assert waiting["state"] == "pending"
        assert waiting["reason"] == "no shared worker, nor one of yours, is connected"
        assert "echo hers" not in worker.log_text()
    finally:
        worker.stop()


def test_a_token_of_nobody_is_refused(hub: OrchServer) -> None:
    status, body = raw(hub, "GET", "/tasks", token="mallory-token")
    assert status in (401, 403) and "tasks" not in body


def test_usage_per_user_is_for_those_who_read_all(hub: OrchServer, alices: dict[str, Any]) -> None:
    status, body = raw(hub, "GET", "/admin/usage?since=1d", token="bob-token")
    assert status == 403 and "custom:orch:read-all" in body["message"]
    usage = api(hub, "carol").get("/admin/usage?since=1d")
    users = {u["user"]: u for u in usage["users"]}
    assert users["alice"]["attempts"] >= 1 and users["alice"]["groups"] == ["ml-team"]
    assert users["alice"]["gpu_hours"] == 0 and users["alice"]["task_hours"] > 0  # no GPUs here
    assert {"group": "ml-team", "users": 1} == {
        k: v for k, v in usage["groups"][0].items() if k in ("group", "users")
    }
    status, body = raw(hub, "GET", "/admin/usage?since=yesterday", token="carol-token")
    assert status == 400 and body["field"] == "since"


def test_jupyter_orch_admin_usage_prints_the_table_and_json(hub: OrchServer, alices: dict[str, Any]) -> None:
    base = [sys.executable, "-m", "jupyter_orch", "admin", "usage", "--url", hub.url, "--since", "2d"]
    as_json = subprocess.run(
        [*base, "--token", "carol-token", "--json"], capture_output=True, text=True, timeout=60
    )
    assert as_json.returncode == 0, as_json.stderr
    assert "alice" in {u["user"] for u in json.loads(as_json.stdout)["users"]}
    table = subprocess.run([*base, "--token", "carol-token"], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "GPU-HOURS" in table.stdout and "alice" in table.stdout
    assert "ml-team" in table.stdout  # the groups table
    refused = subprocess.run([*base, "--token", "bob-token"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "custom:orch:read-all" in refused.stderr


def test_a_worker_registered_for_a_group_runs_its_members_tasks(orch_factory) -> None:
    server = orch_factory(workers=0, args=IDENTITY_ARGS, env=USERS).start()
    with pytest.raises(Forbidden, match="not in the group ml-team"):
        api(server, "bob").post("/workers/tokens", {"name": "not-his", "group": "ml-team"})
    issued = api(server, "alice").post("/workers/tokens", {"name": "team-box", "group": "ml-team"})
    assert (issued["owner"], issued["group"]) == ("alice", "ml-team")
    worker = server.start_worker(issued["token"], "--name", "team-box")
    try:
        assert _wait_connected(server, "erin-token", "team-box")["group"] == "ml-team"
        assert api(server, "bob").get("/workers")["workers"] == []  # not his group's
        bobs = api(server, "bob").post("/tasks", shell("echo bobs"))
        erins = api(server, "erin").post("/tasks", shell("echo erins"))
        assert api(server, "erin").get(f"/tasks/{erins['id']}/wait?timeout=60")["state"] == "succeeded"
        waiting = api(server, "bob").get(f"/tasks/{bobs['id']}")
        assert waiting["state"] == "pending"
        assert waiting["reason"] == "no shared worker, nor one of yours, is connected"
    finally:
        worker.stop()


def test_a_group_quota_holds_from_a_members_first_submit(orch_factory) -> None:
    """Nobody asked for /info first: the submits themselves bring the users' hub groups."""
    server = orch_factory(
        workers=2,
        args=[*IDENTITY_ARGS, '--OrchApp.quotas={"groups": {"ml-team": {"running": 1}}}'],
        env=USERS,
    ).start()
    server.wait_workers()
    ws = server.ws("/events?types=task", token="erin-token")
    try:
        json.loads(ws.recv())  # hello
        hers = api(server, "erin").post("/tasks", shell("sleep 60"))
        while True:
            task = json.loads(ws.recv())["task"]
            if task["id"] == hers["id"] and task["state"] == "running":
                break
    finally:
        ws.close()
    alices = api(server, "alice").post("/tasks", shell())
    assert api(server, "alice").get(f"/tasks/{alices['id']}")["reason"] == (
        "waiting: your group ml-team runs 1 of its 1 tasks at once"
    )
    api(server, "erin").post(f"/tasks/{hers['id']}/cancel")
    assert api(server, "alice").get(f"/tasks/{alices['id']}/wait?timeout=60")["state"] == "succeeded"

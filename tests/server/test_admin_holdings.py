"""Who holds what now (``GET /admin/holdings``) and the caller's rights (``GET /info``), on a
server shared by several users (users as JupyterHub gives them, ``support/identities.py``)
with quotas: for those who may read everyone's work only (403 for anyone else), counted
as the scheduler and the submit check count them, against the quotas in force.

The worker's GPUs come from a stand-in ``pynvml`` (this machine has none): one local
worker with four H100s (``support/fakenvml``). Tasks hold their slot until the test creates a file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.client.http import HttpApi

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer
from support.rawhttp import raw

pytestmark = pytest.mark.timeout(180)

MODEL = "NVIDIA H100 80GB HBM3"  # what the stand-in pynvml reports
FAKE_NVML = Path(__file__).resolve().parents[1] / "support" / "fakenvml"
QUOTAS = {
    "default": {"gpus": 4, "running": 8, "queued": 1000},
    "users": {"bob": {"gpus": 1, "running": 4, "queued": 10}},
    "groups": {"ml-team": {"gpus": 2, "gpu_types": {"H100": 2}}},
}
BOBS_QUOTA = "waiting: you use 1 of your 1 GPUs"
USERS = dict(
    alice={"groups": ["ml-team"]},
    bob={},
    carol={"scopes": ["custom:orch:read-all"]},
    dana={"scopes": ["custom:orch:admin"]},
    hubadmin={"admin": True},
)


def fake_gpus_env(env: dict[str, str], gpus: int) -> dict[str, str]:
    """``env`` with the stand-in ``pynvml`` first on the path (the server's workers inherit it)."""
    return {**env, "PYTHONPATH": f"{FAKE_NVML}:{env['PYTHONPATH']}", "FAKE_GPUS": str(gpus)}


def held_task(go: Path, gpus: int = 1) -> dict[str, Any]:
    """A shell task that holds its slot (and GPUs) until ``go`` exists."""
    return {
        "kind": "shell",
        "command": f"while [ ! -e {go} ]; do sleep 0.05; done",
        "resources": {"gpus": gpus, "cpus": 0.25},
    }


def wait_task(server: OrchServer, task_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Block until ``done(task)`` holds, on the events stream of one who reads all."""
    ws = server.ws("/events?types=task", token="dana-token")
    ws.settimeout(60)
    deadline = time.monotonic() + 60
    try:
        json.loads(ws.recv())  # hello: subscribed from here on
        task = server.api("dana-token").get(f"/tasks/{task_id}")
        while not done(task):
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is {task['state']} ({task.get('reason')})")
            event = json.loads(ws.recv())
            if event.get("type") == "task" and event["task"]["id"] == task_id:
                task = event["task"]
        return task
    finally:
        ws.close()


def wait_state(server: OrchServer, task_id: str, *states: str) -> dict[str, Any]:
    return wait_task(server, task_id, lambda task: task["state"] in states)


def api(server: OrchServer, user: str) -> HttpApi:
    return server.api(f"{user}-token")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    root = tmp_path_factory.mktemp("holdings")
    server = OrchServer(
        root,
        workers=1,
        args=[
            *IDENTITY_ARGS,
            "--LocalProvider.slots_per_worker=4",
            f"--OrchApp.quotas={json.dumps(QUOTAS)}",
            '--OrchApp.weights={"groups": {"ml-team": 2}}',
        ],
        env=fake_gpus_env(hub_users(**USERS), 4),
    )
    try:
        server.start()
        workers = server.wait_workers()
        assert [len(w["gpus"]) for w in workers.values()] == [4], workers
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def busy(shared: OrchServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """alice runs one GPU task; bob runs one and waits with a second (his quota is 1 GPU)."""
    go = tmp_path / "go"
    for user in ("alice", "bob"):  # as their sidebars do: the server learns their hub groups
        api(shared, user).get("/info")
    tasks = {
        "alice": api(shared, "alice").post("/tasks", held_task(go))["id"],
        "bob": api(shared, "bob").post("/tasks", held_task(go))["id"],
    }
    for task_id in tasks.values():
        wait_state(shared, task_id, "running")
    tasks["bob-waiting"] = api(shared, "bob").post("/tasks", held_task(go))["id"]
    wait_task(shared, tasks["bob-waiting"], lambda task: task.get("reason") == BOBS_QUOTA)
    try:
        yield tasks
    finally:
        go.touch()
        for task_id in tasks.values():
            wait_state(shared, task_id, "succeeded", "cancelled")


def test_the_rights_in_info_follow_the_hub_scopes(shared: OrchServer) -> None:
    rights = {user: api(shared, user).get("/info") for user in USERS}
    assert {u: i["rights"] for u, i in rights.items()} == {
        "alice": {"read_all": False, "admin": False},
        "bob": {"read_all": False, "admin": False},
        "carol": {"read_all": True, "admin": False},
        "dana": {"read_all": True, "admin": True},
        "hubadmin": {"read_all": True, "admin": True},
    }
    assert all(i["shared"] is True and i["owner"] == u for u, i in rights.items())


def test_holdings_are_refused_to_those_who_may_not_read_all(shared: OrchServer, busy: dict[str, str]) -> None:
    for user in ("alice", "bob"):
        status, body = raw(shared, "GET", "/admin/holdings", token=f"{user}-token")
        assert status == 403 and body["error"] == "forbidden", body
        assert "custom:orch:read-all" in body["message"]
        assert "bob" not in json.dumps(body) and "alice" not in json.dumps(body)
    status, _ = raw(shared, "GET", "/admin/holdings", token="mallory-token")
    assert status in (401, 403)
    # the server's own API token acts as its owner, a user without scopes here
    status, _ = raw(shared, "GET", "/admin/holdings")
    assert status == 403


def test_holdings_per_user_and_group_against_their_quotas(shared: OrchServer, busy: dict[str, str]) -> None:
    for reader in ("carol", "dana", "hubadmin"):
        holdings = api(shared, reader).get("/admin/holdings")
        users = {u["user"]: u for u in holdings["users"]}
        assert set(users) == {"alice", "bob"}
        alice, bob = users["alice"], users["bob"]
        assert alice["groups"] == ["ml-team"] and alice["weight"] == 2.0  # the group's weight
        assert (alice["running"], alice["queued"], alice["gpus"]) == (1, 0, 1)
        assert alice["gpu_models"] == {MODEL: 1}
        assert alice["limits"] == {"gpus": 4, "gpu_types": {}, "running": 8, "queued": 1000}  # the default
        assert (bob["running"], bob["queued"], bob["gpus"]) == (1, 1, 1)
        assert bob["limits"] == {"gpus": 1, "gpu_types": {}, "running": 4, "queued": 10}
        assert bob["groups"] == [] and bob["weight"] == 1.0
        groups = {g["group"]: g for g in holdings["groups"]}
        team = groups["ml-team"]
        assert team["members"] == ["alice"] and team["weight"] == 2.0
        assert (team["running"], team["queued"], team["gpus"]) == (1, 0, 1)
        assert team["gpu_types"] == {"H100": 1}  # the types its quota names, held
        assert team["limits"] == {"gpus": 2, "gpu_types": {"H100": 2}, "running": None, "queued": None}
        assert holdings["fair_share"] is True
        assert holdings["capacity"] == {"workers": 1, "gpus": 4, "slots": 4}
        assert holdings["totals"] == {"running": 2, "queued": 1, "gpus": 2}
    # what holds bob's second task back is the quota the holdings show
    assert api(shared, "dana").get(f"/tasks/{busy['bob-waiting']}")["reason"] == BOBS_QUOTA


def test_an_admin_cancels_anothers_queued_task_and_the_holdings_follow(
    shared: OrchServer, busy: dict[str, str]
) -> None:
    waiting = busy["bob-waiting"]
    for user in ("alice", "carol"):  # another user, and one who may only read all
        status, body = raw(shared, "POST", f"/tasks/{waiting}/cancel", {}, token=f"{user}-token")
        assert status == 403, body
    assert api(shared, "bob").get(f"/tasks/{waiting}")["state"] == "pending"
    assert api(shared, "dana").post(f"/tasks/{waiting}/cancel", {})["state"] == "cancelled"
    assert api(shared, "bob").get(f"/tasks/{waiting}")["state"] == "cancelled"
    bob = {u["user"]: u for u in api(shared, "carol").get("/admin/holdings")["users"]}["bob"]
    assert (bob["running"], bob["queued"], bob["gpus"]) == (1, 0, 1)


def test_a_personal_server_is_not_shared_and_has_no_limits(orch_factory) -> None:
    server = orch_factory("personal", workers=0, args=["--OrchApp.provider=static"]).start()
    info = server.api().get("/info")
    assert info["shared"] is False and info["rights"] == {"read_all": True, "admin": True}
    task = server.api().post("/tasks", {"kind": "shell", "command": "true"})
    holdings = server.api().get("/admin/holdings")
    assert holdings["fair_share"] is False and holdings["capacity"]["gpus"] == 0
    (mine,) = holdings["users"]
    assert mine["user"] == info["owner"] and mine["queued"] == 1 and mine["running"] == 0
    assert mine["limits"] == {"gpus": None, "gpu_types": {}, "running": None, "queued": None}
    server.api().post(f"/tasks/{task['id']}/cancel", {})

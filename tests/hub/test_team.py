"""Team mode under a real JupyterHub: ``jupyter orch serve`` as a hub-managed service
(``server/hubauth.py``), the hub's users reaching it through the hub's proxy with their own
JupyterHub API tokens. Who they are, their groups, their scopes and whether they are hub
admins come from the hub; the orchestrator's rules (``core/access.py``) do the rest: alice's
task runs, bob gets 403 on it, carol (``custom:orch:read-all``) reads it but may not cancel
it, the hub admin cancels anyone's, and a token without the service's access scope gets
nothing. Every wait is on a log line or an HTTP answer."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import websocket

from jupyter_orch.core.errors import Forbidden, OrchError

from support.hubprocess import PROXY
from support.teamhub import USERS, TeamHub


@pytest.fixture
def team(tmp_path: Path) -> Any:
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run scripts/hub-test-deps.sh (scripts/test.sh does)")
    if shutil.which("jupyterhub", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("jupyterhub is not installed: pip install -e '.[test]'")
    hub = TeamHub(tmp_path / "team")
    try:
        yield hub.start()
    finally:
        hub.cleanup()


@pytest.mark.timeout(300)
def test_one_orchestrator_serves_the_hubs_users_each_with_their_rights(team: TeamHub) -> None:
    team.hub_api("POST", "/groups/ml-team")
    team.hub_api("POST", "/groups/ml-team/users", {"users": ["alice"]})
    alice, bob, carol, boss = (team.orch(team.user_token(u)) for u in USERS)

    info = alice.get("/info")
    assert info["owner"] == "alice"
    task = alice.post("/tasks", {"kind": "shell", "command": "echo trained on alices data"})
    assert alice.get(f"/tasks/{task['id']}/wait?timeout=90")["state"] == "succeeded"
    assert [t["id"] for t in alice.get("/tasks")["tasks"]] == [task["id"]]

    # bob: nothing of alice's
    with pytest.raises(Forbidden):
        bob.get(f"/tasks/{task['id']}")
    with pytest.raises(Forbidden):
        bob.get(f"/tasks/{task['id']}/logs")
    with pytest.raises(Forbidden, match="custom:orch:read-all"):
        bob.get("/tasks?owner=alice")
    assert bob.get("/tasks")["tasks"] == []

    # carol holds custom:orch:read-all (a hub role): she reads alice's work, changes none of it
    logs = carol.get(f"/tasks/{task['id']}/logs")
    assert "trained on alices data" in logs["lines"][0]["text"]
    with pytest.raises(Forbidden):
        carol.post(f"/tasks/{task['id']}/retry")

    # the hub admin cancels anyone's task, and sees everyone's usage with their hub groups
    long = bob.post("/tasks", {"kind": "shell", "command": "sleep 120"})
    assert boss.post(f"/tasks/{long['id']}/cancel")["state"] == "cancelled"
    usage = {u["user"]: u for u in boss.get("/admin/usage?since=1h")["users"]}
    assert usage["alice"]["groups"] == ["ml-team"]

    # a token of alice's without the service's access scope gets nothing from it
    narrow = team.orch(team.user_token("alice", scopes=["read:users:name!user=alice"]))
    with pytest.raises(OrchError) as refused:
        narrow.get("/tasks")
    assert refused.value.code in ("unauthorized", "forbidden")


@pytest.mark.timeout(300)
def test_a_hub_groups_properties_set_its_quota(team: TeamHub) -> None:
    team.hub_api("POST", "/groups/ml-team")
    team.hub_api("POST", "/groups/ml-team/users", {"users": ["alice", "bob"]})
    mark = len(team.output.lines)
    team.hub_api("PUT", "/groups/ml-team/properties", {"orch": {"quota": {"running": 1}}})
    team.output.wait_for("settings from the hub for: ml-team", 60, start=mark)
    alice, bob = team.orch(team.user_token("alice")), team.orch(team.user_token("bob"))
    hers = alice.post("/tasks", {"kind": "shell", "command": "sleep 60"})
    his = bob.post("/tasks", {"kind": "shell", "command": "sleep 60"})
    assert (
        bob.get(f"/tasks/{his['id']}")["reason"]
        == "waiting: your group ml-team runs 1 of its 1 tasks at once"
    )
    assert alice.get(f"/tasks/{hers['id']}")["state"] in ("scheduled", "running")
    # once alice's ends, bob's goes: subscribed first, so its start cannot be missed
    events = websocket.create_connection(
        bob.ws_url("/events?types=task"), header=[f"{k}: {v}" for k, v in bob.headers().items()], timeout=60
    )
    try:
        json.loads(events.recv())  # hello
        alice.post(f"/tasks/{hers['id']}/cancel")
        while True:
            task = json.loads(events.recv())["task"]
            if task["id"] == his["id"] and task["state"] in ("scheduled", "running"):
                break
    finally:
        events.close()
    bob.post(f"/tasks/{his['id']}/cancel")

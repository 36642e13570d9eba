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
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import websocket

from jupyter_orch.client.http import HttpApi
from jupyter_orch.core.errors import Forbidden, OrchError

from support.hubprocess import PROXY, start_hub, stop_hub
from support.orchserver import free_port
from support.output import Output

USERS = ("alice", "bob", "carol", "boss")
CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {users!r}
c.Authenticator.admin_users = {{"boss"}}
c.JupyterHub.custom_scopes = {{
    "custom:orch:read-all": {{"description": "read everyone's jupyter-orch work"}},
    "custom:orch:admin": {{"description": "manage everyone's jupyter-orch work"}},
}}
c.JupyterHub.services = [
    {{
        "name": "orch",
        "url": "http://127.0.0.1:{service_port}",
        "command": {command!r},
        "environment": {{"ORCH_TEST_TAG": {tag!r}, "PYTHONUNBUFFERED": "1"}},
        "oauth_no_confirm": True,
    }},
    {{"name": "test-admin", "api_token": {token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "admin:groups", "tokens"], "services": ["test-admin"]}},
    {{"name": "orch-service", "scopes": ["list:groups", "read:groups"], "services": ["orch"]}},
    {{"name": "user", "scopes": ["self", "access:services!service=orch"]}},
    {{"name": "orch-readers", "scopes": ["custom:orch:read-all"], "users": ["carol"]}},
]
"""


class TeamHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = uuid.uuid4().hex
        self.token = uuid.uuid4().hex
        self.port, self.hub_port, self.proxy_port, self.service_port = (free_port() for _ in range(4))
        self.output = Output("hub")
        self.proc: subprocess.Popen[str] | None = None
        root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "jupyter_orch",
            "serve",
            f"--ServerApp.port={self.service_port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.base_url=/services/orch/",
            "--OrchApp.owner_from=identity",
            "--ServerApp.identity_provider_class=jupyter_orch.server.hubauth.HubIdentityProvider",
            f"--OrchApp.data_dir={root / 'orch'}",
            "--LocalProvider.workers=2",
            "--OrchApp.hub_groups_interval=0.5",
        ]
        (root / "jupyterhub_config.py").write_text(
            CONFIG.format(
                port=self.port,
                hub_port=self.hub_port,
                proxy_port=self.proxy_port,
                service_port=self.service_port,
                proxy=str(PROXY),
                proxy_pid=str(root / "proxy.pid"),
                db=root / "hub.sqlite",
                cookie=str(root / "cookie_secret"),
                users=set(USERS),
                command=command,
                tag=self.tag,
                token=self.token,
            )
        )

    def start(self) -> TeamHub:
        self.proc = start_hub(self.root / "jupyterhub_config.py", self.tag, self.output)
        self.output.wait_for(": API at ", 120)  # the service's engine is up
        mark = f"connected to http://127.0.0.1:{self.service_port}/services/orch as"
        first = self.output.wait_for(mark, 120)  # its two workers
        self.output.wait_for(mark, 120, start=self.output.lines.index(first) + 1)
        return self

    def hub_api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/hub/api{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            data = resp.read()
            return json.loads(data) if data else None

    def user_token(self, user: str, **body: Any) -> str:
        return str(self.hub_api("POST", f"/users/{user}/tokens", {"note": "test", **body})["token"])

    def orch(self, token: str) -> HttpApi:
        """The orchestrator through the hub's proxy, as a user's kernel reaches it."""
        return HttpApi(f"http://127.0.0.1:{self.port}/services/orch", token)

    def cleanup(self) -> None:
        stop_hub(self.proc, self.tag)


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

"""jupyter-orch under a real JupyterHub (issue 12, item 6): a hub with the dummy
authenticator and ``SimpleLocalProcessSpawner`` on 127.0.0.1 (its own ports, database and
cookie secret under ``tmp_path``; configurable-http-proxy from ``scripts/hub-test-deps.sh``)
spawns a user's single-user server with the jupyter-orch extension and its local workers.

Stopping the user's server, then the hub itself, must leave no worker (nor executor, nor
single-user server) behind and remove the server's ``server.json`` and
``local-workers.json`` from the user's home; starting again, a task succeeds. The hub stops
a single-user server with SIGINT, which once ended it without running any extension's
stop: its workers stayed, dialling a port nobody listened on, and a server started later
adopted them and waited for them for ever.

Every wait is on an event: a log line of the hub (the single-user servers and their
workers log into its output too), an HTTP answer, a process exit.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.client.http import HttpApi

from support.hubprocess import PROXY, start_hub, stop_hub
from support.orchserver import free_port, tagged_pids, wait_gone
from support.output import Output

USER = "alice"
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
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = [
    "--allow-root",
    # only what the test needs of a single-user server: jupyter-orch (and the hub's own)
    "--ServerApp.jpserver_extensions="
    + repr({{name: False for name in ("jupyterlab", "jupyter_lsp", "notebook_shim", "jupyter_server_terminals")}}),
    "--LocalProvider.workers=2",
    "--LocalProvider.orphan_timeout=10",
    "--LocalProvider.stop_timeout=2",
]
c.Spawner.environment = {{"ORCH_TEST_TAG": {tag!r}, "PYTHONUNBUFFERED": "1"}}
c.Spawner.default_url = "/orch/api/v1/info"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services = [{{"name": "orch-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "orch-test", "scopes": ["admin:users", "admin:servers"], "services": ["orch-test"]}}
]
"""


class Hub:
    """A JupyterHub process of this test, its output kept for :meth:`wait_for_log`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = uuid.uuid4().hex
        self.token = uuid.uuid4().hex
        self.port, self.hub_port, self.proxy_port = free_port(), free_port(), free_port()
        self.home = root / "home" / USER
        self.proc: subprocess.Popen[str] | None = None
        self.output = Output("hub")
        root.mkdir(parents=True, exist_ok=True)
        (root / "jupyterhub_config.py").write_text(
            CONFIG.format(
                port=self.port,
                hub_port=self.hub_port,
                proxy_port=self.proxy_port,
                proxy=str(PROXY),
                proxy_pid=str(root / "proxy.pid"),
                db=root / "hub.sqlite",
                cookie=str(root / "cookie_secret"),
                home=str(root / "home" / "{username}"),
                singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
                tag=self.tag,
                token=self.token,
            )
        )

    def start(self) -> Hub:
        self.proc = start_hub(self.root / "jupyterhub_config.py", self.tag, self.output)
        return self

    @property
    def lines(self) -> list[str]:
        return self.output.lines

    def wait_for_log(self, text: str, timeout: float = 90, start: int = 0) -> str:
        return self.output.wait_for(text, timeout, start)

    def api(self, method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/hub/api{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                body = resp.read()
                return resp.status, json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def start_server(self) -> HttpApi:
        """Start the user's server; the orch API of it once a task ran there."""
        mark = len(self.lines)
        code, body = self.api("POST", f"/users/{USER}")
        assert code in (201, 409), (code, body)  # made, or known from before
        code, body = self.api("POST", f"/users/{USER}/server")
        assert code in (201, 202), (code, body)
        self.wait_for_log("jupyter-orch 0.", start=mark)  # the extension's "API at ..." line
        self.wait_for_log(f"User {USER} took", start=mark)  # the hub saw it ready
        info = json.loads(self.connection_file.read_text())
        api = HttpApi(info["url"], info["token"])
        task = api.post("/tasks", {"kind": "shell", "command": "echo hello from a worker"})
        done = api.get(f"/tasks/{task['id']}/wait", timeout=90)
        assert done["state"] == "succeeded", done
        assert "hello from a worker" in api.get(f"/tasks/{task['id']}/logs")["lines"][0]["text"]
        return api

    def stop_server(self) -> None:
        code, body = self.api("DELETE", f"/users/{USER}/server")
        assert code in (202, 204), (code, body)

    @property
    def orch_dir(self) -> Path:
        return self.home / ".local" / "share" / "jupyter" / "orch"

    @property
    def connection_file(self) -> Path:
        return self.orch_dir / "server.json"

    def server_processes(self) -> list[int]:
        """The single-user server, its workers, executors and tasks: everything tagged but
        the hub and its proxy."""
        mine = {self.proc.pid} if self.proc else set()
        try:
            mine.add(int((self.root / "proxy.pid").read_text()))
        except (OSError, ValueError):
            pass
        return [p for p in tagged_pids(self.tag) if p not in mine]

    def cleanup(self) -> None:
        stop_hub(self.proc, self.tag)


@pytest.fixture
def hub(tmp_path: Path) -> Any:
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run scripts/hub-test-deps.sh (scripts/test.sh does)")
    if shutil.which("jupyterhub-singleuser", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("jupyterhub is not installed: pip install -e '.[test]'")
    h = Hub(tmp_path / "hub")
    try:
        yield h
    finally:
        h.cleanup()


@pytest.mark.timeout(300)
def test_stopping_the_users_server_or_the_hub_leaves_nothing_and_a_new_start_works(hub: Hub) -> None:
    hub.start()
    hub.start_server()
    running = hub.server_processes()  # single-user server, 2 workers, their executors
    assert len(running) >= 5, running
    assert json.loads((hub.orch_dir / "local-workers.json").read_text())

    # the user's server is stopped by the hub (SIGINT first)
    mark = len(hub.lines)
    hub.stop_server()
    assert wait_gone(running) == []
    assert hub.server_processes() == []
    hub.wait_for_log("Shutting down", start=mark)  # its extensions' stop ran
    assert not hub.connection_file.exists()
    assert not (hub.orch_dir / "local-workers.json").exists()

    # started again: fresh workers (nothing to adopt), and a task runs
    hub.start_server()
    assert "adopted" not in "\n".join(hub.lines[mark:])
    running = hub.server_processes()

    # the hub itself stops (and stops the servers it spawned)
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.proc.wait(90) == 0
    assert wait_gone(running) == []
    assert tagged_pids(hub.tag) == []
    assert not hub.connection_file.exists()

    # a new hub, the same user: a task runs
    hub.start()
    api = hub.start_server()
    assert [w["name"] for w in api.get("/workers")["workers"]] != []

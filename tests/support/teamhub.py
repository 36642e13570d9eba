"""A JupyterHub in team mode for the tests under tests/hub: ``jupyter orch serve`` as a
hub-managed service (``/services/orch/``) and, with ``servers=True``, the users' own
single-user servers (SimpleLocalProcessSpawner) in client mode, pointed at the service as
the Helm chart's z2jh snippet points them (``JUPYTER_ORCH_SERVICE_URL``; the hub's ``server``
role lets their tokens reach the service). Users: alice, bob, carol (``custom:orch:read-all``)
and boss (a hub admin)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from jupyter_orch.client.http import HttpApi

from .hubprocess import PROXY, start_hub, stop_hub
from .orchserver import free_port
from .output import Output

USERS = ("alice", "bob", "carol", "boss")
FAKE_NVML = Path(__file__).resolve().parent / "fakenvml"
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
        "environment": {service_env!r},
        "oauth_no_confirm": True,
    }},
    {{"name": "test-admin", "api_token": {token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "admin:groups", "admin:servers", "tokens"], "services": ["test-admin"]}},
    {{"name": "orch-service", "scopes": ["list:groups", "read:groups"], "services": ["orch"]}},
    {{"name": "user", "scopes": ["self", "access:services!service=orch"]}},
    # the users' servers reach the service with their own token (client mode)
    {{"name": "server", "scopes": ["users:activity!user", "access:servers!server", "access:services!service=orch",
                                  "read:users:groups!user", "custom:orch:read-all", "custom:orch:admin"]}},
    {{"name": "orch-readers", "scopes": ["custom:orch:read-all"], "users": ["carol"]}},
]
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = [
    "--allow-root",
    "--ServerApp.jpserver_extensions=" + repr({{name: False for name in {disabled!r}}}),
]
c.Spawner.environment = {server_env!r}
c.Spawner.default_url = {default_url!r}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
"""


class TeamHub:
    def __init__(
        self, root: Path, service_args: list[str] | None = None, fake_gpus: int = 0, lab: bool = False
    ) -> None:
        """``lab``: the users' servers have JupyterLab (and open on it), for browser tests."""
        self.root = root
        self.tag = uuid.uuid4().hex
        self.token = uuid.uuid4().hex
        self.port, self.hub_port, self.proxy_port, self.service_port = (free_port() for _ in range(4))
        self.service_url = f"http://127.0.0.1:{self.service_port}/services/orch/"
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
            *(service_args or []),
        ]
        service_env = {"ORCH_TEST_TAG": self.tag, "PYTHONUNBUFFERED": "1"}
        if fake_gpus:  # its local workers see this many GPUs each
            service_env.update(PYTHONPATH=str(FAKE_NVML), FAKE_GPUS=str(fake_gpus))
        server_env = {
            "ORCH_TEST_TAG": self.tag,
            "PYTHONUNBUFFERED": "1",
            "JUPYTER_ORCH_SERVICE_URL": self.service_url,
        }
        if lab:  # the checkout's build linked into the user's data dir, before an installed copy
            server_env["JUPYTER_PREFER_ENV_PATH"] = "0"
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
                service_env=service_env,
                server_env=server_env,
                home=str(root / "home" / "{username}"),
                singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
                token=self.token,
                disabled=("jupyter_lsp", "notebook_shim", "jupyter_server_terminals")
                + (() if lab else ("jupyterlab",)),
                default_url="/lab" if lab else "/api/status",
            )
        )

    def start(self) -> TeamHub:
        self.proc = start_hub(self.root / "jupyterhub_config.py", self.tag, self.output)
        self.output.wait_for(": API at ", 120)  # the service's engine is up
        mark = f"connected to {self.service_url.rstrip('/')} as"
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

    def home(self, user: str) -> Path:
        path = self.root / "home" / user
        path.mkdir(parents=True, exist_ok=True)
        return path

    def server_url(self, user: str) -> str:
        return f"http://127.0.0.1:{self.port}/user/{user}"

    def start_server(self, user: str) -> None:
        """Start the user's single-user server (client mode), once the hub says it is ready."""
        self.home(user)
        mark = len(self.output.lines)
        self.hub_api("POST", f"/users/{user}/server")
        self.output.wait_for(f"User {user} took", 120, start=mark)

    def stop_server(self, user: str) -> None:
        mark = len(self.output.lines)
        self.hub_api("DELETE", f"/users/{user}/server")
        self.output.wait_for(f"User {user} server took", 120, start=mark)

    def cleanup(self) -> None:
        stop_hub(self.proc, self.tag)

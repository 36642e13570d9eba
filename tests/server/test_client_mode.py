"""Client mode (``server/clientmode.py``): a user's server that runs no engine and forwards
its ``/orch/api/v1`` to the orchestrator service, acting as its user with the token it was
given. Two real servers: the service (``jupyter orch serve`` with its local workers) and the
user's server (``service_url`` and ``service_token`` set; its own root directory, which the
service cannot see). Everything is asked of the user's server, with its own Jupyter token,
as the sidebar asks it."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
import websocket
from test_notebook_jobs import write_notebook

from jupyter_orch.client import Client
from jupyter_orch.client.http import HttpApi
from jupyter_orch.core.errors import OrchError


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from support.orchserver import OrchServer

    root = tmp_path_factory.mktemp("clientmode")
    service = OrchServer(root / "service").start()
    service.wait_workers()
    user = OrchServer(
        root / "user",
        workers=0,
        args=[f"--OrchApp.service_url={service.url}/", f"--OrchApp.service_token={service.token}"],
    )
    try:
        yield service, user.start()
    finally:
        user.cleanup()
        service.cleanup()


def local(server: Any, token: str | None = None) -> HttpApi:
    """The user's server itself (not the service its connection file names)."""
    return HttpApi(server.local_url, server.jupyter_token if token is None else token)


def raw_get(server: Any, path: str) -> tuple[int, dict[str, Any]]:
    """A GET with the path sent exactly as written (no client normalises its dots)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"token {server.jupyter_token}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def test_the_users_server_runs_no_engine_and_points_kernels_at_the_service(pair: Any) -> None:
    service, user = pair
    assert not (user.data_dir / "orch.sqlite").exists()
    # what kernels, terminals and the CLI find: the service and the token that acts as the user
    assert (user.url, user.token) == (service.url, service.token)
    assert local(user).get("/info")["owner"] == service.api().get("/info")["owner"]


def test_rest_calls_reach_the_service_and_their_answers_come_back(pair: Any) -> None:
    service, user = pair
    api = local(user)
    task = api.post("/tasks", {"kind": "shell", "command": "echo forwarded through the users server"})
    assert api.get(f"/tasks/{task['id']}/wait?timeout=60")["state"] == "succeeded"
    assert service.api().get(f"/tasks/{task['id']}")["state"] == "succeeded"  # it is the service's
    lines = api.get(f"/tasks/{task['id']}/logs")["lines"]
    assert any("forwarded through the users server" in line["text"] for line in lines)
    # the service's errors come back as it gave them
    with pytest.raises(OrchError) as missing:
        api.get("/tasks/0123456789abcdefghjkmnpqrs")
    assert missing.value.code == "not_found"
    with pytest.raises(OrchError) as bad:
        api.post("/tasks", {"kind": "shell", "command": "true", "retries": "many"})
    assert bad.value.code == "invalid" and bad.value.field == "retries"


def test_the_headers_that_describe_an_answer_come_back(pair: Any) -> None:
    _, user = pair
    api = local(user)
    client = Client(user.local_url, user.jupyter_token)
    try:
        future = client.submit(sum, [1, 2])
        assert future.result(timeout=60) == 3
    finally:
        client.close()
    task = {"id": future.id}
    conn = http.client.HTTPConnection("127.0.0.1", user.port, timeout=30)
    auth = {"Authorization": f"token {user.jupyter_token}"}
    conn.request("GET", f"/orch/api/v1/tasks/{task['id']}/result", headers=auth)
    resp = conn.getresponse()
    resp.read()
    assert (resp.status, resp.getheader("X-Orch-Result"), resp.getheader("X-Orch-State")) == (
        200,
        "value",
        "succeeded",
    )
    # a run's HTML file stays sandboxed, served from the user's server's origin too
    source = "name: page\ntasks:\n  - name: write\n    shell: echo '<script>alert(1)</script>' > $ORCH_RUN_DIR/r.html\n"
    run = api.post("/workflows", {"source": source, "filename": "page.yaml"})
    assert api.get(f"/workflows/{run['id']}/wait?timeout=60")["state"] == "succeeded"
    conn.request("GET", f"/orch/api/v1/workflows/{run['id']}/files/r.html", headers=auth)
    resp = conn.getresponse()
    assert b"<script>" in resp.read()
    assert resp.getheader("Content-Security-Policy") == "sandbox"


def test_websockets_are_joined_to_the_services_events_and_session(pair: Any) -> None:
    service, user = pair
    api = local(user)
    events = websocket.create_connection(
        api.ws_url("/events?types=task"),
        header=[f"{k}: {v}" for k, v in api.headers().items()],
        timeout=60,
        suppress_origin=True,
    )
    try:
        assert json.loads(events.recv())["type"] == "hello"
        task = service.api().post("/tasks", {"kind": "shell", "command": "true"})
        while True:
            event = json.loads(events.recv())
            if event.get("task", {}).get("id") == task["id"] and event["task"]["state"] == "succeeded":
                break
    finally:
        events.close()
    # the SDK's session (binary frames both ways), through the user's server
    client = Client(user.local_url, user.jupyter_token)
    try:
        assert client.submit(sum, [1, 2, 39]).result(timeout=60) == 42
    finally:
        client.close()


def test_run_as_job_reads_the_notebook_where_the_users_files_are(pair: Any) -> None:
    service, user = pair
    write_notebook(Path(user.root) / "jobs" / "mine.ipynb")
    assert not (Path(service.root) / "jobs" / "mine.ipynb").exists()
    api = local(user)
    params = api.request("GET", "/notebooks/parameters", query={"path": "jobs/mine.ipynb"})
    assert [p["name"] for p in params["parameters"]][:2] == ["lr", "epochs"]
    task = api.post("/notebooks/run", {"path": "jobs/mine.ipynb", "parameters": {"lr": 0.5, "epochs": 4}})
    assert api.get(f"/tasks/{task['id']}/wait?timeout=120")["state"] == "succeeded"
    assert api.get(f"/tasks/{task['id']}/outputs")["outputs"]["score"] == 2.0


@pytest.mark.parametrize(
    "path",
    [
        "/orch/api/v1/..%2F..%2Fapi%2Fstatus",
        "/orch/api/v1/%2e%2e/%2e%2e/api/status",
        "/orch/api/v1/tasks/../../../api/status",
        "/orch/api/v1/tasks%5c..%5c..%5capi",
    ],
)
def test_a_path_that_would_leave_the_services_api_is_refused(pair: Any, path: str) -> None:
    _, user = pair
    status, body = raw_get(user, path)
    assert (status, body["error"]) == (400, "invalid")
    assert "not an API path" in body["message"]


def test_without_a_login_nothing_is_forwarded(pair: Any) -> None:
    _, user = pair
    with pytest.raises(OrchError) as refused:
        local(user, token="").get("/tasks")
    assert refused.value.code in ("unauthorized", "forbidden")


def test_a_bad_service_url_stops_the_server_naming_the_setting(tmp_path: Path) -> None:
    from support.orchserver import OrchServer

    server = OrchServer(
        tmp_path / "bad", workers=0, args=["--OrchApp.service_url=ftp://orch/", "--OrchApp.service_token=t"]
    )
    try:
        with pytest.raises(RuntimeError) as failed:
            server.start()
        assert "c.OrchApp.service_url must be the service's http(s) URL" in str(failed.value)
    finally:
        server.cleanup()


def test_a_service_that_does_not_answer_is_named(tmp_path: Path) -> None:
    from support.orchserver import OrchServer, free_port

    gone = f"http://127.0.0.1:{free_port()}/services/orch/"
    user = OrchServer(
        tmp_path / "user", workers=0, args=[f"--OrchApp.service_url={gone}", "--OrchApp.service_token=t"]
    )
    try:
        user.start()
        with pytest.raises(OrchError) as down:
            local(user).get("/tasks")
        assert down.value.code == "unavailable"
        assert f"the orchestrator service at {gone} did not answer" in down.value.message
        api = local(user)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                api.ws_url("/events"),
                header=[f"{k}: {v}" for k, v in api.headers().items()],
                suppress_origin=True,
            )
        assert refused.value.status_code == 503
    finally:
        user.cleanup()

"""The WebSocket routes seen from plain HTTP, and the server's log on ordinary events: a
client's session ending (``client.close()``, or its process exiting) and a plain GET on a
WebSocket route must leave nothing in the log an operator would have to look at.

Issue 12, item 9: every SDK client that exited left "Uncaught exception GET
/orch/api/v1/session?batch=1 ... RuntimeError: Method not supported for Web Sockets" and
"Cannot send error response after headers written"; a plain GET on a WebSocket route
answered text/html, and a TRACE on one ended in "Uncaught exception in write_error".
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from jupyter_orch.server.app import API

WEBSOCKET_ROUTES = (
    "/events",
    "/session",
    "/tasks/00000000000000000000000000/logs/follow",
    "/workers/connect",
)
NOISE = ("Uncaught exception", "Traceback", "Cannot send error response", "Failed to flush")
CLOSED = "GET /orch/api/v1/session: WebSocket closed"  # the server's debug line


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own (its log is read whole), logging at debug level: the
    end of every WebSocket is a line there, so the test knows when the server is done with
    one instead of sleeping."""
    from support.orchserver import OrchServer

    srv = OrchServer(tmp_path_factory.mktemp("ws"), workers=1, args=["--OrchApp.log_level=DEBUG"])
    try:
        srv.start()
        srv.wait_workers()
        yield srv
    finally:
        srv.cleanup()


def flush_log(server) -> str:
    """Everything the server logged up to now: a request it answers after the events of
    interest, whose own log line is awaited, puts every earlier line in the pipe first."""
    marker = "/no/such/path/log-marker-" + os.urandom(4).hex()
    req = urllib.request.Request(
        server.url + API + marker, headers={"Authorization": f"Bearer {server.token}"}
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req)
    server.wait_for_log(marker)
    return "\n".join(server.lines)


def wait_closed(server, start: int) -> int:
    """Wait for the next session's end logged from line ``start`` on; the line after it."""
    line = server.wait_for_log(CLOSED, start=start)
    return server.lines.index(line, start) + 1


def test_client_sessions_end_without_noise_in_the_log(server):
    start = len(server.lines)
    client = server.client()
    assert client.submit(sum, [1, 2]).result(timeout=60) == 3
    client.close()
    start = wait_closed(server, start)

    # a script that connects and exits (jupyter_orch.connect() as a kernel or job does)
    env = dict(os.environ, JUPYTER_ORCH_URL=server.url, JUPYTER_ORCH_TOKEN=server.token)
    script = "import jupyter_orch; print(jupyter_orch.connect().submit(max, [4, 5]).result(timeout=60))"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "5", done.stderr
    wait_closed(server, start)  # the script's session ended on the server too

    log = flush_log(server)
    for noise in NOISE:
        assert noise not in log, log


def test_a_plain_get_on_a_websocket_route_is_a_clean_400(server):
    worker_token = server.api().post("/workers/tokens", {"name": "plain-get"})["token"]
    start = len(server.lines)
    for route in WEBSOCKET_ROUTES:
        token = worker_token if route == "/workers/connect" else server.token
        req = urllib.request.Request(server.url + API + route, headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        answer = info.value
        assert answer.code == 400, route
        assert answer.headers["Content-Type"] == "application/json"
        body = json.loads(answer.read())
        assert body["error"] == "invalid" and body["field"] == "Upgrade", body
        assert body["message"].startswith("this is a WebSocket endpoint: "), body
    log = flush_log(server)
    mine = [line for line in server.lines[start:] if any(API + r in line for r in WEBSOCKET_ROUTES)]
    assert len([line for line in mine if "not a WebSocket request" in line]) == len(WEBSOCKET_ROUTES), mine
    assert all(line.startswith(("[I ", "[D ")) for line in mine if line.startswith("[")), mine
    for noise in NOISE:
        assert noise not in log, log


def test_a_handshake_missing_a_part_is_named(server):
    """Upgrade and Connection but no version: a 400 naming the header, offering version 13
    (http.client: urllib would replace the Connection header)."""
    conn = http.client.HTTPConnection(server.url.split("//", 1)[1], timeout=30)
    headers = {"Authorization": f"Bearer {server.token}", "Upgrade": "websocket", "Connection": "Upgrade"}
    conn.request("GET", API + "/events", headers=headers)
    answer = conn.getresponse()
    assert answer.status == 400
    assert answer.headers["Sec-WebSocket-Version"] == "13"
    assert json.loads(answer.read())["field"] == "Sec-WebSocket-Version"
    conn.close()


def test_odd_methods_on_websocket_routes_are_405s_without_noise(server):
    start = len(server.lines)
    for route in WEBSOCKET_ROUTES:
        for method in ("TRACE", "POST", "DELETE"):
            req = urllib.request.Request(
                server.url + API + route, method=method, headers={"Authorization": f"Bearer {server.token}"}
            )
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req)
            assert info.value.code == 405 and info.value.headers["Allow"] == "GET", (method, route)
            assert json.loads(info.value.read())["error"] == "method_not_allowed"
    flush_log(server)
    log = "\n".join(server.lines[start:])
    for noise in NOISE:
        assert noise not in log, log

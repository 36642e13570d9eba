"""The REST API of a real server: bad input gets a clear error naming the field, and
nothing is lost; errors have the public shape ``{"error", "message", "field"}``."""

from __future__ import annotations

import base64
import sys
import urllib.request

import cloudpickle
import pytest

from jupyter_orch.core.errors import Conflict, Forbidden, NotFound, SpecError, TooLarge, Unauthorized
from jupyter_orch.core.ids import new_id
from jupyter_orch.serialization import dumps_call

from support.rawhttp import raw

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def double(x):
    return 2 * x


def function_task(fn, *args, **fields):
    payload, _ = dumps_call(fn, args)
    return {"kind": "function", "payload": base64.b64encode(payload).decode(), **fields}


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"memory": "lots"}, "resources.memory"),
        ({"gpus": -1}, "resources.gpus"),
        ({"gpus": "abc"}, "resources.gpus"),
        ({"cpus": -2}, "resources.cpus"),
        ({"gpu_type": "A100"}, "resources.gpu_type"),
        ({"disk": "1Gi"}, "resources.disk"),
        ({"labels": {"bad key!": "x"}}, "resources.labels.bad key!"),
    ],
)
def test_malformed_resources_are_a_400_naming_the_field(orch, resources, field):
    before = orch.api().get("/info")["counts"]
    status, body = raw(orch, "POST", "/tasks", {"kind": "shell", "command": "true", "resources": resources})
    assert status == 400
    assert body["error"] == "invalid" and body["field"] == field and body["message"]
    assert orch.api().get("/info")["counts"] == before  # nothing was stored


def test_other_bad_bodies(orch):
    assert raw(orch, "POST", "/tasks", b"{not json")[0] == 400
    status, body = raw(orch, "POST", "/tasks", {"kind": "shell"})
    assert (status, body["field"]) == (400, "command")
    status, body = raw(orch, "POST", "/tasks", {"kind": "teleport"})
    assert (status, body["field"]) == (400, "kind")
    status, body = raw(orch, "POST", "/tasks", {"kind": "function"})
    assert (status, body["field"]) == (400, "payload")
    status, body = raw(orch, "POST", "/tasks", {"kind": "shell", "command": "true", "depends": [new_id()]})
    assert (status, body["field"], body["error"]) == (
        404,
        "depends",
        "not_found",
    )  # well formed: the task is missing
    status, body = raw(
        orch,
        "POST",
        "/tasks",
        {
            "tasks": [
                {"kind": "shell", "command": "true"},
                {"kind": "shell", "command": "true", "retries": -1},
            ]
        },
    )
    assert (status, body["field"]) == (400, "tasks[1].retries")


def test_batch_submit_is_all_or_nothing_and_idempotent(orch):
    api = orch.api()
    ids = [new_id() for _ in range(3)]
    body = {"tasks": [{"id": i, "kind": "shell", "command": f"echo {n}"} for n, i in enumerate(ids)]}
    first = api.post("/tasks", body)
    again = api.post("/tasks", body)  # a retried request creates nothing new
    assert [t["id"] for t in first["tasks"]] == ids == [t["id"] for t in again["tasks"]]
    assert len(api.get("/tasks", q=ids[0])["tasks"]) == 1
    for task_id in ids:
        assert api.get(f"/tasks/{task_id}/wait", timeout=30)["state"] == "succeeded"


def test_unknown_id_is_404_and_wrong_state_is_409(orch):
    api = orch.api()
    with pytest.raises(NotFound):
        api.get(f"/tasks/{new_id()}")
    task = api.post("/tasks", {"kind": "shell", "command": "echo done"})
    assert api.get(f"/tasks/{task['id']}/wait", timeout=30)["state"] == "succeeded"
    with pytest.raises(Conflict, match="already succeeded"):
        api.post(f"/tasks/{task['id']}/cancel")
    with pytest.raises(Conflict):
        api.post(f"/tasks/{task['id']}/retry")
    status, body = raw(orch, "POST", f"/tasks/{task['id']}/cancel")
    assert status == 409 and body["error"] == "wrong_state"


def test_payload_over_the_limit_is_413(orch_factory):
    server = orch_factory(workers=1, args=["--OrchApp.max_payload_size=1Ki"]).start()
    status, body = raw(server, "POST", "/tasks", function_task(double, b"x" * 4096))
    assert status == 413 and body["error"] == "too_large" and body["field"] == "payload"
    with pytest.raises(TooLarge):
        server.client().submit(double, b"x" * 4096)


def test_corrupt_pickle_fails_that_task_not_the_server(orch):
    api = orch.api()
    good = function_task(double, 21)
    payload = base64.b64decode(good["payload"])
    truncated = {"kind": "function", "payload": base64.b64encode(payload[: len(payload) // 2]).decode()}
    garbage = {"kind": "function", "payload": base64.b64encode(b"\x80\x05not a pickle").decode()}
    for body in (truncated, garbage):
        task = api.post("/tasks", body)
        done = api.get(f"/tasks/{task['id']}/wait", timeout=30)
        assert done["state"] == "failed"
        assert done["error_kind"] == "bad_payload"
        assert "could not be unpickled" in done["error"]
    # the server and workers are fine
    task = api.post("/tasks", good)
    assert api.get(f"/tasks/{task['id']}/wait", timeout=30)["state"] == "succeeded"


def test_bad_base64_payload(orch):
    status, body = raw(orch, "POST", "/tasks", {"kind": "function", "payload": "%%%"})
    assert (status, body["field"]) == (400, "payload")


def test_credentials(orch):
    status, body = raw(orch, "GET", "/tasks", token="orch_not-a-real-token")
    assert status == 401 and body["error"] == "unauthorized"
    with pytest.raises(Unauthorized):
        orch.api("orch_wrong").get("/tasks")
    # Jupyter's own token is accepted too
    status, _ = raw(orch, "GET", "/tasks", token=orch.jupyter_token)
    assert status == 200
    # a worker token is not an API token
    worker_token = orch.api().post("/workers/tokens", {"name": "t1"})["token"]
    assert raw(orch, "GET", "/tasks", token=worker_token)[0] == 401
    # no credentials at all
    req = urllib.request.Request(orch.url + "/orch/api/v1/tasks")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code in (401, 403)


def test_unplaceable_task_says_why(orch):
    api = orch.api()
    task = api.post("/tasks", {"kind": "shell", "command": "true", "resources": {"gpus": 4}})
    info = api.get(f"/tasks/{task['id']}/wait", timeout=2)
    assert info["state"] == "pending"
    assert "no worker has 4 gpus" in info["reason"]
    task2 = api.post(
        "/tasks", {"kind": "shell", "command": "true", "resources": {"labels": {"zone": "mars"}}}
    )
    assert "label zone=mars" in api.get(f"/tasks/{task2['id']}/wait", timeout=2)["reason"]
    api.post(f"/tasks/{task['id']}/cancel")
    api.post(f"/tasks/{task2['id']}/cancel")


def test_logs_endpoint_and_attempts(orch):
    api = orch.api()
    task = api.post("/tasks", {"kind": "shell", "command": "echo alpha; echo beta >&2"})
    api.get(f"/tasks/{task['id']}/wait", timeout=30)
    logs = api.get(f"/tasks/{task['id']}/logs")
    assert [(line["stream"], line["text"].strip()) for line in logs["lines"]] == [
        ("stdout", "alpha"),
        ("stderr", "beta"),
    ]
    assert logs["next_offset"] == 2
    assert api.get(f"/tasks/{task['id']}/logs", offset=1)["lines"][0]["text"].strip() == "beta"
    detail = api.get(f"/tasks/{task['id']}")
    assert [a["state"] for a in detail["attempts"]] == ["succeeded"]
    attempt = detail["attempts"][0]
    assert attempt["exit_code"] == 0
    assert attempt["worker_id"] == detail["worker_id"]
    assert attempt["scheduled_at"] <= attempt["started_at"] <= attempt["ended_at"]


def test_list_filters(orch):
    api = orch.api()
    with pytest.raises(SpecError) as info:
        api.get("/tasks", state="sleeping")
    assert info.value.field == "state"
    task = api.post("/tasks", {"kind": "shell", "command": "true", "name": "findme-xyz"})
    api.get(f"/tasks/{task['id']}/wait", timeout=30)
    found = api.get("/tasks", q="findme-xyz", state="succeeded")["tasks"]
    assert [t["id"] for t in found] == [task["id"]]
    later = api.post("/tasks", {"kind": "shell", "command": "true", "name": "findme-later"})
    newest = api.get("/tasks", limit=2)["tasks"]
    assert [t["id"] for t in newest] == [later["id"], task["id"]]
    assert newest[0]["created_at"] >= newest[1]["created_at"]
    # each task says its place in submit order, and ?before= pages on from there
    assert newest[0]["seq"] > newest[1]["seq"]
    older = api.get("/tasks", limit=1, before=newest[0]["seq"])["tasks"]
    assert [t["id"] for t in older] == [newest[1]["id"]]


def test_results_belong_to_their_owner(orch_factory):
    server = orch_factory(workers=1, args=["--OrchApp.owner_from=identity"]).start()
    server.wait_workers()
    task = server.api().post("/tasks", function_task(double, 4))
    server.api().get(f"/tasks/{task['id']}/wait", timeout=30)
    # through Jupyter's own token the caller is another (anonymous) user
    with pytest.raises(Forbidden):
        server.api(server.jupyter_token).get(f"/tasks/{task['id']}")
    status, body = raw(server, "GET", f"/tasks/{task['id']}/result", token=server.jupyter_token)
    assert status == 403 and body["error"] == "forbidden"


def test_a_result_is_served_as_the_bytes_it_is(orch):
    """The pickled value, as the document says: application/octet-stream (the handler's base
    class said application/json; the contract test's server runs no task, so it never saw
    a result)."""
    task = orch.api().post("/tasks", function_task(double, 21))
    assert orch.api().get(f"/tasks/{task['id']}/wait?timeout=60")["state"] == "succeeded"
    req = urllib.request.Request(
        orch.url + f"/orch/api/v1/tasks/{task['id']}/result",
        headers={"Authorization": f"Bearer {orch.token}"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["X-Orch-Result"] == "value"
        assert cloudpickle.loads(resp.read()) == 42

"""Nested tasks: ``jupyter_orch.connect()`` inside a task, with a token scoped to the
task's owner that works only while the task runs."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

import cloudpickle
import pytest

from jupyter_orch.client import TaskCancelled

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


def fan_out(n):
    import os

    import jupyter_orch

    client = jupyter_orch.connect()
    children = [client.submit(pow, 2, i) for i in range(n)]
    url, token = os.environ["JUPYTER_ORCH_URL"], os.environ["JUPYTER_ORCH_TOKEN"]
    request = urllib.request.Request(
        url + "/orch/api/v1/workers/tokens",
        data=json.dumps({"name": "sneaky"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request)
        status = 201
    except urllib.error.HTTPError as exc:
        status = exc.code
    return [c.result(60) for c in children], [c.id for c in children], token, status


def call(orch, path, token):
    request = urllib.request.Request(
        orch.url + "/orch/api/v1" + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_task_submits_subtasks_as_its_owner(orch):
    client = orch.client()
    parent = client.submit(fan_out, 3)
    values, child_ids, token, token_status = parent.result(90)
    assert values == [1, 2, 4]
    owner = parent.info()["owner"]
    assert {orch.api().get(f"/tasks/{i}")["owner"] for i in child_ids} == {owner}
    assert token.startswith("orch_task_" + parent.id)
    assert token_status == 403  # a task cannot issue tokens
    # once the task has ended, its token opens nothing
    status, body = call(orch, "/tasks", token)
    assert status == 401 and "task token" in body["message"]


def test_a_forged_task_token_is_refused(orch):
    client = orch.client()
    running = client.submit_shell("sleep 30")
    running.accepted()
    forged = f"orch_task_{running.id}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    status, _ = call(orch, "/tasks", forged)
    assert status == 401
    running.cancel()
    with pytest.raises(TaskCancelled):
        running.result(30)

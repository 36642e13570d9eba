"""Bad input to the REST handlers is a 400 (or the status the document gives) in the error
shape, naming the field: never a 500. Each case here was found by fuzzing the API against
its document (issue 12, item 4; tests/contract fuzzes the rest)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import websocket

from jupyter_orch.core.errors import NotFound, SpecError
from jupyter_orch.server.app import API

WORKFLOW = "name: bad-input\ntasks:\n  - name: a\n    shell: echo a\n"


def get(server, path):
    req = urllib.request.Request(server.url + API + path, headers={"Authorization": f"Bearer {server.token}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    return info.value.code, json.loads(info.value.read())


def test_query_numbers_out_of_range_or_empty_are_400s(orch):
    for path, field in (
        ("/tasks?limit=1000&before=56032657795826327552", "before"),  # was a 500 (SQLite overflow)
        ("/tasks?before=", "before"),  # was taken for "no value"
        ("/tasks?limit=", "limit"),
        ("/tasks?limit=%D9%A1", "limit"),  # an Arabic-Indic digit: int() reads it, the document does not
        ("/workflows?limit=", "limit"),
        ("/workflows?before=not-a-run-id", "before"),
        ("/tasks/00000000000000000000000000/wait?timeout=nan", "timeout"),
        ("/tasks/00000000000000000000000000/result?wait=-1", "wait"),
    ):
        status, body = get(orch, path)
        assert (status, body["error"], body.get("field")) == (400, "invalid", field), (path, body)


def test_a_log_attempt_the_task_has_not_had_is_a_404(orch):
    task = orch.api().post("/tasks", {"kind": "shell", "command": "true", "resources": {"gpus": 64}})
    status, body = get(orch, f"/tasks/{task['id']}/logs?attempt=1")  # it never ran (no such GPUs)
    assert (status, body["field"]) == (404, "attempt"), body
    orch.api().post(f"/tasks/{task['id']}/cancel")


def test_a_bad_query_on_a_log_follow_is_a_400_before_the_upgrade(orch):
    """It was a ValueError in a task after the upgrade: a socket that closed at once."""
    task = orch.api().post("/tasks", {"kind": "shell", "command": "true"})
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        orch.ws(f"/tasks/{task['id']}/logs/follow?attempt=first")
    assert info.value.status_code == 400
    assert json.loads(info.value.resp_body)["field"] == "attempt"


def test_unknown_fields_of_a_batch_and_a_token_request_are_named(orch):
    api = orch.api()
    with pytest.raises(SpecError) as info:
        api.post("/tasks", {"tasks": [{"kind": "shell", "command": "true"}], "priority": 5})
    assert info.value.field == "priority"
    with pytest.raises(SpecError) as info:
        api.post("/workers/tokens", {"name": "t", "scope": "api"})
    assert info.value.field == "scope"
    with pytest.raises(SpecError) as info:
        api.post("/workers/tokens", {"name": "a\0b"})
    assert info.value.field == "name"


def test_a_nul_in_a_workflow_request_path_or_name_is_a_400_naming_it(orch):
    """Names and paths of a run request are stored and used as file names: a NUL in one is
    refused before anything reads a file (as for a notebook's path)."""
    api = orch.api()
    for body, field in (
        ({"filename": "pipe\0line.yaml"}, "filename"),
        ({"base_dir": "/tmp/\0"}, "base_dir"),
        ({"files": {"a\0.ipynb": {}}}, "files.a\0.ipynb"),
    ):
        with pytest.raises(SpecError) as info:
            api.post("/workflows", {"source": WORKFLOW, **body})
        assert info.value.field == field, info.value.message
    with pytest.raises(SpecError) as info:
        api.post("/workflows/schedules", {"source": WORKFLOW, "cron": "0 3 * * *", "name": "n\0"})
    assert info.value.field == "name"
    run = api.post("/workflows", {"source": WORKFLOW})
    status, body = get(orch, f"/workflows/{run['id']}/files/a%00b")
    assert (status, body["field"]) == (400, "path"), body
    status, body = get(orch, f"/workflows/{run['id']}/files/{'x' * 300}")  # ENAMETOOLONG: was a 500
    assert (status, body["field"]) == (400, "path"), body
    with pytest.raises(NotFound):
        api.get(f"/workflows/{run['id']}/files/a/b/c.txt")

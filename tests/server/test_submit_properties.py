"""Hypothesis against a real server's submit endpoints: any body is answered 201, 400 or
413 in the public error shape (never a 500), and what was accepted is there to read."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.rawhttp import raw

any_text = st.text(st.characters(codec=None), max_size=30)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=12,
)
keys = st.sampled_from(
    ["name", "image", "priority", "retries", "timeout", "env", "depends", "metadata", "resources", "x"]
)
# the command stays `true`: every accepted task really runs on the workers
bodies = st.dictionaries(keys, values, max_size=6).map(lambda d: {**d, "kind": "shell", "command": "true"})
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def send(orch: Any, path: str, body: Any) -> tuple[int, Any]:
    # json.dumps writes NaN and lone surrogates (as escapes): what a clumsy client sends
    return raw(orch, "POST", path, json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def check_error(status: int, answer: Any) -> None:
    assert status in (400, 413), (status, answer)
    assert set(answer) <= {"error", "message", "field", "problems"}
    assert answer["error"] == {400: "invalid", 413: "too_large"}[status] and answer["message"]


@SETTINGS
@given(bodies)
def test_any_task_body_is_accepted_or_refused_cleanly(orch, body: dict[str, Any]) -> None:
    status, answer = send(orch, "/tasks", body)
    if status == 201:
        status, stored = raw(orch, "GET", f"/tasks/{answer['id']}")
        assert status == 200 and stored["id"] == answer["id"]
    else:
        check_error(status, answer)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["source", "filename", "params", "files", "base_dir", "y"]), values))
def test_any_workflow_body_is_accepted_or_refused_cleanly(orch, body: dict[str, Any]) -> None:
    status, answer = send(orch, "/workflows", body)
    if status != 201:
        check_error(status, answer)


@SETTINGS
@given(values)
def test_any_workflow_document_is_accepted_or_refused_cleanly(orch, doc: Any) -> None:
    try:
        source = yaml.safe_dump(doc)
    except (yaml.YAMLError, UnicodeError):  # not a document YAML can write
        return
    status, answer = send(orch, "/workflows", {"source": source, "filename": "any.yaml"})
    if status != 201:
        check_error(status, answer)

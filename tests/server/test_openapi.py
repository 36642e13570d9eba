"""The OpenAPI document against the real handlers: every route documented with exactly
the methods it implements (and nothing documented that has no route), every 405 naming the
methods in ``Allow``, and real responses valid against the documented schemas. The fuzzed
contract (every operation, valid and invalid requests) is ``tests/contract``."""

from __future__ import annotations

import json
import re
import urllib.request

import jsonschema
import pytest
from openapi_spec_validator import validate
from tornado.web import RequestHandler

from jupyter_orch.core.errors import SpecError
from jupyter_orch.server import openapi
from jupyter_orch.server.app import API, OrchApp
from jupyter_orch.server.base import allowed_methods

METHODS = ("get", "post", "put", "patch", "delete")
# registered routes the document does not list, and why
UNDOCUMENTED = {
    "/orch/metrics": "Prometheus text at /orch/metrics, outside the API base (docs/architecture.md)",
    API + "/.*": "any other path under the API base: a JSON 404 (UnknownPathHandler)",
}


def documented_routes() -> dict[str, set[str]]:
    doc = openapi.document()
    items = {**doc["paths"], **doc["x-websockets"]}
    return {path: set(ops) & set(METHODS) for path, ops in items.items()}


def registered() -> list[tuple[str, type[RequestHandler]]]:
    app = OrchApp()
    app.initialize_handlers()
    return list(app.handlers)


def handler_routes() -> dict[str, set[str]]:
    routes = {}
    for pattern, handler in registered():
        if pattern in UNDOCUMENTED:
            continue
        assert pattern.startswith(API), pattern
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern[len(API) :])
        implemented = {m for m in METHODS if getattr(handler, m) is not getattr(RequestHandler, m)}
        routes[path] = implemented
    return routes


def test_document_is_valid_openapi():
    validate(openapi.document())


def test_every_route_is_documented_with_its_methods():
    """Both ways: a route the server has is in the document (``paths``, or ``x-websockets``
    for a WebSocket route) with the methods its handler implements, and every documented
    path is a route."""
    assert handler_routes() == documented_routes()
    assert not set(openapi.document()["paths"]) & set(openapi.document()["x-websockets"])
    assert {p for p, _ in registered()} >= set(UNDOCUMENTED)


def example_url(pattern: str) -> str:
    """A URL the route matches (ids of the right shape; objects need not exist)."""
    if pattern == API + "/.*":
        return API + "/no/such/path"
    path = re.sub(r"\(\?P<(\w+)_id>[^)]*\)", "0" * 26, pattern)
    return re.sub(r"\(\?P<path>[^)]*\)", "a.txt", path)


def test_every_405_names_the_methods_the_route_has(orch):
    """Every route (REST, WebSocket, metrics and the JSON 404 of unknown paths), asked with
    a method it does not have, answers 405 in the error shape with ``Allow`` listing
    exactly the methods its handler implements: the documented ones, plus OPTIONS (CORS
    preflight) where Jupyter's API handler answers it. A TRACE on a WebSocket route once
    ended in "Uncaught exception in write_error"."""
    doc = documented_routes()
    checked = 0
    start = len(orch.lines)
    for pattern, handler in registered():
        allowed = allowed_methods(handler)
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern[len(API) :])
        if pattern not in UNDOCUMENTED:
            assert {m.lower() for m in allowed} - {"options"} == doc[path], pattern
        methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "TRACE")
        if pattern == API + "/.*":
            methods = ("TRACE",)  # a method tornado knows is a 404 there (no such path), not a 405
        for method in methods:
            if method in allowed:
                continue
            req = urllib.request.Request(
                orch.url + example_url(pattern),
                method=method,
                headers={"Authorization": f"Bearer {orch.token}"},
                data=b"{}" if method in ("POST", "PUT", "PATCH") else None,
            )
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req)
            answer = info.value
            assert answer.code == 405, (method, pattern, answer.code)
            assert answer.headers["Allow"] == ", ".join(allowed), (method, pattern)
            if method != "HEAD":
                body = json.loads(answer.read())
                assert body["error"] == "method_not_allowed" and method in body["message"], body
            checked += 1
    assert checked > 100
    log = "\n".join(orch.lines[start:])
    assert "Uncaught exception" not in log and "Traceback" not in log, log


def test_unknown_api_paths_are_json_404s(orch):
    """A path under the API base that is no route, or an id of the wrong shape, is a 404
    in the error shape (it was Jupyter's HTML page, or a 403 for a POST)."""
    for method, path in (("GET", "/no/such/path"), ("GET", "/tasks/NOT-AN-ID"), ("POST", "/tasks/x/cancel")):
        req = urllib.request.Request(
            orch.url + API + path,
            method=method,
            headers={"Authorization": f"Bearer {orch.token}"},
            data=b"{}" if method == "POST" else None,
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 404, (method, path)
        assert info.value.headers["Content-Type"] == "application/json"
        check(json.loads(info.value.read()), "Error")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(orch.url + API + "/no/such/path")  # no credentials: nothing said
    assert info.value.code == 401


def schema(name: str) -> dict:
    doc = openapi.document()
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def check(instance, name: str) -> None:
    jsonschema.validate(instance, schema(name), cls=jsonschema.Draft202012Validator)


def test_real_responses_match_the_schemas(orch):
    api = orch.api()
    task = api.post("/tasks", {"kind": "shell", "command": "echo hello", "resources": {"memory": "64Mi"}})
    check(task, "Task")
    api.get(f"/tasks/{task['id']}/wait", timeout=30)
    check(api.get(f"/tasks/{task['id']}"), "Task")
    for item in api.get("/tasks")["tasks"]:
        check(item, "Task")
    check(api.get(f"/tasks/{task['id']}/logs"), "LogLines")
    workers = api.get("/workers")["workers"]
    assert workers
    for worker in workers:
        check(worker, "Worker")
    token = api.post("/workers/tokens", {"name": "schema-check"})
    check(token, "Token")
    for item in api.get("/workers/tokens")["tokens"]:
        check(item, "Token")
    req = urllib.request.Request(
        orch.url + API + "/tasks/00000000000000000000000000",
        headers={"Authorization": f"Bearer {orch.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    check(json.loads(info.value.read()), "Error")


def test_real_workflow_responses_match_the_schemas(orch):
    api = orch.api()
    source = "name: doc\ntasks:\n  - name: a\n    shell: echo hi > $ORCH_RUN_DIR/a.txt\n  - name: b\n    depends: [a]\n    shell: exit 1\n"
    run = api.post("/workflows", {"source": source, "filename": "doc.yaml"})
    check(run, "Run")
    final = api.get(f"/workflows/{run['id']}/wait", timeout=60)
    check(final, "Run")
    assert final["state"] == "failed"
    for item in api.get("/workflows")["runs"]:
        check(item, "Run")
    check(api.post(f"/workflows/{run['id']}/retry"), "Run")
    with pytest.raises(SpecError) as info:
        api.post("/workflows", {"source": "name: x\ntasks: []\n"})
    assert info.value.details  # every problem, as file:line:column
    schedule = api.post(
        "/workflows/schedules", {"source": source, "filename": "doc.yaml", "cron": "0 3 * * *"}
    )
    check(schedule, "Schedule")
    for item in api.get("/workflows/schedules")["schedules"]:
        check(item, "Schedule")
    check(api.delete(f"/workflows/schedules/{schedule['id']}"), "Schedule")


def test_document_is_served(orch):
    doc = orch.api().get("/openapi.json")
    assert doc == json.loads(json.dumps(openapi.document()))


def test_metrics(orch):
    task = orch.api().post("/tasks", {"kind": "shell", "command": "true"})
    orch.api().get(f"/tasks/{task['id']}/wait", timeout=30)
    req = urllib.request.Request(
        orch.url + "/orch/metrics", headers={"Authorization": f"Bearer {orch.token}"}
    )
    text = urllib.request.urlopen(req).read().decode()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(values["orch_tasks_submitted_total"]) >= 1
    assert float(values['orch_workers{state="connected"}']) == 2
    assert float(values["orch_slots_total"]) == 2
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(orch.url + "/orch/metrics")  # authentication required by default


def test_without_credentials_every_operation_answers_as_documented(orch):
    """No credentials: a 401 (or, for a POST or DELETE, Jupyter's XSRF 403), documented for
    the operation, in the error shape."""
    doc = openapi.document()
    asked = 0
    for path, item in doc["paths"].items():
        url = orch.url + API + re.sub(r"\{path\}", "a.txt", re.sub(r"\{\w+_id\}", "0" * 26, path))
        for method, operation in item.items():
            body = b"{}" if method in ("post", "put", "patch") else None
            req = urllib.request.Request(url, method=method.upper(), data=body)
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req)
            answer = info.value
            assert answer.code in (401, 403) and str(answer.code) in operation["responses"], (method, path)
            assert answer.headers["Content-Type"] == "application/json", (method, path)
            check(json.loads(answer.read()), "Error")
            asked += 1
    assert asked == sum(len(item) for item in doc["paths"].values())

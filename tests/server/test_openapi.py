"""The OpenAPI document against the real handlers: every route documented with exactly
the methods it implements, and real responses valid against the documented schemas."""

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

METHODS = ("get", "post", "put", "patch", "delete")


def documented_routes() -> dict[str, set[str]]:
    return {path: set(ops) & set(METHODS) for path, ops in openapi.document()["paths"].items()}


def handler_routes() -> dict[str, set[str]]:
    app = OrchApp()
    app.initialize_handlers()
    routes = {}
    for pattern, handler in app.handlers:
        if not pattern.startswith(API):
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern[len(API) :])
        implemented = {m for m in METHODS if getattr(handler, m) is not getattr(RequestHandler, m)}
        routes[path] = implemented
    return routes


def test_document_is_valid_openapi():
    validate(openapi.document())


def test_every_route_is_documented_with_its_methods():
    assert handler_routes() == documented_routes()


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

"""The OpenAPI 3 document of ``/orch/api/v1``, served at ``/orch/api/v1/openapi.json``.

Tests check it both ways against the real handlers: every route is documented with the
methods it implements, and real responses validate against the schemas here.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .base import OrchAPIHandler

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = {
    "400": _json(
        _ref("Error"), "Bad input; `field` names the culprit (`problems`: every problem of a workflow file)"
    ),
    "401": _json(_ref("Error"), "Missing, bad or revoked credentials"),
    "403": _json(_ref("Error"), "Not yours"),
    "404": _json(_ref("Error"), "No such object"),
    "409": _json(_ref("Error"), "Wrong state for this action"),
    "413": _json(_ref("Error"), "Payload over the limit"),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: _ERR[c] for c in codes}


_TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-z]{26}$"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string"},
            "problems": {
                "type": "array",
                "items": {"type": "string"},
                "description": "file:line:column: message",
            },
        },
    },
    "Resources": {
        "type": "object",
        "properties": {
            "cpus": {"type": "number", "minimum": 0},
            "memory": {"type": ["string", "integer", "null"], "description": "e.g. 8Gi, 512Mi, or bytes"},
            "gpus": {"type": "integer", "minimum": 0},
            "gpu_type": _NULLABLE_STR,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "TaskSubmit": {
        "type": "object",
        "required": ["kind"],
        "properties": {
            "id": {
                "type": "string",
                "description": "optional client-chosen id (26 chars); resubmitting it is a no-op",
            },
            "kind": {"type": "string", "enum": ["function", "shell", "cell", "notebook"]},
            "name": {"type": "string"},
            "command": {"type": "string", "description": "shell tasks"},
            "payload": {
                "type": "string",
                "format": "byte",
                "description": "base64 (function: cloudpickled call)",
            },
            "resources": _ref("Resources"),
            "image": {"type": "string"},
            "priority": {"type": "integer"},
            "retries": {"type": "integer", "minimum": 0},
            "retry_backoff": {"type": "number"},
            "retry_backoff_factor": {"type": "number"},
            "timeout": {"type": "number"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "depends": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "name", "kind", "owner", "state", "resources", "attempt", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "seq": {
                "type": "integer",
                "description": "submit order; GET /tasks?before=SEQ gives older tasks",
            },
            "name": {"type": "string"},
            "kind": {"type": "string"},
            "owner": {"type": "string"},
            "state": {
                "type": "string",
                "enum": [
                    "pending",
                    "scheduled",
                    "running",
                    "succeeded",
                    "failed",
                    "cancelled",
                    "upstream_failed",
                ],
            },
            "priority": {"type": "integer"},
            "resources": {"type": "object"},
            "image": _NULLABLE_STR,
            "retries": {"type": "integer"},
            "timeout": _NULLABLE_NUM,
            "command": _NULLABLE_STR,
            "depends": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object"},
            "attempt": {"type": "integer"},
            "worker_id": _NULLABLE_STR,
            "gpus": {"type": "array", "items": {"type": "integer"}},
            "reason": _NULLABLE_STR,
            "error": _NULLABLE_STR,
            "error_kind": _NULLABLE_STR,
            "traceback": _NULLABLE_STR,
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "started_at": _NULLABLE_NUM,
            "ended_at": _NULLABLE_NUM,
            "duration": _NULLABLE_NUM,
            "retry_at": _NULLABLE_NUM,
            "payload_size": {"type": "integer"},
            "result_size": {"type": "integer"},
            "has_result": {"type": "boolean"},
            "notebook_url": {
                "type": ["string", "null"],
                "description": "a notebook task's executed notebook, relative to the API base",
            },
            "attempts": {"type": "array", "items": _ref("Attempt")},
        },
    },
    "Attempt": {
        "type": "object",
        "required": ["number", "state"],
        "properties": {
            "number": {"type": "integer"},
            "state": {
                "type": "string",
                "enum": ["scheduled", "running", "succeeded", "failed", "cancelled", "lost"],
            },
            "worker_id": _NULLABLE_STR,
            "gpus": {"type": "array", "items": {"type": "integer"}},
            "scheduled_at": _NULLABLE_NUM,
            "started_at": _NULLABLE_NUM,
            "ended_at": _NULLABLE_NUM,
            "exit_code": {"type": ["integer", "null"]},
            "error": _NULLABLE_STR,
            "error_kind": _NULLABLE_STR,
        },
    },
    "Worker": {
        "type": "object",
        "required": ["id", "name", "state", "slots", "slots_used", "cpus", "memory", "gpus", "labels"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "provider": {"type": "string"},
            "state": {"type": "string", "enum": ["connected", "disconnected", "gone"]},
            "hostname": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "image": _NULLABLE_STR,
            "slots": {"type": "integer"},
            "slots_used": {"type": "integer"},
            "cpus": {"type": "number"},
            "memory": {"type": "integer"},
            "gpus": {
                "type": "array",
                "items": {"type": "object", "required": ["index", "uuid", "model", "memory"]},
            },
            "running": {"type": "array", "items": {"type": "string"}},
            "metrics": {"type": "object"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["id", "name", "scope", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "scope": {"type": "string"},
            "owner": {"type": "string"},
            "provider": {"type": "string"},
            "created_at": {"type": "number"},
            "revoked_at": _NULLABLE_NUM,
            "token": {"type": "string", "description": "the secret; only in the answer to POST"},
        },
    },
    "LogLines": {
        "type": "object",
        "required": ["task_id", "attempt", "lines", "next_offset"],
        "properties": {
            "task_id": {"type": "string"},
            "attempt": {"type": "integer"},
            "state": {"type": "string"},
            "next_offset": {"type": "integer"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["ts", "stream", "text"],
                    "properties": {
                        "ts": {"type": "number"},
                        "stream": {"type": "string"},
                        "text": {"type": "string"},
                    },
                },
            },
        },
    },
}

_WS = {"101": {"description": "Switching protocols (WebSocket)"}}


def _paths() -> dict[str, Any]:
    task_list = {
        "type": "object",
        "required": ["tasks"],
        "properties": {"tasks": {"type": "array", "items": _ref("Task")}},
    }
    return {
        "/tasks": {
            "get": {
                "summary": "List tasks, newest first",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "comma-separated",
                    },
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {"name": "before", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {"200": _json(task_list), **_errors("400", "401")},
            },
            "post": {
                "summary": "Submit one task, or a batch as {tasks: [...]}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _ref("TaskSubmit"),
                                    {
                                        "type": "object",
                                        "required": ["tasks"],
                                        "properties": {
                                            "tasks": {"type": "array", "items": _ref("TaskSubmit")}
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json({"oneOf": [_ref("Task"), task_list]}, "Accepted and committed"),
                    **_errors("400", "401", "409", "413"),
                },
            },
        },
        "/tasks/{task_id}": {
            "get": {
                "summary": "A task with its attempts",
                "parameters": [_TASK_ID],
                "responses": {"200": _json(_ref("Task")), **_errors("401", "403", "404")},
            },
        },
        "/tasks/{task_id}/cancel": {
            "post": {
                "summary": "Cancel a task",
                "parameters": [_TASK_ID],
                "responses": {"200": _json(_ref("Task")), **_errors("401", "403", "404", "409")},
            },
        },
        "/tasks/{task_id}/retry": {
            "post": {
                "summary": "Run a failed or cancelled task again (a new attempt)",
                "parameters": [_TASK_ID],
                "responses": {"200": _json(_ref("Task")), **_errors("401", "403", "404", "409")},
            },
        },
        "/tasks/{task_id}/wait": {
            "get": {
                "summary": "Long poll until the task ends or `timeout` seconds pass",
                "parameters": [_TASK_ID, {"name": "timeout", "in": "query", "schema": {"type": "number"}}],
                "responses": {"200": _json(_ref("Task")), **_errors("400", "401", "403", "404")},
            },
        },
        "/tasks/{task_id}/result": {
            "get": {
                "summary": "The pickled result (or pickled exception, X-Orch-Result: error)",
                "parameters": [_TASK_ID, {"name": "wait", "in": "query", "schema": {"type": "number"}}],
                "responses": {
                    "200": {
                        "description": "pickle",
                        "content": {
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **_errors("401", "403", "404", "409"),
                },
            },
        },
        "/tasks/{task_id}/notebook": {
            "get": {
                "summary": "A notebook task's executed notebook (failed runs keep theirs); ?download=1 to save it",
                "parameters": [_TASK_ID, {"name": "download", "in": "query", "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "the notebook (nbformat 4 JSON)",
                        "content": {"application/x-ipynb+json": {"schema": {"type": "object"}}},
                    },
                    **_errors("401", "403", "404", "409"),
                },
            },
        },
        "/tasks/{task_id}/outputs": {
            "get": {
                "summary": "What a notebook task recorded with jupyter_orch.output(name, value)",
                "parameters": [_TASK_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["outputs"],
                            "properties": {"outputs": {"type": "object"}},
                        }
                    ),
                    **_errors("401", "403", "404", "409"),
                },
            },
        },
        "/tasks/{task_id}/logs": {
            "get": {
                "summary": "Log lines of an attempt (default: the latest)",
                "parameters": [_TASK_ID]
                + [
                    {"name": n, "in": "query", "schema": {"type": "integer"}}
                    for n in ("attempt", "offset", "limit")
                ],
                "responses": {"200": _json(_ref("LogLines")), **_errors("400", "401", "403", "404")},
            },
        },
        "/tasks/{task_id}/logs/follow": {
            "get": {
                "summary": "WebSocket: the log so far, then live lines, then `end`",
                "parameters": [_TASK_ID],
                "responses": _WS,
            },
        },
        "/workers": {
            "get": {
                "summary": "Connected workers with slots, GPUs and live metrics",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["workers"],
                            "properties": {
                                "workers": {"type": "array", "items": _ref("Worker")},
                                "provider": {"type": "object"},
                            },
                        }
                    ),
                    **_errors("401"),
                },
            },
        },
        "/workers/{worker_id}": {
            "get": {
                "summary": "One worker",
                "parameters": [
                    {"name": "worker_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json(_ref("Worker")), **_errors("401", "404")},
            },
        },
        "/workers/connect": {
            "get": {
                "summary": "WebSocket for workers (Authorization: Bearer <worker token>)",
                "responses": {**_WS, "401": _json(_ref("Error"))},
            },
        },
        "/workers/tokens": {
            "get": {
                "summary": "Worker tokens (secrets are never shown again)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["tokens"],
                            "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
                        }
                    ),
                    **_errors("401"),
                },
            },
            "post": {
                "summary": "Issue a worker token",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {"201": _json(_ref("Token")), **_errors("400", "401")},
            },
        },
        "/workers/tokens/{token_id}": {
            "delete": {
                "summary": "Revoke a worker token (its workers are disconnected)",
                "parameters": [
                    {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"204": {"description": "Revoked"}, **_errors("401", "404")},
            },
        },
        "/events": {
            "get": {
                "summary": "WebSocket of task, worker, log and workflow run events (types=task,worker,log,run)",
                "responses": _WS,
            }
        },
        "/session": {
            "get": {"summary": "WebSocket for the Python SDK: submit and collect results", "responses": _WS}
        },
        "/workflows/schema": {
            "get": {
                "summary": "The JSON Schema of workflow files (YAML or JSON)",
                "responses": {
                    "200": {
                        "description": "a JSON Schema (draft 2020-12)",
                        "content": {"application/schema+json": {"schema": {"type": "object"}}},
                    },
                    **_errors("401"),
                },
            },
        },
        "/info": {
            "get": {
                "summary": "Server version, provider and task counts",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["version", "owner"],
                            "properties": {
                                "version": {"type": "string"},
                                "owner": {"type": "string"},
                                "provider": _NULLABLE_STR,
                                "counts": {"type": "object"},
                                "workers": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors("401"),
                },
            },
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
        },
    }


def document() -> dict[str, Any]:
    from . import openapi_notebooks, openapi_workflows  # they build on this module's pieces

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyter-orch API",
            "version": __version__,
            "description": "Tasks, workflow runs, workers and events of a jupyter-orch server.",
        },
        "servers": [{"url": "/orch/api/v1"}],
        "components": {
            "schemas": {**SCHEMAS, **openapi_workflows.SCHEMAS, **openapi_notebooks.SCHEMAS},
            "securitySchemes": {
                "orchToken": {"type": "http", "scheme": "bearer", "description": "JUPYTER_ORCH_TOKEN"},
                "jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
            },
        },
        "security": [{"orchToken": []}, {"jupyterToken": []}],
        "paths": {**_paths(), **openapi_workflows.paths(), **openapi_notebooks.paths()},
    }


class OpenAPIHandler(OrchAPIHandler):
    async def get(self) -> None:
        self.write_json(document())

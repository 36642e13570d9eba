"""The workers part of the OpenAPI document (workers, their tokens, server info) and the
WebSocket routes (workers connecting, events, the SDK's session, following a log), merged
into :func:`jupyter_orch.server.openapi.document`.

OpenAPI describes HTTP, not WebSockets: the WebSocket routes are listed apart, under
``x-websockets`` (each a GET with the opening handshake's headers of RFC 6455 as required
header parameters, with the patterns the server checks, see :mod:`.wsroute`), so that
HTTP tools and fuzzers leave them alone. A plain GET on one is a 400 that says what the
route is."""

from __future__ import annotations

from typing import Any

from .openapi_schema import _NULLABLE_STR, NOT_BLANK, _errors, _json, _ref, json_body, path_id, query, whole
from .submissions import MAX_TOKEN_NAME
from .wsroute import CONNECTION_PATTERN, KEY_PATTERN, UPGRADE_PATTERN, WS_VERSION

_FLAG = {"type": "string", "enum": ["", "0", "1", "true", "false"]}

SCHEMAS: dict[str, Any] = {
    "Worker": {
        "type": "object",
        "required": ["id", "name", "state", "slots", "slots_used", "cpus", "memory", "gpus", "labels"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "provider": {"type": "string"},
            "owner": {
                "type": ["string", "null"],
                "description": "the user whose own worker it is (it runs only their tasks); null: shared",
            },
            "group": {
                "type": ["string", "null"],
                "description": "the group it was registered for (it runs its members' tasks)",
            },
            "state": {"type": "string", "enum": ["connected", "disconnected", "draining", "gone"]},
            "hostname": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "image": _NULLABLE_STR,
            "slots": {"type": "integer"},
            "slots_used": {"type": "integer"},
            "cpus": {"type": "number"},
            "memory": {"type": "integer"},
            "gpus": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "uuid", "model", "memory"],
                    "properties": {
                        "task_id": {
                            "type": ["string", "null"],
                            "description": "the task holding it, if it is the caller's (or the caller reads all)",
                        },
                        "busy": {"type": "boolean", "description": "held by a task (anyone's)"},
                    },
                },
            },
            "running": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the tasks on it that the caller may see",
            },
            "metrics": {"type": "object"},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["since", "until", "users", "groups"],
        "properties": {
            "since": {"type": "number"},
            "until": {"type": "number"},
            "users": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["user", "groups", "gpu_hours", "task_hours", "attempts"],
                    "properties": {
                        "user": {"type": "string"},
                        "groups": {"type": "array", "items": {"type": "string"}},
                        "gpu_hours": {"type": "number"},
                        "task_hours": {"type": "number"},
                        "attempts": {"type": "integer"},
                    },
                },
            },
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["group", "gpu_hours", "task_hours", "users"],
                    "properties": {
                        "group": {"type": "string"},
                        "gpu_hours": {"type": "number"},
                        "task_hours": {"type": "number"},
                        "users": {"type": "integer"},
                    },
                },
            },
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
            "group": {
                "type": ["string", "null"],
                "description": "the group whose members' tasks its workers run",
            },
            "created_at": {"type": "number"},
            "revoked_at": {"type": ["number", "null"]},
            "token": {"type": "string", "description": "the secret; only in the answer to POST"},
        },
    },
}


def _header(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "schema": schema}


HANDSHAKE = [
    _header("Upgrade", {"type": "string", "pattern": UPGRADE_PATTERN}),
    _header("Connection", {"type": "string", "pattern": CONNECTION_PATTERN}),
    _header("Sec-WebSocket-Version", {"type": "string", "enum": [WS_VERSION]}),
    _header("Sec-WebSocket-Key", {"type": "string", "pattern": KEY_PATTERN}),
]


def websocket(summary: str, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": "WebSocket: " + summary,
            "parameters": [*(parameters or []), *HANDSHAKE],
            "responses": {
                "101": {"description": "Switching protocols: the WebSocket is open"},
                "400": _json(
                    _ref("Error"),
                    "Not a WebSocket opening handshake (a plain GET: 'this is a WebSocket endpoint'), "
                    "or a bad query parameter",
                ),
                "401": _json(_ref("Error"), "Bad or revoked credentials"),
                "403": _json(_ref("Error"), "No credentials, or a browser's Origin where none is allowed"),
            },
        }
    }


def paths() -> dict[str, Any]:
    tokens = {
        "type": "object",
        "required": ["tokens"],
        "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
    }
    return {
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
        "/admin/usage": {
            "get": {
                "summary": "GPU-hours and task-hours per user and group in a recent period "
                "(with custom:orch:read-all or as an admin)",
                "parameters": [
                    query(
                        "since",
                        {"type": "string", "default": "7d", "pattern": r"^\s*\d+(\.\d+)?[smhdw]?\s*$"},
                        "how far back: a duration such as 7d, 12h, 30m, or seconds",
                    ),
                ],
                "responses": {"200": _json(_ref("Usage")), **_errors("400", "401", "403", "503")},
            },
        },
        "/workers/tokens": {
            "get": {
                "summary": "Worker tokens (secrets are never shown again); not with a task's own token",
                "responses": {"200": _json(tokens), **_errors("401", "403", "503")},
            },
            "post": {
                "summary": "Issue a worker token: the caller's own, or (admins) a shared one",
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "maxLength": MAX_TOKEN_NAME, "pattern": NOT_BLANK},
                            "group": {
                                "type": "string",
                                "maxLength": MAX_TOKEN_NAME,
                                "description": "for workers of a group the caller is in: they run its members' tasks",
                            },
                            "shared": {
                                "type": "boolean",
                                "default": False,
                                "description": "for shared workers (the service's; admins only). "
                                "Otherwise the token is the caller's: its workers run only the caller's tasks",
                            },
                        },
                    }
                ),
                "responses": {"201": _json(_ref("Token")), **_errors("400", "401", "403", "413", "503")},
            },
        },
        "/workers/tokens/{token_id}": {
            "delete": {
                "summary": "Revoke a worker token (its workers are disconnected)",
                "parameters": [path_id("token_id")],
                "responses": {"204": {"description": "Revoked"}, **_errors("401", "403", "404", "503")},
            },
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
                                "shared": {
                                    "type": "boolean",
                                    "description": "several users share this server (owner_from=identity)",
                                },
                                "rights": {
                                    "type": "object",
                                    "description": "what the caller may do beyond their own work",
                                    "required": ["read_all", "admin"],
                                    "properties": {
                                        "read_all": {
                                            "type": "boolean",
                                            "description": "read everyone's work (custom:orch:read-all)",
                                        },
                                        "admin": {
                                            "type": "boolean",
                                            "description": "change everyone's work (custom:orch:admin, "
                                            "hub admins)",
                                        },
                                    },
                                },
                                "provider": _NULLABLE_STR,
                                "policy": {"type": "string"},
                                "max_payload_bytes": {"type": "integer"},
                                "counts": {"type": "object"},
                                "workers": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors("401", "503"),
                },
            },
        },
    }


def websockets() -> dict[str, Any]:
    """The WebSocket routes (the document's ``x-websockets``), as path items."""
    return {
        "/workers/connect": websocket(
            "a worker's one connection (Authorization: Bearer <worker token>; no browser Origin)"
        ),
        "/events": websocket(
            "task, worker, log, metrics and workflow run events as JSON lines",
            [
                query(
                    "types",
                    {"type": "string"},
                    "comma-separated: task, worker, log, run, metrics (default task,worker)",
                ),
                query("metrics", _FLAG, "1: metrics events too (as `metrics` among the types)"),
            ],
        ),
        "/session": websocket(
            "the Python SDK's session: submit tasks and collect results",
            [query("batch", {"type": "string"}, "the frame batching the client speaks")],
        ),
        "/tasks/{task_id}/logs/follow": websocket(
            "the log so far, then live lines, then `end`; a task of another user's (or none) is "
            "refused before the upgrade (403, 404)",
            [
                path_id("task_id"),
                query("attempt", whole(), "default: the latest"),
                query("offset", whole(), "lines to skip"),
                query(
                    "metrics",
                    _FLAG,
                    "1: the attempt's metric points too, `{type: metrics, attempt, offset, points}` "
                    "(stored, then live)",
                ),
            ],
        ),
    }

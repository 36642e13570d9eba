"""The tasks part of the OpenAPI document (submit, list, one task, its result, notebook,
outputs and logs), merged into :func:`jupyter_orch.server.openapi.document`.

The submit schemas say what :meth:`jupyter_orch.core.spec.TaskSpec.from_dict` accepts,
with the limits of :mod:`jupyter_orch.core.limits`."""

from __future__ import annotations

import copy
from typing import Any

from ..core import limits
from ..core.spec import KINDS, PAYLOAD_KINDS
from ..core.states import TaskState
from .openapi_schema import (
    _NULLABLE_NUM,
    _NULLABLE_STR,
    ID_PATTERN,
    NO_NUL,
    _errors,
    _json,
    _ref,
    json_body,
    path_id,
    query,
    seconds,
    text,
    whole,
)

_TASK_ID = path_id("task_id")
_STATES = [s.value for s in TaskState]
_ATTEMPT_STATES = ["scheduled", "running", "succeeded", "failed", "cancelled", "lost"]
# one or more states, comma-separated (empty items are skipped)
STATE_LIST = r"^((" + "|".join(_STATES) + r")?,)*(" + "|".join(_STATES) + r")?$"
LABEL_KEY = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$"
MEMORY = r"^\s*\d+(\.\d+)?\s*([KkMmGgTt][Ii]?)?[Bb]?\s*$"
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# tornado reads control characters in a query argument as spaces, and strips it
_QUERY_TEXT = {"type": "string", "description": "control characters are read as spaces"}
_POSITIVE_SECONDS = {"type": ["number", "null"], "exclusiveMinimum": 0}
_SCALAR_TEXT = {"type": ["string", "number", "boolean"], "pattern": NO_NUL}

RESOURCES: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "cpus": {
            "type": ["number", "string"],
            "minimum": 0,
            "pattern": r"^\s*\d{1,15}(\.\d{1,15})?\s*$",
            "description": "default 1; a numeric string is read as its number",
        },
        "memory": {
            "type": ["string", "number", "null"],
            "minimum": 0,
            "pattern": MEMORY,
            "description": "e.g. 8Gi, 512Mi, 1G, or bytes",
        },
        "gpus": {
            "type": ["integer", "string"],
            "minimum": 0,
            "maximum": limits.MAX_GPUS,
            "pattern": r"^\s*(\d{1,3}|10[01]\d|102[0-4])\s*$",
            "description": f"default 0, at most {limits.MAX_GPUS}",
        },
        "gpu_type": {**text("needs gpus >= 1", max_len=limits.MAX_NAME, nullable=True)},
        "labels": {
            "description": f"at most {limits.MAX_LABELS}: an object, or a list of key=value",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "maxProperties": limits.MAX_LABELS,
                    "propertyNames": {"pattern": LABEL_KEY},
                    "additionalProperties": {**_SCALAR_TEXT, "maxLength": limits.MAX_LABEL_VALUE},
                },
                {
                    "type": "array",
                    "maxItems": limits.MAX_LABELS,
                    "items": {
                        "type": "string",
                        "pattern": LABEL_KEY[:-1] + f"=[^\\x00]{{0,{limits.MAX_LABEL_VALUE}}}$",
                    },
                },
            ],
        },
    },
    # a GPU type only with GPUs
    "if": {"properties": {"gpu_type": {"type": "string"}}, "required": ["gpu_type"]},
    "then": {"properties": {"gpus": {"minimum": 1, "pattern": r"^\s*0*[1-9]"}}, "required": ["gpus"]},
}

_SUBMIT_PROPERTIES: dict[str, Any] = {
    "id": {
        "type": ["string", "null"],
        "pattern": ID_PATTERN,
        "description": "optional client-chosen id; resubmitting it is a no-op (409 if another task has it)",
    },
    "kind": {"type": "string", "enum": list(KINDS)},
    "name": text(max_len=limits.MAX_NAME, blank=True, nullable=True),
    "command": {"type": "null"},
    "payload": {"type": ["string", "null"], "pattern": BASE64, "format": "byte"},
    "resources": _ref("Resources"),
    "image": text(max_len=limits.MAX_IMAGE, nullable=True),
    "priority": {
        "type": ["integer", "null"],
        "minimum": -limits.MAX_PRIORITY,
        "maximum": limits.MAX_PRIORITY,
    },
    "retries": {"type": ["integer", "null"], "minimum": 0, "maximum": limits.MAX_RETRIES},
    "preemptible": {
        "type": ["boolean", "null"],
        "description": "may be evicted for a task of higher priority when the server allows "
        "preemption (it is asked to stop, then queued again to resume from its checkpoint)",
    },
    "retry_backoff": _POSITIVE_SECONDS,
    "retry_backoff_factor": _POSITIVE_SECONDS,
    "retry_max_backoff": _POSITIVE_SECONDS,
    "timeout": _POSITIVE_SECONDS,
    "env": {
        "type": ["object", "null"],
        "maxProperties": limits.MAX_ENV,
        "propertyNames": {"minLength": 1, "pattern": r"^[^=\x00]*$"},
        "additionalProperties": _SCALAR_TEXT,
        "description": f"at most {limits.MAX_ENV} variables, {limits.MAX_ENV_BYTES} bytes in all",
    },
    "depends": {
        "type": ["array", "null"],
        "maxItems": limits.MAX_DEPENDS,
        "items": {"type": "string", "pattern": ID_PATTERN},
        "description": "ids of tasks this one waits for (known to the server: else 400)",
    },
    "metadata": {
        "type": ["object", "null"],
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": _ref("JsonText"),
        "description": f"at most {limits.MAX_METADATA_BYTES} bytes as JSON (else 413)",
    },
}


def _submit(kinds: list[str], command: dict[str, Any] | None, payload: bool) -> dict[str, Any]:
    properties: dict[str, Any] = copy.deepcopy(_SUBMIT_PROPERTIES)
    required = ["kind"]
    properties["kind"]["enum"] = kinds
    if command is not None:
        properties["command"] = command
        required.append("command")
    if payload:
        properties["payload"]["type"] = "string"
        required.append("payload")
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


SCHEMAS: dict[str, Any] = {
    "Resources": RESOURCES,
    "ShellTaskSubmit": _submit(
        ["shell"], text("the shell command", max_len=limits.MAX_COMMAND), payload=False
    ),
    "PayloadTaskSubmit": {
        **_submit(sorted(PAYLOAD_KINDS), None, payload=True),
        "description": "function (a cloudpickled call), cell or notebook: the payload is base64",
    },
    "TaskSubmit": {"oneOf": [_ref("ShellTaskSubmit"), _ref("PayloadTaskSubmit")]},
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
            "state": {"type": "string", "enum": _STATES},
            "priority": {"type": "integer"},
            "preemptible": {"type": "boolean"},
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
            "state": {"type": "string", "enum": _ATTEMPT_STATES},
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
    "Checkpoints": {
        "type": "object",
        "required": ["task_id", "url", "checkpoints"],
        "properties": {
            "task_id": {"type": "string"},
            "url": {"type": ["string", "null"], "description": "where the task keeps them"},
            "checkpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "attempt", "step", "metadata", "size", "files", "created", "url"],
                    "properties": {
                        "id": {"type": "string"},
                        "attempt": {"type": "integer"},
                        "step": {"type": ["integer", "null"]},
                        "metadata": {"type": "object"},
                        "size": {"type": "integer", "description": "bytes"},
                        "files": {"type": "array", "items": {"type": "string"}},
                        "created": {"type": "number"},
                        "url": {"type": "string"},
                    },
                },
            },
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

_TASK_LIST = {
    "type": "object",
    "required": ["tasks"],
    "properties": {"tasks": {"type": "array", "items": _ref("Task")}},
}
_BATCH = {
    "type": "object",
    "required": ["tasks"],
    "additionalProperties": False,
    "properties": {
        "tasks": {"type": "array", "minItems": 1, "maxItems": limits.MAX_BATCH, "items": _ref("TaskSubmit")}
    },
}
_ONE = ("401", "403", "404", "503")


def paths() -> dict[str, Any]:
    task = _json(_ref("Task"))
    return {
        "/tasks": {
            "get": {
                "summary": "List tasks, newest first",
                "parameters": [
                    query("state", {"type": "string", "pattern": STATE_LIST}, "comma-separated states"),
                    query("q", _QUERY_TEXT, "a part of the name or id, any case"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
                    query("before", whole(), "a task's seq: the tasks submitted before it"),
                    query(
                        "owner",
                        _QUERY_TEXT,
                        "whose tasks (only where the server knows users apart: OrchApp.owner_from=identity)",
                    ),
                ],
                "responses": {"200": _json(_TASK_LIST), **_errors("400", "401", "503")},
            },
            "post": {
                "summary": "Submit one task, or a batch as {tasks: [...]}",
                "requestBody": json_body({"oneOf": [_ref("TaskSubmit"), _BATCH]}),
                "responses": {
                    "201": _json({"oneOf": [_ref("Task"), _TASK_LIST]}, "Accepted and committed"),
                    # 404: a task named in `depends` does not exist
                    **_errors("400", "401", "403", "404", "409", "413", "429", "503"),
                },
            },
        },
        "/tasks/{task_id}": {
            "get": {
                "summary": "A task with its attempts",
                "parameters": [_TASK_ID],
                "responses": {"200": task, **_errors(*_ONE)},
            },
        },
        "/tasks/{task_id}/cancel": {
            "post": {
                "summary": "Cancel a task",
                "parameters": [_TASK_ID],
                "responses": {"200": task, **_errors("401", "403", "404", "409", "503")},
            },
        },
        "/tasks/{task_id}/retry": {
            "post": {
                "summary": "Run a failed or cancelled task again (a new attempt)",
                "parameters": [_TASK_ID],
                "responses": {"200": task, **_errors("401", "403", "404", "409", "503")},
            },
        },
        "/tasks/{task_id}/wait": {
            "get": {
                "summary": "Long poll until the task ends or `timeout` seconds pass",
                "parameters": [_TASK_ID, query("timeout", seconds(), "default 30")],
                "responses": {"200": task, **_errors("400", *_ONE)},
            },
        },
        "/tasks/{task_id}/result": {
            "get": {
                "summary": "The pickled result (or pickled exception, X-Orch-Result: error)",
                "parameters": [_TASK_ID, query("wait", seconds(), "seconds to wait for the end first")],
                "responses": {
                    "200": {
                        "description": "pickle",
                        "headers": {
                            "X-Orch-Result": {"schema": {"type": "string", "enum": ["value", "error"]}},
                            "X-Orch-State": {"schema": {"type": "string", "enum": _STATES}},
                        },
                        "content": {
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **_errors("400", "401", "403", "404", "409", "503"),
                },
            },
        },
        "/tasks/{task_id}/notebook": {
            "get": {
                "summary": "A notebook task's executed notebook (failed runs keep theirs); ?download=1 to save it",
                "parameters": [_TASK_ID, query("download", {"type": "string"}, "any non-empty value")],
                "responses": {
                    "200": {
                        "description": "the notebook (nbformat 4 JSON)",
                        "content": {"application/x-ipynb+json": {"schema": {"type": "object"}}},
                    },
                    **_errors("400", "401", "403", "404", "409", "503"),
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
                    **_errors("401", "403", "404", "409", "503"),
                },
            },
        },
        "/tasks/{task_id}/logs": {
            "get": {
                "summary": "Log lines of an attempt (default: the latest)",
                "parameters": [
                    _TASK_ID,
                    query("attempt", whole(1), "1-based; at most the task's attempts"),
                    query("offset", whole(), "lines to skip"),
                    query("limit", whole(1), "at most this many lines"),
                ],
                "responses": {"200": _json(_ref("LogLines")), **_errors("400", *_ONE)},
            },
        },
        "/tasks/{task_id}/checkpoints": {
            "get": {
                "summary": "The checkpoints the task saved (jupyter_orch.checkpoint.save), oldest first",
                "parameters": [_TASK_ID],
                "responses": {"200": _json(_ref("Checkpoints")), **_errors(*_ONE)},
            },
        },
    }

"""The workflow part of the OpenAPI document (runs, their files, schedules), merged into
:func:`jupyter_orch.server.openapi.document`."""

from __future__ import annotations

from typing import Any

from ..core import limits
from ..core.runs import RUN_STATES
from ..workflows.submission import MAX_FILES
from .openapi_schema import (
    _NULLABLE_NUM,
    _NULLABLE_STR,
    ID_PATTERN,
    NOT_BLANK,
    _errors,
    _json,
    _ref,
    json_body,
    path_id,
    query,
    seconds,
    text,
)

_RUN_STATES = list(RUN_STATES)
RUN_ID = path_id("run_id")
STATE_LIST = r"^((" + "|".join(_RUN_STATES) + r")?,)*(" + "|".join(_RUN_STATES) + r")?$"

SCHEMAS: dict[str, Any] = {
    "WorkflowSubmit": {
        "type": "object",
        "description": "the workflow file's text as `source`, or the document itself as `workflow`; its "
        "steps, dependencies and templates are checked (400 with every problem as file:line:column); "
        f"a file's text is at most {limits.MAX_WORKFLOW_BYTES} bytes (413), with at most "
        f"{limits.MAX_YAML_ALIAS_NODES} nodes reached through YAML aliases",
        "anyOf": [
            {"required": ["source"], "properties": {"source": {"type": "string", "pattern": NOT_BLANK}}},
            {
                "required": ["workflow"],
                "properties": {"source": {"type": "null"}, "workflow": {"type": "object"}},
            },
        ],
        "properties": {
            "source": {"type": ["string", "null"], "description": "the workflow file's text (YAML or JSON)"},
            "workflow": {
                "type": "object",
                "description": "or the document itself (its JSON Schema: /workflows/schema)",
            },
            "filename": text("named in every problem (file:line:column)", blank=True, nullable=True),
            "params": {
                "type": ["object", "null"],
                "description": "overrides of the file's params, checked against their types",
            },
            "files": {
                "type": ["object", "null"],
                "maxProperties": MAX_FILES,
                "propertyNames": {"pattern": r"^[^\x00]*$"},
                "description": "notebook path (as in the file) -> notebook JSON",
            },
            "base_dir": text(
                "the file's directory: notebooks not sent are read there (server's machine), "
                "and function steps import from it",
                blank=True,
                nullable=True,
            ),
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "name", "owner", "state", "params", "created_at", "step_count"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "owner": {"type": "string"},
            "state": {"type": "string", "enum": _RUN_STATES},
            "params": {"type": "object"},
            "source": {"type": "string"},
            "run_dir": {"type": "string", "description": "ORCH_RUN_DIR of its steps"},
            "schedule_id": _NULLABLE_STR,
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "ended_at": _NULLABLE_NUM,
            "duration": _NULLABLE_NUM,
            "step_count": {"type": "integer"},
            "steps": {"type": "array", "items": _ref("Step")},
        },
    },
    "Step": {
        "type": "object",
        "required": ["name", "kind", "task_id", "depends", "state"],
        "properties": {
            "name": {"type": "string", "description": "matrix steps are base[k=v,...]"},
            "base": _NULLABLE_STR,
            "kind": {"type": "string", "enum": ["notebook", "function", "shell"]},
            "target": _NULLABLE_STR,
            "task_id": {"type": "string"},
            "depends": {"type": "array", "items": {"type": "string"}},
            "cache": {"type": ["boolean", "null"]},
            "cached": {"type": "boolean", "description": "its result was reused from an earlier run"},
            "search": {
                "type": "boolean",
                "description": "a search step: a search runs its trials in its place",
            },
            "search_id": {**_NULLABLE_STR, "description": "the search step's search, once started"},
            "state": {"type": "string"},
            "reason": _NULLABLE_STR,
            "error": _NULLABLE_STR,
            "error_kind": _NULLABLE_STR,
            "attempt": {"type": "integer"},
            "worker_id": _NULLABLE_STR,
            "started_at": _NULLABLE_NUM,
            "ended_at": _NULLABLE_NUM,
            "duration": _NULLABLE_NUM,
            "notebook_url": _NULLABLE_STR,
        },
    },
}


SCHEMAS["Schedule"] = {
    "type": "object",
    "required": ["id", "name", "cron", "owner", "params", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "cron": {"type": "string", "description": "a cron expression, UTC"},
        "owner": {"type": "string"},
        "filename": {"type": ["string", "null"]},
        "params": {"type": "object"},
        "created_at": {"type": "number"},
        "last_fired_at": {**_NULLABLE_NUM, "description": "the cron time it last fired for"},
        "last_run_id": _NULLABLE_STR,
        "last_error": {**_NULLABLE_STR, "description": "why its last firing started no run"},
        "next_at": _NULLABLE_NUM,
    },
}
SCHEMAS["ScheduleSubmit"] = {
    "allOf": [_ref("WorkflowSubmit")],
    "type": "object",
    "required": ["cron"],
    "properties": {
        "cron": {"type": "string", "description": "a cron expression (five fields, UTC), e.g. 0 3 * * *"},
        "name": text("default: the workflow's name", max_len=limits.MAX_NAME, blank=True, nullable=True),
    },
}
SCHEDULE_ID = path_id("schedule_id")
_STORE = ("401", "503")


def _schedule_paths() -> dict[str, Any]:
    one = _json(_ref("Schedule"))
    return {
        "/workflows/schedules": {
            "get": {
                "summary": "Scheduled workflows, oldest first",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["schedules"],
                            "properties": {"schedules": {"type": "array", "items": _ref("Schedule")}},
                        }
                    ),
                    **_errors(*_STORE),
                },
            },
            "post": {
                "summary": "Register a workflow to run on a cron expression (checked now; fires once "
                "for the latest missed time after a downtime)",
                "requestBody": json_body(_ref("ScheduleSubmit")),
                "responses": {
                    "201": _json(_ref("Schedule"), "registered"),
                    **_errors("400", "401", "403", "413", "503"),
                },
            },
        },
        "/workflows/schedules/{schedule_id}": {
            "get": {
                "summary": "One schedule",
                "parameters": [SCHEDULE_ID],
                "responses": {"200": one, **_errors("401", "403", "404", "503")},
            },
            "delete": {
                "summary": "Remove a schedule (its past runs stay)",
                "parameters": [SCHEDULE_ID],
                "responses": {
                    "200": _json(_ref("Schedule"), "the removed schedule"),
                    **_errors("401", "403", "404", "503"),
                },
            },
        },
    }


def paths() -> dict[str, Any]:
    return {**_schedule_paths(), **_run_paths()}


_FILES = {
    "type": "object",
    "required": ["run_id", "files"],
    "properties": {
        "run_id": {"type": "string"},
        "run_dir": {"type": "string"},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "size"],
                "properties": {
                    "path": {"type": "string"},
                    "size": {"type": "integer"},
                    "modified": _NULLABLE_NUM,
                },
            },
        },
    },
}


def _run_paths() -> dict[str, Any]:
    run = _json(_ref("Run"), "the run with its steps' states")
    one = ("401", "403", "404", "503")
    return {
        "/workflows": {
            "get": {
                "summary": "List workflow runs, newest first",
                "parameters": [
                    query("state", {"type": "string", "pattern": STATE_LIST}, "comma-separated run states"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
                    query(
                        "before", {"type": "string", "pattern": ID_PATTERN}, "a run id: the runs before it"
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["runs"],
                            "properties": {"runs": {"type": "array", "items": _ref("Run")}},
                        }
                    ),
                    **_errors("400", *_STORE),
                },
            },
            "post": {
                "summary": "Run a workflow: its steps become tasks; nothing runs when the file has a problem",
                "requestBody": json_body(_ref("WorkflowSubmit")),
                "responses": {
                    "201": _json(_ref("Run"), "accepted"),
                    **_errors("400", "401", "403", "413", "429", "503"),
                },
            },
        },
        "/workflows/{run_id}": {
            "get": {
                "summary": "A run with each step's state (the DAG)",
                "parameters": [RUN_ID],
                "responses": {"200": run, **_errors(*one)},
            }
        },
        "/workflows/{run_id}/wait": {
            "get": {
                "summary": "Long poll: answers when the run ends or after timeout seconds",
                "parameters": [RUN_ID, query("timeout", seconds(), "default 30")],
                "responses": {"200": run, **_errors("400", *one)},
            }
        },
        "/workflows/{run_id}/cancel": {
            "post": {
                "summary": "Cancel the run's unfinished steps (steps after them become upstream_failed)",
                "parameters": [RUN_ID],
                "responses": {"200": run, **_errors("409", *one)},
            }
        },
        "/workflows/{run_id}/retry": {
            "post": {
                "summary": "Run again only the steps that failed, were cancelled or never ran",
                "parameters": [RUN_ID],
                "responses": {"200": run, **_errors("409", *one)},
            }
        },
        "/workflows/{run_id}/files": {
            "get": {
                "summary": "The files in the run's directory (ORCH_RUN_DIR)",
                "parameters": [RUN_ID],
                "responses": {"200": _json(_FILES), **_errors(*one)},
            }
        },
        "/workflows/{run_id}/files/{path}": {
            "get": {
                "summary": "One file of the run's directory (?download=1 to save it)",
                "parameters": [
                    RUN_ID,
                    {
                        "name": "path",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                        "description": "relative to the run's directory",
                    },
                    query("download", {"type": "string"}, "any non-empty value: as an attachment"),
                ],
                "responses": {
                    "200": {
                        "description": "the file's bytes, with the type its name says (never rendered: "
                        "Content-Security-Policy sandbox)",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_errors("400", *one),
                },
            }
        },
    }

"""The "Run as job" part of the OpenAPI document (a notebook's parameters, a notebook of the
server's files run as a task), merged into :func:`jupyter_orch.server.openapi.document`."""

from __future__ import annotations

from typing import Any

from ..core import limits
from .openapi_schema import _NULLABLE_STR, NO_NUL, _errors, _json, _ref, json_body, text
from .openapi_tasks import RESOURCES

# relative to the Jupyter root, inside it: not blank, no NUL, no ".." segment
NOTEBOOK_PATH = {
    "type": "string",
    "allOf": [
        {"pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"},
        {"pattern": r"^/*(([^/]?|[^/.][^/]|\.[^/.]|[^/]{3,})(/+|$))*$"},
    ],
    "description": "relative to the Jupyter server's root directory (a path out of it: 400)",
}
# tornado reads control characters in a query argument as spaces, and strips it
_VISIBLE = r"[^\s\x00-\x08\x0e-\x1f]"
NOTEBOOK_PATH_QUERY = {
    **NOTEBOOK_PATH,
    "allOf": [{"pattern": f"^{_VISIBLE}(.*{_VISIBLE})?$"}, NOTEBOOK_PATH["allOf"][1]],
}

SCHEMAS: dict[str, Any] = {
    "NotebookParameters": {
        "type": "object",
        "required": ["path", "kernel", "parameters"],
        "properties": {
            "path": {"type": "string"},
            "kernel": _NULLABLE_STR,
            "parameters": {"type": "array", "items": _ref("NotebookParameter")},
        },
    },
    "NotebookParameter": {
        "type": "object",
        "required": ["name", "default", "type", "help"],
        "properties": {
            "name": {"type": "string"},
            "default": {"description": "a JSON value where the source is a literal, else the source text"},
            "type": {
                "type": ["string", "null"],
                "description": "the annotation papermill found, else the literal default's type "
                "(int, float, str, bool, list, dict); null when neither says",
            },
            "help": {"type": "string", "description": "the comment after the assignment"},
        },
    },
    "NotebookRun": {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": NOTEBOOK_PATH,
            "parameters": {
                "type": ["object", "null"],
                "description": "name -> value, checked against the notebook's parameters and typed by "
                'their defaults (text such as "0.5" is read as the parameter\'s type)',
            },
            "resources": RESOURCES,
            "image": {
                "type": ["string", "null"],
                "maxLength": limits.MAX_IMAGE,
                "pattern": r"^([^\x00]*[^\s\x00][^\x00]*)?$",
                "description": "empty or null: the worker's own environment",
            },
            "name": text(
                "default: the notebook's file name", max_len=limits.MAX_NAME, blank=True, nullable=True
            ),
            "kernel": {"type": ["string", "null"], "description": "default: the notebook's kernel"},
            "retries": {"type": ["integer", "null"], "minimum": 0, "maximum": limits.MAX_RETRIES},
            "timeout": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "priority": {
                "type": ["integer", "null"],
                "minimum": -limits.MAX_PRIORITY,
                "maximum": limits.MAX_PRIORITY,
            },
            "env": {
                "type": ["object", "null"],
                "maxProperties": limits.MAX_ENV,
                "propertyNames": {"minLength": 1, "pattern": r"^[^=\x00]*$"},
                "additionalProperties": {"type": ["string", "number", "boolean"], "pattern": NO_NUL},
            },
        },
    },
}


def paths() -> dict[str, Any]:
    return {
        "/notebooks/parameters": {
            "get": {
                "summary": "A notebook's papermill parameters (its cell tagged parameters)",
                "parameters": [
                    {"name": "path", "in": "query", "required": True, "schema": NOTEBOOK_PATH_QUERY}
                ],
                "responses": {"200": _json(_ref("NotebookParameters")), **_errors("400", "401", "404")},
            }
        },
        "/notebooks/run": {
            "post": {
                "summary": "Run as job: submit a notebook of the server's files as a notebook task",
                "requestBody": json_body(_ref("NotebookRun")),
                "responses": {
                    "201": _json(_ref("Task"), "the task, accepted"),
                    **_errors("400", "401", "403", "404", "409", "413", "503"),
                },
            }
        },
    }

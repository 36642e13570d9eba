"""The "Run as job" part of the OpenAPI document (a notebook's parameters, a notebook of the
server's files run as a task), merged into :func:`jupyter_orch.server.openapi.document`."""

from __future__ import annotations

from typing import Any

from .openapi import _NULLABLE_STR, _errors, _json, _ref

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
        "properties": {
            "path": {"type": "string", "description": "relative to the Jupyter server's root directory"},
            "parameters": {
                "type": "object",
                "description": "name -> value, checked against the notebook's parameters and typed by "
                'their defaults (text such as "0.5" is read as the parameter\'s type)',
            },
            "resources": {
                "type": "object",
                "properties": {
                    "gpus": {"type": "integer", "minimum": 0},
                    "cpus": {"type": "number"},
                    "memory": {"type": ["string", "integer"]},
                    "gpu_type": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "image": {"type": "string"},
            "name": {"type": "string", "description": "default: the notebook's file name"},
            "kernel": {"type": "string", "description": "default: the notebook's kernel"},
            "retries": {"type": "integer", "minimum": 0},
            "timeout": {"type": "number"},
            "priority": {"type": "integer"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


def paths() -> dict[str, Any]:
    return {
        "/notebooks/parameters": {
            "get": {
                "summary": "A notebook's papermill parameters (its cell tagged parameters)",
                "parameters": [
                    {
                        "name": "path",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "relative to the Jupyter server's root directory",
                    }
                ],
                "responses": {"200": _json(_ref("NotebookParameters")), **_errors("400", "401", "404")},
            }
        },
        "/notebooks/run": {
            "post": {
                "summary": "Run as job: submit a notebook of the server's files as a notebook task",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NotebookRun")}},
                },
                "responses": {
                    "201": _json(_ref("Task"), "the task, accepted"),
                    **_errors("400", "401", "404", "413"),
                },
            }
        },
    }

"""The admin part of the OpenAPI document: who holds what now against their quotas
(``GET /admin/holdings``, the sidebar's admin view), merged into
:func:`jupyter_orch.server.openapi.document`. (``/admin/usage``, use over a period, is
described with the workers' part.)"""

from __future__ import annotations

from typing import Any

from .openapi_schema import _errors, _json, _ref

_COUNT = {"type": "integer", "minimum": 0}
_LIMIT = {"type": ["integer", "null"], "minimum": 0, "description": "null: no limit"}
_COUNTS = {"type": "object", "additionalProperties": _COUNT}

SCHEMAS: dict[str, Any] = {
    "Limits": {
        "type": "object",
        "description": "a quota in force (c.OrchApp.quotas, with the hub group's properties.orch over it)",
        "required": ["gpus", "gpu_types", "running", "queued"],
        "properties": {
            "gpus": _LIMIT,
            "gpu_types": {**_COUNTS, "description": "GPUs whose model names the type, at most"},
            "running": _LIMIT,
            "queued": _LIMIT,
        },
    },
    "Use": {
        "type": "object",
        "required": ["running", "queued", "gpus", "gpu_models", "gpu_types", "cpus", "limits"],
        "properties": {
            "running": {**_COUNT, "description": "tasks placed on workers (scheduled or running)"},
            "queued": {**_COUNT, "description": "tasks waiting (pending)"},
            "gpus": {**_COUNT, "description": "GPUs held now"},
            "gpu_models": {**_COUNTS, "description": "GPUs held, per model"},
            "gpu_types": {**_COUNTS, "description": "GPUs held of each type the quota limits"},
            "cpus": {"type": "number", "minimum": 0},
            "limits": _ref("Limits"),
        },
    },
    "Holdings": {
        "type": "object",
        "required": ["at", "fair_share", "capacity", "totals", "users", "groups"],
        "properties": {
            "at": {"type": "number"},
            "fair_share": {
                "type": "boolean",
                "description": "quotas and fair share are on (a server shared by several users)",
            },
            "capacity": {
                "type": "object",
                "required": ["workers", "gpus", "slots"],
                "properties": {"workers": _COUNT, "gpus": _COUNT, "slots": _COUNT},
                "description": "what the connected workers offer",
            },
            "totals": {
                "type": "object",
                "required": ["running", "queued", "gpus"],
                "properties": {"running": _COUNT, "queued": _COUNT, "gpus": _COUNT},
            },
            "users": {
                "type": "array",
                "description": "every user with tasks placed or waiting",
                "items": {
                    "allOf": [
                        _ref("Use"),
                        {
                            "type": "object",
                            "required": ["user", "groups", "weight", "recent_gpu_hours"],
                            "properties": {
                                "user": {"type": "string"},
                                "groups": {"type": "array", "items": {"type": "string"}},
                                "weight": {"type": "number"},
                                "recent_gpu_hours": {
                                    "type": "number",
                                    "description": "GPU-hours, decayed (fair share's recent use)",
                                },
                            },
                        },
                    ]
                },
            },
            "groups": {
                "type": "array",
                "description": "every group with a quota of its own, or with a member who has work",
                "items": {
                    "allOf": [
                        _ref("Use"),
                        {
                            "type": "object",
                            "required": ["group", "members", "weight"],
                            "properties": {
                                "group": {"type": "string"},
                                "members": {"type": "array", "items": {"type": "string"}},
                                "weight": {"type": "number"},
                            },
                        },
                    ]
                },
            },
        },
    },
}


def paths() -> dict[str, Any]:
    return {
        "/admin/holdings": {
            "get": {
                "summary": "Per user and per group: tasks placed and waiting and GPUs held now, each "
                "against its quota (with custom:orch:read-all or as an admin)",
                "responses": {"200": _json(_ref("Holdings")), **_errors("401", "403", "503")},
            },
        },
    }

"""The GPU timeline part of the OpenAPI document (``GET /timeline``), merged into
:func:`jupyter_orch.server.openapi.document`."""

from __future__ import annotations

from typing import Any

from .openapi_schema import _NULLABLE_NUM, _NULLABLE_STR, _errors, _json, _ref, query
from .timeline import MAX_SPANS, MAX_WINDOW

_TIME = {"type": "number", "minimum": 0, "maximum": 1e11}

SCHEMAS: dict[str, Any] = {
    "TimelineSpan": {
        "type": "object",
        "required": ["mine", "attempt", "state", "worker_id", "gpus", "started_at", "ended_at"],
        "properties": {
            "task_id": {**_NULLABLE_STR, "description": "null: another user's task"},
            "name": _NULLABLE_STR,
            "owner": _NULLABLE_STR,
            "mine": {"type": "boolean", "description": "the caller's task (or the caller reads everything)"},
            "attempt": {"type": "integer"},
            "state": {"type": "string", "description": "the attempt's: running, succeeded, failed, ..."},
            "worker_id": _NULLABLE_STR,
            "gpus": {"type": "array", "items": {"type": "integer"}},
            "started_at": {"type": "number"},
            "ended_at": {**_NULLABLE_NUM, "description": "null: still running"},
        },
    },
    "TimelineWorker": {
        "type": "object",
        "required": ["id", "name", "state", "slots", "gpus"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string", "description": "connected, disconnected, or gone (only in spans)"},
            "slots": {"type": "integer"},
            "gpus": {"type": "array", "items": {"type": "object"}},
        },
    },
}


def paths() -> dict[str, Any]:
    return {
        "/timeline": {
            "get": {
                "summary": "Which task held which worker's GPUs (or slots) when: the attempts of a "
                "window, running ones included; another user's as busy time only",
                "parameters": [
                    query(
                        "since",
                        _TIME,
                        f"epoch seconds; default: an hour before until (window ≤ {MAX_WINDOW / 86400:g} days)",
                    ),
                    query("until", _TIME, "epoch seconds; default: now"),
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_SPANS},
                        "the latest spans by start",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["since", "until", "now", "workers", "spans", "truncated"],
                            "properties": {
                                "since": {"type": "number"},
                                "until": {"type": "number"},
                                "now": {"type": "number"},
                                "workers": {"type": "array", "items": _ref("TimelineWorker")},
                                "spans": {"type": "array", "items": _ref("TimelineSpan")},
                                "truncated": {"type": "boolean", "description": "more spans than limit"},
                            },
                        }
                    ),
                    **_errors("400", "401", "503"),
                },
            }
        }
    }

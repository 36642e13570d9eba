"""The metrics part of the OpenAPI document (``GET /tasks/{id}/metrics``: what a task
reported with ``jupyter_orch.report``), merged into :func:`jupyter_orch.server.openapi.document`.
The limits come from :mod:`jupyter_orch.core.metrics` and :mod:`jupyter_orch.engine.metricreads`."""

from __future__ import annotations

from typing import Any

from ..core.metrics import _RESERVED, MAX_GROUP, MAX_NAME, MAX_POINTS_DEFAULT, MAX_POINTS_LIMIT
from ..engine.metricreads import RECORDS_DEFAULT, RECORDS_LIMIT
from .openapi_schema import _NULLABLE_NUM, _errors, _json, _ref, path_id, query, whole

GROUP = {"type": "string", "pattern": rf"^[A-Za-z0-9_.\-]{{1,{MAX_GROUP}}}$"}
NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME,
    "not": {"enum": sorted(_RESERVED)},
    "description": "printable text (control characters in a query are read as spaces); not a "
    "column of the records (" + ", ".join(sorted(_RESERVED)) + ")",
}
_NUMBERS = {"type": "array", "items": _NULLABLE_NUM}

SCHEMAS: dict[str, Any] = {
    "MetricSeries": {
        "type": "object",
        "required": ["task_id", "attempts", "groups", "names", "series"],
        "properties": {
            "task_id": {"type": "string"},
            "attempts": {"type": "array", "items": {"type": "integer"}, "description": "those with points"},
            "groups": {"type": "array", "items": {"type": "string"}, "description": "every group reported"},
            "names": {"type": "array", "items": {"type": "string"}, "description": "every metric reported"},
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "name",
                        "group",
                        "attempt",
                        "x",
                        "y",
                        "count",
                        "downsampled",
                        "last",
                        "min",
                        "max",
                    ],
                    "properties": {
                        "name": {"type": "string"},
                        "group": {"type": "string"},
                        "attempt": {"type": ["integer", "null"], "description": "null: attempts merged"},
                        "x": {
                            "type": "array",
                            "items": {"type": "number"},
                            "description": "step (or offset)",
                        },
                        "y": {**_NUMBERS, "description": "null: a NaN or infinity reported (a gap)"},
                        "count": {"type": "integer", "description": "points before downsampling"},
                        "downsampled": {"type": "boolean"},
                        "last": _NULLABLE_NUM,
                        "min": _NULLABLE_NUM,
                        "max": _NULLABLE_NUM,
                    },
                },
            },
        },
    },
    "MetricRecords": {
        "type": "object",
        "required": ["records", "next"],
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["attempt", "offset", "ts", "step", "group"],
                    "properties": {
                        "attempt": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "ts": {"type": "number"},
                        "step": {"type": ["integer", "null"]},
                        "group": {"type": "string"},
                    },
                    "additionalProperties": _NULLABLE_NUM,
                },
            },
            "next": {
                "type": ["string", "null"],
                "description": "the `after` of the next page; null: no more",
            },
        },
    },
}


def paths() -> dict[str, Any]:
    return {
        "/tasks/{task_id}/metrics": {
            "get": {
                "summary": "What the task reported with jupyter_orch.report: a series per metric and "
                "group (downsampled), or records a page at a time (format=records)",
                "parameters": [
                    path_id("task_id"),
                    query(
                        "attempt", whole(1), "1-based (default: every attempt); at most the task's attempts"
                    ),
                    query("group", GROUP, "only this group (training, validation, ...)"),
                    {
                        "name": "name",
                        "in": "query",
                        "style": "form",
                        "explode": True,
                        "schema": {"type": "array", "items": NAME},
                        "description": "only these metrics (repeat the parameter)",
                    },
                    query(
                        "max_points",
                        {**whole(1, MAX_POINTS_LIMIT), "default": MAX_POINTS_DEFAULT},
                        "series: at most this many points each (LTTB; the first and last kept)",
                    ),
                    query(
                        "per_attempt",
                        {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
                        "series: one per attempt (default: attempts merged)",
                    ),
                    query("format", {"type": "string", "enum": ["series", "records"], "default": "series"}),
                    query(
                        "limit",
                        {**whole(1, RECORDS_LIMIT), "default": RECORDS_DEFAULT},
                        "records: at most this many",
                    ),
                    query(
                        "after",
                        {"type": "string", "pattern": r"^[0-9]{1,18}:[0-9]{1,18}$"},
                        "records: the cursor ATTEMPT:OFFSET of the page before (its `next`)",
                    ),
                ],
                "responses": {
                    "200": _json({"oneOf": [_ref("MetricSeries"), _ref("MetricRecords")]}),
                    **_errors("400", "401", "403", "404", "503"),
                },
            },
        },
    }

"""The hyperparameter search part of the OpenAPI document, merged into
:func:`jupyter_orch.server.openapi.document`."""

from __future__ import annotations

from typing import Any

from ..core import limits
from ..core.search import MAX_CONCURRENT, MAX_REDUCTION, MAX_STEP, MAX_TRIALS, MODES, SCHEDULERS
from ..core.searchrequests import SEARCH_STATES, TASK_KEYS
from .openapi_schema import (
    _NULLABLE_NUM,
    _NULLABLE_STR,
    _errors,
    _json,
    _ref,
    json_body,
    path_id,
    query,
    seconds,
    text,
)

SEARCH_ID = path_id("search_id")
_NULLABLE_OBJ = {"type": ["object", "null"]}

SCHEMAS: dict[str, Any] = {
    "SearchSubmit": {
        "type": "object",
        "description": "a hyperparameter search: its trials are function tasks running the pickled call "
        "in `payload` with the sampled parameters as keyword arguments. The space and the ASHA settings "
        "are checked together (400 naming the field, e.g. `space.lr`, `max_t`); nothing is stored then",
        "required": ["space", "metric", "payload"],
        "additionalProperties": False,
        "properties": {
            "name": text("default: search", max_len=limits.MAX_NAME - 20, blank=True, nullable=True),
            "space": {
                "type": "object",
                "description": "name -> a list (a grid axis), a constant, or {uniform|loguniform|randint|"
                "quniform|choice: [args]}",
            },
            "metric": {"type": "string", "description": "the metric the trials report, e.g. val_loss"},
            "mode": {"type": "string", "enum": list(MODES), "description": "min (default) or max"},
            "scheduler": {"type": "string", "enum": list(SCHEDULERS), "description": "default asha"},
            "max_trials": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TRIALS},
            "max_concurrent": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENT},
            "max_t": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_STEP,
                "description": "the largest step a trial reports (required for asha)",
            },
            "grace_period": {"type": "integer", "minimum": 1, "maximum": MAX_STEP},
            "reduction_factor": {"type": "number", "exclusiveMinimum": 1, "maximum": MAX_REDUCTION},
            "group": {**_NULLABLE_STR, "description": "only points of this metric group count"},
            "seed": {"type": "integer", "minimum": -MAX_STEP, "maximum": MAX_STEP},
            "task": {
                "type": ["object", "null"],
                "description": "each trial task's options, checked as a task's fields",
                "propertyNames": {"enum": list(TASK_KEYS)},
            },
            "payload": {"type": "string", "minLength": 1, "description": "base64 of the pickled call"},
        },
    },
    "SearchBest": {
        "type": ["object", "null"],
        "properties": {
            "number": {"type": "integer"},
            "params": {"type": "object"},
            "task_id": _NULLABLE_STR,
            "value": {"type": "number"},
            "step": {"type": ["integer", "null"]},
            "state": {"type": "string"},
        },
    },
    "Search": {
        "type": "object",
        "required": ["id", "name", "owner", "state", "config", "space", "counts", "best", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "owner": {"type": "string"},
            "state": {"type": "string", "enum": list(SEARCH_STATES)},
            "config": {"type": "object"},
            "space": {"type": "object"},
            "task": {"type": "object"},
            "counts": {"type": "object", "description": "trials per state, and total"},
            "best": _ref("SearchBest"),
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "ended_at": _NULLABLE_NUM,
            "error": _NULLABLE_STR,
            "step": {
                "type": ["object", "null"],
                "description": "a workflow step's search: the step's task_id, run and name (null: an SDK search)",
            },
            "trials": {
                "type": "array",
                "description": "a row per trial, best first: number, task_id, params, state, best, "
                "best_step, last, step, rung, reason",
                "items": {"type": "object"},
            },
        },
    },
}


def paths() -> dict[str, Any]:
    one = _json(_ref("Search"), "the search with its trials, best first")
    errors = ("401", "403", "404", "503")
    return {
        "/searches": {
            "get": {
                "summary": "The caller's hyperparameter searches, newest first (without their trials)",
                "parameters": [
                    query(
                        "owner", {"type": "string"}, "another user's (or * for everyone's): needs read-all"
                    ),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["searches"],
                            "properties": {"searches": {"type": "array", "items": _ref("Search")}},
                        }
                    ),
                    **_errors("400", "401", "403", "503"),
                },
            },
            "post": {
                "summary": "Start a hyperparameter search (ASHA, random or grid): its first trials are "
                "submitted now",
                "requestBody": json_body(_ref("SearchSubmit")),
                "responses": {
                    "201": _json(_ref("Search"), "accepted"),
                    **_errors("400", "401", "403", "413", "429", "503"),
                },
            },
        },
        "/searches/{search_id}": {
            "get": {
                "summary": "A search with its trials (parameters, best value, state), best first",
                "parameters": [SEARCH_ID],
                "responses": {"200": one, **_errors(*errors)},
            }
        },
        "/searches/{search_id}/wait": {
            "get": {
                "summary": "Long poll: answers when the search ends or after timeout seconds",
                "parameters": [SEARCH_ID, query("timeout", seconds(), "default 30")],
                "responses": {"200": one, **_errors("400", *errors)},
            }
        },
        "/searches/{search_id}/cancel": {
            "post": {
                "summary": "Cancel the search: its running trials are cancelled, no new one starts",
                "parameters": [SEARCH_ID],
                "responses": {"200": one, **_errors("409", *errors)},
            }
        },
    }

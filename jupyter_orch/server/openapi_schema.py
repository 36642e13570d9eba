"""The building blocks the parts of the OpenAPI document share: id and text patterns,
helpers for parameters, bodies, responses and references, the error responses, and the
``Error``/``JsonValue``/``JsonText`` schemas. Imports no handler module; :mod:`.openapi`
puts the parts together."""

from __future__ import annotations

from typing import Any

from ..core import limits

API_BASE = "/orch/api/v1"

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}

# Patterns valid both as ECMA-262 (the document's dialect) and Python regular expressions.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # a non-space character, and no NUL
ID_PATTERN = r"^[0-9a-hjkmnp-tv-z]{26}$"  # what the server issues (time-ordered, lower case)
ROUTE_ID_PATTERN = r"^[0-9a-z]{26}$"  # what a route takes (anything else: a JSON 404)
MAX_INT64 = 2**63 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text(
    description: str = "", *, max_len: int | None = None, blank: bool = False, nullable: bool = False
) -> dict[str, Any]:
    """A string the server stores as text: no NUL; non-blank unless ``blank``."""
    schema: dict[str, Any] = {
        "type": ["string", "null"] if nullable else "string",
        "pattern": NO_NUL if blank else NOT_BLANK,
    }
    if max_len is not None:
        schema["maxLength"] = max_len
    if description:
        schema["description"] = description
    return schema


def query(name: str, schema: dict[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if required:
        param["required"] = True
    if description:
        param["description"] = description
    return param


def path_id(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ROUTE_ID_PATTERN},
    }


def whole(minimum: int = 0, maximum: int = MAX_INT64) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def seconds(maximum: float = 3600) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "maximum": maximum}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"JSON, at most {limits.MAX_BODY_BYTES} bytes by default (c.OrchApp.max_body_size; "
        f"larger: 413), nested at most {limits.MAX_DEPTH} levels deep (deeper: 400)",
        "content": {"application/json": {"schema": schema}},
    }


_ERR = {
    "400": _json(
        _ref("Error"), "Bad input; `field` names the culprit (`problems`: every problem of a workflow file)"
    ),
    "401": _json(_ref("Error"), "Missing, bad or revoked credentials"),
    "403": _json(
        _ref("Error"),
        "Not yours, not allowed with these credentials, or a POST or DELETE without credentials "
        "(Jupyter's XSRF check)",
    ),
    "404": _json(_ref("Error"), "No such object"),
    "409": _json(_ref("Error"), "Wrong state for this action"),
    "413": _json(_ref("Error"), "Over a size limit (the body, a payload, a task's metadata)"),
    "429": _json(_ref("Error"), "Over a quota of tasks waiting, set for the user or one of their groups"),
    "503": _json(_ref("Error"), "The database or disk is unavailable: nothing was done; send it again"),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: _ERR[c] for c in codes}


def _json_value(nul: bool) -> dict[str, Any]:
    string = {"type": "string"} if nul else {"type": "string", "pattern": NO_NUL}
    keys = {} if nul else {"propertyNames": {"pattern": NO_NUL}}
    name = "JsonValue" if nul else "JsonText"
    return {
        "description": "any JSON value" + ("" if nul else " without a NUL character in any string or key"),
        "anyOf": [
            string,
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": _ref(name)},
            {"type": "object", **keys, "additionalProperties": _ref(name)},
        ],
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {
                "type": "string",
                "description": "invalid, unauthorized, forbidden, not_found, method_not_allowed, "
                "wrong_state, too_large, quota_exceeded, unavailable, error",
            },
            "message": {"type": "string"},
            "field": {"type": "string"},
            "problems": {
                "type": "array",
                "items": {"type": "string"},
                "description": "file:line:column: message",
            },
        },
    },
    "JsonValue": _json_value(nul=True),
    "JsonText": _json_value(nul=False),
}

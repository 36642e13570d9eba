"""The OpenAPI 3.1 document of ``/orch/api/v1``, served at ``/orch/api/v1/openapi.json``.

Its parts live next to each other (:mod:`.openapi_tasks`, :mod:`.openapi_workers`,
:mod:`.openapi_workflows`, :mod:`.openapi_notebooks`); this module holds the pieces they
share and puts them together. The input limits come from :mod:`jupyter_orch.core.limits`,
so the document and the checks cannot drift apart.

Tests check it both ways against the real handlers (``tests/server/test_openapi.py``: every
route documented with the methods it implements; ``tests/contract``: the API fuzzed against
it, every answer's status, content type and body as documented).
"""

from __future__ import annotations

from typing import Any

from tornado import web

from .._version import __version__
from ..core import limits
from ..core.errors import NotFound
from .base import OrchAPIHandler, OrchMixin

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
                "wrong_state, too_large, unavailable, error",
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


def document() -> dict[str, Any]:
    from . import openapi_notebooks, openapi_tasks, openapi_workers, openapi_workflows

    parts = (openapi_tasks, openapi_workers, openapi_workflows, openapi_notebooks)
    paths: dict[str, Any] = {}
    schemas = dict(SCHEMAS)
    for part in parts:
        paths.update(part.paths())
        schemas.update(part.SCHEMAS)
    paths["/openapi.json"] = {
        "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}), **_errors("401")}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyter-orch API",
            "version": __version__,
            "description": "Tasks, workflow runs, workers and events of a jupyter-orch server. Every "
            "error is JSON (`Error`); a method a path does not have is a 405 whose `Allow` header "
            "lists the ones it has. The WebSocket routes (events, the SDK's session, following a "
            "log, workers connecting) are described under `x-websockets`. Input limits: "
            + ", ".join(f"{k} {v}" for k, v in limits.LIMITS.items())
            + ".",
        },
        "servers": [{"url": API_BASE}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "orchToken": {"type": "http", "scheme": "bearer", "description": "JUPYTER_ORCH_TOKEN"},
                "jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization"},
            },
        },
        "security": [{"orchToken": []}, {"jupyterToken": []}],
        "paths": paths,
        "x-websockets": openapi_workers.websockets(),
    }


class OpenAPIHandler(OrchAPIHandler):
    async def get(self) -> None:
        self.write_json(document())


class UnknownPathHandler(OrchAPIHandler):
    """Any other path under the API base (or an id of the wrong shape): a JSON 404 for an
    authenticated request, never Jupyter's HTML page. It has no methods of its own."""

    options = web.RequestHandler.options  # type: ignore[assignment]

    def check_xsrf_cookie(self) -> None:
        # no 405 before authentication here: a path the API does not have is a 404 for any method
        super(OrchMixin, self).check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if not self._finished:
            raise NotFound(f"no API endpoint {self.request.path}; they are listed in {API_BASE}/openapi.json")

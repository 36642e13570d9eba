"""The OpenAPI 3.1 document of ``/orch/api/v1``, served at ``/orch/api/v1/openapi.json``.

Its parts live next to each other (:mod:`.openapi_tasks`, :mod:`.openapi_metrics`, :mod:`.openapi_workers`,
:mod:`.openapi_workflows`, :mod:`.openapi_notebooks`, :mod:`.openapi_admin`) over the
pieces they share (:mod:`.openapi_schema`); this module puts them together and serves the document. The
input limits come from :mod:`jupyter_orch.core.limits`, so the document and the checks
cannot drift apart.

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
from . import (
    openapi_admin,
    openapi_metrics,
    openapi_notebooks,
    openapi_searches,
    openapi_tasks,
    openapi_timeline,
    openapi_workers,
    openapi_workflows,
)
from .base import OrchAPIHandler, OrchMixin
from .openapi_schema import (
    API_BASE,
    ID_PATTERN,
    MAX_INT64,
    NO_NUL,
    NOT_BLANK,
    ROUTE_ID_PATTERN,
    SCHEMAS,
    _errors,
    _json,
    json_body,
    path_id,
    query,
    seconds,
    text,
    whole,
)

# the shared pieces stay importable from here, as before openapi_schema held them
__all__ = [
    "API_BASE",
    "ID_PATTERN",
    "MAX_INT64",
    "NO_NUL",
    "NOT_BLANK",
    "ROUTE_ID_PATTERN",
    "SCHEMAS",
    "json_body",
    "path_id",
    "query",
    "seconds",
    "text",
    "whole",
    "OpenAPIHandler",
    "UnknownPathHandler",
    "document",
]


def document() -> dict[str, Any]:
    parts = (
        openapi_tasks,
        openapi_metrics,
        openapi_workers,
        openapi_workflows,
        openapi_searches,
        openapi_timeline,
        openapi_notebooks,
        openapi_admin,
    )
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

"""REST handlers for hyperparameter searches: create (the function's pickled call travels
base64 in ``payload``), list, get (with its trials, best first), wait, cancel. The same
access rules as tasks: the caller's own, another user's only with the scope to read (or
change) all."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from ..core.errors import SpecError
from .base import OrchAPIHandler


class SearchesHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        searches = await engine.list_searches(
            owner=self.identity.listed_owner(self.get_query_argument("owner", None)),
            limit=self.int_arg("limit", 100, 1, 1000) or 100,
        )
        self.write_json({"searches": searches})

    async def post(self) -> None:
        engine = await self.engine()
        body = self.json_body()
        if not isinstance(body, Mapping):
            raise SpecError("a search request is a JSON object", field="search")
        request = dict(body)
        raw = request.pop("payload", None)
        if not isinstance(raw, str) or not raw:
            raise SpecError("payload must be the base64 of the function's pickled call", field="payload")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise SpecError("payload is not valid base64", field="payload") from None
        view = await engine.create_search(self.owner, request, payload)
        self.write_json(view, status=201)


class SearchHandler(OrchAPIHandler):
    async def get(self, search_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.describe_search(search_id, self.identity.read_filter()))


class SearchWaitHandler(OrchAPIHandler):
    """Long poll: answers (the search with its trials) when it ends or after ``timeout``."""

    async def get(self, search_id: str) -> None:
        engine = await self.engine()
        timeout = self.float_arg("timeout", 30.0)
        self.write_json(await engine.wait_search(search_id, timeout, self.identity.read_filter()))


class SearchCancelHandler(OrchAPIHandler):
    async def post(self, search_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.cancel_search(search_id, self.identity.change_filter()))

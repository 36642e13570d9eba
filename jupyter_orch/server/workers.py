"""REST handlers for workers and the tokens they connect with, plus server info."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import Forbidden, NotFound
from ..core.records import TokenRow
from .base import OrchAPIHandler
from .submissions import MAX_TOKEN_NAME as MAX_TOKEN_NAME  # still importable here
from .submissions import parse_token_name


def token_view(token: TokenRow) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "owner": token.owner,
        "provider": token.provider,
        "created_at": token.created_at,
        "revoked_at": token.revoked_at,
    }


class WorkersHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        provider = engine.provider.describe() if engine.provider is not None else {}
        self.write_json({"workers": engine.worker_list(), "provider": provider})


class WorkerHandler(OrchAPIHandler):
    async def get(self, worker_id: str) -> None:
        engine = await self.engine()
        worker = engine.workers.get(worker_id)
        if worker is None:
            raise NotFound(f"no connected worker {worker_id}")
        self.write_json(worker.to_dict())


class TokensHandler(OrchAPIHandler):
    """Worker tokens: ``POST`` issues one (its secret is shown once), ``GET`` lists them."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        refuse_task_tokens(self)

    async def get(self) -> None:
        engine = await self.engine()
        tokens = await engine.list_tokens("worker")
        self.write_json({"tokens": [token_view(t) for t in tokens]})

    async def post(self) -> None:
        engine = await self.engine()
        body = self.json_body() if self.request.body else {}
        name = parse_token_name(body)
        token, secret = await engine.create_token(name, scope="worker", owner=self.owner, provider="static")
        self.write_json({**token_view(token), "token": secret}, status=201)


def refuse_task_tokens(handler: OrchAPIHandler) -> None:
    """Tokens are managed by people, not by the tasks they run."""
    if handler.task_token_of is not None and not handler._finished:
        handler.send_orch_error(Forbidden("a task's own token cannot manage tokens"))


class TokenHandler(OrchAPIHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        refuse_task_tokens(self)

    async def delete(self, token_id: str) -> None:
        engine = await self.engine()
        if not await engine.revoke_token(token_id):
            raise NotFound(f"no token {token_id}")
        self.set_status(204)
        self.finish()


class InfoHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        self.write_json(
            {
                "version": self.orch.version_string,
                "owner": self.owner,
                "provider": engine.provider.name if engine.provider is not None else None,
                "policy": engine.config.policy,
                "max_payload_bytes": engine.config.max_payload_bytes,
                "counts": await engine.counts(None if self.orch.owner_from != "identity" else self.owner),
                "workers": len(engine.workers),
            }
        )


class WorkflowSchemaHandler(OrchAPIHandler):
    """The JSON Schema of workflow files (for editors, the sidebar and other tools)."""

    async def get(self) -> None:
        from ..workflows.loader import schema

        self.finish(json.dumps(schema()), set_content_type="application/schema+json")

"""REST handlers for workers and the tokens they connect with, plus server info."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.errors import Forbidden, NotFound
from ..core.records import TokenRow
from .base import OrchAPIHandler
from .visibility import token_visible, worker_view, worker_views

if TYPE_CHECKING:
    from ..engine import Engine
from .submissions import MAX_TOKEN_NAME as MAX_TOKEN_NAME  # still importable here
from .submissions import parse_token_request


def token_view(token: TokenRow) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "owner": token.owner,
        "provider": token.provider,
        "group": token.group or None,
        "created_at": token.created_at,
        "revoked_at": token.revoked_at,
    }


def task_owner(engine: Engine) -> Callable[[str], str | None]:
    def owner(task_id: str) -> str | None:
        row = engine.tasks.get(task_id)  # a task on a worker is active
        return row.owner if row is not None else None

    return owner


class WorkersHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        identity = self.identity
        workers = worker_views(engine.worker_list(), identity, task_owner(engine))
        # the provider's settings (cluster, namespace, images) are the service's business
        provider = engine.provider.describe() if engine.provider is not None and identity.is_admin else {}
        self.write_json({"workers": workers, "provider": provider})


class WorkerHandler(OrchAPIHandler):
    async def get(self, worker_id: str) -> None:
        engine = await self.engine()
        worker = engine.workers.get(worker_id)
        view = (
            worker_view(worker.to_dict(), self.identity, task_owner(engine)) if worker is not None else None
        )
        if view is None:
            raise NotFound(f"no connected worker {worker_id}")
        self.write_json(view)


class TokensHandler(OrchAPIHandler):
    """Worker tokens: ``POST`` issues one (its secret is shown once), ``GET`` lists them."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        refuse_task_tokens(self)

    async def get(self) -> None:
        engine = await self.engine()
        identity = self.identity
        tokens = [t for t in await engine.list_tokens("worker") if token_visible(t, identity)]
        self.write_json({"tokens": [token_view(t) for t in tokens]})

    async def post(self) -> None:
        """A user's token registers their own workers, which run only their tasks; a shared
        worker's token (``"shared": true``, no owner: the service's) is for admins."""
        engine = await self.engine()
        body = self.json_body() if self.request.body else {}
        name, shared, group = parse_token_request(body)
        identity = self.identity
        if shared:
            identity.require_admin("a token for shared workers")
        if group and group not in identity.groups and not identity.is_admin:
            raise Forbidden(
                f"you are not in the group {group}: a token for its workers is its members'", field="group"
            )
        owner = "" if shared else self.owner
        token, secret = await engine.create_token(
            name, scope="worker", owner=owner, provider="static", group=group
        )
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
        identity = self.identity
        if not identity.is_admin:  # a user revokes only the tokens they issued
            mine = [t for t in await engine.list_tokens("worker") if token_visible(t, identity)]
            if token_id not in {t.id for t in mine}:
                raise NotFound(f"no token {token_id}")
        if not await engine.revoke_token(token_id):
            raise NotFound(f"no token {token_id}")
        self.set_status(204)
        self.finish()


class InfoHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        identity = self.identity
        self.write_json(
            {
                "version": self.orch.version_string,
                "owner": self.owner,
                # several users share this server (owner_from=identity): the sidebar shows its
                # admin view to those who may read all (and offers cancel to admins)
                "shared": self.orch.owner_from == "identity",
                "rights": {"read_all": identity.reads_all, "admin": identity.is_admin},
                "provider": engine.provider.name if engine.provider is not None else None,
                "policy": engine.config.policy,
                "max_payload_bytes": engine.config.max_payload_bytes,
                "counts": await engine.counts(identity.read_filter()),
                "workers": len(worker_views(engine.worker_list(), identity, task_owner(engine))),
            }
        )


class WorkflowSchemaHandler(OrchAPIHandler):
    """The JSON Schema of workflow files (for editors, the sidebar and other tools)."""

    async def get(self) -> None:
        from ..workflows.loader import schema

        self.finish(json.dumps(schema()), set_content_type="application/schema+json")

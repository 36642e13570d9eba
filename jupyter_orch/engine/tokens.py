"""Looking up API and worker tokens without a database read per request.

Every REST request and WebSocket carrying an orch token needs its token; reading it from
the database each time costs a round trip on the database thread and makes every request
fail while the database is unavailable. Found tokens are kept for ``ttl`` seconds (an
entry past it is read again, and used still if the database cannot be read then); a
revocation through the engine drops its entry at once. Unknown secrets are never kept.

:class:`Tokens` is the engine's token service: creating, finding (through the cache),
revoking (which disconnects the workers that used the token) and listing tokens.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from ..core.errors import Unavailable
from ..core.records import TokenRow
from .journal import Journal
from .ports import TokenStore
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class TokenCache:
    def __init__(self, ttl: float = 30.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, TokenRow]] = OrderedDict()

    def get(self, secret: str, *, stale: bool = False) -> TokenRow | None:
        """The token if it was found within ``ttl`` (any age with ``stale``)."""
        entry = self._entries.get(_key(secret))
        if entry is None or (not stale and time.monotonic() - entry[0] > self.ttl):
            return None
        return entry[1]

    def put(self, secret: str, token: TokenRow) -> None:
        key = _key(secret)
        self._entries[key] = (time.monotonic(), token)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, token_id: str) -> None:
        for key in [k for k, (_, t) in self._entries.items() if t.id == token_id]:
            del self._entries[key]


class Tokens:
    """API and worker tokens, read on the journal's database thread."""

    def __init__(
        self, store: TokenStore, journal: Journal, workers: Mapping[str, WorkerHandle], cache: TokenCache
    ) -> None:
        self.store = store
        self.journal = journal
        self.workers = workers  # the connected workers, disconnected when their token is revoked
        self.cache = cache

    async def create(
        self, name: str, *, scope: str, owner: str = "", provider: str = "static", group: str = ""
    ) -> tuple[TokenRow, str]:
        return await self.journal.run(
            lambda: self.store.create_token(name, scope=scope, owner=owner, provider=provider, group=group)
        )

    async def find(self, secret: str) -> TokenRow | None:
        """The token (revoked or not), from memory when it was read lately; while the
        database is unavailable, a token read before still counts."""
        token = self.cache.get(secret)
        if token is not None:
            return token
        try:
            token = await self.journal.run(self.store.find_token, secret)
        except Unavailable:
            token = self.cache.get(secret, stale=True)
            if token is None:
                raise
            return token
        if token is not None:
            self.cache.put(secret, token)
        return token

    async def revoke(self, token_id: str) -> bool:
        ok = await self.journal.run(self.store.revoke_token, token_id)
        self.cache.forget(token_id)
        for worker in list(self.workers.values()):
            if worker.token_id == token_id and worker.link is not None:
                log.warning("worker %s: its token was revoked; disconnecting it", worker.name)
                worker.link.close("token revoked")
        return ok

    async def of_scope(self, scope: str | None = None) -> list[TokenRow]:
        return await self.journal.run(self.store.list_tokens, scope)

"""Looking up API and worker tokens without a database read per request.

Every REST request and WebSocket carrying an orch token needs its token; reading it from
the database each time costs a round trip on the database thread and makes every request
fail while the database is unavailable. Found tokens are kept for ``ttl`` seconds (an
entry past it is read again, and used still if the database cannot be read then); a
revocation through the engine drops its entry at once. Unknown secrets are never kept.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from ..core.records import TokenRow


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

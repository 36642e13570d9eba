"""The provider interface, shaped so a Kubernetes provider fits: it is asked for capacity
for tasks nothing can place, and told to release idle workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from traitlets.config import LoggingConfigurable

from ..core.queue import PendingTask


@dataclass
class ProviderContext:
    """What a provider may use of the server: its address, its data directory, and a way
    to issue worker tokens (each worker gets its own, revocable)."""

    server_url: str
    data_dir: str
    issue_worker_token: Callable[
        [str, str], Awaitable[tuple[str, str]]
    ]  # (name, provider) -> (token id, secret)
    revoke_token: Callable[[str], Awaitable[bool]]


class Provider(LoggingConfigurable):
    """Base provider: starts nothing; workers connect with tokens issued by the admin."""

    name = "base"

    async def start(self, context: ProviderContext) -> None:
        self.context = context

    async def stop(self) -> None:
        """Stop what this provider started (called when the server stops)."""

    async def request_capacity(self, tasks: Sequence[PendingTask], reasons: dict[str, str]) -> None:
        """Tasks wait that no connected worker could ever run; start workers if able."""

    async def release_idle(self, worker_ids: Sequence[str]) -> None:
        """These workers have been idle past the provider's idle timeout."""

    def describe(self) -> dict[str, Any]:
        """What the provider knows beyond connected workers (e.g. cluster GPU capacity)."""
        return {"name": self.name}

"""The provider interface, shaped so a Kubernetes provider fits: it is asked for capacity
for tasks nothing can place, and told to release idle workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from traitlets.config import LoggingConfigurable

from ..core.queue import PendingTask


@dataclass
class ProviderContext:
    """What a provider may use of the server: its address, its data directory, a way to
    issue worker tokens (each worker gets its own, revocable), and the engine's hooks for
    providers that make workers on demand (see ``jupyter_orch.engine.provisioning``)."""

    server_url: str
    data_dir: str
    issue_worker_token: Callable[
        [str, str], Awaitable[tuple[str, str]]
    ]  # (name, provider) -> (token id, secret)
    revoke_token: Callable[[str], Awaitable[bool]]
    # (task ids, reason or None): pending tasks show why they wait for capacity
    set_pending_reason: Callable[[Iterable[str], str | None], None] | None = None
    # (task ids, error kind, error) -> the ids failed: tasks waiting to be placed fail
    fail_pending: Callable[[Iterable[str], str, str], list[str]] | None = None
    # (task ids) -> those still waiting in the queue
    pending_tasks: Callable[[Iterable[str]], list[PendingTask]] | None = None
    # (worker id) -> {"state", "idle_since", "running", "name"}, None if unknown or gone
    worker_status: Callable[[str], dict[str, Any] | None] | None = None
    # (worker id, undo=False) -> False if it holds tasks: no more tasks for it (it goes)
    retire_worker: Callable[..., bool] | None = None
    # (worker id, error kind, error) -> task ids: it is gone; its attempts end now
    worker_lost: Callable[[str, str, str], list[str]] | None = None


class Provider(LoggingConfigurable):
    """Base provider: starts nothing; workers connect with tokens issued by the admin."""

    name = "base"
    # it makes workers when tasks need them: the engine asks it about every task that no
    # connected worker could run, even while no worker has a free slot
    on_demand = False

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

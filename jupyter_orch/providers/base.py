"""The provider interface, shaped so a Kubernetes provider fits: it is asked for capacity
for tasks nothing can place, and told to release idle workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from traitlets.config import LoggingConfigurable

from ..core.queue import PendingTask


class IssueWorkerToken(Protocol):
    """``issue_worker_token(name, provider)`` -> (token id, secret): a new worker token.

    Without ``owner`` or ``group`` the token's workers are shared (the service's: they run
    anyone's tasks), as a personal server's, the local provider's and static workers are.
    With ``owner`` they are that user's: they run only that user's tasks; with ``group``,
    only the tasks of that group's members (team mode: one user's code never shares a
    worker with another's). The engine reads whose a worker is from its token
    (``jupyter_orch.engine.connections.whose_worker``), so it holds across restarts."""

    def __call__(
        self, name: str, provider: str, *, owner: str | None = None, group: str | None = None
    ) -> Awaitable[tuple[str, str]]: ...


@dataclass
class ProviderContext:
    """What a provider may use of the server: its address, its data directory, a way to
    issue worker tokens (each worker gets its own, revocable; shared, or a user's or a
    group's: see :class:`IssueWorkerToken`), and the engine's hooks for providers that make
    workers on demand."""

    server_url: str
    data_dir: str
    issue_worker_token: IssueWorkerToken  # (name, provider, owner=, group=) -> (token id, secret)
    revoke_token: Callable[[str], Awaitable[bool]]
    # (task ids, reason or None): pending tasks show why they wait for capacity
    set_pending_reason: Callable[[Iterable[str], str | None], None] | None = None
    # (task ids, error kind, error) -> the ids failed: tasks waiting to be placed fail
    fail_pending: Callable[[Iterable[str], str, str], list[str]] | None = None
    # (task ids) -> those still waiting in the queue (each with its owner and the owner's groups)
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

"""What the engine needs from the outside, as small typed interfaces: the store (split by
concern: tasks and attempts, workflow runs and their step cache, schedules, tokens and
workers), the blob store, the log and metric stores and the provider.
``jupyter_orch.store.SqlStore``, ``FileBlobStore``, ``FileLogStore``, ``FileMetricStore`` and the
providers in ``jupyter_orch.providers`` implement them; the engine imports none of those."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..core.metrics import Point
from ..core.queue import PendingTask
from ..core.records import (
    AttemptRow,
    AttemptSpan,
    Change,
    RunRow,
    SaveCacheEntry,
    ScheduleRow,
    SearchRow,
    TaskRow,
    TimelineSpan,
    TokenRow,
    UsageTotals,
    WorkerRow,
)

__all__ = [
    "Blobs",
    "Logs",
    "Metrics",
    "Provider",
    "RunStore",
    "RunsAndTasks",
    "ScheduleStore",
    "Store",
    "TaskStore",
    "TokenStore",
]


class TaskStore(Protocol):
    """Tasks and their attempts: every change goes through ``apply`` (one transaction)."""

    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None: ...
    def checkpoint(self) -> None: ...
    def load_active(self) -> list[TaskRow]: ...
    def next_seq(self) -> int: ...
    def max_task_id(self) -> str | None: ...
    def get_task(self, task_id: str) -> TaskRow | None: ...
    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]: ...
    def get_attempts(self, task_id: str) -> list[AttemptRow]: ...
    def not_started_counts(self, task_ids: Sequence[str]) -> dict[str, int]: ...
    def list_tasks(
        self,
        *,
        owner: str | None = None,
        states: Sequence[str] | None = None,
        search: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[TaskRow]: ...
    def count_by_state(self, owner: str | None = None) -> dict[str, int]: ...
    def usage_between(self, since: float, until: float) -> list[UsageTotals]: ...
    def attempt_spans(self, since: float, until: float) -> list[AttemptSpan]: ...
    def timeline(self, since: float, until: float, limit: int) -> list[TimelineSpan]: ...
    def get_blob(self, key: str) -> bytes: ...


class RunStore(Protocol):
    """Workflow runs (saved through ``TaskStore.apply`` as ``SaveRun``) and the step cache."""

    def get_run(self, run_id: str) -> RunRow | None: ...
    def list_runs(
        self,
        *,
        owner: str | None = None,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[RunRow]: ...
    def load_active_runs(self) -> list[RunRow]: ...
    def get_cache_entry(self, key: str) -> SaveCacheEntry | None: ...


class SearchStore(Protocol):
    """Hyperparameter searches (saved through ``TaskStore.apply`` as ``SaveSearch``)."""

    def get_search(self, search_id: str) -> SearchRow | None: ...
    def list_searches(
        self, *, owner: str | None = None, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[SearchRow]: ...
    def load_active_searches(self) -> list[SearchRow]: ...


class ScheduleStore(Protocol):
    """Cron schedules of workflows."""

    def create_schedule(
        self, name: str, cron: str, workflow: dict[str, Any], params: dict[str, Any], *, owner: str = ""
    ) -> ScheduleRow: ...
    def get_schedule(self, schedule_id: str) -> ScheduleRow | None: ...
    def list_schedules(self, owner: str | None = None) -> list[ScheduleRow]: ...
    def delete_schedule(self, schedule_id: str) -> bool: ...
    def mark_schedule_fired(self, schedule_id: str, fired_at: float, run_id: str | None) -> None: ...


class TokenStore(Protocol):
    """API and worker tokens (only hashes are stored), and the workers known."""

    def create_token(
        self, name: str, *, scope: str = ..., owner: str = ..., provider: str = ..., group: str = ...
    ) -> tuple[TokenRow, str]: ...
    def find_token(self, secret: str) -> TokenRow | None: ...
    def revoke_token(self, token_id: str) -> bool: ...
    def list_tokens(self, scope: str | None = None) -> list[TokenRow]: ...
    def list_workers(self) -> list[WorkerRow]: ...


class RunsAndTasks(TaskStore, RunStore, Protocol):
    """What workflow runs read: their rows and their steps' tasks."""


class SearchesAndTasks(TaskStore, SearchStore, Protocol):
    """What searches read: their rows and their trials' tasks."""


class Store(TaskStore, RunStore, SearchStore, ScheduleStore, TokenStore, Protocol):
    """The store as the engine sees it (``jupyter_orch.store.SqlStore`` implements it)."""


class Blobs(Protocol):
    """Payloads and results too large for the database (``jupyter_orch.store.BlobStore``)."""

    def put(self, key: str, data: bytes | memoryview) -> int: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class Logs(Protocol):
    """Task output lines, per attempt (``jupyter_orch.store.FileLogStore``)."""

    def append(self, task_id: str, attempt: int, lines: Sequence[tuple[float, str, str]]) -> int: ...
    def count(self, task_id: str, attempt: int) -> int: ...
    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]: ...


class Metrics(Protocol):
    """Metric points of task attempts, numbered per attempt from 0
    (``jupyter_orch.store.FileMetricStore``)."""

    def append(self, task_id: str, attempt: int, points: Sequence[Point]) -> int: ...
    def count(self, task_id: str, attempt: int) -> int: ...
    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[Point], int]: ...
    def attempts(self, task_id: str) -> list[int]: ...


class Provider(Protocol):
    """Where workers come from, as the engine calls it (``jupyter_orch.providers.Provider``);
    the provider calls the engine back through the ``ProviderContext`` the server gives it."""

    name: str
    # it makes workers when tasks need them: the engine tells it of every task no
    # connected worker could run, even while no worker has a free slot
    on_demand: bool

    def describe(self) -> dict[str, Any]: ...

    async def request_capacity(self, tasks: Sequence[PendingTask], reasons: dict[str, str]) -> None: ...
    async def release_idle(self, worker_ids: Sequence[str]) -> None: ...

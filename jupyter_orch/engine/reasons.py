"""Why pending tasks wait, in the provider's words, and failing those its capacity cannot
serve: a provider that makes workers on demand (Kubernetes pods) says that no node can take
a pod (the tasks stay pending with that reason, while it holds for their attempt) or that
its image cannot be pulled (the tasks fail)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from ..core.queue import PendingTask
from ..core.records import TaskRow
from ..core.states import TaskState, transition
from .state import EngineState

log = logging.getLogger("jupyter_orch.engine")


class ProviderReasons:
    def __init__(
        self,
        state: EngineState,
        *,
        publish_task: Callable[[TaskRow], None],
        end_task: Callable[[TaskRow], None],
    ) -> None:
        self.state = state
        self._publish_task = publish_task
        self._end_task = end_task  # store, retire and announce a task set terminal
        # task id -> (the attempt it was said of, the provider's reason): a newer attempt
        # (the task ran and came back) makes the entry stale
        self.entries: dict[str, tuple[int, str]] = {}

    def forget(self, task_id: str) -> None:
        self.entries.pop(task_id, None)

    def reason(self, task_id: str, reason: str) -> str:
        """The reason to show for an unplaceable task: the provider's, while it holds."""
        entry = self.entries.get(task_id)
        if entry is None:
            return reason
        row = self.state.tasks.get(task_id)
        if row is None or row.attempt != entry[0] or row.state != TaskState.PENDING:
            del self.entries[task_id]
            return reason
        return entry[1]

    def set_pending(self, task_ids: Iterable[str], reason: str | None) -> None:
        """Pending tasks wait for the provider's capacity: show why (None: forget it)."""
        for stale in [t for t in self.entries if t not in self.state.tasks]:
            del self.entries[stale]
        for task_id in task_ids:
            row = self.state.tasks.get(task_id)
            if row is None or row.state != TaskState.PENDING:
                continue
            if reason is None:
                if self.entries.pop(task_id, None) is not None and task_id in self.state.unplaceable:
                    row.reason = self.state.unplaceable[task_id]
                    self._publish_task(row)
                continue
            self.entries[task_id] = (row.attempt, reason)
            if row.reason != reason:
                row.reason = reason
                self._publish_task(row)

    def pending_tasks(self, task_ids: Iterable[str]) -> list[PendingTask]:
        """Those of ``task_ids`` still waiting in the queue to be placed."""
        return [t for t in (self.state.queue.get(i) for i in task_ids) if t is not None]

    def fail_pending(self, task_ids: Iterable[str], error_kind: str, error: str) -> list[str]:
        """Fail tasks still waiting to be placed (the capacity made for them cannot work);
        the ids it failed."""
        failed: list[str] = []
        for task_id in task_ids:
            row = self.state.tasks.get(task_id)
            if row is None or row.state != TaskState.PENDING or task_id not in self.state.queue:
                continue
            row.state = transition(row.state, TaskState.FAILED)
            row.error, row.error_kind, row.traceback = error, error_kind, None
            row.reason = None
            row.ended_at = time.time()
            self.entries.pop(task_id, None)
            self._end_task(row)
            failed.append(task_id)
        if failed:
            log.info("%d pending task(s) failed: %s", len(failed), error.splitlines()[0])
        return failed

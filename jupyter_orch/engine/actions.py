"""What users do to tasks: cancel and retry (reads are in :mod:`.reads`). Workflow runs
cancel and retry their steps through the same methods."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ..core import protocol
from ..core.errors import Conflict
from ..core.records import TaskRow
from ..core.states import RETRYABLE, TaskState
from .config import EngineConfig
from .journal import Journal
from .state import EngineState
from .transitions import Transitions


class TaskActions:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        config: EngineConfig,
        transitions: Transitions,
        *,
        get_row: Callable[[str, str | None], Awaitable[TaskRow]],
        kick: Callable[[], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.config = config
        self.transitions = transitions
        self._get_row = get_row  # the task, if ``owner`` may see it
        self._kick = kick

    async def cancel(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self._get_row(task_id, owner)
        if row.state.terminal:
            raise Conflict(f"task {task_id} already {row.state.value}; nothing to cancel")
        self.cancel_row(row, "cancelled by the user")
        await self.journal.flush()
        self._kick()
        return row

    def cancel_row(self, row: TaskRow, reason: str) -> None:
        worker = self.state.workers.get(row.worker_id or "") if row.state.active else None
        self.transitions.set_state(row, TaskState.CANCELLED)
        row.error_kind = "cancelled"
        row.error = reason
        row.ended_at = time.time()
        row.reason = None
        if worker is not None:
            worker.send(
                protocol.encode(
                    {
                        "type": "cancel",
                        "task_id": row.id,
                        "attempt": row.attempt,
                        "reason": reason,
                        "grace": self.config.cancel_grace,
                    }
                )
            )
        self.transitions.end(row)

    async def retry(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self._get_row(task_id, owner)
        if row.state not in RETRYABLE:
            raise Conflict(
                f"task {task_id} is {row.state.value}; only failed or cancelled tasks can be retried"
            )
        self.reset_for_retry(row)
        await self.journal.flush()
        self.transitions.enqueue_or_wait(row)
        self._kick()
        return row

    def reset_for_retry(self, row: TaskRow) -> None:
        """A failed, cancelled or upstream-failed task back to pending (not queued yet)."""
        self.transitions.set_state(row, TaskState.PENDING)
        row.error = row.error_kind = row.traceback = None
        row.ended_at = row.retry_at = None
        row.worker_id = None
        row.gpus = ()
        row.result_key = None
        row.result_size = 0
        self.state.drop_result(row.id)
        self.state.activate(row)
        self.transitions.update(row)

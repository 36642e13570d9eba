"""What users do to tasks: cancel and retry (reads are in :mod:`.reads`)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..core import protocol
from ..core.errors import Conflict
from ..core.records import TaskRow
from ..core.states import RETRYABLE, TaskState

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("jupyter_orch.engine")


class Queries:
    # ------------------------------------------------------------------ user actions
    async def cancel(self: Engine, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if row.state.terminal:
            raise Conflict(f"task {task_id} already {row.state.value}; nothing to cancel")
        self._cancel_row(row, "cancelled by the user")
        await self.journal.flush()
        self.kick()
        return row

    def _cancel_row(self: Engine, row: TaskRow, reason: str) -> None:
        worker = self.state.workers.get(row.worker_id or "") if row.state.active else None
        self._set_state(row, TaskState.CANCELLED)
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
        self._update(row)
        self._retire(row)
        self._after_terminal(row)

    async def retry(self: Engine, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if row.state not in RETRYABLE:
            raise Conflict(
                f"task {task_id} is {row.state.value}; only failed or cancelled tasks can be retried"
            )
        self._reset_for_retry(row)
        await self.journal.flush()
        self._enqueue_or_wait(row)
        self.kick()
        return row

    def _reset_for_retry(self: Engine, row: TaskRow) -> None:
        """A failed, cancelled or upstream-failed task back to pending (not queued yet)."""
        self.state.finished.pop(row.id, None)
        self._set_state(row, TaskState.PENDING)
        row.error = row.error_kind = row.traceback = None
        row.ended_at = row.retry_at = None
        row.worker_id = None
        row.gpus = ()
        row.result_key = None
        row.result_size = 0
        self.state.results.pop(row.id)
        self.state.tasks[row.id] = row
        self._update(row)

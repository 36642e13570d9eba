"""What users ask of the engine: cancel, retry, wait, results and reads."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import protocol
from ..core.errors import Conflict
from ..core.records import TaskRow
from ..core.states import RETRYABLE, TaskState
from .views import attempt_view, task_view

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

    def when_done(self: Engine, row: TaskRow) -> asyncio.Future[TaskRow]:
        """A future resolved (after the commit) when ``row`` reaches a terminal state."""
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        row = self.state.lookup(row.id) or row  # the live row, not a copy read earlier
        if self.ended(row):
            fut.set_result(row)
        else:
            self.state.add_waiter(row.id, fut)
        return fut

    def on_done(self: Engine, row: TaskRow, callback: Callable[[TaskRow], None]) -> None:
        """Call ``callback(row)`` when ``row`` reaches a terminal state: in the loop turn it
        is announced (no future, no turn more), or now if it has already."""
        row = self.state.lookup(row.id) or row
        if self.ended(row):
            callback(row)
        else:
            self.state.done_calls.setdefault(row.id, []).append(callback)

    async def wait(self: Engine, task_id: str, timeout: float | None, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if self.ended(row):
            return row
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        self.state.add_waiter(task_id, fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return self.state.lookup(task_id) or row
        finally:
            self.state.drop_waiter(task_id, fut)

    def cached_result(self: Engine, row: TaskRow) -> bytes | None:
        """The task's result if it is still in memory (most recent small results are)."""
        return self.state.results.get(row.id) if row.result_key is not None else None

    async def result_bytes(self: Engine, row: TaskRow) -> bytes:
        if row.result_key is None:
            raise Conflict(f"task {row.id} is {row.state.value} and has no result")
        data = self.state.results.get(row.id)
        if data is None:
            await self.journal.flush()  # a result too large to cache may not be on disk yet
            data = await self._read_blob(row.result_key)
        return data

    async def notebook_result(self: Engine, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """A notebook task's stored result, ``{"notebook", "outputs", "name"}`` (JSON, never a
        pickle); Conflict for another kind of task or one with no notebook stored yet."""
        row = await self.get_row(task_id, owner)
        if row.spec.kind != "notebook":
            raise Conflict(f"task {task_id} is a {row.spec.kind} task, not a notebook")
        if row.result_key is None:
            raise Conflict(f"task {task_id} is {row.state.value}: its notebook has not been stored yet")
        try:
            result = json.loads(bytes(await self.result_bytes(row)))
        except ValueError:
            raise Conflict(f"task {task_id} stored no readable notebook") from None
        result.setdefault("name", row.spec.metadata.get("notebook"))
        return dict(result)

    # ------------------------------------------------------------------ reads
    async def describe(self: Engine, task_id: str, owner: str | None = None) -> dict[str, Any]:
        row = await self.get_row(task_id, owner)
        view = task_view(row)
        await self.journal.flush()  # the outcome may be announced a commit ahead of the store
        attempts = await self.journal.run(self.store.get_attempts, task_id)
        view["attempts"] = [attempt_view(a) for a in attempts]
        return view

    async def list_tasks(self: Engine, **filters: Any) -> list[dict[str, Any]]:
        await self.journal.flush()  # what was announced is what the query sees
        rows = await self.journal.run(lambda: self.store.list_tasks(**filters))
        # the store may lag the engine by one commit: prefer the live rows
        return [task_view(self.state.lookup(r.id) or r) for r in rows]

    async def counts(self: Engine, owner: str | None = None) -> dict[str, int]:
        await self.journal.flush()
        return await self.journal.run(self.store.count_by_state, owner)

    async def read_logs(
        self, row: TaskRow, attempt: int | None, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int, int]:
        number = attempt or row.attempt
        if number < 1:
            return [], 0, 0
        lines, next_offset = await asyncio.get_running_loop().run_in_executor(
            None, self.logs.read, row.id, number, offset, limit
        )
        return lines, next_offset, number

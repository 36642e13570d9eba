"""Recovery after a server restart: pending tasks resume, tasks that were scheduled or
running wait for their worker to reconnect (re-attached) for a grace period, after which
they are retried or failed like any lost attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..core.records import TaskRow
from ..core.states import TaskState
from .config import EngineConfig
from .journal import Journal
from .ports import Store
from .state import EngineState
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


class Recovery:
    """Loads the unfinished tasks at start; what to do with each is the engine's to say
    (queue it, requeue it later, give its worker a grace period)."""

    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        store: Store,
        config: EngineConfig,
        *,
        enqueue_or_wait: Callable[[TaskRow, dict[str, TaskRow]], None],
        requeue: Callable[[str], None],
        start_grace: Callable[[str, float], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.config = config
        self._enqueue_or_wait = enqueue_or_wait
        self._requeue = requeue
        self._start_grace = start_grace

    async def restore_usage(self, now: float) -> None:
        """Fair share after a restart: recent use comes back from the attempts stored, five
        half-lives back (older use counts for less than 3%)."""
        shares = self.config.shares
        if shares is None:
            return
        spans = await self.journal.run(self.store.attempt_spans, now - 5 * shares.half_life, now)
        self.state.usage.restore(spans, now)

    async def recover(self) -> None:
        rows = await self.journal.run(self.store.load_active)
        if not rows:
            return
        for row in rows:
            self.state.activate(row)
        # attempts that never started use up no retry (kept in memory while running)
        retried = [r.id for r in rows if r.attempt > 1]
        if retried:
            self.state.free_attempts.update(await self.journal.run(self.store.not_started_counts, retried))
        outside = sorted({d for r in rows for d in r.spec.depends if d not in self.state.tasks})
        known = await self.journal.run(self.store.get_tasks, outside) if outside else {}
        workers = {w.id: w for w in await self.journal.run(self.store.list_workers)}
        now = time.time()
        waiting_on: set[str] = set()
        for row in rows:
            if row.state == TaskState.PENDING:
                if row.retry_at and row.retry_at > now:
                    timer = asyncio.get_running_loop().call_later(row.retry_at - now, self._requeue, row.id)
                    self.state.set_timer(row.id, timer)
                else:
                    self._enqueue_or_wait(row, known)
                continue
            worker_id = row.worker_id or ""
            handle = self.state.workers.get(worker_id)
            if handle is None:
                stored = workers.get(worker_id)
                handle = WorkerHandle(
                    worker_id,
                    stored.name if stored else worker_id,
                    stored.provider if stored else "static",
                    stored.token_id if stored else None,
                    None,
                    dict(stored.info) if stored else {},
                    state="disconnected",
                    disconnected_at=now,
                )
                self.state.add_worker(handle)
            handle.take(row)
            waiting_on.add(worker_id)
            attempts = await self.journal.run(self.store.get_attempts, row.id)
            if attempts and attempts[-1].number == row.attempt:
                self.state.attempts[row.id] = attempts[-1]
        for worker_id in waiting_on:
            self._start_grace(worker_id, self.config.worker_grace)
        log.info(
            "recovered %d unfinished task(s); %d worker(s) have %g s to reconnect",
            len(rows),
            len(waiting_on),
            self.config.worker_grace,
        )

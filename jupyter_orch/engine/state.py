"""The engine's shared in-memory state, in one object every engine part is given.

What the engine knows of tasks between their submit and a while after their end: the
active rows, the recent finished ones, the queue and dependency tracker, each active
task's current attempt, the result and payload caches, the waiters of outcomes, retry
timers, and the workers. No I/O here: the parts that journal, publish and talk to workers
change this state through its named methods (or, for the collections a single part owns,
directly), on the server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..core.fairshare import DEFAULT_HALF_LIFE, Usage
from ..core.protocol import Buffer
from ..core.queue import FairQueue, PendingTask
from ..core.records import AttemptRow, TaskRow
from ..core.states import AttemptState
from .caches import BytesLRU
from .config import EngineConfig
from .deps import DependencyTracker
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


class EngineState:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.tasks: dict[str, TaskRow] = {}  # every non-terminal task
        self.finished: OrderedDict[str, TaskRow] = OrderedDict()  # recent terminal tasks
        # submitted, their insert not committed yet -> their view when accepted (None: no watcher then)
        self.unstored: dict[str, dict[str, Any] | None] = {}
        self.unstorable: set[str] = set()  # tasks a change of which the database refused
        self.unannounced: set[str] = set()  # ended, announced once their result file is stored
        self.queue = FairQueue()
        self.deps = DependencyTracker()
        # results of recent tasks (at most 4x the finished rows kept), payloads of active ones
        cached = 4 * config.finished_cache
        self.payloads = BytesLRU(config.result_cache_bytes, max_items=cached)
        self.results = BytesLRU(config.result_cache_bytes, max_items=cached)
        # waiters of outcomes: futures, and callbacks called in the loop turn of the news
        self.done: dict[str, list[asyncio.Future[TaskRow]]] = {}
        self.done_calls: dict[str, list[Callable[[TaskRow], None]]] = {}
        self.seq = 0  # the submit order of the last task accepted
        self.max_id = ""  # the largest task id stored: a larger one cannot be in the store
        self.timers: dict[str, asyncio.TimerHandle] = {}  # retries waiting for their delay
        self.attempts: dict[str, AttemptRow] = {}  # current attempt of each active task
        self.free_attempts: dict[str, int] = {}  # attempts that never started (not retries)
        # tasks asked to stop for a preemption -> (the task they make room for or "", why)
        self.preempting: dict[str, tuple[str, str]] = {}
        self.unplaceable: dict[str, str] = {}  # task -> why no worker can take it
        self.workers: dict[str, WorkerHandle] = {}  # connected, or waited for after a restart
        self.worker_generation = 0  # counts changes of the worker set (see worker_set_changed)
        # fair share: each user's groups (as their requests last said) and recent use
        self.user_groups: dict[str, frozenset[str]] = {}
        self.usage = Usage(config.shares.half_life if config.shares else DEFAULT_HALF_LIFE)
        self.counters = {
            "submitted": 0,
            "finished": 0,
            "scheduled": 0,
            "file_handoffs": 0,
            "client_handoffs": 0,
            "preemptions": 0,
        }

    # ------------------------------------------------------------------ reads
    def lookup(self, task_id: str) -> TaskRow | None:
        """The live row of an active or recently finished task, or None."""
        return self.tasks.get(task_id) or self.finished.get(task_id)

    def ended(self, row: TaskRow) -> bool:
        """Terminal, and announced: a waiter may have it."""
        return row.state.terminal and row.id not in self.unannounced

    def backlogged(self) -> bool:
        """More tasks waiting than the workers hold: a short wait before a commit costs no
        one anything (workers have work queued) and saves commits."""
        waiting = len(self.queue)
        if waiting <= 2:
            return False
        slots = sum(w.slots for w in self.workers.values() if w.state == "connected")
        return waiting > 2 * slots

    def pending_entry(self, row: TaskRow) -> PendingTask:
        spec = row.spec
        groups = self.user_groups.get(spec.owner, frozenset())
        return PendingTask(spec.id, spec.owner, spec.priority, row.seq, spec.resources, spec.image, groups)

    def groups_of(self, owner: str) -> frozenset[str]:
        return self.user_groups.get(owner, frozenset())

    # ------------------------------------------------------------------ changes
    def attempt_of(self, row: TaskRow) -> AttemptRow:
        """The record of ``row``'s current attempt, kept in memory while the task is active."""
        attempt = self.attempts.get(row.id)
        if attempt is None or attempt.number != row.attempt:
            attempt = AttemptRow(row.id, row.attempt, AttemptState.SCHEDULED, row.worker_id, row.gpus)
            self.attempts[row.id] = attempt
        return attempt

    def next_seq(self) -> int:
        """The submit order of a task accepted now."""
        self.seq += 1
        return self.seq

    def stored_id(self, task_id: str) -> None:
        """A task with this id is (being) stored: ids up to the largest may be in the store."""
        if task_id > self.max_id:
            self.max_id = task_id

    def know_groups(self, owner: str, groups: frozenset[str]) -> None:
        """``owner``'s groups, as their latest request said (for group quotas and weights)."""
        self.user_groups[owner] = groups

    def used(self, row: TaskRow, now: float) -> None:
        """``row``'s attempt ended: its run time counts as its owner's recent use."""
        started = self.attempt_of(row).started_at
        if started is None:  # it never started
            return
        seconds = max(0.0, now - started)
        self.usage.add(row.owner, seconds * len(row.gpus), seconds * row.spec.resources.cpus, now)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def activate(self, row: TaskRow) -> None:
        """``row`` is active: accepted, loaded after a restart, or back for a retry."""
        self.finished.pop(row.id, None)
        self.tasks[row.id] = row

    def enqueue(self, row: TaskRow) -> None:
        """A pending task whose dependencies are met: the scheduler may place it."""
        self.queue.push(self.pending_entry(row))

    def placed(self, attempt: AttemptRow) -> None:
        """The task of ``attempt`` was placed on a worker: out of the queue, this its attempt."""
        self.queue.remove(attempt.task_id)
        self.unplaceable.pop(attempt.task_id, None)
        self.attempts[attempt.task_id] = attempt

    def not_started(self, task_id: str) -> None:
        """An attempt of the task ended before it started: it uses up no retry."""
        self.free_attempts[task_id] = self.free_attempts.get(task_id, 0) + 1

    def keep_result(self, task_id: str, data: Buffer) -> None:
        self.results.put(task_id, data)

    def drop_result(self, task_id: str) -> None:
        self.results.pop(task_id)

    def set_timer(self, task_id: str, timer: asyncio.TimerHandle) -> None:
        """The task waits for ``timer`` (a retry's delay)."""
        self.cancel_timer(task_id)
        self.timers[task_id] = timer

    def timer_fired(self, task_id: str) -> None:
        self.timers.pop(task_id, None)

    def add_worker(self, handle: WorkerHandle) -> None:
        self.workers[handle.id] = handle
        self.worker_set_changed()

    def remove_worker(self, worker_id: str) -> None:
        del self.workers[worker_id]
        self.worker_set_changed()

    def worker_set_changed(self) -> None:
        """A worker came, came back or went: tasks no worker could take are explained again."""
        self.worker_generation += 1

    def add_waiter(self, task_id: str, fut: asyncio.Future[TaskRow]) -> None:
        self.done.setdefault(task_id, []).append(fut)

    def add_done_call(self, task_id: str, callback: Callable[[TaskRow], None]) -> None:
        self.done_calls.setdefault(task_id, []).append(callback)

    def cancel_waiters(self, task_id: str) -> None:
        """The task will never end (it was never stored): its waiters are cancelled."""
        for future in self.done.pop(task_id, ()):
            future.cancel()
        self.done_calls.pop(task_id, None)

    def drop_waiter(self, task_id: str, fut: asyncio.Future[TaskRow]) -> None:
        waiters = self.done.get(task_id)
        if waiters and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                self.done.pop(task_id, None)

    def announce_done(self, row: TaskRow) -> None:
        """Wake the waiters of a finished task (callbacks at once, futures as usual)."""
        for fut in self.done.pop(row.id, ()):
            if not fut.done():
                fut.set_result(row)
        for callback in self.done_calls.pop(row.id, ()):
            try:
                callback(row)
            except Exception:
                log.exception("a done callback of task %s failed", row.id)

    def cancel_timer(self, task_id: str) -> None:
        timer = self.timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()

    def retire(self, row: TaskRow) -> None:
        """``row`` reached a terminal state: out of the active set into the recent ones."""
        self.tasks.pop(row.id, None)
        self.attempts.pop(row.id, None)
        self.free_attempts.pop(row.id, None)
        self.queue.remove(row.id)
        self.unplaceable.pop(row.id, None)
        self.payloads.pop(row.id)
        self.deps.forget(row.id)
        self.cancel_timer(row.id)
        self.finished[row.id] = row
        while len(self.finished) > self.config.finished_cache:
            self.finished.popitem(last=False)
        self.counters["finished"] += 1

    def forget_active(self, task_id: str) -> TaskRow | None:
        """Drop what is kept about an active task that never was (its insert refused); its
        row, if it was active."""
        self.unstored.pop(task_id, None)
        row = self.tasks.pop(task_id, None)
        if row is None:
            return None
        self.queue.remove(task_id)
        self.unplaceable.pop(task_id, None)
        self.attempts.pop(task_id, None)
        self.free_attempts.pop(task_id, None)
        self.payloads.pop(task_id)
        self.cancel_timer(task_id)
        return row

"""The engine proper: accepting, scheduling, dispatching and finishing tasks.

All state transitions happen here, on the server's event loop, in memory first; every
change is journaled (group commit) and published on the event bus. A submit returns only
once its task is committed. Worker-side messages are handled in :mod:`.sessions`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import protocol
from ..core.errors import Conflict, Forbidden, NotFound, SpecError, TooLarge
from ..core.ids import id_time
from ..core.queue import FairQueue, PendingTask
from ..core.records import (
    AttemptRow,
    InsertAttempt,
    InsertBlob,
    InsertTask,
    TaskRow,
    TokenRow,
    UpdateAttempt,
    UpdateTask,
)
from ..core.scheduler import Assignment, schedule
from ..core.spec import TaskSpec
from ..core.states import RETRYABLE, AttemptState, TaskState, transition
from .deps import DependencyTracker
from .events import EventBus
from .journal import Journal
from .recovery import Recovery
from .sessions import WorkerSessions
from .views import attempt_view, task_view

log = logging.getLogger("jupyter_orch.engine")

# error kinds that the same code would hit again: never retried automatically
NOT_RETRYABLE = frozenset({"bad_payload", "environment", "cancelled", "dependency"})


class Store(Protocol):
    """The store as the engine sees it (``jupyter_orch.store.SqlStore`` implements it)."""

    def apply(self, changes: Sequence[Any]) -> None: ...
    def load_active(self) -> list[TaskRow]: ...
    def next_seq(self) -> int: ...
    def get_task(self, task_id: str) -> TaskRow | None: ...
    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]: ...
    def get_attempts(self, task_id: str) -> list[AttemptRow]: ...
    def list_tasks(self, **filters: Any) -> list[TaskRow]: ...
    def count_by_state(self, owner: str | None = None) -> dict[str, int]: ...
    def create_token(
        self, name: str, *, scope: str = ..., owner: str = ..., provider: str = ...
    ) -> tuple[TokenRow, str]: ...
    def find_token(self, secret: str) -> TokenRow | None: ...
    def revoke_token(self, token_id: str) -> bool: ...
    def list_tokens(self, scope: str | None = None) -> list[TokenRow]: ...
    def get_blob(self, key: str) -> bytes: ...


class Blobs(Protocol):
    def put(self, key: str, data: bytes) -> int: ...
    def get(self, key: str) -> bytes: ...


class Logs(Protocol):
    def append(self, task_id: str, attempt: int, lines: Sequence[tuple[float, str, str]]) -> int: ...
    def count(self, task_id: str, attempt: int) -> int: ...
    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]: ...


@dataclass
class EngineConfig:
    policy: str = "binpack"
    max_payload_bytes: int = 512 * 2**20
    worker_grace: float = 60.0  # seconds a lost worker has to come back
    heartbeat_interval: float = 5.0
    cancel_grace: float = 5.0
    result_cache_bytes: int = 256 * 2**20
    finished_cache: int = 5_000  # finished task rows kept in memory for fast reads
    worker_idle_timeout: float = 600.0  # the provider hears of workers idle this long
    prefetch: int = 2  # short GPU-less tasks sent ahead per slot (0: never)
    inline_blob_limit: int = 64 * 2**10  # payloads/results up to this size live in the database
    file_handoff_min: int = 2**20  # local workers read payloads this large from the blob file
    prefetch_below: float = 0.1  # "short": a worker's average task run time under this (s)
    server_version: str = ""


def blob_key(kind: str, task_id: str) -> str:
    """Where a task's payload/result/error lives in the blob store (sharded folders)."""
    return f"{kind}/{task_id[-2:]}/{task_id}"


class _BytesLRU:
    """Recent payloads/results in memory, bounded by total size."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.capacity:
            return
        self.pop(key)
        self._items[key] = data
        self.size += len(data)
        while self.size > self.capacity:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)

    def pop(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)


class Engine(WorkerSessions, Recovery):
    def __init__(self, store: Store, blobs: Blobs, logs: Logs, config: EngineConfig | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.logs = logs
        self.config = config or EngineConfig()
        self.bus = EventBus()
        self.journal = Journal(store, blobs)
        self.tasks: dict[str, TaskRow] = {}  # every non-terminal task
        self._finished: OrderedDict[str, TaskRow] = OrderedDict()  # recent terminal tasks
        self.queue = FairQueue()
        self.deps = DependencyTracker()
        self._payloads = _BytesLRU(self.config.result_cache_bytes)
        self._results = _BytesLRU(self.config.result_cache_bytes)
        self._done: dict[str, list[asyncio.Future[TaskRow]]] = {}
        self._seq = 0
        self._kick_pending = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._dispatch_queue: list[tuple[Any, TaskRow, int]] = []
        self._attempts: dict[str, AttemptRow] = {}  # current attempt of each active task
        self._ids_since_start: set[str] = set()
        self._free_attempts: dict[str, int] = {}  # attempts that never started (not retries)
        self._fresh_after = time.time()
        self.unplaceable: dict[str, str] = {}
        self.provider: Any = None
        self.counters = {"submitted": 0, "finished": 0, "scheduled": 0, "file_handoffs": 0}
        self.started_at = time.time()
        self.hostname = socket.gethostname()
        WorkerSessions.__init__(self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._seq = await self.journal.run(self.store.next_seq)
        await self.recover()
        self.kick()
        self._idle_watch = asyncio.ensure_future(self._watch_idle())

    async def _watch_idle(self) -> None:
        """Tell the provider about workers idle past ``worker_idle_timeout`` (it may release
        them: a Kubernetes pod is deleted; local and static workers stay)."""
        timeout = self.config.worker_idle_timeout
        while True:
            await asyncio.sleep(min(5.0, max(timeout / 4, 0.05)))
            now = time.time()
            idle = [
                w
                for w in self.workers.values()
                if w.state == "connected"
                and not w.released
                and w.idle_since is not None
                and now - w.idle_since >= timeout
            ]
            if idle and self.provider is not None:
                for w in idle:
                    w.released = True
                try:
                    await self.provider.release_idle([w.id for w in idle])
                except Exception:  # a provider failure must not stop the engine
                    log.exception("the provider failed to release idle workers")

    async def stop(self) -> None:
        watch = getattr(self, "_idle_watch", None)
        if watch is not None:
            watch.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.stop_sessions()
        await self.journal.close()

    # ------------------------------------------------------------------ helpers
    def _touch(self, row: TaskRow) -> None:
        row.updated_at = time.time()

    def _publish_task(self, row: TaskRow) -> None:
        if self.bus.subscriber_count:  # a view costs more than the rest of a state change
            self.bus.publish({"type": "task", "task": task_view(row)})

    def _update(self, row: TaskRow) -> None:
        self._touch(row)
        self.journal.add(UpdateTask(dataclasses.replace(row)))
        self._publish_task(row)

    def _set_state(self, row: TaskRow, state: TaskState) -> None:
        row.state = transition(row.state, state)

    def _pending_entry(self, row: TaskRow) -> PendingTask:
        spec = row.spec
        return PendingTask(spec.id, spec.owner, spec.priority, row.seq, spec.resources, spec.image)

    def _lookup_memory(self, task_id: str) -> TaskRow | None:
        return self.tasks.get(task_id) or self._finished.get(task_id)

    async def _lookup(self, task_id: str) -> TaskRow | None:
        row = self._lookup_memory(task_id)
        if row is None:
            row = await self.journal.run(self.store.get_task, task_id)
        return row

    async def get_row(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self._lookup(task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        if owner is not None and row.owner != owner:
            raise Forbidden(f"task {task_id} belongs to another user")
        return row

    # ------------------------------------------------------------------ blobs
    def _blob_key(self, kind: str, task_id: str, size: int) -> str:
        """Small blobs go into the database (``db:`` keys), larger ones to the blob store."""
        key = blob_key(kind, task_id)
        return "db:" + key if size <= self.config.inline_blob_limit else key

    def _put_blob(self, key: str, data: bytes, task_id: str, kind: str) -> None:
        if key.startswith("db:"):
            self.journal.add(InsertBlob(key, len(data), task_id, kind, data))
        else:
            self.journal.put_blob(key, data)

    async def _read_blob(self, key: str) -> bytes:
        if key.startswith("db:"):
            return await self.journal.run(self.store.get_blob, key)
        return await self.journal.run(self.blobs.get, key)

    def _attempt_of(self, row: TaskRow) -> AttemptRow:
        """The record of ``row``'s current attempt, kept in memory while the task is active."""
        attempt = self._attempts.get(row.id)
        if attempt is None or attempt.number != row.attempt:
            attempt = AttemptRow(row.id, row.attempt, AttemptState.SCHEDULED, row.worker_id, row.gpus)
            self._attempts[row.id] = attempt
        return attempt

    def _save_attempt(self, row: TaskRow, **changes: Any) -> None:
        attempt = self._attempt_of(row)
        for key, value in changes.items():
            setattr(attempt, key, value)
        self.journal.add(UpdateAttempt(dataclasses.replace(attempt)))

    def _retire(self, row: TaskRow) -> None:
        """A task reached a terminal state: move it out of the active set."""
        self.tasks.pop(row.id, None)
        self._attempts.pop(row.id, None)
        self._free_attempts.pop(row.id, None)
        self.queue.remove(row.id)
        self.unplaceable.pop(row.id, None)
        self._payloads.pop(row.id)
        self.deps.forget(row.id)
        timer = self._timers.pop(row.id, None)
        if timer:
            timer.cancel()
        self._finished[row.id] = row
        while len(self._finished) > self.config.finished_cache:
            self._finished.popitem(last=False)
        self.counters["finished"] += 1

    def _announce_done(self, rows: list[TaskRow]) -> None:
        """Wake the waiters of finished tasks."""
        for row in rows:
            for fut in self._done.pop(row.id, ()):
                if not fut.done():
                    fut.set_result(row)

    # ------------------------------------------------------------------ submit
    async def submit(self, specs: Sequence[TaskSpec], payloads: dict[str, bytes]) -> list[TaskRow]:
        """Accept tasks; returns once they are committed. Idempotent by task id."""
        batch_ids = {s.id for s in specs}
        known: dict[str, TaskRow] = {}
        missing = [s.id for s in specs if self._lookup_memory(s.id) is None and self._maybe_stored(s.id)]
        dep_ids = {d for s in specs for d in s.depends if d not in batch_ids}
        missing += [d for d in dep_ids if self._lookup_memory(d) is None]
        if missing:
            known = await self.journal.run(self.store.get_tasks, missing)
        rows: list[TaskRow] = []
        fresh: list[TaskRow] = []
        now = time.time()
        for spec in specs:
            existing = self._lookup_memory(spec.id) or known.get(spec.id)
            if existing is not None:
                if existing.owner != spec.owner or existing.spec.kind != spec.kind:
                    raise Conflict(f"task id {spec.id} is already used by another task", field="id")
                rows.append(existing)  # a repeated submit: same answer, nothing new
                continue
            payload = payloads.get(spec.id)
            if spec.needs_payload and payload is None:
                raise SpecError(f"a {spec.kind} task needs a payload", field="payload")
            if payload is not None and len(payload) > self.config.max_payload_bytes:
                raise TooLarge(
                    f"payload of {len(payload)} bytes is over the limit of {self.config.max_payload_bytes}",
                    field="payload",
                )
            for dep in spec.depends:
                if dep == spec.id:
                    raise SpecError("a task cannot depend on itself", field="depends")
                if dep not in batch_ids and self._lookup_memory(dep) is None and dep not in known:
                    raise SpecError(f"depends names unknown task {dep}", field="depends")
            self._seq += 1
            row = TaskRow(spec=spec, seq=self._seq, created_at=now, updated_at=now)
            if payload is not None:
                row.payload_key = self._blob_key("payloads", spec.id, len(payload))
                row.payload_size = len(payload)
            rows.append(row)
            fresh.append(row)
        for row in fresh:
            if row.payload_key:
                payload = payloads[row.id]
                self._put_blob(row.payload_key, payload, row.id, "payload")
                self._payloads.put(row.id, payload)
            self.tasks[row.id] = row
            self._ids_since_start.add(row.id)
            if len(self._ids_since_start) > 1_000_000:  # bounded: older ids are looked up again
                self._ids_since_start.clear()
                self._fresh_after = time.time()
            self.journal.add(InsertTask(dataclasses.replace(row)))
        for row in fresh:
            self._publish_task(row)
            self._enqueue_or_wait(row, known)
        # scheduling now puts the new tasks' assignments in the same commit as their insert
        self._schedule_now()
        try:
            await self.journal.flush()
        except Exception:
            for row in fresh:  # not stored: forget them, the caller gets the error
                self.tasks.pop(row.id, None)
                self.queue.remove(row.id)
                self.deps.forget(row.id)
            raise
        self.counters["submitted"] += len(fresh)
        return rows

    def _maybe_stored(self, task_id: str) -> bool:
        """Could a task with this (client-chosen) id be in the store without being in memory?

        An id minted after this engine started (with 10 s of slack for clocks) and never
        submitted here cannot: its store lookup is skipped, a round trip saved per submit."""
        if task_id in self._ids_since_start:
            return True
        minted = id_time(task_id)
        return not (self._fresh_after + 10 < minted <= time.time() + 10)

    def _dep_state(self, dep_id: str, known: dict[str, TaskRow]) -> TaskRow | None:
        return self._lookup_memory(dep_id) or known.get(dep_id)

    def _enqueue_or_wait(self, row: TaskRow, known: dict[str, TaskRow] | None = None) -> None:
        """A pending task: into the queue if its dependencies are met, else wait for them."""
        unmet: set[str] = set()
        for dep_id in row.spec.depends:
            dep = self._dep_state(dep_id, known or {})
            if dep is None or dep.state == TaskState.SUCCEEDED:
                continue
            if dep.state.terminal:
                self._fail_upstream(row, dep)
                return
            unmet.add(dep_id)
        if unmet:
            self.deps.wait(row.id, unmet)
            row.reason = f"waiting for {len(unmet)} dependenc{'y' if len(unmet) == 1 else 'ies'}"
            return
        self.queue.push(self._pending_entry(row))

    def _fail_upstream(self, row: TaskRow, dep: TaskRow) -> None:
        if row.state != TaskState.PENDING:
            return
        self._set_state(row, TaskState.UPSTREAM_FAILED)
        row.error_kind = "dependency"
        row.error = f"dependency {dep.spec.display_name} ({dep.id}) {dep.state.value}" + (
            f": {dep.error}" if dep.error else ""
        )
        row.reason = None
        row.ended_at = time.time()
        self._update(row)
        self._retire(row)
        self._after_terminal(row)

    def _after_terminal(self, row: TaskRow) -> None:
        """Propagate to dependants, and wake waiters once the change is committed."""
        if row.state == TaskState.SUCCEEDED:
            for task_id in self.deps.succeeded(row.id):
                dependant = self.tasks.get(task_id)
                if dependant is not None and dependant.state == TaskState.PENDING:
                    dependant.reason = None
                    self.queue.push(self._pending_entry(dependant))
        else:
            for task_id in self.deps.failed(row.id):
                dependant = self.tasks.get(task_id)
                if dependant is not None:
                    self._fail_upstream(dependant, row)
        # Waiters learn the outcome now, before its commit: a result a worker reported stays
        # with that worker until the commit is acknowledged, so a crash in between cannot
        # lose it (the worker sends it again), and the caller saves a commit of latency.
        self._announce_done([row])

    # ------------------------------------------------------------------ scheduling
    def kick(self) -> None:
        """Run the scheduler soon (once per loop iteration, however many changes)."""
        if not self._kick_pending:
            self._kick_pending = True
            asyncio.get_running_loop().call_soon(self._schedule_now)

    def _schedule_now(self) -> None:
        self._kick_pending = False
        if not self.queue:
            return
        cfg = self.config
        capacities = [
            w.capacity(cfg.prefetch, cfg.prefetch_below)
            for w in self.workers.values()
            if w.state == "connected"
        ]
        if not any(c.slots_free > 0 for c in capacities) and not self._needs_unplaceable_check(capacities):
            return
        result = schedule(self.queue, capacities, self.config.policy)
        for assignment in result.assignments:
            self._assign(assignment)
        newly_unplaceable = {}
        for task_id, reason in result.unplaceable.items():
            row = self.tasks.get(task_id)
            if row is not None and row.reason != reason:
                row.reason = reason
                self._publish_task(row)
                newly_unplaceable[task_id] = reason
            self.unplaceable[task_id] = reason
        for task_id in result.waiting:
            self.unplaceable.pop(task_id, None)
        if newly_unplaceable and self.provider is not None:
            tasks = [t for t in (self.queue.get(i) for i in newly_unplaceable) if t is not None]
            asyncio.ensure_future(self.provider.request_capacity(tasks, newly_unplaceable))

    def _needs_unplaceable_check(self, capacities: list[Any]) -> bool:
        # with no free slot anywhere, still explain tasks that no worker could ever run,
        # but only once per change of the worker set
        sig = tuple(sorted(c.id for c in capacities))
        if sig != getattr(self, "_unplaceable_sig", None):
            self._unplaceable_sig = sig
            return True
        return False

    def _assign(self, a: Assignment) -> None:
        row = self.tasks.get(a.task_id)
        worker = self.workers.get(a.worker_id)
        if row is None or worker is None:
            return
        self.queue.remove(row.id)
        self.unplaceable.pop(row.id, None)
        self._set_state(row, TaskState.SCHEDULED)
        row.attempt += 1
        row.worker_id = worker.id
        row.gpus = a.gpus
        row.reason = None
        row.retry_at = None
        now = time.time()
        attempt = AttemptRow(row.id, row.attempt, AttemptState.SCHEDULED, worker.id, a.gpus, scheduled_at=now)
        self._attempts[row.id] = attempt
        self.journal.add(InsertAttempt(dataclasses.replace(attempt)))
        self._update(row)
        worker.take(row, queued=a.queued)
        self.counters["scheduled"] += 1
        # the assignment is made durable before the worker hears of it: after a crash
        # the database knows every task a worker may be running
        self._dispatch_queue.append((worker, row, row.attempt))
        if len(self._dispatch_queue) == 1:
            asyncio.ensure_future(self._dispatch_after_commit())

    async def _dispatch_after_commit(self) -> None:
        try:
            await self.journal.flush()
        except Exception:
            return
        batch, self._dispatch_queue = self._dispatch_queue, []
        for worker, row, attempt in batch:
            if row.attempt != attempt or row.state != TaskState.SCHEDULED:
                continue  # cancelled meanwhile
            blobs = self._assignment_blobs_cached(row)
            if blobs is not None:
                self._send_assign(worker, row, blobs)
            else:
                asyncio.ensure_future(self._load_and_send(worker, row, attempt))

    def _assignment_blobs_cached(self, row: TaskRow) -> list[tuple[str, bytes]] | None:
        blobs: list[tuple[str, bytes]] = []
        if row.payload_key:
            payload = self._payloads.get(row.id)
            if payload is None:
                return None
            blobs.append(("payload", payload))
        for dep in row.spec.depends:
            data = self._results.get(dep)
            if data is None:
                return None
            blobs.append((f"dep:{dep}", data))
        return blobs

    async def _load_and_send(self, worker: Any, row: TaskRow, attempt: int) -> None:
        try:
            blobs: list[tuple[str, bytes]] = []
            if row.payload_key:
                blobs.append(("payload", await self._read_blob(row.payload_key)))
            for dep_id in row.spec.depends:
                dep = await self._lookup(dep_id)
                if dep is None or dep.result_key is None:
                    raise KeyError(f"result of dependency {dep_id}")
                data = self._results.get(dep_id) or await self._read_blob(dep.result_key)
                blobs.append((f"dep:{dep_id}", data))
        except KeyError as exc:
            if row.attempt == attempt and row.state == TaskState.SCHEDULED:
                worker.release(row.id)
                self._finish_attempt(
                    row, ok=False, error=f"stored data is missing: {exc}", error_kind="bad_payload"
                )
            return
        if row.attempt == attempt and row.state == TaskState.SCHEDULED:
            self._send_assign(worker, row, blobs)

    def _send_assign(self, worker: Any, row: TaskRow, blobs: list[tuple[str, bytes]]) -> None:
        spec = row.spec
        header = {
            "type": "assign",
            "task_id": spec.id,
            "attempt": row.attempt,
            "kind": spec.kind,
            "name": spec.display_name,
            "owner": spec.owner,
            "command": spec.command,
            "env": dict(spec.env),
            "timeout": spec.timeout,
            "gpus": list(row.gpus),
            "client_env": spec.metadata.get("client_env"),
        }
        path = self._shared_payload_path(worker, row)
        if path is not None:
            # a worker on this machine reads a large payload from the blob store's file
            # itself: megabytes do not cross the WebSocket twice
            header["payload_file"] = path
            blobs = [(name, data) for name, data in blobs if name != "payload"]
            self.counters["file_handoffs"] += 1
        worker.send(protocol.encode(header, blobs or [("none", b"")]))

    def _shared_payload_path(self, worker: Any, row: TaskRow) -> str | None:
        key = row.payload_key
        if (
            key is None
            or key.startswith("db:")
            or row.payload_size < self.config.file_handoff_min
            or worker.provider != "local"
            or worker.info.get("hostname") != self.hostname
            or not hasattr(self.blobs, "path")
        ):
            return None
        return str(self.blobs.path(key))

    # ------------------------------------------------------------------ finishing
    def _finish_attempt(
        self,
        row: TaskRow,
        *,
        ok: bool,
        result: bytes | None = None,
        error: str | None = None,
        error_kind: str | None = None,
        traceback: str | None = None,
        exit_code: int | None = None,
        lost: bool = False,
    ) -> None:
        """The current attempt of ``row`` ended: succeed, retry or fail the task."""
        now = time.time()
        if ok:
            state = AttemptState.SUCCEEDED
        elif error_kind == "cancelled":
            state = AttemptState.CANCELLED
        else:
            state = AttemptState.LOST if lost else AttemptState.FAILED
        self._save_attempt(
            row, state=state, ended_at=now, exit_code=exit_code, error=error, error_kind=error_kind
        )
        if row.state.terminal:  # e.g. cancelled while it ran: keep the user's verdict
            return
        if error_kind == "not_started":  # sent ahead to a worker that stopped: place it again
            self._free_attempts[row.id] = self._free_attempts.get(row.id, 0) + 1
            self._set_state(row, TaskState.PENDING)
            row.worker_id, row.gpus = None, ()
            self._update(row)
            self._enqueue_or_wait(row)
            self.kick()
            return
        if ok:
            if result:  # shell tasks succeed without a value
                row.result_key = self._blob_key("results", row.id, len(result))
                row.result_size = len(result)
                self._put_blob(row.result_key, result, row.id, "result")
                self._results.put(row.id, result)
            self._set_state(row, TaskState.SUCCEEDED)
            row.error = row.error_kind = row.traceback = None
        else:
            row.error, row.error_kind, row.traceback = error, error_kind, traceback
            if result:  # the pickled exception
                row.result_key = self._blob_key("errors", row.id, len(result))
                row.result_size = len(result)
                self._put_blob(row.result_key, result, row.id, "error")
                self._results.put(row.id, result)
            retries_used = row.attempt - 1 - self._free_attempts.get(row.id, 0)
            if error_kind not in NOT_RETRYABLE and retries_used < row.spec.retry.retries:
                delay = row.spec.retry.delay(retries_used + 1)
                self._set_state(row, TaskState.PENDING)
                row.retry_at = now + delay
                row.reason = (
                    f"attempt {row.attempt} failed ({error}); retry {retries_used + 1} of "
                    f"{row.spec.retry.retries} in {delay:g} s"
                )
                row.worker_id = None
                row.gpus = ()
                self._update(row)
                self._timers[row.id] = asyncio.get_running_loop().call_later(delay, self._requeue, row.id)
                return
            self._set_state(row, TaskState.FAILED)
        row.ended_at = now
        row.reason = None
        self._update(row)
        self._retire(row)
        self._after_terminal(row)

    def _requeue(self, task_id: str) -> None:
        self._timers.pop(task_id, None)
        row = self.tasks.get(task_id)
        if row is not None and row.state == TaskState.PENDING:
            row.retry_at = None
            row.reason = None
            self._enqueue_or_wait(row)
            self._publish_task(row)
            self.kick()

    # ------------------------------------------------------------------ user actions
    async def cancel(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if row.state.terminal:
            raise Conflict(f"task {task_id} already {row.state.value}; nothing to cancel")
        worker = self.workers.get(row.worker_id or "") if row.state.active else None
        self._set_state(row, TaskState.CANCELLED)
        row.error_kind = "cancelled"
        row.error = "cancelled by the user"
        row.ended_at = time.time()
        row.reason = None
        if worker is not None:
            worker.send(
                protocol.encode(
                    {
                        "type": "cancel",
                        "task_id": row.id,
                        "attempt": row.attempt,
                        "reason": "cancelled by the user",
                        "grace": self.config.cancel_grace,
                    }
                )
            )
        self._update(row)
        self._retire(row)
        self._after_terminal(row)
        await self.journal.flush()
        self.kick()
        return row

    async def retry(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if row.state not in RETRYABLE:
            raise Conflict(
                f"task {task_id} is {row.state.value}; only failed or cancelled tasks can be retried"
            )
        self._finished.pop(row.id, None)
        self._set_state(row, TaskState.PENDING)
        row.error = row.error_kind = row.traceback = None
        row.ended_at = row.retry_at = None
        row.worker_id = None
        row.gpus = ()
        row.result_key = None
        row.result_size = 0
        self._results.pop(row.id)
        self.tasks[row.id] = row
        self._update(row)
        await self.journal.flush()
        self._enqueue_or_wait(row)
        self.kick()
        return row

    def when_done(self, row: TaskRow) -> asyncio.Future[TaskRow]:
        """A future resolved (after the commit) when ``row`` reaches a terminal state."""
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        if row.state.terminal:
            fut.set_result(row)
        else:
            self._done.setdefault(row.id, []).append(fut)
        return fut

    async def wait(self, task_id: str, timeout: float | None, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if row.state.terminal:
            return row
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        self._done.setdefault(task_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return self._lookup_memory(task_id) or row
        finally:
            waiters = self._done.get(task_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    self._done.pop(task_id, None)

    async def result_bytes(self, row: TaskRow) -> bytes:
        if row.result_key is None:
            raise Conflict(f"task {row.id} is {row.state.value} and has no result")
        data = self._results.get(row.id)
        if data is None:
            await self.journal.flush()  # a result too large to cache may not be on disk yet
            data = await self._read_blob(row.result_key)
        return data

    # ------------------------------------------------------------------ reads
    async def describe(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        row = await self.get_row(task_id, owner)
        view = task_view(row)
        await self.journal.flush()  # the outcome may be announced a commit ahead of the store
        attempts = await self.journal.run(self.store.get_attempts, task_id)
        view["attempts"] = [attempt_view(a) for a in attempts]
        return view

    async def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        rows = await self.journal.run(lambda: self.store.list_tasks(**filters))
        # the store may lag the engine by one commit: prefer the live rows
        return [task_view(self._lookup_memory(r.id) or r) for r in rows]

    async def counts(self, owner: str | None = None) -> dict[str, int]:
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

    # ------------------------------------------------------------------ tokens
    async def create_token(
        self, name: str, *, scope: str, owner: str = "", provider: str = "static"
    ) -> tuple[TokenRow, str]:
        return await self.journal.run(
            lambda: self.store.create_token(name, scope=scope, owner=owner, provider=provider)
        )

    async def find_token(self, secret: str) -> TokenRow | None:
        return await self.journal.run(self.store.find_token, secret)

    async def revoke_token(self, token_id: str) -> bool:
        ok = await self.journal.run(self.store.revoke_token, token_id)
        for worker in list(self.workers.values()):
            if worker.token_id == token_id and worker.link is not None:
                log.warning("worker %s: its token was revoked; disconnecting it", worker.name)
                worker.link.close("token revoked")
        return ok

    async def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        return await self.journal.run(self.store.list_tokens, scope)

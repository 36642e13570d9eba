"""The engine proper: the one entry point the server uses, accepting and finishing tasks.

All state transitions happen on the server's event loop, in memory first; every change is
journaled (group commit) and published on the event bus. A submit returns only once its
task is committed. The shared in-memory state is one :class:`.state.EngineState`; the
constructor builds it and the services, each given what it uses: :class:`.reads.Reads`
(what users read), :class:`.tokens.Tokens`, :class:`.handoff.Handoff`,
:class:`.blobfiles.BlobFiles`, :class:`.rebalance.Rebalancer`, :class:`.idle.IdleWatch`.
Parts still mixed in (they reach the state as ``self.state``): submission, scheduling and
dispatch (:mod:`.dispatch`), cancel and retry (:mod:`.queries`), worker connections and
their messages (:mod:`.connections`), restarts (:mod:`.recovery`), workflow runs
(:mod:`.runs`), provider reasons (:mod:`.provisioning`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from ..core.ids import blob_key
from ..core.queue import FairQueue
from ..core.records import TaskRow, TokenRow, UpdateAttempt, UpdateTask
from ..core.states import AttemptState, TaskState, transition
from . import rollback
from .blobfiles import BlobFiles
from .caches import StoredPayload
from .config import EngineConfig
from .connections import WorkerConnections
from .dispatch import Dispatch
from .events import EventBus
from .handoff import Handoff
from .idle import IdleWatch
from .journal import Journal
from .ports import Blobs, Logs, Provider, Store
from .provisioning import Provisioning
from .queries import Queries
from .reads import Reads
from .reasons import ProviderReasons
from .rebalance import Rebalancer
from .recovery import Recovery
from .runs import Runs
from .state import EngineState
from .submission import Submission
from .tokens import TokenCache, Tokens
from .views import task_view
from .workers import WorkerHandle

__all__ = ["Engine", "EngineConfig", "blob_key"]

log = logging.getLogger("jupyter_orch.engine")

# error kinds that the same code would hit again: never retried automatically
NOT_RETRYABLE = frozenset({"bad_payload", "environment", "cancelled", "dependency", "template", "store"})


class Engine(Submission, Dispatch, Queries, WorkerConnections, Runs, Provisioning):
    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        logs: Logs,
        config: EngineConfig | None = None,
        provider: Provider | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.logs = logs
        self.config = config or EngineConfig()
        self.bus = EventBus()
        self.state = EngineState(self.config)
        # small batches commit on the loop when the store says its commits are local (SQLite)
        self.journal = Journal(
            store,
            blobs,
            inline_max=64 if getattr(store, "local_commits", False) else 0,
            busy=self.state.backlogged,
            on_rejected=lambda rejected: rollback.rejected(self, rejected),
        )
        self._kick_pending = False
        self._unplaceable_sig = None  # the unplaceable tasks last explained to the provider
        # assignments waiting for their commit: (worker, row, attempt, the journal batch they go with)
        self._dispatch_queue: list[tuple[Any, TaskRow, int, int]] = []
        self.token_cache = TokenCache()
        self.provider = provider  # None: workers only come as they connect
        self.started_at = time.time()
        self.hostname = socket.gethostname()
        WorkerConnections.__init__(self)
        self._init_runs()
        self.reasons = ProviderReasons(self.state, publish_task=self._publish_task, end_task=self._end_task)
        self.provider_reasons = self.reasons.entries  # task -> (attempt, the provider's reason)
        # services, each given what it uses
        self.handoff = Handoff(blobs, self.config)
        self.idle_watch = IdleWatch(self.state.workers, provider, self.config)
        self.blobfiles = BlobFiles(self.journal, blobs, self.config)
        self.rebalancer = Rebalancer(self.state.workers, self.config)
        self.reads = Reads(self.state, self.journal, store, blobs, logs)
        self.recovery = Recovery(
            self.state,
            self.journal,
            store,
            self.config,
            enqueue_or_wait=self._enqueue_or_wait,
            requeue=self._requeue,
            start_grace=self._start_grace,
        )
        self.tokens = Tokens(store, self.journal, self.state.workers, self.token_cache)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.state.seq = await self.journal.run(self.store.next_seq)
        max_id: str | None = await self.journal.run(self.store.max_task_id)
        self.state.max_id = max_id or ""
        await self.recover_runs()
        await self.recover()
        self.kick()
        self.idle_watch.start()

    async def stop(self) -> None:
        self.idle_watch.stop()
        for timer in self.state.timers.values():
            timer.cancel()
        self.state.timers.clear()
        self.stop_connections()
        await self.journal.close()

    # ------------------------------------------------------------------ shared state
    @property
    def tasks(self) -> dict[str, TaskRow]:
        """Every non-terminal task (read by the server's handlers and metrics)."""
        return self.state.tasks

    @property
    def queue(self) -> FairQueue:
        return self.state.queue

    @property
    def workers(self) -> dict[str, WorkerHandle]:
        return self.state.workers

    @property
    def unplaceable(self) -> dict[str, str]:
        return self.state.unplaceable

    @property
    def counters(self) -> dict[str, int]:
        return self.state.counters

    async def recover(self) -> None:
        """Take up the unfinished tasks stored (see :mod:`.recovery`)."""
        await self.recovery.recover()

    # ------------------------------------------------------------------ reads (see .reads)
    async def get_row(self, task_id: str, owner: str | None = None) -> TaskRow:
        return await self.reads.get_row(task_id, owner)

    def when_done(self, row: TaskRow) -> asyncio.Future[TaskRow]:
        """A future resolved (after the commit) when ``row`` reaches a terminal state."""
        return self.reads.when_done(row)

    def on_done(self, row: TaskRow, callback: Callable[[TaskRow], None]) -> None:
        """Call ``callback(row)`` when ``row`` reaches a terminal state (now if it has)."""
        self.reads.on_done(row, callback)

    async def wait(self, task_id: str, timeout: float | None, owner: str | None = None) -> TaskRow:
        return await self.reads.wait(task_id, timeout, owner)

    def cached_result(self, row: TaskRow) -> bytes | None:
        """The task's result if it is still in memory (most recent small results are)."""
        return self.reads.cached_result(row)

    async def result_bytes(self, row: TaskRow) -> bytes:
        return await self.reads.result_bytes(row)

    async def notebook_result(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """A notebook task's stored result, ``{"notebook", "outputs", "name"}``."""
        return await self.reads.notebook_result(task_id, owner)

    async def describe(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self.reads.describe(task_id, owner)

    async def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return await self.reads.list_tasks(**filters)

    async def counts(self, owner: str | None = None) -> dict[str, int]:
        return await self.reads.counts(owner)

    async def read_logs(
        self, row: TaskRow, attempt: int | None, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int, int]:
        return await self.reads.read_logs(row, attempt, offset, limit)

    # ------------------------------------------------------------------ services
    def handoff_info(self) -> dict[str, Any] | None:
        """What the session hello offers a client for writing payloads itself (see
        :mod:`.handoff`), or None when the blob store is not a folder on this machine."""
        return self.handoff.info()

    def stored_payload(self, task_id: str) -> StoredPayload:
        """The payload a client wrote for ``task_id``; SpecError when it is not there."""
        return self.handoff.stored_payload(task_id)

    async def create_token(
        self, name: str, *, scope: str, owner: str = "", provider: str = "static"
    ) -> tuple[TokenRow, str]:
        return await self.tokens.create(name, scope=scope, owner=owner, provider=provider)

    async def find_token(self, secret: str) -> TokenRow | None:
        """The token (revoked or not); a token read lately counts while the database is out."""
        return await self.tokens.find(secret)

    async def revoke_token(self, token_id: str) -> bool:
        return await self.tokens.revoke(token_id)

    async def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        return await self.tokens.of_scope(scope)

    # ------------------------------------------------------------------ helpers
    def _touch(self, row: TaskRow) -> None:
        row.updated_at = time.time()

    def _publish_task(self, row: TaskRow) -> None:
        # a view costs more than the rest of a state change; a task not stored yet is no news
        if self.bus.subscriber_count and row.id not in self.state.unstored:
            self.bus.publish({"type": "task", "task": task_view(row)})

    def _update(self, row: TaskRow, *, lazy: bool = False) -> None:
        self._touch(row)
        self.journal.add(UpdateTask(dataclasses.replace(row)), lazy=lazy)
        self._publish_task(row)

    def _set_state(self, row: TaskRow, state: TaskState) -> None:
        row.state = transition(row.state, state)

    def _save_attempt(self, row: TaskRow, *, lazy: bool = False, **changes: Any) -> None:
        attempt = self.state.attempt_of(row)
        for key, value in changes.items():
            setattr(attempt, key, value)
        self.journal.add(UpdateAttempt(dataclasses.replace(attempt)), lazy=lazy)

    def _retire(self, row: TaskRow) -> None:
        """A task reached a terminal state: move it out of the active set."""
        self.state.retire(row)
        if row.state == TaskState.SUCCEEDED:
            self.blobfiles.drop_payload_file(row)

    # ------------------------------------------------------------------ submit
    def _dep_state(self, dep_id: str, known: dict[str, TaskRow]) -> TaskRow | None:
        return self.state.lookup(dep_id) or known.get(dep_id)

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
            self.state.deps.wait(row.id, unmet)
            row.reason = f"waiting for {len(unmet)} dependenc{'y' if len(unmet) == 1 else 'ies'}"
            return
        self._ready(row)

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
            for task_id in self.state.deps.succeeded(row.id):
                dependant = self.state.tasks.get(task_id)
                if dependant is not None and dependant.state == TaskState.PENDING:
                    dependant.reason = None
                    self._ready(dependant)
        else:
            for task_id in self.state.deps.failed(row.id):
                dependant = self.state.tasks.get(task_id)
                if dependant is not None:
                    self._fail_upstream(dependant, row)
        self._step_finished(row)
        # Waiters learn the outcome now, before its commit: a result a worker reported stays
        # with that worker until the commit is acknowledged, so a crash in between cannot
        # lose it (the worker sends it again), and the caller saves a commit of latency.
        self.state.announce_done(row)

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
            state = AttemptState.LOST if lost or error_kind == "not_started" else AttemptState.FAILED
        self._save_attempt(
            row, state=state, ended_at=now, exit_code=exit_code, error=error, error_kind=error_kind
        )
        if row.state.terminal:  # e.g. cancelled while it ran: keep the user's verdict
            return
        if error_kind == "not_started":  # sent ahead to a worker that stopped: place it again
            self.state.free_attempts[row.id] = self.state.free_attempts.get(row.id, 0) + 1
            self._set_state(row, TaskState.PENDING)
            row.worker_id, row.gpus = None, ()
            self._update(row)
            self._enqueue_or_wait(row)
            self.kick()
            return
        if ok:
            if result:  # shell tasks succeed without a value
                row.result_key = self.blobfiles.key("results", row.id, len(result))
                row.result_size = len(result)
                self.blobfiles.put(row.result_key, result, row.id, "result")
                self.state.results.put(row.id, result)
            self._set_state(row, TaskState.SUCCEEDED)
            row.error = row.error_kind = row.traceback = None
        else:
            row.error, row.error_kind, row.traceback = error, error_kind, traceback
            if result:  # the pickled exception
                row.result_key = self.blobfiles.key("errors", row.id, len(result))
                row.result_size = len(result)
                self.blobfiles.put(row.result_key, result, row.id, "error")
                self.state.results.put(row.id, result)
            retries_used = row.attempt - 1 - self.state.free_attempts.get(row.id, 0)
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
                self.state.timers[row.id] = asyncio.get_running_loop().call_later(
                    delay, self._requeue, row.id
                )
                return
            self._set_state(row, TaskState.FAILED)
        row.ended_at = now
        row.reason = None
        self._update(row)
        self._retire(row)
        if row.result_key is not None and not row.result_key.startswith("db:"):
            # a result in the blob store: nobody hears of the outcome before the file is
            # written and its row stored (if the disk refuses it, the task fails instead)
            self.state.unannounced.add(row.id)
            self.journal.after_commit(
                lambda _: self._announce_stored(row), keys=[row.id], through_outage=True
            )
            return
        self._after_terminal(row)

    def _announce_stored(self, row: TaskRow) -> None:
        self.state.unannounced.discard(row.id)
        self._after_terminal(row)

    def ended(self, row: TaskRow) -> bool:
        """Terminal, and announced: a waiter may have it."""
        return self.state.ended(row)

    def _requeue(self, task_id: str) -> None:
        self.state.timers.pop(task_id, None)
        row = self.state.tasks.get(task_id)
        if row is not None and row.state == TaskState.PENDING:
            row.retry_at = None
            row.reason = None
            self._enqueue_or_wait(row)
            self._publish_task(row)
            self.kick()

"""The engine proper: the one entry point the server uses, accepting and finishing tasks.

All state transitions happen on the server's event loop, in memory first; every change is
journaled (group commit) and published on the event bus. A submit returns only once its
task is committed.

``Engine`` is a facade. The shared in-memory state is one :class:`.state.EngineState`;
the task transitions every part makes go through one :class:`.transitions.Transitions`;
the constructor builds them and the services, each given the state and only the
collaborators it uses (other services' methods it calls are passed as callables, so no
service imports another): :class:`.submission.Submitter`, :class:`.dispatch.Dispatcher`,
:class:`.actions.TaskActions` (cancel, retry), :class:`.connections.WorkerConnections`,
:class:`.reports.WorkerReports`, :class:`.runs.Runs` and :class:`.stepcache.StepCache`,
:class:`.recovery.Recovery`, :class:`.rollback.Rollback`, :class:`.reads.Reads`,
:class:`.metricreads.MetricReads` (its ``metric_reads``, read by the handlers directly),
:class:`.tokens.Tokens`, :class:`.handoff.Handoff`, :class:`.blobfiles.BlobFiles`,
:class:`.rebalance.Rebalancer`, :class:`.idle.IdleWatch`, :class:`.searches.Searches`,
:class:`.searchsteps.SearchSteps` and :class:`.reasons.ProviderReasons`. Its public methods only delegate.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..core import protocol
from ..core.fairshare import Shares
from ..core.ids import blob_key
from ..core.queue import FairQueue, PendingTask
from ..core.records import RunRow, TaskRow, TokenRow
from ..core.runs import RunPlan
from ..core.spec import TaskSpec
from .accepted import Accepted, Payloads
from .actions import TaskActions
from .blobfiles import BlobFiles
from .caches import StoredPayload
from .config import EngineConfig
from .connections import WorkerConnections
from .dispatch import Dispatcher
from .events import EventBus
from .handoff import Handoff
from .idle import IdleWatch
from .journal import Journal
from .metricreads import MetricReads
from .ports import Blobs, Logs, Metrics, Provider, Store
from .preemption import Preemptions
from .reads import Reads
from .reasons import ProviderReasons
from .rebalance import Rebalancer
from .recovery import Recovery
from .reports import WorkerReports
from .rollback import Rollback
from .runs import Runs
from .searches import Searches
from .searchsteps import SearchSteps
from .state import EngineState
from .stepcache import StepCache
from .submission import Submitter
from .tokens import TokenCache, Tokens
from .transitions import Transitions
from .workerevents import WorkerEvents
from .workers import WorkerHandle, WorkerLink

__all__ = ["Accepted", "Engine", "EngineConfig", "blob_key"]


class Engine:
    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        logs: Logs,
        config: EngineConfig | None = None,
        provider: Provider | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.logs = logs
        self.metrics = metrics
        self.config = config = config or EngineConfig()
        self.provider = provider  # None: workers only come as they connect
        self.started_at = time.time()
        self.hostname = socket.gethostname()
        self.bus = bus = EventBus()
        self.state = state = EngineState(config)
        # small batches commit on the loop when the store says its commits are local (SQLite)
        self.journal = journal = Journal(
            store,
            blobs,
            inline_max=64 if getattr(store, "local_commits", False) else 0,
            busy=state.backlogged,
            on_rejected=lambda units: self.rollback.rejected(units),
        )
        self.token_cache = TokenCache()
        # the parts below state and journal, shared by the services
        blobfiles = self.blobfiles = BlobFiles(journal, blobs, config)
        events = self.worker_events = WorkerEvents(journal, bus)
        # the services call each other's methods through these (bound at call time: the
        # transitions come first, the services they call back are built after them)
        transitions = self.transitions = Transitions(
            state,
            journal,
            bus,
            blobfiles,
            kick=self.kick,
            ready=self._ready,
            step_finished=self._step_finished,
        )
        self.reads = reads = Reads(state, journal, store, blobs, logs)
        self.metric_reads = MetricReads(metrics)  # None: metrics are not kept
        self.reasons = ProviderReasons(state, publish_task=transitions.publish, end_task=transitions.end)
        self.provider_reasons = self.reasons.entries  # task -> (attempt, the provider's reason)
        self.rebalancer = Rebalancer(state.workers, config)
        self.preemptions = Preemptions(state, config, transitions)
        self.dispatcher = Dispatcher(
            state,
            journal,
            config,
            blobs,
            transitions,
            provider=provider,
            hostname=self.hostname,
            reason=self.reasons.reason,
            rebalance=self.rebalancer.check,
            lookup=reads.lookup,
            read_blob=reads.read_blob,
            slots_changed=events.slots_changed,
            preempt=self.preemptions.check,
        )
        self.submitter = Submitter(
            state,
            journal,
            store,
            bus,
            config,
            blobfiles,
            transitions,
            schedule_now=self.dispatcher.schedule_now,
        )
        self.actions = TaskActions(state, journal, config, transitions, get_row=reads.get_row, kick=self.kick)
        self.reports = WorkerReports(
            state,
            journal,
            bus,
            logs,
            transitions,
            events,
            kick=self.kick,
            metrics=metrics,
            going=self.preemptions.worker_going,
        )
        self.connections = WorkerConnections(
            state,
            config,
            transitions,
            events,
            log_offsets=self.reports.log_offsets,
            metric_offsets=self.reports.metrics.offsets,
            kick=self.kick,
        )
        self.step_cache = StepCache(
            state, journal, store, transitions, lookup=reads.lookup, read_blob=reads.read_blob, kick=self.kick
        )
        self.run_book = Runs(
            state,
            journal,
            store,
            bus,
            transitions,
            accept=self.submitter.accept,
            committed=self.submitter.committed,
            cancel_row=self.actions.cancel_row,
            reset_for_retry=self.actions.reset_for_retry,
            kick=self.kick,
        )
        self.runs = self.run_book.runs  # runs still running
        self.search_book = Searches(
            state,
            journal,
            store,
            bus,
            max_payload=config.max_payload_bytes,
            accept=self.submitter.accept,
            committed=self.submitter.committed,
            cancel_row=self.actions.cancel_row,
            watch_metrics=self._watch_metrics,
            read_points=self.metric_reads.points,
            read_blob=reads.read_blob,
            lookup=reads.lookup,
            kick=self.kick,
            changed=lambda search, search_state: self.search_steps.changed(search, search_state),
        )
        self.search_steps = SearchSteps(
            state,
            transitions,
            create=self.search_book.create_for_step,
            get=self.search_book.get,
            cancel=self.search_book.cancel,
            running=self.search_book.running,
            get_run=self.run_book.get,
            attach=self.run_book.attach_search,
            lookup=reads.lookup,
            read_blob=reads.read_blob,
            kick=self.kick,
        )
        self.rollback = Rollback(
            state,
            transitions,
            forget_reason=self.reasons.forget,
            forget_run=self.run_book.forget,
            slots_changed=events.slots_changed,
            kick=self.kick,
        )
        self.recovery = Recovery(
            state,
            journal,
            store,
            config,
            enqueue_or_wait=transitions.enqueue_or_wait,
            requeue=transitions.requeue,
            start_grace=self.connections.start_grace,
        )
        self.handoff = Handoff(blobs, config)
        self.idle_watch = IdleWatch(state.workers, provider, config)
        self.tokens = Tokens(store, journal, state.workers, self.token_cache)

    def _watch_metrics(
        self, task_id: str, listener: Callable[[str, int, int, list[Any]], None] | None
    ) -> None:
        """Follow a task's metric points as they come (None: stop following them)."""
        if listener is None:
            self.reports.metrics.listeners.pop(task_id, None)
        else:
            self.reports.metrics.listeners[task_id] = listener

    def _ready(self, row: TaskRow) -> None:
        """A pending task's dependencies are met: a search step starts its search, a
        cacheable step is looked up, any other task is queued."""
        if not self.search_steps.ready(row):
            self.step_cache.ready(row)

    def _step_finished(self, row: TaskRow) -> None:
        """A task ended: if it is a workflow step, the step cache and its run follow; if it
        is a search's trial, its search follows."""
        if isinstance(row.spec.metadata.get("trial"), dict):  # a workflow step's trial too
            self.search_book.trial_finished(row)
        elif isinstance(row.spec.metadata.get("step"), dict):
            self.search_steps.step_finished(row)
            self.step_cache.step_finished(row)
            self.run_book.step_finished(row)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.state.seq = await self.journal.run(self.store.next_seq)
        max_id: str | None = await self.journal.run(self.store.max_task_id)
        self.state.max_id = max_id or ""
        self.search_steps.recovering()
        await self.recover_runs()
        await self.recovery.restore_usage(time.time())
        await self.recover()
        await self.search_book.recover()
        await self.search_steps.recovered()
        self.kick()
        self.idle_watch.start()

    async def stop(self) -> None:
        self.idle_watch.stop()
        self.dispatcher.stop()
        for timer in self.state.timers.values():
            timer.cancel()
        self.state.timers.clear()
        self.stop_connections()
        await self.journal.close()

    async def recover(self) -> None:
        """Take up the unfinished tasks stored (see :mod:`.recovery`)."""
        await self.recovery.recover()

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

    def set_shares(self, shares: Shares, user_groups: dict[str, frozenset[str]]) -> None:
        """New quota and weight settings, and every user's groups (from the hub, team mode)."""
        self.config.shares = shares
        self.state.user_groups = dict(user_groups)
        self.kick()

    def know_groups(self, owner: str, groups: frozenset[str]) -> None:
        """``owner``'s groups (from their latest request), for group quotas and weights."""
        self.state.know_groups(owner, groups)
        self.kick()  # a group's quota or weight may now apply

    def ended(self, row: TaskRow) -> bool:
        """Terminal, and announced: a waiter may have it."""
        return self.state.ended(row)

    # ------------------------------------------------------------------ submit, cancel, retry
    async def submit(self, specs: Sequence[TaskSpec], payloads: Payloads) -> list[TaskRow]:
        """Accept tasks; returns once they are committed. Idempotent by task id."""
        return await self.submitter.submit(specs, payloads)

    def submit_nowait(self, specs: Sequence[TaskSpec], payloads: Payloads) -> Accepted | None:
        """:meth:`submit` up to its commit, now (then ``await committed(...)``), or None
        when a store lookup is needed (use :meth:`submit`)."""
        return self.submitter.submit_nowait(specs, payloads)

    async def committed(self, accepted: Accepted) -> None:
        """Wait for the commit of accepted tasks (see :meth:`.submission.Submitter.committed`)."""
        await self.submitter.committed(accepted)

    def kick(self) -> None:
        """Run the scheduler soon (once per loop iteration, however many changes)."""
        self.dispatcher.kick()

    async def cancel(self, task_id: str, owner: str | None = None) -> TaskRow:
        return await self.actions.cancel(task_id, owner)

    async def retry(self, task_id: str, owner: str | None = None) -> TaskRow:
        return await self.actions.retry(task_id, owner)

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

    def cached_result(self, row: TaskRow) -> bytes | memoryview | None:
        """The task's result if it is still in memory (most recent small results are)."""
        return self.reads.cached_result(row)

    async def result_bytes(self, row: TaskRow) -> bytes | memoryview:
        return await self.reads.result_bytes(row)

    async def notebook_result(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """A notebook task's stored result, ``{"notebook", "outputs", "name"}``."""
        return await self.reads.notebook_result(task_id, owner)

    async def describe(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        view = await self.reads.describe(task_id, owner)
        if view["state"] == "pending":  # a GPU task in line says where, as of now
            view["reason"] = self.dispatcher.line_reason(task_id) or view.get("reason")
        return view

    async def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return await self.reads.list_tasks(**filters)

    async def counts(self, owner: str | None = None) -> dict[str, int]:
        return await self.reads.counts(owner)

    async def usage(self, since: float, until: float) -> dict[str, Any]:
        """GPU-hours and task-hours per user and group in a period (see :meth:`.reads.Reads.usage`)."""
        return await self.reads.usage(since, until)

    async def read_logs(
        self, row: TaskRow, attempt: int | None, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int, int]:
        return await self.reads.read_logs(row, attempt, offset, limit)

    # ------------------------------------------------------------------ services
    def handoff_info(self) -> dict[str, Any] | None:
        """What the session hello offers a client for writing payloads itself (:mod:`.handoff`)."""
        return self.handoff.info()

    def stored_payload(self, task_id: str) -> StoredPayload:
        """The payload a client wrote for ``task_id``; SpecError when it is not there."""
        return self.handoff.stored_payload(task_id)

    async def create_token(
        self, name: str, *, scope: str, owner: str = "", provider: str = "static", group: str = ""
    ) -> tuple[TokenRow, str]:
        return await self.tokens.create(name, scope=scope, owner=owner, provider=provider, group=group)

    async def find_token(self, secret: str) -> TokenRow | None:
        """The token (revoked or not); a token read lately counts while the database is out."""
        return await self.tokens.find(secret)

    async def revoke_token(self, token_id: str) -> bool:
        return await self.tokens.revoke(token_id)

    async def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        return await self.tokens.of_scope(scope)

    # ------------------------------------------------------------------ workers (see .connections, .reports)
    def worker_hello(self, token: Any, link: WorkerLink, hello: protocol.Message) -> WorkerHandle:
        """A worker authenticated with ``token`` said hello: register or re-attach it."""
        return self.connections.hello(token, link, hello)

    def worker_message(self, handle: WorkerHandle, msg: protocol.Message) -> None:
        self.reports.message(handle, msg)

    def worker_disconnected(self, handle: WorkerHandle, link: WorkerLink) -> None:
        self.connections.disconnected(handle, link)

    def worker_gone(self, worker_id: str, why: str) -> None:
        """The worker will not come back: its tasks are retried or failed."""
        self.connections.gone(worker_id, why)

    def worker_list(self) -> list[dict[str, Any]]:
        return self.connections.listing()

    def stop_connections(self) -> None:
        self.connections.stop()

    # ------------------------------------------------------------------ the provider's hooks
    def provider_reason(self, task_id: str, reason: str) -> str:
        """The reason to show for an unplaceable task: the provider's, while it holds."""
        return self.reasons.reason(task_id, reason)

    def set_pending_reason(self, task_ids: Iterable[str], reason: str | None) -> None:
        """Pending tasks wait for the provider's capacity: show why (None: forget it)."""
        self.reasons.set_pending(task_ids, reason)

    def pending_tasks(self, task_ids: Iterable[str]) -> list[PendingTask]:
        """Those of ``task_ids`` still waiting in the queue to be placed."""
        return self.reasons.pending_tasks(task_ids)

    def fail_pending(self, task_ids: Iterable[str], error_kind: str, error: str) -> list[str]:
        """Fail tasks still waiting to be placed (their capacity cannot work); the ids failed."""
        return self.reasons.fail_pending(task_ids, error_kind, error)

    def worker_status(self, worker_id: str) -> dict[str, Any] | None:
        """How the worker stands (None: never connected, or gone)."""
        return self.connections.status(worker_id)

    def retire_worker(self, worker_id: str, undo: bool = False) -> bool:
        """Stop placing tasks on an idle worker about to go (False: it holds tasks, it stays)."""
        return self.connections.retire(worker_id, undo)

    def worker_lost(self, worker_id: str, error_kind: str, error: str) -> list[str]:
        """The provider knows the worker is gone: the attempts on it end now with ``error``
        (each retried or failed per its policy). The ids of the tasks it ran."""
        return self.connections.lost(worker_id, error_kind, error)

    # ------------------------------------------------------------------ workflow runs (see .runs)
    async def submit_run(self, plan: RunPlan) -> RunRow:
        """Accept a run and its steps; returns once they are committed."""
        return await self.run_book.submit(plan)

    async def recover_runs(self) -> None:
        await self.run_book.recover()

    async def get_run(self, run_id: str, owner: str | None = None) -> RunRow:
        return await self.run_book.get(run_id, owner)

    async def wait_run(self, run_id: str, timeout: float | None, owner: str | None = None) -> RunRow:
        """The run once it has ended, or as it is after ``timeout`` seconds."""
        return await self.run_book.wait(run_id, timeout, owner)

    async def describe_run(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        """The run with each step's task state, reason, error and times (the DAG)."""
        return await self.run_book.describe(run_id, owner)

    async def list_runs(self, **filters: Any) -> list[dict[str, Any]]:
        return await self.run_book.listing(**filters)

    async def cancel_run(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self.run_book.cancel(run_id, owner)

    async def retry_run(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        """Run again the steps that failed, were cancelled or never ran."""
        return await self.run_book.retry(run_id, owner)

    # ------------------------------------------------------------------ searches (see .searches)
    async def create_search(self, owner: str, request: dict[str, Any], payload: bytes) -> dict[str, Any]:
        """Check, store and start a hyperparameter search; its view."""
        return await self.search_book.create(owner, request, payload)

    async def describe_search(self, search_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self.search_book.describe(search_id, owner)

    async def list_searches(self, owner: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.search_book.listing(owner, limit)

    async def wait_search(
        self, search_id: str, timeout: float | None, owner: str | None = None
    ) -> dict[str, Any]:
        """The search once it has ended, or as it is after ``timeout`` seconds."""
        return await self.search_book.wait(search_id, timeout, owner)

    async def cancel_search(self, search_id: str, owner: str | None = None) -> dict[str, Any]:
        return await self.search_book.cancel(search_id, owner)

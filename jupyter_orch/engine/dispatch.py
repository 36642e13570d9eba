"""Scheduling and dispatch: running the scheduler on every change, recording assignments,
and sending them to workers once they are committed (payloads from memory, the database,
the blob store, or for local workers the blob file itself)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..core import protocol, tasktokens
from ..core.checkpoints import ENV as CHECKPOINT_ENV
from ..core.checkpoints import task_dir as checkpoint_dir
from ..core.fairshare import FairShare
from ..core.protocol import Buffer
from ..core.queue import PendingTask
from ..core.records import AttemptRow, InsertAttempt, TaskRow
from ..core.scheduler import Assignment, WorkerCapacity, schedule
from ..core.states import AttemptState, TaskState
from .config import EngineConfig
from .holdings import current_holdings
from .journal import Journal
from .ports import Blobs, Provider
from .state import EngineState
from .transitions import Transitions
from .workers import WorkerHandle

NO_RESULT = b"\x80\x02N."  # pickle.dumps(None, 2): the value a dependency without a result passes on
LINE_EVERY = 0.25  # seconds: queued GPU tasks are told their place in line at most this often
LINE_PLACES = 100  # past this many tasks ahead, a place is "at least 100 ahead" (no churn)


class Dispatcher:
    """Places queued tasks on workers' free slots, and sends each assignment once stored."""

    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        config: EngineConfig,
        blobs: Blobs,
        transitions: Transitions,
        *,
        provider: Provider | None,
        hostname: str,
        reason: Callable[[str, str], str],
        rebalance: Callable[[], None],
        lookup: Callable[[str], Awaitable[TaskRow | None]],
        read_blob: Callable[[str], Awaitable[Buffer]],
        slots_changed: Callable[[WorkerHandle], None],
        preempt: Callable[[Iterable[PendingTask], Sequence[WorkerCapacity]], object] | None = None,
    ) -> None:
        self.state = state
        self.journal = journal
        self.config = config
        self.blobs = blobs
        self.transitions = transitions
        self.provider = provider
        self.hostname = hostname
        self._reason = reason  # the provider's word on an unplaceable task, while it holds
        self._rebalance = rebalance  # take back tasks queued on busy workers for idle ones
        self._lookup = lookup  # a task, active or stored
        self._read_blob = read_blob
        self._slots_changed = slots_changed  # a worker's slot was freed
        self._preempt = preempt  # evict lower-priority tasks for waiting ones (if allowed)
        self._kick_pending = False
        self._unplaceable_sig: tuple[Any, ...] | None = None  # the unplaceable tasks last explained
        self._blocked: set[str] = set()  # the tasks a quota held back in the last full round
        self._line_timer: asyncio.TimerHandle | None = None  # places in line to be said
        self._line_said = 0.0  # when they were said last (loop time)
        # assignments waiting for their commit: (worker, row, attempt, the journal batch they go with)
        self._queue: list[tuple[WorkerHandle, TaskRow, int, int]] = []

    # ------------------------------------------------------------------ scheduling
    def kick(self) -> None:
        """Run the scheduler soon (once per loop iteration, however many changes)."""
        if not self._kick_pending:
            self._kick_pending = True
            asyncio.get_running_loop().call_soon(self.schedule_now)

    def schedule_now(self) -> None:
        self._kick_pending = False
        if not self.state.queue:
            self._rebalance()  # nothing to place: perhaps tasks wait on a busy worker
            return
        self._say_places_soon()  # the line moved, or grew
        cfg = self.config
        capacities = [
            w.capacity(cfg.prefetch, cfg.prefetch_below, cfg.prefetch_quick, cfg.prefetch_quick_below)
            for w in self.state.workers.values()
            if w.state == "connected"
        ]
        if not any(
            c.slots_free > 0 or c.queue_free > 0 for c in capacities
        ) and not self._needs_unplaceable_check(capacities):
            self._preempt_for_waiting()
            return
        result = schedule(self.state.queue, capacities, self.config.policy, self._fair_share())
        for assignment in result.assignments:
            self._assign(assignment)
        if result.assignments or result.waiting:
            self._preempt_for_waiting()
        self._blocked = set(result.blocked)
        for task_id, why in result.blocked.items():  # a quota holds it back: say which
            row = self.state.tasks.get(task_id)
            if row is not None and row.reason != why:
                row.reason = why
                self.transitions.publish(row)
        newly_unplaceable = {}
        for task_id, reason in result.unplaceable.items():
            reason = self._reason(task_id, reason)  # e.g. the cluster's word on its pod
            row = self.state.tasks.get(task_id)
            if row is not None and row.reason != reason:
                row.reason = reason
                self.transitions.publish(row)
                newly_unplaceable[task_id] = reason
            self.state.unplaceable[task_id] = reason
        for task_id in result.waiting:
            self.state.unplaceable.pop(task_id, None)
        if not result.assignments:
            self._rebalance()  # nothing placed now: perhaps tasks wait on a busy worker
        if newly_unplaceable and self.provider is not None:
            tasks = [t for t in (self.state.queue.get(i) for i in newly_unplaceable) if t is not None]
            asyncio.ensure_future(self.provider.request_capacity(tasks, newly_unplaceable))

    def _preempt_for_waiting(self) -> None:
        """With preemption on: evict what the head of the queue needs (see .preemption)."""
        if self._preempt is None or not self.config.preemption or not self.state.queue:
            return
        cfg = self.config
        capacities = [
            w.capacity(cfg.prefetch, cfg.prefetch_below, cfg.prefetch_quick, cfg.prefetch_quick_below)
            for w in self.state.workers.values()
            if w.state == "connected"
        ]
        waiting = (t for t in self.state.queue if not self._explained(t.id))
        self._preempt(waiting, capacities)

    def _fair_share(self) -> FairShare | None:
        """This round's view of quotas and fair share: recent use, and what each user and
        group holds on the workers now."""
        shares = self.config.shares
        if shares is None:
            return None
        holdings = current_holdings(self.state)
        return FairShare(shares, self.state.usage, holdings, time.time())

    def line_reason(self, task_id: str) -> str | None:
        """Why a queued GPU task waits for capacity (fair share on): its place in line, as
        of now. None when something else explains it (no worker fits, a quota held it)."""
        fair = self._fair_share()
        if fair is None or task_id not in self.state.queue or self._explained(task_id):
            return None
        return fair.in_line(self._in_fair_order(fair), task_id)

    def _explained(self, task_id: str) -> bool:
        return task_id in self.state.unplaceable or task_id in self._blocked

    def _in_fair_order(self, fair: FairShare) -> Iterator[PendingTask]:
        def start(task: PendingTask) -> float:
            return fair.start(task.owner, task.groups, gpus=bool(task.resources.gpus))

        return self.state.queue.weighted(start, fair.step)

    def _say_places_soon(self) -> None:
        """Tell the queued GPU tasks their place in line (their reason, in the events the
        sidebar and the cells follow), soon: at most every ``LINE_EVERY`` seconds, since
        it walks the whole queue."""
        if self.config.shares is None or self._line_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._line_timer = loop.call_later(
            max(0.0, self._line_said + LINE_EVERY - loop.time()), self._say_places
        )

    def _say_places(self) -> None:
        self._line_timer = None
        self._line_said = asyncio.get_running_loop().time()
        fair = self._fair_share()
        if fair is None:
            return
        for task_id, why in fair.places(self._in_fair_order(fair), limit=LINE_PLACES).items():
            row = self.state.tasks.get(task_id)
            if row is None or row.state != TaskState.PENDING or row.reason == why or self._explained(task_id):
                continue
            row.reason = why
            self.transitions.publish(row)

    def stop(self) -> None:
        if self._line_timer is not None:
            self._line_timer.cancel()
            self._line_timer = None

    def _needs_unplaceable_check(self, capacities: list[WorkerCapacity]) -> bool:
        # with no free slot anywhere, still explain tasks that no worker could ever run,
        # but only once per change of the worker set
        sig: tuple[Any, ...] = tuple(sorted(c.id for c in capacities))
        sig += (self.state.worker_generation,)
        if getattr(self.provider, "on_demand", False):  # it makes workers for new tasks: tell it of them
            sig += (self.state.queue.pushes,)
        if sig != self._unplaceable_sig:
            self._unplaceable_sig = sig
            return True
        return False

    def _assign(self, a: Assignment) -> None:
        row = self.state.tasks.get(a.task_id)
        worker = self.state.workers.get(a.worker_id)
        if row is None or worker is None:
            return
        self.transitions.set_state(row, TaskState.SCHEDULED)
        row.attempt += 1
        row.worker_id = worker.id
        row.gpus = a.gpus
        row.reason = None
        row.retry_at = None
        now = time.time()
        attempt = AttemptRow(row.id, row.attempt, AttemptState.SCHEDULED, worker.id, a.gpus, scheduled_at=now)
        self.state.placed(attempt)
        self.journal.add(InsertAttempt(dataclasses.replace(attempt)))
        self.transitions.update(row)
        worker.take(row, queued=a.queued)
        self.state.count("scheduled")
        # the assignment is made durable before the worker hears of it: after a crash
        # the database knows every task a worker may be running
        self._queue.append((worker, row, row.attempt, self.journal.batches + 1))
        if len(self._queue) == 1:
            self._await_dispatch()

    def _await_dispatch(self) -> None:
        # through an outage: the assignments leave once they are stored, however late
        self.journal.after_commit(self._dispatch_committed, urgent=True, through_outage=True)

    def _dispatch_committed(self, failed: BaseException | None) -> None:
        # only what went with the batch just written (an assignment made while it was being
        # written goes with the next one, and waits for it)
        written = self.journal.batches
        live = []  # not cancelled meanwhile, nor rolled back (its submit could not be stored)
        for entry in self._queue:
            worker, row, attempt, _ = entry
            if (
                self.state.tasks.get(row.id) is row
                and row.attempt == attempt
                and row.state == TaskState.SCHEDULED
            ):
                live.append(entry)
            else:
                self._never_sent(worker, row.id, attempt)
        batch = [entry for entry in live if entry[3] <= written]
        self._queue = [entry for entry in live if entry[3] > written]
        if self._queue:
            self._await_dispatch()
        touched = {}
        for worker, row, attempt, _ in batch:
            blobs = self._assignment_blobs_cached(worker, row)
            if blobs is not None:
                self._send_assign(worker, row, blobs)
                touched[worker.id] = worker
            else:
                asyncio.ensure_future(self._load_and_send(worker, row, attempt))
        for worker in touched.values():  # each worker's assignments leave now, in one frame
            if worker.link is not None:
                worker.link.flush_frames()

    def _assignment_blobs_cached(self, worker: WorkerHandle, row: TaskRow) -> list[tuple[str, Buffer]] | None:
        blobs: list[tuple[str, Buffer]] = []
        if row.payload_key and self._shared_payload_path(worker, row) is None:
            payload = self.state.payloads.get(row.id)
            if payload is None:
                return None
            blobs.append(("payload", payload))
        for dep in row.spec.depends:
            data = self.state.results.get(dep)
            if data is None:
                dep_row = self.state.tasks.get(dep) or self.state.finished.get(dep)
                if dep_row is None or dep_row.result_key is not None:
                    return None  # a result to read first
                data = NO_RESULT  # a shell task's value: None
            blobs.append((f"dep:{dep}", data))
        return blobs

    async def _load_and_send(self, worker: WorkerHandle, row: TaskRow, attempt: int) -> None:
        try:
            blobs: list[tuple[str, Buffer]] = []
            if row.payload_key and self._shared_payload_path(worker, row) is None:
                blobs.append(("payload", await self._read_blob(row.payload_key)))
            for dep_id in row.spec.depends:
                dep = await self._lookup(dep_id)
                if dep is None:
                    raise KeyError(f"result of dependency {dep_id}")
                if dep.result_key is None:  # it succeeded without a value (a shell task)
                    blobs.append((f"dep:{dep_id}", NO_RESULT))
                    continue
                data = self.state.results.get(dep_id) or await self._read_blob(dep.result_key)
                blobs.append((f"dep:{dep_id}", data))
        except KeyError as exc:
            if row.attempt == attempt and row.state == TaskState.SCHEDULED:
                worker.release(row.id)
                self.transitions.finish_attempt(
                    row, ok=False, error=f"stored data is missing: {exc}", error_kind="bad_payload"
                )
            return
        if row.attempt == attempt and row.state == TaskState.SCHEDULED:
            self._send_assign(worker, row, blobs)
        else:  # cancelled while its data was read
            self._never_sent(worker, row.id, attempt)

    def _never_sent(self, worker: WorkerHandle, task_id: str, attempt: int) -> None:
        """An assignment dropped before it left (its task was cancelled meanwhile): the
        worker will never report it, so its slot is free now."""
        held = worker.running.get(task_id)
        if held is not None and held.attempt == attempt:
            worker.release(task_id)
            self._slots_changed(worker)
            self.kick()

    def _send_assign(self, worker: WorkerHandle, row: TaskRow, blobs: list[tuple[str, Buffer]]) -> None:
        spec = row.spec
        header = {
            "type": "assign",
            "task_id": spec.id,
            "attempt": row.attempt,
            "kind": spec.kind,
            "name": spec.display_name,
            "owner": spec.owner,
            "command": spec.command,
            "env": self._task_env(spec.id, spec.env, step=isinstance(spec.metadata.get("step"), dict)),
            "timeout": spec.timeout,
            "gpus": list(row.gpus),
            "client_env": spec.metadata.get("client_env"),
        }
        step = spec.metadata.get("step")
        if isinstance(step, dict):  # a workflow step: the worker fills in its templates
            header["step"] = {"refs": step.get("refs") or {}, "context": step.get("context") or {}}
        trial = spec.metadata.get("trial")
        if isinstance(trial, dict) and isinstance(trial.get("params"), dict):
            header["params"] = trial["params"]  # a search's trial: its keyword arguments
        if self.config.task_token_secret:  # connect() inside the task acts as its owner
            header["token"] = tasktokens.mint(self.config.task_token_secret, spec.id, spec.owner or "")
        path = self._shared_payload_path(worker, row)
        if path is not None:
            # a worker on this machine reads a large payload from the blob store's file
            # itself: megabytes do not cross the WebSocket twice
            header["payload_file"] = path
            blobs = [(name, data) for name, data in blobs if name != "payload"]
            self.state.count("file_handoffs")
        worker.send(protocol.encode(header, blobs or [("none", b"")]))

    def _task_env(self, task_id: str, env: Mapping[str, str], *, step: bool) -> dict[str, str]:
        """The task's environment, with where its checkpoints go (the place the API lists)."""
        out = dict(env)
        if self.config.checkpoint_root:
            out[CHECKPOINT_ENV] = checkpoint_dir(self.config.checkpoint_root, task_id, out, step=step)
        return out

    def _shared_payload_path(self, worker: WorkerHandle, row: TaskRow) -> str | None:
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

"""Worker connections: hello and re-attach, disconnects (a grace period to come back, then
the tasks on the worker are retried or failed), and what the provider says of its workers
(retiring an idle one, one lost for good). What a connected worker reports on its tasks is
:mod:`.reports`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..core import protocol
from ..core.states import AttemptState, TaskState
from .config import EngineConfig
from .state import EngineState
from .transitions import Transitions
from .workerevents import WorkerEvents
from .workers import WorkerHandle, WorkerLink

# the provider's words for a worker the cluster took back (a pod evicted or preempted, its
# node drained or reclaimed): its tasks are preempted, queued again with no retry used
PREEMPTED_KINDS = frozenset({"evicted", "preempted"})

log = logging.getLogger("jupyter_orch.engine")


def whose_worker(token: Any) -> tuple[str | None, str | None]:
    """Whose worker one connecting with ``token`` is, (user, group), whoever issued it: a
    token issued for a user is theirs (one a user issued, ``POST /workers/tokens``, or one
    a provider issued for that user's tasks, as team mode's worker pods), one issued for a
    group is its members'; one issued with neither (a shared token, a provider's shared
    workers: the local provider's, a personal server's pods) is the service's (None, None)."""
    group = getattr(token, "group", "") or ""
    if group:
        return None, group
    owner = getattr(token, "owner", "") or ""
    return (owner or None), None


def _attempts(hello: protocol.Message, key: str) -> set[tuple[str, int]]:
    """The (task id, attempt) pairs a worker's hello lists under ``key``."""
    pairs = set()
    for entry in hello.get(key) or []:
        if isinstance(entry, dict):
            task_id, attempt = entry.get("task_id"), entry.get("attempt")
            if isinstance(task_id, str) and isinstance(attempt, int):
                pairs.add((task_id, attempt))
    return pairs


class WorkerConnections:
    def __init__(
        self,
        state: EngineState,
        config: EngineConfig,
        transitions: Transitions,
        events: WorkerEvents,
        *,
        log_offsets: Callable[[protocol.Message], list[list[Any]]],
        kick: Callable[[], None],
        metric_offsets: Callable[[protocol.Message], list[list[Any]]] | None = None,
    ) -> None:
        self.state = state
        self.config = config
        self.transitions = transitions
        self.events = events
        self._log_offsets = log_offsets  # how many log lines we hold of the attempts it has
        self._metric_offsets = metric_offsets  # and how many metric points
        self._kick = kick
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}  # disconnected workers awaited

    def stop(self) -> None:
        for timer in self._grace_timers.values():
            timer.cancel()
        self._grace_timers.clear()
        self.events.stop()
        for worker in self.state.workers.values():
            if worker.link is not None:
                worker.link.close("server stopping")

    def awaited(self) -> list[str]:
        """The disconnected workers given time to come back."""
        return list(self._grace_timers)

    def _cancel_grace(self, worker_id: str) -> None:
        timer = self._grace_timers.pop(worker_id, None)
        if timer:
            timer.cancel()

    # ------------------------------------------------------------------ connect
    def hello(self, token: Any, link: WorkerLink, hello: protocol.Message) -> WorkerHandle:
        """A worker authenticated with ``token`` said hello: register or re-attach it."""
        worker_id = hello.get("worker_id")
        if not isinstance(worker_id, str) or not worker_id:
            raise protocol.ProtocolError("hello needs a worker_id")
        info = {k: v for k, v in hello.header.items() if k not in ("type", "running", "finished")}
        handle = self.state.workers.get(worker_id)
        if handle is not None and handle.token_id not in (None, token.id):
            raise protocol.ProtocolError(f"worker id {worker_id} is registered with another token")
        if handle is not None and handle.link is not None and handle.link is not link:
            handle.link.close("replaced by a new connection of the same worker")
        name = str(hello.get("name") or worker_id)
        if handle is None:
            handle = WorkerHandle(
                worker_id, name, str(hello.get("provider") or token.provider), token.id, link, info
            )
            self.state.add_worker(handle)
            log.info("worker %s connected (%s)", name, self._describe_slots(handle))
        else:
            handle.link, handle.info, handle.name = link, info, name
            handle.token_id = token.id
            log.info("worker %s reconnected", name)
        handle.owner, handle.group = whose_worker(token)
        handle.state = "connected"
        handle.connected_at = handle.last_seen = time.time()
        handle.disconnected_at = None
        self._cancel_grace(worker_id)
        link.send(
            protocol.encode(
                {
                    "type": "welcome",
                    "worker_id": worker_id,
                    "heartbeat_interval": self.config.heartbeat_interval,
                    "server_version": self.config.server_version,
                    "log_offsets": self._log_offsets(hello),
                    "metric_offsets": self._metric_offsets(hello) if self._metric_offsets else [],
                    "batch": protocol.BATCH,
                }
            )
        )
        self._reattach(handle, hello)
        self.events.changed(handle)
        self.state.worker_set_changed()
        self._kick()
        return handle

    @staticmethod
    def _describe_slots(w: WorkerHandle) -> str:
        gpus = ", ".join(g.model or f"gpu{g.index}" for g in w.gpus) or "no GPUs"
        return f"{w.slots} slot(s), {w.cpus:g} cpus, {gpus}"

    def _reattach(self, handle: WorkerHandle, hello: protocol.Message) -> None:
        running = _attempts(hello, "running")
        finished = _attempts(hello, "finished")
        queued = _attempts(hello, "queued")  # held there but not started (sent ahead)
        # what we believe runs there
        for task_id, slot in list(handle.running.items()):
            key = (task_id, slot.attempt)
            if key in running or key in finished:
                continue
            row = self.state.tasks.get(task_id)
            handle.release(task_id)
            if row is not None and row.state == TaskState.SCHEDULED and row.attempt == slot.attempt:
                # never reported started, and the worker does not hold it: the assignment
                # went down with the old connection. Placed again, not counted as a try.
                log.info(
                    "worker %s came back without unstarted task %s; placing it again", handle.name, task_id
                )
                self.transitions.finish_attempt(
                    row,
                    ok=False,
                    error_kind="not_started",
                    error=f"worker {handle.name} reconnected without this task; it had not started",
                )
            elif row is not None and row.state.active and row.attempt == slot.attempt:
                log.warning("worker %s came back without task %s; it is lost", handle.name, task_id)
                self.transitions.finish_attempt(
                    row,
                    ok=False,
                    lost=True,
                    error_kind="worker_lost",
                    error=f"worker {handle.name} reconnected but no longer had this task",
                )
        # what it runs that we do not expect (e.g. cancelled while it was away)
        for task_id, attempt in running:
            row = self.state.tasks.get(task_id)
            if (task_id, attempt) in queued and task_id in handle.running:
                handle.running[task_id].queued = True  # it waits there for a slot
            elif (
                task_id in handle.running
                and row is not None
                and row.state == TaskState.SCHEDULED
                and row.attempt == attempt
            ):
                # it started while we were not listening (or before a restart)
                self.transitions.set_state(row, TaskState.RUNNING)
                row.started_at = row.started_at or time.time()
                self.transitions.save_attempt(row, state=AttemptState.RUNNING, started_at=row.started_at)
                self.transitions.update(row)
            if task_id not in handle.running or row is None or row.state.terminal:
                handle.send(
                    protocol.encode(
                        {
                            "type": "cancel",
                            "task_id": task_id,
                            "attempt": attempt,
                            "reason": "no longer wanted by the server",
                            "grace": self.config.cancel_grace,
                        }
                    )
                )

    # ------------------------------------------------------------------ disconnect
    def disconnected(self, handle: WorkerHandle, link: WorkerLink) -> None:
        if handle.link is not link:
            return  # an old connection of a worker that already reconnected
        handle.link = None
        handle.state = "disconnected"
        handle.disconnected_at = time.time()
        self.events.changed(handle)
        grace = self.config.worker_grace
        log.warning(
            "worker %s disconnected; it has %g s to come back (%d task(s) on it)",
            handle.name,
            grace,
            len(handle.running),
        )
        self.start_grace(handle.id, grace)

    def start_grace(self, worker_id: str, grace: float) -> None:
        old = self._grace_timers.pop(worker_id, None)
        if old:
            old.cancel()
        self._grace_timers[worker_id] = asyncio.get_running_loop().call_later(
            grace, self.gone, worker_id, f"did not come back within {grace:g} s"
        )

    def gone(self, worker_id: str, why: str) -> None:
        """The worker will not come back: its tasks are retried or failed."""
        self._grace_timers.pop(worker_id, None)
        handle = self.state.workers.get(worker_id)
        if handle is None or handle.link is not None:
            return
        handle.state = "gone"
        for task_id, slot in list(handle.running.items()):
            handle.release(task_id)
            row = self.state.tasks.get(task_id)
            if row is not None and row.attempt == slot.attempt and row.state.active:
                self.transitions.finish_attempt(
                    row,
                    ok=False,
                    lost=True,
                    error_kind="worker_lost",
                    error=f"worker {handle.name} was lost while running this task: it {why}",
                )
        self.events.changed(handle)
        self.state.remove_worker(worker_id)
        self._kick()

    # ------------------------------------------------------------------ what the provider says
    def status(self, worker_id: str) -> dict[str, Any] | None:
        """Whether the engine knows the worker, and how it stands (None: never connected,
        or gone)."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return None
        return {"state": w.state, "idle_since": w.idle_since, "running": len(w.running), "name": w.name}

    def retire(self, worker_id: str, undo: bool = False) -> bool:
        """Stop placing tasks on an idle worker that is about to be removed; False when it
        holds tasks (it stays). ``undo``: it stays after all (its removal failed)."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return True
        if undo:
            if w.state == "draining" and w.link is not None:
                w.state = "connected"
                self.events.publish(w)
                self._kick()
            return True
        if w.running:
            return False
        if w.state == "connected":
            w.state = "draining"
            self.events.publish(w)
        return True

    def lost(self, worker_id: str, error_kind: str, error: str) -> list[str]:
        """The provider knows the worker is gone (its pod was killed, evicted, deleted): end
        the attempts on it now with ``error`` (each retried or failed per its policy) instead
        of waiting out the worker grace. The ids of the tasks it ran."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return []
        self._cancel_grace(worker_id)
        link, w.link = w.link, None
        if link is not None:
            link.close(error.splitlines()[0][:120])
        w.state = "gone"
        w.disconnected_at = w.disconnected_at or time.time()
        ended = []
        unstarted = {task_id for task_id, slot in w.running.items() if slot.queued}
        for task_id, slot in list(w.running.items()):
            w.release(task_id)
            row = self.state.tasks.get(task_id)
            if row is not None and row.attempt == slot.attempt and row.state.active:
                if task_id in unstarted:  # sent ahead, never started there: placed again, no retry used
                    why = f"worker {w.name} was lost before it started this task; it is placed again"
                    self.transitions.finish_attempt(row, ok=False, error_kind="not_started", error=why)
                elif error_kind in PREEMPTED_KINDS:  # the cluster took the node or pod back
                    self.transitions.preempt_lost(row, error)
                else:
                    self.transitions.finish_attempt(
                        row, ok=False, lost=True, error_kind=error_kind, error=error
                    )
                ended.append(task_id)
        if ended:
            log.warning("worker %s is gone (%s): %d task(s) ended", w.name, error_kind, len(ended))
        self.events.changed(w)
        self.state.remove_worker(worker_id)
        self._kick()
        return ended

    def listing(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.state.workers.values()]

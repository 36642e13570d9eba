"""Priority preemption, when the server allows it (``c.OrchApp.preemption``): evict
preemptible tasks of lower priority so that a waiting task fits (the choice is
:func:`jupyter_orch.core.preemption.plan`), and a worker's own notice that it is going
away (a Kubernetes eviction, a spot node reclaimed) taken the same way.

An evicted task gets the ``cancel`` message with ``preempt``: SIGTERM, ``should_preempt()``
turns true, and it has ``preemption_grace`` seconds to checkpoint and stop before SIGKILL.
Its attempt then ends ``preempted`` (however it ended: returned early, raised, killed),
uses up no retry, and the task is queued again to resume from its latest checkpoint
(:meth:`.transitions.Transitions.finish_attempt` reads ``state.preempting``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..core import protocol
from ..core.preemption import Eviction, Running, plan
from ..core.queue import PendingTask
from ..core.scheduler import WorkerCapacity
from ..core.states import TaskState
from .config import EngineConfig
from .state import EngineState
from .transitions import Transitions
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


class Preemptions:
    def __init__(self, state: EngineState, config: EngineConfig, transitions: Transitions) -> None:
        self.state = state
        self.config = config
        self.transitions = transitions

    def running(self) -> list[Running]:
        """Every started task on a connected worker, as the planner sees it."""
        out = []
        for worker in self.state.workers.values():
            if worker.state != "connected":
                continue
            for slot in worker.running.values():
                row = self.state.tasks.get(slot.task_id)
                if slot.queued or row is None or row.attempt != slot.attempt or row.state.terminal:
                    continue
                spec = row.spec
                out.append(
                    Running(
                        row.id,
                        worker.id,
                        spec.priority,
                        slot.resources,
                        slot.gpus,
                        row.started_at or 0.0,
                        spec.preemptible,
                    )
                )
        return out

    def check(self, waiting: Iterable[PendingTask], capacities: Sequence[WorkerCapacity]) -> list[Eviction]:
        """Evict what the waiting tasks (the queue's head, in the order they would be
        placed, less those no worker fits or a quota holds) need; the evictions made."""
        if not self.config.preemption:
            return []
        running = self.running()
        if not any(r.preemptible for r in running):
            return []
        under_way = {victim: for_task for victim, (for_task, _) in self.state.preempting.items()}
        evictions = plan(waiting, running, capacities, under_way=under_way)
        for eviction in evictions:
            worker = self.state.workers[eviction.worker_id]
            for victim in eviction.victims:
                self.evict(
                    worker,
                    victim,
                    f"preempted for task {eviction.for_task} of priority {eviction.priority}",
                    for_task=eviction.for_task,
                )
        return evictions

    def evict(
        self, worker: WorkerHandle, task_id: str, why: str, *, for_task: str = "", send: bool = True
    ) -> None:
        """Ask ``worker`` to stop ``task_id``'s attempt for a preemption (``send`` False: it
        is stopping it already)."""
        row = self.state.tasks.get(task_id)
        slot = worker.running.get(task_id)
        if row is None or slot is None or task_id in self.state.preempting:
            return
        grace = self.config.preemption_grace
        self.state.preempting[task_id] = (for_task, why)
        self.state.count("preemptions")
        log.info("task %s (attempt %d) on worker %s: %s", task_id, slot.attempt, worker.name, why)
        if send:
            worker.send(
                protocol.encode(
                    {
                        "type": "cancel",
                        "task_id": task_id,
                        "attempt": slot.attempt,
                        "reason": why,
                        "grace": grace,
                        "preempt": True,
                    }
                )
            )
        if row.state in (TaskState.SCHEDULED, TaskState.RUNNING):
            row.reason = f"{why}: asked to checkpoint and stop within {grace:g} s"
            self.transitions.publish(row)

    def worker_going(self, worker: WorkerHandle, why: str) -> None:
        """The worker says it is going away (its pod is evicted, its node reclaimed) and
        is stopping its tasks, with the grace it has: they are preempted, to resume
        elsewhere from their checkpoints. It takes nothing new."""
        if worker.state == "connected":
            worker.state = "draining"
        for task_id in list(worker.running):
            self.state.preempting.pop(task_id, None)  # the node's notice outranks a planned eviction
            self.evict(worker, task_id, f"preempted: {why}", send=False)

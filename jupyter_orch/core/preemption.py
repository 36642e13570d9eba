"""Priority preemption: which running tasks to evict so that a waiting task of higher
priority fits, when nothing else does. Pure: the engine gives the queue's head, what runs
where and the workers' capacity, and sends the evictions.

Rules: only a task submitted ``preemptible`` is ever evicted, only for a task of strictly
higher priority, and only on a worker where the waiting task could run at all (resources,
labels, image, its owner's right to the worker). On each worker the victims are taken
lowest priority first, then the most recently started (the least work lost), until the
waiting task fits; the worker needing the fewest victims wins. A worker with an eviction
under way is left alone until it is done, and so is a task that waits on one already: the
evicted tasks' slots go to it when they free up (it is first in line by its priority).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from .queue import PendingTask
from .resources import Resources
from .scheduler import WorkerCapacity, _fits_now, _static_mismatch

MAX_CONSIDERED = 32  # waiting tasks looked at per pass (the head of the queue)


@dataclass(frozen=True)
class Running:
    """A task holding a slot of ``worker_id``."""

    task_id: str
    worker_id: str
    priority: int
    resources: Resources
    gpus: tuple[int, ...] = ()
    started: float = 0.0
    preemptible: bool = False


@dataclass(frozen=True)
class Eviction:
    for_task: str
    priority: int  # the waiting task's
    worker_id: str
    victims: tuple[str, ...]


def _free(w: WorkerCapacity, victim: Running) -> WorkerCapacity:
    r = victim.resources
    return replace(
        w,
        slots_free=w.slots_free + 1,
        cpus_free=w.cpus_free + r.cpus,
        memory_free=w.memory_free + r.memory if w.memory_total else w.memory_free,
        gpus_free=w.gpus_free | frozenset(victim.gpus),
    )


def plan(
    waiting: Iterable[PendingTask],
    running: Sequence[Running],
    workers: Sequence[WorkerCapacity],
    *,
    under_way: Mapping[str, str] | None = None,
) -> list[Eviction]:
    """The evictions to make now for the waiting tasks (in the order they would be placed).
    ``under_way``: victim task id -> the task it makes room for, for evictions sent already."""
    under_way = under_way or {}
    candidates = [r for r in running if r.preemptible and r.task_id not in under_way]
    if not candidates:
        return []
    lowest = min(r.priority for r in candidates)
    busy_workers = {r.worker_id for r in running if r.task_id in under_way}
    served = set(under_way.values())
    by_worker: dict[str, list[Running]] = {}
    for r in candidates:
        by_worker.setdefault(r.worker_id, []).append(r)
    for victims in by_worker.values():
        victims.sort(key=lambda r: (r.priority, -r.started))
    out: list[Eviction] = []
    for considered, task in enumerate(waiting):
        if considered >= MAX_CONSIDERED:
            break
        if task.priority <= lowest:
            continue  # nothing below it to evict (the queue is not strictly by priority under fair share)
        if task.id in served:
            continue
        best: tuple[int, int, str, tuple[str, ...]] | None = None
        for w in workers:
            if not w.accepting or w.id in busy_workers or w.id not in by_worker:
                continue
            if _static_mismatch(task, w) is not None:
                continue
            room, chosen = w, []
            for victim in by_worker[w.id]:
                if victim.priority >= task.priority:
                    break  # sorted: the rest are not lower either
                room = _free(room, victim)
                chosen.append(victim)
                if _fits_now(task, room) is not None:
                    break
            if not chosen or _fits_now(task, room) is None:
                continue
            key = (len(chosen), sum(v.priority for v in chosen), w.id, tuple(v.task_id for v in chosen))
            if best is None or key[:3] < best[:3]:
                best = key
        if best is None:
            continue
        out.append(Eviction(task.id, task.priority, best[2], best[3]))
        busy_workers.add(best[2])
    return out

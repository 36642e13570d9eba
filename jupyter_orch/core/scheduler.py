"""The scheduler: a pure function from (pending tasks, workers with free capacity) to
assignments.

Order: higher ``priority`` first; within a priority, owners take turns (round-robin, the
owner with the oldest waiting task first) and each owner's tasks go FIFO, so one user's
thousand tasks cannot starve another's one. Placement filters workers on slots, CPUs,
memory, GPUs, GPU type, labels and image, then scores them: ``binpack`` (default) puts a
task where the fewest GPUs (then CPUs) stay free, keeping whole nodes free for big GPU
tasks; ``spread`` does the opposite. A task that no worker could hold even when idle is
reported in ``unplaceable`` with the reason, so it is never left pending silently.

A placement policy is a :class:`Placement` (``score`` of a task on a worker, lower is
better); the named ones are in ``PLACEMENTS``, and a deployment may configure its own
subclass (``c.OrchApp.scheduler_policy_class``).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .fairshare import FairShare
from .queue import FairQueue, PendingTask
from .resources import Gpu, format_memory

POLICIES = ("binpack", "spread")


@dataclass(frozen=True)
class WorkerCapacity:
    """A worker's totals and what is free now. ``image`` None = runs whatever it is given
    in its own environment (local and static workers); it then only takes tasks that do not
    ask for an image, unless ``any_image`` is set."""

    id: str
    slots_total: int
    slots_free: int
    cpus_total: float
    cpus_free: float
    memory_total: int = 0  # 0 = unknown/unlimited
    memory_free: int = 0
    gpus: tuple[Gpu, ...] = ()
    gpus_free: frozenset[int] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    any_image: bool = False
    accepting: bool = True  # False while draining or disconnected
    # GPU-less tasks it takes ahead of a free slot (prefetch: it queues them and starts each
    # when a slot frees, hiding the round trip to the server between short tasks)
    queue_free: int = 0
    # a user's own worker (registered with their token) runs only that user's tasks, one
    # registered for a group only its members' tasks; both None: a shared worker (the service's)
    owner: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Assignment:
    task_id: str
    worker_id: str
    gpus: tuple[int, ...] = ()
    queued: bool = False  # sent ahead: it waits on the worker for a slot


@dataclass
class Schedule:
    assignments: list[Assignment] = field(default_factory=list)
    # task id -> why no worker could ever run it (with the current workers)
    unplaceable: dict[str, str] = field(default_factory=dict)
    # task id -> why it waits although some worker could run it later
    waiting: dict[str, str] = field(default_factory=dict)
    # task id -> the quota that holds it back, in one sentence (only with fair share)
    blocked: dict[str, str] = field(default_factory=dict)


def order_tasks(tasks: Iterable[PendingTask]) -> list[PendingTask]:
    """Priority descending; round-robin across owners within a priority; FIFO per owner."""
    by_priority: dict[int, dict[str, deque[PendingTask]]] = defaultdict(lambda: defaultdict(deque))
    for task in sorted(tasks, key=lambda t: t.seq):
        by_priority[task.priority][task.owner].append(task)
    ordered: list[PendingTask] = []
    for priority in sorted(by_priority, reverse=True):
        queues = by_priority[priority]
        # owners in order of their oldest waiting task
        turn = deque(sorted(queues, key=lambda o: queues[o][0].seq))
        while turn:
            owner = turn.popleft()
            queue = queues[owner]
            ordered.append(queue.popleft())
            if queue:
                turn.append(owner)
    return ordered


_OTHERS = "another user's worker"


def usable_by(w: WorkerCapacity, task: PendingTask) -> bool:
    """Whether ``task``'s owner may use ``w``: a shared worker, their own, or their group's."""
    if w.group is not None:
        return w.group in task.groups
    return w.owner is None or w.owner == task.owner


def _static_mismatch(task: PendingTask, w: WorkerCapacity) -> str | None:
    """Why ``w`` could never run ``task``, even idle; None if it could."""
    if not usable_by(w, task):
        return _OTHERS
    r = task.resources
    if task.image is not None and not w.any_image and w.image != task.image:
        return f"image {task.image}"
    for key, value in r.labels.items():
        if w.labels.get(key) != value:
            return f"label {key}={value}"
    if r.cpus > w.cpus_total:
        return f"{r.cpus:g} cpus"
    if r.memory and w.memory_total and r.memory > w.memory_total:
        return f"{format_memory(r.memory)} memory"
    if r.gpus:
        matching = [g for g in w.gpus if g.matches(r.gpu_type)]
        if len(matching) < r.gpus:
            kind = f"{r.gpu_type} " if r.gpu_type else ""
            return f"{r.gpus} {kind}gpus"
    return None


def _fits_now(task: PendingTask, w: WorkerCapacity) -> tuple[int, ...] | None:
    """The GPU indices to use if ``task`` fits in ``w``'s free capacity now, else None."""
    r = task.resources
    if not w.accepting or w.slots_free < 1 or r.cpus > w.cpus_free + 1e-9:
        return None
    if r.memory and w.memory_total and r.memory > w.memory_free:
        return None
    if not r.gpus:
        return ()
    free = sorted(g.index for g in w.gpus if g.index in w.gpus_free and g.matches(r.gpu_type))
    if len(free) < r.gpus:
        return None
    return tuple(free[: r.gpus])


class Placement:
    """Where a task goes among the workers that can run it now: the lowest ``score``.
    Subclass it and set ``c.OrchApp.scheduler_policy_class`` for a policy of your own."""

    name = "binpack"

    def score(self, task: PendingTask, worker: WorkerCapacity) -> tuple[float, ...]:
        """Lower is better. ``binpack``: where the fewest GPUs (then CPUs, slots) stay free."""
        gpus_left = len(worker.gpus_free) - task.resources.gpus
        cpus_left = worker.cpus_free - task.resources.cpus
        return (_gpu_penalty(task, worker), gpus_left, cpus_left, worker.slots_free)


class Spread(Placement):
    """Where the most GPUs (then CPUs, slots) stay free."""

    name = "spread"

    def score(self, task: PendingTask, worker: WorkerCapacity) -> tuple[float, ...]:
        gpus_left = len(worker.gpus_free) - task.resources.gpus
        cpus_left = worker.cpus_free - task.resources.cpus
        return (_gpu_penalty(task, worker), -gpus_left, -cpus_left, -worker.slots_free)


PLACEMENTS: dict[str, type[Placement]] = {"binpack": Placement, "spread": Spread}


def _gpu_penalty(task: PendingTask, worker: WorkerCapacity) -> int:
    # CPU-only tasks should stay off GPU workers when they can
    return 1 if (not task.resources.gpus and worker.gpus) else 0


def placement(policy: str | Placement) -> Placement:
    """The policy an engine was configured with: a name of ``PLACEMENTS`` or an instance."""
    if isinstance(policy, Placement):
        return policy
    cls = PLACEMENTS.get(policy)
    if cls is None:
        raise ValueError(f"unknown scheduling policy {policy!r}; known: {', '.join(POLICIES)}")
    return cls()


def _models(w: WorkerCapacity, gpus: tuple[int, ...]) -> list[str]:
    """The model names of the GPUs ``gpus`` of ``w``."""
    by_index = {g.index: g.model or "" for g in w.gpus}
    return [by_index.get(i, "") for i in gpus]


def _take(w: WorkerCapacity, task: PendingTask, gpus: tuple[int, ...]) -> WorkerCapacity:
    r = task.resources
    return replace(
        w,
        slots_free=w.slots_free - 1,
        cpus_free=w.cpus_free - r.cpus,
        memory_free=w.memory_free - r.memory if w.memory_total else w.memory_free,
        gpus_free=w.gpus_free - frozenset(gpus),
    )


def explain_unplaceable(task: PendingTask, workers: Sequence[WorkerCapacity]) -> str:
    # another user's own worker is not named: it is none of this user's business
    mine = [w for w in workers if usable_by(w, task)]
    if not mine:
        return (
            "no workers are connected" if not workers else "no shared worker, nor one of yours, is connected"
        )
    reasons = sorted({m for w in mine if (m := _static_mismatch(task, w))})
    return "no worker has " + " / ".join(reasons) + f" (needs {task.resources.describe()})"


def _ordered(pending: Iterable[PendingTask], fair: FairShare | None) -> Iterator[PendingTask]:
    if fair is None:
        return iter(pending) if isinstance(pending, FairQueue) else iter(order_tasks(pending))

    def start(task: PendingTask) -> float:
        return fair.start(task.owner, task.groups, gpus=bool(task.resources.gpus))

    queue = pending if isinstance(pending, FairQueue) else FairQueue.of(pending)
    return queue.weighted(start, fair.step)


def schedule(
    pending: Iterable[PendingTask],
    workers: Sequence[WorkerCapacity],
    policy: str | Placement = "binpack",
    fair: FairShare | None = None,
) -> Schedule:
    """Assign as many pending tasks as fit, in fair order. Pure: inputs are not changed
    (``fair``, when given, counts what this round placed). With ``fair``
    (:mod:`.fairshare`): users in fair-share order, and quotas hold tasks back (in
    ``blocked``, with the sentence that says why)."""
    place = placement(policy)
    result = Schedule()
    free = {w.id: w for w in workers}
    slots_left = sum(w.slots_free + w.queue_free for w in workers if w.accepting)
    ordered = _ordered(pending, fair)
    possible_for: dict[tuple[object, ...], list[WorkerCapacity]] = {}
    owned = any(w.owner is not None or w.group is not None for w in workers)  # then it depends on who asks
    for task in ordered:
        r = task.resources
        key: tuple[object, ...] = (
            r.cpus,
            r.memory,
            r.gpus,
            r.gpu_type,
            tuple(sorted(r.labels.items())),
            task.image,
        )
        if owned:
            key += (task.owner, task.groups)
        possible = possible_for.get(key)
        if possible is None:
            possible = possible_for[key] = [w for w in workers if _static_mismatch(task, w) is None]
        if not possible:
            result.unplaceable[task.id] = explain_unplaceable(task, workers)
            continue
        best: tuple[tuple[float, ...], WorkerCapacity, tuple[int, ...]] | None = None
        held_back: str | None = None
        for w in possible:
            current = free[w.id]
            gpus = _fits_now(task, current)
            if gpus is None:
                continue
            if fair is not None and (why := fair.blocked(task, _models(current, gpus))) is not None:
                held_back = why
                continue
            score = place.score(task, current)
            if best is None or score < best[0]:
                best = (score, current, gpus)
        if best is None and held_back is not None:
            result.blocked[task.id] = held_back
            continue
        if best is None:
            ahead = [
                free[w.id]
                for w in possible
                if not r.gpus and free[w.id].accepting and free[w.id].queue_free > 0
            ]
            if ahead:
                chosen = max(ahead, key=lambda w: w.queue_free)
                free[chosen.id] = replace(chosen, queue_free=chosen.queue_free - 1)
                result.assignments.append(Assignment(task.id, chosen.id, (), queued=True))
                slots_left -= 1
                if slots_left <= 0:
                    break
                continue
            result.waiting[task.id] = f"waiting for a free slot ({task.resources.describe()})"
            continue
        _, chosen, gpus = best
        if fair is not None:
            fair.took(task, _models(chosen, gpus))
        free[chosen.id] = _take(chosen, task, gpus)
        result.assignments.append(Assignment(task.id, chosen.id, gpus))
        slots_left -= 1
        if slots_left <= 0:
            break  # nothing more can be placed this round; the rest keep their order
    return result

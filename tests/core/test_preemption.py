"""Which running tasks a waiting task of higher priority may evict (pure rules)."""

from __future__ import annotations

from jupyter_orch.core.preemption import Running, plan
from jupyter_orch.core.queue import PendingTask
from jupyter_orch.core.resources import Gpu, Resources
from jupyter_orch.core.scheduler import WorkerCapacity


def gpu_worker(wid: str, free: set[int], n: int = 2, slots_free: int = 0, **kw: object) -> WorkerCapacity:
    return WorkerCapacity(
        id=wid,
        slots_total=n,
        slots_free=slots_free,
        cpus_total=8,
        cpus_free=8 - (n - slots_free),
        gpus=tuple(Gpu(i, model="A100") for i in range(n)),
        gpus_free=frozenset(free),
        **kw,  # type: ignore[arg-type]
    )


def waiting(tid: str, priority: int, gpus: int = 1, owner: str = "alice", **kw: object) -> PendingTask:
    return PendingTask(tid, owner, priority, 1, Resources(cpus=1, gpus=gpus), **kw)  # type: ignore[arg-type]


def running(
    tid: str, wid: str, priority: int, gpus: tuple[int, ...], started: float = 0, preemptible: bool = True
) -> Running:
    return Running(tid, wid, priority, Resources(cpus=1, gpus=len(gpus)), gpus, started, preemptible)


def test_a_higher_priority_task_evicts_the_lowest_and_newest() -> None:
    workers = [gpu_worker("w1", set())]
    busy = [running("old", "w1", 0, (0,), started=1), running("new", "w1", 0, (1,), started=2)]
    [eviction] = plan([waiting("urgent", 10)], busy, workers)
    assert (eviction.for_task, eviction.worker_id, eviction.victims) == ("urgent", "w1", ("new",))


def test_only_preemptible_and_strictly_lower_tasks_are_evicted() -> None:
    workers = [gpu_worker("w1", set())]
    assert (
        plan(
            [waiting("t", 5)],
            [running("a", "w1", 0, (0,), preemptible=False), running("b", "w1", 0, (1,), preemptible=False)],
            workers,
        )
        == []
    )
    assert plan([waiting("t", 5)], [running("a", "w1", 5, (0,)), running("b", "w1", 7, (1,))], workers) == []
    [eviction] = plan([waiting("t", 5)], [running("a", "w1", 4, (0,)), running("b", "w1", 7, (1,))], workers)
    assert eviction.victims == ("a",)


def test_a_two_gpu_task_evicts_two_and_prefers_the_worker_needing_fewer() -> None:
    workers = [gpu_worker("w1", set()), gpu_worker("w2", {0}, slots_free=1)]
    busy = [
        running("a", "w1", 0, (0,)),
        running("b", "w1", 0, (1,)),
        running("c", "w2", 0, (1,)),
    ]
    [eviction] = plan([waiting("big", 3, gpus=2)], busy, workers)
    assert (eviction.worker_id, eviction.victims) == ("w2", ("c",))


def test_nothing_is_evicted_for_a_task_that_could_never_run_there() -> None:
    workers = [gpu_worker("w1", set(), labels={"zone": "a"})]
    busy = [running("a", "w1", 0, (0,)), running("b", "w1", 0, (1,))]
    task = PendingTask("t", "alice", 9, 1, Resources(cpus=1, gpus=1, labels={"zone": "b"}))
    assert plan([task], busy, workers) == []
    assert plan([waiting("huge", 9, gpus=4)], busy, workers) == []
    # another user's own worker is not for alice to take over
    theirs = [gpu_worker("w1", set(), owner="bob")]
    assert plan([waiting("t", 9)], busy, theirs) == []


def test_evictions_under_way_are_not_repeated() -> None:
    workers = [gpu_worker("w1", set()), gpu_worker("w2", set())]
    busy = [running("a", "w1", 0, (0,)), running("b", "w1", 0, (1,)), running("c", "w2", 0, (0,))]
    first = plan([waiting("t1", 5), waiting("t2", 5)], busy, workers)
    assert [(e.for_task, e.worker_id) for e in first] == [("t1", "w1"), ("t2", "w2")]
    # t1's victim is on its way out: t1 waits for it, t2 gets w2, nothing more on w1
    again = plan([waiting("t1", 5), waiting("t2", 5)], busy, workers, under_way={"b": "t1"})
    assert [(e.for_task, e.worker_id, e.victims) for e in again] == [("t2", "w2", ("c",))]


def test_a_draining_worker_is_not_a_target() -> None:
    workers = [gpu_worker("w1", set(), accepting=False)]
    assert plan([waiting("t", 5)], [running("a", "w1", 0, (0,)), running("b", "w1", 0, (1,))], workers) == []

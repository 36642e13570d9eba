"""The scheduler: fair order, placement filters and scores, reasons, purity, no over-commit."""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from collections.abc import Sequence

import pytest

from jupyter_orch.core.queue import FairQueue, PendingTask
from jupyter_orch.core.resources import Gpu, Resources
from jupyter_orch.core.scheduler import (
    POLICIES,
    Assignment,
    Placement,
    Schedule,
    Spread,
    WorkerCapacity,
    order_tasks,
    placement,
    schedule,
)

GI = 2**30
_seq = iter(range(10**9))


def task(
    task_id: str,
    owner: str = "alice",
    *,
    priority: int = 0,
    seq: int | None = None,
    cpus: float = 1.0,
    memory: int = 0,
    gpus: int = 0,
    gpu_type: str | None = None,
    labels: dict[str, str] | None = None,
    image: str | None = None,
) -> PendingTask:
    res = Resources(cpus=cpus, memory=memory, gpus=gpus, gpu_type=gpu_type, labels=labels or {})
    return PendingTask(task_id, owner, priority, next(_seq) if seq is None else seq, res, image)


def worker(
    worker_id: str,
    *,
    slots: int = 4,
    slots_free: int | None = None,
    cpus: float = 8,
    cpus_free: float | None = None,
    memory: int = 0,
    memory_free: int | None = None,
    gpus: int = 0,
    model: str = "NVIDIA A100-SXM4-80GB",
    models: Sequence[str] | None = None,
    gpus_free: Sequence[int] | None = None,
    labels: dict[str, str] | None = None,
    image: str | None = None,
    any_image: bool = False,
    accepting: bool = True,
    owner: str | None = None,
    group: str | None = None,
) -> WorkerCapacity:
    models = list(models) if models is not None else [model] * gpus
    gpu_list = tuple(Gpu(index=i, uuid=f"GPU-{worker_id}-{i}", model=m) for i, m in enumerate(models))
    return WorkerCapacity(
        id=worker_id,
        slots_total=slots,
        slots_free=slots if slots_free is None else slots_free,
        cpus_total=cpus,
        cpus_free=cpus if cpus_free is None else cpus_free,
        memory_total=memory,
        memory_free=memory if memory_free is None else memory_free,
        gpus=gpu_list,
        gpus_free=frozenset(range(len(gpu_list)) if gpus_free is None else gpus_free),
        labels=labels or {},
        image=image,
        any_image=any_image,
        accepting=accepting,
        owner=owner,
        group=group,
    )


def placed(result: Schedule) -> dict[str, str]:
    return {a.task_id: a.worker_id for a in result.assignments}


def placed_ids(result: Schedule) -> list[str]:
    return [a.task_id for a in result.assignments]


# ---------------------------------------------------------------------------- order
def test_order_tasks_priority_then_turns_then_fifo() -> None:
    tasks = [
        task("a1", "alice", seq=1),
        task("a2", "alice", seq=2),
        task("a3", "alice", seq=3),
        task("b1", "bob", seq=4),
        task("c-urgent", "carol", seq=5, priority=9),
        task("b2", "bob", seq=6),
        task("low", "dave", seq=0, priority=-1),
    ]
    expected = ["c-urgent", "a1", "b1", "a2", "b2", "a3", "low"]
    assert [t.id for t in order_tasks(tasks)] == expected
    rng = random.Random(3)
    for _ in range(20):
        shuffled = tasks[:]
        rng.shuffle(shuffled)
        assert [t.id for t in order_tasks(shuffled)] == expected


def test_order_tasks_empty() -> None:
    assert order_tasks([]) == []


# -------------------------------------------------------------------------- basics
def test_nothing_to_do() -> None:
    result = schedule([], [worker("w")])
    assert result == Schedule()


def test_no_workers_makes_every_task_unplaceable() -> None:
    result = schedule([task("t")], [])
    assert result.assignments == []
    assert result.unplaceable == {"t": "no workers are connected"}


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="spreadd"):
        schedule([task("t")], [worker("w")], policy="spreadd")
    with pytest.raises(ValueError):
        schedule([], [], policy="random")
    assert set(POLICIES) == {"binpack", "spread"}


@pytest.mark.parametrize("policy", POLICIES)
def test_places_what_fits_in_fair_order(policy: str) -> None:
    tasks = [task(f"t{i}") for i in range(6)]
    result = schedule(tasks, [worker("w", slots=4)], policy)
    assert placed_ids(result) == ["t0", "t1", "t2", "t3"]
    assert result.unplaceable == {}


def test_higher_priority_wins_the_only_slot() -> None:
    tasks = [task("old", seq=1), task("urgent", "bob", seq=2, priority=5)]
    assert placed_ids(schedule(tasks, [worker("w", slots=1)])) == ["urgent"]


def test_fifo_within_an_owner() -> None:
    tasks = [task("second", seq=2), task("first", seq=1), task("third", seq=3)]
    assert placed_ids(schedule(tasks, [worker("w", slots=2)])) == ["first", "second"]


def test_round_robin_in_one_pass() -> None:
    tasks = [task(f"a{i}", "alice", seq=i) for i in range(1000)] + [task("b", "bob", seq=1000)]
    result = schedule(tasks, [worker("w", slots=2, cpus=64)])
    assert placed_ids(result) == ["a0", "b"]


@pytest.mark.parametrize("as_queue", [False, True])
def test_a_single_task_is_placed_within_two_assignments_when_one_slot_frees_up(as_queue: bool) -> None:
    tasks = [task(f"a{i}", "alice", seq=i) for i in range(1000)] + [task("b", "bob", seq=1000)]
    pending: FairQueue | list[PendingTask]
    if as_queue:
        pending = FairQueue()
        for t in tasks:
            pending.push(t)
        rounds = []
        for _ in range(2):  # the engine: one slot frees, schedule, remove what was placed
            result = schedule(pending, [worker("w", slots=1, cpus=64)])
            rounds += placed_ids(result)
            for task_id in placed_ids(result):
                pending.remove(task_id)
        assert "b" in rounds
    else:
        # the stateless function sees one pass: bob's task is second in line
        result = schedule(tasks, [worker("w", slots=2, cpus=64)])
        assert placed_ids(result)[:2] == ["a0", "b"]


def test_a_fair_queue_gives_the_same_schedule_as_a_list() -> None:
    rng = random.Random(11)
    for _ in range(50):
        tasks = [
            task(
                f"t{i}", rng.choice("abc"), seq=i, priority=rng.choice([0, 1]), gpus=rng.choice([0, 0, 1, 2])
            )
            for i in range(30)
        ]
        workers = [worker("g", gpus=4, slots=5), worker("c", slots=3)]
        q = FairQueue()
        for t in reversed(tasks):
            q.push(t)
        assert schedule(q, workers) == schedule(tasks, workers)


@pytest.mark.parametrize("as_queue", [False, True])
def test_a_retry_goes_before_its_owners_later_tasks(as_queue: bool) -> None:
    later = [task(f"later{i}", "alice", seq=10 + i) for i in range(3)]
    retry = task("retried", "alice", seq=1)  # submitted first, failed, pending again
    pending: FairQueue | list[PendingTask] = [*later, retry]
    if as_queue:
        q = FairQueue()
        for t in pending:
            q.push(t)
        pending = q
    assert placed_ids(schedule(pending, [worker("w", slots=2)])) == ["retried", "later0"]


def test_a_task_pushed_back_into_a_queue_is_placed_once() -> None:
    q = FairQueue()
    t = task("t", seq=1)
    q.push(t)
    q.push(task("u", seq=2))
    assert q.remove("t") is t
    q.push(t)  # the very same object comes back (a retry)
    result = schedule(q, [worker("w", slots=8)])
    assert sorted(placed_ids(result)) == ["t", "u"]


# ------------------------------------------------------------------------ GPU policy
def test_binpack_keeps_a_whole_node_free_for_a_big_task() -> None:
    workers = [worker("full", gpus=4), worker("half", gpus=4, gpus_free=[2, 3])]
    tasks = [task("small", gpus=1, seq=1), task("big", gpus=4, seq=2)]
    result = schedule(tasks, workers, "binpack")
    assert placed(result) == {"small": "half", "big": "full"}
    by_task = {a.task_id: a.gpus for a in result.assignments}
    assert by_task["small"] == (2,)
    assert by_task["big"] == (0, 1, 2, 3)


def test_binpack_fills_one_idle_node_before_the_next() -> None:
    workers = [worker("n1", gpus=4), worker("n2", gpus=4)]
    tasks = [task("s1", gpus=1, seq=1), task("s2", gpus=1, seq=2), task("big", gpus=4, seq=3)]
    result = schedule(tasks, workers, "binpack")
    assignments = placed(result)
    assert assignments["s1"] == assignments["s2"]
    assert assignments["big"] != assignments["s1"]
    assert result.waiting == {}


def test_spread_spreads_gpu_tasks() -> None:
    workers = [worker("n1", gpus=4), worker("n2", gpus=4)]
    tasks = [task("s1", gpus=1, seq=1), task("s2", gpus=1, seq=2), task("big", gpus=4, seq=3)]
    result = schedule(tasks, workers, "spread")
    assignments = placed(result)
    assert {assignments["s1"], assignments["s2"]} == {"n1", "n2"}
    assert "big" not in assignments
    assert "big" in result.waiting
    assert "big" not in result.unplaceable


def test_spread_prefers_the_emptiest_node() -> None:
    workers = [worker("busy", gpus=4, gpus_free=[3]), worker("idle", gpus=4)]
    assert placed(schedule([task("t", gpus=1)], workers, "spread")) == {"t": "idle"}
    assert placed(schedule([task("t", gpus=1)], workers, "binpack")) == {"t": "busy"}


def test_spread_for_cpu_tasks() -> None:
    workers = [worker("a", cpus=8, cpus_free=2), worker("b", cpus=8)]
    assert placed(schedule([task("t")], workers, "spread")) == {"t": "b"}
    assert placed(schedule([task("t")], workers, "binpack")) == {"t": "a"}


@pytest.mark.parametrize("policy", POLICIES)
def test_cpu_tasks_avoid_gpu_workers(policy: str) -> None:
    workers = [worker("gpu", gpus=8, cpus=64), worker("cpu", cpus=4, cpus_free=2)]
    result = schedule([task("t1"), task("t2")], workers, policy)
    assert placed(result) == {"t1": "cpu", "t2": "cpu"}


@pytest.mark.parametrize("policy", POLICIES)
def test_cpu_tasks_use_a_gpu_worker_when_no_cpu_worker_is_free(policy: str) -> None:
    workers = [worker("gpu", gpus=8, cpus=64), worker("cpu", slots=1)]
    result = schedule([task("t1", seq=1), task("t2", seq=2)], workers, policy)
    assert placed(result) == {"t1": "cpu", "t2": "gpu"}
    assert all(a.gpus == () for a in result.assignments)


def test_gpu_indices_are_free_and_distinct() -> None:
    w = worker("w", gpus=4, gpus_free=[1, 3], slots=8)
    result = schedule([task("t", gpus=2)], [w])
    assert result.assignments == [Assignment("t", "w", (1, 3))]
    result = schedule([task("a", gpus=2, seq=1), task("b", gpus=2, seq=2)], [worker("w", gpus=4)])
    gpus = [a.gpus for a in result.assignments]
    assert sorted(gpus[0] + gpus[1]) == [0, 1, 2, 3]


def test_gpu_type_picks_matching_gpus() -> None:
    w = worker("w", models=["NVIDIA A100", "NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"])
    result = schedule([task("t", gpus=2, gpu_type="h100")], [w])
    assert result.assignments == [Assignment("t", "w", (1, 2))]
    result = schedule([task("t", gpus=1, gpu_type="A100")], [worker("w2", gpus=2, gpus_free=[1])])
    assert result.assignments == [Assignment("t", "w2", (1,))]


# ------------------------------------------------------------------------ filters
def test_cpus() -> None:
    result = schedule([task("t", cpus=4)], [worker("w", cpus=8, cpus_free=2)])
    assert result.assignments == [] and "t" in result.waiting
    result = schedule([task("t", cpus=4)], [worker("w", cpus=2)])
    assert "4 cpus" in result.unplaceable["t"]
    assert placed(schedule([task("t", cpus=2)], [worker("w", cpus=2)])) == {"t": "w"}
    assert placed(schedule([task("t", cpus=0.5)], [worker("w", cpus=1, cpus_free=0.5)])) == {"t": "w"}


def test_cpus_are_consumed_within_a_pass() -> None:
    tasks = [task(f"t{i}", cpus=3, seq=i) for i in range(3)]
    result = schedule(tasks, [worker("w", cpus=8, slots=10)])
    assert placed_ids(result) == ["t0", "t1"]
    assert "t2" in result.waiting


def test_memory() -> None:
    w = worker("w", memory=32 * GI, memory_free=8 * GI)
    result = schedule([task("t", memory=16 * GI)], [w])
    assert "t" in result.waiting
    result = schedule([task("t", memory=64 * GI)], [w])
    assert "64Gi memory" in result.unplaceable["t"]
    assert placed(schedule([task("t", memory=8 * GI)], [w])) == {"t": "w"}
    # two tasks of 8Gi: the second finds the memory taken
    result = schedule([task("a", memory=8 * GI, seq=1), task("b", memory=8 * GI, seq=2)], [w])
    assert placed_ids(result) == ["a"] and "b" in result.waiting


def test_unknown_worker_memory_is_unlimited() -> None:
    assert placed(schedule([task("t", memory=2**50)], [worker("w", memory=0)])) == {"t": "w"}


def test_gpus() -> None:
    result = schedule([task("t", gpus=4)], [worker("w", gpus=2), worker("cpu")])
    assert "4 gpus" in result.unplaceable["t"]
    assert result.assignments == []
    result = schedule([task("t", gpus=2)], [worker("w", gpus=2, gpus_free=[0])])
    assert "t" in result.waiting and "t" not in result.unplaceable


def test_gpu_type() -> None:
    result = schedule([task("t", gpus=1, gpu_type="H100")], [worker("w", gpus=8, model="NVIDIA A100")])
    assert "1 H100 gpus" in result.unplaceable["t"]
    w = worker("w", models=["A100", "H100"])
    result = schedule([task("t", gpus=2, gpu_type="H100")], [w])
    assert "2 H100 gpus" in result.unplaceable["t"]


def test_labels() -> None:
    workers = [worker("eu", labels={"zone": "eu", "disk": "ssd"}), worker("us", labels={"zone": "us"})]
    assert placed(schedule([task("t", labels={"zone": "eu"})], workers)) == {"t": "eu"}
    assert placed(schedule([task("t", labels={"zone": "us"})], workers)) == {"t": "us"}
    assert placed(schedule([task("t", labels={"zone": "eu", "disk": "ssd"})], workers)) == {"t": "eu"}
    result = schedule([task("t", labels={"zone": "asia"})], workers)
    assert "label zone=asia" in result.unplaceable["t"]
    result = schedule([task("t", labels={"zone": "us", "disk": "ssd"})], workers)
    assert "t" in result.unplaceable


def test_images() -> None:
    plain = worker("plain")  # runs in its own environment
    pod = worker("pod", image="pytorch:2.3")
    anything = worker("any", any_image=True)
    assert placed(schedule([task("t", image="pytorch:2.3")], [plain, pod])) == {"t": "pod"}
    assert placed(schedule([task("t", image="jax:0.4")], [plain, anything])) == {"t": "any"}
    result = schedule([task("t", image="jax:0.4")], [plain, pod])
    assert "image jax:0.4" in result.unplaceable["t"]
    # a task with no image may run on any worker
    assert placed(schedule([task("t")], [plain])) == {"t": "plain"}


def test_not_accepting_workers_get_nothing() -> None:
    draining = worker("draining", accepting=False, gpus=4)
    result = schedule([task("a"), task("b", gpus=1)], [draining])
    assert result.assignments == []
    # they could run it once accepting again: waiting, not unplaceable
    assert set(result.waiting) == {"a", "b"}
    assert result.unplaceable == {}
    result = schedule([task("a")], [draining, worker("open")])
    assert placed(result) == {"a": "open"}


def test_full_workers_leave_tasks_waiting_and_still_explain_impossible_ones() -> None:
    full = worker("full", slots=2, slots_free=0, gpus=2)
    result = schedule([task("cpu"), task("gpu", gpus=1), task("huge", gpus=8)], [full])
    assert result.assignments == []
    assert set(result.waiting) == {"cpu", "gpu"}
    assert set(result.unplaceable) == {"huge"}
    assert "waiting for a free slot" in result.waiting["cpu"]


def test_unplaceable_reason_names_every_missing_thing_and_the_need() -> None:
    workers = [
        worker("a", gpus=2, labels={"zone": "us"}, any_image=True),
        worker("b", gpus=8, labels={"zone": "eu"}, any_image=True),
        worker("c", gpus=8, labels={"zone": "us"}, image="other:1"),
    ]
    result = schedule([task("t", gpus=4, labels={"zone": "us"}, image="mine:1")], workers)
    assert result.unplaceable["t"] == (
        "no worker has 4 gpus / image mine:1 / label zone=us (needs 1 cpu, 4 gpu, zone=us)"
    )


def test_unplaceable_tasks_do_not_block_others() -> None:
    tasks = [task("impossible", gpus=16, seq=1), task("fine", seq=2)]
    result = schedule(tasks, [worker("w", slots=1, gpus=1)])
    assert placed_ids(result) == ["fine"]
    assert set(result.unplaceable) == {"impossible"}


def test_a_task_that_does_not_fit_now_lets_a_smaller_one_pass() -> None:
    tasks = [task("big", gpus=4, seq=1), task("small", gpus=1, seq=2)]
    result = schedule(tasks, [worker("w", gpus=4, gpus_free=[0, 1])])
    assert placed_ids(result) == ["small"]
    assert set(result.waiting) == {"big"}


# ---------------------------------------------------------------------------- purity
def test_inputs_are_not_changed() -> None:
    tasks = [
        task(f"t{i}", rng_owner, gpus=g, memory=GI, labels={"k": "v"})
        for i, (rng_owner, g) in enumerate([("a", 0), ("b", 1), ("a", 2), ("c", 0)])
    ]
    workers = [
        worker("w1", gpus=4, memory=4 * GI, labels={"k": "v"}),
        worker("w2", slots=1, labels={"k": "v"}),
    ]
    tasks_before, workers_before = copy.deepcopy(tasks), copy.deepcopy(workers)
    pending = list(tasks)
    worker_list = list(workers)
    first = schedule(pending, worker_list)
    assert len(first.assignments) == 4
    assert pending == tasks_before and worker_list == workers_before
    assert [id(t) for t in pending] == [id(t) for t in tasks]
    # same inputs, same answer
    assert schedule(pending, worker_list) == first


def test_a_fair_queue_is_not_changed() -> None:
    q = FairQueue()
    for i in range(10):
        q.push(task(f"t{i}", "ab"[i % 2], seq=i))
    q.remove("t0")
    before = [t.id for t in q]
    result = schedule(q, [worker("w", slots=3)])
    assert len(result.assignments) == 3
    assert [t.id for t in q] == before
    assert len(q) == 9


# -------------------------------------------------------------- property: no over-commit
MODELS = ["NVIDIA A100", "NVIDIA H100", "Tesla T4"]


def _random_worker(rng: random.Random, i: int) -> WorkerCapacity:
    n_gpus = rng.choice([0, 0, 1, 2, 4, 8])
    models = [rng.choice(MODELS) for _ in range(n_gpus)]
    slots = rng.randrange(0, 6)
    cpus = rng.choice([1, 2, 4, 8, 16])
    memory = rng.choice([0, 4 * GI, 16 * GI, 64 * GI])
    return worker(
        f"w{i}",
        slots=slots,
        slots_free=rng.randrange(0, slots + 1),
        cpus=cpus,
        cpus_free=rng.choice([0, 0.5, cpus / 2, cpus]),
        memory=memory,
        memory_free=rng.randrange(0, memory + 1) if memory else 0,
        models=models,
        gpus_free=[g for g in range(n_gpus) if rng.random() < 0.7],
        labels=rng.choice([{}, {"zone": "eu"}, {"zone": "us", "disk": "ssd"}]),
        image=rng.choice([None, None, "img:1"]),
        any_image=rng.random() < 0.1,
        accepting=rng.random() < 0.85,
    )


def _random_task(rng: random.Random, i: int) -> PendingTask:
    gpus = rng.choice([0, 0, 0, 1, 1, 2, 4, 9])
    return task(
        f"t{i}",
        rng.choice(["alice", "bob", "carol"]),
        seq=i,
        priority=rng.choice([0, 0, 1]),
        cpus=rng.choice([0, 0.25, 0.5, 1, 2, 3, 8, 32]),
        memory=rng.choice([0, 0, GI, 8 * GI, 100 * GI]),
        gpus=gpus,
        gpu_type=rng.choice([None, None, "A100", "h100", "T4"]) if gpus else None,
        labels=rng.choice([{}, {}, {"zone": "eu"}, {"disk": "ssd"}]),
        image=rng.choice([None, None, None, "img:1", "img:2"]),
    )


def _could_ever_run(t: PendingTask, w: WorkerCapacity) -> bool:
    r = t.resources
    if t.image is not None and not w.any_image and w.image != t.image:
        return False
    if any(w.labels.get(k) != v for k, v in r.labels.items()):
        return False
    if r.cpus > w.cpus_total:
        return False
    if r.memory and w.memory_total and r.memory > w.memory_total:
        return False
    matching = [g for g in w.gpus if r.gpu_type is None or r.gpu_type.lower() in g.model.lower()]
    return len(matching) >= r.gpus


@pytest.mark.parametrize("policy", POLICIES)
def test_no_worker_is_ever_over_committed(policy: str) -> None:
    rng = random.Random(f"overcommit-{policy}")
    for _ in range(400):
        workers = [_random_worker(rng, i) for i in range(rng.randrange(0, 6))]
        tasks = [_random_task(rng, i) for i in range(rng.randrange(0, 40))]
        by_id = {t.id: t for t in tasks}
        wmap = {w.id: w for w in workers}
        result = schedule(tasks, workers, policy)

        # every task is in at most one bucket, and each bucket holds known tasks
        buckets = [placed_ids(result), list(result.unplaceable), list(result.waiting)]
        flat = [x for b in buckets for x in b]
        assert len(flat) == len(set(flat))
        assert set(flat) <= set(by_id)

        per_worker: dict[str, list[Assignment]] = defaultdict(list)
        for a in result.assignments:
            per_worker[a.worker_id].append(a)
        for wid, assigned in per_worker.items():
            w = wmap[wid]
            ts = [by_id[a.task_id] for a in assigned]
            assert w.accepting
            assert len(assigned) <= w.slots_free
            assert sum(t.resources.cpus for t in ts) <= w.cpus_free + 1e-6
            if w.memory_total:
                assert sum(t.resources.memory for t in ts) <= w.memory_free
            used = [g for a in assigned for g in a.gpus]
            assert len(used) == len(set(used)), "a GPU given twice"
            assert set(used) <= set(w.gpus_free)
            models = {g.index: g.model for g in w.gpus}
            for a, t in zip(assigned, ts, strict=True):
                assert len(a.gpus) == t.resources.gpus
                assert _could_ever_run(t, w)
                for g in a.gpus:
                    assert g in models
                    if t.resources.gpu_type:
                        assert t.resources.gpu_type.lower() in models[g].lower()

        for task_id in result.unplaceable:
            assert not any(_could_ever_run(by_id[task_id], w) for w in workers)
        for task_id in result.waiting:
            assert any(_could_ever_run(by_id[task_id], w) for w in workers)
        # with a free slot left nowhere to be found, nobody is forgotten: every task is in a bucket
        total_free = sum(w.slots_free for w in workers if w.accepting)
        if len(result.assignments) < total_free:
            assert set(flat) == set(by_id)


def test_a_placement_of_ones_own_chooses_the_worker():
    class FewestSlotsLast(Placement):
        def score(self, task, w):
            return (-w.slots_free,)  # the emptiest worker first, whatever binpack says

    tasks = [task("t")]
    workers = [worker("small", slots=1), worker("big", slots=4)]
    assert [a.worker_id for a in schedule(tasks, workers).assignments] == ["small"]  # binpack
    assert [a.worker_id for a in schedule(tasks, workers, FewestSlotsLast()).assignments] == ["big"]
    assert [a.worker_id for a in schedule(tasks, workers, "spread").assignments] == ["big"]
    assert placement("spread").name == "spread" and isinstance(placement(Spread()), Spread)


# ---------------------------------------------------------------------------- whose worker


@pytest.mark.parametrize("policy", ["binpack", "spread"])
def test_a_users_own_worker_runs_only_their_tasks(policy: str) -> None:
    workers = [worker("bobs", owner="bob", slots=4)]
    result = schedule([task("a1", "alice"), task("b1", "bob"), task("a2", "alice")], workers, policy)
    assert placed(result) == {"b1": "bobs"}
    # alice is not told of bob's worker: it is none of her business
    assert result.unplaceable == {
        "a1": "no shared worker, nor one of yours, is connected",
        "a2": "no shared worker, nor one of yours, is connected",
    }


def test_shared_workers_run_everyones_tasks_and_own_ones_only_their_owners() -> None:
    workers = [worker("shared", slots=1), worker("bobs", owner="bob", slots=2)]
    result = schedule(
        [task("a1", "alice"), task("a2", "alice"), task("b1", "bob"), task("b2", "bob")], workers
    )
    assert placed(result)["a1"] == "shared"
    assert "a2" not in placed(result) and "a2" not in result.unplaceable  # it waits for the shared slot
    assert {placed(result)["b1"], placed(result)["b2"]} == {"bobs"}


def test_why_a_task_cannot_run_names_only_the_workers_it_could_use() -> None:
    workers = [worker("shared", gpus=0), worker("bobs", owner="bob", gpus=2)]
    result = schedule([task("a1", "alice", gpus=1)], workers)
    assert result.unplaceable["a1"].startswith("no worker has 1 gpus")
    assert "bob" not in result.unplaceable["a1"]


def test_a_groups_worker_runs_its_members_tasks_only() -> None:
    member = PendingTask("m1", "erin", 0, 1, Resources(), groups=frozenset({"ml-team"}))
    other = PendingTask("o1", "bob", 0, 2, Resources(), groups=frozenset({"web"}))
    result = schedule([member, other], [worker("team-box", group="ml-team")])
    assert placed(result) == {"m1": "team-box"}
    assert result.unplaceable == {"o1": "no shared worker, nor one of yours, is connected"}

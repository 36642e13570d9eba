"""FairQueue: priority, owners in turn, FIFO per owner, removal, retries keep their place."""

from __future__ import annotations

import random

from jupyter_orch.core.queue import FairQueue, PendingTask
from jupyter_orch.core.resources import Resources
from jupyter_orch.core.scheduler import WorkerCapacity, order_tasks, schedule


def t(task_id: str, owner: str = "alice", seq: int = 0, priority: int = 0) -> PendingTask:
    return PendingTask(task_id, owner, priority, seq, Resources())


def ids(queue: FairQueue) -> list[str]:
    return [task.id for task in queue]


def queue_of(*tasks: PendingTask) -> FairQueue:
    q = FairQueue()
    for task in tasks:
        q.push(task)
    return q


def test_empty() -> None:
    q = FairQueue()
    assert len(q) == 0
    assert not q
    assert ids(q) == []
    assert "x" not in q
    assert q.get("x") is None
    assert q.remove("x") is None


def test_push_len_contains_get() -> None:
    a = t("a", seq=1)
    q = queue_of(a, t("b", seq=2))
    assert len(q) == 2
    assert "a" in q and "b" in q and "c" not in q
    assert q.get("a") is a


def test_pushing_an_id_twice_keeps_the_first() -> None:
    first = t("a", seq=1)
    q = queue_of(first, t("a", seq=99, priority=5))
    assert len(q) == 1
    assert q.get("a") is first
    assert ids(q) == ["a"]


def test_higher_priority_first() -> None:
    q = queue_of(t("low", "alice", 1, priority=-1), t("mid", "bob", 2), t("high", "carol", 3, priority=10))
    assert ids(q) == ["high", "mid", "low"]


def test_fifo_within_an_owner_whatever_the_push_order() -> None:
    q = queue_of(t("third", seq=3), t("first", seq=1), t("second", seq=2))
    assert ids(q) == ["first", "second", "third"]


def test_owners_take_turns_oldest_first() -> None:
    q = queue_of(
        t("a1", "alice", 0),
        t("a2", "alice", 1),
        t("a3", "alice", 2),
        t("b1", "bob", 3),
        t("c1", "carol", 4),
        t("c2", "carol", 5),
    )
    assert ids(q) == ["a1", "b1", "c1", "a2", "c2", "a3"]


def test_the_owner_with_the_oldest_task_starts() -> None:
    q = queue_of(t("a1", "alice", 5), t("b1", "bob", 1), t("b2", "bob", 2))
    assert ids(q) == ["b1", "a1", "b2"]


def test_turns_are_per_priority() -> None:
    q = queue_of(
        t("a-low", "alice", 0, priority=0),
        t("b-high1", "bob", 1, priority=1),
        t("b-high2", "bob", 2, priority=1),
        t("a-high", "alice", 3, priority=1),
    )
    assert ids(q) == ["b-high1", "a-high", "b-high2", "a-low"]


def test_remove() -> None:
    q = queue_of(t("a", seq=1), t("b", seq=2), t("c", seq=3))
    removed = q.remove("b")
    assert removed is not None and removed.id == "b"
    assert q.remove("b") is None
    assert len(q) == 2
    assert "b" not in q
    assert ids(q) == ["a", "c"]
    q.remove("a")
    q.remove("c")
    assert len(q) == 0 and ids(q) == []


def test_iteration_does_not_change_the_queue() -> None:
    q = queue_of(*(t(f"a{i}", "alice", i) for i in range(5)), *(t(f"b{i}", "bob", 10 + i) for i in range(3)))
    q.remove("a0")
    first = ids(q)
    assert ids(q) == first
    # a pass that stops early (the scheduler ran out of slots) changes nothing either
    it = iter(q)
    next(it)
    next(it)
    del it
    assert ids(q) == first
    assert len(q) == 7


def test_a_retry_keeps_its_place() -> None:
    q = queue_of(*(t(f"a{i}", "alice", i) for i in range(4)))
    placed = q.remove("a0")
    assert placed is not None
    q.push(t("a4", "alice", 4))
    q.push(placed)  # it failed and comes back with its original seq
    assert ids(q) == ["a0", "a1", "a2", "a3", "a4"]


def test_a_removed_task_can_come_back_with_another_priority() -> None:
    q = queue_of(t("a", "alice", 1), t("b", "alice", 2))
    q.remove("b")
    q.push(t("b", "alice", 2, priority=3))
    assert ids(q) == ["b", "a"]
    assert len(q) == 2


def test_fresh_queue_matches_order_tasks_property() -> None:
    rng = random.Random(42)
    for _ in range(200):
        n = rng.randrange(0, 60)
        seqs = rng.sample(range(1000), n)
        tasks = [
            t(f"t{i}", rng.choice(["alice", "bob", "carol", "dave"]), seqs[i], rng.choice([0, 0, 1, 5]))
            for i in range(n)
        ]
        pushed = tasks[:]
        rng.shuffle(pushed)
        q = queue_of(*pushed)
        assert [x.id for x in q] == [x.id for x in order_tasks(tasks)]
        # FIFO per owner and priority never increases along the order
        order = list(q)
        assert all(a.priority >= b.priority for a, b in zip(order, order[1:], strict=False))
        for owner in ("alice", "bob", "carol", "dave"):
            for prio in (0, 1, 5):
                mine = [x.seq for x in order if x.owner == owner and x.priority == prio]
                assert mine == sorted(mine)


def test_removal_property() -> None:
    rng = random.Random(5)
    for _ in range(100):
        tasks = [t(f"t{i}", rng.choice("abc"), i, rng.choice([0, 1])) for i in range(40)]
        q = queue_of(*tasks)
        gone = set(rng.sample([x.id for x in tasks], 15))
        for task_id in gone:
            assert q.remove(task_id) is not None
        left = [x.id for x in q]
        assert set(left) == {x.id for x in tasks} - gone
        assert len(left) == len(q) == 25


# ------------------------------------------------------------- fairness across passes
ONE_SLOT = [WorkerCapacity("w1", slots_total=1, slots_free=1, cpus_total=64, cpus_free=64)]


def _one_slot_at_a_time(q: FairQueue, rounds: int) -> list[str]:
    """Each round one slot is free: schedule, and the engine removes what was placed."""
    placed = []
    for _ in range(rounds):
        result = schedule(q, ONE_SLOT)
        assert len(result.assignments) == 1
        task_id = result.assignments[0].task_id
        assert q.remove(task_id) is not None
        placed.append(task_id)
    return placed


def test_thousand_tasks_do_not_starve_a_single_one() -> None:
    q = queue_of(*(t(f"a{i}", "alice", i) for i in range(1000)))
    q.push(t("bob-1", "bob", 1000))
    placed = _one_slot_at_a_time(q, 2)
    assert "bob-1" in placed


def test_a_late_owner_gets_the_next_free_slot() -> None:
    q = queue_of(*(t(f"a{i}", "alice", i) for i in range(1000)))
    # alice fills four slots, then bob submits one task while hers still wait
    for task_id in _one_slot_at_a_time(q, 4):
        assert task_id.startswith("a")
    q.push(t("bob-1", "bob", 5000))
    assert _one_slot_at_a_time(q, 1) == ["bob-1"]


def test_owners_alternate_when_one_slot_frees_at_a_time() -> None:
    q = queue_of(
        *(t(f"a{i}", "alice", i) for i in range(10)), *(t(f"b{i}", "bob", 100 + i) for i in range(10))
    )
    placed = _one_slot_at_a_time(q, 8)
    assert placed == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"]


def test_fair_share_over_many_passes() -> None:
    owners = ["alice", "bob", "carol"]
    q = FairQueue()
    seq = 0
    for owner, count in zip(owners, (300, 40, 60), strict=True):
        for i in range(count):
            q.push(t(f"{owner}-{i}", owner, seq))
            seq += 1
    placed = _one_slot_at_a_time(q, 60)
    for owner in owners:
        assert sum(p.startswith(owner) for p in placed) == 20

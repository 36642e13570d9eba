"""Quotas and fair share across users (``jupyter_orch.core.fairshare``, used by the
scheduler): the sentence a held-back task shows, the order of users, and a simulation of
20 users on one cluster whose GPU time comes out in proportion to their weights."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.fairshare import FairShare, Holdings, Quota, Shares, Usage
from jupyter_orch.core.queue import FairQueue, PendingTask
from jupyter_orch.core.records import AttemptSpan
from jupyter_orch.core.resources import Gpu, Resources
from jupyter_orch.core.scheduler import WorkerCapacity, schedule

_seq = 0


def task(
    owner: str, *, gpus: int = 1, gpu_type: str | None = None, groups: tuple[str, ...] = ()
) -> PendingTask:
    global _seq
    _seq += 1
    return PendingTask(
        f"t{_seq}",
        owner,
        0,
        _seq,
        Resources(gpus=gpus, gpu_type=gpu_type, cpus=1),
        groups=frozenset(groups),
    )


def gpu_worker(worker_id: str, models: list[str], free: list[int] | None = None) -> WorkerCapacity:
    gpus = tuple(Gpu(index=i, uuid=f"{worker_id}-{i}", model=m) for i, m in enumerate(models))
    return WorkerCapacity(
        id=worker_id,
        slots_total=len(models),
        slots_free=len(free) if free is not None else len(models),
        cpus_total=64,
        cpus_free=64,
        gpus=gpus,
        gpus_free=frozenset(range(len(models)) if free is None else free),
    )


def fair(shares: Shares, holdings: Holdings | None = None, usage: Usage | None = None) -> FairShare:
    return FairShare(shares, usage or Usage(), holdings or Holdings(), now=1000.0)


# ---------------------------------------------------------------------------- settings


def test_settings_are_checked_and_errors_name_the_setting() -> None:
    shares = Shares.from_config(
        {"default": {"gpus": 2}, "groups": {"ml-team": {"gpus": 8, "gpu_types": {"A100": 4}}}},
        {"users": {"alice": 2}, "groups": {"ml-team": 3}},
        3600,
    )
    assert shares.default.gpus == 2 and shares.groups["ml-team"].gpu_types == {"A100": 4}
    assert shares.weight("alice", ["ml-team"]) == 2  # her own weight wins
    assert shares.weight("bob", ["ml-team"]) == 3 and shares.weight("carl", []) == 1
    with pytest.raises(SpecError, match=r"quotas.users.bob.gpus must be a whole number") as info:
        Shares.from_config({"users": {"bob": {"gpus": -1}}}, {}, 3600)
    assert info.value.field == "quotas.users.bob.gpus"
    with pytest.raises(SpecError, match=r"quotas.default.gpu is not a quota"):
        Shares.from_config({"default": {"gpu": 1}}, {}, 3600)
    with pytest.raises(SpecError, match=r"weights.groups.x must be a number above 0"):
        Shares.from_config({}, {"groups": {"x": 0}}, 3600)
    with pytest.raises(SpecError, match=r"usage_half_life"):
        Shares.from_config({}, {}, float("nan"))


def test_recent_use_halves_every_half_life() -> None:
    usage = Usage(half_life=3600)
    usage.add("alice", gpu_seconds=7200, cpu_seconds=100, now=0)
    assert usage.of("alice", 0) == (7200, 100)
    assert usage.of("alice", 3600) == pytest.approx((3600, 50))
    usage.add("alice", gpu_seconds=400, cpu_seconds=0, now=7200)
    assert usage.of("alice", 7200)[0] == pytest.approx(2200)
    assert usage.of("nobody", 5) == (0, 0)


# ---------------------------------------------------------------------------- quotas


def test_a_users_gpu_quota_holds_their_next_task_back_with_the_reason() -> None:
    shares = Shares(default=Quota(gpus=1))
    first, second, hers = task("bob"), task("bob"), task("alice")
    result = schedule([first, second, hers], [gpu_worker("w", ["A100"] * 4)], fair=fair(shares))
    assert {a.task_id for a in result.assignments} == {first.id, hers.id}
    assert result.blocked == {second.id: "waiting: you use 1 of your 1 GPUs"}


def test_a_groups_quota_counts_what_its_members_hold() -> None:
    shares = Shares(groups={"ml-team": Quota(gpus=8)})
    holdings = Holdings()
    for _ in range(8):
        holdings.add("alice", ["ml-team"], 1, ["A100"])
    bobs = task("bob", groups=("ml-team",))
    carls = task("carl")  # not in the group: not held back
    result = schedule([bobs, carls], [gpu_worker("w", ["A100"] * 2)], fair=fair(shares, holdings))
    assert result.blocked == {bobs.id: "waiting: your group ml-team uses 8 of its 8 GPUs"}
    assert [a.task_id for a in result.assignments] == [carls.id]


def test_with_no_gpu_free_a_task_over_its_quota_says_the_quota_not_its_place_in_line() -> None:
    shares = Shares(default=Quota(gpus=1), users={"carl": Quota(gpu_types={"A100": 1})})
    holdings = Holdings()
    holdings.add("bob", [], 1, ["H100"])
    holdings.add("carl", [], 1, ["A100"])
    bobs, hers, carls = task("bob"), task("alice"), task("carl", gpu_type="A100")
    fs = fair(shares, holdings)
    assert fs.in_line([hers, bobs, carls], bobs.id) == "waiting: you use 1 of your 1 GPUs"
    assert fs.in_line([hers, bobs, carls], carls.id) == "waiting: you use 1 of your 1 A100 GPUs"
    assert fs.in_line([hers, bobs, carls], hers.id) == (
        "waiting: 1st in line for GPUs (fair share: your recent use is 0.0 GPU-hours)"
    )


def test_every_queued_gpu_task_gets_its_place_among_those_after_the_same_gpus() -> None:
    use = "(fair share: your recent use is 0.0 GPU-hours)"
    anyone, a100, h100, cpu, late = (
        task("ann"),
        task("bob", gpu_type="A100"),
        task("cat", gpu_type="h100"),
        task("dan", gpus=0),
        task("eve", gpu_type="H100"),
    )
    places = fair(Shares()).places([anyone, a100, h100, cpu, late])
    assert places == {
        anyone.id: f"waiting: 1st in line for GPUs {use}",
        a100.id: f"waiting: 2nd in line for A100 GPUs {use}",  # ann's may take an A100
        h100.id: f"waiting: 2nd in line for h100 GPUs {use}",  # bob's A100 is not ahead
        late.id: f"waiting: 3rd in line for H100 GPUs {use}",  # types compare in any case
    }  # a CPU task is in no GPU line
    tail = fair(Shares()).places([task(f"u{i}") for i in range(5)], limit=3)
    assert (
        list(tail.values())[2:]
        == [f"waiting: 3rd in line for GPUs {use}"]
        + [f"waiting: at least 3 tasks ahead in line for GPUs {use}"] * 2
    )


def test_a_quota_on_a_gpu_type_sends_the_task_to_another_type() -> None:
    shares = Shares(default=Quota(gpu_types={"A100": 1}))
    holdings = Holdings()
    holdings.add("bob", [], 1, ["NVIDIA A100-SXM4-80GB"])
    workers = [gpu_worker("a100s", ["NVIDIA A100-SXM4-80GB"] * 2), gpu_worker("l4s", ["NVIDIA L4"])]
    any_gpu, an_a100 = task("bob"), task("bob", gpu_type="A100")
    result = schedule([any_gpu, an_a100], workers, fair=fair(shares, holdings))
    assert {a.task_id: a.worker_id for a in result.assignments} == {any_gpu.id: "l4s"}
    assert result.blocked == {an_a100.id: "waiting: you use 1 of your 1 A100 GPUs"}


def test_a_running_tasks_quota() -> None:
    shares = Shares(users={"bob": Quota(running=2)})
    result = schedule(
        [task("bob", gpus=0) for _ in range(3)], [gpu_worker("w", ["L4"] * 4)], fair=fair(shares)
    )
    assert len(result.assignments) == 2
    assert list(result.blocked.values()) == ["waiting: you run 2 of your 2 tasks at once"]


# ---------------------------------------------------------------------------- order


def order(tasks: list[PendingTask], fs: FairShare) -> list[str]:
    return [
        t.owner for t in FairQueue.of(tasks).weighted(lambda t: fs.start(t.owner, t.groups, True), fs.step)
    ]


def test_equal_users_take_turns_and_recent_use_goes_last() -> None:
    usage = Usage()
    usage.add("heavy", gpu_seconds=36000, cpu_seconds=0, now=1000)
    tasks = [task("heavy") for _ in range(3)] + [task("a") for _ in range(2)] + [task("b") for _ in range(2)]
    assert order(tasks, fair(Shares(), usage=usage))[:4] == ["a", "b", "a", "b"]


def test_a_user_of_weight_two_gets_two_turns_to_one() -> None:
    tasks = [task("light") for _ in range(10)] + [task("heavy") for _ in range(10)]
    got = order(tasks, fair(Shares(user_weights={"heavy": 2.0})))[:9]
    assert got.count("heavy") == 6 and got.count("light") == 3


# ---------------------------------------------------------------------------- simulation


def test_twenty_users_get_gpu_time_in_proportion_to_their_weights() -> None:
    """20 users, weights 1 to 4, each with more 1-GPU tasks than the cluster holds, of very
    different lengths (1 to 30 minutes); 16 GPUs; three simulated days of one-minute rounds.
    Over the last two days each user's share of the GPU time is within 10% of its weight's."""
    rng = random.Random(7)
    users = [f"u{i:02d}" for i in range(20)]
    weights = {u: float(1 + i % 4) for i, u in enumerate(users)}
    minutes = {u: rng.choice([1, 2, 5, 10, 30]) for u in users}  # each user's task length
    shares = Shares(user_weights=weights, half_life=6 * 3600)
    usage = Usage(shares.half_life)
    queue = FairQueue()
    running: dict[str, tuple[str, int, float]] = {}  # task -> (owner, gpu index, ends at)
    waiting: dict[str, int] = defaultdict(int)  # user -> tasks in the queue
    gpu_time: dict[str, float] = defaultdict(float)
    step, day = 60.0, 24 * 3600.0
    t = 0.0
    while t < 3 * day:
        for task_id, (owner, _, ends) in list(running.items()):
            usage.add(owner, gpu_seconds=step, cpu_seconds=0, now=t)  # a minute of use
            if t >= day:
                gpu_time[owner] += step
            if ends <= t + 1e-9:
                del running[task_id]
        for u in users:  # everyone keeps a backlog
            while waiting[u] < 3:
                queue.push(task(u))
                waiting[u] += 1
        used = {gpu for _, gpu, _ in running.values()}
        holdings = Holdings()
        for owner, _, _ in running.values():
            holdings.add(owner, [], 1, ["L4"])
        worker = gpu_worker("cluster", ["L4"] * 16, free=[i for i in range(16) if i not in used])
        result = schedule(queue, [worker], fair=FairShare(shares, usage, holdings, now=t))
        for a in result.assignments:
            placed = queue.remove(a.task_id)
            assert placed is not None
            waiting[placed.owner] -= 1
            running[a.task_id] = (placed.owner, a.gpus[0], t + minutes[placed.owner] * 60)
        t += step
    total = sum(gpu_time.values())
    expected = {u: weights[u] / sum(weights.values()) for u in users}
    off = {u: gpu_time[u] / total / expected[u] - 1 for u in users}
    assert max(abs(v) for v in off.values()) < 0.10, sorted(off.items(), key=lambda kv: kv[1])


def test_recent_use_comes_back_from_stored_attempts_as_if_counted_live() -> None:
    live = Usage(half_life=24 * 3600)
    restored = Usage(half_life=24 * 3600)
    spans = []
    t = 0.0
    for minutes, gpus in ((30, 2), (10, 1), (60, 4)):  # one after another, counted at their ends
        live.add("alice", gpus * minutes * 60.0, minutes * 60.0, now=t + minutes * 60)
        spans.append(AttemptSpan("alice", gpus, t, t + minutes * 60))
        t += minutes * 60 + 600
    spans.append(AttemptSpan("alice", 8, t, t + 60, running=True))  # counts when it ends
    restored.restore(spans, now=t + 60)
    got, expected = restored.of("alice", t + 60), live.of("alice", t + 60)
    # counting continuously is a little less than counting all at the end of each attempt
    assert got[0] == pytest.approx(expected[0], rel=0.02) and got[0] < expected[0]
    assert got[1] == pytest.approx(expected[1], rel=0.02)
    assert restored.of("bob", t) == (0, 0)

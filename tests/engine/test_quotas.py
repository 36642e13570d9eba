"""Quotas and fair share in the engine: a worker with GPUs over the in-memory link, several
users' tasks, and what each user sees: a task held back by a quota says which, in its
reason, and runs once the quota allows; a submit over a quota of waiting tasks is refused."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core import protocol
from jupyter_orch.core.errors import QuotaExceeded
from jupyter_orch.core.fairshare import Quota, Shares
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.engine import Engine
from jupyter_orch.engine.dispatch import LINE_PLACES

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")
GPUS = [{"index": i, "uuid": f"GPU-{i}", "model": "NVIDIA A100-SXM4-80GB"} for i in range(4)]


@pytest_asyncio.fixture
async def engine(tmp_path: Any):
    shares = Shares(users={"bob": Quota(gpus=1, queued=3)}, groups={"ml-team": Quota(gpus=2)})
    e = make_engine(tmp_path, shares=shares)
    await e.start()
    yield e
    await e.stop()


def gpu_task(owner: str) -> TaskSpec:
    return TaskSpec.from_dict({"kind": "shell", "command": "train", "resources": {"gpus": 1}}, owner=owner)


async def finish(engine: Engine, worker: Any, task_id: str) -> None:
    for report in ({"type": "started"}, {"type": "finished", "ok": True}):
        engine.worker_message(worker, protocol.Message({**report, "task_id": task_id, "attempt": 1}))
    await engine.wait(task_id, 5)


@pytest.mark.asyncio
async def test_a_quota_holds_a_second_gpu_task_back_with_the_reason_until_the_first_ends(
    engine: Engine,
) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("gpu-box", slots=4, gpus=GPUS))
    [first] = await engine.submit([gpu_task("bob")], {})
    await link.next("assign")
    [second] = await engine.submit([gpu_task("bob")], {})
    [hers] = await engine.submit([gpu_task("alice")], {})  # alice has no quota: she goes ahead
    assert (await link.next("assign"))["task_id"] == hers.id
    row = await engine.get_row(second.id)
    assert row.state == TaskState.PENDING and row.reason == "waiting: you use 1 of your 1 GPUs"

    await finish(engine, worker, first.id)
    assert (await link.next("assign"))["task_id"] == second.id
    assert (await engine.get_row(second.id)).reason is None


@pytest.mark.asyncio
async def test_a_groups_quota_counts_every_member(engine: Engine) -> None:
    engine.know_groups("carl", frozenset({"ml-team"}))
    engine.know_groups("dora", frozenset({"ml-team"}))
    link = Link()
    engine.worker_hello(TOKEN, link, hello("gpu-box", slots=4, gpus=GPUS))
    await engine.submit([gpu_task("carl"), gpu_task("carl")], {})
    [dora] = await engine.submit([gpu_task("dora")], {})
    for _ in range(2):
        await link.next("assign")
    row = await engine.get_row(dora.id)
    assert row.state == TaskState.PENDING
    assert row.reason == "waiting: your group ml-team uses 2 of its 2 GPUs"


@pytest.mark.asyncio
async def test_a_submit_over_the_quota_of_waiting_tasks_is_refused_and_stores_nothing(engine: Engine) -> None:
    await engine.submit([gpu_task("bob") for _ in range(3)], {})  # no worker: all three wait
    extra = gpu_task("bob")
    with pytest.raises(
        QuotaExceeded, match="you have 3 task\\(s\\) waiting, and 1 more would go over the quota of 3"
    ):
        await engine.submit([extra], {})
    assert extra.id not in engine.tasks
    await engine.submit([gpu_task("alice") for _ in range(5)], {})  # others are not held back


@pytest.mark.asyncio
async def test_recent_use_survives_a_restart(tmp_path: Any) -> None:
    shares = Shares(half_life=3600)
    first = make_engine(tmp_path, shares=shares)
    await first.start()
    link = Link()
    worker = first.worker_hello(TOKEN, link, hello("gpu-box", slots=4, gpus=GPUS))
    [row] = await first.submit([gpu_task("bob")], {})
    await link.next("assign")
    await finish(first, worker, row.id)
    used = first.state.usage.of("bob", time.time())[0]
    assert used > 0
    await first.stop()

    again = make_engine(tmp_path, shares=shares)
    await again.start()
    try:
        assert again.state.usage.of("bob", time.time())[0] == pytest.approx(used, rel=0.05)
        assert again.state.usage.of("alice", time.time()) == (0, 0)
    finally:
        await again.stop()


@pytest.mark.asyncio
async def test_a_gpu_task_waiting_for_capacity_says_its_place_in_line(engine: Engine) -> None:
    link = Link()
    engine.worker_hello(TOKEN, link, hello("one-gpu", slots=2, gpus=GPUS[:1]))
    [hers] = await engine.submit([gpu_task("alice")], {})
    await link.next("assign")  # the only GPU is hers
    [his] = await engine.submit([gpu_task("carl")], {})
    [theirs] = await engine.submit([gpu_task("dora")], {})
    assert (await engine.describe(his.id))["reason"] == (
        "waiting: 1st in line for GPUs (fair share: your recent use is 0.0 GPU-hours)"
    )
    assert (await engine.describe(theirs.id))["reason"].startswith("waiting: 2nd in line for GPUs")
    assert (await engine.describe(hers.id))["state"] == "scheduled"


def in_line(reason: str) -> bool:
    return "in line" in reason


async def reason_of(events: Any, task_id: str, predicate: Any) -> str:
    """The reason in the first event of ``task_id`` that ``predicate`` accepts."""
    while True:
        event = await asyncio.wait_for(events.get(), 10)
        assert event is not None
        if event["task"]["id"] == task_id and predicate(event["task"].get("reason") or ""):
            return str(event["task"]["reason"])


@pytest.mark.asyncio
async def test_the_place_in_line_reaches_the_events_the_sidebar_and_cells_follow(engine: Engine) -> None:
    events = engine.bus.subscribe(lambda e: e["type"] == "task")
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("one-gpu", slots=1, gpus=GPUS[:1]))
    [hers] = await engine.submit([gpu_task("alice")], {})
    await link.next("assign")  # the only slot and GPU are hers: nothing more is placed
    [his] = await engine.submit([gpu_task("carl")], {})
    h100 = {"kind": "shell", "command": "train", "resources": {"gpus": 1, "gpu_type": "H100"}}
    [typed] = await engine.submit([TaskSpec.from_dict(h100, owner="eve")], {})
    [theirs] = await engine.submit([gpu_task("dora")], {})
    assert await reason_of(events, his.id, in_line) == (
        "waiting: 1st in line for GPUs (fair share: your recent use is 0.0 GPU-hours)"
    )
    # an H100 task counts the tasks that may take an H100: carl's (any GPU), not after it
    assert (await reason_of(events, typed.id, in_line)).startswith("waiting: 2nd in line for H100 GPUs")
    assert (await reason_of(events, theirs.id, in_line)).startswith("waiting: 3rd in line for GPUs")

    await finish(engine, worker, hers.id)  # carl's task takes the GPU; the line moves up
    assert (await link.next("assign"))["task_id"] == his.id
    assert (await reason_of(events, theirs.id, lambda text: "2nd" in text)).startswith(
        "waiting: 2nd in line for GPUs (fair share: your recent use is 0.0 GPU-hours)"
    )
    assert (await engine.get_row(his.id)).reason is None


@pytest.mark.asyncio
async def test_far_back_in_a_long_line_the_sentence_stays_still(engine: Engine) -> None:
    events = engine.bus.subscribe(lambda e: e["type"] == "task")
    link = Link()
    engine.worker_hello(TOKEN, link, hello("one-gpu", slots=1, gpus=GPUS[:1]))
    await engine.submit([gpu_task("alice")], {})
    await link.next("assign")
    owners = [f"user{i:03}" for i in range(LINE_PLACES + 2)]  # one task each: fair order is FIFO
    rows = await engine.submit([gpu_task(owner) for owner in owners], {})
    last = rows[-1].id
    assert (await reason_of(events, last, bool)) == (
        f"waiting: at least {LINE_PLACES} tasks ahead in line for GPUs (fair share: your recent use is 0.0 GPU-hours)"
    )
    assert (await engine.describe(last))["reason"].startswith(
        f"waiting: {LINE_PLACES + 2}nd in line"
    )  # exact on read

"""The engine's hooks for providers that make workers on demand (``engine/provisioning.py``):
reasons for pending tasks, failing tasks whose capacity cannot come, ending the attempts of
a worker the provider knows is gone, and retiring idle workers before they are removed.

The engine is driven as in test_engine.py: a real SQLite store, workers through an
in-memory ``WorkerLink`` the test reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core import protocol
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.engine import Engine

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker", provider="kubernetes")


class Events:
    """The engine's event bus as a subscriber sees it."""

    def __init__(self, engine: Engine) -> None:
        self.sub = engine.bus.subscribe(lambda e: e.get("type") == "task")

    async def task(self, task_id: str, predicate: Any) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.sub.get(), 10)
            assert event is not None
            if event["task"]["id"] == task_id and predicate(event["task"]):
                return event["task"]


@pytest_asyncio.fixture
async def engine(tmp_path: Any):
    e = make_engine(tmp_path, worker_grace=30)
    await e.start()
    yield e
    await e.stop()


def shell(owner: str = "ann", **fields: Any) -> TaskSpec:
    return TaskSpec.from_dict({"kind": "shell", "command": "true", **fields}, owner=owner)


def finished(task_id: str, attempt: int = 1) -> protocol.Message:
    return protocol.Message({"type": "finished", "task_id": task_id, "attempt": attempt, "ok": True})


@pytest.mark.asyncio
async def test_a_providers_reason_stands_over_the_schedulers_until_the_task_runs(engine: Engine) -> None:
    [row] = await engine.submit([shell(resources={"gpus": 1})], {})
    await asyncio.sleep(0)  # the scheduler's pass
    assert row.reason == "no workers are connected"
    engine.set_pending_reason([row.id], "no node can run the worker pod p yet: 0/2 nodes are available")
    assert row.reason.startswith("no node can run")
    # a worker set change makes the scheduler explain again: the provider's reason stays
    engine.worker_hello(TOKEN, Link(), hello("cpu-only"))
    await asyncio.sleep(0.01)
    assert row.reason.startswith("no node can run")
    # the task runs: the reason is over; when it comes back pending, the scheduler speaks again
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("gpu", gpus=[{"index": 0, "model": "H100"}]))
    await link.next("assign")
    assert row.reason is None
    engine.worker_message(
        worker,
        protocol.Message(
            {
                "type": "finished",
                "task_id": row.id,
                "attempt": 1,
                "ok": False,
                "error": "x",
                "error_kind": "exit_code",
            }
        ),
    )
    assert row.state == TaskState.FAILED
    assert row.id not in engine.provider_reasons or engine.provider_reason(row.id, "s") == "s"


@pytest.mark.asyncio
async def test_a_reason_set_to_none_gives_the_schedulers_back(engine: Engine) -> None:
    [row] = await engine.submit([shell(resources={"gpus": 1})], {})
    await asyncio.sleep(0)
    engine.set_pending_reason([row.id], "the worker pod p is starting")
    engine.set_pending_reason([row.id], None)
    assert row.reason == "no workers are connected"


@pytest.mark.asyncio
async def test_fail_pending_fails_only_tasks_still_waiting_to_be_placed(engine: Engine) -> None:
    link = Link()
    engine.worker_hello(TOKEN, link, hello("w1"))
    [running, waiting] = await engine.submit([shell(), shell(resources={"gpus": 1})], {})
    await link.next("assign")
    events = Events(engine)
    failed = engine.fail_pending(
        [running.id, waiting.id], "image_pull", "image nope:1 could not be pulled: not found"
    )
    assert failed == [waiting.id]
    assert running.state == TaskState.SCHEDULED
    done = await engine.wait(waiting.id, 5)
    assert done.state == TaskState.FAILED and done.error_kind == "image_pull"
    assert done.error == "image nope:1 could not be pulled: not found" and done.reason is None
    seen = await events.task(waiting.id, lambda t: t["state"] == "failed")
    assert seen["error"].startswith("image nope:1")
    await engine.journal.flush()
    stored = engine.store.get_task(waiting.id)
    assert stored is not None and stored.state == TaskState.FAILED and stored.error_kind == "image_pull"
    assert engine.pending_tasks([running.id, waiting.id]) == []


@pytest.mark.asyncio
async def test_pending_tasks_are_those_still_queued(engine: Engine) -> None:
    rows = await engine.submit([shell(resources={"gpus": 1}), shell(resources={"gpus": 2})], {})
    assert [t.id for t in engine.pending_tasks([r.id for r in rows] + ["x" * 26])] == [r.id for r in rows]
    assert engine.pending_tasks([rows[0].id])[0].resources.gpus == 1


@pytest.mark.asyncio
async def test_a_lost_worker_ends_its_attempts_at_once_per_the_retry_policy(engine: Engine) -> None:
    link = Link()
    engine.worker_hello(TOKEN, link, hello("pod-1"))
    [row] = await engine.submit([shell(retries=1, retry_backoff=0.01)], {})
    await link.next("assign")
    oom = "the worker pod was killed for using more than its memory limit (4Gi)"
    assert engine.worker_lost("pod-1", "oom", oom) == [row.id]
    assert link.closed and "memory limit" in link.closed
    assert "pod-1" not in engine.workers and engine.worker_status("pod-1") is None
    assert row.state == TaskState.PENDING and oom in row.reason  # retry 1 of 1
    link2 = Link()
    engine.worker_hello(TOKEN, link2, hello("pod-2"))
    assert (await link2.next("assign"))["attempt"] == 2
    # an eviction is the cluster taking the pod back, not the task failing: preempted, and
    # queued again although its one retry is used up
    engine.worker_lost("pod-2", "evicted", "the worker pod pod-2 was evicted: node low on memory")
    assert row.state == TaskState.PENDING
    assert (
        row.reason
        == "the worker pod pod-2 was evicted: node low on memory; queued again to resume from its latest checkpoint"
    )
    link3 = Link()
    engine.worker_hello(TOKEN, link3, hello("pod-3"))
    assert (await link3.next("assign"))["attempt"] == 3
    engine.worker_lost("pod-3", "oom", oom)  # a failure again: no retry is left
    done = await engine.wait(row.id, 5)
    assert done.state == TaskState.FAILED and done.error_kind == "oom"
    await engine.journal.flush()
    attempts = engine.store.get_attempts(row.id)
    assert [(a.state.value, a.error_kind) for a in attempts] == [
        ("lost", "oom"),
        ("preempted", "preempted"),
        ("lost", "oom"),
    ]


@pytest.mark.asyncio
async def test_a_lost_worker_that_was_disconnected_does_not_wait_out_its_grace(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("pod-1"))
    [row] = await engine.submit([shell()], {})
    await link.next("assign")
    engine.worker_disconnected(worker, link)  # grace: 30 s
    engine.worker_lost("pod-1", "node_lost", "the node n1 of worker pod pod-1 was lost")
    done = await engine.wait(row.id, 5)
    assert done.state == TaskState.FAILED and done.error == "the node n1 of worker pod pod-1 was lost"
    assert engine.connections.awaited() == []  # no grace timer left for it
    assert engine.worker_lost("pod-1", "node_lost", "again") == []


@pytest.mark.asyncio
async def test_a_retired_worker_gets_no_more_tasks_and_a_busy_one_is_not_retired(engine: Engine) -> None:
    idle_link, busy_link = Link(), Link()
    engine.worker_hello(TOKEN, idle_link, hello("idle"))
    assert engine.retire_worker("idle") is True
    assert engine.worker_status("idle")["state"] == "draining"
    busy = engine.worker_hello(TOKEN, busy_link, hello("busy"))
    [row] = await engine.submit([shell()], {})
    assign = await busy_link.next("assign")
    assert assign["task_id"] == row.id
    assert engine.retire_worker("busy") is False and engine.worker_status("busy")["running"] == 1
    # the idle one comes back (its removal failed) and takes the next task
    assert engine.retire_worker("idle", undo=True) is True
    [second] = await engine.submit([shell()], {})
    assert (await idle_link.next("assign"))["task_id"] == second.id
    engine.worker_message(busy, finished(row.id))
    assert engine.worker_status("busy")["idle_since"] is not None
    assert engine.retire_worker("nobody") is True

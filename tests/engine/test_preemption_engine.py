"""Preemption in the engine, with workers through the in-memory link: which cancel goes
out, how each ending of a preempted attempt is recorded, the worker's own notice, and
nothing of it when the server does not allow preemption."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_orch.core import protocol
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.engine import Engine

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")


def shell(priority: int = 0, preemptible: bool = False, retries: int = 0) -> TaskSpec:
    return TaskSpec.from_dict(
        {
            "kind": "shell",
            "command": "train",
            "priority": priority,
            "preemptible": preemptible,
            "retries": retries,
        },
        owner="ann",
    )


def msg(**header: Any) -> protocol.Message:
    return protocol.Message(header)


async def running_low(engine: Engine, preemptible: bool = True) -> tuple[Any, Link, Any]:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [low] = await engine.submit([shell(0, preemptible)], {})
    await link.next("assign")
    engine.worker_message(worker, msg(type="started", task_id=low.id, attempt=1))
    return worker, link, low


async def attempts(engine: Engine, task_id: str) -> list[dict[str, Any]]:
    return list((await engine.describe(task_id))["attempts"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("ending", "how"),
    [
        ({"ok": True, "stopped": True}, "stopped in time"),
        ({"ok": False, "error_kind": "preempted", "error": "stopped when asked"}, "stopped when asked"),
        (
            {
                "ok": False,
                "error_kind": "preempted",
                "error": "killed: it did not stop within its 30 s grace",
            },
            "killed: it did not stop within its 30 s grace",
        ),
        ({"ok": False, "error_kind": "exception", "error": "boom"}, "ended: exception"),
    ],
)
async def test_an_evicted_task_is_queued_again_however_its_attempt_ended(
    tmp_path: Any, ending: dict[str, Any], how: str
) -> None:
    engine = make_engine(tmp_path, preemption=True, preemption_grace=30, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        worker, link, low = await running_low(engine)
        [high] = await engine.submit([shell(priority=5)], {})
        cancel = await link.next("cancel")
        assert cancel["task_id"] == low.id and cancel["preempt"] is True and cancel["grace"] == 30
        assert low.reason and "asked to checkpoint and stop within 30 s" in low.reason
        engine.worker_message(worker, msg(type="finished", task_id=low.id, attempt=1, **ending))
        assign = await link.next("assign")
        assert assign["task_id"] == high.id  # the freed slot goes to the task it was freed for
        assert low.state == TaskState.PENDING and low.attempt == 1
        [first] = await attempts(engine, low.id)
        assert first["state"] == "preempted"
        assert first["error"] == f"preempted for task {high.id} of priority 5 ({how})"
        # its next attempt is not a retry (none were asked for): it runs once the slot frees
        engine.worker_message(worker, msg(type="started", task_id=high.id, attempt=1))
        engine.worker_message(worker, msg(type="finished", task_id=high.id, attempt=1, ok=True))
        again = await link.next("assign")
        assert (again["task_id"], again["attempt"]) == (low.id, 2)
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_task_that_finishes_before_it_stops_has_succeeded(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, preemption=True, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        worker, link, low = await running_low(engine)
        await engine.submit([shell(priority=5)], {})
        await link.next("cancel")
        engine.worker_message(worker, msg(type="finished", task_id=low.id, attempt=1, ok=True))
        await link.next("assign")
        assert low.state == TaskState.SUCCEEDED
    finally:
        await engine.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(("preemption", "preemptible"), [(False, True), (True, False)])
async def test_nothing_is_evicted_unless_both_the_server_and_the_task_allow_it(
    tmp_path: Any, preemption: bool, preemptible: bool
) -> None:
    engine = make_engine(tmp_path, preemption=preemption)
    await engine.start()
    try:
        worker, link, low = await running_low(engine, preemptible=preemptible)
        [high] = await engine.submit([shell(priority=5)], {})
        engine.dispatcher.schedule_now()  # a full pass: nothing fits, nothing is evicted
        assert [m.type for m in _drain(link)] == []
        assert engine.state.preempting == {} and high.state == TaskState.PENDING
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_worker_going_away_preempts_its_tasks(tmp_path: Any) -> None:
    engine = make_engine(tmp_path)  # no priority preemption needed for this
    await engine.start()
    try:
        worker, link, low = await running_low(engine, preemptible=False)
        engine.worker_message(worker, msg(type="going", reason="its pod is evicted"))
        assert worker.state == "draining"
        engine.worker_message(
            worker,
            msg(
                type="finished",
                task_id=low.id,
                attempt=1,
                ok=False,
                error_kind="preempted",
                error="stopped when asked",
            ),
        )
        [first] = await attempts(engine, low.id)
        assert (
            first["state"] == "preempted"
            and first["error"] == "preempted: its pod is evicted (stopped when asked)"
        )
        assert low.state == TaskState.PENDING
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_pod_the_cluster_evicts_ends_its_tasks_preempted_not_failed(tmp_path: Any) -> None:
    engine = make_engine(tmp_path)
    await engine.start()
    try:
        _worker, _link, low = await running_low(engine)
        engine.worker_lost("w1", "evicted", "the worker pod w1 was evicted: node pressure")
        [first] = await attempts(engine, low.id)
        assert first["state"] == "preempted"
        assert first["error"] == "the worker pod w1 was evicted: node pressure (its worker is gone)"
        assert low.state == TaskState.PENDING
    finally:
        await engine.stop()


def _drain(link: Link) -> list[protocol.Message]:
    out = []
    while not link.sent.empty():
        out.append(link.sent.get_nowait())
    return out

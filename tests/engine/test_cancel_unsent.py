"""A task cancelled after it was placed but before its assignment left (the assignment waits
for its commit): the worker never hears of it and never reports it, so the engine frees
the slot itself and the next task takes it. Seen under a real JupyterHub: an admin cancelled
a user's running task and, a moment later, the queued one that took its GPU; the GPU stayed
held by the cancelled task and a third user's task waited forever."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core import protocol
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.engine import Engine, EngineConfig
from jupyter_orch.store import FileBlobStore, FileLogStore, SqlStore

from support.dblock import Locker
from support.enginelink import Link, hello

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")
GPU = [{"index": 0, "uuid": "GPU-0", "model": "NVIDIA A100-SXM4-80GB"}]


@pytest_asyncio.fixture
async def engine(tmp_path: Path):
    store = SqlStore(
        f"sqlite:///{tmp_path / 'orch.sqlite'}", write_busy_timeout=30
    )  # commits wait out a lock
    store.migrate()
    e = Engine(
        store, FileBlobStore(str(tmp_path / "blobs")), FileLogStore(str(tmp_path / "logs")), EngineConfig()
    )
    await e.start()
    yield e
    await e.stop()


def gpu_task(owner: str) -> TaskSpec:
    return TaskSpec.from_dict({"kind": "shell", "command": "train", "resources": {"gpus": 1}}, owner=owner)


async def state_of(events: Any, task_id: str, state: str) -> None:
    while True:
        event = await asyncio.wait_for(events.get(), 10)
        assert event is not None
        if event["task"]["id"] == task_id and event["task"]["state"] == state:
            return


@pytest.mark.asyncio
async def test_a_task_cancelled_before_its_assignment_left_frees_its_slot(
    engine: Engine, tmp_path: Path
) -> None:
    events = engine.bus.subscribe(lambda e: e["type"] == "task")
    [cancelled] = await engine.submit([gpu_task("bob")], {})  # no worker yet: it waits
    link = Link()
    with Locker(tmp_path / "orch.sqlite"):  # commits wait: so does every assignment
        worker = engine.worker_hello(TOKEN, link, hello("one-gpu", slots=1, gpus=GPU))
        await state_of(events, cancelled.id, "scheduled")
        cancelling = asyncio.ensure_future(engine.cancel(cancelled.id))
        await state_of(events, cancelled.id, "cancelled")
        assert "assign" not in [m.type for m in drain(link)]  # its assignment never left
    await cancelling  # stored once the lock is gone

    [theirs] = await engine.submit([gpu_task("alice")], {})
    assign = await link.next("assign")
    assert assign["task_id"] == theirs.id, "the cancelled task's assignment was sent, or held the GPU"
    assert list(worker.running) == [theirs.id] and worker.running[theirs.id].gpus == (0,)


def drain(link: Link) -> list[protocol.Message]:
    out = []
    while not link.sent.empty():
        out.append(link.sent.get_nowait())
    return out

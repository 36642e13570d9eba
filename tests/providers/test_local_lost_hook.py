"""The engine hook the local provider calls when one of its worker processes dies
(``ProviderContext.worker_lost``): the running attempt ends lost and is retried per its
policy; a task that was only sent ahead to that worker (queued there, never started) is
placed again without using a retry.

The engine is driven as in tests/engine: a real SQLite store, the worker through an
in-memory link (the real-process version is tests/chaos/test_worker_kill.py)."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="local-0", scope="worker", provider="local")


@pytest.mark.asyncio
async def test_a_lost_worker_ends_what_ran_and_places_again_what_waited_there(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, worker_grace=600)
    await engine.start()
    try:
        link = Link()
        engine.worker_hello(TOKEN, link, hello("w1", slots=1))
        running, ahead = await engine.submit(
            [
                TaskSpec.from_dict({"kind": "shell", "command": "true", "retries": 1}, owner="ann"),
                TaskSpec.from_dict({"kind": "shell", "command": "true", "retries": 0}, owner="ann"),
            ],
            {},
        )
        assert (await link.next("assign"))["task_id"] == running.id
        engine.workers["w1"].run_time = 0.001  # its tasks are quick: the second one goes ahead
        engine.kick()
        assert (await link.next("assign"))["task_id"] == ahead.id
        assert engine.workers["w1"].running[ahead.id].queued

        why = "worker local-0 was lost while running this task: its process (pid 4242) was killed by SIGKILL"
        assert sorted(engine.worker_lost("w1", "worker_lost", why)) == sorted([running.id, ahead.id])

        assert running.state == TaskState.PENDING and why in (running.reason or "")  # retry 1 of 1
        assert ahead.state == TaskState.PENDING and ahead.error is None  # no retry used, none needed
        await engine.journal.flush()
        [lost] = engine.store.get_attempts(running.id)
        assert (lost.state.value, lost.error_kind, lost.error) == ("lost", "worker_lost", why)
        [unstarted] = engine.store.get_attempts(ahead.id)
        assert (unstarted.state.value, unstarted.error_kind) == ("lost", "not_started")
        assert unstarted.error == "worker w1 was lost before it started this task; it is placed again"

        # both run on the worker that replaces it; the one with no retries left still may
        link2 = Link()
        engine.worker_hello(TOKEN, link2, hello("w2", slots=2))
        sent = {(await link2.next("assign"))["task_id"] for _ in range(2)}
        assert sent == {running.id, ahead.id}
        assert ahead.attempt == 2 and ahead.state == TaskState.SCHEDULED
    finally:
        await engine.stop()

"""The engine on its own: a real SQLite store and blob/log stores on disk, and workers
reached through the ``WorkerLink`` seam (an in-memory link the test reads), so protocol
situations that are hard to time with real processes are exact here."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core import protocol
from jupyter_orch.core.errors import Conflict, SpecError
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.engine import Engine

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")


def drain(link: Link) -> list[protocol.Message]:
    """What the link holds now (taken out)."""
    out = []
    while not link.sent.empty():
        out.append(link.sent.get_nowait())
    return out


@pytest_asyncio.fixture
async def engine(tmp_path: Any):
    e = make_engine(tmp_path, worker_grace=0.5)
    await e.start()
    yield e
    await e.stop()


def shell(command: str = "true", owner: str = "ann", **fields: Any) -> TaskSpec:
    return TaskSpec.from_dict({"kind": "shell", "command": command, **fields}, owner=owner)


def msg(**header: Any) -> protocol.Message:
    return protocol.Message(header)


async def finish(
    engine: Engine, worker: Any, task_id: str, attempt: int = 1, ok: bool = True, **fields: Any
) -> None:
    engine.worker_message(worker, msg(type="finished", task_id=task_id, attempt=attempt, ok=ok, **fields))


@pytest.mark.asyncio
async def test_log_lines_resent_after_a_reconnect_are_kept_once(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell()], {})
    await link.next("assign")
    engine.worker_message(worker, msg(type="started", task_id=row.id, attempt=1))
    lines = [[1.0, "stdout", "a"], [2.0, "stdout", "b"]]
    engine.worker_message(worker, msg(type="log", task_id=row.id, attempt=1, offset=0, lines=lines))
    engine.worker_disconnected(worker, link)
    link2 = Link()
    worker = engine.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": row.id, "attempt": 1}]))
    welcome = await link2.next("welcome")
    assert welcome["log_offsets"] == [[row.id, 1, 2]]
    # the worker resends from an older offset: only the new line is stored
    again = [[2.0, "stdout", "b"], [3.0, "stdout", "c"]]
    engine.worker_message(worker, msg(type="log", task_id=row.id, attempt=1, offset=1, lines=again))
    # and a gap (lines the worker could not keep) is said in the log
    engine.worker_message(
        worker, msg(type="log", task_id=row.id, attempt=1, offset=5, lines=[[4.0, "stdout", "f"]])
    )
    stored, _, _ = await engine.read_logs(row, 1, 0, None)
    texts = [line["text"] for line in stored]
    assert texts[:3] == ["a", "b", "c"]
    assert "2 line(s) of output were lost" in texts[3] and texts[4] == "f"


@pytest.mark.asyncio
async def test_owners_take_turns(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    busy = await engine.submit([shell(name=f"ann-{i}") for i in range(20)], {})
    [bob] = await engine.submit([shell(owner="bob", name="bob-0")], {})
    first = await link.next("assign")
    assert first["task_id"] == busy[0].id
    await finish(engine, worker, busy[0].id)
    second = await link.next("assign")
    assert second["task_id"] == bob.id  # bob's one task does not wait behind ann's nineteen


@pytest.mark.asyncio
async def test_retry_backoff_then_success(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell(retries=2, retry_backoff=0.05)], {})
    await link.next("assign")
    await finish(engine, worker, row.id, ok=False, error="command exited with code 1", error_kind="exit_code")
    assert row.state == TaskState.PENDING and "retry 1 of 2" in row.reason
    again = await link.next("assign")
    assert again["attempt"] == 2
    await finish(engine, worker, row.id, attempt=2)
    assert row.state == TaskState.SUCCEEDED
    await engine.journal.flush()
    attempts = engine.store.get_attempts(row.id)
    assert [(a.number, a.state.value) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].error == "command exited with code 1"


@pytest.mark.asyncio
async def test_deterministic_failures_are_not_retried(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell(retries=3)], {})
    await link.next("assign")
    await finish(
        engine, worker, row.id, ok=False, error="module 'x' is not installed", error_kind="environment"
    )
    assert row.state == TaskState.FAILED and row.attempt == 1


@pytest.mark.asyncio
async def test_a_lost_worker_fails_or_retries_its_tasks_after_the_grace(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1", slots=2))
    rows = await engine.submit([shell(name="once"), shell(name="twice", retries=1, retry_backoff=0.01)], {})
    for _ in rows:
        await link.next("assign")
    engine.worker_disconnected(worker, link)
    done = await engine.wait(rows[0].id, 5)
    assert done.state == TaskState.FAILED and "did not come back within 0.5 s" in done.error
    assert rows[1].state == TaskState.PENDING  # waiting for another worker to run attempt 2
    link2 = Link()
    engine.worker_hello(TOKEN, link2, hello("w2"))
    assert (await link2.next("assign"))["attempt"] == 2


@pytest.mark.asyncio
async def test_a_worker_back_in_time_keeps_its_tasks(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell()], {})
    await link.next("assign")
    engine.worker_disconnected(worker, link)
    link2 = Link()
    worker = engine.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": row.id, "attempt": 1}]))
    assert row.state == TaskState.RUNNING  # it had started while we were not listening
    await asyncio.sleep(0.7)  # past the grace: nothing may happen to a worker that came back
    assert row.state == TaskState.RUNNING
    await finish(engine, worker, row.id)
    assert row.state == TaskState.SUCCEEDED


@pytest.mark.asyncio
async def test_an_assignment_lost_with_the_connection_is_placed_again_not_failed(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1", slots=2))
    [started, unstarted] = await engine.submit([shell("a"), shell("b")], {})
    await link.next("assign")
    await link.next("assign")
    engine.worker_message(worker, msg(type="started", task_id=started.id, attempt=1))
    engine.worker_disconnected(worker, link)  # "b"'s assignment went down with it
    link2 = Link()
    worker = engine.worker_hello(
        TOKEN, link2, hello("w1", slots=2, running=[{"task_id": started.id, "attempt": 1}])
    )
    assert started.state == TaskState.RUNNING
    again = await link2.next("assign")  # sent again, not failed as lost
    assert again["task_id"] == unstarted.id and again["attempt"] == 2
    await finish(engine, worker, unstarted.id, attempt=2)
    assert unstarted.state == TaskState.SUCCEEDED and unstarted.error is None


@pytest.mark.asyncio
async def test_cancelled_while_away_is_cancelled_on_return(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell()], {})
    await link.next("assign")
    engine.worker_disconnected(worker, link)
    await engine.cancel(row.id)
    link2 = Link()
    engine.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": row.id, "attempt": 1}]))
    cancel = await link2.next("cancel")
    assert cancel["task_id"] == row.id


@pytest.mark.asyncio
async def test_restart_recovers_pending_and_running(tmp_path: Any) -> None:
    first = make_engine(tmp_path, worker_grace=30)
    await first.start()
    link = Link()
    first.worker_hello(TOKEN, link, hello("w1"))
    running, waiting = await first.submit([shell(name="r"), shell(name="w", resources={"gpus": 1})], {})
    await link.next("assign")
    await first.journal.flush()
    await first.journal.close()  # the process "dies": nothing else is written

    second = make_engine(tmp_path, worker_grace=30)
    await second.start()
    assert second.tasks[waiting.id].state == TaskState.PENDING
    assert second.tasks[running.id].state == TaskState.SCHEDULED
    assert second.workers["w1"].state == "disconnected"
    link2 = Link()
    second.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": running.id, "attempt": 1}]))
    assert second.tasks[running.id].state == TaskState.RUNNING
    await second.stop()


@pytest.mark.asyncio
async def test_submit_checks(engine: Engine) -> None:
    [row] = await engine.submit([shell()], {})
    # the same id again is the same task (a retried request), another owner's is refused
    assert (
        await engine.submit(
            [TaskSpec.from_dict({"kind": "shell", "command": "true", "id": row.id}, owner="ann")], {}
        )
    )[0] is row
    with pytest.raises(Conflict):
        await engine.submit(
            [TaskSpec.from_dict({"kind": "shell", "command": "true", "id": row.id}, owner="bob")], {}
        )
    with pytest.raises(SpecError) as info:
        await engine.submit([TaskSpec.from_dict({"kind": "function"}, owner="ann")], {})
    assert info.value.field == "payload"
    assert json.dumps(engine.worker_list()) == "[]"


@pytest.mark.asyncio
async def test_short_tasks_are_sent_ahead_and_gpu_tasks_never(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1", gpus=[{"index": 0, "model": "T4"}]))
    rows = await engine.submit([shell(name=f"t{i}") for i in range(20)], {})
    first = await link.next("assign")
    assert link.sent.empty()  # nothing known about its tasks yet: one at a time
    engine.worker_message(worker, msg(type="started", task_id=first["task_id"], attempt=1))
    await finish(engine, worker, first["task_id"])  # a quick task: now it gets work ahead
    sent = [await link.next("assign") for _ in range(17)]
    assert [m["task_id"] for m in sent] == [r.id for r in rows[1:18]]  # 1 running + 16 ahead
    assert [m.type for m in drain(link)] in ([], ["ack"])  # no further assign
    # tasks that are short but not quick (10-100 ms) get 2 ahead per slot
    worker.run_time = 0.05
    cfg = engine.config
    short = worker.capacity(cfg.prefetch, cfg.prefetch_below, cfg.prefetch_quick, cfg.prefetch_quick_below)
    assert short.queue_free == 0  # 16 are queued there already
    worker.run_time = 0.001
    capacity = worker.capacity(cfg.prefetch, cfg.prefetch_below, cfg.prefetch_quick, cfg.prefetch_quick_below)
    assert capacity.slots_free == 0 and capacity.queue_free == 0
    # a GPU task is never queued behind others: it waits for the GPU to be free
    [gpu_task] = await engine.submit([shell(name="gpu", resources={"gpus": 1})], {})
    assert gpu_task.state == TaskState.PENDING
    # the worker stops before starting what it was sent ahead: placed again, no retry used
    await finish(engine, worker, rows[17].id, ok=False, error="stopped", error_kind="not_started")
    assert rows[17].state == TaskState.PENDING and rows[17].error is None
    await engine.journal.flush()
    # it has no retries, yet it is placed again (here: at once, in the queue spot it left)
    assert [a.state.value for a in engine.store.get_attempts(rows[17].id)] == ["lost", "scheduled"]
    assert rows[17].state == TaskState.SCHEDULED and rows[17].error is None


@pytest.mark.asyncio
async def test_long_tasks_are_not_sent_ahead(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, prefetch_below=0.0)
    await engine.start()
    try:
        link = Link()
        worker = engine.worker_hello(TOKEN, link, hello("w1"))
        rows = await engine.submit([shell() for _ in range(3)], {})
        await link.next("assign")
        engine.worker_message(worker, msg(type="started", task_id=rows[0].id, attempt=1))
        await finish(engine, worker, rows[0].id)
        await link.next("assign")
        assert [m.type for m in drain(link)] in ([], ["ack"])  # one at a time: no assign ahead
    finally:
        await engine.stop()


class RecordingProvider:
    """A provider at the engine's seam: it records what the engine tells it."""

    name = "recording"

    def __init__(self) -> None:
        self.released: asyncio.Queue[list[str]] = asyncio.Queue()
        self.asked: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def release_idle(self, worker_ids: list[str]) -> None:
        self.released.put_nowait(list(worker_ids))

    async def request_capacity(self, tasks: Any, reasons: dict[str, str]) -> None:
        self.asked.put_nowait(dict(reasons))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


@pytest.mark.asyncio
async def test_the_provider_hears_of_idle_workers_and_unplaceable_tasks(tmp_path: Any) -> None:
    provider = RecordingProvider()
    engine = make_engine(tmp_path, provider=provider, worker_idle_timeout=0.2)
    await engine.start()
    try:
        link = Link()
        busy = engine.worker_hello(TOKEN, link, hello("busy"))
        engine.worker_hello(TOKEN, Link(), hello("idle"))
        [row] = await engine.submit([shell()], {})
        assign = await link.next("assign")
        assert assign["task_id"] == row.id and busy.running
        released = await asyncio.wait_for(provider.released.get(), 10)
        assert released == ["idle"]  # the busy one is not idle, and each idle spell is told once
        [big] = await engine.submit([shell(resources={"gpus": 2})], {})
        reasons = await asyncio.wait_for(provider.asked.get(), 10)
        assert "no worker has 2 gpus" in reasons[big.id]
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_submit_repeated_after_a_restart_is_still_the_same_task(tmp_path: Any) -> None:
    first = make_engine(tmp_path)
    await first.start()
    spec = shell(name="once")
    [row] = await first.submit([spec], {})
    newer = shell(name="newer")
    await first.submit([newer], {})
    await first.stop()
    second = make_engine(tmp_path)
    await second.start()
    try:
        # the client never heard "accepted" and sends both again: no duplicates, no errors
        again = await second.submit([spec, newer], {})
        assert [r.seq for r in again] == [row.seq, row.seq + 1]
        assert len(second.store.list_tasks(limit=10)) == 2
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_waiting_on_a_copy_read_before_the_task_ended_still_resolves(engine: Engine) -> None:
    # a handler may hold a row read from the store while the task finishes meanwhile
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [row] = await engine.submit([shell()], {})
    await link.next("assign")
    await engine.journal.flush()
    stale = engine.store.get_task(row.id)
    assert stale is not None and not stale.state.terminal
    await finish(engine, worker, row.id)
    done = engine.when_done(stale)
    assert done.done() and done.result().state == TaskState.SUCCEEDED
    assert (await engine.wait(row.id, timeout=5)).state == TaskState.SUCCEEDED


def test_how_many_tasks_a_worker_is_sent_ahead_follows_its_task_run_times() -> None:
    from jupyter_orch.engine.workers import WorkerHandle

    w = WorkerHandle("w", "w", "local", None, Link(), {"slots": 2, "cpus": 2})
    depths = {}
    for run_time in (None, 0.5, 0.05, 0.001):
        w.run_time = run_time
        depths[run_time] = w.capacity(2, 0.1, 8, 0.01).queue_free
    assert depths == {None: 0, 0.5: 0, 0.05: 4, 0.001: 16}  # per slot: none, none, 2, 8


@pytest.mark.asyncio
async def test_a_submit_whose_commit_fails_is_not_accepted_and_is_forgotten(engine: Engine) -> None:
    def broken(changes: Any, **_: Any) -> None:
        raise OSError("disk full")

    engine.store.apply = broken  # type: ignore[method-assign]
    accepted = engine.submit_nowait([shell()], {})
    assert accepted is not None and len(accepted.fresh) == 1
    with pytest.raises(SpecError, match="the database refused task .*: disk full"):
        await engine.committed(accepted)
    task_id = accepted.fresh[0].id
    assert task_id not in engine.tasks and engine.queue.get(task_id) is None
    with pytest.raises(SpecError, match="disk full"):
        await engine.submit([shell()], {})


@pytest.mark.asyncio
async def test_one_at_a_time_a_tasks_outcome_shares_the_next_tasks_commit(engine: Engine) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1"))
    [first] = await engine.submit([shell()], {})
    await link.next("assign")
    before = engine.journal.commits
    await finish(engine, worker, first.id)
    assert first.state == TaskState.SUCCEEDED  # announced at once ...
    assert engine.journal.commits == before  # ... stored a moment later, or with the next commit
    [second] = await engine.submit([shell()], {})
    assert engine.journal.commits == before + 1
    assert engine.store.get_task(first.id).state == TaskState.SUCCEEDED  # type: ignore[union-attr]
    assert engine.store.get_task(second.id) is not None
    # alone, an outcome is stored within the window (the worker's ack follows)
    await link.next("assign")
    await finish(engine, worker, second.id)
    ack = await link.next("ack")
    assert ack["items"] == [[second.id, 1]]
    assert engine.store.get_task(second.id).state == TaskState.SUCCEEDED  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_after_a_restart_a_task_sent_ahead_and_not_started_is_not_called_running(tmp_path: Any) -> None:
    first = make_engine(tmp_path, worker_grace=30)
    await first.start()
    link = Link()
    first.worker_hello(TOKEN, link, hello("w1", slots=1))
    started, ahead = await first.submit([shell(name="a"), shell(name="b")], {})
    await link.next("assign")
    first.workers["w1"].run_time = 0.001  # quick tasks: the second one goes ahead
    first.kick()
    await link.next("assign")
    await first.journal.flush()
    await first.journal.close()  # the process "dies"

    second = make_engine(tmp_path, worker_grace=30)
    await second.start()
    held = [{"task_id": started.id, "attempt": 1}, {"task_id": ahead.id, "attempt": 1}]
    second.worker_hello(
        TOKEN, Link(), hello("w1", slots=1, running=held, queued=[{"task_id": ahead.id, "attempt": 1}])
    )
    assert second.tasks[started.id].state == TaskState.RUNNING
    assert second.tasks[ahead.id].state == TaskState.SCHEDULED  # waits there for the slot
    assert second.workers["w1"].capacity().slots_free == 0  # one running, one waiting
    await second.stop()

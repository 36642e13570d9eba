"""The task transitions held in one hand: built from the state, a real journal over a real
SQLite store and blob store, and plain callables for the scheduler, the step cache and the
runs, with no Engine around them. What the tests read is what a user would later see: the
rows stored, their reasons, and who was told."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core.records import AttemptRow, InsertAttempt, InsertTask, TaskRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import AttemptState, TaskState
from jupyter_orch.engine.blobfiles import BlobFiles
from jupyter_orch.engine.config import EngineConfig
from jupyter_orch.engine.events import EventBus
from jupyter_orch.engine.journal import Journal
from jupyter_orch.engine.state import EngineState
from jupyter_orch.engine.transitions import Transitions
from jupyter_orch.store import FileBlobStore, SqlStore


@dataclasses.dataclass
class Parts:
    transitions: Transitions
    state: EngineState
    journal: Journal
    store: SqlStore
    kicks: list[None]
    ready: list[str]
    steps: list[str]


@pytest_asyncio.fixture
async def parts(tmp_path: Any):
    store = SqlStore(f"sqlite:///{tmp_path / 'orch.sqlite'}")
    store.migrate()
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    config = EngineConfig()
    state = EngineState(config)
    journal = Journal(store, blobs)
    kicks: list[None] = []
    ready: list[str] = []
    steps: list[str] = []
    transitions = Transitions(
        state,
        journal,
        EventBus(),
        BlobFiles(journal, blobs, config),
        kick=lambda: kicks.append(None),
        ready=lambda row: ready.append(row.id),
        step_finished=lambda row: steps.append(row.id),
    )
    yield Parts(transitions, state, journal, store, kicks, ready, steps)
    await journal.close()


async def active(parts: Parts, **fields: Any) -> TaskRow:
    """A task accepted and stored, as the submitter leaves it."""
    spec = TaskSpec.from_dict({"kind": "shell", "command": "true", **fields}, owner="ann")
    row = TaskRow(spec=spec, seq=parts.state.next_seq())
    parts.state.activate(row)
    parts.journal.add(InsertTask(dataclasses.replace(row)))
    await parts.journal.flush()
    return row


def running(parts: Parts, row: TaskRow) -> None:
    """As if the dispatcher had placed it and the worker had started it."""
    parts.transitions.set_state(row, TaskState.SCHEDULED)
    row.attempt += 1
    row.worker_id = "w1"
    attempt = AttemptRow(row.id, row.attempt, AttemptState.SCHEDULED, "w1", ())
    parts.state.placed(attempt)
    parts.journal.add(InsertAttempt(dataclasses.replace(attempt)))
    parts.transitions.set_state(row, TaskState.RUNNING)


async def stored(parts: Parts, row: TaskRow) -> TaskRow:
    await parts.journal.flush()
    again = await parts.journal.run(parts.store.get_task, row.id)
    assert again is not None
    return again


@pytest.mark.asyncio
async def test_a_failed_attempt_with_retries_left_waits_its_delay_then_is_ready_again(parts: Parts) -> None:
    row = await active(parts, retries=1, retry_backoff=0.05)
    running(parts, row)
    parts.transitions.finish_attempt(row, ok=False, error="boom", error_kind="exception")

    saved = await stored(parts, row)
    assert saved.state == TaskState.PENDING
    assert saved.reason == "attempt 1 failed (boom); retry 1 of 1 in 0.05 s"
    assert parts.ready == [] and row.id in parts.state.timers

    while row.id not in parts.ready:  # the retry timer fires on the loop
        await asyncio.sleep(0.01)
    assert parts.kicks and row.reason is None and row.id not in parts.state.timers


@pytest.mark.asyncio
async def test_an_attempt_that_never_started_uses_up_no_retry(parts: Parts) -> None:
    row = await active(parts, retries=1, retry_backoff=60)
    running(parts, row)
    parts.transitions.finish_attempt(row, ok=False, error="worker stopped", error_kind="not_started")
    assert row.state == TaskState.PENDING and parts.ready == [row.id]  # placed again at once

    running(parts, row)  # the second attempt fails: its one retry is still there
    parts.transitions.finish_attempt(row, ok=False, error="boom", error_kind="exception")
    saved = await stored(parts, row)
    assert (saved.state, saved.attempt) == (TaskState.PENDING, 2)
    assert saved.reason == "attempt 2 failed (boom); retry 1 of 1 in 60 s"
    attempts = await parts.journal.run(parts.store.get_attempts, row.id)
    assert [(a.number, a.state) for a in attempts] == [(1, AttemptState.LOST), (2, AttemptState.FAILED)]


@pytest.mark.asyncio
async def test_errors_the_same_code_would_hit_again_are_not_retried(parts: Parts) -> None:
    row = await active(parts, retries=3)
    running(parts, row)
    parts.transitions.finish_attempt(row, ok=False, error="cannot unpickle", error_kind="bad_payload")
    saved = await stored(parts, row)
    assert saved.state == TaskState.FAILED and saved.error_kind == "bad_payload"
    assert row.id not in parts.state.tasks and parts.state.finished[row.id] is row


@pytest.mark.asyncio
async def test_an_ended_task_readies_or_fails_its_dependants_and_wakes_its_waiters(parts: Parts) -> None:
    first = await active(parts)
    second = await active(parts)
    after_first = await active(parts, depends=[first.id])
    after_second = await active(parts, depends=[second.id])
    for row in (after_first, after_second):
        parts.transitions.enqueue_or_wait(row)
        assert row.reason == "waiting for 1 dependency"
    waiter: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
    parts.state.add_waiter(first.id, waiter)

    running(parts, first)
    parts.transitions.finish_attempt(first, ok=True, result=b"value")
    assert parts.ready == [after_first.id] and await waiter is first
    assert parts.steps == [first.id]  # the runs hear of every ended task

    running(parts, second)
    parts.transitions.finish_attempt(second, ok=False, error="boom", error_kind="exception")
    saved = await stored(parts, after_second)
    assert saved.state == TaskState.UPSTREAM_FAILED
    assert saved.error == f"dependency {second.spec.display_name} ({second.id}) failed: boom"

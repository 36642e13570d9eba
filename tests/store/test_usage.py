"""What ``jupyter orch admin usage`` reads: per user, the GPU- and task-seconds of their
attempts within a period, each attempt cut to the period, on SQLite and PostgreSQL."""

from __future__ import annotations

from jupyter_orch.core.records import AttemptRow, InsertAttempt, InsertTask, TaskRow, UsageTotals
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import AttemptState
from jupyter_orch.store import SqlStore

T0 = 1_800_000_000.0
HOUR = 3600.0


def task(seq: int, owner: str) -> TaskRow:
    return TaskRow(spec=TaskSpec.from_dict({"kind": "shell", "command": "train"}, owner=owner), seq=seq)


def ran(t: TaskRow, number: int, gpus: int, started: float | None, ended: float | None) -> InsertAttempt:
    state = AttemptState.RUNNING if ended is None else AttemptState.SUCCEEDED
    return InsertAttempt(
        AttemptRow(t.id, number, state, "w1", tuple(range(gpus)), started_at=started, ended_at=ended)
    )


def test_usage_per_user_cuts_each_attempt_to_the_period(store: SqlStore) -> None:
    alices, alices_cpu, bobs, carls = task(1, "alice"), task(2, "alice"), task(3, "bob"), task(4, "carl")
    store.apply(
        [
            InsertTask(alices),
            InsertTask(alices_cpu),
            InsertTask(bobs),
            InsertTask(carls),
            ran(alices, 1, 2, T0 - HOUR, T0 + HOUR),  # half of it before the period
            ran(alices, 2, 2, T0 + 2 * HOUR, T0 + 3 * HOUR),
            ran(alices_cpu, 1, 0, T0, T0 + HOUR),  # no GPU: task time only
            ran(bobs, 1, 1, T0 + 9 * HOUR, None),  # still running: up to the period's end
            ran(bobs, 2, 4, None, None),  # never started: nothing
            ran(carls, 1, 8, T0 - 5 * HOUR, T0 - HOUR),  # before the period: left out
        ]
    )
    got = store.usage_between(T0, T0 + 10 * HOUR)
    assert got == [
        UsageTotals("alice", gpu_seconds=4 * HOUR, task_seconds=3 * HOUR, attempts=3),
        UsageTotals("bob", gpu_seconds=1 * HOUR, task_seconds=1 * HOUR, attempts=1),
    ]
    assert store.usage_between(T0 + 20 * HOUR, T0 + 30 * HOUR) == [
        UsageTotals("bob", gpu_seconds=10 * HOUR, task_seconds=10 * HOUR, attempts=1)
    ]
    assert store.usage_between(T0 - 10 * HOUR, T0 - 9 * HOUR) == []


def test_usage_of_an_empty_store(store: SqlStore) -> None:
    assert store.usage_between(0.0, T0) == []

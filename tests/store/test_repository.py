"""SqlStore on real databases (SQLite file and PostgreSQL): every test runs on both."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.exc import IntegrityError

from jupyter_orch.core.ids import new_id
from jupyter_orch.core.records import (
    AttemptRow,
    InsertAttempt,
    InsertBlob,
    InsertTask,
    TaskRow,
    UpdateAttempt,
    UpdateTask,
    UpsertWorker,
    WorkerRow,
)
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import AttemptState, TaskState
from jupyter_orch.store import SqlStore
from jupyter_orch.store.models import BlobModel

T0 = 1_700_000_000.123456


def make_task(
    seq: int, *, owner: str = "alice", state: TaskState = TaskState.PENDING, **spec: object
) -> TaskRow:
    data: dict[str, object] = {"kind": "shell", "command": f"echo {seq}"}
    data.update(spec)
    return TaskRow(
        spec=TaskSpec.from_dict(data, owner=owner),
        state=state,
        seq=seq,
        created_at=T0 + seq,
        updated_at=T0 + seq,
    )


def full_task(seq: int = 7) -> TaskRow:
    spec = TaskSpec.from_dict(
        {
            "kind": "function",
            "name": "train résnet – ü",
            "resources": {
                "cpus": 2.5,
                "memory": "1G",  # 10**9 bytes: not a whole number of Ki, must survive exactly
                "gpus": 2,
                "gpu_type": "A100",
                "labels": {"zone": "eu-1", "team/ml": "vision"},
            },
            "image": "ghcr.io/org/train:1.2",
            "priority": -3,
            "retries": 4,
            "retry_backoff": 2.5,
            "retry_backoff_factor": 3.0,
            "timeout": 3600.5,
            "env": {"A": "1", "PATH_EXTRA": "/opt/bin", "EMPTY": ""},
            "depends": [new_id(), new_id()],
            "metadata": {"function": "train", "nested": {"list": [1, 2.5, None, "x"], "flag": True}},
        },
        owner="alice@example.org",
    )
    return TaskRow(
        spec=spec,
        state=TaskState.RUNNING,
        seq=seq,
        created_at=T0,
        updated_at=T0 + 5.5,
        attempt=3,
        worker_id="worker-1",
        gpus=(0, 3),
        payload_key=f"tasks/{spec.id}/payload",
        payload_size=123_456_789_012,
        result_key=f"tasks/{spec.id}/result",
        result_size=42,
        error="ValueError: bad\nsecond line\ttab",
        error_kind="exception",
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\n' + "x" * 10_000,
        reason="waiting for 2 A100 GPUs",
        started_at=T0 + 1.25,
        ended_at=T0 + 9.75,
        retry_at=T0 + 100.0,
    )


def dump(store: SqlStore) -> str:
    """Every row of every table, as text."""
    metadata = MetaData()
    metadata.reflect(store.engine)
    parts = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    return "\n".join(parts)


# --- round trips -------------------------------------------------------------------------


def test_task_round_trip_every_field(store: SqlStore) -> None:
    row = full_task()
    store.apply([InsertTask(row)])
    loaded = store.get_task(row.id)
    assert loaded == row
    assert loaded is not None
    assert loaded.spec.resources.memory == 10**9
    assert isinstance(loaded.state, TaskState)
    assert isinstance(loaded.gpus, tuple)
    assert loaded.spec.depends == row.spec.depends
    assert store.get_tasks([row.id, "missing"]) == {row.id: row}
    assert store.load_active() == [row]


def test_task_round_trip_defaults(store: SqlStore) -> None:
    row = TaskRow(spec=TaskSpec(kind="function", owner=""))
    store.apply([InsertTask(row)])
    assert store.get_task(row.id) == row
    assert store.get_task("nope") is None


def test_attempt_round_trip(store: SqlStore) -> None:
    task = make_task(1)
    second = AttemptRow(task_id=task.id, number=2, scheduled_at=T0)
    first = AttemptRow(
        task_id=task.id,
        number=1,
        state=AttemptState.LOST,
        worker_id="w-9",
        gpus=(1, 2, 3),
        scheduled_at=T0,
        started_at=T0 + 1,
        ended_at=T0 + 2,
        exit_code=-9,
        error="worker went away",
        error_kind="lost",
    )
    store.apply([InsertTask(task), InsertAttempt(second), InsertAttempt(first)])
    attempts = store.get_attempts(task.id)
    assert attempts == [first, second]
    assert isinstance(attempts[0].state, AttemptState)
    done = dataclasses.replace(second, state=AttemptState.SUCCEEDED, ended_at=T0 + 3, exit_code=0)
    store.apply([UpdateAttempt(done)])
    assert store.get_attempts(task.id) == [first, done]
    assert store.get_attempts("unknown") == []


def test_worker_upsert_round_trip(store: SqlStore) -> None:
    worker = WorkerRow(
        id="w1",
        name="gpu-box",
        provider="kubernetes",
        token_id="tok",
        hostname="node-3",
        info={"slots": 4, "gpus": [{"index": 0, "uuid": "GPU-1", "model": "A100", "memory": 80 << 30}]},
        connected_at=T0,
        last_seen=T0 + 1,
    )
    other = WorkerRow(id="w0", name="cpu-box")
    store.apply([UpsertWorker(worker), UpsertWorker(other)])
    assert store.get_worker("w1") == worker
    assert store.list_workers() == [other, worker]  # by name
    gone = dataclasses.replace(worker, state="gone", last_seen=T0 + 60, info={})
    store.apply([UpsertWorker(gone)])
    assert store.get_worker("w1") == gone
    assert store.get_worker("w2") is None


def test_blob_index(store: SqlStore) -> None:
    a, b = make_task(1), make_task(2)
    store.apply(
        [
            InsertTask(a),
            InsertTask(b),
            InsertBlob(f"tasks/{a.id}/result", 10, a.id, "result"),
            InsertBlob(f"tasks/{a.id}/payload", 20, a.id, "payload"),
            InsertBlob(f"tasks/{b.id}/payload", 30, b.id, "payload"),
            InsertBlob("shared/x", 1, None, "payload"),
        ]
    )
    assert store.blob_keys(a.id) == [f"tasks/{a.id}/payload", f"tasks/{a.id}/result"]
    assert store.blob_keys("none") == []
    # writing a key again (a retry's new result) replaces its entry
    store.apply([InsertBlob(f"tasks/{a.id}/result", 99, a.id, "result")])
    with store.engine.connect() as conn:
        size = conn.scalar(select(BlobModel.size).where(BlobModel.key == f"tasks/{a.id}/result"))
    assert size == 99


# --- batches -----------------------------------------------------------------------------


def test_last_snapshot_wins(store: SqlStore) -> None:
    task = make_task(1)
    attempt = AttemptRow(task_id=task.id, number=1)
    store.apply([InsertTask(task), InsertAttempt(attempt)])
    scheduled = dataclasses.replace(task, state=TaskState.SCHEDULED, attempt=1, worker_id="w", gpus=(0,))
    running = dataclasses.replace(scheduled, state=TaskState.RUNNING, started_at=T0 + 2)
    done = dataclasses.replace(running, state=TaskState.SUCCEEDED, ended_at=T0 + 3, gpus=())
    a_running = dataclasses.replace(attempt, state=AttemptState.RUNNING)
    a_done = dataclasses.replace(attempt, state=AttemptState.SUCCEEDED, exit_code=0)
    store.apply(
        [
            UpdateTask(scheduled),
            UpdateAttempt(a_running),
            UpdateTask(running),
            UpdateAttempt(a_done),
            UpdateTask(done),
        ]
    )
    assert store.get_task(task.id) == done
    assert store.get_attempts(task.id) == [a_done]


def test_insert_and_update_in_one_batch(store: SqlStore) -> None:
    task = make_task(1)
    scheduled = dataclasses.replace(task, state=TaskState.SCHEDULED, attempt=1, worker_id="w")
    attempt = AttemptRow(task_id=task.id, number=1, worker_id="w", scheduled_at=T0)
    a_running = dataclasses.replace(attempt, state=AttemptState.RUNNING, started_at=T0 + 1)
    running = dataclasses.replace(scheduled, state=TaskState.RUNNING, started_at=T0 + 1)
    worker = WorkerRow(id="w", name="w")
    store.apply(
        [
            UpsertWorker(worker),
            InsertTask(task),
            UpdateTask(scheduled),
            InsertAttempt(attempt),
            UpdateAttempt(a_running),
            UpdateTask(running),
            UpsertWorker(dataclasses.replace(worker, last_seen=T0)),
        ]
    )
    assert store.get_task(task.id) == running
    assert store.get_attempts(task.id) == [a_running]
    assert store.get_worker("w") == dataclasses.replace(worker, last_seen=T0)


def test_failing_batch_rolls_back_duplicate_task(store: SqlStore) -> None:
    existing = make_task(1)
    store.apply([InsertTask(existing)])
    new = make_task(2)
    with pytest.raises(IntegrityError):
        store.apply(
            [
                InsertTask(new),
                UpdateTask(dataclasses.replace(existing, state=TaskState.CANCELLED)),
                UpsertWorker(WorkerRow(id="w", name="w")),
                InsertBlob("k", 1, new.id, "payload"),
                InsertTask(dataclasses.replace(existing, seq=3)),  # same id again
            ]
        )
    assert store.get_task(new.id) is None
    assert store.get_task(existing.id) == existing
    assert store.list_workers() == []
    assert store.blob_keys(new.id) == []
    assert store.next_seq() == 2
    store.apply([InsertTask(new)])  # the store is still usable
    assert store.get_task(new.id) == new


def test_failing_batch_rolls_back_late_failure(store: SqlStore) -> None:
    """The failure comes after tasks were inserted and updated in the same transaction."""
    existing = make_task(1)
    attempt = AttemptRow(task_id=existing.id, number=1)
    store.apply([InsertTask(existing), InsertAttempt(attempt)])
    new = make_task(2)
    with pytest.raises(IntegrityError):
        store.apply(
            [
                InsertTask(new),
                UpdateTask(dataclasses.replace(existing, state=TaskState.FAILED)),
                InsertAttempt(AttemptRow(task_id=new.id, number=1)),
                InsertAttempt(AttemptRow(task_id=make_task(3).id, number=1)),  # no such task
            ]
        )
    assert store.get_task(new.id) is None
    assert store.get_task(existing.id) == existing
    assert store.get_attempts(existing.id) == [attempt]


def test_attempt_of_unknown_task_is_refused(store: SqlStore) -> None:
    """Foreign keys are enforced (on SQLite too)."""
    with pytest.raises(IntegrityError):
        store.apply([InsertAttempt(AttemptRow(task_id=new_id(), number=1))])


def test_update_of_unknown_task_is_logged(store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jupyter_orch.store"):
        store.apply([UpdateTask(make_task(1))])
    assert "orch_tasks: 1 of 1 updated rows were not found" in caplog.text
    assert store.get_task(make_task(1).id) is None


def test_empty_batch_and_bad_change(store: SqlStore) -> None:
    store.apply([])
    with pytest.raises(TypeError):
        store.apply(["not a change"])  # type: ignore[list-item]


def test_big_batch(store: SqlStore) -> None:
    """What the engine's group commit does: thousands of inserts and updates in one call."""
    rows = [make_task(i + 1, name=f"bulk {i}") for i in range(5000)]
    changes: list[InsertTask | UpdateTask] = [InsertTask(r) for r in rows]
    store.apply(changes)
    updated = [dataclasses.replace(r, state=TaskState.SCHEDULED, worker_id="w", reason=None) for r in rows]
    newer = [make_task(5001 + i) for i in range(5000)]
    store.apply([UpdateTask(r) for r in updated] + [InsertTask(r) for r in newer])
    loaded = store.get_tasks([r.id for r in rows])
    assert len(loaded) == 5000
    assert loaded[rows[1234].id] == updated[1234]
    assert store.count_by_state()["scheduled"] == 5000
    assert store.count_by_state()["pending"] == 5000
    assert store.next_seq() == 10001


def test_concurrent_writers_and_readers(store: SqlStore) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for b in range(10):
                rows = [make_task(n * 1000 + b * 20 + i + 1) for i in range(20)]
                store.apply([InsertTask(r) for r in rows])
                store.apply([UpdateTask(dataclasses.replace(r, state=TaskState.SCHEDULED)) for r in rows])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(20):
                store.list_tasks(limit=10)
                store.count_by_state()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_by_state()["scheduled"] == 4 * 10 * 20


# --- queries -----------------------------------------------------------------------------


def test_next_seq(store: SqlStore) -> None:
    assert store.next_seq() == 1
    store.apply([InsertTask(make_task(5)), InsertTask(make_task(3))])
    assert store.next_seq() == 6


def test_load_active_returns_unfinished_tasks_in_seq_order(store: SqlStore) -> None:
    rows = {state: make_task(10 - i, state=state) for i, state in enumerate(TaskState)}
    store.apply([InsertTask(r) for r in rows.values()])
    active = store.load_active()
    assert [r.state for r in active] == [TaskState.RUNNING, TaskState.SCHEDULED, TaskState.PENDING]
    assert [r.seq for r in active] == sorted(r.seq for r in active)
    assert all(not r.state.terminal for r in active)


def test_list_tasks(store: SqlStore) -> None:
    rows = [
        make_task(1, owner="alice", name="Train ResNet"),
        make_task(2, owner="bob", name="eval resnet", state=TaskState.SUCCEEDED),
        make_task(3, owner="alice", name="100% done_ok", state=TaskState.FAILED),
        make_task(4, owner="alice", state=TaskState.RUNNING),
        make_task(5, owner="bob", name="plot"),
    ]
    store.apply([InsertTask(r) for r in rows])

    def seqs(**kwargs: object) -> list[int]:
        return [r.seq for r in store.list_tasks(**kwargs)]  # type: ignore[arg-type]

    assert seqs() == [5, 4, 3, 2, 1]
    assert seqs(owner="alice") == [4, 3, 1]
    assert seqs(owner="carol") == []
    assert seqs(states=["pending"]) == [5, 1]
    assert seqs(states=[TaskState.SUCCEEDED, "failed"]) == [3, 2]
    assert seqs(owner="alice", states=["pending", "running"]) == [4, 1]
    assert seqs(search="RESNET") == [2, 1]
    assert seqs(search="resnet", owner="bob") == [2]
    assert seqs(search="%") == [3]  # LIKE wildcards are plain characters
    assert seqs(search="e_o") == [3]
    assert seqs(search=rows[3].id[-8:].upper()) == [4]  # a piece of an id, any case
    assert seqs(limit=2) == [5, 4]
    assert seqs(limit=2, before_seq=4) == [3, 2]
    assert seqs(limit=2, before_seq=2) == [1]
    assert seqs(limit=0) == []
    assert store.list_tasks(owner="bob")[0] == rows[4]


def test_count_by_state(store: SqlStore) -> None:
    assert store.count_by_state() == {s.value: 0 for s in TaskState}
    store.apply(
        [
            InsertTask(make_task(1, owner="a")),
            InsertTask(make_task(2, owner="a", state=TaskState.FAILED)),
            InsertTask(make_task(3, owner="b")),
        ]
    )
    counts = store.count_by_state()
    assert counts["pending"] == 2 and counts["failed"] == 1 and counts["running"] == 0
    assert store.count_by_state("a")["pending"] == 1
    assert sum(store.count_by_state("nobody").values()) == 0


# --- tokens ------------------------------------------------------------------------------


def test_tokens(store: SqlStore) -> None:
    before = time.time()
    token, secret = store.create_token("gpu box", scope="worker", owner="admin", provider="static")
    api, api_secret = store.create_token("laptop", scope="api", owner="alice")
    assert secret.startswith("orch_") and len(secret) > 40
    assert secret != api_secret
    assert token.created_at >= before and not token.revoked

    assert store.find_token(secret) == token
    assert store.find_token(api_secret) == api
    assert store.find_token(secret + "x") is None
    assert store.find_token("orch_wrong") is None
    assert store.find_token("") is None

    assert store.list_tokens() == [token, api]
    assert store.list_tokens("api") == [api]
    assert store.list_tokens("worker") == [token]

    assert store.revoke_token(token.id) is True
    revoked = store.find_token(secret)
    assert revoked is not None and revoked.revoked and revoked.id == token.id
    assert store.revoke_token(token.id) is True  # again: still revoked, same time
    again = store.find_token(secret)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert store.revoke_token("unknown") is False
    assert store.find_token(api_secret) == api  # others untouched

    text = dump(store)
    assert token.id in text
    assert secret not in text and secret[5:] not in text
    assert api_secret not in text


def test_token_scope_is_checked(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        store.create_token("x", scope="admin")

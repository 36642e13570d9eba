"""Records: plain data the engine and the store share."""

from __future__ import annotations

import dataclasses

import pytest

from jupyter_orch.core.records import AttemptRow, InsertTask, TaskRow, TokenRow, UpdateTask, WorkerRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import AttemptState, TaskState


def test_task_row_mirrors_its_spec() -> None:
    spec = TaskSpec.from_dict({"kind": "shell", "command": "true"}, owner="alice")
    row = TaskRow(spec)
    assert row.id == spec.id
    assert row.owner == "alice"
    assert row.state is TaskState.PENDING
    assert row.attempt == 0 and row.gpus == () and row.worker_id is None
    row.spec = spec.with_owner("bob")
    assert row.owner == "bob"


def test_rows_are_independent() -> None:
    a = WorkerRow("w1", "one")
    b = WorkerRow("w2", "two")
    a.info["slots"] = 4
    assert b.info == {}
    assert AttemptRow("t", 1).state is AttemptState.SCHEDULED


def test_token_revoked() -> None:
    token = TokenRow("k", "laptop")
    assert not token.revoked
    assert dataclasses.replace(token, revoked_at=1.0).revoked
    assert token.scope == "worker"


def test_changes_carry_snapshots() -> None:
    row = TaskRow(TaskSpec.from_dict({"kind": "function"}))
    change = UpdateTask(dataclasses.replace(row))
    row.state = TaskState.SCHEDULED
    assert change.row.state is TaskState.PENDING
    with pytest.raises(dataclasses.FrozenInstanceError):
        InsertTask(row).row = row  # type: ignore[misc]

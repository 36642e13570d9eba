"""A batch of the engine's changes (:mod:`jupyter_orch.core.records`) folded so that each
row is written once, with its last snapshot; :mod:`.writer` writes it. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.records import (
    AttemptRow,
    Change,
    InsertAttempt,
    InsertBlob,
    InsertTask,
    RunRow,
    SaveCacheEntry,
    SaveRun,
    SaveSearch,
    SearchRow,
    TaskRow,
    UpdateAttempt,
    UpdateTask,
    UpsertWorker,
    WorkerRow,
)


class Batch:
    """The rows of a batch of changes, by table.

    A row inserted in the batch and updated later in it is inserted with the later values.
    Two inserts of one key are both kept: the database refuses the second.
    """

    def __init__(self) -> None:
        self.task_inserts: list[TaskRow] = []
        self.task_updates: dict[str, TaskRow] = {}
        self.attempt_inserts: list[AttemptRow] = []
        self.attempt_updates: dict[tuple[str, int], AttemptRow] = {}
        self.workers: dict[str, WorkerRow] = {}
        self.blobs: dict[str, InsertBlob] = {}
        self.runs: dict[str, RunRow] = {}
        self.cache: dict[str, SaveCacheEntry] = {}
        self.searches: dict[str, SearchRow] = {}

    @classmethod
    def fold(cls, changes: Sequence[Change]) -> Batch:
        batch = cls()
        inserted_tasks: dict[str, int] = {}
        inserted_attempts: dict[tuple[str, int], int] = {}
        for change in changes:
            if isinstance(change, InsertTask):
                task_id = change.row.id
                batch.task_updates.pop(task_id, None)
                inserted_tasks[task_id] = len(batch.task_inserts)
                batch.task_inserts.append(change.row)
            elif isinstance(change, UpdateTask):
                task_id = change.row.id
                if task_id in inserted_tasks:
                    batch.task_inserts[inserted_tasks[task_id]] = change.row
                else:
                    batch.task_updates[task_id] = change.row
            elif isinstance(change, InsertAttempt):
                key = (change.row.task_id, change.row.number)
                batch.attempt_updates.pop(key, None)
                inserted_attempts[key] = len(batch.attempt_inserts)
                batch.attempt_inserts.append(change.row)
            elif isinstance(change, UpdateAttempt):
                key = (change.row.task_id, change.row.number)
                if key in inserted_attempts:
                    batch.attempt_inserts[inserted_attempts[key]] = change.row
                else:
                    batch.attempt_updates[key] = change.row
            elif isinstance(change, UpsertWorker):
                batch.workers[change.row.id] = change.row
            elif isinstance(change, InsertBlob):
                batch.blobs[change.key] = change
            elif isinstance(change, SaveRun):
                batch.runs[change.row.id] = change.row
            elif isinstance(change, SaveSearch):
                batch.searches[change.row.id] = change.row
            elif isinstance(change, SaveCacheEntry):
                batch.cache[change.key] = change
            else:
                raise TypeError(f"not a store change: {change!r}")
        return batch

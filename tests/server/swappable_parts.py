"""Parts a deployment configures instead of the defaults (tests/server/test_swappable.py):
each says on the server's output that it is in use."""

from __future__ import annotations

from typing import Any

from jupyter_orch.core.scheduler import Placement
from jupyter_orch.store import FileLogStore, SqlStore


def _say(what: str) -> None:
    print(f"swappable: {what}", flush=True)


class LastWorkerFirst(Placement):
    """Places a task on the worker whose id sorts last."""

    def __init__(self) -> None:
        self.told = False

    def score(self, task: Any, worker: Any) -> tuple[float, ...]:
        if not self.told:
            self.told = True
            _say("placement scored a worker")
        return tuple(-ord(c) for c in worker.id)


class LoudStore(SqlStore):
    def migrate(self) -> None:
        _say(f"store {type(self).__name__} migrated")
        super().migrate()


class LoudLogStore(FileLogStore):
    def append(self, task_id: str, attempt: int, lines: Any) -> int:
        _say(f"log store kept {len(lines)} line(s) of {task_id}")
        return super().append(task_id, attempt, lines)

"""The cache of workflow steps: a cacheable step whose code, parameters and upstream
results are unchanged reuses the result stored for an earlier run of it instead of running.

A step whose dependencies are met is looked up before it is queued (its key digests the
step's code and each upstream result); a hit ends it at once as succeeded, with the reason
saying whose result it reused. A step that ran and succeeded is stored under its key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ..core.protocol import Buffer
from ..core.records import SaveCacheEntry, TaskRow
from ..core.runs import cache_key, result_digest
from ..core.states import TaskState
from .journal import Journal
from .ports import RunStore
from .state import EngineState
from .transitions import Transitions

log = logging.getLogger("jupyter_orch.engine")


class StepCache:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        store: RunStore,
        transitions: Transitions,
        *,
        lookup: Callable[[str], Awaitable[TaskRow | None]],
        read_blob: Callable[[str], Awaitable[Buffer]],
        kick: Callable[[], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.transitions = transitions
        self._lookup = lookup  # a task, active or stored
        self._read_blob = read_blob
        self._kick = kick
        self._keys: dict[str, str] = {}  # cacheable step -> its key ("" while looked up)

    def ready(self, row: TaskRow) -> None:
        """A pending task whose dependencies are met: queue it, unless it is a cacheable
        step not looked up yet (then the cache decides)."""
        step = row.spec.metadata.get("step")
        if isinstance(step, dict) and step.get("cache") and row.id not in self._keys:
            self._keys[row.id] = ""
            asyncio.ensure_future(self._check(row, str(step.get("code", ""))))
            return
        self.state.enqueue(row)

    def step_finished(self, row: TaskRow) -> None:
        """A step ended: a cacheable one that succeeded is stored under its key."""
        key = self._keys.pop(row.id, "")
        if key and row.state == TaskState.SUCCEEDED:
            self.journal.add(SaveCacheEntry(key, row.id, row.result_key, row.result_size, time.time()))

    async def _check(self, row: TaskRow, code: str) -> None:
        entry = None
        key = ""
        try:
            upstream: dict[str, str] = {}
            for dep_id in row.spec.depends:
                dep = await self._lookup(dep_id)
                if dep is None:
                    raise KeyError(dep_id)
                data = None
                if dep.result_key is not None:
                    data = self.state.results.get(dep_id) or await self._read_blob(dep.result_key)
                name = (dep.spec.metadata.get("step") or {}).get("name", dep_id)
                upstream[str(name)] = result_digest(data, dep.spec.kind)
            key = cache_key(code, upstream)
            entry = await self.journal.run(self.store.get_cache_entry, key)
        except Exception:  # no cache then: the step runs
            log.exception("the cache lookup of task %s failed", row.id)
        if self.state.tasks.get(row.id) is not row or row.state != TaskState.PENDING:
            return  # cancelled meanwhile
        if entry is not None:
            self._keys.pop(row.id, None)
            self._finish_cached(row, entry)
            return
        self._keys[row.id] = key
        self.state.enqueue(row)
        self._kick()

    def _finish_cached(self, row: TaskRow, entry: SaveCacheEntry) -> None:
        now = time.time()
        self.transitions.set_state(row, TaskState.SUCCEEDED)
        row.result_key, row.result_size = entry.result_key, entry.result_size
        row.reason = (
            f"cached: reused the result of task {entry.task_id} "
            "(same code, parameters and upstream results); not run again"
        )
        row.started_at = row.ended_at = now
        self.transitions.end(row)

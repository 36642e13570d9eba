"""Workflow runs in the engine: a run's steps are tasks with dependencies; the run follows
their states (step by step, no scan), cancels and retries as one, and reuses the result of a
cacheable step whose code, parameters and upstream results are unchanged.

The run itself is a row saved in the same journal as its tasks. Templates are filled in on
the worker (:mod:`jupyter_orch.worker.steps`), from the upstream results it receives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..core.errors import Conflict, Forbidden, NotFound
from ..core.records import RunRow, SaveRun, TaskRow
from ..core.runs import RunPlan, RunProgress
from ..core.spec import TaskSpec
from ..core.states import RETRYABLE, TaskState
from .accepted import Accepted, Payloads
from .events import EventBus
from .journal import Journal
from .ports import RunsAndTasks
from .state import EngineState
from .transitions import Transitions
from .views import run_view, step_view

FINISHED_RUNS = 1000  # finished runs kept in memory for fast reads


class Runs:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        store: RunsAndTasks,
        bus: EventBus,
        transitions: Transitions,
        *,
        accept: Callable[[Sequence[TaskSpec], Payloads, dict[str, TaskRow]], Accepted],
        committed: Callable[[Accepted], Awaitable[None]],
        cancel_row: Callable[[TaskRow, str], None],
        reset_for_retry: Callable[[TaskRow], None],
        kick: Callable[[], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.bus = bus
        self.transitions = transitions
        self._accept = accept  # take in the steps, or refuse them before anything is stored
        self._committed = committed
        self._cancel_row = cancel_row
        self._reset_for_retry = reset_for_retry
        self._kick = kick
        self.runs: dict[str, RunRow] = {}  # runs still running
        self._progress: dict[str, RunProgress] = {}
        self._finished_runs: OrderedDict[str, RunRow] = OrderedDict()
        self._run_waiters: dict[str, list[asyncio.Future[RunRow]]] = {}

    # ------------------------------------------------------------------ submit
    def forget(self, run_id: str) -> None:
        """A run whose row was never stored (:mod:`.rollback`): as if it had never been."""
        self.runs.pop(run_id, None)
        self._progress.pop(run_id, None)
        for future in self._run_waiters.pop(run_id, ()):
            future.cancel()

    async def submit(self, plan: RunPlan) -> RunRow:
        """Accept a run and its steps; returns once they are committed."""
        run = plan.run
        run.created_at = run.updated_at = time.time()
        self.runs[run.id] = run
        self._progress[run.id] = RunProgress(remaining={s.id for s in plan.specs})
        unit = "run:" + run.id
        self.journal.bind(unit, [s.id for s in plan.specs])  # the run and its steps, or nothing
        try:
            accepted = self._accept(plan.specs, plan.payloads, {})  # refuses before it stores anything
            self.journal.add(SaveRun(dataclasses.replace(run)))  # in the commit of its steps
            await self._committed(accepted)
        except Exception:
            self.runs.pop(run.id, None)
            self._progress.pop(run.id, None)
            raise
        finally:
            self.journal.unbind(unit)
        self._publish_run(run)
        return run

    # ------------------------------------------------------------------ following steps
    def step_finished(self, row: TaskRow) -> None:
        """A step's task reached a terminal state: the run follows."""
        step = row.spec.metadata.get("step")
        if not isinstance(step, dict):
            return
        run_id = str(step.get("run"))
        progress, run = self._progress.get(run_id), self.runs.get(run_id)
        if progress is None or run is None:
            return
        progress.record(row.id, row.state)
        self._set_run_state(run, progress.state)

    def attach_search(self, run_id: str, task_id: str, search_id: str) -> None:
        """A search step's search started: the run's row names it (a restart takes it up)."""
        run = self.runs.get(run_id)
        if run is None:
            return
        for step in run.steps:
            if step.get("task_id") == task_id:
                step["search_id"] = search_id
        run.updated_at = time.time()
        self.journal.add(SaveRun(dataclasses.replace(run, steps=[dict(s) for s in run.steps])))
        self._publish_run(run)

    def _set_run_state(self, run: RunRow, state: str) -> None:
        if state == run.state:
            return
        now = time.time()
        run.state = state
        run.updated_at = now
        run.ended_at = None if state == "running" else now
        self.journal.add(SaveRun(dataclasses.replace(run)))
        self._publish_run(run)
        if state != "running":
            for fut in self._run_waiters.pop(run.id, ()):
                if not fut.done():
                    fut.set_result(run)
            self.runs.pop(run.id, None)
            self._progress.pop(run.id, None)
            self._finished_runs[run.id] = run
            while len(self._finished_runs) > FINISHED_RUNS:
                self._finished_runs.popitem(last=False)

    def _publish_run(self, run: RunRow) -> None:
        if self.bus.subscriber_count:
            self.bus.publish({"type": "run", "run": run_view(run)})

    async def recover(self) -> None:
        """After a restart: follow the runs that were running (their steps' states are read
        once; from then on each step's end updates them)."""
        runs = await self.journal.run(self.store.load_active_runs)
        for run in runs:
            ids = [s["task_id"] for s in run.steps]
            rows = await self.journal.run(self.store.get_tasks, ids)
            progress = RunProgress()
            for task_id in ids:
                row = rows.get(task_id)
                progress.record(task_id, row.state if row is not None else TaskState.CANCELLED)
            self.runs[run.id] = run
            self._progress[run.id] = progress
            self._set_run_state(run, progress.state)

    # ------------------------------------------------------------------ user actions
    async def get(self, run_id: str, owner: str | None = None) -> RunRow:
        run = self.runs.get(run_id) or self._finished_runs.get(run_id)
        if run is None:
            run = await self.journal.run(self.store.get_run, run_id)
        if run is None:
            raise NotFound(f"no workflow run {run_id}")
        if owner is not None and run.owner != owner:
            raise Forbidden(f"workflow run {run_id} belongs to another user")
        return run

    async def wait(self, run_id: str, timeout: float | None, owner: str | None = None) -> RunRow:
        """The run once it has ended, or as it is after ``timeout`` seconds."""
        run = await self.get(run_id, owner)
        if run.state != "running":
            return run
        fut: asyncio.Future[RunRow] = asyncio.get_running_loop().create_future()
        self._run_waiters.setdefault(run_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return run
        finally:
            waiters = self._run_waiters.get(run_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._run_waiters[run_id]

    async def _step_rows(self, run: RunRow) -> dict[str, TaskRow]:
        ids = [s["task_id"] for s in run.steps]
        rows = {i: r for i in ids if (r := self.state.lookup(i)) is not None}
        missing = [i for i in ids if i not in rows]
        if missing:
            stored = await self.journal.run(self.store.get_tasks, missing)
            rows.update({i: self.state.lookup(i) or r for i, r in stored.items()})
        return rows

    async def describe(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        """The run with each step's task state, reason, error and times (the DAG)."""
        run = await self.get(run_id, owner)
        rows = await self._step_rows(run)
        view = run_view(run)
        view["steps"] = [step_view(s, rows.get(s["task_id"])) for s in run.steps]
        return view

    async def listing(self, **filters: Any) -> list[dict[str, Any]]:
        await self.journal.flush()
        runs = await self.journal.run(lambda: self.store.list_runs(**filters))
        return [run_view(self.runs.get(r.id) or self._finished_runs.get(r.id) or r) for r in runs]

    async def cancel(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        run = await self.get(run_id, owner)
        if run.state != "running":
            raise Conflict(f"workflow run {run_id} already {run.state}; nothing to cancel")
        rows = await self._step_rows(run)
        for step in run.steps:
            row = rows.get(step["task_id"])
            if row is not None and not row.state.terminal:
                self._cancel_row(row, "the workflow run was cancelled")
        await self.journal.flush()
        self._kick()
        return await self.describe(run_id, owner)

    async def retry(self, run_id: str, owner: str | None = None) -> dict[str, Any]:
        """Run again the steps that failed, were cancelled or never ran; what succeeded
        (or came from the cache) stays."""
        run = await self.get(run_id, owner)
        if run.state == "running":
            raise Conflict(f"workflow run {run_id} is still running; cancel it or wait for it first")
        rows = await self._step_rows(run)
        again = [r for r in rows.values() if r.state in RETRYABLE]
        if not again:
            raise Conflict(f"workflow run {run_id} {run.state}: no step failed, nothing to retry")
        for row in again:
            self._reset_for_retry(row)
        retried = {row.id for row in again}
        for step in run.steps:  # a search step retried starts a new search
            if step.get("task_id") in retried:
                step.pop("search_id", None)
        progress = RunProgress()
        for task_id, row in rows.items():
            progress.record(task_id, row.state)
        self._finished_runs.pop(run.id, None)
        self.runs[run.id] = run
        self._progress[run.id] = progress
        self._set_run_state(run, progress.state)
        await self.journal.flush()
        for row in again:  # all reset first: a step waits for a retried upstream step
            if row.state == TaskState.PENDING:
                self.transitions.enqueue_or_wait(row)
        self._kick()
        return await self.describe(run_id, owner)

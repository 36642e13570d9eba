"""Workflow steps with a ``search:`` block: the step's task is never sent to a worker. Once
its dependencies have succeeded, a search starts in its place (:class:`.searches.Searches`),
each trial a copy of the step with the trial's parameters; the step waits, its reason
saying how the search goes, and ends with it: succeeded with the result of the best trial
that ran to the end (so later steps read that trial's outputs as the step's), failed when
the search found no such trial, cancelled with it. Cancelling the step (or its run) cancels
the search.

The run's row names each search step's search (``search_id``), so after a restart a step
still waiting takes up its running search again, or ends as its search ended meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..core.records import RunRow, SearchRow, TaskRow
from ..core.search import SearchState
from ..core.searchrequests import progress_text, step_outcome
from ..core.states import TaskState
from .state import EngineState
from .transitions import Transitions

log = logging.getLogger("jupyter_orch.engine")


def search_block(row: TaskRow) -> Mapping[str, Any] | None:
    """The checked ``search:`` block of a workflow step's task, or None."""
    step = row.spec.metadata.get("step")
    block = step.get("search") if isinstance(step, Mapping) else None
    return block if isinstance(block, Mapping) else None


class SearchSteps:
    def __init__(
        self,
        state: EngineState,
        transitions: Transitions,
        *,
        create: Callable[[TaskRow, Mapping[str, Any], bytes, dict[str, TaskRow]], Awaitable[dict[str, Any]]],
        get: Callable[[str], Awaitable[tuple[SearchRow, SearchState | None]]],
        cancel: Callable[[str], Awaitable[Any]],
        running: Callable[[str], bool],
        get_run: Callable[[str], Awaitable[RunRow]],
        attach: Callable[[str, str, str], None],
        lookup: Callable[[str], Awaitable[TaskRow | None]],
        read_blob: Callable[[str], Awaitable[Any]],
        kick: Callable[[], None],
    ) -> None:
        self.state = state
        self.transitions = transitions
        self._create = create  # start a step's search
        self._get = get  # a search and its state, stored or not
        self._cancel = cancel  # cancel a running search
        self._running = running  # the search runs in this engine
        self._get_run = get_run
        self._attach = attach  # note the step's search in its run's row
        self._lookup = lookup  # a task, active or stored
        self._read_blob = read_blob
        self._kick = kick
        self.searching: dict[str, str] = {}  # step task -> its search ("" while it starts)
        self._held: list[TaskRow] = []  # steps ready before the searches were taken up
        self._recovering = False

    # ------------------------------------------------------------------ starting
    def ready(self, row: TaskRow) -> bool:
        """A pending task whose dependencies are met: True when it is a search step (its
        search starts, or goes on), False to queue it as any other task."""
        if search_block(row) is None:
            return False
        if row.id in self.searching:
            return True
        if self._recovering:  # after a restart: its search may be running already
            self._held.append(row)
            return True
        self.searching[row.id] = ""
        row.reason = "starting its search"
        asyncio.ensure_future(self._start(row))
        return True

    async def _start(self, row: TaskRow) -> None:
        block = search_block(row)
        assert block is not None
        try:
            if row.payload_key is None:
                raise ValueError("the step has no payload")
            payload = bytes(self.state.payloads.get(row.id) or await self._read_blob(row.payload_key))
            known: dict[str, TaskRow] = {}
            for dep_id in row.spec.depends:
                dep = await self._lookup(dep_id)
                if dep is not None:
                    known[dep_id] = dep
            if row.state != TaskState.PENDING:
                return  # cancelled meanwhile
            view = await self._create(row, block, payload, known)
        except Exception as exc:
            log.warning("the search of step task %s could not start: %s", row.id, exc)
            self.searching.pop(row.id, None)
            self._end(row, TaskState.FAILED, f"its search could not start: {exc}")
            return
        self.searching[row.id] = view["id"]
        run_id = str((row.spec.metadata.get("step") or {}).get("run"))
        self._attach(run_id, row.id, view["id"])
        if row.state != TaskState.PENDING:  # cancelled while the search started
            await self._cancel_quietly(view["id"])

    # ------------------------------------------------------------------ following
    def changed(self, search: SearchRow, search_state: SearchState | None) -> None:
        """A search changed: its step (if it is a step's) shows how it goes, or ends."""
        step = search.request.get("step")
        if not isinstance(step, Mapping):
            return
        task_id = str(step.get("task_id"))
        row = self.state.tasks.get(task_id)
        if (
            row is None
            or row.state != TaskState.PENDING
            or self.searching.get(task_id) not in ("", search.id)
        ):
            return
        if search.state == "running":
            if search_state is not None:
                row.reason = progress_text(search, search_state)
                self.transitions.publish(row)
            return
        self.searching.pop(task_id, None)
        self._finish(row, search, search_state)

    def _finish(self, row: TaskRow, search: SearchRow, search_state: SearchState | None) -> None:
        outcome = step_outcome(search, search_state)
        if outcome.state != "succeeded" or outcome.task_id is None:
            state = TaskState.CANCELLED if outcome.state == "cancelled" else TaskState.FAILED
            self._end(row, state, outcome.text)
            return
        asyncio.ensure_future(self._succeed(row, outcome.task_id, outcome.text))

    async def _succeed(self, row: TaskRow, trial_id: str, text: str) -> None:
        trial = await self._lookup(trial_id)
        if row.state != TaskState.PENDING:
            return
        if trial is None or trial.state != TaskState.SUCCEEDED:
            self._end(row, TaskState.FAILED, f"{text}, but trial task {trial_id} cannot be read")
            return
        now = time.time()
        self.transitions.set_state(row, TaskState.SUCCEEDED)
        row.result_key, row.result_size = trial.result_key, trial.result_size
        row.reason = text
        row.started_at = row.started_at or now
        row.ended_at = now
        self.transitions.end(row)
        self._kick()

    def _end(self, row: TaskRow, state: TaskState, text: str) -> None:
        if row.state != TaskState.PENDING:
            return
        self.transitions.set_state(row, state)
        row.error_kind = "cancelled" if state == TaskState.CANCELLED else "search"
        row.error = text
        row.reason = None
        row.ended_at = time.time()
        self.transitions.end(row)
        self._kick()

    def step_finished(self, row: TaskRow) -> None:
        """A search step ended (its run was cancelled, or it was): its search is cancelled."""
        search_id = self.searching.pop(row.id, None)
        if search_id and self._running(search_id):
            asyncio.ensure_future(self._cancel_quietly(search_id))

    async def _cancel_quietly(self, search_id: str) -> None:
        try:
            await self._cancel(search_id)
        except Exception as exc:  # ended meanwhile
            log.info("search %s: not cancelled: %s", search_id, exc)

    # ------------------------------------------------------------------ restart
    def recovering(self) -> None:
        """The engine takes up stored tasks: search steps wait for :meth:`recovered`."""
        self._recovering = True

    async def recovered(self) -> None:
        """The searches are taken up: each search step still waiting follows its search
        again, ends as its search ended, or starts one if it had none."""
        self._recovering = False
        held, self._held = self._held, []
        for row in held:
            if row.state != TaskState.PENDING or self.state.tasks.get(row.id) is not row:
                continue
            search_id = await self._search_of(row)
            if search_id and self._running(search_id):
                self.searching[row.id] = search_id
                continue
            if search_id:
                try:
                    search, search_state = await self._get(search_id)
                except Exception:  # no such search: the step starts one
                    search, search_state = None, None
                if search is not None and search.state != "running":
                    self._finish(row, search, search_state)
                    continue
            self.ready(row)

    async def _search_of(self, row: TaskRow) -> str | None:
        step = row.spec.metadata.get("step") or {}
        try:
            run = await self._get_run(str(step.get("run")))
        except Exception:
            return None
        for entry in run.steps:
            if entry.get("task_id") == row.id:
                return entry.get("search_id") or None
        return None

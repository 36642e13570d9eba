"""Hyperparameter searches in the engine: each trial is a ``function`` task whose payload is
the search's pickled call and whose ``metadata["trial"]`` names its search, number and
parameters (the worker passes the parameters as keyword arguments). The pure
:class:`~jupyter_orch.core.search.SearchState` decides which trials to start and which to
stop; this service starts them through the submission path, feeds it each trial's metric
points as they come (a listener on :class:`.metricreports.MetricReports`), cancels the
trials it stops, and follows each trial's end.

The search is a row saved in the same journal as its trials (``SaveSearch``), its state as
JSON, after every change that matters. After a restart the running searches are loaded,
their state rebuilt, and the points of their running trials read back from the metric
store and replayed (points seen already are skipped).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..core.errors import Conflict, Forbidden, NotFound, SpecError
from ..core.ids import blob_key, new_id
from ..core.metrics import Point
from ..core.records import SaveSearch, SearchRow, TaskRow
from ..core.search import SearchConfig, SearchState, TrialPlan
from ..core.searchrequests import check_request, function_trial, search_view, step_trial
from ..core.spec import TaskSpec
from .accepted import Accepted, Payloads
from .events import EventBus
from .journal import Journal
from .ports import SearchesAndTasks
from .state import EngineState

log = logging.getLogger("jupyter_orch.engine")

FINISHED_SEARCHES = 200  # finished searches kept in memory for fast reads
PROGRESS_EVERY = 1.0  # seconds: a search event at most this often for values alone


class Searches:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        store: SearchesAndTasks,
        bus: EventBus,
        *,
        max_payload: int,
        accept: Callable[[Sequence[TaskSpec], Payloads, dict[str, TaskRow]], Accepted],
        committed: Callable[[Accepted], Awaitable[None]],
        cancel_row: Callable[[TaskRow, str], None],
        watch_metrics: Callable[[str, Callable[[str, int, int, list[Point]], None] | None], None],
        read_points: Callable[[str, int, int], Awaitable[tuple[list[Point], int]]],
        read_blob: Callable[[str], Awaitable[bytes]],
        lookup: Callable[[str], Awaitable[TaskRow | None]],
        kick: Callable[[], None],
        changed: Callable[[SearchRow, SearchState | None], None] = lambda row, state: None,
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.bus = bus
        self.max_payload = max_payload
        self._accept = accept
        self._committed = committed
        self._cancel_row = cancel_row  # cancel a task with a reason (its end comes back here)
        self._watch = watch_metrics  # follow a task's metric points (None: stop following)
        self._read_points = read_points  # an attempt's stored points from an offset
        self._read_blob = read_blob
        self._lookup = lookup  # a task, active or stored
        self._kick = kick
        self._changed = changed  # a search changed (a workflow's search step follows it)
        self.searches: dict[str, SearchRow] = {}  # searches still running
        self._states: dict[str, SearchState] = {}
        self._payloads: dict[str, bytes] = {}
        # how a search's trials are made: an SDK search's call, or a copy of a workflow step
        self._trial_of: dict[str, Callable[[SearchRow, TrialPlan], TaskSpec]] = {}
        self._known: dict[str, dict[str, TaskRow]] = {}  # a step's (succeeded) dependencies
        self._active: dict[str, set[str]] = {}  # search -> its trial tasks not ended
        self._news: dict[str, float] = {}  # search -> when its last event went out
        self._finished: OrderedDict[str, tuple[SearchRow, SearchState | None]] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[SearchRow]]] = {}

    # ------------------------------------------------------------------ create
    async def create(self, owner: str, request: Mapping[str, Any], payload: bytes) -> dict[str, Any]:
        """Check the request (nothing is stored when it is wrong), store the search and
        start its first trials; returns once they are committed."""
        checked = check_request(request, payload, self.max_payload)
        return await self._create(owner, checked, payload, function_trial, {})

    async def create_for_step(
        self, step: TaskRow, block: Mapping[str, Any], payload: bytes, known: dict[str, TaskRow]
    ) -> dict[str, Any]:
        """The search of a workflow step (``block``: its checked ``search:``): each trial a
        copy of the step's task (``payload``: the step's) with the trial's parameters;
        ``known``: the step's dependencies, all succeeded."""
        meta = step.spec.metadata.get("step") or {}
        request = {
            "name": f"{meta.get('workflow')}/{meta.get('name')}",
            "config": dict(block["config"]),
            "space": dict(block["space"]),
            "task": {},
            "step": {"task_id": step.id, "run": meta.get("run"), "name": meta.get("name")},
        }
        trial = lambda row, plan: step_trial(step.spec, row, plan)  # noqa: E731
        return await self._create(step.owner, request, payload, trial, known)

    async def _create(
        self,
        owner: str,
        checked: dict[str, Any],
        payload: bytes,
        trial: Callable[[SearchRow, TrialPlan], TaskSpec],
        known: dict[str, TaskRow],
    ) -> dict[str, Any]:
        search_state = SearchState(SearchConfig.from_dict(checked["config"]), checked["space"])
        now = time.time()
        search_id = new_id()
        row = SearchRow(
            id=search_id,
            name=checked["name"],
            owner=owner,
            request=checked,
            payload_key=blob_key("searches", search_id),
            created_at=now,
            updated_at=now,
        )
        self.searches[search_id] = row
        self._states[search_id] = search_state
        self._payloads[search_id] = bytes(payload)
        self._trial_of[search_id] = trial
        self._known[search_id] = known
        self._active[search_id] = set()
        unit = "search:" + search_id
        try:
            self.journal.bind(unit, [search_id])
            self.journal.put_blob(row.payload_key, payload, unit=search_id)
            accepted = self._start_trials(row, search_state, unit=unit)  # saves the row too
            if accepted is not None:
                await self._committed(accepted)
            else:
                await self.journal.flush()
        except Exception:
            self._forget(search_id)
            raise
        finally:
            self.journal.unbind(unit)
        self._publish(row)
        return search_view(row, search_state)

    def _forget(self, search_id: str) -> None:
        self.searches.pop(search_id, None)
        self._news.pop(search_id, None)
        self._states.pop(search_id, None)
        self._payloads.pop(search_id, None)
        self._trial_of.pop(search_id, None)
        self._known.pop(search_id, None)
        for task_id in self._active.pop(search_id, ()):
            self._watch(task_id, None)

    def _start_trials(
        self, row: SearchRow, search_state: SearchState, *, unit: str | None = None
    ) -> Accepted | None:
        """Start the trials the search may start now; saves the search (its trials' task
        ids go in the same commit as the tasks)."""
        active = self._active[row.id]
        plans = search_state.next_trials(len(active))
        payload = self._payloads.get(row.id)
        trial = self._trial_of.get(row.id)
        accepted = None
        if plans and payload is not None and trial is not None:
            specs = [trial(row, p) for p in plans]
            if unit is not None:
                self.journal.bind(unit, [s.id for s in specs])
            accepted = self._accept(
                specs, {s.id: payload for s in specs}, dict(self._known.get(row.id) or {})
            )
            for plan, spec in zip(plans, specs, strict=True):
                search_state.started(plan.number, spec.id)
                active.add(spec.id)
                self._watch(spec.id, self._on_points)
        self._save(row, search_state)
        return accepted

    def _start_more(self, row: SearchRow, search_state: SearchState) -> None:
        """Start trials in a loop callback (a trial ended): the commit is not waited for."""
        try:
            accepted = self._start_trials(row, search_state)
        except Exception as exc:  # a quota, a refused spec: the search cannot go on as asked
            log.warning("search %s could not start trials: %s", row.id, exc)
            if not self._active[row.id]:
                self._end(row, search_state, "failed", error=f"could not start a trial: {exc}")
            return
        if accepted is not None:
            asyncio.ensure_future(self._stored_or_lost(row, search_state, accepted))
        self._kick()

    async def _stored_or_lost(self, row: SearchRow, search_state: SearchState, accepted: Accepted) -> None:
        """Wait for the commit of trials started in a callback; trials the database refused
        (rolled back, so they never end) end failed, and the search goes on without them."""
        try:
            await self._committed(accepted)
        except Exception as exc:
            log.warning("search %s: trials could not be stored: %s", row.id, exc)
            active = self._active.get(row.id, set())
            for task in accepted.fresh:
                if task.id in active:
                    active.discard(task.id)
                    self._watch(task.id, None)
                    search_state.ended(task.id, "failed")
            if row.state == "running" and not active:
                self._end(row, search_state, "failed", error=f"could not store its trials: {exc}")

    def _save(self, row: SearchRow, search_state: SearchState | None) -> None:
        row.updated_at = time.time()
        if search_state is not None:
            row.search_state = search_state.to_dict()
        self.journal.add(SaveSearch(dataclasses.replace(row)))

    def _publish(self, row: SearchRow) -> None:
        state = self._states.get(row.id) or self._finished.get(row.id, (row, None))[1]
        self._changed(row, state)
        if self.bus.subscriber_count:
            view = search_view(row, state, trials=False)
            self.bus.publish({"type": "search", "search": view, "owner": row.owner})

    # ------------------------------------------------------------------ following trials
    def _on_points(self, task_id: str, attempt: int, offset: int, points: list[Point]) -> None:
        """A batch of a trial's metric points: the search judges it, and may stop it."""
        task = self.state.tasks.get(task_id)
        trial = task.spec.metadata.get("trial") if task is not None else None
        search_id = str(trial.get("search")) if isinstance(trial, dict) else ""
        row, search_state = self.searches.get(search_id), self._states.get(search_id)
        if row is None or search_state is None or task_id not in self._active.get(search_id, ()):
            return
        self._feed(row, search_state, task_id, attempt, offset, points)

    def _feed(
        self,
        row: SearchRow,
        search_state: SearchState,
        task_id: str,
        attempt: int,
        offset: int,
        points: list[Point],
    ) -> None:
        before = search_state.recorded
        decisions = search_state.on_points(task_id, enumerate(points, offset), attempt=attempt)
        now = time.monotonic()
        if decisions or search_state.recorded != before:
            self._save(row, search_state)
            self._publish(row)
            self._news[row.id] = now
        elif now - self._news.get(row.id, -PROGRESS_EVERY) >= PROGRESS_EVERY:
            # trials' values move with no decision (random, grid, below a rung): news now
            # and then; the points themselves are stored, and replayed after a restart
            self._publish(row)
            self._news[row.id] = now
        for decision in decisions:
            task = self.state.tasks.get(decision.task_id)
            if task is not None and not task.state.terminal:
                self._cancel_row(task, decision.reason)
        if decisions:
            self._kick()

    def trial_finished(self, task: TaskRow) -> None:
        """A task ended: if it is a trial of a running search, the search follows."""
        trial = task.spec.metadata.get("trial")
        if not isinstance(trial, dict):
            return
        search_id = str(trial.get("search"))
        row, search_state = self.searches.get(search_id), self._states.get(search_id)
        if row is None or search_state is None:
            return
        self._active[search_id].discard(task.id)
        self._watch(task.id, None)
        ending = task.state.value if task.state.value in ("succeeded", "failed", "cancelled") else "failed"
        try:
            search_state.ended(task.id, ending)
        except (NotFound, SpecError):
            return
        if row.state != "running":
            self._save(row, search_state)
            self._publish(row)
            return
        if search_state.done:
            counts = search_state.counts()
            ended = counts["total"] - counts["planned"]
            if ended and counts["failed"] == ended:
                why = (
                    f"every trial failed; the last, #{trial.get('number')}: {task.error or task.state.value}"
                )
                self._end(row, search_state, "failed", error=why)
            else:
                self._end(row, search_state, "succeeded")
            return
        self._start_more(row, search_state)
        self._publish(row)

    def _end(self, row: SearchRow, search_state: SearchState, state: str, error: str | None = None) -> None:
        now = time.time()
        row.state = state
        row.ended_at = now
        if error:
            row.request = {**row.request, "error": error}
        self._save(row, search_state)
        self._publish(row)
        for fut in self._waiters.pop(row.id, ()):
            if not fut.done():
                fut.set_result(row)
        if not self._active.get(row.id):
            self._retire(row, search_state)

    def _retire(self, row: SearchRow, search_state: SearchState) -> None:
        self._forget(row.id)
        self._finished[row.id] = (row, search_state)
        while len(self._finished) > FINISHED_SEARCHES:
            self._finished.popitem(last=False)

    # ------------------------------------------------------------------ restart
    async def recover(self) -> None:
        """After a restart: take up the searches that were running."""
        rows = await self.journal.run(self.store.load_active_searches)
        for row in rows:
            try:
                search_state = SearchState.from_dict(row.search_state)
                payload = await self._read_blob(row.payload_key)
                make_trial, known = await self._source(row)
            except Exception as exc:
                log.warning("search %s cannot go on after the restart: %s", row.id, exc)
                row.state, row.ended_at = "failed", time.time()
                row.request = {**row.request, "error": f"could not be taken up after a restart: {exc}"}
                self._save(row, None)
                continue
            self.searches[row.id] = row
            self._states[row.id] = search_state
            self._payloads[row.id] = bytes(payload)
            self._trial_of[row.id] = make_trial
            self._known[row.id] = known
            self._active[row.id] = set()
            trials = [
                t for t in search_state.table() if t["task_id"] and t["state"] in ("running", "stopping")
            ]
            stored = await self.journal.run(self.store.get_tasks, [t["task_id"] for t in trials])
            for trial in trials:
                task_id = trial["task_id"]
                task = self.state.lookup(task_id) or stored.get(task_id)
                if task is None:
                    search_state.ended(task_id, "cancelled")
                    continue
                if task.state.terminal:
                    self.state_ended(search_state, task)
                    continue
                self._active[row.id].add(task_id)
                self._watch(task_id, self._on_points)
                if task.attempt >= 1:
                    points, _ = await self._read_points(task_id, task.attempt, 0)
                    if points:
                        self._feed(row, search_state, task_id, task.attempt, 0, points)
            if search_state.done:
                counts = search_state.counts()
                ended = counts["total"] - counts["planned"]
                self._end(row, search_state, "failed" if ended and counts["failed"] == ended else "succeeded")
            else:
                self._start_more(row, search_state)
        await self.journal.flush()

    async def _source(
        self, row: SearchRow
    ) -> tuple[Callable[[SearchRow, TrialPlan], TaskSpec], dict[str, TaskRow]]:
        """How a recovered search makes its trials: a workflow step's search from its step's
        task (still waiting for the search) and the step's dependencies."""
        step = row.request.get("step")
        if not isinstance(step, Mapping):
            return function_trial, {}
        task = await self._lookup(str(step.get("task_id")))
        if task is None or task.state.terminal:
            raise NotFound(f"its workflow step's task {step.get('task_id')} is no longer waiting for it")
        stored = await self.journal.run(self.store.get_tasks, list(task.spec.depends))
        known = {d: self.state.lookup(d) or stored[d] for d in task.spec.depends if d in stored}
        spec = task.spec
        return (lambda r, plan: step_trial(spec, r, plan)), known

    @staticmethod
    def state_ended(search_state: SearchState, task: TaskRow) -> None:
        ending = task.state.value if task.state.value in ("succeeded", "failed", "cancelled") else "failed"
        search_state.ended(task.id, ending)

    # ------------------------------------------------------------------ reads and actions
    async def _get(self, search_id: str, owner: str | None) -> tuple[SearchRow, SearchState | None]:
        row = self.searches.get(search_id)
        if row is not None:
            found: tuple[SearchRow, SearchState | None] = (row, self._states.get(search_id))
        elif search_id in self._finished:
            found = self._finished[search_id]
        else:
            stored = await self.journal.run(self.store.get_search, search_id)
            if stored is None:
                raise NotFound(f"no search {search_id}")
            try:
                found = (stored, SearchState.from_dict(stored.search_state))
            except SpecError:
                found = (stored, None)
        if owner is not None and found[0].owner != owner:
            raise Forbidden(f"search {search_id} belongs to another user")
        return found

    async def get(self, search_id: str) -> tuple[SearchRow, SearchState | None]:
        """A search and its state, running, ended or stored."""
        return await self._get(search_id, None)

    def running(self, search_id: str) -> bool:
        return search_id in self.searches

    async def describe(self, search_id: str, owner: str | None = None) -> dict[str, Any]:
        row, search_state = await self._get(search_id, owner)
        return search_view(row, search_state)

    async def listing(self, owner: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        await self.journal.flush()
        rows = await self.journal.run(lambda: self.store.list_searches(owner=owner, limit=limit))
        out = []
        for stored in rows:
            row, search_state = await self._get(stored.id, None)
            out.append(search_view(row, search_state, trials=False))
        return out

    async def wait(self, search_id: str, timeout: float | None, owner: str | None = None) -> dict[str, Any]:
        """The search once it has ended, or as it is after ``timeout`` seconds."""
        row, _ = await self._get(search_id, owner)
        if row.state == "running":
            fut: asyncio.Future[SearchRow] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(search_id, []).append(fut)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                pass
            finally:
                waiters = self._waiters.get(search_id)
                if waiters and fut in waiters:
                    waiters.remove(fut)
        return await self.describe(search_id, owner)

    async def cancel(self, search_id: str, owner: str | None = None) -> dict[str, Any]:
        row, search_state = await self._get(search_id, owner)
        if row.state != "running" or search_state is None:
            raise Conflict(f"search {search_id} already {row.state}; nothing to cancel")
        active = list(self._active.get(search_id, ()))
        self._end(row, search_state, "cancelled")
        for task_id in active:
            task = self.state.tasks.get(task_id)
            if task is not None and not task.state.terminal:
                self._cancel_row(task, "the search was cancelled")
        if search_id in self.searches:
            self._retire(row, search_state)
        await self.journal.flush()
        self._kick()
        return search_view(row, search_state)


__all__ = ["Searches"]

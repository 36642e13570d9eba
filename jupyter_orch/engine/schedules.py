"""Scheduled workflows: registering, listing and removing them, and the loop that fires them.

A schedule is a workflow run request (the file's text, its notebooks, ``base_dir``) kept in
the database with a cron expression and params. The loop wakes at the next firing time (at
most ``max_sleep`` seconds later, and at once when a schedule is added or removed), and for
each schedule due (:func:`jupyter_orch.core.schedule.due`: once for the latest missed time,
however many were missed while the server was down) plans a run and submits it to the
engine. A schedule whose request no longer plans is logged, its error kept for its view,
and it is marked fired all the same, so it does not fail again on every tick.

The clock is an argument (``clock``): tests move it and call :meth:`Schedules.tick` (or
:meth:`Schedules.wake` the running loop) instead of waiting for wall-clock times.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

from ..core.errors import Forbidden, NotFound, OrchError, SpecError
from ..core.records import RunRow, ScheduleRow
from ..core.runs import RunPlan
from ..core.schedule import check_cron, due
from ..workflows.submission import plan_request
from .journal import Journal
from .ports import ScheduleStore

log = logging.getLogger("jupyter_orch.engine")

REQUEST_KEYS = ("source", "filename", "files", "base_dir", "workflow")  # what a run needs, kept
MAX_NAME = 200


class RunSubmitter(Protocol):
    """What firing a schedule needs of the engine (``jupyter_orch.engine.Engine``): a
    journal to read the store through, and submitting a run."""

    journal: Journal

    async def submit_run(self, plan: RunPlan) -> RunRow: ...


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _minute(ts: float) -> datetime:
    """``ts`` to the whole minute: cron times are minutes, and ``due`` takes a ``now`` inside
    a matching minute as the firing time itself (so 03:00:45 would fire again after 03:00:30)."""
    return _dt(ts - ts % 60)


class Schedules:
    def __init__(
        self,
        engine: RunSubmitter,
        store: ScheduleStore,
        prepare_dir: Callable[[str], str],
        *,
        clock: Callable[[], float] = time.time,
        max_sleep: float = 30.0,
    ) -> None:
        self.engine = engine
        self.store = store
        self.prepare_dir = prepare_dir
        self.clock = clock
        self.max_sleep = max_sleep
        self.errors: dict[str, str] = {}  # schedule id -> why its last firing made no run
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.engine.journal.run(fn, *args)

    # ------------------------------------------------------------------ user actions
    async def add(self, body: Any, owner: str) -> dict[str, Any]:
        """Register a run request (``POST /workflows``'s body plus ``cron`` and an optional
        ``name``) once it is checked: the cron expression, then the workflow planned once
        (every problem of the file, the params' types), nothing submitted."""
        if not isinstance(body, Mapping):
            raise SpecError("a schedule is a JSON object: a workflow run request with a cron expression")
        cron = body.get("cron")
        if not isinstance(cron, str):
            raise SpecError("cron: the cron expression to run on is needed (e.g. '0 3 * * *')", field="cron")
        cron = check_cron(cron)
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise SpecError(f"name must be text of at most {MAX_NAME} characters", field="name")
        request = {k: body[k] for k in REQUEST_KEYS if k in body}
        params = body.get("params") or {}
        plan = await asyncio.get_running_loop().run_in_executor(
            None, lambda: plan_request({**request, "params": params}, owner=owner, prepare_dir=lambda _: "")
        )
        row = await self._db(
            lambda: self.store.create_schedule(
                name or plan.run.name, cron, request, dict(params), owner=owner
            )
        )
        self.wake()
        return self.view(row)

    async def views(self, owner: str | None = None) -> list[dict[str, Any]]:
        rows = await self._db(self.store.list_schedules, owner)
        return [self.view(r) for r in rows]

    async def get(self, schedule_id: str, owner: str | None = None) -> ScheduleRow:
        row: ScheduleRow | None = await self._db(self.store.get_schedule, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        if owner is not None and row.owner != owner:
            raise Forbidden(f"schedule {schedule_id} belongs to another user")
        return row

    async def remove(self, schedule_id: str, owner: str | None = None) -> dict[str, Any]:
        row = await self.get(schedule_id, owner)
        await self._db(self.store.delete_schedule, row.id)
        self.errors.pop(row.id, None)
        self.wake()
        return self.view(row)

    def view(self, row: ScheduleRow) -> dict[str, Any]:
        try:
            firing = due(row.cron, _dt(row.last_fired_at or row.created_at), _minute(self.clock()))
            next_at: float | None = (firing.due or firing.next).timestamp()  # one not made yet is next
        except OrchError:  # a cron expression stored before it was checked: it never fires
            next_at = None
        return {
            "id": row.id,
            "name": row.name,
            "cron": row.cron,
            "owner": row.owner,
            "filename": row.workflow.get("filename"),
            "params": dict(row.params),
            "created_at": row.created_at,
            "last_fired_at": row.last_fired_at,
            "last_run_id": row.last_run_id,
            "last_error": self.errors.get(row.id),
            "next_at": next_at,
        }

    # ------------------------------------------------------------------ firing
    async def tick(self) -> tuple[list[str], float]:
        """Fire what is due now: the ids of the runs made, and the time of the next firing
        of any schedule after now (``inf`` when there is none)."""
        async with self._lock:
            now = self.clock()
            made: list[str] = []
            following = math.inf
            rows: list[ScheduleRow] = await self._db(self.store.list_schedules, None)
            for row in rows:
                try:
                    firing = due(row.cron, _dt(row.last_fired_at or row.created_at), _minute(now))
                except OrchError as exc:  # a cron expression stored before it was checked
                    self._failed(row, exc)
                    continue
                following = min(following, firing.next.timestamp())
                if firing.due is None:
                    continue
                run_id = await self._fire(row)
                if run_id is not None:
                    made.append(run_id)
                # fired, even when no run came of it (the error is kept): not again each tick
                last_run = run_id or row.last_run_id
                await self._db(self.store.mark_schedule_fired, row.id, firing.due.timestamp(), last_run)
            return made, following

    async def _fire(self, row: ScheduleRow) -> str | None:
        request = {**row.workflow, "params": dict(row.params)}
        try:
            plan = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: plan_request(
                    request, owner=row.owner, prepare_dir=self.prepare_dir, schedule_id=row.id
                ),
            )
            run = await self.engine.submit_run(plan)
        except Exception as exc:
            self._failed(row, exc)
            return None
        self.errors.pop(row.id, None)
        log.info("schedule %s (%s) fired: workflow run %s", row.id, row.name, run.id)
        return run.id

    def _failed(self, row: ScheduleRow, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
        self.errors[row.id] = message
        log.error("schedule %s (%s) could not start its workflow run: %s", row.id, row.name, message)

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def wake(self) -> None:
        """Tick now (a schedule changed, or a test moved the clock)."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # a wake-up during the tick makes another tick at once
            following = self.clock() + self.max_sleep
            try:
                _, following = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away for a moment: try again later
                log.exception("the schedule loop could not read or fire schedules")
            delay = min(max(following - self.clock(), 0.05), self.max_sleep)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

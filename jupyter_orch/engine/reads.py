"""What users read of tasks: a task by id, waits for outcomes, results, descriptions,
lists, counts and logs. Reads only: memory first (the live rows), then the store, after
the journal's pending commits where an answer must include them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from ..core.errors import Conflict, Forbidden, NotFound
from ..core.records import TaskRow, TimelineSpan
from .journal import Journal
from .ports import Blobs, Logs, TaskStore
from .state import EngineState
from .views import attempt_view, task_view


class Reads:
    def __init__(
        self, state: EngineState, journal: Journal, store: TaskStore, blobs: Blobs, logs: Logs
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.blobs = blobs
        self.logs = logs

    async def lookup(self, task_id: str) -> TaskRow | None:
        """The live row of a task, or its stored one, or None."""
        row = self.state.lookup(task_id)
        if row is None:
            stored = await self.journal.run(self.store.get_task, task_id)
            # submitted or changed while the store was read: memory has the live row
            row = self.state.lookup(task_id) or stored
        return row

    async def get_row(self, task_id: str, owner: str | None = None) -> TaskRow:
        row = await self.lookup(task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        if owner is not None and row.owner != owner:
            raise Forbidden(f"task {task_id} belongs to another user")
        return row

    async def timeline(self, since: float, until: float, limit: int) -> list[TimelineSpan]:
        """The attempts that ran between the two times (the latest ``limit`` by start), as
        stored once what memory holds is committed."""
        await self.journal.flush()
        return await self.journal.run(self.store.timeline, since, until, limit)

    async def read_blob(self, key: str) -> bytes:
        """A payload or result: small ones are in the database (``db:`` keys)."""
        if key.startswith("db:"):
            return await self.journal.run(self.store.get_blob, key)
        return await self.journal.run(self.blobs.get, key)

    def when_done(self, row: TaskRow) -> asyncio.Future[TaskRow]:
        """A future resolved (after the commit) when ``row`` reaches a terminal state."""
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        row = self.state.lookup(row.id) or row  # the live row, not a copy read earlier
        if self.state.ended(row):
            fut.set_result(row)
        else:
            self.state.add_waiter(row.id, fut)
        return fut

    def on_done(self, row: TaskRow, callback: Callable[[TaskRow], None]) -> None:
        """Call ``callback(row)`` when ``row`` reaches a terminal state: in the loop turn it
        is announced (no future, no turn more), or now if it has already."""
        row = self.state.lookup(row.id) or row
        if self.state.ended(row):
            callback(row)
        else:
            self.state.add_done_call(row.id, callback)

    async def wait(self, task_id: str, timeout: float | None, owner: str | None = None) -> TaskRow:
        row = await self.get_row(task_id, owner)
        if self.state.ended(row):
            return row
        fut: asyncio.Future[TaskRow] = asyncio.get_running_loop().create_future()
        self.state.add_waiter(task_id, fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return self.state.lookup(task_id) or row
        finally:
            self.state.drop_waiter(task_id, fut)

    def cached_result(self, row: TaskRow) -> bytes | memoryview | None:
        """The task's result if it is still in memory (most recent small results are)."""
        return self.state.results.get(row.id) if row.result_key is not None else None

    async def result_bytes(self, row: TaskRow) -> bytes | memoryview:
        if row.result_key is None:
            raise Conflict(f"task {row.id} is {row.state.value} and has no result")
        data = self.state.results.get(row.id)
        if data is None:
            await self.journal.flush()  # a result too large to cache may not be on disk yet
            data = await self.read_blob(row.result_key)
        return data

    async def notebook_result(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        """A notebook task's stored result, ``{"notebook", "outputs", "name"}`` (JSON, never a
        pickle); Conflict for another kind of task or one with no notebook stored yet."""
        row = await self.get_row(task_id, owner)
        if row.spec.kind != "notebook":
            raise Conflict(f"task {task_id} is a {row.spec.kind} task, not a notebook")
        if row.result_key is None:
            raise Conflict(f"task {task_id} is {row.state.value}: its notebook has not been stored yet")
        try:
            result = json.loads(bytes(await self.result_bytes(row)))
        except ValueError:
            raise Conflict(f"task {task_id} stored no readable notebook") from None
        result.setdefault("name", row.spec.metadata.get("notebook"))
        return dict(result)

    async def describe(self, task_id: str, owner: str | None = None) -> dict[str, Any]:
        row = await self.get_row(task_id, owner)
        view = task_view(row)
        await self.journal.flush()  # the outcome may be announced a commit ahead of the store
        attempts = await self.journal.run(self.store.get_attempts, task_id)
        view["attempts"] = [attempt_view(a) for a in attempts]
        return view

    async def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        await self.journal.flush()  # what was announced is what the query sees
        rows = await self.journal.run(lambda: self.store.list_tasks(**filters))
        # the store may lag the engine by one commit: prefer the live rows
        return [task_view(self.state.lookup(r.id) or r) for r in rows]

    async def counts(self, owner: str | None = None) -> dict[str, int]:
        await self.journal.flush()
        return await self.journal.run(self.store.count_by_state, owner)

    async def usage(self, since: float, until: float) -> dict[str, Any]:
        """GPU-hours and task-hours per user between ``since`` and ``until`` (as stored:
        attempts still running count up to ``until``), and per group, the users' groups
        as their latest requests said."""
        await self.journal.flush()
        totals = await self.journal.run(self.store.usage_between, since, until)
        users: list[dict[str, Any]] = [
            {
                "user": u.owner,
                "groups": sorted(self.state.groups_of(u.owner)),
                "gpu_hours": u.gpu_seconds / 3600,
                "task_hours": u.task_seconds / 3600,
                "attempts": u.attempts,
            }
            for u in totals
        ]
        groups: dict[str, dict[str, Any]] = {}
        for user in users:
            for name in user["groups"]:
                group = groups.setdefault(
                    name, {"group": name, "gpu_hours": 0.0, "task_hours": 0.0, "users": 0}
                )
                group["gpu_hours"] += user["gpu_hours"]
                group["task_hours"] += user["task_hours"]
                group["users"] += 1
        return {
            "since": since,
            "until": until,
            "users": users,
            "groups": sorted(groups.values(), key=lambda g: g["group"]),
        }

    async def read_logs(
        self, row: TaskRow, attempt: int | None, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int, int]:
        number = attempt or row.attempt
        if number < 1:
            return [], 0, 0
        lines, next_offset = await asyncio.get_running_loop().run_in_executor(
            None, self.logs.read, row.id, number, offset, limit
        )
        return lines, next_offset, number

"""Live feeds a user follows over a WebSocket: ``/events`` (task, worker, log, metrics and
workflow run events, filtered to what the user may see) and ``/tasks/{id}/logs/follow`` (one
task's log so far, then its live lines, then ``end``; with ``?metrics=1`` its metric points
too, stored then live)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..core.errors import OrchError, SpecError
from ..core.states import TaskState
from ..engine.views import task_view
from .authsocket import AuthedWebSocket
from .visibility import worker_view, worker_views
from .wsroute import MAX_INT64

POINTS_PER_MESSAGE = 5000  # stored metric points sent at a time to a log follower


def flag(handler: Any, name: str) -> bool:
    """A yes/no query argument: 1, true, 0, false or empty (no)."""
    raw = handler.get_query_argument(name, "0")
    if raw not in ("", "0", "1", "true", "false"):
        raise SpecError(f"query parameter {name} must be 1 or 0 (true or false)", field=name)
    return raw in ("1", "true")


class EventsHandler(AuthedWebSocket):
    """``/events``: task, worker and (with ``?types=...,log,run``) log and workflow run
    events, as JSON lines; metrics events only with ``?metrics=1`` (or ``metrics`` among
    the types): they come often."""

    def read_arguments(self) -> None:
        self._metrics = flag(self, "metrics")

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        types = set((self.get_query_argument("types", "task,worker") or "").split(","))
        if self._metrics:
            types.add("metrics")
        identity = self.identity
        owner = identity.name
        see_all = identity.reads_all

        def wanted(event: dict[str, Any]) -> bool:
            kind = event["type"]
            if kind not in types:
                return False
            if kind == "task":
                return see_all or event["task"]["owner"] == owner
            if kind in ("log", "metrics"):
                return see_all or event.get("owner") == owner
            if kind == "run":
                return see_all or event["run"]["owner"] == owner
            if kind == "search":
                return see_all or event.get("owner") == owner
            return True

        self._sub = self._engine.bus.subscribe(wanted)
        self._identity = identity
        workers = worker_views(self._engine.worker_list(), identity, self._task_owner)
        self.send_json({"type": "hello", "seq": self._engine.bus.seq, "workers": workers})
        self._pump = asyncio.ensure_future(self._forward())

    async def _forward(self) -> None:
        while True:
            event = await self._sub.get()
            if event is None:
                self.send_json({"type": "overflow", "message": "too many events; re-read the state"})
                self.close()
                return
            if event["type"] == "worker" and not self._identity.reads_all:
                view = worker_view(event["worker"], self._identity, self._task_owner)
                if view is None:
                    continue  # another user's own worker
                event = {**event, "worker": view}
            self.send_json(event)

    def _task_owner(self, task_id: str) -> str | None:
        row = self._engine.tasks.get(task_id)
        return row.owner if row is not None else None

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        if hasattr(self, "_sub"):
            self._sub.close()
            self._pump.cancel()


class LogFollowHandler(AuthedWebSocket):
    """``/tasks/{id}/logs/follow``: the log so far, then live lines, then ``end``. With
    ``?metrics=1`` the attempt's metric points too (``{"type": "metrics", "attempt",
    "offset", "points"}``): those stored first, then live ones, and a retry's from its start."""

    def read_arguments(self) -> None:
        self._attempt, self._offset = (self._whole_number(n) for n in ("attempt", "offset"))
        self._metrics = flag(self, "metrics")

    def _whole_number(self, name: str) -> int:
        raw = self.get_query_argument(name, "0")
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_INT64:
            raise SpecError(
                f"query parameter {name} must be a whole number from 0 to {MAX_INT64}", field=name
            )
        return int(raw)

    async def check_access(self, task_id: str) -> None:  # type: ignore[override]
        await self._engine.get_row(task_id, self.identity.read_filter())  # 404 or 403

    def open(self, task_id: str) -> None:  # type: ignore[override]
        self._pump = asyncio.ensure_future(self._follow(task_id))

    async def _follow(self, task_id: str) -> None:
        engine = self._engine
        try:
            row = await engine.get_row(task_id, self.identity.read_filter())
        except OrchError as exc:
            self.send_json({"type": "error", **exc.to_dict()})
            self.close()
            return
        attempt = self._attempt or row.attempt
        offset = self._offset
        kinds = ("log", "metrics") if self._metrics else ("log",)
        sub = engine.bus.subscribe(
            lambda e: (
                (e["type"] in kinds and e["task_id"] == task_id)
                or (e["type"] == "task" and e["task"]["id"] == task_id)
            )
        )
        points = 0  # the offset of the next metric point to send
        try:
            # the state before the read: what happens during it arrives as events (lines
            # already read are skipped by their offsets)
            state = row.state
            self.send_json({"type": "state", "task": task_view(row)})  # where it stands (and why)
            if attempt:
                lines, offset, _ = await engine.read_logs(row, attempt, offset, None)
                if lines:
                    self.send_json({"type": "lines", "attempt": attempt, "lines": lines})
                points = await self._stored_points(task_id, attempt)
            while not state.terminal or (row.attempt != attempt and row.attempt > 0):
                event = await sub.get()
                if event is None:
                    break
                if event["type"] == "task":
                    state = TaskState(event["task"]["state"])
                    self.send_json({"type": "state", "task": event["task"]})
                    if event["task"]["attempt"] != attempt and state.active:
                        attempt, offset = event["task"]["attempt"], 0  # a retry started: follow it
                        points = await self._stored_points(task_id, attempt)
                    if state.terminal:
                        break
                    continue
                if event["attempt"] != attempt:
                    continue
                if event["type"] == "metrics":
                    points = self._live_points(event, points)
                    continue
                skip = max(0, offset - event["offset"])
                fresh = event["lines"][skip:]
                if fresh:
                    offset = event["offset"] + len(event["lines"])
                    self.send_json({"type": "lines", "attempt": attempt, "lines": fresh})
            final = await engine.get_row(task_id, self.identity.read_filter())
            self.send_json({"type": "end", "task": task_view(final)})
        finally:
            sub.close()
        self.close()

    async def _stored_points(self, task_id: str, attempt: int) -> int:
        """Send the points of ``attempt`` stored so far (with ``?metrics=1``); the offset after them."""
        if not self._metrics:
            return 0
        points, after = await self._engine.metric_reads.points(task_id, attempt, 0)
        for start in range(0, len(points), POINTS_PER_MESSAGE):
            chunk = points[start : start + POINTS_PER_MESSAGE]
            self.send_json({"type": "metrics", "attempt": attempt, "offset": start, "points": chunk})
        return after

    def _live_points(self, event: dict[str, Any], after: int) -> int:
        """Send the points of a metrics event not sent yet; the offset after them."""
        skip = max(0, after - event["offset"])
        fresh = event["points"][skip:]
        if not fresh:
            return after
        self.send_json(
            {
                "type": "metrics",
                "attempt": event["attempt"],
                "offset": event["offset"] + skip,
                "points": fresh,
            }
        )
        return int(event["offset"]) + len(event["points"])

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        if hasattr(self, "_pump"):
            self._pump.cancel()

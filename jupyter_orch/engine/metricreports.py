"""The metric points workers report for the attempts they hold (``metrics`` messages).

Points are numbered per attempt from 0, like log lines: a resend after a reconnect keeps
only what is new (the welcome's ``metric_offsets`` say where the server stands), points
lost while the worker was away leave a gap (a warning in the server's log), and a point
that does not follow :func:`jupyter_orch.core.metrics.parse_point` is dropped. Kept points
go to the metric store and out on the event bus as ``metrics`` events. A disk that cannot
take them leaves the worker's connection alone: live readers still get them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core import protocol
from ..core.metrics import Point, parse_point
from .events import EventBus
from .ports import Metrics
from .state import EngineState

log = logging.getLogger("jupyter_orch.engine")


class MetricReports:
    def __init__(self, state: EngineState, bus: EventBus, metrics: Metrics | None) -> None:
        self.state = state
        self.bus = bus
        self.store = metrics  # None: points are published live only, not kept
        self._next: dict[tuple[str, int], int] = {}  # next offset expected per attempt (worker's numbering)
        self._warned: set[tuple[str, int, str]] = set()  # (task, attempt, what) warned of once
        # who follows a task's points as they come (a search's trial): called with the
        # attempt, the stored offset of the first point and the points
        self.listeners: dict[str, Callable[[str, int, int, list[Point]], None]] = {}

    def offsets(self, hello: protocol.Message) -> list[list[Any]]:
        """How many points we hold of each attempt the worker (saying hello) still has."""
        out = []
        for entry in [*(hello.get("running") or []), *(hello.get("finished") or [])]:
            if not isinstance(entry, dict):
                continue
            task_id, attempt = entry.get("task_id"), entry.get("attempt")
            if isinstance(task_id, str) and isinstance(attempt, int) and not isinstance(attempt, bool):
                try:
                    out.append([task_id, attempt, self._expected(task_id, attempt)])
                except (OSError, ValueError) as exc:
                    log.warning("cannot count the metrics of task %s (attempt %s): %s", task_id, attempt, exc)
        return out

    def _expected(self, task_id: str, attempt: int) -> int:
        offset = self._next.get((task_id, attempt))
        if offset is None:
            held = self.store.count(task_id, attempt) if self.store is not None else 0
            offset = self._next[(task_id, attempt)] = held
        return offset

    def forget(self, task_id: str, attempt: int) -> None:
        """The attempt has ended: nothing more comes for it."""
        self._next.pop((task_id, attempt), None)

    def _warn_once(self, key: tuple[str, int], what: str, text: str, *args: Any) -> None:
        if (*key, what) not in self._warned:
            if len(self._warned) > 10_000:
                self._warned.clear()
            self._warned.add((*key, what))
            log.warning(text, *args)

    def on_metrics(self, msg: protocol.Message) -> None:
        """A ``metrics`` message of an attempt the sending worker holds (checked by the caller)."""
        task_id, attempt = msg["task_id"], msg["attempt"]
        key = (task_id, attempt)
        raw = msg.get("points")
        raw = list(raw) if isinstance(raw, list) else []
        expected = self._expected(task_id, attempt)
        offset = msg.get("offset")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            offset = expected
        if offset < expected:  # a resend after a reconnect: keep only what is new
            raw = raw[expected - offset :]
            offset = expected
        self._next[key] = offset + len(raw)  # in the worker's numbering
        if offset > expected and raw:
            self._warn_once(
                key,
                "gap",
                "%d metric point(s) of task %s (attempt %d) were lost while its worker was away",
                offset - expected,
                task_id,
                attempt,
            )
        points: list[Point] = [p for p in (parse_point(r) for r in raw) if p is not None]
        if len(points) < len(raw):
            self._warn_once(
                key,
                "bad",
                "dropped %d malformed metric point(s) of task %s (attempt %d)",
                len(raw) - len(points),
                task_id,
                attempt,
            )
        if not points:
            return
        count = self._keep(task_id, attempt, points, offset)
        listener = self.listeners.get(task_id)
        if listener is not None:
            try:
                listener(task_id, attempt, count - len(points), points)
            except Exception:  # a listener's failure never drops the worker's points
                log.exception("the listener of task %s's metrics failed", task_id)
        row = self.state.tasks.get(task_id)
        self.bus.publish(
            {
                "type": "metrics",
                "task_id": task_id,
                "attempt": attempt,
                "owner": row.owner if row else None,
                "offset": count - len(points),
                "points": points,
            }
        )

    def _keep(self, task_id: str, attempt: int, points: list[Point], offset: int) -> int:
        """Store the points; the number of points of the attempt after them."""
        if self.store is None:
            return offset + len(points)
        try:
            return self.store.append(task_id, attempt, points)
        except (OSError, ValueError) as exc:  # a full or read-only disk: live readers still get them
            key = (task_id, attempt)
            self._warn_once(key, "disk", "could not write the metrics of task %s (attempt %d): %s", *key, exc)
            return offset + len(points)

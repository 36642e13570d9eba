"""The tasks on one worker: those sent ahead waiting for a slot, those running on one, and
their end, reported through the outbox.

:class:`Tasks` places ``assign`` messages on free slots (in order, a warm executor first),
cancels and releases them, and finishes each into the :class:`~.outbox.Outbox`; it is given
the worker's connection, outbox and "something changed" event by :class:`~.agent.Worker`.
A task's output lines go to the outbox's log; its metric lines (stream ``metric``) are
checked with :func:`~jupyter_orch.core.metrics.parse_point` and go to the outbox's metrics,
the malformed ones dropped and counted in one log line at the attempt's end.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..core import protocol
from ..core.metrics import parse_point
from .assignments import message_key, task_request
from .connection import Connection
from .outbox import Key, Outbox
from .outcomes import Outcome
from .slots import Slot, TaskRequest

log = logging.getLogger("jupyter_orch.worker")

__all__ = ["LAZY_REPORTS_ABOVE", "UNSUPPORTED_KINDS", "Running", "Tasks"]

UNSUPPORTED_KINDS: tuple[str, ...] = ()
LAZY_REPORTS_ABOVE = 4  # tasks still queued here for a finished report to wait for company
MALFORMED_NOTE = "[jupyter-orch] {n} malformed metric report(s) were dropped (the first: {first})"


@dataclass
class Running:
    request: TaskRequest
    slot: Slot
    started: float = field(default_factory=time.monotonic)
    pid: int | None = None
    malformed: int = 0  # metric lines dropped
    first_malformed: str = ""


class Tasks:
    """Queued and running tasks of worker ``name`` on its ``slots`` (set once they exist)."""

    def __init__(
        self, name: str, connection: Connection, outbox: Outbox, changed: asyncio.Event, task_url: str
    ) -> None:
        self.name = name
        self.connection = connection
        self.outbox = outbox
        self.changed = changed
        self.task_url = task_url  # JUPYTER_ORCH_URL inside tasks
        self.slots: list[Slot] = []
        self.running: dict[Key, Running] = {}
        self.queued: collections.deque[tuple[Key, TaskRequest]] = collections.deque()
        self.accepting = True
        self.background: set[asyncio.Task[Any]] = set()

    def assign(self, message: protocol.Message) -> None:
        key = message_key(message)
        if key is None:
            log.warning("ignoring an assign without task_id/attempt")
            return
        if key in self.running:
            log.info("task %s attempt %d is already running here", *key)
            return
        if key in self.outbox.reports:
            self.outbox.resend(key)
            return
        kind = str(message.get("kind"))
        self.outbox.open(key)
        if not self.accepting:
            self.finish(key, Outcome.failure("worker_error", f"worker {self.name} is shutting down"))
            return
        if kind in UNSUPPORTED_KINDS:
            error = f"this worker ({self.name}, jupyter-orch {__version__}) does not support {kind} tasks yet"
            self.finish(key, Outcome.failure("worker_error", error))
            return
        try:
            request = task_request(key, kind, message, self.task_url)
        except (TypeError, ValueError) as exc:
            self.finish(key, Outcome.failure("bad_payload", f"the assignment is malformed: {exc}"))
            return
        slot = self._pick_slot(request.gpus)
        if slot is None:
            # the server sent it ahead (prefetch): it starts when a slot frees, in order
            self.queued.append((key, request))
            return
        self._start(key, request, slot)

    def _start(self, key: Key, request: TaskRequest, slot: Slot) -> None:
        running = Running(request, slot)
        self.running[key] = running
        sink, started = self._sink(key, running), self._on_started(key, running)
        # a warm executor gets the task now; the coroutine below then only waits for it
        slot.begin(request, sink, started)
        task = asyncio.ensure_future(self._execute(key, running, sink, started))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def _start_queued(self) -> None:
        while self.queued:
            key, request = self.queued[0]
            slot = self._pick_slot(request.gpus)
            if slot is None:
                return
            self.queued.popleft()
            self._start(key, request, slot)

    def _pick_slot(self, gpus: list[int]) -> Slot | None:
        # a slot is taken from the moment a task is given to it (its run starts a step later)
        taken = {id(r.slot) for r in self.running.values()}
        free = [slot for slot in self.slots if not slot.busy and id(slot) not in taken]
        warm = [slot for slot in free if slot.ready_for(gpus)]
        candidates = warm or free
        return candidates[0] if candidates else None

    def _sink(self, key: Key, running: Running) -> Callable[[float, str, str], None]:
        outbox = self.outbox

        def sink(ts: float, stream: str, text: str) -> None:
            if stream != "metric":
                outbox.line(key, ts, stream, text)
                return
            point = _point(text)
            if point is not None:
                outbox.metric(key, point)
            else:
                running.malformed += 1
                running.first_malformed = running.first_malformed or text

        return sink

    def _note_malformed(self, key: Key, running: Running) -> None:
        """One log line for the attempt's malformed metric lines, after its last output."""
        if running.malformed:
            first = running.first_malformed
            first = repr(first if len(first) <= 100 else first[:100] + "...")
            note = MALFORMED_NOTE.format(n=running.malformed, first=first)
            self.outbox.line(key, time.time(), "stderr", note)

    def _on_started(self, key: Key, running: Running) -> Callable[[int], None]:
        def started(pid: int) -> None:
            running.pid = pid
            log.debug("task %s attempt %d started on slot %d (pid %d)", *key, running.slot.index, pid)
            # lazy: a quick task's notice leaves in one frame with its report
            self.connection.send(
                {"type": "started", "task_id": key[0], "attempt": key[1], "pid": pid}, lazy=True
            )

        return started

    async def _execute(
        self,
        key: Key,
        running: Running,
        sink: Callable[[float, str, str], None],
        started: Callable[[int], None],
    ) -> None:
        request = running.request

        try:
            outcome = await running.slot.run(request, sink, started)
        except Exception as exc:
            log.exception("task %s attempt %d: the worker failed to run it", *key)
            outcome = Outcome.failure("worker_error", f"worker {self.name} failed to run the task: {exc}")
        finally:
            del self.running[key]
        self._note_malformed(key, running)
        elapsed = time.monotonic() - running.started
        if outcome.ok:
            log.debug("task %s attempt %d succeeded in %.3f s", *key, elapsed)
        else:
            log.info("task %s attempt %d failed in %.3f s: %s", *key, elapsed, outcome.error)
        self.finish(key, outcome)
        if self.accepting:
            self._start_queued()

    def cancel(self, message: protocol.Message) -> None:
        task_id = message.get("task_id")
        attempt = message.get("attempt")
        for queued in list(self.queued):
            (t, a), _ = queued
            if t == task_id and (attempt is None or a == attempt):
                self.queued.remove(queued)
                reason = message.get("reason")
                self.finish(
                    (t, a), Outcome.failure("cancelled", f"cancelled: {reason}" if reason else "cancelled")
                )
        for (t, a), running in list(self.running.items()):
            if t == task_id and (attempt is None or a == attempt):
                grace = message.get("grace")
                grace = float(grace) if isinstance(grace, (int, float)) else None
                log.info(
                    "cancelling task %s attempt %d: %s", t, a, message.get("reason") or "no reason given"
                )
                running.slot.cancel(
                    str(message.get("reason") or ""), grace, preempt=bool(message.get("preempt"))
                )

    def release(self, message: protocol.Message) -> None:
        """Give back a task sent ahead that has not started (another worker is free); one
        that started already runs here (the server learns it from ``started``)."""
        key = message_key(message)
        for queued in list(self.queued):
            if queued[0] == key:
                self.queued.remove(queued)
                self.finish(
                    key,
                    Outcome.failure("not_started", f"released by worker {self.name}: another worker is free"),
                )
                self.connection.flush()

    def finish(self, key: Key, outcome: Outcome) -> None:
        # with more than LAZY_REPORTS_ABOVE tasks sent ahead still waiting here, the report
        # may wait to leave with the next ones (one frame for several quick tasks); with
        # fewer it goes at once, so the server refills the queue before it runs dry
        lazy = len(self.queued) > LAZY_REPORTS_ABOVE
        self.outbox.finish(key, outcome, lazy=lazy)
        if not lazy:
            self.connection.flush()  # someone may be waiting on this result: no loop turn more
        self.changed.set()

    def stop_accepting(self) -> None:
        """Take no new task; those sent ahead but never started are handed back (the server
        places them again)."""
        self.accepting = False
        while self.queued:
            key, _ = self.queued.popleft()
            self.finish(key, Outcome.failure("not_started", f"worker {self.name} stopped before starting it"))


def _point(text: str) -> list[Any] | None:
    """The checked point of a metric line, None when it is malformed."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parse_point(raw)

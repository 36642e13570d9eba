"""What workers report on the tasks they hold: heartbeats, started, log lines, metric
points (kept by :class:`.metricreports.MetricReports`) and outcomes.

An outcome is acknowledged once it is stored (many acks per frame); until then the worker
keeps it and sends it again after a reconnect. Log lines are numbered per attempt, so a
resend after a reconnect keeps only what is new and a gap is said in the log itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..core import protocol
from ..core.states import AttemptState, TaskState
from .events import EventBus
from .journal import Journal
from .metricreports import MetricReports
from .ports import Logs, Metrics
from .state import EngineState
from .transitions import Transitions
from .workerevents import WorkerEvents
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")
FINISH_COMMIT_WINDOW = 0.005  # seconds a reported outcome may wait to share a commit


class WorkerReports:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        bus: EventBus,
        logs: Logs,
        transitions: Transitions,
        events: WorkerEvents,
        *,
        kick: Callable[[], None],
        metrics: Metrics | None = None,
        going: Callable[[WorkerHandle, str], None] | None = None,
    ) -> None:
        self.state = state
        self.journal = journal
        self.bus = bus
        self.logs = logs
        self.transitions = transitions
        self.events = events
        self._kick = kick
        self._log_next: dict[tuple[str, int], int] = {}  # next log offset expected per attempt
        # worker id -> reports to acknowledge: (task id, attempt, the journal batch of its outcome)
        self._acks: dict[str, list[tuple[str, int, int]]] = {}
        self._log_failures: set[tuple[str, int]] = set()  # logs that could not be written (logged once)
        self.metrics = MetricReports(state, bus, metrics)
        self._going = going  # the worker is being taken away: its tasks are preempted

    def log_offsets(self, hello: protocol.Message) -> list[list[Any]]:
        """How many log lines we hold of each attempt the worker (saying hello) still has."""
        out = []
        for entry in [*(hello.get("running") or []), *(hello.get("finished") or [])]:
            if not isinstance(entry, dict):
                continue
            task_id, attempt = entry.get("task_id"), entry.get("attempt")
            if isinstance(task_id, str) and isinstance(attempt, int):
                out.append([task_id, attempt, self._expected(task_id, attempt)])
        return out

    def _expected(self, task_id: str, attempt: int) -> int:
        offset = self._log_next.get((task_id, attempt))
        if offset is None:
            offset = self._log_next[(task_id, attempt)] = self.logs.count(task_id, attempt)
        return offset

    # ------------------------------------------------------------------ messages
    def message(self, handle: WorkerHandle, msg: protocol.Message) -> None:
        handle.last_seen = time.time()
        kind = msg.type
        if kind == "heartbeat":
            handle.metrics = dict(msg.get("metrics") or {})
            if self.events.since_last(handle.id) >= 1.0:
                self.events.publish(handle)
        elif kind == "started":
            self._on_started(handle, msg)
        elif kind == "log":
            self._on_log(handle, msg)
        elif kind == "metrics":
            if self._owned(handle, msg):
                self.metrics.on_metrics(msg)
        elif kind == "finished":
            self._on_finished(handle, msg)
        elif kind == "going":
            reason = str(msg.get("reason") or "its worker is going away")[:500]
            log.warning("worker %s is going away: %s", handle.name, reason)
            if self._going is not None:
                self._going(handle, reason)
            self.events.publish(handle)
        else:
            log.warning("worker %s sent an unexpected %r message; ignored", handle.name, kind)

    @staticmethod
    def _owned(handle: WorkerHandle, msg: protocol.Message) -> bool:
        slot = handle.running.get(msg.get("task_id"))
        return slot is not None and slot.attempt == msg.get("attempt")

    def _on_started(self, handle: WorkerHandle, msg: protocol.Message) -> None:
        if not self._owned(handle, msg):
            return
        handle.started(msg["task_id"])
        self.events.slots_changed(handle)
        row = self.state.tasks.get(msg["task_id"])
        if row is None or row.state != TaskState.SCHEDULED:
            return
        self.transitions.set_state(row, TaskState.RUNNING)
        row.started_at = time.time()
        # lazy: after a crash the worker's hello says again what runs (see connections)
        self.transitions.save_attempt(row, lazy=True, state=AttemptState.RUNNING, started_at=row.started_at)
        self.transitions.update(row, lazy=True)

    def _on_log(self, handle: WorkerHandle, msg: protocol.Message) -> None:
        if not self._owned(handle, msg):
            return
        lines = [(float(ts), str(stream), str(text)) for ts, stream, text in msg.get("lines") or []]
        task_id, attempt = msg["task_id"], msg["attempt"]
        key = (task_id, attempt)
        expected = self._expected(task_id, attempt)
        offset = msg.get("offset")
        if not isinstance(offset, int) or offset < 0:
            offset = expected
        if offset < expected:  # a resend after a reconnect: keep only what is new
            lines = lines[expected - offset :]
            offset = expected
        self._log_next[key] = offset + len(lines)  # in the worker's numbering
        if offset > expected and lines:  # lines the worker could not keep while disconnected
            note = (
                f"[jupyter-orch: {offset - expected} line(s) of output were lost while the worker was away]"
            )
            lines.insert(0, (lines[0][0], "stderr", note))
        if not lines:
            return
        try:
            count = self.logs.append(task_id, attempt, lines)
        except OSError as exc:  # a full or read-only disk: the lines still reach live readers
            count = offset + len(lines)
            if key not in self._log_failures:
                self._log_failures.add(key)
                log.error("could not write the log of task %s (attempt %d): %s", task_id, attempt, exc)
        row = self.state.tasks.get(task_id)
        self.bus.publish(
            {
                "type": "log",
                "task_id": task_id,
                "attempt": attempt,
                "owner": row.owner if row else None,
                "offset": count - len(lines),
                "lines": [{"ts": t, "stream": s, "text": x} for t, s, x in lines],
            }
        )

    def _on_finished(self, handle: WorkerHandle, msg: protocol.Message) -> None:
        task_id, attempt = msg.get("task_id"), msg.get("attempt")
        if not self._owned(handle, msg):
            log.warning(
                "worker %s reported a result for task %s attempt %s that it does not hold; refused",
                handle.name,
                task_id,
                attempt,
            )
            handle.send(
                protocol.encode(
                    {
                        "type": "refuse",
                        "task_id": task_id,
                        "attempt": attempt,
                        "reason": "this worker does not hold that task attempt",
                    }
                )
            )
            return
        row = self.state.tasks.get(task_id) or self.state.finished.get(task_id)
        if row is not None and row.started_at and msg.get("ok"):
            handle.observe(time.time() - row.started_at)
        handle.release(task_id)
        self.events.slots_changed(handle)
        self._log_next.pop((task_id, attempt), None)
        self.metrics.forget(task_id, attempt)
        # the outcome is announced now; its commit may wait a little for company
        with self.journal.deferred(FINISH_COMMIT_WINDOW):
            if row is not None and row.attempt == attempt:
                ok = bool(msg.get("ok"))
                self.transitions.finish_attempt(
                    row,
                    ok=ok,
                    result=msg.blobs.get("result"),
                    error=msg.get("error"),
                    error_kind=msg.get("error_kind") or (None if ok else "exception"),
                    traceback=msg.get("traceback"),
                    exit_code=msg.get("exit_code"),
                    stopped=bool(msg.get("stopped")),
                )
            self._kick()
            self._ack_after_commit(handle, task_id, attempt)

    # ------------------------------------------------------------------ acknowledgements
    def _ack_after_commit(self, handle: WorkerHandle, task_id: str, attempt: int) -> None:
        """Acknowledge reports once they are stored, many per frame; the worker keeps each
        report until then. The worker's next messages are not held up by the commit."""
        pending = self._acks.setdefault(handle.id, [])
        pending.append((task_id, attempt, self.journal.batches + 1))  # the batch its outcome goes with
        if len(pending) == 1:
            self._await_acks(handle)

    def _await_acks(self, handle: WorkerHandle) -> None:
        # through an outage: the worker keeps its reports until they are stored, however late
        self.journal.after_commit(lambda failed: self._send_acks(handle, failed), through_outage=True)

    def _send_acks(self, handle: WorkerHandle, failed: BaseException | None) -> None:
        pending = self._acks.pop(handle.id, [])
        written = self.journal.batches
        items = [[task_id, attempt] for task_id, attempt, batch in pending if batch <= written]
        later = [entry for entry in pending if entry[2] > written]  # reported while that batch was written
        if later:
            self._acks[handle.id] = later
            self._await_acks(handle)
        if items and failed is None:
            # nobody waits on an ack: it leaves with the worker's next assignment, or soon
            handle.send(protocol.encode({"type": "ack", "items": items}), lazy=True)

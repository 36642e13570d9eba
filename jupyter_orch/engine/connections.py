"""Worker connections: hello and re-attach, heartbeats, started/log/finished reports, and what
happens when a worker goes away (a grace period, then its tasks are retried or failed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..core import protocol
from ..core.records import UpsertWorker, WorkerRow
from ..core.states import AttemptState, TaskState
from .workers import WorkerHandle, WorkerLink

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("jupyter_orch.engine")
FINISH_COMMIT_WINDOW = 0.005  # seconds a reported outcome may wait to share a commit
WORKER_EVENT_GAP = 0.25  # seconds between worker events for slot changes (per worker)


class WorkerConnections:
    def __init__(self) -> None:
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}
        self._last_worker_event: dict[str, float] = {}
        self._worker_event_due: dict[str, asyncio.TimerHandle] = {}
        self._log_next: dict[tuple[str, int], int] = {}  # next log offset expected per attempt
        # worker id -> reports to acknowledge: (task id, attempt, the journal batch of its outcome)
        self._acks: dict[str, list[tuple[str, int, int]]] = {}
        self._log_failures: set[tuple[str, int]] = set()  # logs that could not be written (logged once)

    def stop_connections(self: Engine) -> None:
        for timer in [*self._grace_timers.values(), *self._worker_event_due.values()]:
            timer.cancel()
        self._grace_timers.clear()
        self._worker_event_due.clear()
        for worker in self.state.workers.values():
            if worker.link is not None:
                worker.link.close("server stopping")

    def _persist_worker(self: Engine, w: WorkerHandle) -> None:
        self.journal.add(
            UpsertWorker(
                WorkerRow(
                    w.id,
                    w.name,
                    w.provider,
                    w.token_id,
                    w.info.get("hostname", ""),
                    w.state,
                    dict(w.info),
                    w.connected_at,
                    w.last_seen,
                )
            )
        )

    def _publish_worker(self: Engine, w: WorkerHandle) -> None:
        self._last_worker_event[w.id] = time.monotonic()
        self._worker_event_due.pop(w.id, None)
        self.bus.publish({"type": "worker", "worker": w.to_dict()})

    def _worker_slots_changed(self: Engine, w: WorkerHandle) -> None:
        """A task started or ended there: watchers (the sidebar) see which task holds which
        slot. At most one event per worker per WORKER_EVENT_GAP; the last change is never
        left out (a trailing event follows a burst)."""
        if not self.bus.subscriber_count or w.id in self._worker_event_due:
            return
        wait = WORKER_EVENT_GAP - (time.monotonic() - self._last_worker_event.get(w.id, 0.0))
        if wait <= 0:
            self._publish_worker(w)
        else:
            loop = asyncio.get_running_loop()
            self._worker_event_due[w.id] = loop.call_later(wait, self._publish_worker, w)

    # ------------------------------------------------------------------ connect
    def worker_hello(self: Engine, token: Any, link: WorkerLink, hello: protocol.Message) -> WorkerHandle:
        """A worker authenticated with ``token`` said hello: register or re-attach it."""
        worker_id = hello.get("worker_id")
        if not isinstance(worker_id, str) or not worker_id:
            raise protocol.ProtocolError("hello needs a worker_id")
        info = {k: v for k, v in hello.header.items() if k not in ("type", "running", "finished")}
        handle = self.state.workers.get(worker_id)
        if handle is not None and handle.token_id not in (None, token.id):
            raise protocol.ProtocolError(f"worker id {worker_id} is registered with another token")
        if handle is not None and handle.link is not None and handle.link is not link:
            handle.link.close("replaced by a new connection of the same worker")
        name = str(hello.get("name") or worker_id)
        if handle is None:
            handle = WorkerHandle(
                worker_id, name, str(hello.get("provider") or token.provider), token.id, link, info
            )
            self.state.workers[worker_id] = handle
            log.info("worker %s connected (%s)", name, self._describe_slots(handle))
        else:
            handle.link, handle.info, handle.name = link, info, name
            handle.token_id = token.id
            log.info("worker %s reconnected", name)
        handle.state = "connected"
        handle.connected_at = handle.last_seen = time.time()
        handle.disconnected_at = None
        timer = self._grace_timers.pop(worker_id, None)
        if timer:
            timer.cancel()
        link.send(
            protocol.encode(
                {
                    "type": "welcome",
                    "worker_id": worker_id,
                    "heartbeat_interval": self.config.heartbeat_interval,
                    "server_version": self.config.server_version,
                    "log_offsets": self._log_offsets(hello),
                    "batch": protocol.BATCH,
                }
            )
        )
        self._reattach(handle, hello)
        self._persist_worker(handle)
        self._publish_worker(handle)
        self._unplaceable_sig = None  # the worker set changed: explain unplaceable tasks again
        self.kick()
        return handle

    def _log_offsets(self: Engine, hello: protocol.Message) -> list[list[Any]]:
        """How many log lines we hold of each attempt the worker still has."""
        out = []
        for entry in [*(hello.get("running") or []), *(hello.get("finished") or [])]:
            if not isinstance(entry, dict):
                continue
            task_id, attempt = entry.get("task_id"), entry.get("attempt")
            if isinstance(task_id, str) and isinstance(attempt, int):
                offset = self._log_next.get((task_id, attempt))
                if offset is None:
                    offset = self._log_next[(task_id, attempt)] = self.logs.count(task_id, attempt)
                out.append([task_id, attempt, offset])
        return out

    @staticmethod
    def _describe_slots(w: WorkerHandle) -> str:
        gpus = ", ".join(g.model or f"gpu{g.index}" for g in w.gpus) or "no GPUs"
        return f"{w.slots} slot(s), {w.cpus:g} cpus, {gpus}"

    def _reattach(self: Engine, handle: WorkerHandle, hello: protocol.Message) -> None:
        running = {
            (r.get("task_id"), r.get("attempt")) for r in hello.get("running") or [] if isinstance(r, dict)
        }
        finished = {
            (r.get("task_id"), r.get("attempt")) for r in hello.get("finished") or [] if isinstance(r, dict)
        }
        queued = {  # held there but not started (sent ahead)
            (r.get("task_id"), r.get("attempt")) for r in hello.get("queued") or [] if isinstance(r, dict)
        }
        # what we believe runs there
        for task_id, slot in list(handle.running.items()):
            key = (task_id, slot.attempt)
            if key in running or key in finished:
                continue
            row = self.state.tasks.get(task_id)
            handle.release(task_id)
            if row is not None and row.state == TaskState.SCHEDULED and row.attempt == slot.attempt:
                # never reported started, and the worker does not hold it: the assignment
                # went down with the old connection. Placed again, not counted as a try.
                log.info(
                    "worker %s came back without unstarted task %s; placing it again", handle.name, task_id
                )
                self._finish_attempt(
                    row,
                    ok=False,
                    error_kind="not_started",
                    error=f"worker {handle.name} reconnected without this task; it had not started",
                )
            elif row is not None and row.state.active and row.attempt == slot.attempt:
                log.warning("worker %s came back without task %s; it is lost", handle.name, task_id)
                self._finish_attempt(
                    row,
                    ok=False,
                    lost=True,
                    error_kind="worker_lost",
                    error=f"worker {handle.name} reconnected but no longer had this task",
                )
        # what it runs that we do not expect (e.g. cancelled while it was away)
        for task_id, attempt in running:
            row = self.state.tasks.get(task_id)
            if (task_id, attempt) in queued and task_id in handle.running:
                handle.running[task_id].queued = True  # it waits there for a slot
            elif (
                task_id in handle.running
                and row is not None
                and row.state == TaskState.SCHEDULED
                and row.attempt == attempt
            ):
                # it started while we were not listening (or before a restart)
                self._set_state(row, TaskState.RUNNING)
                row.started_at = row.started_at or time.time()
                self._save_attempt(row, state=AttemptState.RUNNING, started_at=row.started_at)
                self._update(row)
            if task_id not in handle.running or row is None or row.state.terminal:
                handle.send(
                    protocol.encode(
                        {
                            "type": "cancel",
                            "task_id": task_id,
                            "attempt": attempt,
                            "reason": "no longer wanted by the server",
                            "grace": self.config.cancel_grace,
                        }
                    )
                )

    # ------------------------------------------------------------------ messages
    def worker_message(self: Engine, handle: WorkerHandle, msg: protocol.Message) -> None:
        handle.last_seen = time.time()
        kind = msg.type
        if kind == "heartbeat":
            handle.metrics = dict(msg.get("metrics") or {})
            if time.monotonic() - self._last_worker_event.get(handle.id, 0) >= 1.0:
                self._publish_worker(handle)
        elif kind == "started":
            self._on_started(handle, msg)
        elif kind == "log":
            self._on_log(handle, msg)
        elif kind == "finished":
            self._on_finished(handle, msg)
        else:
            log.warning("worker %s sent an unexpected %r message; ignored", handle.name, kind)

    def _owned(self: Engine, handle: WorkerHandle, msg: protocol.Message) -> bool:
        slot = handle.running.get(msg.get("task_id"))
        return slot is not None and slot.attempt == msg.get("attempt")

    def _on_started(self: Engine, handle: WorkerHandle, msg: protocol.Message) -> None:
        if not self._owned(handle, msg):
            return
        handle.started(msg["task_id"])
        self._worker_slots_changed(handle)
        row = self.state.tasks.get(msg["task_id"])
        if row is None or row.state != TaskState.SCHEDULED:
            return
        self._set_state(row, TaskState.RUNNING)
        row.started_at = time.time()
        # lazy: after a crash the worker's hello says again what runs (see _reattach)
        self._save_attempt(row, lazy=True, state=AttemptState.RUNNING, started_at=row.started_at)
        self._update(row, lazy=True)

    def _on_log(self: Engine, handle: WorkerHandle, msg: protocol.Message) -> None:
        if not self._owned(handle, msg):
            return
        lines = [(float(ts), str(stream), str(text)) for ts, stream, text in msg.get("lines") or []]
        task_id, attempt = msg["task_id"], msg["attempt"]
        key = (task_id, attempt)
        expected = self._log_next.get(key)
        if expected is None:
            expected = self._log_next[key] = self.logs.count(task_id, attempt)
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

    def _on_finished(self: Engine, handle: WorkerHandle, msg: protocol.Message) -> None:
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
        self._worker_slots_changed(handle)
        self._log_next.pop((task_id, attempt), None)
        # the outcome is announced now; its commit may wait a little for company
        with self.journal.deferred(FINISH_COMMIT_WINDOW):
            if row is not None and row.attempt == attempt:
                ok = bool(msg.get("ok"))
                self._finish_attempt(
                    row,
                    ok=ok,
                    result=msg.blobs.get("result"),
                    error=msg.get("error"),
                    error_kind=msg.get("error_kind") or (None if ok else "exception"),
                    traceback=msg.get("traceback"),
                    exit_code=msg.get("exit_code"),
                )
            self.kick()
            self._ack_after_commit(handle, task_id, attempt)

    def _ack_after_commit(self: Engine, handle: WorkerHandle, task_id: str, attempt: int) -> None:
        """Acknowledge reports once they are stored, many per frame; the worker keeps each
        report until then. The worker's next messages are not held up by the commit."""
        pending = self._acks.setdefault(handle.id, [])
        pending.append((task_id, attempt, self.journal.batches + 1))  # the batch its outcome goes with
        if len(pending) == 1:
            self._await_acks(handle)

    def _await_acks(self: Engine, handle: WorkerHandle) -> None:
        # through an outage: the worker keeps its reports until they are stored, however late
        self.journal.after_commit(lambda failed: self._send_acks(handle, failed), through_outage=True)

    def _send_acks(self: Engine, handle: WorkerHandle, failed: BaseException | None) -> None:
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

    # ------------------------------------------------------------------ disconnect
    def worker_disconnected(self: Engine, handle: WorkerHandle, link: WorkerLink) -> None:
        if handle.link is not link:
            return  # an old connection of a worker that already reconnected
        handle.link = None
        handle.state = "disconnected"
        handle.disconnected_at = time.time()
        self._persist_worker(handle)
        self._publish_worker(handle)
        grace = self.config.worker_grace
        log.warning(
            "worker %s disconnected; it has %g s to come back (%d task(s) on it)",
            handle.name,
            grace,
            len(handle.running),
        )
        self._start_grace(handle.id, grace)

    def _start_grace(self: Engine, worker_id: str, grace: float) -> None:
        old = self._grace_timers.pop(worker_id, None)
        if old:
            old.cancel()
        self._grace_timers[worker_id] = asyncio.get_running_loop().call_later(
            grace, self.worker_gone, worker_id, f"did not come back within {grace:g} s"
        )

    def worker_gone(self: Engine, worker_id: str, why: str) -> None:
        """The worker will not come back: its tasks are retried or failed."""
        self._grace_timers.pop(worker_id, None)
        handle = self.state.workers.get(worker_id)
        if handle is None or handle.link is not None:
            return
        handle.state = "gone"
        for task_id, slot in list(handle.running.items()):
            handle.release(task_id)
            row = self.state.tasks.get(task_id)
            if row is not None and row.attempt == slot.attempt and row.state.active:
                self._finish_attempt(
                    row,
                    ok=False,
                    lost=True,
                    error_kind="worker_lost",
                    error=f"worker {handle.name} was lost while running this task: it {why}",
                )
        self._persist_worker(handle)
        self._publish_worker(handle)
        del self.state.workers[worker_id]
        self._unplaceable_sig = None
        self.kick()

    def worker_list(self: Engine) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.state.workers.values()]

"""The worker: registers its slots, heartbeats, runs assignments and reports them.

:class:`Worker` is the protocol's worker side (see :mod:`jupyter_orch.core.protocol`): it
answers server messages, places assignments on its slots (:mod:`.slots`), heartbeats, and
stops gracefully. :mod:`.connection` owns the socket and :mod:`.outbox` what waits to be
sent; a dropped connection never touches a running task: its logs and report are kept
(bounded) and delivered after the next ``hello``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .._version import __version__
from ..core import protocol
from ..core.ids import new_id
from .aio import wait_event
from .connection import Connection, ServerRefused, http_url
from .gpus import Gpus, visible_devices_restriction
from .hostmetrics import HostMetrics, cpu_count, total_memory
from .outbox import Key, Outbox
from .outcomes import Outcome
from .slots import Slot, TaskRequest
from .watchdog import OrphanWatchdog

log = logging.getLogger("jupyter_orch.worker")

UNSUPPORTED_KINDS: tuple[str, ...] = ()
LAZY_REPORTS_ABOVE = 4  # tasks still queued here for a finished report to wait for company


@dataclass
class WorkerConfig:
    """What a worker offers and how it behaves; every field has a sensible default."""

    server: str
    token: str
    slots: int = 1
    cpus: float | None = None  # default: the CPUs this process may use
    memory: int | None = None  # bytes; default: total RAM
    gpus: list[int] | None = None  # restrict to these NVML indices; default: all found
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None  # default: hostname-pid
    worker_id: str | None = None  # default: JUPYTER_ORCH_WORKER_ID, else a new id
    image: str | None = None  # default: JUPYTER_ORCH_IMAGE
    provider: str | None = None  # default: JUPYTER_ORCH_PROVIDER, else "static"
    heartbeat_interval: float = 5.0  # used when the welcome does not set one
    kill_grace: float = 5.0  # SIGTERM → SIGKILL on timeout/cancel
    max_backoff: float = 5.0  # longest wait between reconnects
    max_log_lines: int = 10_000  # kept per task while disconnected
    drain_timeout: float = 10.0  # on stop: how long to wait for the server's acks
    cwd: str | None = None  # tasks' working directory; default: the worker's
    python: str = sys.executable  # interpreter of the executor processes
    discover_gpus: bool = True
    # stop (killing running tasks) after this many seconds without a server once the process
    # that started this worker is gone (local workers; None: retry for ever)
    orphan_timeout: float | None = None
    parent_pid: int | None = None  # the process whose exit starts that count (default: the parent)
    server_file: str | None = None  # re-read the server's URL from it before reconnecting


@dataclass
class _Running:
    request: TaskRequest
    slot: Slot
    started: float = field(default_factory=time.monotonic)
    pid: int | None = None


class Worker:
    """``await Worker(WorkerConfig(server, token)).run()`` serves until stopped; its exit code."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._task_url = http_url(config.server)  # JUPYTER_ORCH_URL inside tasks
        self.hostname = socket.gethostname()
        self.name = config.name or f"{self.hostname}-{os.getpid()}"
        self.worker_id = config.worker_id or os.environ.get("JUPYTER_ORCH_WORKER_ID") or new_id()
        self.image = (
            config.image if config.image is not None else os.environ.get("JUPYTER_ORCH_IMAGE") or None
        )
        self.provider = config.provider or os.environ.get("JUPYTER_ORCH_PROVIDER") or "static"
        self.cpus = config.cpus if config.cpus is not None else cpu_count()
        self.memory = config.memory if config.memory is not None else total_memory()
        self.heartbeat_interval = config.heartbeat_interval
        self.connection = Connection(
            config.server, config.token, max_backoff=config.max_backoff, server_file=config.server_file
        )
        self.gpus: list[dict[str, Any]] = []
        self.slots: list[Slot] = []
        self._gpu_monitor = Gpus()
        self._host = HostMetrics()
        self._running: dict[Key, _Running] = {}
        self._queued: collections.deque[tuple[Key, TaskRequest]] = collections.deque()
        self.outbox = Outbox(self.connection, config.max_log_lines)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accepting = True
        self._stopping = False
        self._forced = False
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._beat_now = asyncio.Event()
        self._stopper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> int:
        if self.config.discover_gpus:
            only = self.config.gpus
            visible = visible_devices_restriction() if only is None else None
            self.gpus = await asyncio.to_thread(self._gpu_monitor.discover, only, visible)
        has_gpus = bool(self.gpus)
        self.slots = [
            Slot(
                i,
                worker_name=self.name,
                has_gpus=has_gpus,
                python=self.config.python,
                cwd=self.config.cwd,
                kill_grace=self.config.kill_grace,
            )
            for i in range(self.config.slots)
        ]
        for slot in self.slots:
            slot.prestart()
        log.info(
            "worker %s (%s): %d slot(s), %g cpu, %d MiB, %d gpu(s)%s; connecting to %s",
            self.name, self.worker_id, len(self.slots), self.cpus, self.memory >> 20, len(self.gpus),
            "".join(f", {k}={v}" for k, v in sorted(self.config.labels.items())), self.connection.url,
        )  # fmt: skip
        conn_task = asyncio.ensure_future(self.connection.run(self))
        heartbeat = asyncio.ensure_future(self._heartbeats())
        done = asyncio.ensure_future(self._done.wait())
        watchers: list[asyncio.Future[Any]] = [heartbeat, done]
        if self.config.orphan_timeout:
            watchdog = OrphanWatchdog(
                self.config.orphan_timeout,
                lambda: self.connection.connected,
                self._orphaned,
                self.config.parent_pid,
            )
            watchers.append(asyncio.ensure_future(watchdog.run()))
        await asyncio.wait([conn_task, done], return_when=asyncio.FIRST_COMPLETED)
        code = 1 if self._forced else 0
        if conn_task.done() and not conn_task.cancelled() and conn_task.exception() is not None:
            exc = conn_task.exception()
            if isinstance(exc, ServerRefused):
                log.error("%s", exc)
                code = 2
            else:
                log.error("the worker's connection failed", exc_info=exc)
                code = 1
        await self._cleanup(conn_task, *watchers)
        log.info("worker %s stopped", self.name)
        return code

    async def _cleanup(self, *tasks: asyncio.Future[Any]) -> None:
        self.connection.stop()
        if self._stopper is not None:
            self._stopper.cancel()
        for task in tasks:
            task.cancel()
        kill = bool(self._running)
        await asyncio.gather(*(slot.close(kill=kill) for slot in self.slots), return_exceptions=True)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await asyncio.wait(tasks, timeout=5)
        self.outbox.close()
        self._gpu_monitor.shutdown()

    def stop(self, reason: str = "", force: bool = False) -> None:
        """Take no new task; exit once the running ones are reported (``force``: kill them)."""
        if force or self._stopping:
            if not self._forced:
                self._forced = True
                log.warning("stopping now: killing %d running task(s)", len(self._running))
                self._done.set()
            return
        self._stopping = True
        self._accepting = False
        while self._queued:  # sent ahead but never started: the server places them again
            key, _ = self._queued.popleft()
            self._finish(
                key, Outcome.failure("not_started", f"worker {self.name} stopped before starting it")
            )
        log.info(
            "stopping%s: %s",
            f" ({reason})" if reason else "",
            f"waiting for {len(self._running)} running task(s) to finish" if self._running else "idle",
        )
        self._stopper = asyncio.ensure_future(self._graceful_stop())

    def _orphaned(self, why: str) -> None:
        log.warning("stopping: %s", why)
        self.stop(why, force=True)

    async def _graceful_stop(self) -> None:
        await self._wait_until(lambda: not self._running)
        reports = self.outbox.reports
        if reports and not await self._wait_until(lambda: not reports, timeout=self.config.drain_timeout):
            log.warning("stopping with %d report(s) the server has not acknowledged", len(reports))
        self._done.set()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            self._changed.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if not await wait_event(self._changed, remaining):
                return predicate()
        return True

    # ------------------------------------------------------------------ session (connection callbacks)

    def hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "worker_id": self.worker_id,
            "name": self.name,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "version": __version__,
            "protocol": protocol.PROTOCOL_VERSION,
            "python": platform.python_version(),
            "cloudpickle": cloudpickle.__version__,
            "slots": len(self.slots),
            "cpus": self.cpus,
            "memory": self.memory,
            "gpus": self.gpus,
            "labels": dict(self.config.labels),
            "image": self.image,
            "provider": self.provider,
            "running": [
                {"task_id": t, "attempt": a} for t, a in [*self._running, *(k for k, _ in self._queued)]
            ],
            # of those, the ones sent ahead that have not started yet
            "queued": [{"task_id": t, "attempt": a} for (t, a), _ in self._queued],
            "finished": self.outbox.headers(),
        }

    def on_welcome(self, message: protocol.Message) -> None:
        if message.get("worker_id") and message["worker_id"] != self.worker_id:
            log.info("the server knows this worker as %s", message["worker_id"])
            self.worker_id = str(message["worker_id"])
        interval = message.get("heartbeat_interval")
        if isinstance(interval, (int, float)) and interval > 0:
            self.heartbeat_interval = float(interval)
        for entry in message.get("log_offsets") or []:
            try:
                task_id, attempt, offset = entry
                self.outbox.rewind((str(task_id), int(attempt)), int(offset))
            except (TypeError, ValueError):
                continue
        self._task_url = http_url(self.connection.server)  # it may have moved (server_file)
        again = self.connection.connections > 1
        log.info(
            "%s to %s as %s (server %s)",
            "reconnected" if again else "connected", self.connection.server, self.worker_id,
            message.get("server_version", "?"),
        )  # fmt: skip
        self.outbox.resend()
        self._beat_now.set()
        self._changed.set()

    def on_disconnected(self) -> None:
        self._changed.set()

    def on_message(self, message: protocol.Message) -> None:
        kind = message.type
        if kind == "assign":
            self._assign(message)
        elif kind == "cancel":
            self._cancel(message)
        elif kind == "release":
            self._release(message)
        elif kind == "ack" and isinstance(message.get("items"), list):
            for item in message["items"]:  # several reports acknowledged in one frame
                if isinstance(item, list) and len(item) == 2:
                    self.outbox.resolve((str(item[0]), int(item[1])))
            self._changed.set()
        elif kind in ("ack", "refuse"):
            key = _key(message)
            if key is None or not self.outbox.resolve(key):
                return
            if kind == "refuse":
                log.warning(
                    "the server refused the report of task %s attempt %d: %s", *key, message.get("reason")
                )
            self._changed.set()
        elif kind == "shutdown":
            self.stop(str(message.get("reason") or "the server asked"))
        elif kind == "welcome":
            pass
        else:
            log.debug("ignoring a %r message", kind)

    # ------------------------------------------------------------------ tasks

    def _assign(self, message: protocol.Message) -> None:
        key = _key(message)
        if key is None:
            log.warning("ignoring an assign without task_id/attempt")
            return
        if key in self._running:
            log.info("task %s attempt %d is already running here", *key)
            return
        if key in self.outbox.reports:
            self.outbox.resend(key)
            return
        kind = str(message.get("kind"))
        self.outbox.open(key)
        if not self._accepting:
            self._finish(key, Outcome.failure("worker_error", f"worker {self.name} is shutting down"))
            return
        if kind in UNSUPPORTED_KINDS:
            error = f"this worker ({self.name}, jupyter-orch {__version__}) does not support {kind} tasks yet"
            self._finish(key, Outcome.failure("worker_error", error))
            return
        try:
            request = _request(key, kind, message, self._task_url)
        except (TypeError, ValueError) as exc:
            self._finish(key, Outcome.failure("bad_payload", f"the assignment is malformed: {exc}"))
            return
        slot = self._pick_slot(request.gpus)
        if slot is None:
            # the server sent it ahead (prefetch): it starts when a slot frees, in order
            self._queued.append((key, request))
            return
        self._start(key, request, slot)

    def _start(self, key: Key, request: TaskRequest, slot: Slot) -> None:
        running = _Running(request, slot)
        self._running[key] = running
        sink, started = self._sink(key), self._on_started(key, running)
        # a warm executor gets the task now; the coroutine below then only waits for it
        slot.begin(request, sink, started)
        task = asyncio.ensure_future(self._execute(key, running, sink, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_queued(self) -> None:
        while self._queued:
            key, request = self._queued[0]
            slot = self._pick_slot(request.gpus)
            if slot is None:
                return
            self._queued.popleft()
            self._start(key, request, slot)

    def _pick_slot(self, gpus: list[int]) -> Slot | None:
        # a slot is taken from the moment a task is given to it (its run starts a step later)
        taken = {id(r.slot) for r in self._running.values()}
        free = [slot for slot in self.slots if not slot.busy and id(slot) not in taken]
        warm = [slot for slot in free if slot.ready_for(gpus)]
        candidates = warm or free
        return candidates[0] if candidates else None

    def _sink(self, key: Key) -> Callable[[float, str, str], None]:
        def sink(ts: float, stream: str, text: str) -> None:
            self.outbox.line(key, ts, stream, text)

        return sink

    def _on_started(self, key: Key, running: _Running) -> Callable[[int], None]:
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
        running: _Running,
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
            del self._running[key]
        elapsed = time.monotonic() - running.started
        if outcome.ok:
            log.debug("task %s attempt %d succeeded in %.3f s", *key, elapsed)
        else:
            log.info("task %s attempt %d failed in %.3f s: %s", *key, elapsed, outcome.error)
        self._finish(key, outcome)
        if self._accepting:
            self._start_queued()

    def _cancel(self, message: protocol.Message) -> None:
        task_id = message.get("task_id")
        attempt = message.get("attempt")
        for queued in list(self._queued):
            (t, a), _ = queued
            if t == task_id and (attempt is None or a == attempt):
                self._queued.remove(queued)
                reason = message.get("reason")
                self._finish(
                    (t, a), Outcome.failure("cancelled", f"cancelled: {reason}" if reason else "cancelled")
                )
        for (t, a), running in list(self._running.items()):
            if t == task_id and (attempt is None or a == attempt):
                grace = message.get("grace")
                grace = float(grace) if isinstance(grace, (int, float)) else None
                log.info(
                    "cancelling task %s attempt %d: %s", t, a, message.get("reason") or "no reason given"
                )
                running.slot.cancel(str(message.get("reason") or ""), grace)

    def _release(self, message: protocol.Message) -> None:
        """Give back a task sent ahead that has not started (another worker is free); one
        that started already runs here (the server learns it from ``started``)."""
        key = _key(message)
        for queued in list(self._queued):
            if queued[0] == key:
                self._queued.remove(queued)
                self._finish(
                    key,
                    Outcome.failure("not_started", f"released by worker {self.name}: another worker is free"),
                )
                self.connection.flush()

    def _finish(self, key: Key, outcome: Outcome) -> None:
        # with more than LAZY_REPORTS_ABOVE tasks sent ahead still waiting here, the report
        # may wait to leave with the next ones (one frame for several quick tasks); with
        # fewer it goes at once, so the server refills the queue before it runs dry
        lazy = len(self._queued) > LAZY_REPORTS_ABOVE
        self.outbox.finish(key, outcome, lazy=lazy)
        if not lazy:
            self.connection.flush()  # someone may be waiting on this result: no loop turn more
        self._changed.set()

    # ------------------------------------------------------------------ heartbeats

    def _metrics(self) -> dict[str, Any]:
        metrics = self._host.sample()
        metrics["gpus"] = self._gpu_monitor.metrics()
        return metrics

    async def _heartbeats(self) -> None:
        while True:
            # a welcome (new interval, fresh connection) beats at once
            await wait_event(self._beat_now, self.heartbeat_interval)
            self._beat_now.clear()
            if not self.connection.connected:
                continue
            try:
                metrics = await asyncio.to_thread(self._metrics)
            except Exception as exc:
                log.warning("could not read this machine's metrics: %s", exc)
                metrics = {}
            self.connection.send({"type": "heartbeat", "metrics": metrics})


def _key(message: protocol.Message) -> Key | None:
    task_id = message.get("task_id")
    attempt = message.get("attempt", 1)
    if not isinstance(task_id, str) or not task_id or isinstance(attempt, bool):
        return None
    try:
        return task_id, int(attempt)
    except (TypeError, ValueError):
        return None


def _request(key: Key, kind: str, message: protocol.Message, server_url: str) -> TaskRequest:
    env = message.get("env") or {}
    if not isinstance(env, dict):
        raise ValueError("env must be an object")
    env = {str(k): "" if v is None else str(v) for k, v in env.items()}
    token = message.get("token")
    if isinstance(token, str) and token:  # jupyter_orch.connect() in the task acts as its owner
        env.update(JUPYTER_ORCH_URL=server_url, JUPYTER_ORCH_TOKEN=token)
    timeout = message.get("timeout")
    gpus = [int(i) for i in message.get("gpus") or []]
    client_env = message.get("client_env")
    step = message.get("step")
    return TaskRequest(
        task_id=key[0],
        attempt=key[1],
        kind=kind,
        command=message.get("command"),
        env=env,
        timeout=float(timeout) if timeout is not None else None,
        gpus=gpus,
        client_env=client_env if isinstance(client_env, dict) else None,
        blobs={k: v for k, v in message.blobs.items() if k != "none"},
        payload_file=message.get("payload_file"),
        step=step if isinstance(step, dict) else None,
    )

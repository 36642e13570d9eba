"""The worker: registers its slots, heartbeats, runs assignments and reports them.

:class:`Worker` is the protocol's worker side (see :mod:`jupyter_orch.core.protocol`): it
answers server messages and stops gracefully, putting together the parts that do the work:
:class:`~.tasks.Tasks` (assignments placed on its slots, :mod:`.slots`),
:class:`~.heartbeats.Heartbeats`, :class:`~.connection.Connection` (the socket) and
:class:`~.outbox.Outbox` (what waits to be sent); a dropped connection never touches a
running task: its logs, metrics and report are kept (bounded) and delivered after the next
``hello``.
Its configuration is :class:`~.config.WorkerConfig`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
import time
from collections.abc import Callable
from typing import Any

import cloudpickle

from .._version import __version__
from ..core import protocol
from ..core.ids import new_id
from .aio import wait_event
from .assignments import message_key
from .config import WorkerConfig
from .connection import Connection, ServerRefused, http_url
from .gpus import Gpus, visible_devices_restriction
from .heartbeats import Heartbeats
from .hostmetrics import HostMetrics, cpu_count, total_memory
from .outbox import Outbox
from .slots import Slot
from .tasks import LAZY_REPORTS_ABOVE, UNSUPPORTED_KINDS, Tasks
from .watchdog import OrphanWatchdog

log = logging.getLogger("jupyter_orch.worker")

__all__ = ["LAZY_REPORTS_ABOVE", "UNSUPPORTED_KINDS", "Worker", "WorkerConfig"]


class Worker:
    """``await Worker(WorkerConfig(server, token)).run()`` serves until stopped; its exit code."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.hostname = socket.gethostname()
        self.name = config.name or f"{self.hostname}-{os.getpid()}"
        self.worker_id = config.worker_id or os.environ.get("JUPYTER_ORCH_WORKER_ID") or new_id()
        self.image = (
            config.image if config.image is not None else os.environ.get("JUPYTER_ORCH_IMAGE") or None
        )
        self.provider = config.provider or os.environ.get("JUPYTER_ORCH_PROVIDER") or "static"
        self.cpus = config.cpus if config.cpus is not None else cpu_count()
        self.memory = config.memory if config.memory is not None else total_memory()
        self.connection = Connection(
            config.server, config.token, max_backoff=config.max_backoff, server_file=config.server_file
        )
        self.gpus: list[dict[str, Any]] = []
        self._gpu_monitor = Gpus()
        self.outbox = Outbox(self.connection, config.max_log_lines)
        self._changed = asyncio.Event()
        self.tasks = Tasks(self.name, self.connection, self.outbox, self._changed, http_url(config.server))
        self.heartbeats = Heartbeats(
            self.connection, self._gpu_monitor, HostMetrics(), config.heartbeat_interval
        )
        self._stopping = False
        self._forced = False
        self._done = asyncio.Event()
        self._stopper: asyncio.Task[None] | None = None

    @property
    def slots(self) -> list[Slot]:
        return self.tasks.slots

    @slots.setter
    def slots(self, slots: list[Slot]) -> None:
        self.tasks.slots = slots

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats: the welcome's, else the configuration's."""
        return self.heartbeats.interval

    @heartbeat_interval.setter
    def heartbeat_interval(self, seconds: float) -> None:
        self.heartbeats.interval = seconds

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
        heartbeat = asyncio.ensure_future(self.heartbeats.run())
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
        kill = bool(self.tasks.running)
        await asyncio.gather(*(slot.close(kill=kill) for slot in self.slots), return_exceptions=True)
        if self.tasks.background:
            await asyncio.wait(self.tasks.background, timeout=5)
        await asyncio.wait(tasks, timeout=5)
        self.outbox.close()
        self._gpu_monitor.shutdown()

    def stop(self, reason: str = "", force: bool = False) -> None:
        """Take no new task; exit once the running ones are reported (``force``: kill them)."""
        if force or self._stopping:
            if not self._forced:
                self._forced = True
                log.warning("stopping now: killing %d running task(s)", len(self.tasks.running))
                self._done.set()
            return
        self._stopping = True
        running = self.tasks.running
        self.tasks.stop_accepting()
        log.info(
            "stopping%s: %s",
            f" ({reason})" if reason else "",
            f"waiting for {len(running)} running task(s) to finish" if running else "idle",
        )
        self._stopper = asyncio.ensure_future(self._graceful_stop())

    def preempt_all(self, why: str) -> None:
        """This worker is being taken away: tell the server (its tasks are preempted, not
        failed), ask each running task to checkpoint and stop within the preemption grace
        (``should_preempt()``, SIGTERM), then exit once their reports are acknowledged."""
        running = list(self.tasks.running.values())
        log.warning("preempting %d running task(s): %s", len(running), why)
        self.connection.send({"type": "going", "reason": why})
        for task in running:
            task.slot.cancel(why, self.config.preempt_grace, preempt=True)
        self.stop(why)

    def _orphaned(self, why: str) -> None:
        log.warning("stopping: %s", why)
        self.stop(why, force=True)

    async def _graceful_stop(self) -> None:
        await self._wait_until(lambda: not self.tasks.running)
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
                {"task_id": t, "attempt": a}
                for t, a in [*self.tasks.running, *(k for k, _ in self.tasks.queued)]
            ],
            # of those, the ones sent ahead that have not started yet
            "queued": [{"task_id": t, "attempt": a} for (t, a), _ in self.tasks.queued],
            "finished": self.outbox.headers(),
        }

    def on_welcome(self, message: protocol.Message) -> None:
        if message.get("worker_id") and message["worker_id"] != self.worker_id:
            log.info("the server knows this worker as %s", message["worker_id"])
            self.worker_id = str(message["worker_id"])
        interval = message.get("heartbeat_interval")
        if isinstance(interval, (int, float)) and interval > 0:
            self.heartbeat_interval = float(interval)
        for field, metrics in (("log_offsets", False), ("metric_offsets", True)):
            for entry in message.get(field) or []:
                try:
                    task_id, attempt, offset = entry
                    self.outbox.rewind((str(task_id), int(attempt)), int(offset), metrics=metrics)
                except (TypeError, ValueError):
                    continue
        self.tasks.task_url = http_url(self.connection.server)  # it may have moved (server_file)
        again = self.connection.connections > 1
        log.info(
            "%s to %s as %s (server %s)",
            "reconnected" if again else "connected", self.connection.server, self.worker_id,
            message.get("server_version", "?"),
        )  # fmt: skip
        self.outbox.resend()
        self.heartbeats.now()
        self._changed.set()

    def on_disconnected(self) -> None:
        self._changed.set()

    def on_message(self, message: protocol.Message) -> None:
        kind = message.type
        if kind == "assign":
            self.tasks.assign(message)
        elif kind == "cancel":
            self.tasks.cancel(message)
        elif kind == "release":
            self.tasks.release(message)
        elif kind == "ack" and isinstance(message.get("items"), list):
            for item in message["items"]:  # several reports acknowledged in one frame
                if isinstance(item, list) and len(item) == 2:
                    self.outbox.resolve((str(item[0]), int(item[1])))
            self._changed.set()
        elif kind in ("ack", "refuse"):
            key = message_key(message)
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

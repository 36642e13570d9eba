"""The worker side of one slot: its long-lived executor process and the task running in it.

A :class:`Slot` keeps one executor (``python -m jupyter_orch.worker.executor``) warm so a
task costs a message, not a process start. The executor is restarted when it dies, and when
the next task needs a different ``CUDA_VISIBLE_DEVICES``. :meth:`Slot.run` sends a task,
streams its output lines to a sink, and returns its :class:`Outcome`, including the ones the
executor cannot report itself: its death, a timeout, a cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .aio import wait_future
from .outcomes import Outcome, process_death
from .output import Sink
from .process import ExecutorProcess, ExecutorStartError

log = logging.getLogger("jupyter_orch.worker")

PRIVATE_ENV = ("JUPYTER_ORCH_TOKEN",)


@dataclass
class TaskRequest:
    """One attempt as the slot runs it (the ``assign`` message, decoded)."""

    task_id: str
    attempt: int
    kind: str
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    gpus: list[int] = field(default_factory=list)
    client_env: dict[str, Any] | None = None
    blobs: dict[str, bytes] = field(default_factory=dict)
    payload_file: str | None = None  # the server's blob file, when this worker shares its disk
    step: dict[str, Any] | None = None  # a workflow step: its templates' references and context
    params: dict[str, Any] | None = None  # a search's trial: keyword arguments of its function


class Slot:
    """One concurrent task on this worker, run in a reused executor process."""

    def __init__(
        self,
        index: int,
        *,
        worker_name: str,
        has_gpus: bool = False,
        python: str = sys.executable,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        kill_grace: float = 5.0,
    ) -> None:
        self.index = index
        self.worker_name = worker_name
        self.has_gpus = has_gpus
        self.python = python
        self.cwd = cwd
        self.base_env = dict(os.environ if env is None else env)
        for secret in PRIVATE_ENV:  # the worker's credentials are not the task's
            self.base_env.pop(secret, None)
        self.kill_grace = kill_grace
        self.current: TaskRequest | None = None
        self._executor: ExecutorProcess | None = None
        self._starting: asyncio.Task[ExecutorProcess] | None = None
        self._cancel = asyncio.Event()
        self._cancel_requested: asyncio.Future[None] | None = None  # what _wait waits on
        self._sent: Any = None  # (task, executor, (sent, started)) handed over by begin()
        self._cancel_reason = ""
        self._cancel_grace: float | None = None
        self._cancel_preempt = False  # a preemption: a task that stops in time reports itself

    @property
    def busy(self) -> bool:
        return self.current is not None

    @property
    def pid(self) -> int | None:
        ex = self._executor
        return ex.pid if ex is not None and ex.alive else None

    def cuda_for(self, gpus: list[int]) -> str | None:
        """``CUDA_VISIBLE_DEVICES`` for a task: its GPUs; none on a GPU box; else inherited."""
        if gpus:
            return ",".join(str(int(i)) for i in gpus)
        return "" if self.has_gpus else None

    def ready_for(self, gpus: list[int]) -> bool:
        ex = self._executor
        return ex is not None and ex.alive and ex.cuda == self.cuda_for(gpus)

    def prestart(self, gpus: list[int] | None = None) -> None:
        """Start the executor in the background so the first task finds it warm."""
        if self._starting is None and not self.ready_for(gpus or []):
            self._starting = asyncio.ensure_future(self._start(self.cuda_for(gpus or [])))
            self._starting.add_done_callback(_consume_error)

    def _env(self, cuda: str | None) -> dict[str, str]:
        env = dict(self.base_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if cuda is not None:
            env["CUDA_VISIBLE_DEVICES"] = cuda
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA numbers GPUs as NVML does
        return env

    async def _start(self, cuda: str | None) -> ExecutorProcess:
        ex = ExecutorProcess(cuda)
        await ex.start(self.python, self.cwd, self._env(cuda), self.worker_name)
        self._executor = ex
        log.debug("slot %d: executor pid %d started (CUDA_VISIBLE_DEVICES=%r)", self.index, ex.pid, cuda)
        return ex

    async def _executor_for(self, cuda: str | None) -> ExecutorProcess:
        if self._starting is not None:
            starting, self._starting = self._starting, None
            with contextlib.suppress(Exception):
                await starting
        ex = self._executor
        if ex is not None and ex.alive and ex.cuda == cuda:
            return ex
        if ex is not None:
            if not ex.alive:
                log.warning(
                    "slot %d: executor pid %d died between tasks (exit status %s); restarting",
                    self.index, ex.pid, ex.exited.result(),
                )  # fmt: skip
            self._executor = None
            await ex.stop()
        return await self._start(cuda)

    def cancel(self, reason: str = "", grace: float | None = None, *, preempt: bool = False) -> None:
        """Stop the running task: SIGTERM to its process group, SIGKILL after ``grace``.
        ``preempt``: a task that returns in time (it saw ``should_preempt()``) reports its
        own outcome, marked ``stopped``; the server queues it again either way."""
        if self.current is None or self._cancel.is_set():
            return
        self._cancel_reason = reason
        self._cancel_grace = grace
        self._cancel_preempt = preempt
        self._cancel.set()
        if self._cancel_requested is not None and not self._cancel_requested.done():
            self._cancel_requested.set_result(None)

    def begin(self, task: TaskRequest, sink: Sink, on_started: Callable[[int], None] | None = None) -> bool:
        """Hand ``task`` to this slot's warm executor now, from the caller's loop turn (then
        :meth:`run` waits for it): a quick task starts a loop turn sooner. False (nothing
        done) when there is no warm executor for its GPUs; :meth:`run` then does it all."""
        ex = self._executor
        if (
            self.current is not None
            or self._starting is not None
            or ex is None
            or not ex.alive
            or ex.cuda != self.cuda_for(task.gpus)
        ):
            return False
        self.current = task
        self._cancel.clear()
        self._sent = (task, ex, self._send(ex, task, sink, on_started))
        return True

    async def run(
        self,
        task: TaskRequest,
        sink: Sink,
        on_started: Callable[[int], None] | None = None,
    ) -> Outcome:
        """Run one attempt to its end; never raises for anything the task does."""
        sent, self._sent = self._sent, None
        if sent is None or sent[0] is not task:
            if self.current is not None:
                raise RuntimeError(f"slot {self.index} is busy")
            self.current = task
            self._cancel.clear()
        try:
            return await self._run(task, sink, on_started, sent)
        finally:
            self.current = None

    def _send(
        self, ex: ExecutorProcess, task: TaskRequest, sink: Sink, on_started: Callable[[int], None] | None
    ) -> tuple[bool, float]:
        header = {
            "op": "run",
            "task_id": task.task_id,
            "attempt": task.attempt,
            "kind": task.kind,
            "command": task.command,
            "env": task.env,
            "client_env": task.client_env,
            "payload_file": task.payload_file,
        }
        if task.step is not None:
            header["step"] = task.step
        if task.params is not None:
            header["params"] = task.params
        ex.set_sink(sink)
        if on_started is not None:  # before the send, so "started" precedes any output
            on_started(ex.pid)
        return ex.send(header, list(task.blobs.items())), time.monotonic()

    async def _run(
        self,
        task: TaskRequest,
        sink: Sink,
        on_started: Callable[[int], None] | None,
        sent: tuple[TaskRequest, ExecutorProcess, tuple[bool, float]] | None,
    ) -> Outcome:
        if sent is not None:
            _, ex, (ok, started) = sent
        else:
            cuda = self.cuda_for(task.gpus)
            try:
                ex = await self._executor_for(cuda)
            except (ExecutorStartError, OSError) as exc:
                return Outcome.failure(
                    "worker_error", f"worker {self.worker_name} could not start a process: {exc}"
                )
            if self._cancel.is_set():
                return self._cancelled()
            ok, started = self._send(ex, task, sink, on_started)
        try:
            outcome = await self._wait(ex, task, started) if ok else await self._died(ex)
        finally:
            ex.drain()
            ex.set_sink(None)
        if not ex.alive:
            ex.close()
            if self._executor is ex:
                self._executor = None
                self.prestart(task.gpus)
        return outcome

    async def _wait(self, ex: ExecutorProcess, task: TaskRequest, started: float) -> Outcome:
        frame_wait = ex.next_frame()
        cancel_wait = self._cancel_requested = asyncio.get_running_loop().create_future()
        if self._cancel.is_set():
            cancel_wait.set_result(None)
        try:
            timeout = None
            if task.timeout is not None and task.timeout > 0:
                timeout = max(0.0, task.timeout - (time.monotonic() - started))
            waits: list[asyncio.Future[Any]] = [frame_wait, cancel_wait, ex.exited]
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            frame = frame_wait.result() if frame_wait.done() else None
            if frame is not None:
                header, blobs = frame
                return Outcome.from_header(header, blobs.get("result", b""))
            if cancel_wait.done():
                return await self._stop(ex, frame_wait)
            if not done:
                await ex.terminate(self.kill_grace)
                return Outcome.failure("timeout", f"timed out after {task.timeout:g} s")
            return await self._died(ex, frame_wait)
        finally:
            for fut in (frame_wait, cancel_wait):
                if not fut.done():
                    fut.cancel()

    async def _died(self, ex: ExecutorProcess, frame_wait: asyncio.Future[Any] | None = None) -> Outcome:
        """The control channel ended or the process exited: a done frame may still be in flight."""
        if frame_wait is not None and not frame_wait.done():
            await wait_future(frame_wait, 0.2)
            if frame_wait.done() and frame_wait.result() is not None:
                header, blobs = frame_wait.result()
                if header.get("op") == "done":
                    return Outcome.from_header(header, blobs.get("result", b""))
        if await wait_future(ex.exited, 2.0):
            code = ex.exited.result()
        else:  # the channel closed but the process lives on: end it
            code = await ex.kill()
        ex.signal_group(signal.SIGKILL)  # whatever the task left behind in its group
        log.warning("slot %d: executor pid %d died (exit status %d)", self.index, ex.pid, code)
        return process_death(code)

    async def _stop(self, ex: ExecutorProcess, frame_wait: asyncio.Future[Any]) -> Outcome:
        """SIGTERM for a cancel or a preemption; SIGKILL if nothing ends within the grace.
        A task that polls ``should_preempt()`` returns instead of dying: its executor stays
        warm, and for a preemption its own report goes to the server."""
        ex.signal_group(signal.SIGTERM)
        grace = self.kill_grace if self._cancel_grace is None else self._cancel_grace
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await asyncio.wait([frame_wait, ex.exited], timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        frame = frame_wait.result() if frame_wait.done() else None
        if frame is None:
            # the executor is gone, but a shell task's processes may still be at work (its
            # trap saving a checkpoint): they have the rest of the grace (nothing to await)
            while ex.exited.done() and ex.group_alive() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            killed = not ex.exited.done() or ex.group_alive()
            await ex.kill()
            ex.signal_group(signal.SIGKILL)  # whatever the task left behind in its group
            if killed and self._cancel_preempt:
                return Outcome.failure("preempted", f"killed: it did not stop within its {grace:g} s grace")
        elif self._cancel_preempt:
            header, blobs = frame
            return Outcome.from_header(header, blobs.get("result", b""))
        return self._cancelled()

    def _cancelled(self) -> Outcome:
        reason = self._cancel_reason
        if self._cancel_preempt:  # the server queues it again (even one that did not hear of it)
            return Outcome.failure("preempted", "stopped when asked")
        return Outcome.failure("cancelled", f"cancelled: {reason}" if reason else "cancelled")

    async def close(self, kill: bool = False) -> None:
        """Stop the executor: at once with ``kill``, else when its current task ends."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
            self._starting = None
        ex, self._executor = self._executor, None
        if ex is None:
            return
        if kill:
            await ex.kill()
            ex.close()
        else:
            await ex.stop()


def _consume_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not start an executor: %s", task.exception())

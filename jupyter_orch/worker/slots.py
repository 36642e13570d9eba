"""The worker side of one slot: its long-lived executor process and the task running in it.

A :class:`Slot` keeps one executor (``python -m jupyter_orch.worker.executor``) warm so a
task costs a message, not a process start. The executor is restarted when it dies, and when
the next task needs a different ``CUDA_VISIBLE_DEVICES``. :meth:`Slot.run` sends a task,
streams its output lines to a sink, and returns its :class:`Outcome`, including the ones the
executor cannot report itself: its death, a timeout, a cancellation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_orch.worker import frames
from jupyter_orch.worker.aio import wait_future
from jupyter_orch.worker.outcomes import Outcome, process_death
from jupyter_orch.worker.output import PipeReader, Sink

log = logging.getLogger("jupyter_orch.worker")

START_TIMEOUT = 120.0


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


class ExecutorStartError(RuntimeError):
    """The executor process did not come up."""


class ExecutorProcess:
    """One running executor: its process group, control socket and output pipes."""

    def __init__(self, cuda: str | None) -> None:
        self.cuda = cuda
        self.proc: subprocess.Popen[bytes] | None = None
        self.frames: asyncio.Queue[frames.Frame | None] = asyncio.Queue()
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stray: collections.deque[str] = collections.deque(maxlen=50)
        self._writer: asyncio.StreamWriter | None = None
        self._readers: list[PipeReader] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._pidfd: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and not self.exited.done()

    async def start(self, python: str, cwd: str | None, env: dict[str, str], worker_name: str) -> None:
        parent_sock, child_sock = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [
                    python,
                    "-m",
                    "jupyter_orch.worker.executor",
                    "--control-fd",
                    str(child_sock.fileno()),
                    "--worker-name",
                    worker_name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(child_sock.fileno(),),
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        except OSError:
            for fd in (out_r, err_r):
                os.close(fd)
            parent_sock.close()
            raise
        finally:
            child_sock.close()
            os.close(out_w)
            os.close(err_w)
        self._readers = [PipeReader(out_r, "stdout", self._stray), PipeReader(err_r, "stderr", self._stray)]
        self._watch_exit()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent_sock)
        self._tasks.append(asyncio.ensure_future(self._read_frames(reader)))
        ready = asyncio.ensure_future(self.frames.get())
        await asyncio.wait([ready, self.exited], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        frame = ready.result() if ready.done() else None
        if not ready.done():
            ready.cancel()
        if frame is None or frame[0].get("op") != "ready":
            await self.kill()
            self.drain()
            self.close()
            detail = " | ".join(self.stray) or "no output"
            raise ExecutorStartError(f"the executor process did not start: {detail}")

    def _stray(self, ts: float, stream: str, text: str) -> None:
        self.stray.append(text)
        log.debug("executor %s %s: %s", self.proc.pid if self.proc else "?", stream, text)

    def _watch_exit(self) -> None:
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self._tasks.append(asyncio.ensure_future(self._poll_exit()))
            return
        loop.add_reader(self._pidfd, self._on_pidfd)

    def _on_pidfd(self) -> None:
        assert self.proc is not None and self._pidfd is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._set_exited(self.proc.wait())

    async def _poll_exit(self) -> None:
        assert self.proc is not None
        delay = 0.001
        while self.proc.poll() is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._set_exited(self.proc.returncode)

    def _set_exited(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                frame = await frames.read(reader)
                await self.frames.put(frame)
                if frame is None:
                    return
        except Exception as exc:  # a malformed frame: treat as the end of the channel
            log.warning("bad control frame from executor %s: %s", self.proc.pid if self.proc else "?", exc)
            await self.frames.put(None)

    def set_sink(self, sink: Sink | None) -> None:
        for reader in self._readers:
            reader.sink = sink

    def drain(self) -> None:
        for reader in self._readers:
            reader.drain()

    async def send(self, header: dict[str, Any], blobs: list[tuple[str, bytes]]) -> bool:
        assert self._writer is not None
        try:
            await frames.write(self._writer, header, blobs)
            return True
        except (ConnectionError, OSError):
            return False

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    async def terminate(self, grace: float) -> int:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; the exit status."""
        self.signal_group(signal.SIGTERM)
        await wait_future(self.exited, grace)
        return await self.kill()

    async def kill(self) -> int:
        self.signal_group(signal.SIGKILL)
        return await self.exited

    async def stop(self, grace: float = 2.0) -> None:
        """Close the control channel (the executor exits when idle), then make sure."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self.proc is not None:
            await wait_future(self.exited, grace)
            await self.kill()
        self.close()

    def close(self) -> None:
        """Release the pipes, the socket and the watchers (the process must have exited)."""
        for reader in self._readers:
            reader.close()
        self._readers = []
        for task in self._tasks:
            task.cancel()
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()


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
        self.kill_grace = kill_grace
        self.current: TaskRequest | None = None
        self._executor: ExecutorProcess | None = None
        self._starting: asyncio.Task[ExecutorProcess] | None = None
        self._cancel = asyncio.Event()
        self._cancel_reason = ""
        self._cancel_grace: float | None = None

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
            self._executor = None
            await ex.stop()
        return await self._start(cuda)

    def cancel(self, reason: str = "", grace: float | None = None) -> None:
        """Stop the running task: SIGTERM to its process group, SIGKILL after ``grace``."""
        if self.current is None or self._cancel.is_set():
            return
        self._cancel_reason = reason
        self._cancel_grace = grace
        self._cancel.set()

    async def run(
        self,
        task: TaskRequest,
        sink: Sink,
        on_started: Callable[[int], None] | None = None,
    ) -> Outcome:
        """Run one attempt to its end; never raises for anything the task does."""
        if self.current is not None:
            raise RuntimeError(f"slot {self.index} is busy")
        self.current = task
        self._cancel.clear()
        try:
            return await self._run(task, sink, on_started)
        finally:
            self.current = None

    async def _run(self, task: TaskRequest, sink: Sink, on_started: Callable[[int], None] | None) -> Outcome:
        cuda = self.cuda_for(task.gpus)
        try:
            ex = await self._executor_for(cuda)
        except (ExecutorStartError, OSError) as exc:
            return Outcome.failure(
                "worker_error", f"worker {self.worker_name} could not start a process: {exc}"
            )
        if self._cancel.is_set():
            return self._cancelled()
        header = {
            "op": "run",
            "task_id": task.task_id,
            "attempt": task.attempt,
            "kind": task.kind,
            "command": task.command,
            "env": task.env,
            "client_env": task.client_env,
        }
        ex.set_sink(sink)
        started = time.monotonic()
        try:
            if on_started is not None:  # before the send, so "started" precedes any output
                on_started(ex.pid)
            sent = await ex.send(header, list(task.blobs.items()))
            outcome = await self._wait(ex, task, started) if sent else await self._died(ex)
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
        frame_wait = asyncio.ensure_future(ex.frames.get())
        cancel_wait = asyncio.ensure_future(self._cancel.wait())
        try:
            timeout = None
            if task.timeout is not None and task.timeout > 0:
                timeout = max(0.0, task.timeout - (time.monotonic() - started))
            done, _ = await asyncio.wait(
                [frame_wait, cancel_wait, ex.exited], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if frame_wait.done() and frame_wait.result() is not None:
                header, blobs = frame_wait.result()  # type: ignore[misc]
                return Outcome.from_header(header, blobs.get("result", b""))
            if cancel_wait.done():
                await ex.terminate(self.kill_grace if self._cancel_grace is None else self._cancel_grace)
                return self._cancelled()
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

    def _cancelled(self) -> Outcome:
        reason = self._cancel_reason
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

"""One executor process: start it, talk to it, watch it exit, stop or kill its process group.

The process is ``python -m jupyter_orch.worker.executor`` in its own session; its stdout and
stderr are pipes read into lines (:mod:`.output`), and so is a third pipe for its tasks'
metric reports (its write end's number in ``JUPYTER_ORCH_METRICS_FD``, see
:mod:`.metricspipe`; lines of stream ``metric``); tasks and results go over a socketpair
(:mod:`.frames`), and its exit is seen through a pidfd (polled where there is none).
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
from typing import Any

from . import frames
from .aio import wait_future
from .metricspipe import FD_ENV, MAX_LINE
from .output import PipeReader, Sink

log = logging.getLogger("jupyter_orch.worker")

START_TIMEOUT = 120.0


class ExecutorStartError(RuntimeError):
    """The executor process did not come up."""


class ExecutorProcess:
    """One running executor: its process group, control socket and output pipes."""

    def __init__(self, cuda: str | None) -> None:
        self.cuda = cuda
        self.proc: subprocess.Popen[bytes] | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.stray: collections.deque[str] = collections.deque(maxlen=50)
        self._frames: collections.deque[frames.Frame | None] = collections.deque()
        self._frame_waiter: asyncio.Future[frames.Frame | None] | None = None
        self._channel: frames.FrameChannel | None = None
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
        met_r, met_w = os.pipe()
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
                pass_fds=(child_sock.fileno(), met_w),
                start_new_session=True,
                cwd=cwd,
                env={**env, FD_ENV: str(met_w)},
            )
        except OSError:
            for fd in (out_r, err_r, met_r):
                os.close(fd)
            parent_sock.close()
            raise
        finally:
            child_sock.close()
            for fd in (out_w, err_w, met_w):
                os.close(fd)
        self._readers = [
            PipeReader(out_r, "stdout", self._stray),
            PipeReader(err_r, "stderr", self._stray),
            # between tasks (no sink) a point has no attempt to go to: dropped
            PipeReader(met_r, "metric", max_line=MAX_LINE, marks=False),
        ]
        self._watch_exit()
        _, self._channel = await asyncio.get_running_loop().create_unix_connection(
            lambda: frames.FrameChannel(self._on_frame), sock=parent_sock
        )
        ready = self.next_frame()
        waits: list[asyncio.Future[Any]] = [ready, self.exited]
        await asyncio.wait(waits, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
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

    def _on_frame(self, frame: frames.Frame | None) -> None:
        waiter, self._frame_waiter = self._frame_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)
        else:
            self._frames.append(frame)

    def next_frame(self) -> asyncio.Future[frames.Frame | None]:
        """A future for the next control frame from the executor (None: the channel ended)."""
        fut: asyncio.Future[frames.Frame | None] = asyncio.get_running_loop().create_future()
        if self._frames:
            fut.set_result(self._frames.popleft())
        elif self._frame_waiter is not None and not self._frame_waiter.done():
            raise RuntimeError("one reader of executor frames at a time")
        else:
            self._frame_waiter = fut
        return fut

    def set_sink(self, sink: Sink | None) -> None:
        for reader in self._readers:
            reader.sink = sink

    def drain(self) -> None:
        for reader in self._readers:
            reader.drain()

    def send(self, header: dict[str, Any], blobs: list[tuple[str, bytes]]) -> bool:
        """Queue a frame for the executor; False when its channel is closed."""
        assert self._channel is not None
        try:
            return self._channel.send(header, blobs)
        except (ConnectionError, OSError):
            return False

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def group_alive(self) -> bool:
        """Whether any process of the executor's group lives (a shell task's processes may
        outlive the executor: a ``trap`` at work after SIGTERM)."""
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _group_has_live(self.proc.pid)

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
        if self._channel is not None:
            with contextlib.suppress(Exception):
                self._channel.close()
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
        if self._channel is not None:
            with contextlib.suppress(Exception):
                self._channel.close()
        if self._frame_waiter is not None and not self._frame_waiter.done():
            self._frame_waiter.cancel()


def _group_has_live(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is more than a zombie. A shell task's processes
    outlive their executor as orphans; where no init reaps them (a container whose PID 1
    is not one), an exited orphan stays a zombie that ``killpg(pgid, 0)`` still finds.
    Linux's /proc tells them apart; elsewhere a group found is taken as alive."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False

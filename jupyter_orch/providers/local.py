"""The local provider (the default): worker processes on the server's own machine.

It starts ``workers`` processes of ``python -m jupyter_orch.worker``, each with its own
token, and records their pids in ``<data_dir>/local-workers.json``.

- A worker process that dies ends its tasks' attempts at once (lost, retried per each
  task's policy; the engine's ``worker_lost``), with its exit code or signal as the
  reason, and a fresh worker takes its place.
- The workers outlive a server that crashes (their own session), so that the server,
  restarted on the same data directory, adopts them with their running tasks. An adopted
  worker must reconnect within ``adopt_grace`` seconds (it follows the server to a new port
  through ``server.json``); one that does not is stopped and replaced, its tasks retried.
- A worker whose server died and did not come back stops itself after ``orphan_timeout``
  seconds (:mod:`jupyter_orch.worker.watchdog`), its tasks with it: nothing is left behind.
- When the server stops, so do its workers: SIGTERM (running tasks have ``stop_timeout``
  seconds to finish), SIGTERM again (the worker kills its tasks), then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from traitlets import Dict, Float, Int, List, Unicode

from ..core.ids import new_id
from ..discovery import CONNECTION_FILE
from .base import Provider, ProviderContext

KILL_BOUND = 5.0  # seconds for a worker told to kill its tasks, then for SIGKILL to land


@dataclass
class _Worker:
    """A local worker process, started here or adopted from a server that crashed."""

    worker_id: str
    index: int
    pid: int
    token_id: str | None
    proc: asyncio.subprocess.Process | None = None  # None: adopted, not our child
    exited: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    replaced: str | None = None  # why this provider stopped it, when it did

    @property
    def name(self) -> str:
        return f"local-{self.index}"


def _exit_words(code: int | None) -> str:
    if code is None:
        return "is gone"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class LocalProvider(Provider):
    name = "local"

    workers = Int(2, config=True, help="How many local worker processes to run.")
    slots_per_worker = Int(1, config=True, help="Tasks one local worker runs at once.")
    cpus_per_worker = Float(0.0, config=True, help="CPUs each worker offers (0: all of this machine's).")
    memory_per_worker = Unicode("", config=True, help="Memory each worker offers, e.g. '8Gi' (empty: all).")
    labels = Dict(Unicode(), config=True, help="Labels every local worker carries.")
    gpu_split = Unicode(
        "round-robin", config=True, help="How this machine's GPUs are shared out: 'round-robin' or 'all'."
    )
    extra_args = List(Unicode(), config=True, help="Extra command-line arguments for every worker.")
    restart_delay = Float(1.0, config=True, help="Seconds before a dead worker is restarted.")
    python = Unicode(sys.executable, config=True, help="The Python that runs the workers.")
    orphan_timeout = Float(
        60.0,
        config=True,
        help="Seconds a local worker whose server died waits for a server to come back (a server "
        "restarted on the same data directory adopts it, running tasks included) before it stops "
        "itself and kills its tasks. 0: it waits for ever.",
    )
    adopt_grace = Float(
        30.0,
        config=True,
        help="Seconds a worker left running by a server that crashed has to reconnect to this one "
        "after it adopted it; one that does not is stopped and replaced, and its tasks are retried.",
    )
    stop_timeout = Float(
        5.0,
        config=True,
        help="When the server stops (or a worker is replaced): seconds a worker's running tasks "
        "have to finish before they are killed.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._procs: dict[str, _Worker] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closers: list[Callable[[], None]] = []
        self._stopping = False

    # ------------------------------------------------------------------ state file
    @property
    def _state_file(self) -> Path:
        return Path(self.context.data_dir) / "local-workers.json"

    def _load_state(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self._state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return []

    def _save_state(self) -> None:
        entries = [
            {"worker_id": w.worker_id, "pid": w.pid, "token_id": w.token_id, "index": w.index}
            for w in self._procs.values()
        ]
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, self._state_file)

    @staticmethod
    def _alive_worker(pid: int, worker_id: str) -> bool:
        try:
            proc = psutil.Process(pid)
            return proc.status() != psutil.STATUS_ZOMBIE and worker_id in " ".join(proc.cmdline())
        except (psutil.Error, OSError):
            return False

    def _gpu_args(self, index: int) -> list[str]:
        if self.gpu_split != "round-robin" or self.workers <= 1:
            return []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            pynvml.nvmlShutdown()
        except Exception:
            return []
        mine = [str(g) for g in range(count) if g % self.workers == index]
        return ["--gpus", ",".join(mine)] if mine else ["--gpus", "none"]

    # ------------------------------------------------------------------ start
    async def start(self, context: ProviderContext) -> None:
        await super().start(context)
        taken: set[int] = set()
        for position, entry in enumerate(self._load_state()):
            wid, pid, index = entry.get("worker_id"), entry.get("pid"), entry.get("index", position)
            if not (isinstance(wid, str) and isinstance(pid, int)):
                continue
            if not isinstance(index, int) or index in taken:
                index = position
            if not self._alive_worker(pid, wid):
                # it can never come back: what it ran ends now, not after the worker grace
                self._lost(
                    wid,
                    f"worker local-{index} was lost while running this task: its process (pid {pid}) "
                    "was gone when the server started again",
                )
                if isinstance(entry.get("token_id"), str):
                    await self.context.revoke_token(entry["token_id"])
                continue
            w = _Worker(wid, index, pid, entry.get("token_id"))
            taken.add(index)
            self._procs[wid] = w
            self._watch_pid(w)
            self._tasks.append(asyncio.create_task(self._supervise(w, adopted=True)))
        if self._procs:
            self.log.info(
                "jupyter-orch: adopted %d local worker(s) still running from before; each has %g s "
                "to reconnect",
                len(self._procs),
                self.adopt_grace,
            )
        free = [i for i in range(self.workers + len(taken)) if i not in taken]
        for index in free[: max(0, self.workers - len(taken))]:
            await self._spawn(index)
        self._save_state()

    async def _spawn(self, index: int) -> None:
        worker_id = new_id()
        token_id, secret = await self.context.issue_worker_token(f"local-{index}", "local")
        args = [
            self.python,
            "-m",
            "jupyter_orch.worker",
            "--server",
            self.context.server_url,
            "--server-file",
            str(Path(self.context.data_dir) / CONNECTION_FILE),
            "--worker-id",
            worker_id,
            "--name",
            f"local-{index}",
            "--slots",
            str(self.slots_per_worker),
            *self._gpu_args(index),
        ]
        if self.orphan_timeout > 0:  # counted from this server's exit, even one before it ran
            args += ["--orphan-timeout", f"{self.orphan_timeout:g}", "--parent-pid", str(os.getpid())]
        if self.cpus_per_worker:
            args += ["--cpus", f"{self.cpus_per_worker:g}"]
        if self.memory_per_worker:
            args += ["--memory", self.memory_per_worker]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += list(self.extra_args)
        env = dict(os.environ, JUPYTER_ORCH_TOKEN=secret, JUPYTER_ORCH_PROVIDER="local")
        proc = await asyncio.create_subprocess_exec(*args, env=env, start_new_session=True)
        w = _Worker(worker_id, index, proc.pid, token_id, proc)
        self._procs[worker_id] = w
        if self._stopping:  # the server began to stop meanwhile: this one goes too
            self._signal([w], signal.SIGTERM)
        self.log.info("jupyter-orch: started local worker local-%d (pid %d)", index, proc.pid)

        async def wait() -> None:
            w.exited.set_result(_exit_words(await proc.wait()))

        self._tasks.append(asyncio.create_task(wait()))
        self._tasks.append(asyncio.create_task(self._supervise(w)))

    def _watch_pid(self, w: _Worker) -> None:
        """Resolve ``w.exited`` when the adopted process (not our child) ends."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(w.pid)
        except (AttributeError, OSError):  # no pidfd here, or it just ended
            self._tasks.append(asyncio.create_task(self._poll_pid(w)))
            return
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                loop.remove_reader(fd)
                os.close(fd)

        def gone() -> None:
            close()
            if not w.exited.done():
                w.exited.set_result(_exit_words(None))

        loop.add_reader(fd, gone)
        self._closers.append(close)

    async def _poll_pid(self, w: _Worker) -> None:
        while self._alive_worker(w.pid, w.worker_id):
            await asyncio.sleep(0.5)
        if not w.exited.done():
            w.exited.set_result(_exit_words(None))

    # ------------------------------------------------------------------ supervision
    async def _supervise(self, w: _Worker, adopted: bool = False) -> None:
        """Wait for the worker to end (an adopted one must reconnect first); then end its
        attempts and start a fresh worker in its place."""
        checker = asyncio.create_task(self._await_reconnect(w)) if adopted else None
        try:
            why = await w.exited
        finally:
            if checker is not None:
                checker.cancel()
        if self._stopping:
            return
        self._procs.pop(w.worker_id, None)
        why = w.replaced or why
        self._lost(
            w.worker_id, f"worker {w.name} was lost while running this task: its process (pid {w.pid}) {why}"
        )
        if w.token_id:
            await self.context.revoke_token(w.token_id)
        self.log.warning("jupyter-orch: local worker %s (pid %d) %s; starting another", w.name, w.pid, why)
        await asyncio.sleep(self.restart_delay)
        if not self._stopping:
            await self._spawn(w.index)
            self._save_state()

    def _connected(self, worker_id: str) -> bool:
        status = self.context.worker_status
        if status is None:  # the engine cannot tell: trust the process
            return True
        seen = status(worker_id)
        return seen is not None and seen["state"] in ("connected", "draining")

    async def _await_reconnect(self, w: _Worker) -> None:
        """An adopted worker that does not reconnect within ``adopt_grace`` (it dials a server
        that is gone, or hangs) is stopped; :meth:`_supervise` then replaces it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.adopt_grace
        while not self._connected(w.worker_id):
            if loop.time() >= deadline:
                w.replaced = (
                    f"did not reconnect within {self.adopt_grace:g} s after the server restarted "
                    "(LocalProvider.adopt_grace), so it was stopped"
                )
                self.log.warning(
                    "jupyter-orch: adopted local worker %s (pid %d) did not reconnect within %g s; "
                    "stopping it",
                    w.name,
                    w.pid,
                    self.adopt_grace,
                )
                await self._terminate([w])
                return
            await asyncio.sleep(0.2)

    def _lost(self, worker_id: str, error: str) -> None:
        if self.context.worker_lost is not None:
            self.context.worker_lost(worker_id, "worker_lost", error)

    # ------------------------------------------------------------------ stop
    @staticmethod
    def _signal(workers: list[_Worker], sig: int, group: bool = False) -> None:
        for w in workers:
            if w.exited.done():
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:  # started in its own session: its process group is its pid
                    os.killpg(w.pid, sig)
                else:
                    os.kill(w.pid, sig)

    @staticmethod
    async def _wait_exited(workers: list[_Worker], timeout: float) -> list[_Worker]:
        """Those of ``workers`` still running after ``timeout`` seconds."""
        pending = [w.exited for w in workers if not w.exited.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(timeout, 0.0))
        return [w for w in workers if not w.exited.done()]

    async def _terminate(self, workers: list[_Worker]) -> None:
        """SIGTERM (running tasks have ``stop_timeout`` s to finish), SIGTERM again (the
        worker kills its tasks' process groups and exits), SIGKILL of its process group."""
        self._signal(workers, signal.SIGTERM)
        left = await self._wait_exited(workers, self.stop_timeout)
        self._signal(left, signal.SIGTERM)
        left = await self._wait_exited(left, KILL_BOUND)
        for w in left:
            self.log.warning("jupyter-orch: local worker %s (pid %d) did not stop; killing it", w.name, w.pid)
        self._signal(left, signal.SIGKILL, group=True)
        await self._wait_exited(left, KILL_BOUND)

    async def stop(self) -> None:
        self._stopping = True
        workers = list(self._procs.values())
        await self._terminate(workers)
        for w in workers:  # their attempts end now: the next start need not wait for them
            self._lost(
                w.worker_id,
                f"worker {w.name} was lost while running this task: the server stopped, and its "
                "local workers with it",
            )
            if w.exited.done() and w.token_id:
                try:
                    await self.context.revoke_token(w.token_id)
                except Exception as exc:  # the server stops anyway
                    self.log.warning("jupyter-orch: could not revoke %s's token: %s", w.name, exc)
        for task in self._tasks:
            task.cancel()
        for close in self._closers:
            close()
        self._procs.clear()
        with contextlib.suppress(OSError):
            self._state_file.unlink()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "slots_per_worker": self.slots_per_worker}

"""The local provider (the default): worker processes on the server's own machine.

It starts ``workers`` processes of ``python -m jupyter_orch.worker``, each with its own
token, restarts one that dies, and records their pids so that after a server crash the
still-running workers (and their tasks) are adopted instead of duplicated.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
from traitlets import Dict, Float, Int, List, Unicode

from ..core.ids import new_id
from .base import Provider, ProviderContext


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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._procs: dict[str, asyncio.subprocess.Process | int] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def _state_file(self) -> Path:
        return Path(self.context.data_dir) / "local-workers.json"

    def _load_state(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self._state_file.read_text()))
        except (OSError, ValueError):
            return []

    def _save_state(self) -> None:
        entries = []
        for wid, proc in self._procs.items():
            pid = proc if isinstance(proc, int) else proc.pid
            entries.append({"worker_id": wid, "pid": pid, "token_id": self._token_ids.get(wid)})
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

    async def start(self, context: ProviderContext) -> None:
        await super().start(context)
        self._token_ids: dict[str, str | None] = {}
        adopted = 0
        for entry in self._load_state():
            wid, pid = entry.get("worker_id"), entry.get("pid")
            if isinstance(wid, str) and isinstance(pid, int) and self._alive_worker(pid, wid):
                self._procs[wid] = pid
                self._token_ids[wid] = entry.get("token_id")
                self._watchers.append(
                    asyncio.create_task(self._watch_adopted(wid, pid, len(self._procs) - 1))
                )
                adopted += 1
        if adopted:
            self.log.info("jupyter-orch: adopted %d local worker(s) still running from before", adopted)
        for index in range(adopted, self.workers):
            await self._spawn(new_id(), index)
        self._save_state()

    async def _spawn(self, worker_id: str, index: int) -> None:
        token_id, secret = await self.context.issue_worker_token(f"local-{index}", "local")
        self._token_ids[worker_id] = token_id
        args = [
            self.python,
            "-m",
            "jupyter_orch.worker",
            "--server",
            self.context.server_url,
            "--worker-id",
            worker_id,
            "--name",
            f"local-{index}",
            "--slots",
            str(self.slots_per_worker),
            *self._gpu_args(index),
        ]
        if self.cpus_per_worker:
            args += ["--cpus", f"{self.cpus_per_worker:g}"]
        if self.memory_per_worker:
            args += ["--memory", self.memory_per_worker]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += list(self.extra_args)
        env = dict(os.environ, JUPYTER_ORCH_TOKEN=secret, JUPYTER_ORCH_PROVIDER="local")
        proc = await asyncio.create_subprocess_exec(*args, env=env, start_new_session=True)
        self._procs[worker_id] = proc
        self.log.info("jupyter-orch: started local worker local-%d (pid %d)", index, proc.pid)
        self._watchers.append(asyncio.create_task(self._watch(worker_id, proc, index)))

    async def _watch(self, worker_id: str, proc: asyncio.subprocess.Process, index: int) -> None:
        code = await proc.wait()
        await self._restart(worker_id, index, f"exited with code {code}")

    async def _watch_adopted(self, worker_id: str, pid: int, index: int) -> None:
        while not self._stopping and self._alive_worker(pid, worker_id):
            await asyncio.sleep(1.0)
        await self._restart(worker_id, index, "is gone")

    async def _restart(self, worker_id: str, index: int, why: str) -> None:
        if self._stopping:
            return
        self._procs.pop(worker_id, None)
        token_id = self._token_ids.pop(worker_id, None)
        if token_id:
            await self.context.revoke_token(token_id)
        self.log.warning("jupyter-orch: local worker local-%d %s; restarting it", index, why)
        await asyncio.sleep(self.restart_delay)
        if not self._stopping:
            await self._spawn(new_id(), index)
            self._save_state()

    async def stop(self) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        pids = [p if isinstance(p, int) else p.pid for p in self._procs.values()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = asyncio.get_running_loop().time() + 10
        while pids and asyncio.get_running_loop().time() < deadline:
            pids = [
                p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
            ]
            for proc in self._procs.values():
                if not isinstance(proc, int) and proc.returncode is None:
                    try:
                        await asyncio.wait_for(proc.wait(), 0.05)
                    except asyncio.TimeoutError:
                        pass
            if pids:
                await asyncio.sleep(0.05)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._procs.clear()
        try:
            self._state_file.unlink()
        except OSError:
            pass

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "slots_per_worker": self.slots_per_worker}

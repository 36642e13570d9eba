"""A real ``jupyter orch serve`` in a subprocess, with its local workers, for tests.

Readiness is awaited on the server's own log line; worker counts on the events WebSocket.
Every process the server starts carries ``ORCH_TEST_TAG`` so the teardown can end
survivors (workers outlive a killed server by design) without matching on names.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
import websocket

from jupyter_orch.client.http import HttpApi

from .output import Output

READY_MARK = "jupyter-orch "
READY_MARK2 = ": API at "
CLIENT_MARK = " in client mode: "  # a user's server of a team-mode hub (server/clientmode.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tagged_pids(tag: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"ORCH_TEST_TAG={tag}".encode() in env.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def wait_gone(pids: Iterable[int], timeout: float = 90) -> list[str]:
    """Wait for these processes to exit; the command lines of those still there (zombies,
    which have exited, count as gone)."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    left = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid}: {' '.join(p.cmdline())}")
        except psutil.Error:
            pass
    return left


class OrchServer:
    def __init__(
        self,
        root: Path,
        *,
        workers: int = 2,
        db_url: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        full: bool = False,
        wrap: list[str] | None = None,
    ) -> None:
        """``full``: a whole ``jupyter server`` (kernels, contents, other extensions) with the
        extension enabled, instead of ``jupyter orch serve``. ``wrap``: a command line the
        server is started under (it must exec the rest of its arguments: ``unshare ...``)."""
        self.root = root
        self.data_dir = root / "data" / "orch"
        self.port = free_port()
        self.jupyter_token = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex
        self.workers = workers
        self.db_url = db_url
        self.args = list(args or [])
        self.env = dict(env or {})
        self.full = full
        self.wrap = list(wrap or [])
        self.proc: subprocess.Popen[str] | None = None
        self.output = Output("server")
        self._ready = threading.Event()
        self._serving = False  # the ready line was seen (not just the end of its output)

    # ------------------------------------------------------------------ process
    def start(self, timeout: float = 60) -> OrchServer:
        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            JUPYTER_DATA_DIR=str(self.root / "data"),
            JUPYTER_CONFIG_DIR=str(self.root / "config"),
            JUPYTER_RUNTIME_DIR=str(self.root / "runtime"),
            ORCH_TEST_TAG=self.tag,
            PYTHONUNBUFFERED="1",
        )
        env.pop("JUPYTER_ORCH_URL", None)
        env.pop("JUPYTER_ORCH_TOKEN", None)
        env.update(self.env)
        launcher = ["jupyter_server", "--allow-root"] if self.full else ["jupyter_orch", "serve"]
        cmd = [
            sys.executable,
            "-m",
            *launcher,
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.jupyter_token}",
            f"--OrchApp.data_dir={self.data_dir}",
            f"--LocalProvider.workers={self.workers}",
            f"--ServerApp.root_dir={self.root}",
            *self.args,
        ]
        if self.db_url:
            cmd.append(f"--OrchApp.db_url={self.db_url}")
        cmd = self.wrap + cmd
        self._ready.clear()
        self._serving = False
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,  # no terminal, as a service or JupyterHub runs it (SIGINT stops it)
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.root,
        )
        assert self.proc.stdout is not None
        self.output.follow(self.proc.stdout, on_line=self._on_line, on_end=self._ready.set)
        if not self._ready.wait(timeout) or not self._serving or self.proc.poll() is not None:
            raise RuntimeError("the orch server did not start:\n" + self.log_text())
        info = json.loads((self.data_dir / "server.json").read_text())
        self.url, self.token = info["url"], info["token"]
        self.local_url = f"http://127.0.0.1:{self.port}"  # this server's own (in client mode, not self.url)
        return self

    def _on_line(self, line: str) -> None:
        if READY_MARK in line and (READY_MARK2 in line or CLIENT_MARK in line):
            self._serving = True
            self._ready.set()  # (its end sets it too: start() then reports the exit)

    @property
    def lines(self) -> list[str]:
        """The server's output so far (its local workers' too)."""
        return self.output.lines

    def log_text(self) -> str:
        return self.output.text()

    def wait_for_log(self, text: str, timeout: float = 30, start: int = 0) -> str:
        """Block until a server/worker log line containing ``text`` appears."""
        return self.output.wait_for(text, timeout, start)

    def stop(self, kill: bool = False, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        for pid in tagged_pids(self.tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------------ API
    def api(self, token: str | None = None) -> HttpApi:
        return HttpApi(self.url, token or self.token)

    def client(self) -> Any:
        from jupyter_orch.client import Client

        return Client(self.url, self.token)

    def ws(self, path: str, token: str | None = None) -> websocket.WebSocket:
        api = self.api(token)
        return websocket.create_connection(
            api.ws_url(path),
            header=[f"{k}: {v}" for k, v in api.headers().items()],
            timeout=60,
            suppress_origin=True,  # scripts and workers send no Origin (browsers do)
        )

    def events(self, types: str = "task,worker") -> EventStream:
        """An events subscription that starts now: ``with server.events() as ev: act(); ev.wait(...)``."""
        return EventStream(self.ws(f"/events?types={types}"))

    def wait_events(
        self,
        predicate: Callable[[dict[str, Any], dict[str, dict[str, Any]]], bool],
        timeout: float = 60,
        types: str = "task,worker",
    ) -> dict[str, dict[str, Any]]:
        """Follow the events stream until ``predicate(event, workers)`` holds; returns the
        workers as last seen (id -> worker)."""
        ws = self.ws(f"/events?types={types}")
        ws.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            hello = json.loads(ws.recv())
            workers = {w["id"]: w for w in hello["workers"]}
            if predicate(hello, workers):
                return workers
            while time.monotonic() < deadline:
                event = json.loads(ws.recv())
                if event["type"] == "worker":
                    workers[event["worker"]["id"]] = event["worker"]
                if predicate(event, workers):
                    return workers
        finally:
            ws.close()
        raise TimeoutError("the awaited event did not come")

    def wait_task(self, task_id: str, *states: str, timeout: float = 60) -> None:
        """Block until the task is in one of ``states`` (subscribes before it looks, so a
        change between the two cannot be missed)."""
        ws = self.ws("/events?types=task")
        ws.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            json.loads(ws.recv())  # hello: subscribed from here on
            if self.api().get(f"/tasks/{task_id}")["state"] in states:
                return
            while time.monotonic() < deadline:
                event = json.loads(ws.recv())
                if (
                    event["type"] == "task"
                    and event["task"]["id"] == task_id
                    and event["task"]["state"] in states
                ):
                    return
        finally:
            ws.close()
        raise TimeoutError(f"task {task_id} did not reach {states}")

    def wait_log(self, task_id: str, text: str, timeout: float = 60) -> None:
        """Block until the task's log has a line containing ``text`` (followed live)."""
        ws = self.ws(f"/tasks/{task_id}/logs/follow")
        ws.settimeout(timeout)
        try:
            while True:
                msg = json.loads(ws.recv())
                if msg["type"] == "lines" and any(text in line["text"] for line in msg["lines"]):
                    return
                if msg["type"] == "end":
                    raise AssertionError(f"task {task_id} ended without printing {text!r}")
                if msg["type"] == "error":
                    raise AssertionError(f"cannot follow task {task_id}: {msg['message']}")
        finally:
            ws.close()

    def wait_workers(self, n: int | None = None, timeout: float = 60) -> dict[str, dict[str, Any]]:
        n = self.workers if n is None else n

        def enough(_: dict[str, Any], workers: dict[str, dict[str, Any]]) -> bool:
            return sum(1 for w in workers.values() if w["state"] == "connected") >= n

        return self.wait_events(enough, timeout)

    def local_worker_pids(self) -> dict[str, int]:
        entries = json.loads((self.data_dir / "local-workers.json").read_text())
        return {e["worker_id"]: e["pid"] for e in entries}

    def start_worker(self, token: str, *args: str, url: str | None = None) -> WorkerProcess:
        """``jupyter orch worker`` started by hand (the static provider's way) with ``token``,
        connecting to ``url`` (default: this server, e.g. a proxy's URL instead), tagged so
        the teardown ends it; its output is kept (:meth:`WorkerProcess.wait_for_log`)."""
        env = dict(os.environ, JUPYTER_ORCH_TOKEN=token, ORCH_TEST_TAG=self.tag, PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_ORCH_URL", None)
        cmd = [sys.executable, "-m", "jupyter_orch.worker", "--server", url or self.url, *args]
        return WorkerProcess(cmd, env, cwd=self.root)


class WorkerProcess:
    """A worker process started by a test, its output read as it comes (so a chatty
    worker never blocks on a full pipe) and kept for :meth:`wait_for_log`."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
        )
        self.pid = self.proc.pid
        self.output = Output("worker")
        assert self.proc.stdout is not None
        self.output.follow(self.proc.stdout)

    @property
    def lines(self) -> list[str]:
        return self.output.lines

    def log_text(self) -> str:
        return self.output.text()

    def wait_for_log(self, text: str, timeout: float = 30, start: int = 0) -> str:
        """Block until an output line (from index ``start`` on) contains ``text``."""
        return self.output.wait_for(text, timeout, start)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (graceful: running tasks finish), SIGKILL if it is still there after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


class EventStream:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        hello = json.loads(ws.recv())
        self.workers = {w["id"]: w for w in hello["workers"]}

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ws.close()

    def wait(
        self, predicate: Callable[[dict[str, Any], dict[str, dict[str, Any]]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """The first event (from now) ``predicate(event, workers)`` holds for."""
        self.ws.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = json.loads(self.ws.recv())
            if event["type"] == "worker":
                self.workers[event["worker"]["id"]] = event["worker"]
            if predicate(event, self.workers):
                return dict(event)
        raise TimeoutError("the awaited event did not come")

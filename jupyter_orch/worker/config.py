"""``WorkerConfig``: what a worker offers and how it behaves."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

__all__ = ["WorkerConfig"]


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
    # SIGTERM: "drain" (finish running tasks, then exit) or "preempt" (a pod eviction or a
    # spot node's notice: ask the tasks to checkpoint and stop within preempt_grace seconds;
    # the server queues them again elsewhere)
    on_sigterm: str = "drain"
    preempt_grace: float = 20.0

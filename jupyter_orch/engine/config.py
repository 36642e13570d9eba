"""The engine's settings (the server fills them from its traitlets configuration)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.fairshare import Shares
from ..core.scheduler import Placement


@dataclass
class EngineConfig:
    policy: str | Placement = "binpack"  # a name of core.scheduler.PLACEMENTS, or an instance
    max_payload_bytes: int = 512 * 2**20
    worker_grace: float = 60.0  # seconds a lost worker has to come back
    heartbeat_interval: float = 5.0
    cancel_grace: float = 5.0
    result_cache_bytes: int = 256 * 2**20
    finished_cache: int = 5_000  # finished task rows kept in memory for fast reads
    worker_idle_timeout: float = 600.0  # the provider hears of workers idle this long
    prefetch: int = 2  # short GPU-less tasks sent ahead per slot (0: never)
    inline_blob_limit: int = 64 * 2**10  # payloads/results up to this size live in the database
    file_handoff_min: int = 2**20  # local workers read payloads this large from the blob file
    prefetch_below: float = 0.1  # "short": a worker's average task run time under this (s)
    prefetch_quick: int = 16  # sent ahead per slot while its tasks average under ...
    prefetch_quick_below: float = 0.01  # ... this (s): reports and assigns then go in batches
    server_version: str = ""
    task_token_secret: bytes = b""  # signs the tokens tasks get (empty: tasks get none)
    # where tasks keep checkpoints ($JUPYTER_ORCH_CHECKPOINTS = <root>/<task id>; "": none given)
    checkpoint_root: str = ""
    # evict preemptible tasks for waiting ones of higher priority; their time to stop (s)
    preemption: bool = False
    preemption_grace: float = 30.0
    # quotas and fair share across users (None: one user's server, owners take plain turns)
    shares: Shares | None = None

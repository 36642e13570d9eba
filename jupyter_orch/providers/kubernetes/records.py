"""What the provider keeps of each worker pod, and its limits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from . import failures
from .podspec import OWNER_ANNOTATION, TASKS_ANNOTATION, TOKEN_ANNOTATION, WORKER_CONTAINER, PodShape
from .pulls import PullTries


@dataclass
class Limits:
    max_pods: int = 0  # 0: no limit
    max_gpus_per_user: int = 0
    default_image: str = ""
    default_memory: int = 4 << 30
    unschedulable_timeout: float = 600.0
    connect_timeout: float = 300.0
    adopt_grace: float = 60.0
    idle_timeout: float = 600.0
    log_lines: int = 20
    retry_delay: float = 10.0
    image_pull_attempts: int = 3
    image_pull_timeout: float = 300.0


@dataclass
class PodRecord:
    name: str
    owner: str
    shape: PodShape
    task_ids: tuple[str, ...]
    token_id: str = ""
    verdict: failures.Verdict | None = None
    created_at: float = field(default_factory=time.time)
    connected: bool = False  # its worker was seen registered
    deleting: bool = False
    adopted: bool = False
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    pulls: PullTries = field(default_factory=PullTries)  # failed image pulls the kubelet retries

    def cancel(self, which: str | None = None) -> None:
        for key in [which] if which else list(self.timers):
            timer = self.timers.pop(key, None) if key else None
            if timer is not None:
                timer.cancel()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "image": self.shape.image,
            "gpus": self.shape.gpus,
            "gpu_type": self.shape.gpu_type,
            "state": "deleting" if self.deleting else (self.verdict.kind if self.verdict else "creating"),
            "status": self.verdict.sentence if self.verdict else "being created",
            "tasks": list(self.task_ids),
            "connected": self.connected,
        }


def record_from(pod: dict[str, Any], gpu_resource: str) -> PodRecord:
    """A record for a pod found in the cluster (left by an earlier run of this server)."""
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    worker = failures.container_spec(pod, WORKER_CONTAINER)
    requests = (worker.get("resources") or {}).get("requests") or {}
    shape = PodShape(
        image=str(worker.get("image") or ""),
        cpus=0.0,
        memory=0,
        gpus=int(requests.get(gpu_resource) or 0),
    )
    tasks = tuple(t for t in str(ann.get(TASKS_ANNOTATION) or "").split(",") if t)
    return PodRecord(
        meta.get("name", ""),
        str(ann.get(OWNER_ANNOTATION) or ""),
        shape,
        tasks,
        token_id=str(ann.get(TOKEN_ANNOTATION) or ""),
        adopted=True,
    )

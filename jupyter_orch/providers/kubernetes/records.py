"""What the provider keeps of each worker pod (one :class:`PodRecord` each, all of them in a
:class:`PodBook` shared by the pods' lifecycle and their scaling), and its limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...core.queue import PendingTask
from ..base import ProviderContext
from . import failures
from .podspec import (
    GROUP_ANNOTATION,
    OWNER_ANNOTATION,
    TASKS_ANNOTATION,
    TOKEN_ANNOTATION,
    WORKER_CONTAINER,
    PodShape,
)
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
    group: str = ""  # the group whose profile it was made with

    def cancel(self, which: str | None = None) -> None:
        for key in [which] if which else list(self.timers):
            timer = self.timers.pop(key, None) if key else None
            if timer is not None:
                timer.cancel()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "group": self.group or None,
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
        group=str(ann.get(GROUP_ANNOTATION) or ""),
    )


class PodBook:
    """Our pods by name, which pod serves which task, and what the engine is told of them
    (through the provider context's hooks)."""

    def __init__(self, context: ProviderContext) -> None:
        self.ctx = context
        self.records: dict[str, PodRecord] = {}
        self.task_pod: dict[str, str] = {}

    def forget(self, rec: PodRecord) -> None:
        rec.cancel()
        self.records.pop(rec.name, None)
        for task_id in rec.task_ids:
            if self.task_pod.get(task_id) == rec.name:
                del self.task_pod[task_id]

    def reason(self, task_ids: Iterable[str], reason: str | None) -> None:
        if self.ctx.set_pending_reason is not None:
            self.ctx.set_pending_reason(list(task_ids), reason)

    def fail(self, task_ids: Iterable[str], kind: str, error: str) -> list[str]:
        if self.ctx.fail_pending is None:
            return []
        return self.ctx.fail_pending(list(task_ids), kind, error)

    def status(self, rec: PodRecord) -> dict[str, Any] | None:
        """The pod's worker as the engine sees it (None: not connected); a status seen once
        marks the pod as connected."""
        status = self.ctx.worker_status(rec.name) if self.ctx.worker_status is not None else None
        if status is not None:
            rec.connected = True
        return status

    def still_pending(self, task_ids: Iterable[str]) -> list[PendingTask]:
        if self.ctx.pending_tasks is None:
            return []
        return self.ctx.pending_tasks(list(task_ids))

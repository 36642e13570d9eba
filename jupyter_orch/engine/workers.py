"""The engine's view of connected workers: what each offers, what it runs, how to reach it.

A :class:`WorkerLink` is the narrow seam to the transport (the server's WebSocket handler
implements it), so the engine never touches tornado.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.resources import Gpu, Resources, parse_labels
from ..core.scheduler import WorkerCapacity


class WorkerLink(Protocol):
    def send(self, frame: str | bytes, *, lazy: bool = False) -> None:
        """Send a frame; a ``lazy`` one may wait briefly to leave with the next frame."""

    def flush_frames(self) -> None:
        """Send what is queued now (not at the end of the loop turn)."""

    def close(self, reason: str) -> None: ...


@dataclass
class Running:
    """A task attempt holding a worker's slot."""

    task_id: str
    attempt: int
    resources: Resources
    gpus: tuple[int, ...]
    queued: bool = False  # sent ahead; waits on the worker for a slot
    since: float = field(default_factory=time.monotonic)  # when it was sent, or started
    releasing: bool = False  # asked back (another worker is free); the worker has not answered


@dataclass
class WorkerHandle:
    id: str
    name: str
    provider: str
    token_id: str | None
    link: WorkerLink | None
    info: dict[str, Any] = field(default_factory=dict)
    state: str = "connected"  # connected | disconnected | draining | gone
    connected_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    disconnected_at: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)  # task id -> slot use, in assignment order
    run_time: float | None = None  # moving average of its tasks' run times (seconds)
    idle_since: float | None = field(default_factory=time.time)  # None while it holds tasks
    released: bool = False  # the provider was told it is idle (once per idle spell)
    # the user whose own worker this is (registered with their personal token): it runs only
    # their tasks. None: a shared worker (the service's: a provider's, unless issued for a user or group)
    owner: str | None = None
    group: str | None = None  # registered for a group: it runs its members' tasks

    def observe(self, seconds: float) -> None:
        self.run_time = seconds if self.run_time is None else 0.8 * self.run_time + 0.2 * seconds

    @property
    def slots(self) -> int:
        return max(1, int(self.info.get("slots") or 1))

    @property
    def cpus(self) -> float:
        return float(self.info.get("cpus") or 1)

    @property
    def memory(self) -> int:
        return int(self.info.get("memory") or 0)

    def _parsed(self) -> tuple[tuple[Gpu, ...], dict[str, str]]:
        """GPUs and labels from the hello, parsed once per hello (the scheduler asks often)."""
        cached = self.__dict__.get("_parsed_cache")
        if cached is not None and cached[0] is self.info:
            return cached[1], cached[2]
        gpus = tuple(Gpu.from_dict(g) for g in self.info.get("gpus") or ())
        try:
            labels = parse_labels(self.info.get("labels") or {}, "labels")
        except Exception:  # a worker's bad labels match nothing
            labels = {}
        self.__dict__["_parsed_cache"] = (self.info, gpus, labels)
        return gpus, labels

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        return self._parsed()[0]

    @property
    def labels(self) -> dict[str, str]:
        return self._parsed()[1]

    def capacity(
        self, prefetch: int = 0, prefetch_below: float = 0.0, quick: int = 0, quick_below: float = 0.0
    ) -> WorkerCapacity:
        """What it offers now. ``prefetch`` tasks per slot may be sent ahead while its
        tasks have been short (run time under ``prefetch_below`` seconds), ``quick`` per slot
        while they have been quicker still (under ``quick_below``)."""
        active = [r for r in self.running.values() if not r.queued]
        queued = len(self.running) - len(active)
        used_cpus = sum(r.resources.cpus for r in active)
        used_mem = sum(r.resources.memory for r in active)
        used_gpus = {g for r in active for g in r.gpus}
        gpus = self.gpus
        run_time = self.run_time
        short = run_time is not None and run_time < prefetch_below
        if short and active and len(active) >= self.slots:
            # every slot busy for longer than "short": whatever is sent ahead would wait
            short = time.monotonic() - max(r.since for r in active) < prefetch_below
        depth = quick if run_time is not None and run_time < quick_below and quick > prefetch else prefetch
        return WorkerCapacity(
            id=self.id,
            slots_total=self.slots,
            slots_free=self.slots - len(active),
            cpus_total=self.cpus,
            cpus_free=self.cpus - used_cpus,
            memory_total=self.memory,
            memory_free=self.memory - used_mem,
            gpus=gpus,
            gpus_free=frozenset(g.index for g in gpus) - used_gpus,
            labels=self.labels,
            image=self.info.get("image"),
            any_image=False,
            accepting=self.state == "connected" and self.link is not None,
            queue_free=max(0, depth * self.slots - queued) if short else 0,
            owner=self.owner,
            group=self.group,
        )

    def take(self, row: Any, queued: bool = False) -> None:
        self.running[row.id] = Running(row.id, row.attempt, row.spec.resources, tuple(row.gpus), queued)
        self.idle_since = None
        self.released = False

    def started(self, task_id: str) -> None:
        slot = self.running.get(task_id)
        if slot is not None:
            if slot.queued:
                slot.since = time.monotonic()
            slot.queued = slot.releasing = False

    def release(self, task_id: str) -> None:
        slot = self.running.pop(task_id, None)
        if not self.running:
            self.idle_since = time.time()
        if slot is not None and not slot.queued:
            # the worker starts its oldest queued task in the freed slot: mirror that
            for other in self.running.values():
                if other.queued and not other.releasing:
                    other.queued = False
                    other.since = time.monotonic()
                    break

    def send(self, frame: str | bytes, *, lazy: bool = False) -> bool:
        if self.link is None:
            return False
        self.link.send(frame, lazy=lazy)
        return True

    def to_dict(self) -> dict[str, Any]:
        gpu_metrics = {g.get("index"): g for g in self.metrics.get("gpus") or ()}
        holders = {g: r.task_id for r in self.running.values() for g in r.gpus}
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "owner": self.owner,
            "group": self.group,
            "state": self.state,
            "hostname": self.info.get("hostname", ""),
            "labels": self.labels,
            "image": self.info.get("image"),
            "version": self.info.get("version"),
            "python": self.info.get("python"),
            "slots": self.slots,
            "slots_used": len(self.running),
            "cpus": self.cpus,
            "memory": self.memory,
            "gpus": [
                {
                    **g.to_dict(),
                    **{k: v for k, v in gpu_metrics.get(g.index, {}).items() if k != "index"},
                    "task_id": holders.get(g.index),
                }
                for g in self.gpus
            ],
            "running": sorted(self.running),
            "metrics": {k: v for k, v in self.metrics.items() if k != "gpus"},
            "connected_at": self.connected_at,
            "last_seen": self.last_seen,
            "disconnected_at": self.disconnected_at,
        }

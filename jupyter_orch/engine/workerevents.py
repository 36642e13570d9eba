"""How a worker's changes are stored and shown: its row journaled, and its view published
on the event bus (the sidebar's GPU slots), at most one slot-change event per worker per
``WORKER_EVENT_GAP`` with the last change never left out."""

from __future__ import annotations

import asyncio
import time

from ..core.records import UpsertWorker, WorkerRow
from .events import EventBus
from .journal import Journal
from .workers import WorkerHandle

WORKER_EVENT_GAP = 0.25  # seconds between worker events for slot changes (per worker)


class WorkerEvents:
    def __init__(self, journal: Journal, bus: EventBus) -> None:
        self.journal = journal
        self.bus = bus
        self._last: dict[str, float] = {}  # worker id -> when its last event was published
        self._due: dict[str, asyncio.TimerHandle] = {}  # trailing events of a burst

    def persist(self, w: WorkerHandle) -> None:
        self.journal.add(
            UpsertWorker(
                WorkerRow(
                    w.id,
                    w.name,
                    w.provider,
                    w.token_id,
                    w.info.get("hostname", ""),
                    w.state,
                    dict(w.info),
                    w.connected_at,
                    w.last_seen,
                )
            )
        )

    def publish(self, w: WorkerHandle) -> None:
        self._last[w.id] = time.monotonic()
        self._due.pop(w.id, None)
        self.bus.publish({"type": "worker", "worker": w.to_dict()})

    def changed(self, w: WorkerHandle) -> None:
        """The worker's state changed: stored and shown."""
        self.persist(w)
        self.publish(w)

    def since_last(self, worker_id: str) -> float:
        """Seconds since the worker's last event (large when it had none)."""
        return time.monotonic() - self._last.get(worker_id, 0.0)

    def slots_changed(self, w: WorkerHandle) -> None:
        """A task started or ended there: watchers (the sidebar) see which task holds which
        slot. At most one event per worker per WORKER_EVENT_GAP; the last change is never
        left out (a trailing event follows a burst)."""
        if not self.bus.subscriber_count or w.id in self._due:
            return
        wait = WORKER_EVENT_GAP - self.since_last(w.id)
        if wait <= 0:
            self.publish(w)
        else:
            self._due[w.id] = asyncio.get_running_loop().call_later(wait, self.publish, w)

    def stop(self) -> None:
        for timer in self._due.values():
            timer.cancel()
        self._due.clear()

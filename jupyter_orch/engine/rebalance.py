"""Taking back tasks sent ahead (prefetch) that wait on a busy worker while another
worker has a free slot and nothing to run: without it, quick tasks queued behind a long
one wait for it to end. A worker whose every slot has been busy for longer than the
prefetch horizon (``prefetch_below``) is asked to ``release`` its queued tasks, newest
first, as many as other workers have free slots; it answers ``not_started`` for those it
had not started, and they are placed again (no retry used)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from ..core import protocol
from .config import EngineConfig
from .workers import WorkerHandle


class Rebalancer:
    """Asks busy workers to release tasks they hold queued, for others' free slots."""

    def __init__(self, workers: Mapping[str, WorkerHandle], config: EngineConfig) -> None:
        self.workers = workers
        self.config = config
        self._timer: asyncio.TimerHandle | None = None  # a check again, once a horizon passes

    def check(self) -> None:
        """Release tasks queued on busy workers if other workers have free slots now."""
        connected = [w for w in self.workers.values() if w.state == "connected" and w.link is not None]
        free = sum(
            max(0, w.slots - sum(not r.queued for r in w.running.values()))
            for w in connected
            if not any(r.queued for r in w.running.values())
        )
        if free <= 0:
            return
        now = time.monotonic()
        horizon = self.config.prefetch_below
        recheck: float | None = None
        for worker in connected:
            waiting = [r for r in worker.running.values() if r.queued and not r.releasing]
            active = [r for r in worker.running.values() if not r.queued]
            if not waiting or len(active) < worker.slots:
                continue  # nothing waits there, or a slot is free there: its queue moves
            busy_since = max(r.since for r in active)  # every slot busy since then
            if now - busy_since < horizon:
                recheck = min(recheck or busy_since + horizon, busy_since + horizon)
                continue
            for slot in reversed(waiting[-free:]):  # the newest wait longest: take those
                slot.releasing = True
                worker.send(
                    protocol.encode({"type": "release", "task_id": slot.task_id, "attempt": slot.attempt})
                )
                free -= 1
            if worker.link is not None:
                worker.link.flush_frames()
            if free <= 0:
                return
        if recheck is not None and self._timer is None:
            delay = max(0.0, recheck - now) + 0.001

            def again() -> None:
                self._timer = None
                self.check()

            self._timer = asyncio.get_running_loop().call_later(delay, again)

"""Taking back tasks sent ahead (prefetch) that wait on a busy worker while another
worker has a free slot and nothing to run: without it, quick tasks queued behind a long
one wait for it to end. A worker whose every slot has been busy for longer than the
prefetch horizon (``prefetch_below``) is asked to ``release`` its queued tasks, newest
first, as many as other workers have free slots; it answers ``not_started`` for those it
had not started, and they are placed again (no retry used)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..core import protocol

if TYPE_CHECKING:
    from .engine import Engine


class Rebalance:
    _rebalance_timer: asyncio.TimerHandle | None = None

    def _rebalance(self: Engine) -> None:
        connected = [w for w in self.state.workers.values() if w.state == "connected" and w.link is not None]
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
        if recheck is not None and self._rebalance_timer is None:
            delay = max(0.0, recheck - now) + 0.001

            def again() -> None:
                self._rebalance_timer = None
                self._rebalance()

            self._rebalance_timer = asyncio.get_running_loop().call_later(delay, again)

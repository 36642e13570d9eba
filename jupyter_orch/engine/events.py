"""The in-process event bus: every task, worker and log change, fanned out to subscribers.

Subscribers are bounded queues; a subscriber that falls too far behind is told so and
dropped rather than slowing the engine (its WebSocket re-subscribes and re-reads state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jupyter_orch.engine")

Event = dict[str, Any]


class Subscription:
    def __init__(self, bus: EventBus, predicate: Callable[[Event], bool] | None, maxsize: int) -> None:
        self._bus = bus
        self.predicate = predicate
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.predicate is not None and not self.predicate(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._bus.unsubscribe(self)
            self.queue.get_nowait()
            self.queue.put_nowait(None)  # tells the reader it was dropped

    async def get(self) -> Event | None:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.seq = 0

    def subscribe(
        self, predicate: Callable[[Event], bool] | None = None, maxsize: int = 10_000
    ) -> Subscription:
        sub = Subscription(self, predicate, maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: Event) -> None:
        self.seq += 1
        event["seq"] = self.seq
        for sub in list(self._subs):
            sub.offer(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

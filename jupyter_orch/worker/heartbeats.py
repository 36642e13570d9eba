"""Heartbeats: this machine's metrics sent to the server every interval, and at once
after a welcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .aio import wait_event
from .connection import Connection
from .gpus import Gpus
from .hostmetrics import HostMetrics

log = logging.getLogger("jupyter_orch.worker")

__all__ = ["Heartbeats"]


class Heartbeats:
    """Sends a ``heartbeat`` with the host's and GPUs' metrics on ``connection`` every
    ``interval`` seconds while connected; :meth:`now` makes the next one leave at once."""

    def __init__(self, connection: Connection, gpus: Gpus, host: HostMetrics, interval: float) -> None:
        self.connection = connection
        self.gpus = gpus
        self.host = host
        self.interval = interval
        self._beat_now = asyncio.Event()

    def now(self) -> None:
        self._beat_now.set()

    def metrics(self) -> dict[str, Any]:
        metrics = self.host.sample()
        metrics["gpus"] = self.gpus.metrics()
        return metrics

    async def run(self) -> None:
        while True:
            # a welcome (new interval, fresh connection) beats at once
            await wait_event(self._beat_now, self.interval)
            self._beat_now.clear()
            if not self.connection.connected:
                continue
            try:
                metrics = await asyncio.to_thread(self.metrics)
            except Exception as exc:
                log.warning("could not read this machine's metrics: %s", exc)
                metrics = {}
            self.connection.send({"type": "heartbeat", "metrics": metrics})

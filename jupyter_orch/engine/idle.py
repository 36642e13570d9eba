"""Workers idle too long: the provider hears of those idle past ``worker_idle_timeout``
and may release them (a Kubernetes pod is deleted; local and static workers stay)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from .config import EngineConfig
from .ports import Provider
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


class IdleWatch:
    def __init__(
        self, workers: Mapping[str, WorkerHandle], provider: Provider | None, config: EngineConfig
    ) -> None:
        self.workers = workers
        self.provider = provider
        self.config = config
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        timeout = self.config.worker_idle_timeout
        while True:
            await asyncio.sleep(min(5.0, max(timeout / 4, 0.05)))
            now = time.time()
            idle = [
                w
                for w in self.workers.values()
                if w.state == "connected"
                and not w.released
                and w.idle_since is not None
                and now - w.idle_since >= timeout
            ]
            if idle and self.provider is not None:
                for w in idle:
                    w.released = True
                try:
                    await self.provider.release_idle([w.id for w in idle])
                except Exception:  # a provider failure must not stop the engine
                    log.exception("the provider failed to release idle workers")

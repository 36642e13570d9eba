"""The orphan watchdog of a worker a server started (``--orphan-timeout``).

A local worker outlives a server that crashed, so that the server, restarted, adopts it
with its running tasks. If no server comes back, the worker must not linger: once it has
been without a server connection for ``timeout`` seconds *and* the process that started
it is gone (its parent changed: the server died), it stops itself, killing its tasks.

While the parent lives, nothing happens however long the server is unreachable (a
stopped or busy server is not a dead one). The local provider names itself the parent
(``--parent-pid``), so a server that died before its worker got this far counts too.
Workers started by hand get no watchdog and retry for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("jupyter_orch.worker")


class OrphanWatchdog:
    def __init__(
        self,
        timeout: float,
        connected: Callable[[], bool],
        stop: Callable[[str], None],
        parent_pid: int | None = None,
    ) -> None:
        self.timeout = timeout
        self.connected = connected
        self.stop = stop
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid
        self.tick = min(1.0, max(0.05, timeout / 10))
        self._since: float | None = None  # when it last became an orphan without a server

    @property
    def parent_gone(self) -> bool:
        return os.getppid() != self.parent_pid

    def check(self, now: float | None = None) -> bool:
        """One look; True when the worker was told to stop."""
        now = time.monotonic() if now is None else now
        if self.connected() or not self.parent_gone:
            self._since = None
            return False
        if self._since is None:
            self._since = now
            log.warning(
                "the process that started this worker (pid %d) is gone and no server is connected; "
                "stopping in %g s unless a server comes back",
                self.parent_pid,
                self.timeout,
            )
            return False
        if now - self._since < self.timeout:
            return False
        self.stop(
            f"no server came back within {self.timeout:g} s after the one that started this worker "
            f"(pid {self.parent_pid}) went away (--orphan-timeout)"
        )
        return True

    async def run(self) -> None:
        while not self.check():
            await asyncio.sleep(self.tick)

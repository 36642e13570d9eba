"""Group commit: every change the engine makes goes through the journal, which writes
blobs and applies all queued changes in one database transaction on a dedicated thread.

``await journal.flush()`` returns once everything added before the call is durable, so
5,000 concurrent submits cost a handful of commits, not 5,000.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from ..core.records import Change

log = logging.getLogger("jupyter_orch.engine")
T = TypeVar("T")


class ChangeSink(Protocol):
    def apply(self, changes: Sequence[Change]) -> None: ...

    def checkpoint(self) -> None: ...


class BlobSink(Protocol):
    def put(self, key: str, data: bytes) -> int: ...


class Journal:
    """``inline_max``: a batch of at most this many changes (and no blob files) is written on
    the event loop itself, for a store whose commits are local and quick (SQLite), unless
    commits come back to back: a thread hop each way costs more than such a commit. ``checkpoint_every``: commits between two
    calls of ``store.checkpoint()`` on the database thread (SQLite's WAL is folded into the
    database there, never on the loop)."""

    def __init__(
        self,
        store: ChangeSink,
        blobs: BlobSink,
        *,
        inline_max: int = 0,
        checkpoint_every: int = 500,
        busy: Callable[[], bool] | None = None,
        busy_interval: float = 0.002,
    ) -> None:
        self._store = store
        self.busy = busy
        self.busy_interval = busy_interval
        self.inline_max = inline_max
        self.inline_gap = 0.0005  # seconds since the last commit for the next to go inline
        self._last_commit = 0.0
        self.checkpoint_every = checkpoint_every
        self._blobs = blobs
        self._changes: list[Change] = []
        self._blob_writes: list[tuple[str, bytes]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orch-db")
        self.commits = 0
        self.failed: BaseException | None = None
        self.lazy_delay = 0.2
        self._lazy_timer: asyncio.TimerHandle | None = None

    def add(self, change: Change, *, lazy: bool = False) -> None:
        """Queue a change for the next commit. A ``lazy`` change does not start a commit
        itself: it joins the next one, at most ``lazy_delay`` seconds later. For changes
        whose loss in a crash is repaired anyway (a task's "running" state comes back with
        the worker's hello), so a quick task costs one commit fewer."""
        self._changes.append(change)
        if not lazy:
            self._schedule()
        elif self._flushing is None and self._lazy_timer is None:
            self._lazy_timer = asyncio.get_running_loop().call_later(self.lazy_delay, self._lazy_due)

    def _lazy_due(self) -> None:
        self._lazy_timer = None
        if self._changes:
            self._schedule()

    def put_blob(self, key: str, data: bytes) -> None:
        self._blob_writes.append((key, data))
        self._schedule()

    def _schedule(self) -> None:
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_loop())

    def _pause(self) -> float:
        """How long to gather changes before the next commit: nothing when idle; under a
        backlog (``busy()``), until ``busy_interval`` after the last commit, so a burst of
        thousands of tasks costs hundreds of commits, not thousands."""
        if self.busy is None or not self.busy():
            return 0
        return max(0.0, self.busy_interval - (time.monotonic() - self._last_commit))

    def _quiet(self) -> bool:
        """No commit just before this one: a lone commit is quickest on the loop, while
        back-to-back ones (a burst) gather more changes each behind a commit on the thread."""
        return time.monotonic() - self._last_commit >= self.inline_gap

    async def flush(self) -> None:
        """Wait until everything added so far is committed (raise if the commit failed)."""
        if not self._changes and not self._blob_writes and self._flushing is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._schedule()
        await fut

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._changes or self._blob_writes or self._waiters:
                await asyncio.sleep(self._pause())  # let concurrent changes join this batch
                changes, self._changes = self._changes, []
                blobs, self._blob_writes = self._blob_writes, []
                waiters, self._waiters = self._waiters, []
                try:
                    if not blobs and len(changes) <= self.inline_max and self._quiet():
                        self._write(changes, blobs)
                    else:
                        await loop.run_in_executor(self.thread, self._write, changes, blobs)
                    self._last_commit = time.monotonic()
                except BaseException as exc:
                    log.exception("could not commit %d changes", len(changes))
                    self.failed = exc
                    for w in waiters:
                        if not w.done():
                            w.set_exception(exc)
                    continue
                self.commits += 1
                if self.checkpoint_every and self.commits % self.checkpoint_every == 0:
                    loop.run_in_executor(self.thread, self._checkpoint)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._flushing = None
            if self._changes or self._blob_writes or self._waiters:
                self._schedule()

    def _write(self, changes: list[Change], blobs: list[tuple[str, bytes]]) -> None:
        for key, data in blobs:
            self._blobs.put(key, data)
        if changes:
            self._store.apply(changes)

    def _checkpoint(self) -> None:
        try:
            self._store.checkpoint()
        except Exception:
            log.warning("database checkpoint failed", exc_info=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read on the database thread (after the writes queued before it)."""
        return await asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)

    async def close(self) -> None:
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        await self.flush()
        self.thread.shutdown(wait=True)

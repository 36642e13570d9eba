"""Group commit: every change the engine makes goes through the journal, which writes
blobs and applies all queued changes in one database transaction.

``await journal.flush()`` returns once everything added before the call is durable, and
``journal.after_commit(fn)`` calls ``fn`` then, so 5,000 concurrent submits cost a handful
of commits, not 5,000. The journal is driven by loop callbacks, not a task per commit.

Where a batch is written: on the database thread by default; on the event loop itself when
the store's commits are local and quick (SQLite), the batch small and no commit came just
before it (a thread hop each way costs more than such a commit). Under a backlog
(``busy()``) commits are paced ``busy_interval`` apart so each gathers more changes.
``store.checkpoint()`` runs on the database thread every ``checkpoint_every`` commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from ..core.records import Change

log = logging.getLogger("jupyter_orch.engine")
T = TypeVar("T")
Callback = Callable[[BaseException | None], None]


class ChangeSink(Protocol):
    def apply(self, changes: Sequence[Change]) -> None: ...

    def checkpoint(self) -> None: ...


class BlobSink(Protocol):
    def put(self, key: str, data: bytes) -> int: ...


class Journal:
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
        self._blobs = blobs
        self.inline_max = inline_max
        self.inline_gap = 0.0005  # seconds since the last commit for the next to go inline
        self.checkpoint_every = checkpoint_every
        self.busy = busy
        self.busy_interval = busy_interval
        self.lazy_delay = 0.2
        self._changes: list[Change] = []
        self._blob_writes: list[tuple[str, bytes]] = []
        self._callbacks: list[Callback] = []
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._defer = 0.0  # inside deferred(): how long new changes may wait
        self._writing = False  # a batch is on the database thread
        self._last_commit = 0.0
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orch-db")
        self.commits = 0
        self.failed: BaseException | None = None

    # ---------------------------------------------------------------- adding
    def add(self, change: Change, *, lazy: bool = False) -> None:
        """Queue a change for the next commit. A ``lazy`` change does not start a commit
        itself: it joins the next one, at most ``lazy_delay`` seconds later. For changes
        whose loss in a crash is repaired anyway (a task's "running" state comes back with
        the worker's hello), so a quick task costs one commit fewer."""
        self._changes.append(change)
        if not lazy:
            self._schedule()
        elif self._scheduled is None and not self._writing:
            self._scheduled = asyncio.get_running_loop().call_later(self.lazy_delay, self._run)

    def put_blob(self, key: str, data: bytes) -> None:
        self._blob_writes.append((key, data))
        self._schedule()

    def after_commit(self, callback: Callback, *, urgent: bool = False) -> None:
        """Call ``callback(None)`` once everything added so far is committed, or
        ``callback(exc)`` if that commit failed. ``urgent``: do not wait out a
        :meth:`deferred` window (someone waits on this commit)."""
        self._callbacks.append(callback)
        self._schedule(urgent=urgent)

    @contextlib.contextmanager
    def deferred(self, delay: float) -> Iterator[None]:
        """Changes made inside may wait up to ``delay`` seconds for their commit, or go
        with an earlier one. For outcomes already announced (the worker keeps its report
        until the ack after the commit): in a run of quick tasks one at a time, a task's
        outcome then shares the next task's commit instead of taking one of its own."""
        previous, self._defer = self._defer, max(self._defer, delay)
        try:
            yield
        finally:
            self._defer = previous

    async def flush(self) -> None:
        """Wait until everything added so far is committed (raise if the commit failed)."""
        if not self._changes and not self._blob_writes and not self._writing and not self._callbacks:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(exc: BaseException | None) -> None:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

        self.after_commit(done, urgent=True)
        await fut

    # ---------------------------------------------------------------- committing
    def _schedule(self, *, urgent: bool = False) -> None:
        if self._writing:
            return  # _written() schedules the next batch
        if self._scheduled is not None and not isinstance(self._scheduled, asyncio.TimerHandle):
            return  # due at the end of this loop turn already
        loop = asyncio.get_running_loop()
        pause = self._pause() if urgent else max(self._pause(), self._defer)
        scheduled = self._scheduled
        if scheduled is not None:
            if isinstance(scheduled, asyncio.TimerHandle) and scheduled.when() > loop.time() + pause:
                scheduled.cancel()  # a lazy timer: an eager change brings the commit forward
            else:
                return
        if pause > 0:
            self._scheduled = loop.call_later(pause, self._run)
        else:  # next loop turn: whatever else arrives in this one joins the batch
            self._scheduled = loop.call_soon(self._run)

    def _pause(self) -> float:
        """How long to gather changes before the next commit: nothing when idle; under a
        backlog, until ``busy_interval`` after the last commit."""
        if self.busy is None or not self.busy():
            return 0.0
        return max(0.0, self.busy_interval - (time.monotonic() - self._last_commit))

    def _run(self) -> None:
        self._scheduled = None
        if self._writing:
            return
        changes, self._changes = self._changes, []
        blobs, self._blob_writes = self._blob_writes, []
        callbacks, self._callbacks = self._callbacks, []
        if not changes and not blobs:
            _call(callbacks, None)
            return
        quiet = time.monotonic() - self._last_commit >= self.inline_gap
        if not blobs and len(changes) <= self.inline_max and quiet:
            try:
                self._write(changes, blobs)
            except BaseException as exc:
                self._committed(changes, callbacks, exc)
            else:
                self._committed(changes, callbacks, None)
            return
        self._writing = True
        fut = asyncio.get_running_loop().run_in_executor(self.thread, self._write, changes, blobs)
        fut.add_done_callback(lambda f: self._written(f, changes, callbacks))

    def _written(self, fut: asyncio.Future[None], changes: list[Change], callbacks: list[Callback]) -> None:
        self._writing = False
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        self._committed(changes, callbacks, exc)

    def _committed(self, changes: list[Change], callbacks: list[Callback], exc: BaseException | None) -> None:
        self._last_commit = time.monotonic()
        if exc is not None:
            log.error("could not commit %d changes", len(changes), exc_info=exc)
            self.failed = exc
        else:
            self.commits += 1
            if self.checkpoint_every and self.commits % self.checkpoint_every == 0:
                asyncio.get_running_loop().run_in_executor(self.thread, self._checkpoint)
        _call(callbacks, exc)
        if self._changes or self._blob_writes or self._callbacks:
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

    # ---------------------------------------------------------------- reads, shutdown
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read on the database thread (after the writes queued before it)."""
        return await asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)

    async def close(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        await self.flush()
        self.thread.shutdown(wait=True)


def _call(callbacks: list[Callback], exc: BaseException | None) -> None:
    for callback in callbacks:
        try:
            callback(exc)
        except Exception:
            log.exception("a commit callback failed")

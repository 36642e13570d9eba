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

When a batch fails, one change's bad data must not fail the others (:mod:`.isolation`):

- **The data** (the database refuses a value, a blob cannot be written): the batch is
  split by *unit* (a task with its attempts and blobs; a workflow run with its steps) and
  every unit that can be stored is; the units that cannot are *rejected*. The engine hears
  of them first (``on_rejected``: it rolls back what it holds in memory), then every waiter
  whose keys name a rejected unit gets its error, the others succeed.
- **The database is unavailable** (:class:`~jupyter_orch.core.errors.Unavailable`):
  waiters that asked for it (``abandon=True``: a submit, whose caller gets a 503) give up
  their units, which are rejected like bad data; every other change stays queued and is
  retried with back-off until the database is back, and waiters that must see their
  changes stored (``through_outage=True``: acks to workers, assignments) wait for that.
  Plain waiters (``flush()``) fail at once with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..core.errors import Unavailable
from ..core.protocol import Buffer
from ..core.records import Change
from .isolation import BlobSink, BlobWrite, Outcome, describe, unit_key, write_isolated

log = logging.getLogger("jupyter_orch.engine")
T = TypeVar("T")
Callback = Callable[[BaseException | None], None]
Rejected = Callable[[dict[str, BaseException]], None]


class ChangeSink(Protocol):
    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None: ...

    def checkpoint(self) -> None: ...


@dataclass
class _Waiter:
    callback: Callback
    keys: frozenset[str] | None = None  # the units it waits on (None: the whole batch)
    abandon: bool = False  # on an outage, give up its units and fail now
    through_outage: bool = False  # on an outage, wait until the retried commit succeeds


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
        on_rejected: Rejected | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self.inline_max = inline_max
        self.inline_gap = 0.0005  # seconds since the last commit for the next to go inline
        self.checkpoint_every = checkpoint_every
        self.busy = busy
        self.busy_interval = busy_interval
        self.on_rejected = on_rejected
        self.lazy_delay = 0.2
        self.retry_first = 0.05  # seconds before the first retry while the database is out
        self.retry_max = 2.0
        self._changes: list[Change] = []
        self._blob_writes: list[BlobWrite] = []
        self._waiters: list[_Waiter] = []
        self._units: dict[str, str] = {}  # key -> the unit it is stored with (bind())
        self._members: dict[str, set[str]] = {}  # unit -> its bound keys
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._defer = 0.0  # inside deferred(): how long new changes may wait
        self._writing = False  # a batch is on the database thread
        self._last_commit = 0.0
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orch-db")
        self.commits = 0
        self.batches = 0  # batches taken to be written; a change added now goes with batches + 1
        self.failed: BaseException | None = None  # the last failure (for the log and tests)
        self.outage: Unavailable | None = None  # set while the database is unavailable
        self._retry_delay = 0.0
        self._retry_at = 0.0

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

    def put_blob(self, key: str, data: Buffer, *, unit: str | None = None) -> None:
        """Write a blob before the next commit; if it cannot be written, ``unit`` (the task
        it belongs to) is rejected, not the batch."""
        self._blob_writes.append(BlobWrite(key, data, unit or key))
        self._schedule()

    def bind(self, unit: str, keys: Iterable[str]) -> None:
        """Store ``keys`` with ``unit``: all of them, or (rejected together) none. A workflow
        run and its steps are one unit until their first commit."""
        members = self._members.setdefault(unit, set())
        for key in keys:
            self._units[key] = unit
            members.add(key)

    def unbind(self, unit: str) -> None:
        for key in self._members.pop(unit, ()):
            self._units.pop(key, None)

    def after_commit(
        self,
        callback: Callback,
        *,
        urgent: bool = False,
        keys: Iterable[str] | None = None,
        abandon: bool = False,
        through_outage: bool = False,
    ) -> None:
        """Call ``callback(None)`` once everything added so far is committed, or
        ``callback(exc)`` if it cannot be. ``keys``: only the units named matter (another
        unit's rejection is not this caller's failure). ``abandon``: while the database is
        unavailable, give up these units (they are rejected) instead of waiting.
        ``through_outage``: while it is unavailable, wait for the retried commit.
        ``urgent``: do not wait out a :meth:`deferred` window (someone waits on this)."""
        frozen = None if keys is None else frozenset(self._units.get(k, k) for k in keys)
        self._waiters.append(_Waiter(callback, frozen, abandon, through_outage))
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
        """Wait until everything added so far is committed (raise if it cannot be now)."""
        if not self._changes and not self._blob_writes and not self._writing and not self._waiters:
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
        if self.outage is not None:  # the database is out: the next try waits its turn
            pause = max(pause, self._retry_at - loop.time())
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
        waiters, self._waiters = self._waiters, []
        # counted even when empty: whatever was added before now is written (or dropped)
        self.batches += 1
        if not changes and not blobs:
            self._resolve(waiters, Outcome())
            return
        quiet = time.monotonic() - self._last_commit >= self.inline_gap
        if not blobs and len(changes) <= self.inline_max and quiet and self.outage is None:
            try:  # on the loop: never wait for another process's lock (wait=False)
                self._store.apply(changes, wait=False)
            except Exception:  # sorted out on the database thread, where waiting is fine
                pass
            else:
                self._committed(changes, waiters, Outcome())
                return
        self._writing = True
        fut = asyncio.get_running_loop().run_in_executor(self.thread, self._write, changes, blobs)
        fut.add_done_callback(lambda f: self._written(f, changes, waiters))

    def _write(self, changes: list[Change], blobs: list[BlobWrite]) -> Outcome:
        return write_isolated(self._store, self._blobs, changes, blobs, self._units)

    def _written(self, fut: asyncio.Future[Outcome], changes: list[Change], waiters: list[_Waiter]) -> None:
        self._writing = False
        if fut.cancelled():
            outcome = Outcome(unavailable=Unavailable("the database thread was stopped"), leftover=changes)
        elif fut.exception() is not None:  # a bug in the isolation itself: fail them all
            exc = fut.exception()
            assert exc is not None
            log.error("could not commit %d changes", len(changes), exc_info=exc)
            outcome = Outcome(rejected={unit_key(c, self._units): exc for c in changes})
        else:
            outcome = fut.result()
        self._committed(changes, waiters, outcome)

    def _committed(self, changes: list[Change], waiters: list[_Waiter], outcome: Outcome) -> None:
        self._last_commit = time.monotonic()
        if outcome.unavailable is None:
            if self.outage is not None:
                log.warning("the database is available again; %d queued changes are stored", len(changes))
            self.outage = None
            self._retry_delay = 0.0
            self.commits += 1
            if self.checkpoint_every and self.commits % self.checkpoint_every == 0:
                asyncio.get_running_loop().run_in_executor(self.thread, self._checkpoint)
        else:
            self._outage(outcome, waiters)
        if outcome.rejected:
            self.failed = next(iter(outcome.rejected.values()))
            for unit, exc in outcome.rejected.items():
                log.error("could not store %s: %s", unit, describe(exc))
        self._resolve(waiters, outcome)
        if self._changes or self._blob_writes or self._waiters:
            self._schedule()

    def _outage(self, outcome: Outcome, waiters: list[_Waiter]) -> None:
        """The database is unavailable: give up what may be given up, keep the rest queued."""
        error = outcome.unavailable
        assert error is not None
        if self.outage is None:
            log.error("%s; retrying, and refusing new tasks meanwhile (503)", error.message)
        self.outage = error
        self.failed = error
        abandon = {u for w in waiters if w.abandon and w.keys for u in w.keys}
        for unit in abandon:
            outcome.rejected.setdefault(unit, error)
        keep = [c for c in outcome.leftover if unit_key(c, self._units) not in abandon]
        self._changes = keep + [c for c in self._changes if unit_key(c, self._units) not in abandon]
        self._retry_delay = min(self.retry_max, max(self.retry_first, self._retry_delay * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._retry_delay

    def _resolve(self, waiters: list[_Waiter], outcome: Outcome) -> None:
        """Tell the engine what was rejected, then each waiter its own outcome."""
        rejected = self._expand(outcome.rejected)
        if rejected:
            dropped = set(rejected)  # queued changes of rejected units go too
            self._changes = [c for c in self._changes if unit_key(c, self._units) not in dropped]
            for unit in outcome.rejected:
                self.unbind(unit)
            if self.on_rejected is not None:
                try:
                    self.on_rejected(rejected)
                except Exception:
                    log.exception("rolling back rejected changes failed")
        ready: list[tuple[Callback, BaseException | None]] = []
        waiting: list[_Waiter] = []
        for waiter in waiters:
            failed = None
            if waiter.keys is not None:  # its own units' fate (an abandoned one is rejected)
                failed = next((rejected[k] for k in waiter.keys if k in rejected), None)
            if failed is None and outcome.unavailable is not None:
                if waiter.through_outage:
                    waiting.append(waiter)  # called once the retried commit succeeds
                    continue
                failed = outcome.unavailable
            ready.append((waiter.callback, failed))
        self._waiters = waiting + self._waiters
        for callback, exc in ready:
            try:
                callback(exc)
            except Exception:
                log.exception("a commit callback failed")

    def _expand(self, rejected: dict[str, BaseException]) -> dict[str, BaseException]:
        """Rejected units with the keys bound to them."""
        out = dict(rejected)
        for unit, exc in rejected.items():
            for key in self._members.get(unit, ()):
                out.setdefault(key, exc)
        return out

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
        try:
            if self.outage is not None:  # one last try, now
                self._retry_at = 0.0
            await self.flush()
        except Exception as exc:
            log.error("%d changes could not be stored before stopping: %s", len(self._changes), exc)
        self.thread.shutdown(wait=True)

"""A task's way from pending to its end: the transitions every engine service makes through.

One place changes a task's state and says so: each change is journaled (group commit) and
published on the event bus; an attempt that ends succeeds, retries after its delay, or
fails the task; a terminal task leaves the active set, its dependants follow (queued, or
failed upstream) and its waiters hear of it. The services (submission, dispatch, worker
reports, cancel and retry, runs) call these named methods instead of poking at each other's
rows. What happens next is not this module's to decide: it calls back the scheduler
(``kick``), the step cache (``ready``: a task whose dependencies are met) and the runs
(``step_finished``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from ..core.protocol import Buffer
from ..core.records import TaskRow, UpdateAttempt, UpdateTask
from ..core.states import AttemptState, TaskState, transition
from .blobfiles import BlobFiles
from .events import EventBus
from .journal import Journal
from .state import EngineState
from .views import task_view

# error kinds that the same code would hit again: never retried automatically
NOT_RETRYABLE = frozenset({"bad_payload", "environment", "cancelled", "dependency", "template", "store"})


class Transitions:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        bus: EventBus,
        blobfiles: BlobFiles,
        *,
        kick: Callable[[], None],
        ready: Callable[[TaskRow], None],
        step_finished: Callable[[TaskRow], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.bus = bus
        self.blobfiles = blobfiles
        self._kick = kick  # run the scheduler soon
        self._ready = ready  # dependencies met: into the queue (or the step cache decides)
        self._step_finished = step_finished  # a workflow step ended: its run follows

    # ------------------------------------------------------------------ recording a change
    def publish(self, row: TaskRow) -> None:
        # a view costs more than the rest of a state change; a task not stored yet is no news
        if self.bus.subscriber_count and row.id not in self.state.unstored:
            self.bus.publish({"type": "task", "task": task_view(row)})

    def update(self, row: TaskRow, *, lazy: bool = False) -> None:
        """Journal and publish ``row`` as it is now (``lazy``: its commit may wait)."""
        row.updated_at = time.time()
        self.journal.add(UpdateTask(dataclasses.replace(row)), lazy=lazy)
        self.publish(row)

    @staticmethod
    def set_state(row: TaskRow, state: TaskState) -> None:
        """Move ``row`` to ``state``; an illegal move raises (see :mod:`jupyter_orch.core.states`)."""
        row.state = transition(row.state, state)

    def save_attempt(self, row: TaskRow, *, lazy: bool = False, **changes: object) -> None:
        attempt = self.state.attempt_of(row)
        for key, value in changes.items():
            setattr(attempt, key, value)
        self.journal.add(UpdateAttempt(dataclasses.replace(attempt)), lazy=lazy)

    def retire(self, row: TaskRow) -> None:
        """A task reached a terminal state: move it out of the active set."""
        self.state.retire(row)
        if row.state == TaskState.SUCCEEDED:
            self.blobfiles.drop_payload_file(row)

    def end(self, row: TaskRow) -> None:
        """``row`` was set terminal: store it, retire it and tell its dependants and waiters."""
        self.update(row)
        self.retire(row)
        self.after_terminal(row)

    # ------------------------------------------------------------------ waiting and ready
    def enqueue_or_wait(self, row: TaskRow, known: dict[str, TaskRow] | None = None) -> None:
        """A pending task: into the queue if its dependencies are met, else wait for them."""
        unmet: set[str] = set()
        for dep_id in row.spec.depends:
            dep = self.state.lookup(dep_id) or (known or {}).get(dep_id)
            if dep is None or dep.state == TaskState.SUCCEEDED:
                continue
            if dep.state.terminal:
                self.fail_upstream(row, dep)
                return
            unmet.add(dep_id)
        if unmet:
            self.state.deps.wait(row.id, unmet)
            row.reason = f"waiting for {len(unmet)} dependenc{'y' if len(unmet) == 1 else 'ies'}"
            return
        self._ready(row)

    def fail_upstream(self, row: TaskRow, dep: TaskRow) -> None:
        if row.state != TaskState.PENDING:
            return
        self.set_state(row, TaskState.UPSTREAM_FAILED)
        row.error_kind = "dependency"
        row.error = f"dependency {dep.spec.display_name} ({dep.id}) {dep.state.value}" + (
            f": {dep.error}" if dep.error else ""
        )
        row.reason = None
        row.ended_at = time.time()
        self.end(row)

    def after_terminal(self, row: TaskRow) -> None:
        """Propagate to dependants, and wake waiters once the change is committed."""
        if row.state == TaskState.SUCCEEDED:
            for task_id in self.state.deps.succeeded(row.id):
                dependant = self.state.tasks.get(task_id)
                if dependant is not None and dependant.state == TaskState.PENDING:
                    dependant.reason = None
                    self._ready(dependant)
        else:
            for task_id in self.state.deps.failed(row.id):
                dependant = self.state.tasks.get(task_id)
                if dependant is not None:
                    self.fail_upstream(dependant, row)
        self._step_finished(row)
        # Waiters learn the outcome now, before its commit: a result a worker reported stays
        # with that worker until the commit is acknowledged, so a crash in between cannot
        # lose it (the worker sends it again), and the caller saves a commit of latency.
        self.state.announce_done(row)

    def requeue(self, task_id: str) -> None:
        """A retry's delay is over: the task is placed again."""
        self.state.timer_fired(task_id)
        row = self.state.tasks.get(task_id)
        if row is not None and row.state == TaskState.PENDING:
            row.retry_at = None
            row.reason = None
            self.enqueue_or_wait(row)
            self.publish(row)
            self._kick()

    # ------------------------------------------------------------------ an attempt ends
    def finish_attempt(
        self,
        row: TaskRow,
        *,
        ok: bool,
        result: Buffer | None = None,
        error: str | None = None,
        error_kind: str | None = None,
        traceback: str | None = None,
        exit_code: int | None = None,
        lost: bool = False,
        stopped: bool = False,
    ) -> None:
        """The current attempt of ``row`` ended: succeed, retry or fail the task; or, when
        it was being preempted, queue it again. ``stopped``: the task saw
        ``should_preempt()`` turn true before it returned (so its return is not its end)."""
        now = time.time()
        preempted = self.state.preempting.pop(row.id, None)
        # preempted: it was asked to (and did not simply finish first), or the worker says so
        # (it stopped its tasks while the server could not hear it)
        if not row.state.terminal and (stopped or error_kind == "preempted" or (preempted and not ok)):
            why = preempted[1] if preempted else "preempted: its worker was told to stop"
            self._preempted(row, now, why, error_kind, error, exit_code)
            return
        if ok:
            state = AttemptState.SUCCEEDED
        elif error_kind == "cancelled":
            state = AttemptState.CANCELLED
        else:
            state = AttemptState.LOST if lost or error_kind == "not_started" else AttemptState.FAILED
        self.save_attempt(
            row, state=state, ended_at=now, exit_code=exit_code, error=error, error_kind=error_kind
        )
        self.state.used(row, now)
        if row.state.terminal:  # e.g. cancelled while it ran: keep the user's verdict
            return
        if error_kind == "not_started":  # sent ahead to a worker that stopped: place it again
            self.state.not_started(row.id)
            self.set_state(row, TaskState.PENDING)
            row.worker_id, row.gpus = None, ()
            self.update(row)
            self.enqueue_or_wait(row)
            self._kick()
            return
        if ok:
            if result:  # shell tasks succeed without a value
                self._keep_result(row, result, "results", "result")
            self.set_state(row, TaskState.SUCCEEDED)
            row.error = row.error_kind = row.traceback = None
        else:
            row.error, row.error_kind, row.traceback = error, error_kind, traceback
            if result:  # the pickled exception
                self._keep_result(row, result, "errors", "error")
            if self._retry_later(row, now, error, error_kind):
                return
            self.set_state(row, TaskState.FAILED)
        row.ended_at = now
        row.reason = None
        self.update(row)
        self.retire(row)
        if row.result_key is not None and not row.result_key.startswith("db:"):
            # a result in the blob store: nobody hears of the outcome before the file is
            # written and its row stored (if the disk refuses it, the task fails instead)
            self.state.unannounced.add(row.id)
            self.journal.after_commit(
                lambda failed: self._announce_stored(row, failed), keys=[row.id], through_outage=True
            )
            return
        self.after_terminal(row)

    def preempt_lost(self, row: TaskRow, why: str) -> None:
        """The attempt's worker went away for the cluster's reasons (an eviction, a node
        reclaimed): the attempt ends preempted, not failed."""
        self.state.preempting[row.id] = ("", why)
        self.finish_attempt(row, ok=False, lost=True, error_kind="lost", error=why)

    def _preempted(
        self,
        row: TaskRow,
        now: float,
        why: str,
        error_kind: str | None,
        error: str | None,
        exit_code: int | None,
    ) -> None:
        """A preempted attempt, however it ended (stopped in time, raised, killed after
        the grace): recorded as such, no retry used, the task queued again to resume."""
        if error_kind == "lost":
            how = "its worker is gone"
        elif error_kind == "preempted":  # the worker's word: stopped when asked, or killed
            how = error or "stopped"
        else:
            how = "stopped in time" if error_kind in (None, "cancelled") else f"ended: {error_kind}"
        self.save_attempt(
            row,
            state=AttemptState.PREEMPTED,
            ended_at=now,
            exit_code=exit_code,
            error=f"{why} ({how})",
            error_kind="preempted",
        )
        self.state.used(row, now)
        self.state.not_started(row.id)  # uses up no retry
        self.set_state(row, TaskState.PENDING)
        row.worker_id, row.gpus = None, ()
        row.reason = f"{why}; queued again to resume from its latest checkpoint"
        self.update(row)
        self.enqueue_or_wait(row)
        self._kick()

    def _keep_result(self, row: TaskRow, result: Buffer, kind: str, what: str) -> None:
        row.result_key = self.blobfiles.key(kind, row.id, len(result))
        row.result_size = len(result)
        self.blobfiles.put(row.result_key, result, row.id, what)
        self.state.keep_result(row.id, result)

    def _retry_later(self, row: TaskRow, now: float, error: str | None, error_kind: str | None) -> bool:
        """Back to pending until the retry policy's delay is over; False when none is left."""
        retries_used = row.attempt - 1 - self.state.free_attempts.get(row.id, 0)
        if error_kind in NOT_RETRYABLE or retries_used >= row.spec.retry.retries:
            return False
        delay = row.spec.retry.delay(retries_used + 1)
        self.set_state(row, TaskState.PENDING)
        row.retry_at = now + delay
        row.reason = (
            f"attempt {row.attempt} failed ({error}); retry {retries_used + 1} of "
            f"{row.spec.retry.retries} in {delay:g} s"
        )
        row.worker_id = None
        row.gpus = ()
        self.update(row)
        self.state.set_timer(row.id, asyncio.get_running_loop().call_later(delay, self.requeue, row.id))
        return True

    def _announce_stored(self, row: TaskRow, failed: BaseException | None, again: bool = False) -> None:
        """The outcome is stored: waiters hear of it. If its blob could not be written, the
        task was failed instead (:mod:`.rollback`): that failure is what they hear of, once
        it is stored in turn (or could not be either: then now)."""
        if failed is not None and not again:
            self.journal.after_commit(
                lambda failed: self._announce_stored(row, failed, again=True),
                keys=[row.id],
                through_outage=True,
            )
            return
        self.state.unannounced.discard(row.id)
        self.after_terminal(row)

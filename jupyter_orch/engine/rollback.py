"""Back to what is stored: what the engine does when the journal could not store a unit.

- A task whose insert was never committed (its submit is answered with the error) is
  forgotten as if it had never been submitted: out of the queue and the dependency
  tracker, its worker slot freed, no event ever published for it. Stored tasks that were
  made to wait on it fail (``upstream_failed``), since it will never run.
- A workflow run whose row was never committed is forgotten with its steps.
- A stored task whose change (an outcome, its result's blob) could not be stored fails
  with error kind ``store`` and the reason in words ("could not write results/... : No
  space left on device"); it is not retried (the same write would fail again). If even
  that cannot be stored, the database keeps its last stored state and the log says so.
- A worker's row that could not be stored is only logged: nothing depends on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..core import protocol
from ..core.states import AttemptState, TaskState
from .isolation import describe
from .state import EngineState
from .transitions import Transitions
from .workers import WorkerHandle

log = logging.getLogger("jupyter_orch.engine")


class Rollback:
    def __init__(
        self,
        state: EngineState,
        transitions: Transitions,
        *,
        forget_reason: Callable[[str], None],
        forget_run: Callable[[str], None],
        slots_changed: Callable[[WorkerHandle], None],
        kick: Callable[[], None],
    ) -> None:
        self.state = state
        self.transitions = transitions
        self._forget_reason = forget_reason  # the provider's reason for a pending task
        self._forget_run = forget_run
        self._slots_changed = slots_changed  # a worker's slot was freed
        self._kick = kick

    def rejected(self, units: dict[str, BaseException]) -> None:
        """The journal could not store these units (keys: task ids, ``run:<id>``, ``worker:<id>``)."""
        for key, exc in units.items():
            if key.startswith("run:"):
                self._forget_run(key[4:])
            elif key.startswith("worker:"):
                log.error("could not store worker %s: %s", key[7:], describe(exc))
            elif key in self.state.unstored:
                self._forget_task(key, exc)
            else:
                self._fail_task(key, exc)
        self._kick()

    def _forget_task(self, task_id: str, exc: BaseException) -> None:
        row = self.state.forget_active(task_id)
        if row is None:
            return
        self._forget_reason(task_id)
        worker = self.state.workers.get(row.worker_id or "")
        if worker is not None and task_id in worker.running:
            worker.release(task_id)  # never sent: the assignment waited for this commit
            self._slots_changed(worker)
        self.state.cancel_waiters(task_id)
        waiting = self.state.deps.failed(task_id)
        self.state.deps.forget(task_id)
        for dependant_id in waiting:  # stored tasks that were told to wait for it
            dependant = self.state.tasks.get(dependant_id)
            if (
                dependant is None
                or dependant.id in self.state.unstored
                or dependant.state != TaskState.PENDING
            ):
                continue
            self.transitions.set_state(dependant, TaskState.UPSTREAM_FAILED)
            dependant.error_kind = "dependency"
            dependant.error = f"dependency {task_id} was never stored: {describe(exc)}"
            dependant.reason = None
            dependant.ended_at = time.time()
            self.transitions.end(dependant)

    def _fail_task(self, task_id: str, exc: BaseException) -> None:
        row = self.state.tasks.get(task_id) or self.state.finished.get(task_id)
        if row is None:
            return
        why = describe(exc)
        if task_id in self.state.unstorable:  # its failure could not be stored either: stop here
            log.error(
                "task %s: still cannot store it (%s); the database keeps its last stored state", task_id, why
            )
            return
        self.state.unstorable.add(task_id)
        message = f"the server could not store this task's outcome: {why}"
        now = time.time()
        if row.state.terminal:
            # announced, not stored: the stored outcome is a failure, without the result
            # that could not be kept
            self.state.drop_result(task_id)
            row.state = TaskState.FAILED
            row.result_key, row.result_size, row.traceback = None, 0, None
        else:
            worker = self.state.workers.get(row.worker_id or "") if row.state.active else None
            if worker is not None:
                worker.send(
                    protocol.encode(
                        {
                            "type": "cancel",
                            "task_id": task_id,
                            "attempt": row.attempt,
                            "reason": message,
                            "grace": 0,
                        }
                    )
                )
                worker.release(task_id)
                self._slots_changed(worker)
            self.transitions.set_state(row, TaskState.FAILED)
        row.error, row.error_kind, row.reason, row.ended_at = message, "store", None, now
        if row.attempt:
            self.transitions.save_attempt(
                row, state=AttemptState.FAILED, ended_at=now, error=message, error_kind="store"
            )
        self.transitions.update(row)
        if task_id in self.state.tasks:
            self.transitions.retire(row)
            self.transitions.after_terminal(row)
        else:
            self.state.attempts.pop(task_id, None)
        log.error("task %s failed: %s", row.id, row.error)

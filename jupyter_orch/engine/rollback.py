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
from typing import TYPE_CHECKING

from ..core import protocol
from ..core.states import AttemptState, TaskState
from .isolation import describe

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("jupyter_orch.engine")


def rejected(engine: Engine, units: dict[str, BaseException]) -> None:
    """The journal could not store these units (keys: task ids, ``run:<id>``, ``worker:<id>``)."""
    for key, exc in units.items():
        if key.startswith("run:"):
            _forget_run(engine, key[4:])
        elif key.startswith("worker:"):
            log.error("could not store worker %s: %s", key[7:], describe(exc))
        elif key in engine.state.unstored:
            _forget_task(engine, key, exc)
        else:
            _fail_task(engine, key, exc)
    engine.kick()


def _forget_task(engine: Engine, task_id: str, exc: BaseException) -> None:
    engine.state.unstored.pop(task_id, None)
    row = engine.state.tasks.pop(task_id, None)
    if row is None:
        return
    engine.state.forget_active(task_id)
    engine.reasons.forget(task_id)
    worker = engine.state.workers.get(row.worker_id or "")
    if worker is not None and task_id in worker.running:
        worker.release(task_id)  # never sent: the assignment waited for this commit
        engine._worker_slots_changed(worker)
    for future in engine.state.done.pop(task_id, ()):
        future.cancel()
    engine.state.done_calls.pop(task_id, None)
    waiting = engine.state.deps.failed(task_id)
    engine.state.deps.forget(task_id)
    for dependant_id in waiting:  # stored tasks that were told to wait for it
        dependant = engine.state.tasks.get(dependant_id)
        if dependant is None or dependant.id in engine.state.unstored or dependant.state != TaskState.PENDING:
            continue
        engine._set_state(dependant, TaskState.UPSTREAM_FAILED)
        dependant.error_kind = "dependency"
        dependant.error = f"dependency {task_id} was never stored: {describe(exc)}"
        dependant.reason = None
        dependant.ended_at = time.time()
        engine._update(dependant)
        engine._retire(dependant)
        engine._after_terminal(dependant)


def _forget_run(engine: Engine, run_id: str) -> None:
    engine.runs.pop(run_id, None)
    engine._progress.pop(run_id, None)
    for future in engine._run_waiters.pop(run_id, ()):
        future.cancel()


def _fail_task(engine: Engine, task_id: str, exc: BaseException) -> None:
    row = engine.state.tasks.get(task_id) or engine.state.finished.get(task_id)
    if row is None:
        return
    why = describe(exc)
    if task_id in engine.state.unstorable:  # its failure could not be stored either: stop here
        log.error(
            "task %s: still cannot store it (%s); the database keeps its last stored state", task_id, why
        )
        return
    engine.state.unstorable.add(task_id)
    message = f"the server could not store this task's outcome: {why}"
    now = time.time()
    if row.state.terminal:
        # announced, not stored: the stored outcome is a failure, without the result
        # that could not be kept
        engine.state.results.pop(task_id)
        row.state = TaskState.FAILED
        row.result_key, row.result_size, row.traceback = None, 0, None
    else:
        worker = engine.state.workers.get(row.worker_id or "") if row.state.active else None
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
            engine._worker_slots_changed(worker)
        engine._set_state(row, TaskState.FAILED)
    row.error, row.error_kind, row.reason, row.ended_at = message, "store", None, now
    if row.attempt:
        engine._save_attempt(row, state=AttemptState.FAILED, ended_at=now, error=message, error_kind="store")
    engine._update(row)
    if task_id in engine.state.tasks:
        engine._retire(row)
        engine._after_terminal(row)
    else:
        engine.state.attempts.pop(task_id, None)
    log.error("task %s failed: %s", row.id, row.error)

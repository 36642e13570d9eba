"""What a provider may do to tasks and workers, through callables in its ``ProviderContext``
(providers sit below the engine and never import it).

A provider that starts workers on demand (Kubernetes pods) learns things the scheduler
cannot know: that no node can take the pod (the tasks stay pending with the cluster's
words as their reason), that its image cannot be pulled (the tasks fail), that the pod was
killed for its memory or evicted (the attempts on it end now, retried per each task's
policy, instead of after the worker grace).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.queue import PendingTask
from ..core.records import TaskRow

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("jupyter_orch.engine")


class Provisioning:
    """The provider's hooks: reasons and failures of pending tasks (kept by a
    :class:`.reasons.ProviderReasons`), and how workers stand, retire or are lost."""

    def _end_task(self: Engine, row: TaskRow) -> None:
        self._update(row)
        self._retire(row)
        self._after_terminal(row)

    def provider_reason(self: Engine, task_id: str, reason: str) -> str:
        """The reason to show for an unplaceable task: the provider's, while it holds."""
        return self.reasons.reason(task_id, reason)

    def set_pending_reason(self: Engine, task_ids: Iterable[str], reason: str | None) -> None:
        """Pending tasks wait for the provider's capacity: show why (None: forget it)."""
        self.reasons.set_pending(task_ids, reason)

    def pending_tasks(self: Engine, task_ids: Iterable[str]) -> list[PendingTask]:
        """Those of ``task_ids`` still waiting in the queue to be placed."""
        return self.reasons.pending_tasks(task_ids)

    def fail_pending(self: Engine, task_ids: Iterable[str], error_kind: str, error: str) -> list[str]:
        """Fail tasks still waiting to be placed (the capacity made for them cannot work);
        the ids it failed."""
        return self.reasons.fail_pending(task_ids, error_kind, error)

    def worker_status(self: Engine, worker_id: str) -> dict[str, Any] | None:
        """Whether the engine knows the worker, and how it stands (None: never connected,
        or gone)."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return None
        return {"state": w.state, "idle_since": w.idle_since, "running": len(w.running), "name": w.name}

    def retire_worker(self: Engine, worker_id: str, undo: bool = False) -> bool:
        """Stop placing tasks on an idle worker that is about to be removed; False when it
        holds tasks (it stays). ``undo``: it stays after all (its removal failed)."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return True
        if undo:
            if w.state == "draining" and w.link is not None:
                w.state = "connected"
                self._publish_worker(w)
                self.kick()
            return True
        if w.running:
            return False
        if w.state == "connected":
            w.state = "draining"
            self._publish_worker(w)
        return True

    def worker_lost(self: Engine, worker_id: str, error_kind: str, error: str) -> list[str]:
        """The provider knows the worker is gone (its pod was killed, evicted, deleted): end
        the attempts on it now with ``error`` (each retried or failed per its policy) instead
        of waiting out the worker grace. The ids of the tasks it ran."""
        w = self.state.workers.get(worker_id)
        if w is None:
            return []
        timer = self._grace_timers.pop(worker_id, None)
        if timer:
            timer.cancel()
        link, w.link = w.link, None
        if link is not None:
            link.close(error.splitlines()[0][:120])
        w.state = "gone"
        w.disconnected_at = w.disconnected_at or time.time()
        ended = []
        unstarted = {task_id for task_id, slot in w.running.items() if slot.queued}
        for task_id, slot in list(w.running.items()):
            w.release(task_id)
            row = self.state.tasks.get(task_id)
            if row is not None and row.attempt == slot.attempt and row.state.active:
                if task_id in unstarted:  # sent ahead, never started there: placed again, no retry used
                    why = f"worker {w.name} was lost before it started this task; it is placed again"
                    self._finish_attempt(row, ok=False, error_kind="not_started", error=why)
                else:
                    self._finish_attempt(row, ok=False, lost=True, error_kind=error_kind, error=error)
                ended.append(task_id)
        if ended:
            log.warning("worker %s is gone (%s): %d task(s) ended", w.name, error_kind, len(ended))
        self._persist_worker(w)
        self._publish_worker(w)
        del self.state.workers[worker_id]
        self._unplaceable_sig = None
        self.kick()
        return ended

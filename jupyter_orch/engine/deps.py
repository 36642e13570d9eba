"""Dependencies between tasks (a future passed as an argument): who waits for whom.

Pure bookkeeping; the engine decides what to do when a dependency ends.
"""

from __future__ import annotations

from collections import defaultdict


class DependencyTracker:
    def __init__(self) -> None:
        self._waiting: dict[str, set[str]] = {}  # task -> unmet dependencies
        self._dependants: dict[str, set[str]] = defaultdict(set)  # dependency -> waiting tasks

    def wait(self, task_id: str, unmet: set[str]) -> None:
        if not unmet:
            return
        self._waiting[task_id] = set(unmet)
        for dep in unmet:
            self._dependants[dep].add(task_id)

    def is_waiting(self, task_id: str) -> bool:
        return task_id in self._waiting

    def unmet(self, task_id: str) -> set[str]:
        return set(self._waiting.get(task_id, ()))

    def succeeded(self, dep_id: str) -> list[str]:
        """``dep_id`` succeeded: the tasks that now have every dependency met."""
        ready = []
        for task_id in self._dependants.pop(dep_id, ()):
            unmet = self._waiting.get(task_id)
            if unmet is None:
                continue
            unmet.discard(dep_id)
            if not unmet:
                del self._waiting[task_id]
                ready.append(task_id)
        return ready

    def failed(self, dep_id: str) -> list[str]:
        """``dep_id`` ended without a result: the tasks waiting on it (no longer waiting)."""
        out = []
        for task_id in self._dependants.pop(dep_id, ()):
            if self._waiting.pop(task_id, None) is not None:
                out.append(task_id)
        return out

    def forget(self, task_id: str) -> None:
        for dep in self._waiting.pop(task_id, ()):
            waiting = self._dependants.get(dep)
            if waiting is not None:
                waiting.discard(task_id)
                if not waiting:
                    del self._dependants[dep]

    def __len__(self) -> int:
        return len(self._waiting)

"""The pending queue kept in fair order, so the scheduler reads only its head.

Iteration yields tasks by priority (highest first), then owners in turn (the owner with
the oldest waiting task first), FIFO within an owner: the same order as
``scheduler.order_tasks`` but without re-sorting every pending task on every pass, which
matters when 5,000 tasks arrive at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator

from .resources import Resources


@dataclass(frozen=True)
class PendingTask:
    id: str
    owner: str
    priority: int
    seq: int  # submission order (smaller = older)
    resources: Resources
    image: str | None = None


class FairQueue:
    """Pending tasks by priority and owner. Removal is O(1) (stale entries are skipped)."""

    def __init__(self) -> None:
        self._live: dict[str, PendingTask] = {}
        self._queues: dict[int, dict[str, deque[PendingTask]]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live

    def get(self, task_id: str) -> PendingTask | None:
        return self._live.get(task_id)

    def push(self, task: PendingTask) -> None:
        if task.id in self._live:
            return
        self._live[task.id] = task
        owners = self._queues.setdefault(task.priority, {})
        queue = owners.setdefault(task.owner, deque())
        if queue and queue[-1].seq > task.seq:
            # an older task coming back (a retry keeps its place): insert in order
            items = sorted([*queue, task], key=lambda t: t.seq)
            owners[task.owner] = deque(items)
        else:
            queue.append(task)

    def remove(self, task_id: str) -> PendingTask | None:
        return self._live.pop(task_id, None)

    def _head(self, queue: deque[PendingTask]) -> PendingTask | None:
        while queue:
            head = queue[0]
            if self._live.get(head.id) is head:
                return head
            queue.popleft()
        return None

    def __iter__(self) -> Iterator[PendingTask]:
        for priority in sorted(self._queues, reverse=True):
            owners = self._queues[priority]
            positions = {owner: 0 for owner in owners}
            # owners ordered by their oldest live task, then in turn
            heads = [(h.seq, owner) for owner, q in owners.items() if (h := self._head(q))]
            turn = deque(owner for _, owner in sorted(heads))
            while turn:
                owner = turn.popleft()
                queue = owners[owner]
                i = positions[owner]
                while i < len(queue) and self._live.get(queue[i].id) is not queue[i]:
                    i += 1
                if i >= len(queue):
                    continue
                positions[owner] = i + 1
                yield queue[i]
                turn.append(owner)
        self._compact()

    def _compact(self) -> None:
        for priority in list(self._queues):
            owners = self._queues[priority]
            for owner in list(owners):
                if self._head(owners[owner]) is None:
                    del owners[owner]
            if not owners:
                del self._queues[priority]

"""The pending queue kept in fair order, so the scheduler reads only its head.

Iteration yields tasks by priority (highest first), then owners in turn, FIFO within an
owner: the same order as ``scheduler.order_tasks`` but without re-sorting every pending
task on every pass, which matters when 5,000 tasks arrive at once. Unlike that stateless
function, the queue remembers whose task left it last (``remove``: placed or cancelled),
so the turn order carries over from pass to pass: the owner served least recently goes
first, then the owner with the oldest waiting task. Without that, when one slot frees up
at a time, the owner with the oldest task would win every pass and one user's thousand
tasks would starve another's one.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .resources import Resources


@dataclass(frozen=True)
class PendingTask:
    id: str
    owner: str
    priority: int
    seq: int  # submission order (smaller = older)
    resources: Resources
    image: str | None = None
    groups: frozenset[str] = frozenset()  # the owner's groups when it was submitted


_Entry = tuple[int, PendingTask]  # (push number, task): tells a live entry from a stale one


class FairQueue:
    """Pending tasks by priority and owner. Removal is O(1) (stale entries are skipped)."""

    def __init__(self) -> None:
        self._live: dict[str, PendingTask] = {}
        # task id -> push number of its live entry: a task removed and pushed again (even
        # the very same object) leaves a stale entry behind that must not count twice
        self._push_no: dict[str, int] = {}
        self._pushes = 0
        self._queues: dict[int, dict[str, deque[_Entry]]] = {}
        self._served: dict[str, int] = {}  # owner -> tick of its last task leaving the queue
        self._tick = 0

    @classmethod
    def of(cls, tasks: Iterable[PendingTask]) -> FairQueue:
        queue = cls()
        for task in sorted(tasks, key=lambda t: t.seq):
            queue.push(task)
        return queue

    def __len__(self) -> int:
        return len(self._live)

    @property
    def pushes(self) -> int:
        """How many times a task entered the queue (it only grows)."""
        return self._pushes

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live

    def get(self, task_id: str) -> PendingTask | None:
        return self._live.get(task_id)

    def push(self, task: PendingTask) -> None:
        if task.id in self._live:
            return
        self._pushes += 1
        self._live[task.id] = task
        self._push_no[task.id] = self._pushes
        entry = (self._pushes, task)
        owners = self._queues.setdefault(task.priority, {})
        queue = owners.setdefault(task.owner, deque())
        if queue and queue[-1][1].seq > task.seq:
            # an older task coming back (a retry keeps its place): insert in order
            items = sorted([*queue, entry], key=lambda e: e[1].seq)
            owners[task.owner] = deque(items)
        else:
            queue.append(entry)

    def remove(self, task_id: str) -> PendingTask | None:
        task = self._live.pop(task_id, None)
        if task is not None:
            del self._push_no[task_id]
            self._tick += 1
            self._served[task.owner] = self._tick
        return task

    def _is_live(self, entry: _Entry) -> bool:
        return self._push_no.get(entry[1].id) == entry[0]

    def _head(self, queue: deque[_Entry]) -> PendingTask | None:
        while queue:
            if self._is_live(queue[0]):
                return queue[0][1]
            queue.popleft()
        return None

    def __iter__(self) -> Iterator[PendingTask]:
        for priority in sorted(self._queues, reverse=True):
            owners = self._queues[priority]
            positions = {owner: 0 for owner in owners}
            # owners served least recently first, then by their oldest live task; then in turn
            heads = [
                (self._served.get(owner, 0), h.seq, owner)
                for owner, q in owners.items()
                if (h := self._head(q))
            ]
            turn = deque(owner for *_, owner in sorted(heads))
            while turn:
                owner = turn.popleft()
                task = self._next_live(owners[owner], positions, owner)
                if task is None:
                    continue
                yield task
                turn.append(owner)
        self._compact()

    def weighted(
        self, start: Callable[[PendingTask], float], step: Callable[[PendingTask], float]
    ) -> Iterator[PendingTask]:
        """Live tasks in fair-share order: priority first; within it, the owner with the
        smallest ``start`` (of their oldest task: recent use per weight) goes next, and each
        task yielded moves its owner back by ``step(task)``; FIFO within an owner."""
        for priority in sorted(self._queues, reverse=True):
            owners = self._queues[priority]
            positions = {owner: 0 for owner in owners}
            heap = [(start(h), h.seq, owner) for owner, q in owners.items() if (h := self._head(q))]
            heapq.heapify(heap)
            while heap:
                key, _, owner = heapq.heappop(heap)
                task = self._next_live(owners[owner], positions, owner)
                if task is None:
                    continue
                yield task
                heapq.heappush(heap, (key + step(task), task.seq, owner))
        self._compact()

    def _next_live(self, queue: deque[_Entry], positions: dict[str, int], owner: str) -> PendingTask | None:
        """The owner's next live task after the ones already yielded (None: no more)."""
        i = positions[owner]
        while i < len(queue) and not self._is_live(queue[i]):
            i += 1
        if i >= len(queue):
            return None
        positions[owner] = i + 1
        return queue[i][1]

    def _compact(self) -> None:
        for priority in list(self._queues):
            owners = self._queues[priority]
            for owner in list(owners):
                if self._head(owners[owner]) is None:
                    del owners[owner]
            if not owners:
                del self._queues[priority]

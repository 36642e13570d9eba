"""The task state machine.

``pending → scheduled → running → succeeded | failed | cancelled``; a workflow step or a
task whose dependency failed ends ``upstream_failed``. A retry (automatic or asked for)
returns a task to ``pending`` as a new attempt. Any other change raises
:class:`IllegalTransition`: it is a bug in the caller, never a user error.
"""

from __future__ import annotations

from enum import Enum

from .errors import IllegalTransition


class TaskState(str, Enum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UPSTREAM_FAILED = "upstream_failed"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Holding (or about to hold) a worker slot."""
        return self in (TaskState.SCHEDULED, TaskState.RUNNING)


TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.UPSTREAM_FAILED})
RETRYABLE = frozenset({TaskState.FAILED, TaskState.CANCELLED, TaskState.UPSTREAM_FAILED})

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    # pending to succeeded: a workflow step whose cached result is reused, never run
    TaskState.PENDING: frozenset(
        {
            TaskState.SCHEDULED,
            TaskState.CANCELLED,
            TaskState.FAILED,
            TaskState.UPSTREAM_FAILED,
            TaskState.SUCCEEDED,
        }
    ),
    # back to pending: the worker was lost before the task started, or a retry
    TaskState.SCHEDULED: frozenset(
        {TaskState.RUNNING, TaskState.PENDING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}
    ),
    TaskState.RUNNING: frozenset(
        {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.PENDING}
    ),
    # terminal states only leave through an explicit retry
    TaskState.SUCCEEDED: frozenset(),
    TaskState.FAILED: frozenset({TaskState.PENDING}),
    TaskState.CANCELLED: frozenset({TaskState.PENDING}),
    TaskState.UPSTREAM_FAILED: frozenset({TaskState.PENDING}),
}


def can_transition(current: TaskState, new: TaskState) -> bool:
    return new in _ALLOWED[current]


def transition(current: TaskState, new: TaskState) -> TaskState:
    """Return ``new`` if the state machine allows ``current → new``; raise otherwise."""
    if new not in _ALLOWED[current]:
        raise IllegalTransition(f"illegal task state change {current.value} -> {new.value}")
    return new


class AttemptState(str, Enum):
    """One try of a task on one worker."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"  # its worker went away and did not come back in time
    PREEMPTED = "preempted"  # stopped for a task of higher priority (or its node went): queued again

    def __str__(self) -> str:
        return self.value

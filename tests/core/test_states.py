"""The task state machine: exactly the documented transitions are allowed."""

from __future__ import annotations

import itertools

import pytest

from jupyter_orch.core.errors import IllegalTransition
from jupyter_orch.core.states import (
    RETRYABLE,
    TERMINAL,
    AttemptState,
    TaskState,
    can_transition,
    transition,
)

S = TaskState

# The specification, written out independently of the module's table.
ALLOWED = {
    (S.PENDING, S.SCHEDULED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.UPSTREAM_FAILED),
    (S.PENDING, S.SUCCEEDED),  # a cached workflow step: its earlier result reused
    (S.SCHEDULED, S.RUNNING),
    (S.SCHEDULED, S.PENDING),  # worker lost before the task started
    (S.SCHEDULED, S.SUCCEEDED),  # "started" overtaken by "finished"
    (S.SCHEDULED, S.FAILED),
    (S.SCHEDULED, S.CANCELLED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.PENDING),  # retry of a lost attempt
    (S.FAILED, S.PENDING),  # explicit retry
    (S.CANCELLED, S.PENDING),
    (S.UPSTREAM_FAILED, S.PENDING),
}
ALL_PAIRS = list(itertools.product(TaskState, TaskState))


def test_there_are_seven_states() -> None:
    assert [s.value for s in TaskState] == [
        "pending",
        "scheduled",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "upstream_failed",
    ]


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_allowed_transitions(current: TaskState, new: TaskState) -> None:
    assert can_transition(current, new)
    assert transition(current, new) is new


@pytest.mark.parametrize(("current", "new"), [p for p in ALL_PAIRS if p not in ALLOWED])
def test_every_other_transition_is_illegal(current: TaskState, new: TaskState) -> None:
    assert not can_transition(current, new)
    with pytest.raises(IllegalTransition) as info:
        transition(current, new)
    assert f"{current.value} -> {new.value}" in str(info.value)


def test_pairs_are_all_covered() -> None:
    assert len(ALL_PAIRS) == 49
    assert sum(can_transition(a, b) for a, b in ALL_PAIRS) == len(ALLOWED)


def test_no_state_goes_to_itself() -> None:
    for s in TaskState:
        assert not can_transition(s, s)


def test_succeeded_is_final() -> None:
    assert not any(can_transition(S.SUCCEEDED, s) for s in TaskState)


def test_terminal_states_only_leave_to_pending() -> None:
    for s in TERMINAL:
        assert {n for n in TaskState if can_transition(s, n)} <= {S.PENDING}


def test_terminal_and_active() -> None:
    assert {s for s in TaskState if s.terminal} == {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.UPSTREAM_FAILED}
    assert {s for s in TaskState if s.active} == {S.SCHEDULED, S.RUNNING}
    assert not S.PENDING.terminal and not S.PENDING.active
    for s in TaskState:
        assert not (s.terminal and s.active)


def test_retryable_states_are_the_terminal_ones_that_can_go_back() -> None:
    assert RETRYABLE == {s for s in TERMINAL if can_transition(s, S.PENDING)}
    assert S.SUCCEEDED not in RETRYABLE


def test_states_are_strings() -> None:
    assert S.UPSTREAM_FAILED == "upstream_failed"
    assert str(S.RUNNING) == "running"
    assert f"{S.PENDING}" == "pending"
    assert TaskState("failed") is S.FAILED
    with pytest.raises(ValueError):
        TaskState("done")


def test_illegal_transition_is_not_a_user_error() -> None:
    from jupyter_orch.core.errors import OrchError

    assert not issubclass(IllegalTransition, OrchError)
    assert issubclass(IllegalTransition, RuntimeError)


def test_attempt_states() -> None:
    assert {s.value for s in AttemptState} == {
        "scheduled",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "lost",
        "preempted",
    }
    assert str(AttemptState.LOST) == "lost"

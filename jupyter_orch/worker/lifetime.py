"""How the executor process ends: SIGTERM interrupts the running task (its ``finally``
blocks run), and the process dies with its worker, taking the task's processes along.

A task that asks ``jupyter_orch.should_preempt()`` is not interrupted: from its first
question on, SIGTERM (a preemption, a cancel, its node going away) only turns the answer
true, and the task checkpoints and returns within its grace period (or is killed)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any


class Terminated(BaseException):
    """Raised in the running task by SIGTERM (cancel, timeout, worker stop)."""


class _Stop:
    polled = False  # the running task asks should_preempt(): SIGTERM does not interrupt it
    asked = False  # SIGTERM came
    seen = False  # the task was told (should_preempt() answered true)


def on_sigterm(signum: int, frame: Any) -> None:
    _Stop.asked = True
    if not _Stop.polled:
        raise Terminated()


def should_preempt() -> bool:
    """True once the running task is asked to stop (preempted, cancelled, its node going
    away): checkpoint, then return. Asking at all means SIGTERM no longer interrupts it."""
    _Stop.polled = True
    if _Stop.asked:
        _Stop.seen = True
    return _Stop.asked


def begin_task() -> None:
    """A new task starts in this executor: nothing asked of it yet."""
    _Stop.polled = _Stop.asked = _Stop.seen = False


def stopped_early() -> bool:
    """Whether the task that just ended was told to stop (its return is not its end)."""
    return _Stop.seen


def set_parent_death_signal() -> None:
    """Die with the worker, and take the task's processes along: a task whose worker is gone
    can report to no one, and its retry runs elsewhere (Linux only). The executor leads its
    own process group (its worker starts it in a session of its own), which a shell task's
    processes share: the worker's death signal kills the whole group, not only the executor
    (``kill -9`` of a worker left ``sleep`` and friends running beside their retry)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        signal.signal(PARENT_DEATH, on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, PARENT_DEATH)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the worker died before the signal was armed
            on_parent_death(PARENT_DEATH, None)
    except Exception:
        pass


PARENT_DEATH = signal.SIGUSR2


def on_parent_death(signum: int, frame: Any) -> None:
    if os.getpgrp() == os.getpid():  # this executor's own group: its tasks' processes too
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)

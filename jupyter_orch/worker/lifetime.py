"""How the executor process ends: SIGTERM interrupts the running task (its ``finally``
blocks run), and the process dies with its worker, taking the task's processes along."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any


class Terminated(BaseException):
    """Raised in the running task by SIGTERM (cancel, timeout, worker stop)."""


def on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


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

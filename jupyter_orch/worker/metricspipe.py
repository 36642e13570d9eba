"""The task side of the metrics pipe: how a process inside a task finds the pipe the worker
reads its metric reports from, and writes one point per line to it.

The worker gives each executor process a pipe of its own for metrics (:mod:`.process`):
``JUPYTER_ORCH_METRICS_FD`` is the write end's number in the executor, and shell tasks get
the same descriptor. The executor also sets ``JUPYTER_ORCH_METRICS_PIPE`` to
``/proc/<its pid>/fd/<n>``: a process that has the variables but not the descriptor (a child
started with ``close_fds``, as ``subprocess`` does by default, or a notebook's kernel)
opens the same pipe again through it. A descriptor is used only when it *is* that pipe,
never a file that happens to have its number.

Writes are serialised by a lock (threads never interleave lines) and loop until every byte
is written. Kept import-light: ``jupyter_orch.report()`` loads it inside tasks.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FD_ENV", "PIPE_ENV", "Send", "pipe_fd", "pipe_path", "reopen", "writer"]

FD_ENV = "JUPYTER_ORCH_METRICS_FD"
PIPE_ENV = "JUPYTER_ORCH_METRICS_PIPE"
MAX_LINE = 1 << 20  # the worker cuts (and drops) a longer line

Send = Callable[[Any], None]
"""``send(point)``: one JSON value as one line on the pipe."""

_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_after_fork)


def pipe_path(fd: int) -> str:
    """What the executor puts in ``JUPYTER_ORCH_METRICS_PIPE`` for its descriptor ``fd``."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def pipe_fd() -> tuple[int | None, str]:
    """The metrics descriptor the environment names, when this process holds that pipe;
    else None and why not."""
    raw = os.environ.get(FD_ENV)
    if not raw:
        return None, f"not inside a jupyter-orch task ({FD_ENV} is not set)"
    try:
        fd = int(raw)
        st = os.fstat(fd)
    except (ValueError, OSError):
        return None, f"{FD_ENV}={raw} is not an open descriptor in this process"
    if not stat.S_ISFIFO(st.st_mode):
        return None, f"{FD_ENV}={raw} is not the task's metrics pipe in this process"
    path = os.environ.get(PIPE_ENV)
    if path:
        try:
            same = os.stat(path)
        except OSError:
            return fd, ""  # no /proc here: a pipe with the right number it is
        if (same.st_dev, same.st_ino) != (st.st_dev, st.st_ino):
            return None, f"{FD_ENV}={raw} is another pipe in this process"
    return fd, ""


def reopen() -> tuple[int | None, str]:
    """The task's pipe opened again through ``JUPYTER_ORCH_METRICS_PIPE`` (a new descriptor,
    the caller's to close); else None and why not."""
    path = os.environ.get(PIPE_ENV)
    if not path:
        return None, f"not inside a jupyter-orch task ({FD_ENV} is not set)"
    try:
        # non-blocking open: a pipe whose reader is gone fails (ENXIO) instead of waiting
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return None, f"the task's metrics pipe {path} cannot be opened: {exc.strerror or exc}"
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        return None, f"{path} is not the task's metrics pipe"
    os.set_blocking(fd, True)
    return fd, ""


def writer(fd: int) -> Send:
    """``send(point)`` writing to ``fd``; ``ValueError`` for a value that is not JSON."""
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

    def send(point: Any) -> None:
        data = (dumps(point) + "\n").encode()
        with _lock:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    return send

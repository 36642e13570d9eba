"""``jupyter_orch.report(step=..., group=..., **metrics)``: a task's metric reports, and the
way each leaves the process it is made in.

A report is checked by :func:`jupyter_orch.core.metrics.make_point` wherever it is made (a
bad one raises :class:`~jupyter_orch.core.errors.SpecError` at the call, in a task or not),
then sent down the first channel that reaches the worker:

- **a display output**, in the kernel of a notebook task (the runner sets
  ``JUPYTER_ORCH_METRICS=display`` there): the point is published as display data of
  :data:`~jupyter_orch.notebooks.outputs.METRIC_MIME`, which the runner takes out of the
  notebook and writes to the metrics pipe, in order with the cell's other outputs;
- **the metrics pipe** (:mod:`jupyter_orch.worker.metricspipe`), anywhere else in a task:
  function and cell tasks, shell tasks (``jupyter orch report``), and the processes they
  start; one JSON line per point;
- **nowhere**, outside a task: a warning, once per process (and the same when the worker
  stopped reading: a lost report never ends the task).

The channel is found on the first report and kept while the variables that name it stay
the same; a report then costs its check, a ``json.dumps`` and one ``write``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from typing import Any

from .core.metrics import make_point
from .notebooks.outputs import METRIC_MIME, METRICS_MODE_ENV
from .worker import metricspipe

__all__ = ["NotInTask", "report", "send_point"]

OUTSIDE_TASK = (
    "jupyter_orch.report(): metrics are only recorded inside a jupyter-orch task (a function, "
    "cell, notebook or shell task run by a worker); reports made here are dropped"
)


class NotInTask(RuntimeError):
    """No channel reaches a worker from here (not a task, or its pipe is out of reach)."""


class _Channel:
    """How this process's reports leave, for one value of the variables that name it."""

    def __init__(self, key: tuple[str | None, str | None, str | None]) -> None:
        self.key = key
        self.send: metricspipe.Send | None = None
        self.why = ""
        if key[2] == "display" and _in_kernel():
            self.send = _publisher()
            return
        fd, self.why = metricspipe.pipe_fd()
        if fd is None and key[1]:
            fd = _reopened.get(key[1])
            if fd is None:
                fd, self.why = metricspipe.reopen()
                if fd is not None:
                    _reopened[key[1]] = fd
        if fd is not None:
            self.send = metricspipe.writer(fd)


_channel: _Channel | None = None
_reopened: dict[str, int] = {}  # pipes opened through /proc, kept open (another thread may write)
_resolving = threading.Lock()
_warned = False


def report(step: int | None = None, group: str | None = None, **metrics: Any) -> None:
    """Record ``metrics`` (numbers) at ``step`` in ``group`` (default ``training``) for the
    running task; a NaN or an infinity is kept as a gap in the curve."""
    point = make_point(time.time(), step, group, metrics)
    send = _resolve().send
    if send is None:
        _warn_once(OUTSIDE_TASK)
        return
    try:
        send(point)
    except OSError as exc:  # the worker is gone: a lost report must not end the training
        _warn_once(
            f"jupyter_orch.report(): the worker no longer reads this task's metrics ({exc}); reports are dropped"
        )


def send_point(point: Any) -> None:
    """Send one point as it is down this process's channel; :class:`NotInTask` when there
    is none (what ``jupyter orch report`` does after checking it)."""
    channel = _resolve()
    if channel.send is None:
        raise NotInTask(channel.why)
    channel.send(point)


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        # the caller of jupyter_orch.report (the package root's report calls this one)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _reset_after_fork() -> None:
    global _resolving
    _resolving = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_after_fork)


def _resolve() -> _Channel:
    """This process's channel, found again when the variables that name it changed."""
    global _channel
    env = os.environ
    key = (env.get(metricspipe.FD_ENV), env.get(metricspipe.PIPE_ENV), env.get(METRICS_MODE_ENV))
    channel = _channel
    if channel is None or channel.key != key:
        with _resolving:
            channel = _channel
            if channel is None or channel.key != key:
                channel = _channel = _Channel(key)
    return channel


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def _in_kernel() -> bool:
    shell = _shell()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _publisher() -> metricspipe.Send:
    # through the kernel's own display publisher: what IPython.display.publish_display_data
    # does, without this module importing IPython (only the kernel side does)
    shell = _shell()

    def publish(point: Any) -> None:
        shell.display_pub.publish(data={METRIC_MIME: point}, metadata={})

    return publish

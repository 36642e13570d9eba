"""The executor: the long-lived child process that runs a worker slot's tasks, one at a time.

Started by :mod:`jupyter_orch.worker.slots` as ``python -m jupyter_orch.worker.executor
--control-fd N`` in its own session (process group). Its stdout and stderr are pipes the
worker reads line by line; tasks and results travel over the control socket ``N`` (see
:mod:`jupyter_orch.worker.frames`). A task's exceptions, bad payloads and failed commands
are reported as results; anything that kills this process is reported by the worker.

This module is the process's entry point; the parts it puts together:
:mod:`.taskrunner` (the :class:`Executor` that runs each kind of task), :mod:`.taskoutput`
(ordered stderr, display outputs, flushing), :mod:`.lifetime` (SIGTERM, dying with the
worker), :mod:`.taskenv` (the environment around a task) and :mod:`.compatibility`
(pickles made elsewhere).

Control frames: executor → worker ``{"op": "ready", "pid"}`` once, then per task
``{"op": "done", ok, exit_code, error, error_kind, traceback}`` with blob ``result``;
worker → executor ``{"op": "run", task_id, attempt, kind, command, env, client_env, step}`` with
blobs ``payload`` and ``dep:<task_id>``. Metric reports go down a pipe of their own
(:mod:`.metricspipe`). SIGTERM interrupts the running task (so its
``finally`` blocks run) and ends the process; end of the control stream ends it too.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import platform
import signal
import socket
import sys

import cloudpickle

from ..cells import display
from . import frames, metricspipe
from .compatibility import Reply
from .lifetime import Terminated, on_sigterm, set_parent_death_signal
from .taskoutput import OrderedStderr, flush_output, show_display
from .taskrunner import Executor

__all__ = ["Executor", "Reply", "main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_orch.worker.executor")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--worker-name", default=platform.node())
    args = parser.parse_args(argv)

    set_parent_death_signal()
    _name_metrics_pipe()
    faulthandler.enable()  # a segfault prints the Python stack into the task's log
    sock = socket.socket(fileno=args.control_fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
        except Exception:
            pass
    sys.stderr = OrderedStderr(sys.stdout)
    signal.signal(signal.SIGTERM, on_sigterm)
    # figures a task shows come back as display outputs, in order with its printed lines
    os.environ.setdefault("MPLBACKEND", "module://jupyter_orch.cells.mplbackend")
    display.set_sink(show_display)
    executor = Executor(args.worker_name)
    code = 0
    try:
        frames.send(sock, {"op": "ready", "pid": os.getpid(), "cloudpickle": cloudpickle.__version__})
        reader = frames.SocketReader(sock)
        while True:
            frame = reader.recv()
            if frame is None:
                break
            header, blobs = frame
            reply, result = executor.run(header, blobs)
            frames.send(sock, {"op": "done", **reply}, [("result", result)])
    except Terminated:
        code = 128 + signal.SIGTERM
    except (BrokenPipeError, ConnectionError):
        code = 0
    finally:
        flush_output()
        notebooks = sys.modules.get("jupyter_orch.notebooks.runner")
        if notebooks is not None:  # the warm kernels go with this process
            notebooks.POOL.close()
    os._exit(code)


def _name_metrics_pipe() -> None:
    """``JUPYTER_ORCH_METRICS_PIPE``: this process's metrics pipe by a path that its tasks'
    children, which do not inherit the descriptor, can open (one inherited is stale)."""
    os.environ.pop(metricspipe.PIPE_ENV, None)
    fd, _ = metricspipe.pipe_fd()
    if fd is None:
        os.environ.pop(metricspipe.FD_ENV, None)
    elif os.path.exists(metricspipe.pipe_path(fd)):
        os.environ[metricspipe.PIPE_ENV] = metricspipe.pipe_path(fd)


if __name__ == "__main__":
    main()

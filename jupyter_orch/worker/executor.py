"""The executor: the long-lived child process that runs a worker slot's tasks, one at a time.

Started by :mod:`jupyter_orch.worker.slots` as ``python -m jupyter_orch.worker.executor
--control-fd N`` in its own session (process group). Its stdout and stderr are pipes the
worker reads line by line; tasks and results travel over the control socket ``N`` (see
:mod:`jupyter_orch.worker.frames`). A task's exceptions, bad payloads and failed commands
are reported as results; anything that kills this process is reported by the worker.

Control frames: executor → worker ``{"op": "ready", "pid"}`` once, then per task
``{"op": "done", ok, exit_code, error, error_kind, traceback}`` with blob ``result``;
worker → executor ``{"op": "run", task_id, attempt, kind, command, env, client_env, step}`` with
blobs ``payload`` and ``dep:<task_id>``. SIGTERM interrupts the running task (so its
``finally`` blocks run) and ends the process; end of the control stream ends it too.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import io
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from jupyter_orch import serialization
from jupyter_orch.cells import display
from jupyter_orch.worker import frames
from jupyter_orch.worker.outcomes import describe_signal

# Where a pip distribution name differs from the module people import.
_PIP_NAMES = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "attr": "attrs",
    "dateutil": "python-dateutil",
}

Reply = tuple[dict[str, Any], bytes]
_PIECES = re.compile(r"[^\r\n]*(?:\r\n|[\r\n])|[^\r\n]+")  # lines with their ends, then a partial one
# jupyter_orch.worker.output's STDERR_MARK and DISPLAY_MARK (not imported: it pulls asyncio)
_STDERR_MARK = b"\x1e\x1f"
_DISPLAY_MARK = b"\x1e\x1d"


class _OrderedStderr(io.TextIOBase):
    """A task's ``sys.stderr``: each piece of a line goes into the stdout pipe behind a
    marker, after whatever stdout holds, so the worker sees both streams in the order they
    were written. ``\\r``-ended pieces (progress bars) and flushed partial lines go at once."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._pending = ""
        self._continuing = False  # a flushed partial line is open: its rest needs no marker

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = self._pending + text
        cut = max(data.rfind("\n"), data.rfind("\r"))
        if cut < 0:
            self._pending = data
        else:
            self._pending = data[cut + 1 :]
            self._put(data[: cut + 1])
        return len(text)

    def _put(self, text: str) -> None:
        out = bytearray()
        for piece in _PIECES.findall(text):
            if not self._continuing:
                out += _STDERR_MARK
            out += piece.encode("utf-8", "backslashreplace")
            self._continuing = piece[-1] not in "\r\n"  # only the last piece can be partial
        self._out.flush()
        self._out.buffer.write(bytes(out))
        self._out.buffer.flush()

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._put(text)
        else:
            self._out.flush()


def _show(bundle: dict[str, Any]) -> None:
    """A display output goes into the stdout pipe as one marked JSON line, so it keeps its
    place among the task's printed lines."""
    line = _DISPLAY_MARK + json.dumps(bundle, separators=(",", ":")).encode() + b"\n"
    sys.stderr.flush()
    sys.stdout.flush()
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


class _Terminated(BaseException):
    """Raised in the running task by SIGTERM (cancel, timeout, worker stop)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _set_parent_death_signal() -> None:
    """Die with the worker, and take the task's processes along: a task whose worker is gone
    can report to no one, and its retry runs elsewhere (Linux only). The executor leads its
    own process group (its worker starts it in a session of its own), which a shell task's
    processes share: the worker's death signal kills the whole group, not only the executor
    (``kill -9`` of a worker left ``sleep`` and friends running beside their retry)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        signal.signal(PARENT_DEATH, _on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, PARENT_DEATH)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the worker died before the signal was armed
            _on_parent_death(PARENT_DEATH, None)
    except Exception:
        pass


PARENT_DEATH = signal.SIGUSR2


def _on_parent_death(signum: int, frame: Any) -> None:
    if os.getpgrp() == os.getpid():  # this executor's own group: its tasks' processes too
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _flush_output() -> None:
    """Push every buffered byte of this task into the pipes before it is reported done."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    try:  # C-level stdio (printf in native extensions) is block-buffered on a pipe
        _libc().fflush(None)
    except Exception:
        pass


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None)
    return _LIBC


def _env_mismatch(client_env: Any) -> str | None:
    """A sentence on how the submitting client's Python/cloudpickle differ from ours."""
    if not isinstance(client_env, dict):
        return None
    ours = serialization.environment()
    theirs_py = str(client_env.get("python") or "")
    theirs_cp = str(client_env.get("cloudpickle") or "")
    py_differs = bool(theirs_py) and theirs_py.split(".")[:2] != ours["python"].split(".")[:2]
    cp_differs = bool(theirs_cp) and theirs_cp != ours["cloudpickle"]
    if not (py_differs or cp_differs):
        return None
    return (
        f"the task was pickled with Python {theirs_py or '?'} and cloudpickle {theirs_cp or '?'}, "
        f"but this worker has Python {ours['python']} and cloudpickle {ours['cloudpickle']}"
    )


def _incompatible(client_env: Any, worker: str) -> Reply | None:
    """Refuse, before unpickling, a payload made where Python's or cloudpickle's minor
    version differs from ours: code pickled by value (notebook functions, cells) does not
    survive that, and the unpickling traceback would not say why."""
    if not isinstance(client_env, dict):
        return None
    ours = serialization.environment()
    theirs_py = str(client_env.get("python") or "")
    theirs_cp = str(client_env.get("cloudpickle") or "")
    if theirs_py and theirs_py.split(".")[:2] != ours["python"].split(".")[:2]:
        error = (
            f"the task was pickled with Python {theirs_py}, but worker {worker} runs Python {ours['python']}: "
            f"use an image (or worker) with Python {'.'.join(theirs_py.split('.')[:2])}, "
            f"or submit from a kernel with Python {'.'.join(ours['python'].split('.')[:2])}"
        )
    elif theirs_cp and theirs_cp.split(".")[:2] != ours["cloudpickle"].split(".")[:2]:
        error = (
            f"the task was pickled with cloudpickle {theirs_cp}, but worker {worker} has cloudpickle "
            f"{ours['cloudpickle']}: install the same version on both (pip install cloudpickle=={theirs_cp} "
            "on the worker, or use an image that has it)"
        )
    else:
        return None
    return {"ok": False, "error_kind": "environment", "error": error}, b""


def _unpickling_failure(exc: BaseException, what: str, header: dict[str, Any], worker: str) -> Reply:
    mismatch = _env_mismatch(header.get("client_env"))
    python = f"Python {platform.python_version()}"
    if isinstance(exc, ModuleNotFoundError):
        module = (exc.name or str(exc)).split(".")[0]
        pip_name = _PIP_NAMES.get(module, module)
        kind = "environment"
        error = (
            f"module {module!r} is not installed on worker {worker} ({python}): "
            f"install it there (pip install {pip_name}) or use an image that has it"
        )
    elif isinstance(exc, ImportError) or (
        isinstance(exc, AttributeError) and "Can't get attribute" in str(exc)
    ):
        kind = "environment"
        error = (
            f"{what} needs code that worker {worker} ({python}) does not have "
            f"({type(exc).__name__}: {exc}): install the same versions there or use an image that has them"
        )
    else:
        kind = "bad_payload"
        error = f"{what} could not be unpickled: {type(exc).__name__}: {exc}"
    if mismatch:
        error += f"; note: {mismatch}"
    return {"ok": False, "error_kind": kind, "error": error}, b""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_traceback(exc: BaseException) -> str:
    """The formatted traceback without jupyter-orch's own frames above the task's code."""
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _exception_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Executor:
    """Runs the tasks of one slot in this process, restoring shared state between them."""

    def __init__(self, worker_name: str) -> None:
        self.worker_name = worker_name
        self.cwd = os.getcwd()
        self._stdout = sys.stdout
        self._stderr = sys.stderr

    def run(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        kind = header.get("kind")
        os.environ["JUPYTER_ORCH_TASK_ID"] = str(header.get("task_id"))
        os.environ["JUPYTER_ORCH_ATTEMPT"] = str(header.get("attempt"))
        environ = _environ_snapshot()
        try:
            if kind == "function" and isinstance(header.get("step"), dict):
                return self._step_function(header, blobs)
            if kind == "function":
                return self._function(header, blobs)
            if kind == "cell":  # run_cell(job): its return value is the pickled result already
                return self._function(header, blobs, raw_result=True)
            if kind == "notebook":
                return self._notebook(header, blobs)
            if kind == "shell":
                return self._shell(header, blobs)
            return {"ok": False, "error_kind": "worker_error", "error": f"unknown task kind {kind!r}"}, b""
        finally:
            _flush_output()
            self._restore(environ, header.get("env"))

    def _restore(self, environ: dict[Any, Any], task_env: Any = None) -> None:
        """Undo what the task did to the process: streams, environment, working directory."""
        sys.stdout, sys.stderr = self._stdout, self._stderr
        clients = sys.modules.get("jupyter_orch.client.client")
        if clients is not None:  # nested tasks: the task's clients go with it
            clients.close_all()
        for key in task_env if isinstance(task_env, dict) else ():  # what we set for it: cheaply
            raw = environ.get(os.fsencode(str(key)) if _RAW else str(key))
            if raw is None:
                os.environ.pop(str(key), None)
            else:
                os.environ[str(key)] = os.fsdecode(raw) if _RAW else raw
        if _environ_snapshot() != environ:  # the task changed it itself: put every key back
            current = os.environ
            before = {os.fsdecode(k): os.fsdecode(v) for k, v in environ.items()} if _RAW else environ
            for key in [k for k in current if k not in before]:
                del current[key]
            for key, value in before.items():
                if current.get(key) != value:
                    current[key] = value
        try:
            if os.getcwd() != self.cwd:
                os.chdir(self.cwd)
        except OSError:
            os.chdir(self.cwd)

    def _function(self, header: dict[str, Any], blobs: dict[str, bytes], raw_result: bool = False) -> Reply:
        try:
            payload = _payload(header, blobs)
        except OSError as exc:
            return {
                "ok": False,
                "error_kind": "bad_payload",
                "error": f"could not read the task's payload file {header.get('payload_file')}: {exc.strerror or exc}",
            }, b""
        if payload is None:
            return {
                "ok": False,
                "error_kind": "bad_payload",
                "error": "the assignment carried no payload",
            }, b""
        refused = _incompatible(header.get("client_env"), self.worker_name)
        if refused is not None:
            return refused
        # the task's environment before unpickling: objects rebuilt then may read it (a
        # client reconnects with the task's token)
        os.environ.update(_string_env(header.get("env")))
        values: dict[str, Any] = {}
        for name, data in blobs.items():
            if name.startswith("dep:"):
                try:
                    values[name[4:]] = serialization.loads_value(data)
                except _Terminated:
                    raise
                except BaseException as exc:
                    what = f"the result of dependency {name[4:]}"
                    return _unpickling_failure(exc, what, header, self.worker_name)
        try:
            fn, args, kwargs = serialization.loads_call(payload, values)
        except _Terminated:
            raise
        except BaseException as exc:
            return _unpickling_failure(exc, "the task's payload", header, self.worker_name)
        return self._call_and_pickle(fn, args, kwargs, raw_result)

    def _call_and_pickle(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], raw_result: bool
    ) -> Reply:
        try:
            value = _call(fn, args, kwargs)
        except _Terminated:
            raise
        except BaseException as exc:
            reply = {
                "ok": False,
                "error_kind": "exception",
                "error": _exception_text(exc),
                "traceback": _user_traceback(exc),
            }
            return reply, serialization.dumps_exception(exc)
        if raw_result and isinstance(value, (bytes, bytearray)):
            return {"ok": True}, value
        try:
            return {"ok": True}, serialization.dumps_value(value)
        except _Terminated:
            raise
        except BaseException as exc:
            reply = {
                "ok": False,
                "error_kind": "exception",
                "error": f"the task's return value could not be pickled: {_exception_text(exc)}",
                "traceback": _user_traceback(exc),
            }
            return reply, serialization.dumps_exception(exc)

    def _step_function(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        """A workflow's function step: ``module:function`` called with its parameters."""
        from jupyter_orch.worker import steps

        try:
            request = json.loads(bytes(_payload(header, blobs) or b""))
            target = request["function"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return {
                "ok": False,
                "error_kind": "bad_payload",
                "error": f"the step's payload is unreadable: {exc}",
            }, b""
        os.environ.update(_string_env(header.get("env")))
        try:
            parameters = steps.fill(request.get("parameters") or {}, header["step"], blobs, "parameters")
            fn = steps.resolve(str(target), list(request.get("sys_path") or []))
        except steps.StepError as exc:
            return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        return self._call_and_pickle(fn, (), dict(parameters), raw_result=False)

    def _notebook(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        """A notebook task: its payload is JSON (the notebook, parameters, kernel); its result
        JSON too, the executed notebook, for a failed run as well."""
        from jupyter_orch.notebooks import runner

        try:
            request = json.loads(bytes(_payload(header, blobs) or b""))
            if not isinstance(request, dict) or not isinstance(request.get("notebook"), dict):
                raise ValueError("no notebook in it")
        except (OSError, ValueError) as exc:
            return {
                "ok": False,
                "error_kind": "bad_payload",
                "error": f"the notebook task's payload is unreadable: {exc}",
            }, b""
        if isinstance(header.get("step"), dict):  # a workflow step: its templates filled in here
            from jupyter_orch.worker import steps

            try:
                request["parameters"] = steps.fill(
                    request.get("parameters") or {}, header["step"], blobs, "parameters"
                )
            except steps.StepError as exc:
                return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        env = {**_string_env(header.get("env"))}
        for key in ("JUPYTER_ORCH_TASK_ID", "JUPYTER_ORCH_ATTEMPT", "ORCH_RUN_DIR"):
            if key in os.environ:
                env.setdefault(key, os.environ[key])
        cwd = runner.working_dir(str(header.get("task_id")), self.cwd, env)
        try:
            return {"ok": True}, runner.run_notebook(request, env, cwd)
        except runner.NotebookFailed as exc:
            reply = {
                "ok": False,
                "error_kind": exc.kind,
                "error": str(exc),
                "traceback": exc.traceback or None,
            }
            return reply, exc.result
        except _Terminated:
            raise
        except Exception as exc:
            return {
                "ok": False,
                "error_kind": "worker_error",
                "error": f"the notebook could not run: {_exception_text(exc)}",
            }, b""

    def _shell(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        command = header.get("command")
        if not isinstance(command, str) or not command.strip():
            return {"ok": False, "error_kind": "bad_payload", "error": "a shell task needs a command"}, b""
        if isinstance(header.get("step"), dict):  # a workflow step: its templates filled in here
            from jupyter_orch.worker import steps

            try:
                command = str(steps.fill(command, header["step"], blobs, "shell"))
            except steps.StepError as exc:
                return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        env = {**os.environ, **_string_env(header.get("env"))}
        _flush_output()
        proc = subprocess.Popen(["/bin/bash", "-c", command], cwd=self.cwd, env=env, stdin=subprocess.DEVNULL)
        try:
            code = proc.wait()
        except _Terminated:
            proc.terminate()  # bash shares our process group: it has had the signal too
            raise
        if code == 0:
            return {"ok": True, "exit_code": 0}, b""
        if code < 0:
            error = f"the command was killed by {describe_signal(-code)}"
            return {"ok": False, "exit_code": code, "error_kind": "signal", "error": error}, b""
        error = f"command exited with code {code}"
        return {"ok": False, "exit_code": code, "error_kind": "exit_code", "error": error}, b""


_RAW = isinstance(getattr(os.environ, "_data", None), dict)  # CPython keeps the raw pairs there


def _environ_snapshot() -> dict[Any, Any]:
    """The environment as it is now; a plain dict copy of CPython's own table when there is
    one (a thousand times cheaper than decoding every variable, as ``dict(os.environ)`` does)."""
    return dict(os.environ._data) if _RAW else dict(os.environ)  # type: ignore[attr-defined]


def _payload(header: dict[str, Any], blobs: dict[str, Any]) -> Any:
    """The task's payload: its blob, or for a large one the server's blob file, read here
    (``OSError`` when it cannot be); None when the assignment carried neither."""
    payload = blobs.get("payload")
    path = header.get("payload_file")
    if payload is None and isinstance(path, str):  # a large payload, straight from the blob store
        return _read_writable(path)
    return payload


def _read_writable(path: str) -> bytearray:
    """A file's bytes in writable memory: arrays unpickled over it are writable, uncopied."""
    with open(path, "rb") as f:
        data = bytearray(os.fstat(f.fileno()).st_size)
        view = memoryview(data)
        got = 0
        while got < len(data):
            n = f.readinto(view[got:])
            if not n:
                raise OSError(f"{path} ended early")
            got += n
    return data


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _string_env(env: Any) -> dict[str, str]:
    if not isinstance(env, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_orch.worker.executor")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--worker-name", default=platform.node())
    args = parser.parse_args(argv)

    _set_parent_death_signal()
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
    sys.stderr = _OrderedStderr(sys.stdout)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # figures a task shows come back as display outputs, in order with its printed lines
    os.environ.setdefault("MPLBACKEND", "module://jupyter_orch.cells.mplbackend")
    display.set_sink(_show)
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
    except _Terminated:
        code = 128 + signal.SIGTERM
    except (BrokenPipeError, ConnectionError):
        code = 0
    finally:
        _flush_output()
        notebooks = sys.modules.get("jupyter_orch.notebooks.runner")
        if notebooks is not None:  # the warm kernels go with this process
            notebooks.POOL.close()
    os._exit(code)


if __name__ == "__main__":
    main()

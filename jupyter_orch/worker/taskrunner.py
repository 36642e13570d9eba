"""The executor's :class:`Executor`: runs one task of each kind (function, cell, workflow
step, notebook, shell) in this process and turns what happened into a reply; between tasks
it puts back what a task changed (streams, environment, working directory). A shell task
gets the metrics pipe's descriptor; a notebook's runner writes its kernel's reports to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

from .. import serialization
from . import lifetime
from .compatibility import Reply, incompatible, unpickling_failure
from .lifetime import Terminated
from .metricspipe import FD_ENV, pipe_fd, writer
from .outcomes import describe_signal
from .taskenv import environ_snapshot, restore_environ, string_env
from .taskoutput import flush_output

__all__ = ["Executor", "Reply"]

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
        self.metrics_fd, _ = pipe_fd()  # the worker's pipe for metric reports
        self.send_metric = writer(self.metrics_fd) if self.metrics_fd is not None else None

    def run(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        os.environ["JUPYTER_ORCH_TASK_ID"] = str(header.get("task_id"))
        os.environ["JUPYTER_ORCH_ATTEMPT"] = str(header.get("attempt"))
        environ = environ_snapshot()
        lifetime.begin_task()
        try:
            reply, result = self._run(header, blobs)
        finally:
            flush_output()
            self._restore(environ, header.get("env"))
        if lifetime.stopped_early():  # it returned because it was asked to stop
            reply = {**reply, "stopped": True}
        return reply, result

    def _run(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        kind = header.get("kind")
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

    def _restore(self, environ: dict[Any, Any], task_env: Any = None) -> None:
        """Undo what the task did to the process: streams, environment, working directory."""
        sys.stdout, sys.stderr = self._stdout, self._stderr
        clients = sys.modules.get("jupyter_orch.client.client")
        if clients is not None:  # nested tasks: the task's clients go with it
            clients.close_all()
        restore_environ(environ, task_env)
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
        refused = incompatible(header.get("client_env"), self.worker_name)
        if refused is not None:
            return refused
        # the task's environment before unpickling: objects rebuilt then may read it (a
        # client reconnects with the task's token)
        os.environ.update(string_env(header.get("env")))
        values: dict[str, Any] = {}
        for name, data in blobs.items():
            if name.startswith("dep:"):
                try:
                    values[name[4:]] = serialization.loads_value(data)
                except Terminated:
                    raise
                except BaseException as exc:
                    what = f"the result of dependency {name[4:]}"
                    return unpickling_failure(exc, what, header, self.worker_name)
        try:
            fn, args, kwargs = serialization.loads_call(payload, values)
        except Terminated:
            raise
        except BaseException as exc:
            return unpickling_failure(exc, "the task's payload", header, self.worker_name)
        params = header.get("params")
        if isinstance(params, dict):  # a search's trial: its parameters as keyword arguments
            kwargs = {**kwargs, **params}
        return self._call_and_pickle(fn, args, kwargs, raw_result)

    def _call_and_pickle(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], raw_result: bool
    ) -> Reply:
        try:
            value = _call(fn, args, kwargs)
        except Terminated:
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
        except Terminated:
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
        from . import steps

        try:
            request = json.loads(bytes(_payload(header, blobs) or b""))
            target = request["function"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return {
                "ok": False,
                "error_kind": "bad_payload",
                "error": f"the step's payload is unreadable: {exc}",
            }, b""
        os.environ.update(string_env(header.get("env")))
        try:
            parameters = steps.fill(request.get("parameters") or {}, header["step"], blobs, "parameters")
            fn = steps.resolve(str(target), list(request.get("sys_path") or []))
        except steps.StepError as exc:
            return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        trial = header.get("params")  # a search step's trial: its parameters over the step's
        return self._call_and_pickle(
            fn, (), {**parameters, **(trial if isinstance(trial, dict) else {})}, raw_result=False
        )

    def _notebook(self, header: dict[str, Any], blobs: dict[str, bytes]) -> Reply:
        """A notebook task: its payload is JSON (the notebook, parameters, kernel); its result
        JSON too, the executed notebook, for a failed run as well."""
        from ..notebooks import runner

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
            from . import steps

            try:
                request["parameters"] = steps.fill(
                    request.get("parameters") or {}, header["step"], blobs, "parameters"
                )
            except steps.StepError as exc:
                return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        trial = header.get("params")
        if isinstance(trial, dict):  # a search step's trial: its parameters over the step's
            request["parameters"] = {**(request.get("parameters") or {}), **trial}
        env = {**string_env(header.get("env"))}
        for key in ("JUPYTER_ORCH_TASK_ID", "JUPYTER_ORCH_ATTEMPT", "ORCH_RUN_DIR"):
            if key in os.environ:
                env.setdefault(key, os.environ[key])
        cwd = runner.working_dir(str(header.get("task_id")), self.cwd, env)
        try:
            return {"ok": True}, runner.run_notebook(request, env, cwd, on_metric=self.send_metric)
        except runner.NotebookFailed as exc:
            reply = {
                "ok": False,
                "error_kind": exc.kind,
                "error": str(exc),
                "traceback": exc.traceback or None,
            }
            return reply, exc.result
        except Terminated:
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
            from . import steps

            try:
                command = str(steps.fill(command, header["step"], blobs, "shell"))
            except steps.StepError as exc:
                return {"ok": False, "error_kind": exc.kind, "error": str(exc)}, b""
        env = {**os.environ, **string_env(header.get("env"))}
        fds: tuple[int, ...] = ()
        if self.metrics_fd is not None:  # `jupyter orch report` in the command writes to it
            fds, env[FD_ENV] = (self.metrics_fd,), str(self.metrics_fd)
        flush_output()
        proc = subprocess.Popen(
            ["/bin/bash", "-c", command], cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, pass_fds=fds
        )
        try:
            code = proc.wait()
        except Terminated:
            proc.terminate()  # bash shares our process group: it has had the signal too
            raise
        if code == 0:
            return {"ok": True, "exit_code": 0}, b""
        if code < 0:
            error = f"the command was killed by {describe_signal(-code)}"
            return {"ok": False, "exit_code": code, "error_kind": "signal", "error": error}, b""
        error = f"command exited with code {code}"
        return {"ok": False, "exit_code": code, "error_kind": "exit_code", "error": error}, b""


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

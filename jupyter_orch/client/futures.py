"""Futures: a handle on one task, like ``concurrent.futures.Future`` but for a task that
runs elsewhere and survives the client (its ``id`` works in the REST API and the CLI).

Nothing is unpickled until ``result()`` or ``exception()`` asks for it.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import OrchError
from ..serialization import loads_value
from .views import TaskInfo

if TYPE_CHECKING:
    from .client import Client

TERMINAL = {"succeeded", "failed", "cancelled", "upstream_failed"}


class RemoteError(Exception):
    """A task failed on its worker; ``traceback`` is the remote traceback text."""

    def __init__(
        self, message: str, *, task_id: str = "", error_kind: str | None = None, traceback: str | None = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.error_kind = error_kind
        self.traceback = traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.traceback:
            return f"{text}\n\nRemote traceback (task {self.task_id}):\n{self.traceback.rstrip()}"
        return text


class TaskFailed(RemoteError):
    """The task failed and its exception could not be rebuilt here (or it has none)."""


class TaskCancelled(RemoteError, concurrent.futures.CancelledError):
    """The task was cancelled."""


class RemoteTraceback(Exception):
    """Attached as ``__cause__`` of a re-raised remote exception: the worker's traceback."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb.rstrip()}\n"""'


class Future:
    def __init__(self, client: Client, task_id: str, name: str = "") -> None:
        self.client = client
        self.id = task_id
        self.name = name
        self._event = threading.Event()
        self._accepted = threading.Event()  # the server has committed the task
        self._view: dict[str, Any] | None = None
        self._blob: bytes | None = None
        self._error: BaseException | None = None  # the submit itself was refused
        self._callbacks: list[Callable[[Future], None]] = []
        self._lock = threading.Lock()
        self.save_to: str | None = None  # a notebook task's executed notebook goes there

    def __repr__(self) -> str:
        return f"<jupyter_orch.Future {self.id} {self.name or ''} {self.status}>".replace("  ", " ")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """In a notebook, the registered "future" view (the kernel's live status: state,
        time, latest output line); plain text elsewhere."""
        from .display import notebook_factory

        factory = notebook_factory("future")
        if factory is None:
            return {"text/plain": repr(self)}
        return dict(factory(self)._repr_mimebundle_(**kwargs))

    @property
    def last_view(self) -> dict[str, Any] | None:
        """The task view that finished this future (None while it runs)."""
        return self._view

    # -- fed by the client ------------------------------------------------------------
    def _set_done(
        self, view: dict[str, Any] | None, blob: bytes | None = None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._view, self._blob, self._error = view, blob, error
            self._event.set()
            self._accepted.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb(self)
            except Exception:
                pass

    def add_done_callback(self, fn: Callable[[Future], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    # -- public -----------------------------------------------------------------------
    def done(self) -> bool:
        return self._event.is_set()

    @property
    def status(self) -> str:
        """The task's state now: pending, scheduled, running, succeeded, failed, ..."""
        if self._error is not None:
            return "rejected"
        if self._view is not None:
            return str(self._view["state"])
        return str(self.info()["state"])

    def accepted(self, timeout: float | None = None) -> bool:
        """Block until the server has stored the task (submits are sent in the background)."""
        if not self._accepted.wait(self.client.api.timeout if timeout is None else timeout):
            return False
        if self._error is not None:
            raise self._error
        return True

    def _server_side(self) -> None:
        if not self.accepted():
            raise TimeoutError(f"the server has not acknowledged task {self.id}; is it reachable?")

    def info(self) -> TaskInfo:
        """The task as the server describes it (attempts included): a dict of the API's
        values (times in epoch seconds, sizes in bytes) that shows itself with local times,
        durations and sizes."""
        self._server_side()
        return TaskInfo(self.client.api.get(f"/tasks/{self.id}"))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends; False if ``timeout`` passed first."""
        return self.client._wait(self, timeout)

    def result(self, timeout: float | None = None) -> Any:
        if not self.wait(timeout):
            raise TimeoutError(f"task {self.id} did not finish within {timeout} s (it is {self.status})")
        if self._error is not None:
            raise self._error
        assert self._view is not None
        if self._view["state"] != "succeeded":
            raise self._exception()
        if not self._view.get("has_result"):
            return None
        if self._blob is None:
            self._blob = self.client._fetch_result(self.id)
        if self._view.get("kind") == "notebook":  # JSON, never a pickle
            from .notebooks import read_result

            result = read_result(self._blob)
            if self.save_to:
                result.save(self.save_to)
            return result
        return loads_value(self._blob)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.wait(timeout):
            raise TimeoutError(f"task {self.id} did not finish within {timeout} s")
        if self._error is not None:
            return self._error
        assert self._view is not None
        return None if self._view["state"] == "succeeded" else self._exception()

    def _exception(self) -> BaseException:
        view = self._view or {}
        state, error = view.get("state"), view.get("error") or ""
        kind, tb = view.get("error_kind"), view.get("traceback")
        if state == "cancelled":
            return TaskCancelled(f"task {self.id} was cancelled", task_id=self.id, error_kind=kind)
        if view.get("kind") == "notebook" and state == "failed":
            return self._notebook_failure(error, kind, tb)
        if kind == "exception" and view.get("has_result"):
            try:
                if self._blob is None:
                    self._blob = self.client._fetch_result(self.id)
                exc = loads_value(self._blob)
                if isinstance(exc, BaseException):
                    exc.__cause__ = RemoteTraceback(tb or error)
                    return exc
            except Exception:
                pass
        what = "could not run: its dependency failed" if state == "upstream_failed" else "failed"
        return TaskFailed(f"task {self.id} {what}: {error}", task_id=self.id, error_kind=kind, traceback=tb)

    def _notebook_failure(self, error: str, kind: Any, tb: Any) -> BaseException:
        from .notebooks import NotebookFailed, read_result

        failed = NotebookFailed(
            f"notebook task {self.id} failed: {error}", task_id=self.id, error_kind=kind, traceback=tb
        )
        if (self._view or {}).get("has_result"):
            try:
                if self._blob is None:
                    self._blob = self.client._fetch_result(self.id)
                partial = read_result(self._blob)
                failed.notebook = partial.notebook
                if self.save_to:
                    partial.save(self.save_to)
            except Exception:
                pass
        return failed

    def cancel(self) -> bool:
        """Ask the server to cancel the task; False if it had already finished."""
        self._server_side()
        try:
            view = self.client.api.post(f"/tasks/{self.id}/cancel")
        except OrchError as exc:
            if exc.code == "wrong_state":
                return False
            raise
        self._set_done(view)
        return True

    def cancelled(self) -> bool:
        return self.done() and self._view is not None and self._view.get("state") == "cancelled"

    def logs(self, attempt: int | None = None) -> str:
        """The task's output so far (stdout and stderr, in order)."""
        self._server_side()
        from .logstream import plain_text

        data = self.client.api.get(f"/tasks/{self.id}/logs", attempt=attempt)
        texts = [plain_text(line) for line in data["lines"]]
        return "".join(t if t.endswith("\n") else t + "\n" for t in texts)

    def metrics(
        self,
        *,
        frame: bool = False,
        attempt: int | None = None,
        group: str | None = None,
        names: str | Sequence[str] | None = None,
    ) -> Any:
        """What the task reported with ``jupyter_orch.report`` so far: a list of records
        (``attempt, offset, ts, step, group`` and one key per metric), or a pandas DataFrame
        with ``frame=True``; only ``attempt``'s, ``group``'s or these ``names`` when given."""
        self._server_side()
        from .metrics import read_metrics

        return read_metrics(self.client.api, self.id, frame=frame, attempt=attempt, group=group, names=names)

    def checkpoints(self) -> list[dict[str, Any]]:
        """The checkpoints the task saved (``jupyter_orch.checkpoint.save``), oldest first:
        ``id, attempt, step, metadata, size`` (bytes), ``files, created, url``."""
        self._server_side()
        return list(self.client.api.get(f"/tasks/{self.id}/checkpoints")["checkpoints"])

    def elapsed(self) -> float | None:
        view = self._view or {}
        start = view.get("started_at")
        return None if not start else (view.get("ended_at") or time.time()) - start

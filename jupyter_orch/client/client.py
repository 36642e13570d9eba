"""``jupyter_orch.connect()`` and the :class:`Client`: submit functions and shell commands
to workers, get futures back, list workers.

Options that shape the task (``gpus``, ``cpus``, ``memory``, ...) are keyword-only
arguments of ``submit``; every other keyword goes to the function, as in Dask.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..cells.job import CellJob
from ..core.errors import SpecError, TooLarge
from ..core.ids import new_id
from ..core.notebooktask import notebook_spec, task_fields
from ..core.spec import TaskSpec
from ..discovery import locate
from ..serialization import dumps_call, environment
from . import handoff
from .futures import Future
from .http import HttpApi
from .session import SessionChannel
from .tracking import FutureTable
from .views import Workers

if TYPE_CHECKING:
    from .runs import RunHandle
    from .search import Search

_clients: dict[tuple[str, str | None], Client] = {}
_clients_lock = threading.Lock()


def connect(url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> Client:
    """A client for the orchestrator at ``url`` (default: ``JUPYTER_ORCH_URL``, which a
    kernel of a server with the extension has, else the server running on this machine as its
    ``server.json`` names it). The same URL and token give the same client.

    No server to be found, or one that its ``server.json`` names but is not running: a
    :class:`~jupyter_orch.discovery.NoServer` (a ``RuntimeError``) saying so in one sentence."""
    if token is None:
        token = os.environ.get("JUPYTER_ORCH_TOKEN")
    found = locate(url, token)
    key = (found.url.rstrip("/"), found.token)
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.closed:
            client = _clients[key] = Client(found.url, found.token, timeout=timeout, origin=found.source)
    return client


def close_all() -> None:
    """Close every client ``connect()`` made (a worker's executor does this after each task:
    a task's clients hold its own, now expired, token)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


class Client:
    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 60.0, origin: Any = None
    ) -> None:
        self.api = HttpApi(url, token, timeout=timeout, origin=origin)
        self.info = self.api.get("/info")  # fails fast, in one clear line, when unreachable
        self.max_payload = int(self.info.get("max_payload_bytes") or 0)
        self._table = FutureTable()  # our futures; what the session reports settles them
        self._lock = threading.Lock()  # guards making the session
        self._session: SessionChannel | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"<jupyter_orch.Client {self.api.url} owner={self.info.get('owner')}>"

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        """A client travels as "connect() there": inside a task that is the task's own
        credentials (a notebook's client used in a remote cell), never this one's token."""
        return (connect, ())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def session(self) -> SessionChannel:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = SessionChannel(self.api, self._table)
        return self._session

    def close(self) -> None:
        self.closed = True
        if self._session is not None:
            self._session.close()

    # ---------------------------------------------------------------- submitting
    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        gpus: int = 0,
        cpus: float = 1,
        memory: str | int | None = None,
        gpu_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        priority: int = 0,
        preemptible: bool = False,
        retries: int = 0,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Future:
        """Run ``fn(*args, **kwargs)`` on a worker. Futures among the arguments become
        dependencies: the task waits for them and receives their values."""
        if not callable(fn):
            raise TypeError(f"submit needs a callable, not {type(fn).__name__}")
        payload, depends = dumps_call(fn, args, kwargs, resolve=self._future_id)
        fname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
        module = getattr(fn, "__module__", None)
        spec = {
            "id": new_id(),
            "kind": "function",
            "name": name or fname,
            **_task_fields(
                cpus,
                memory,
                gpus,
                gpu_type,
                labels,
                image,
                priority,
                retries,
                retry_backoff,
                timeout,
                env,
                preemptible=preemptible,
            ),
            "depends": depends,
            "metadata": {"function": f"{module}.{fname}" if module else fname, "client_env": environment()},
        }
        return self._submit(spec, payload)

    def submit_shell(
        self,
        command: str,
        *,
        gpus: int = 0,
        cpus: float = 1,
        memory: str | int | None = None,
        gpu_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        priority: int = 0,
        preemptible: bool = False,
        retries: int = 0,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        depends: Iterable[Future | str] = (),
    ) -> Future:
        """Run a shell command line on a worker; the result is None, the output its log."""
        spec = {
            "id": new_id(),
            "kind": "shell",
            "name": name,
            "command": command,
            **_task_fields(
                cpus,
                memory,
                gpus,
                gpu_type,
                labels,
                image,
                priority,
                retries,
                retry_backoff,
                timeout,
                env,
                preemptible=preemptible,
            ),
            "depends": [d.id if isinstance(d, Future) else d for d in depends],
        }
        return self._submit(spec, None)

    def submit_cell(
        self,
        job: CellJob,
        *,
        gpus: int = 0,
        cpus: float = 1,
        memory: str | int | None = None,
        gpu_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        priority: int = 0,
        preemptible: bool = False,
        retries: int = 0,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Future:
        """Run a notebook cell on a worker (what ``%%orch run`` sends); the result is a
        :class:`~jupyter_orch.cells.job.CellResult`. An input that cannot be pickled is named
        in the error before anything is sent."""
        from ..cells.runner import run_cell

        try:
            payload, depends = dumps_call(run_cell, (job,), {}, resolve=self._future_id)
        except Exception as exc:
            raise _unpicklable_input(job, exc) from None
        spec = {
            "id": new_id(),
            "kind": "cell",
            "name": name or job.filename.strip("<>"),
            **_task_fields(
                cpus,
                memory,
                gpus,
                gpu_type,
                labels,
                image,
                priority,
                retries,
                retry_backoff,
                timeout,
                env,
                preemptible=preemptible,
            ),
            "depends": depends,
            "metadata": {"cell": job.filename, "client_env": environment()},
        }
        return self._submit(spec, payload)

    def run_notebook(
        self,
        path: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        kernel: str | None = None,
        output: str | None = None,
        gpus: int = 0,
        cpus: float = 1,
        memory: str | int | None = None,
        gpu_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        priority: int = 0,
        preemptible: bool = False,
        retries: int = 0,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Future:
        """Execute a notebook on a worker with papermill ``parameters``; the future's result
        is a ``NotebookResult`` (executed notebook, recorded outputs), saved to ``output``
        when that is given."""
        from . import notebooks

        body = notebooks.payload(path, dict(parameters or {}), kernel)
        fields = _task_fields(
            cpus,
            memory,
            gpus,
            gpu_type,
            labels,
            image,
            priority,
            retries,
            retry_backoff,
            timeout,
            env,
            preemptible=preemptible,
        )
        spec = notebook_spec(os.path.abspath(path), name or os.path.basename(path), parameters, fields)
        fut = self._submit(spec, body)
        fut.save_to = output
        return fut

    def _submit(self, spec: dict[str, Any], payload: bytes | None) -> Future:
        spec = {k: v for k, v in spec.items() if v is not None}
        TaskSpec.from_dict(spec)  # bad input fails here, naming the field, before anything is sent
        if payload is not None and self.max_payload and len(payload) > self.max_payload:
            raise TooLarge(
                f"the pickled call is {len(payload)} bytes, over the server's limit of {self.max_payload}; "
                "pass large data through files or a dataset path instead",
                field="payload",
            )
        fut = Future(self, spec["id"], spec.get("name") or spec.get("command", ""))
        self._table.add(fut)
        session = self.session
        offer = session.handoff
        if payload is not None and offer is not None and len(payload) >= offer.get("min_size", 1 << 20):
            # the server's disk is ours too: the payload goes there, not over the connection
            if handoff.place(offer, spec["id"], payload):
                spec["payload_file"], payload = True, None
        session.submit(spec, payload)
        return fut

    def _future_id(self, obj: Any) -> str | None:
        return obj.id if isinstance(obj, Future) else None

    # ---------------------------------------------------------------- futures plumbing
    def future(self, task_id: str) -> Future:
        """A future for an existing task (e.g. an id from the CLI or the sidebar)."""

        def make() -> Future:
            fut = Future(self, task_id)
            fut._accepted.set()  # it exists already (an unknown id comes back as an error)
            return fut

        fut, made = self._table.existing(task_id, make)
        if made:
            self.session.watch([task_id])
        return fut

    def _wait(self, fut: Future, timeout: float | None) -> bool:
        return fut._event.wait(timeout)

    def _fetch_result(self, task_id: str) -> bytes:
        data, _ = self.api.request("GET", f"/tasks/{task_id}/result", raw=True)
        return data

    def submit_workflow(
        self, workflow: str | os.PathLike[str] | Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> RunHandle:
        """Run a workflow file (checked here first; its notebooks are sent with it) or a
        workflow document with ``params`` overriding its defaults."""
        from .runs import RunHandle, request_for

        source = workflow if isinstance(workflow, Mapping) else os.fspath(workflow)
        return RunHandle(self.api, self.api.post("/workflows", request_for(source, params)))

    def search(
        self,
        fn: Callable[..., Any],
        space: Mapping[str, Any],
        *args: Any,
        metric: str,
        mode: str = "min",
        scheduler: str = "asha",
        max_trials: int | None = None,
        max_concurrent: int = 4,
        max_t: int | None = None,
        grace_period: int = 1,
        reduction_factor: float = 3,
        group: str | None = None,
        seed: int = 0,
        name: str | None = None,
        gpus: int = 0,
        cpus: float = 1,
        memory: str | int | None = None,
        gpu_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
        priority: int = 0,
        preemptible: bool = False,
        retries: int = 0,
        retry_backoff: float | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Search:
        """Search ``space`` (``{"lr": jupyter_orch.loguniform(1e-4, 1e-1), "width": [64, 128]}``)
        for the parameters that give ``fn`` the best ``metric`` (what it reports with
        ``jupyter_orch.report(step=..., **metrics)``). Each trial is a task running
        ``fn(*args, **kwargs, **params)`` with the task options of :meth:`submit`; ``asha``
        stops the unpromising ones early (it needs ``max_t``, the last step a trial reports).
        The server runs the search (across its restarts); the returned :class:`Search`
        waits for it (``.result()``) and shows its trials."""
        from .search import Search, search_request

        settings = {
            "name": name,
            "metric": metric,
            "mode": mode,
            "scheduler": scheduler,
            "max_trials": max_trials,
            "max_concurrent": max_concurrent,
            "max_t": max_t,
            "grace_period": grace_period,
            "reduction_factor": reduction_factor,
            "group": group,
            "seed": seed,
        }
        task = _task_fields(
            cpus,
            memory,
            gpus,
            gpu_type,
            labels,
            image,
            priority,
            retries,
            retry_backoff,
            timeout,
            env,
            preemptible=preemptible,
        )
        body = search_request(fn, space, args, kwargs, settings, task)
        return Search(self.api, self.api.post("/searches", body))

    def searches(self, limit: int = 100) -> list[dict[str, Any]]:
        """This user's hyperparameter searches, newest first (without their trials)."""
        return list(self.api.get("/searches", limit=limit)["searches"])

    def get_search(self, search_id: str) -> Search:
        """A handle on an existing search."""
        from .search import Search

        return Search(self.api, self.api.get(f"/searches/{search_id}"))

    def run(self, run_id: str) -> RunHandle:
        """A handle on an existing workflow run."""
        from .runs import RunHandle as Handle

        return Handle(self.api, self.api.get(f"/workflows/{run_id}"))

    def runs(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.api.get("/workflows", state=state, limit=limit)["runs"])

    # ---------------------------------------------------------------- queries
    def workers(self) -> Workers:
        """The workers this caller may see: a list of dicts of the API's values (``memory``
        in bytes, times in epoch seconds) that shows itself as a table with sizes and times."""
        return Workers(self.api.get("/workers")["workers"])

    def tasks(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.api.get("/tasks", state=state, limit=limit)["tasks"])

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self.api.post(f"/tasks/{task_id}/cancel")

    def metrics(
        self,
        task_id: str,
        *,
        frame: bool = False,
        attempt: int | None = None,
        group: str | None = None,
        names: str | Sequence[str] | None = None,
    ) -> Any:
        """What task ``task_id`` reported with ``jupyter_orch.report`` (see :meth:`Future.metrics`)."""
        from .metrics import read_metrics

        return read_metrics(self.api, task_id, frame=frame, attempt=attempt, group=group, names=names)

    def retry(self, task_id: str) -> Future:
        view = self.api.post(f"/tasks/{task_id}/retry")
        self._table.forget(task_id)
        return self.future(view["id"])


class UnpicklableInput(SpecError):
    """A cell input that cannot be sent to a worker (``field`` is ``inputs.<name>``)."""


def _unpicklable_input(job: CellJob, error: Exception) -> Exception:
    """The first input of ``job`` that does not pickle, named, with what to do about it."""
    import cloudpickle

    for name, value in job.inputs.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return UnpicklableInput(
                f"cannot send {name!r} (a {type(value).__name__}) to the worker: {exc}. "
                "Leave it out with --in, or create it inside the cell.",
                field=f"inputs.{name}",
            )
    return error


_task_fields = task_fields  # the spec fields every kind of task shares (core.notebooktask)

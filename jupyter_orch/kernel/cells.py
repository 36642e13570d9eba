"""``%%orch run``: a notebook cell sent to a worker as a ``cell`` task.

What goes: the names the cell reads that exist in the user namespace (modules as "import
it again there"), or those of ``--in``. What comes back: the names it assigns at top level,
or those of ``--out``, bound in the user namespace; the last expression's value is the
magic's value, so the notebook shows it as the cell's ``Out[n]``. While it runs, its output
streams into the cell; an interrupt cancels the task.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from ..cells.analysis import analyse
from ..cells.job import CellJob, CellResult
from ..client.futures import Future, RemoteError
from .output import reason_key, show_line, waiting_text

# IPython's own bookkeeping names are never inputs
_HIDDEN = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_", "__", "___", "_ih", "_oh", "_dh", "_i"})


@dataclass
class CellOptions:
    gpus: int = 0
    cpus: float = 1
    memory: str | None = None
    gpu_type: str | None = None
    image: str | None = None
    name: str | None = None
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    retries: int = 0
    timeout: float | None = None
    run_async: bool = False
    bind_as: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


class InputError(ValueError):
    """A name given to ``--in`` that the notebook does not define."""


def build_job(user_ns: dict[str, Any], body: str, options: CellOptions, filename: str) -> CellJob:
    code = analyse(body, first_line=2)
    if options.inputs is not None:
        missing = [n for n in options.inputs if n not in user_ns]
        if missing:
            raise InputError(
                f"--in: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not defined here"
            )
        names = list(options.inputs)
    else:
        names = [n for n in code.reads if n in user_ns and not _hidden(n, user_ns[n])]
    inputs: dict[str, Any] = {}
    modules: dict[str, str] = {}
    for name in names:
        value = user_ns[name]
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        else:
            inputs[name] = value
    outputs = tuple(options.outputs) if options.outputs is not None else code.assigns
    return CellJob(
        source=body,
        filename=filename,
        first_line=2,
        inputs=inputs,
        modules=modules,
        outputs=outputs,
        display_last=code.displays_last,
    )


def _hidden(name: str, value: Any) -> bool:
    if (
        name in _HIDDEN
        or (name.startswith("_i") and name[2:].isdigit())
        or (name[:1] == "_" and name[1:].isdigit())
    ):
        return True
    return isinstance(value, CellHandle)


class CellHandle:
    """A cell running elsewhere (``%%orch run --async``): ``result()`` waits, binds the
    cell's outputs in the notebook and returns its last value."""

    def __init__(self, future: Future, user_ns: dict[str, Any], view: Any = None) -> None:
        self.future = future
        self.view = view  # a live TaskStatusView, shown when the handle is displayed
        self._user_ns = user_ns
        self._bound = False
        self._value: Any = None

    @property
    def id(self) -> str:
        return self.future.id

    @property
    def status(self) -> str:
        return self.future.status

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> bool:
        return self.future.cancel()

    def logs(self) -> str:
        return self.future.logs()

    def result(self, timeout: float | None = None) -> Any:
        if not self._bound:
            try:
                result: CellResult = self.future.result(timeout)
            except (RemoteError, TimeoutError) as exc:
                self._show_final()
                raise readable(exc, self.future) from None
            self._show_final()
            self._value = bind(self._user_ns, result)
            self._bound = True
        return self._value

    def _show_final(self) -> None:
        if self.view is not None and self.future._view is not None:
            self.view.set_task(self.future._view)  # the view agrees with what result() saw

    def __repr__(self) -> str:
        return f"<jupyter_orch cell task {self.id} {self.future.name} {self.status}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        if self.view is None:
            return {"text/plain": repr(self)}
        return self.view._repr_mimebundle_(**kwargs)


def bind(user_ns: dict[str, Any], result: CellResult) -> Any:
    """Put the cell's outputs into the notebook; the value to show (None: nothing)."""
    for name, module in result.modules.items():
        try:
            user_ns[name] = importlib.import_module(module)
        except ImportError as exc:
            print(
                f"jupyter-orch: {name!r} is module {module!r}, which this kernel cannot import: {exc}",
                file=sys.stderr,
            )
    user_ns.update(result.outputs)
    if result.value_bundle is not None:
        from IPython.display import publish_display_data

        publish_display_data(result.value_bundle.get("data") or {}, {})
        return None
    return result.value if result.has_value else None


def follow(future: Future) -> None:
    """Show the task's output in this cell until it ends; an interrupt cancels the task."""
    from ..client.logstream import LogFollow
    from .metricplot import MetricPlot, cell_display, warm_up

    said: set[str] = set()

    def explain(task: dict[str, Any]) -> None:
        """Say once why a task waits (no worker fits it, a worker is being started, its
        place in line, and again once it is next)."""
        reason = task.get("reason")
        if task.get("state") == "running":
            warm_up()  # the plot's first draw, if it reports, need not wait for matplotlib
        if task.get("state") != "pending" or not reason or reason_key(reason) in said:
            return
        said.add(reason_key(reason))
        print(f"jupyter-orch: task {future.id} is {waiting_text(reason)}", file=sys.stderr, flush=True)

    plot = MetricPlot(cell_display(), title=f"task {future.id}")  # drawn once a metric arrives
    try:
        future.accepted()  # the server has the task (a submit is sent in the background)
        stream = LogFollow(future.client.api, future.id, on_state=explain, on_metrics=plot.add)
        for line in stream:
            show_line(line)
            plot.maybe_draw()
        plot.finish()
    except KeyboardInterrupt:
        plot.finish()
        try:
            cancelled = future.cancel()
        except Exception as exc:  # the interrupt is what the user sees; say what became of it
            print(f"\njupyter-orch: interrupted; could not cancel task {future.id}: {exc}", file=sys.stderr)
        else:
            what = "cancelled" if cancelled else "had already finished"
            print(f"\njupyter-orch: interrupted; task {future.id} {what}", file=sys.stderr)
        raise


def readable(exc: BaseException, future: Future) -> BaseException:
    """``exc`` as the notebook should show it: the remote traceback, whose frames are the
    cell's own lines, instead of this module's."""
    view = future._view or {}
    tb = view.get("traceback")
    if tb:
        header = f"Remote traceback (task {future.id}):"
        lines = [header, *str(tb).rstrip("\n").splitlines()]
    else:
        lines = [f"{type(exc).__name__}: {exc}"]
    try:
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]  # IPython shows these lines
    except (AttributeError, TypeError):
        pass
    return exc


def result_of(future: Future, user_ns: dict[str, Any]) -> Any:
    """Wait for the cell task, bind its outputs; raise its error readably."""
    try:
        result: CellResult = future.result()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise readable(exc, future) from None
    return bind(user_ns, result)

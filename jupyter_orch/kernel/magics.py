"""The ``%%orch`` cell magic and ``%orch`` line magics.

``%%orch run [options]`` runs the cell on a worker (:mod:`.cells`); ``%orch status [ID]``,
``logs ID [-f]``, ``cancel ID`` and ``workers`` look at the orchestrator from the notebook;
``%orch notebook PATH`` runs a notebook and ``%orch workflow FILE`` a workflow (a live DAG).
Bad options print the usage line (IPython's ``UsageError``: no traceback).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..client.futures import RemoteError
from ..core.errors import OrchError
from . import cells
from .output import show_line

RUN_USAGE = (
    "%%orch run [--gpus N] [--cpus N] [--memory 8Gi] [--gpu-type T] [--image IMG] [--name NAME] "
    "[--in a,b] [--out x,y] [--retries N] [--timeout S] [--label k=v] [--async [--as NAME]]"
)
LINE_USAGE = (
    "%orch status [ID] | logs ID [-f] | cancel ID | workers | notebook PATH [-p NAME VALUE] "
    "| workflow FILE [-p NAME VALUE] [--wait]"
)
NOTEBOOK_USAGE = (
    "%orch notebook PATH [-p NAME VALUE ...] [--gpus N] [--cpus N] [--memory 8Gi] [--kernel K] [--output OUT]"
)
WORKFLOW_USAGE = "%orch workflow FILE [-p NAME VALUE ...] [--wait]"
NO_SERVER = (
    "no jupyter-orch server is reachable: start one with `jupyter orch serve`, or run this "
    "notebook in a JupyterLab that has the jupyter-orch extension"
)


class _Parser(argparse.ArgumentParser):
    def __init__(self, usage: str, **kwargs: Any) -> None:
        super().__init__(prog="%orch", usage=usage, add_help=False, **kwargs)
        self._usage_line = usage

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nusage: {self._usage_line}")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise argparse.ArgumentTypeError(f"not a variable name: {', '.join(bad)}")
    return names


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    return key, value


def _run_parser() -> _Parser:
    p = _Parser(RUN_USAGE)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--cpus", type=float, default=1)
    p.add_argument("--memory")
    p.add_argument("--gpu-type", dest="gpu_type")
    p.add_argument("--image")
    p.add_argument("--name")
    p.add_argument("--in", dest="inputs", type=_names)
    p.add_argument("--out", dest="outputs", type=_names)
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--timeout", type=float)
    p.add_argument("--label", dest="labels", type=_label, action="append", default=[])
    p.add_argument("--async", dest="run_async", action="store_true")
    p.add_argument("--as", dest="bind_as")
    return p


def parse_run(line: str) -> cells.CellOptions:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{exc}\nusage: {RUN_USAGE}") from None
    ns = _run_parser().parse_args(words)
    if ns.bind_as is not None and not ns.bind_as.isidentifier():
        raise UsageError(f"argument --as: not a variable name: {ns.bind_as!r}\nusage: {RUN_USAGE}")
    if ns.gpus < 0 or ns.cpus <= 0 or ns.retries < 0 or (ns.timeout is not None and ns.timeout <= 0):
        raise UsageError(
            f"--gpus and --retries must be 0 or more, --cpus and --timeout above 0\nusage: {RUN_USAGE}"
        )
    values = vars(ns)
    values["labels"] = dict(values["labels"])
    return cells.CellOptions(**values)


def prompt_number(shell: Any) -> int:
    """The ``In [n]`` of the cell running now. IPython counts a cell before running it, so
    while it runs ``shell.execution_count`` is already the next cell's number; the running
    cell's own number is on the ``ExecutionResult`` the display hook holds for it."""
    running = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(running, "execution_count", None)
    return number if isinstance(number, int) else int(shell.execution_count)


@magics_class
class OrchMagics(Magics):
    @line_cell_magic
    def orch(self, line: str, cell: str | None = None) -> Any:
        """Run a cell on a worker (``%%orch run ...``) or look at the orchestrator
        (``%orch status|logs|cancel|workers``)."""
        command, _, rest = line.strip().partition(" ")
        if cell is not None:
            if command != "run":
                raise UsageError(f"unknown %%orch command {command!r}\nusage: {RUN_USAGE}")
            return self._run(rest, cell)
        handler = getattr(self, f"_line_{command}", None)
        if not command or handler is None:
            raise UsageError(f"unknown %orch command {command!r}\nusage: {LINE_USAGE}")
        return handler(rest)

    # ---------------------------------------------------------------- %%orch run
    def _run(self, line: str, body: str) -> Any:
        options = parse_run(line)
        shell = self.shell
        assert shell is not None
        user_ns = shell.user_ns
        filename = f"<orch In[{prompt_number(shell)}]>"
        try:
            job = cells.build_job(user_ns, body, options, filename)
        except cells.InputError as exc:
            raise UsageError(f"{exc}\nusage: {RUN_USAGE}") from None
        client = _client()
        try:
            future = client.submit_cell(
                job,
                gpus=options.gpus,
                cpus=options.cpus,
                memory=options.memory,
                gpu_type=options.gpu_type,
                labels=options.labels,
                image=options.image,
                retries=options.retries,
                timeout=options.timeout,
                name=options.name,
            )
        except OrchError as exc:  # a bad field or an input that cannot be pickled: one line
            raise UsageError(str(exc)) from None
        if options.run_async:
            from .widgets import TaskStatusView

            handle = cells.CellHandle(future, user_ns, TaskStatusView(future))
            if options.bind_as:
                user_ns[options.bind_as] = handle
            return handle  # shown as the live view; IPython binds it to _
        try:
            cells.follow(future)
        except OrchError as exc:  # the server refused the task (or lost it): one line
            raise UsageError(f"the server refused the cell: {exc}") from None
        return cells.result_of(future, user_ns)

    # ---------------------------------------------------------------- %orch ...
    def _line_status(self, rest: str) -> None:
        from ..client import render

        api = _client().api
        task_id = rest.strip()
        console = render.console()
        if task_id:
            console.print(render.task_detail(_get(api, f"/tasks/{task_id}")))
            return
        tasks = _get(api, "/tasks", limit=20)["tasks"]
        names = {w["id"]: w["name"] for w in _get(api, "/workers")["workers"]}
        console.print(render.tasks_table(tasks, names) if tasks else "no tasks yet")

    def _line_logs(self, rest: str) -> None:
        words = rest.split()
        follow_flag = "-f" in words or "--follow" in words
        ids = [w for w in words if not w.startswith("-")]
        if len(ids) != 1:
            raise UsageError(f"%orch logs needs one task id\nusage: {LINE_USAGE}")
        client = _client()
        future = client.future(ids[0])
        if follow_flag:
            from ..client.logstream import LogFollow

            try:
                for line in LogFollow(client.api, future.id):
                    show_line(line)
            except KeyboardInterrupt:
                print("\n(stopped following; the task goes on)", file=sys.stderr)
            return
        data = _get(client.api, f"/tasks/{future.id}/logs")
        for line in data["lines"]:
            show_line(line)
        if not data["lines"]:
            print(f"(no output yet; task is {data['state']})", file=sys.stderr)

    def _line_cancel(self, rest: str) -> None:
        task_id = rest.strip()
        if not task_id or " " in task_id:
            raise UsageError(f"%orch cancel needs one task id\nusage: {LINE_USAGE}")
        try:
            view = _client().api.post(f"/tasks/{task_id}/cancel")
        except OrchError as exc:
            raise UsageError(str(exc)) from None
        print(f"task {task_id} {view['state']}")

    def _line_workers(self, rest: str) -> None:
        from ..client import render

        data = _get(_client().api, "/workers")
        if not data["workers"]:
            hint = (data.get("provider") or {}).get(
                "hint"
            ) or "workers start with the server (provider local)"
            print(f"no workers connected. {hint}")
            return
        render.console().print(render.workers_table(data["workers"]))

    def _line_notebook(self, rest: str) -> Any:
        """``%orch notebook PATH [-p NAME VALUE ...] [--gpus N] [--kernel K] [--output OUT]``:
        run a notebook on a worker, its progress shown here; the value is its result."""
        try:
            words = shlex.split(rest)
        except ValueError as exc:
            raise UsageError(f"{exc}\nusage: {NOTEBOOK_USAGE}") from None
        p = _Parser(NOTEBOOK_USAGE)
        p.add_argument("path")
        p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
        p.add_argument("--gpus", type=int, default=0)
        p.add_argument("--cpus", type=float, default=1)
        p.add_argument("--memory")
        p.add_argument("--kernel")
        p.add_argument("--output")
        ns = p.parse_args(words)
        from ..client.notebooks import param_value

        params = {name: param_value(text) for name, text in ns.param}
        client = _client()
        try:
            future = client.run_notebook(
                ns.path,
                params,
                kernel=ns.kernel,
                output=ns.output,
                gpus=ns.gpus,
                cpus=ns.cpus,
                memory=ns.memory,
            )
            cells.follow(future)
        except OrchError as exc:
            raise UsageError(str(exc)) from None
        try:
            return future.result()
        except RemoteError as exc:
            raise cells.readable(exc, future) from None

    def _line_workflow(self, rest: str) -> Any:
        """``%orch workflow FILE [-p NAME VALUE ...] [--wait]``: run a workflow file, shown
        here as a live DAG; the value is the run's handle (``--wait``: once it has ended)."""
        try:
            words = shlex.split(rest)
        except ValueError as exc:
            raise UsageError(f"{exc}\nusage: {WORKFLOW_USAGE}") from None
        p = _Parser(WORKFLOW_USAGE)
        p.add_argument("path")
        p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
        p.add_argument("--wait", action="store_true")
        ns = p.parse_args(words)
        from ..client.notebooks import param_value
        from ..workflows.loader import WorkflowFileInvalid
        from .dag import show_run

        params = {name: param_value(text) for name, text in ns.param}
        client = _client()
        try:
            handle = client.submit_workflow(ns.path, params)
        except WorkflowFileInvalid as exc:  # every problem, file:line:col, and no traceback
            count = f"{len(exc.details)} problems" if len(exc.details) > 1 else "1 problem"
            raise UsageError(
                f"{ns.path} is not a valid workflow ({count}):\n" + "\n".join(exc.details)
            ) from None
        except FileNotFoundError as exc:
            raise UsageError(f"no workflow file at {exc.filename or ns.path}") from None
        except OrchError as exc:
            raise UsageError(str(exc)) from None
        try:
            view = show_run(handle)
            if ns.wait:
                handle.wait()
                view.join(30)  # its last drawing belongs to this cell
        except KeyboardInterrupt:
            if ns.wait:  # as with a cell or a notebook: stopping the wait stops the run
                try:
                    handle.cancel()
                    said = "cancelled"
                except Exception as exc:  # the interrupt is what the user sees; say what became of it
                    said = f"could not be cancelled: {exc}"
                print(f"\njupyter-orch: interrupted; workflow run {handle.id} {said}", file=sys.stderr)
            # raised afresh: the frames the interrupt landed in (deep in a socket read) are
            # not the user's, and IPython cannot always format them
            raise KeyboardInterrupt() from None
        except OrchError as exc:
            raise UsageError(str(exc)) from None
        return handle


def _client() -> Any:
    from .. import client as client_module

    try:
        return client_module.connect()
    except RuntimeError:
        raise UsageError(NO_SERVER) from None
    except OrchError as exc:
        raise UsageError(f"{NO_SERVER} ({exc})") from None


def _get(api: Any, path: str, **query: Any) -> Any:
    try:
        return api.get(path, **query)
    except OrchError as exc:
        raise UsageError(str(exc)) from None

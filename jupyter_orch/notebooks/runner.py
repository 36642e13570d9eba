"""Runs a notebook task on a worker (inside the slot's executor process).

Parameters are injected by papermill after the cell tagged ``parameters`` (strings quoted,
types kept); cells are executed by nbclient in a kernel taken from a small warm pool (one
spare per kernel name, started again in the background after each use, so the next notebook
skips the kernel start); each cell start is a progress line on stderr (``cell i of n``),
and what the cells print (their ``stdout`` and ``stderr`` streams) goes to the task's own
stdout and stderr as it arrives, so the task's log shows the notebook's output live (the
executed notebook keeps it in its cells too); values recorded with ``jupyter_orch.output(name, value)`` are collected from the executed
notebook. Metrics reported with ``jupyter_orch.report(...)`` arrive as display outputs of
``METRIC_MIME`` (the kernel is told so by ``JUPYTER_ORCH_METRICS=display``): they are
handed to ``on_metric`` (the executor writes them to the worker's metrics pipe) and kept
neither in the executed notebook nor in the log. The result is JSON (never a pickle: the
server serves it as an .ipynb): ``{"notebook": <executed notebook>, "outputs": {...}}``,
for a failed run too.

Whether the run failed is papermill's verdict (``papermill.execute.raise_for_execution_errors``)
on the executed notebook: a notebook that stops itself with ``sys.exit()``, ``sys.exit(0)`` or
``raise SystemExit`` ends there successfully (its later cells are not run; the task's log
says where it stopped); any other exit code, or any other error, fails it naming the cell.
The notebook is prepared and recorded as papermill does: outputs of an earlier run and
papermill's error banners cleared first; the cell that raised (or stopped the run) marked
``metadata.papermill.exception``; a failure gets papermill's banner linking to its cell.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from .outputs import METRICS_MODE_ENV, OUTPUT_MIME, metric_point

PROGRESS = "[jupyter-orch] cell {i} of {n}"
EARLY_STOP = "[jupyter-orch] the notebook stopped itself at cell {i} of {n} ({how})"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(Exception):
    """A cell raised: ``message`` names the cell; ``result`` is the partial result JSON."""

    def __init__(self, message: str, traceback: str, result: bytes, kind: str = "exception") -> None:
        super().__init__(message)
        self.traceback = traceback
        self.result = result
        self.kind = kind


class KernelPool:
    """Pre-started kernels, one spare per kernel name (each used for one notebook)."""

    def __init__(self) -> None:
        self._spares: dict[str, Any] = {}
        self._starting: dict[str, threading.Thread] = {}
        self._retiring: list[threading.Thread] = []
        self._lock = threading.Lock()

    def take(self, kernel_name: str) -> Any:
        with self._lock:
            thread = self._starting.pop(kernel_name, None)
        if thread is not None:
            thread.join()
        with self._lock:
            km = self._spares.pop(kernel_name, None)
        if km is not None and km.is_alive():
            return km
        return _start(kernel_name)

    def refill(self, kernel_name: str) -> None:
        """Start the next spare in the background."""

        def start() -> None:
            try:
                km = _start(kernel_name)
            except Exception:
                return  # the next notebook starts its own and reports why if it cannot
            with self._lock:
                old = self._spares.pop(kernel_name, None)
                self._spares[kernel_name] = km
            if old is not None:
                _stop(old)

        thread = threading.Thread(target=start, name=f"orch-kernel-{kernel_name}", daemon=True)
        with self._lock:
            self._starting[kernel_name] = thread
        thread.start()

    def retire(self, km: Any) -> None:
        """Shut a used kernel down in the background: the task's result does not wait."""
        thread = threading.Thread(target=_stop, args=(km,), name="orch-kernel-stop", daemon=True)
        with self._lock:
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
        thread.start()

    def close(self) -> None:
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
            retiring, self._retiring = self._retiring, []
        for km in spares:
            _stop(km)
        for thread in retiring:
            thread.join(timeout=10)


def _start(kernel_name: str) -> Any:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    if sys.platform != "win32":  # local sockets: nothing on the network, and no TCP warning in the log
        km.transport = "ipc"
        km.ip = os.path.join(tempfile.mkdtemp(prefix="orch-kernel-"), "kernel")
    km.start_kernel(stdout=sys.stdout, stderr=sys.stderr)
    # its client too, connected and answered: readying one costs ~0.2 s (the IOPub check)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except RuntimeError:
        kc.stop_channels()
        _stop(km)
        raise
    km.orch_client = kc
    return km


def _stop(km: Any) -> None:
    kc = getattr(km, "orch_client", None)
    if kc is not None:
        try:
            kc.stop_channels()
        except Exception:
            pass
    try:
        km.shutdown_kernel(now=True)
    except Exception:
        pass


POOL = KernelPool()


def run_notebook(
    request: dict[str, Any],
    env: dict[str, str],
    cwd: str,
    on_metric: Callable[[Any], None] | None = None,
) -> bytes:
    """Execute ``request`` (``notebook``, ``parameters``, ``kernel``, ``name``); the result
    JSON bytes, or :class:`NotebookFailed` (with the partial notebook) when a cell raised.
    Each metric point the notebook reports goes to ``on_metric``."""
    import nbformat
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.execute import remove_error_markers
    from papermill.parameterize import parameterize_notebook

    # read as nbformat reads a file: multi-line sources stored as lists are joined
    nb = nbformat.reads(json.dumps(request["notebook"]), as_version=4)
    nb = remove_error_markers(nb)  # papermill's banners of an earlier failed run
    for cell in nb.cells:  # as papermill's own loader does: every cell has its tags list
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
        if cell.cell_type == "code":  # as papermill starts a run: nothing shown is from an earlier one
            cell.outputs, cell.execution_count = [], None
    nb.metadata.setdefault("papermill", {})
    nb.metadata.papermill.setdefault("input_path", request.get("name"))
    nb.metadata.papermill.setdefault("parameters", {})
    kernel = request.get("kernel") or (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    parameters = request.get("parameters") or {}
    if parameters:
        nb = parameterize_notebook(nb, parameters, kernel_name=kernel, language="python")
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    try:
        km = POOL.take(kernel)
    except NoSuchKernel:
        raise NotebookFailed(
            f"kernel {kernel!r} is not installed on this worker: install it there, or run the notebook with another kernel",
            "",
            b"",
            kind="environment",
        ) from None
    client = NotebookClient(nb, km=km, timeout=None, kernel_name=kernel, allow_errors=False)
    client.kc = getattr(km, "orch_client", None)  # the pool readied it; None: nbclient makes one
    client.on_cell_start = lambda cell, cell_index: _progress(code, cell_index)
    client.output = forward_streams(client.output)  # type: ignore[method-assign,assignment]
    if on_metric is not None:
        env = {**env, METRICS_MODE_ENV: "display"}
        client.output = intercept_metrics(client.output, on_metric)  # type: ignore[method-assign,assignment]
    try:
        with client.setup_kernel():
            _prepare(client, env, cwd)
            raised: tuple[int, CellExecutionError] | None = None
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:  # as papermill's engine: the run stops here
                    raised = (index, exc)
                    cell.metadata.papermill["exception"] = True
                    nb.metadata.papermill["exception"] = True
                    break
            _verdict(nb, code, raised)
    except NotebookFailed:
        POOL.retire(km)
        POOL.refill(kernel)
        raise
    except BaseException:  # cancelled or broken: no new kernel for a process that may be ending
        _stop(km)
        raise
    POOL.retire(km)
    POOL.refill(kernel)
    return _result(nb)


Output = Callable[[list[Any], dict[str, Any], "str | None", int], Any]


def intercept_metrics(output: Output, on_metric: Callable[[Any], None]) -> Output:
    """nbclient's ``NotebookClient.output`` less the metric reports: those go to
    ``on_metric`` (before an output widget's capture could take them) and never into the
    cell's outputs. A point that cannot be sent is dropped: the worker checks each."""

    def intercepted(outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        point = metric_point(msg)
        if point is None:
            return output(outs, msg, display_id, cell_index)
        try:
            on_metric(point)
        except (OSError, ValueError, TypeError):
            pass
        return None

    return intercepted


def forward_streams(output: Output) -> Output:
    """nbclient's ``NotebookClient.output`` that also writes each ``stream`` output (what a
    cell prints) to this process's ``sys.stdout`` or ``sys.stderr`` as it arrives: the task's
    log follows the notebook live. The output is kept in the cell as before."""

    def forwarded(outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        if msg.get("msg_type") == "stream":
            content = msg.get("content") or {}
            text = content.get("text")
            if isinstance(text, str) and text:
                target = sys.stderr if content.get("name") == "stderr" else sys.stdout
                try:
                    target.write(text)
                    target.flush()
                except (OSError, ValueError):
                    pass  # the log is gone (the process is ending): the notebook still has it
        return output(outs, msg, display_id, cell_index)

    return forwarded


def _verdict(nb: Any, code: list[int], raised: tuple[int, Any] | None) -> None:
    """Papermill's verdict on the executed notebook: :class:`NotebookFailed` naming the
    failing cell (with papermill's banner added to the notebook), or a successful end,
    early when a cell stopped the run with SystemExit 0 (said in the task's log)."""
    error = papermill_error(nb)
    if error is not None:
        index, ename, evalue, traceback = error
        if raised is not None and raised[0] == index:  # nbclient's words: UsageError, not CellExecutionError
            ename, evalue, text = raised[1].ename, raised[1].evalue, str(raised[1])
        else:
            text = "\n".join(traceback)
        what = f"{ename}: {evalue}" if evalue else ename
        message = f"cell {_number(code, index)} of {len(code)} failed: {what}"
        _mark_failure(nb, index)
        # a module missing on this worker fails again on retry: not retried
        kind = "environment" if ename == "ModuleNotFoundError" else "exception"
        raise NotebookFailed(message, _ANSI.sub("", text), _result(nb), kind=kind)
    if raised is not None:  # it stopped itself: SystemExit with code 0, or none
        index, exc = raised
        line = EARLY_STOP.format(i=_number(code, index), n=len(code), how=f"{exc.ename}({exc.evalue})")
        if index != code[-1]:
            line += "; later cells were not run"
        print(line, file=sys.stderr, flush=True)


def papermill_error(nb: Any) -> tuple[int, str, str, list[str]] | None:
    """The error papermill's ``execute.raise_for_execution_errors`` (2.x) would raise for
    an executed notebook, as (cell index, ename, evalue, traceback); None: a success. Its
    rule, without its side effects (it writes the notebook): an error output fails the run
    (the last cell with one is named) unless it is ``SystemExit`` with code 0 or none; a
    cell marked ``metadata.papermill.exception`` without such an exit fails it too. One
    difference: a cell tagged ``raises-exception`` may raise (nbclient runs on after it;
    papermill 2.7 would fail the notebook there anyway)."""
    error: tuple[int, str, str, list[str]] | None = None
    for index, cell in enumerate(nb.cells):
        if "raises-exception" in ((cell.get("metadata") or {}).get("tags") or []):
            continue
        has_sys_exit = False
        for output in cell.get("outputs") or []:
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0"):
                has_sys_exit = True
                continue
            error = (
                index,
                output.get("ename", ""),
                output.get("evalue", ""),
                list(output.get("traceback") or []),
            )
            break
        flagged = ((cell.get("metadata") or {}).get("papermill") or {}).get("exception") is True
        if error is None and not has_sys_exit and flagged:
            return index, "CellExecutionError", "", []
    return error


def _mark_failure(nb: Any, index: int) -> None:
    """Papermill's banner at the top (naming the failing cell's ``In [n]``) and its anchor
    above the failing cell, as papermill writes a failed run."""
    import nbformat
    from papermill.execute import ERROR_ANCHOR_MSG, ERROR_MARKER_TAG, ERROR_MESSAGE_TEMPLATE

    banner = nbformat.v4.new_markdown_cell(
        ERROR_MESSAGE_TEMPLATE % str(nb.cells[index].get("execution_count"))
    )
    anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)
    for cell in (banner, anchor):
        cell.metadata["tags"] = [ERROR_MARKER_TAG]
        if nb.nbformat_minor < 5:  # cell ids came with nbformat 4.5
            del cell["id"]
    nb.cells.insert(index, anchor)
    nb.cells.insert(0, banner)


def _number(code: list[int], index: int) -> int:
    return code.index(index) + 1 if index in code else 0


def _progress(code: list[int], index: int) -> None:
    if index in code:
        print(PROGRESS.format(i=code.index(index) + 1, n=len(code)), file=sys.stderr, flush=True)


def _prepare(client: Any, env: dict[str, str], cwd: str) -> None:
    """The warm kernel takes the task's working directory and environment."""
    setup = f"import os as _o; _o.chdir({cwd!r}); _o.environ.update({json.dumps(env)}); del _o"
    reply = client.kc.execute_interactive(setup, silent=True, store_history=False, timeout=60)
    if reply["content"].get("status") != "ok":
        raise RuntimeError(f"could not prepare the kernel: {reply['content'].get('evalue')}")


def outputs_of(nb: Any) -> dict[str, Any]:
    """What the notebook recorded with ``jupyter_orch.output`` (the last value per name)."""
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = (out.get("data") or {}).get(OUTPUT_MIME)
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                found[data["name"]] = data.get("value")
    return found


def _result(nb: Any) -> bytes:
    return json.dumps({"notebook": nb, "outputs": outputs_of(nb)}, default=str).encode()


def working_dir(task_id: str, base: str, env: dict[str, str]) -> str:
    """Where the notebook runs: its run's directory (``ORCH_RUN_DIR``) when that is a local
    path, else (none, or an object store URL the notebook reaches with fsspec) one of its own."""
    run_dir = env.get("ORCH_RUN_DIR") or ""
    path = run_dir if run_dir and "://" not in run_dir else os.path.join(base, "notebook-runs", task_id)
    os.makedirs(path, exist_ok=True)
    return path

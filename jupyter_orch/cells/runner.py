"""Runs a cell on a worker: a fresh namespace from the cell's inputs, the body executed
with tracebacks that name the notebook cell and its lines, the last expression's value kept
for display, open figures shown, and the outputs packed for the trip back."""

from __future__ import annotations

import ast
import builtins
import importlib
import linecache
import sys
import types
from typing import Any

import cloudpickle

from ..serialization import dumps_value
from . import analysis, display
from .job import CellJob, CellResult


def run_cell(job: CellJob) -> bytes:
    """Execute the cell; returns the pickled :class:`CellResult` (the result blob)."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "display": display.display}
    for name, module in job.modules.items():
        ns[name] = importlib.import_module(module)
    ns.update(job.inputs)
    tree = analysis.parse(job.source, job.first_line, job.filename)
    _register_source(job)
    last: ast.Expression | None = None
    if job.display_last and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
    exec(compile(tree, job.filename, "exec"), ns)
    value = eval(compile(last, job.filename, "eval"), ns) if last is not None else None
    display.flush_figures()
    return _pack(job, ns, value)


def _register_source(job: CellJob) -> None:
    """Let tracebacks quote the cell's lines, numbered as in the notebook."""
    lines = ["\n"] * (job.first_line - 1) + [line + "\n" for line in job.source.splitlines()]
    linecache.cache[job.filename] = (sum(map(len, lines)), None, lines, job.filename)


def _pack(job: CellJob, ns: dict[str, Any], value: Any) -> bytes:
    result = CellResult(has_value=value is not None, value=value)
    for name in job.outputs:
        if name not in ns:
            continue  # bound only on a branch not taken
        obj = ns[name]
        if isinstance(obj, types.ModuleType):
            result.modules[name] = obj.__name__
        else:
            result.outputs[name] = obj
    try:
        return dumps_value(result)
    except Exception:
        pass
    for name, obj in list(result.outputs.items()):  # find what cannot travel, keep the rest
        try:
            cloudpickle.dumps(obj)
        except Exception as exc:
            del result.outputs[name]
            result.left_behind[name] = f"a {type(obj).__name__}, which cannot be pickled ({exc})"
    if result.has_value:
        try:
            cloudpickle.dumps(value)
        except Exception:
            result.value, result.value_bundle = None, {"data": display.mime_bundle(value)[0]}
    for name, why in result.left_behind.items():
        print(f"jupyter-orch: {name!r} stays on the worker: it is {why}", file=sys.stderr)
    return dumps_value(result)

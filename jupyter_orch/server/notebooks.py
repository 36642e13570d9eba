"""REST handlers behind the sidebar's "Run as job": a notebook's papermill parameters, and a
notebook of the Jupyter server's own files submitted as a task (built as the client's
``run_notebook`` builds it, see :mod:`jupyter_orch.core.notebooktask`).

Paths are relative to the Jupyter server's ``root_dir``; a path that leaves it is refused.
"""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import Mapping
from typing import Any

from ..core.errors import NotFound, SpecError
from ..core.limits import check_text
from ..core.notebooktask import notebook_payload, notebook_spec, task_fields
from ..core.params import PARAM_TYPES, Param, coerce, type_name
from ..core.resources import Resources
from ..core.spec import TaskSpec
from ..engine.views import task_view
from .base import OrchAPIHandler

RUN_KEYS = {
    "path",
    "parameters",
    "resources",
    "image",
    "name",
    "retries",
    "timeout",
    "kernel",
    "priority",
    "env",
}
RESOURCE_KEYS = {"gpus", "cpus", "memory", "gpu_type", "labels"}


def resolve(root_dir: str, path: Any) -> str:
    """The file ``path`` (relative to the server's root, API style with ``/``) names on disk."""
    if not isinstance(path, str) or not path.strip():
        raise SpecError("path must name a notebook, relative to the Jupyter root", field="path")
    check_text(path, "path")  # a NUL is no file name (and no 500 from the OS)
    rel = path.lstrip("/")  # as given: a name may start or end with a space
    root = os.path.realpath(root_dir)
    full = os.path.realpath(os.path.join(root, *rel.split("/")))
    if os.path.commonpath([root, full]) != root:
        raise SpecError(f"{path} is outside the Jupyter server's root directory", field="path")
    if not os.path.isfile(full):
        raise NotFound(f"no notebook at {path}")
    return full


def read_notebook(os_path: str, path: str) -> Any:
    import nbformat

    try:
        return nbformat.read(os_path, as_version=4)
    except ValueError:  # not UTF-8 JSON; its message would quote the file's first bytes
        raise SpecError(f"{path} is not a readable notebook: it is not JSON", field="path") from None
    except Exception as exc:  # JSON, but not a notebook nbformat reads
        raise SpecError(f"{path} is not a readable notebook: {type(exc).__name__}", field="path") from None


def kernel_of(nb: Any) -> str | None:
    spec = nb.metadata.get("kernelspec") or {}
    name = spec.get("name")
    return str(name) if name else None


def parameters_of(nb: Any, os_path: str, path: str) -> list[dict[str, Any]]:
    """The notebook's ``parameters`` cell as papermill reads it: each name with its default
    (a JSON value where the source is a literal, else the source text), its type (the
    annotation papermill found, else the literal's type; None when neither says) and help."""
    from papermill.inspection import _infer_parameters, inspect_notebook

    try:
        if kernel_of(nb):
            found = list(inspect_notebook(os_path).values())
        else:  # papermill wants a kernel name; a notebook without one is run as python3
            for cell in nb.cells:  # as papermill's own loader does: every cell has its tags list
                cell.metadata.setdefault("tags", [])
            found = [p._asdict() for p in _infer_parameters(nb, name="python3", language="python")]
    except Exception as exc:
        raise SpecError(f"cannot read the parameters of {path}: {exc}", field="path") from None
    params = []
    for p in found:
        source = str(p.get("default") or "")
        try:
            default: Any = ast.literal_eval(source)
            literal = True
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default, literal = source, False
        if literal and not _jsonable(default):
            default, literal = source, False
        inferred = p.get("inferred_type_name")
        kind = inferred if inferred and inferred != "None" else None
        if kind is None and literal and default is not None:
            kind = type_name(default)
        params.append({"name": p["name"], "default": default, "type": kind, "help": p.get("help") or ""})
    return params


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def typed_parameters(known: list[dict[str, Any]], given: Any) -> dict[str, Any]:
    """``given`` checked against the notebook's parameters: names it has, values of the type
    its defaults give (``"0.5"`` for a float parameter becomes 0.5, as a dialog sends it)."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise SpecError("parameters must be an object of name -> value", field="parameters")
    by_name = {p["name"]: p for p in known}
    values: dict[str, Any] = {}
    for name, value in given.items():
        param = by_name.get(name)
        if param is None:
            names = ", ".join(sorted(by_name)) or "none (it has no cell tagged parameters)"
            raise SpecError(
                f"unknown parameter {name!r}; the notebook's parameters: {names}", field=f"parameters.{name}"
            )
        kind = param["type"]
        if kind in PARAM_TYPES and value is not None:
            try:
                value = coerce(Param(name, kind, param["default"]), value)
            except SpecError as exc:
                raise SpecError(
                    exc.message.replace("param ", "parameter ", 1), field=f"parameters.{name}"
                ) from None
        values[name] = value
    return values


def build_run(root_dir: str, body: Any) -> tuple[dict[str, Any], bytes]:
    """The task spec and payload of a "Run as job" request (blocking: reads the notebook)."""
    if not isinstance(body, Mapping):
        raise SpecError("the request must be a JSON object")
    unknown = sorted(set(body) - RUN_KEYS)
    if unknown:
        raise SpecError(
            f"{unknown[0]} is not a known field; known: {', '.join(sorted(RUN_KEYS))}", field=unknown[0]
        )
    path = body.get("path")
    os_path = resolve(root_dir, path)
    nb = read_notebook(os_path, str(path))
    parameters = typed_parameters(parameters_of(nb, os_path, str(path)), body.get("parameters"))
    resources = body.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise SpecError("resources must be an object", field="resources")
    extra = sorted(set(resources) - RESOURCE_KEYS)
    if extra:
        raise SpecError(f"resources.{extra[0]} is not a known resource", field=f"resources.{extra[0]}")
    res = Resources.from_dict(resources)  # each checked here (labels as a list, gpus as text, ...)
    kernel = body.get("kernel")
    if kernel is not None and not isinstance(kernel, str):
        raise SpecError("kernel must be a kernel name", field="kernel")
    env = body.get("env")
    if env is not None and not isinstance(env, Mapping):
        raise SpecError("env must be an object of names to strings", field="env")
    name = body.get("name") or os.path.basename(os_path)
    fields = task_fields(
        res.cpus,
        resources.get("memory") or None,
        res.gpus,
        res.gpu_type,
        res.labels,
        body.get("image") or None,
        body.get("priority", 0),
        body.get("retries", 0),
        None,
        body.get("timeout"),
        env,
    )
    spec = notebook_spec(os_path, name, parameters, fields)
    payload = notebook_payload(nb, parameters, kernel, os.path.basename(os_path))
    return {k: v for k, v in spec.items() if v is not None}, payload


class NotebookParametersHandler(OrchAPIHandler):
    """``?path=``: the notebook's kernel and its ``parameters`` cell's names, defaults, types."""

    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        root = self.serverapp.root_dir

        def inspect() -> dict[str, Any]:
            os_path = resolve(root, path)
            nb = read_notebook(os_path, path)
            return {"path": path, "kernel": kernel_of(nb), "parameters": parameters_of(nb, os_path, path)}

        self.write_json(await asyncio.get_running_loop().run_in_executor(None, inspect))


class NotebookRunHandler(OrchAPIHandler):
    """Run as job: the notebook at ``path`` (server's root) submitted as a notebook task."""

    async def post(self) -> None:
        engine = await self.engine()
        body = self.json_body()
        root = self.serverapp.root_dir
        spec, payload = await asyncio.get_running_loop().run_in_executor(None, build_run, root, body)
        task = TaskSpec.from_dict(spec, owner=self.owner)
        rows = await engine.submit([task], {task.id: payload})
        self.write_json(task_view(rows[0]), status=201)

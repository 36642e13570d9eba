"""How a function task travels: cloudpickle, with futures turned into dependency refs.

The client pickles ``(fn, args, kwargs)``; each :class:`DependencyRef` (a future passed as
an argument) is written as a persistent id, so the payload never embeds another task's
value. The executor on the worker resolves those ids to the dependencies' results, which
the server sends along with the assignment. Shared by the client and the worker.
"""

from __future__ import annotations

import io
import pickle
import platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

_DEP_TAG = "orch-dep"


@dataclass(frozen=True)
class DependencyRef:
    """Stands for the result of task ``task_id`` inside a payload."""

    task_id: str


def environment() -> dict[str, str]:
    """What must match between the pickling and the unpickling side."""
    return {
        "python": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
    }


class _Pickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, resolve: Callable[[Any], str | None]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._resolve = resolve
        self.dependencies: list[str] = []

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, DependencyRef):
            task_id = obj.task_id
        else:
            task_id = self._resolve(obj)
            if task_id is None:
                return None
        if task_id not in self.dependencies:
            self.dependencies.append(task_id)
        return (_DEP_TAG, task_id)


def dumps_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    resolve: Callable[[Any], str | None] = lambda obj: None,
) -> tuple[bytes, list[str]]:
    """Pickle a call; ``resolve(obj)`` returns a task id for objects that are futures.

    Returns the payload and the ids of the tasks it depends on, in first-seen order.
    """
    buf = io.BytesIO()
    pickler = _Pickler(buf, resolve)
    pickler.dump((fn, tuple(args), dict(kwargs or {})))
    return buf.getvalue(), pickler.dependencies


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, values: Mapping[str, Any]) -> None:
        super().__init__(file)
        self._values = values

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == _DEP_TAG:
            try:
                return self._values[pid[1]]
            except KeyError:
                raise pickle.UnpicklingError(f"the result of dependency {pid[1]} was not sent") from None
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def loads_call(payload: bytes, dependency_values: Mapping[str, Any] | None = None) -> tuple[Any, tuple, dict]:
    """Unpickle ``(fn, args, kwargs)`` with dependency refs replaced by their values."""
    fn, args, kwargs = _Unpickler(io.BytesIO(payload), dependency_values or {}).load()
    return fn, args, kwargs


def dumps_value(value: Any) -> bytes:
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads_value(data: bytes) -> Any:
    return pickle.loads(data)


def dumps_exception(exc: BaseException) -> bytes:
    """The exception itself if it pickles and unpickles, else a RuntimeError with its text."""
    try:
        data = cloudpickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
        return data
    except Exception:
        return cloudpickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def describe_python() -> str:
    return f"Python {platform.python_version()} ({sys.executable})"


def call_by_reference(reference: str, *args: Any, **kwargs: Any) -> Any:
    """Import ``module:function`` on the worker and call it (``jupyter orch submit`` uses
    this so the CLI never imports user code)."""
    import importlib

    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected module:function, not {reference!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target(*args, **kwargs)

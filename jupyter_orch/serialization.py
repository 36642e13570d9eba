"""How a function task travels: cloudpickle, with futures turned into dependency refs.

The client pickles ``(fn, args, kwargs)``; each :class:`DependencyRef` (a future passed as
an argument) is written as a persistent id, so the payload never embeds another task's
value. The executor on the worker resolves those ids to the dependencies' results, which
the server sends along with the assignment. Shared by the client and the worker.

Large buffers (numpy arrays, bytes-like data of ``OOB_MIN`` bytes or more) travel out of
band (pickle protocol 5): the payload is then ``OOB_MAGIC | u32 count | u64 pickle length |
u64 length of each buffer | pickle | buffers`` (each buffer at a 64-byte aligned offset), so the data is copied once into the payload
and, on the worker, the arrays are built over the payload's own memory instead of copied.
A payload without such buffers is a plain pickle.
"""

from __future__ import annotations

import io
import pickle
import platform
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

_DEP_TAG = "orch-dep"
OOB_MAGIC = b"ORCHOOB1"  # a plain pickle (protocol >= 2) starts with 0x80 instead
OOB_MIN = 64 << 10  # buffers this large go out of band
_ALIGN = 64
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


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
    def __init__(
        self,
        file: io.BytesIO,
        resolve: Callable[[Any], str | None],
        buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
    ) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffer_callback)
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
    buffers: list[pickle.PickleBuffer] = []

    def out_of_band(b: pickle.PickleBuffer) -> bool:
        if b.raw().nbytes < OOB_MIN:
            return True  # small: in the pickle itself
        buffers.append(b)
        return False

    pickler = _Pickler(buf, resolve, out_of_band)
    pickler.dump((fn, tuple(args), dict(kwargs or {})))
    if not buffers:
        return buf.getvalue(), pickler.dependencies
    raws = [b.raw() for b in buffers]
    head = buf.getbuffer()
    parts: list[Any] = [OOB_MAGIC, _U32.pack(len(raws)), _U64.pack(head.nbytes)]
    parts += [_U64.pack(r.nbytes) for r in raws]
    parts.append(head)
    offset = sum(len(p) for p in parts[:-1]) + head.nbytes
    for raw in raws:  # each buffer starts 64-byte aligned, as numpy's own memory does
        pad = _aligned(offset) - offset
        parts += [b"\0" * pad, raw]
        offset += pad + raw.nbytes
    return b"".join(parts), pickler.dependencies


def _aligned(offset: int) -> int:
    return (offset + _ALIGN - 1) // _ALIGN * _ALIGN


def _split_oob(payload: bytes | bytearray | memoryview) -> tuple[memoryview, list[memoryview]] | None:
    """The pickle and its out-of-band buffers, as views of ``payload``; None for a plain
    pickle. Buffers are writable when ``payload`` is (arrays built on them are too)."""
    view = memoryview(payload)
    if view[: len(OOB_MAGIC)] != OOB_MAGIC:
        return None
    offset = len(OOB_MAGIC)
    try:
        (count,) = _U32.unpack_from(view, offset)
        offset += _U32.size
        sizes = [_U64.unpack_from(view, offset + i * _U64.size)[0] for i in range(count + 1)]
    except struct.error:
        raise pickle.UnpicklingError("the payload's buffer table is truncated") from None
    offset += (count + 1) * _U64.size
    parts = []
    for i, size in enumerate(sizes):
        if i > 0:
            offset = _aligned(offset)
        if offset + size > len(view):
            raise pickle.UnpicklingError("the payload is shorter than its buffer table says")
        parts.append(view[offset : offset + size])
        offset += size
    if offset != len(view):
        raise pickle.UnpicklingError("the payload is longer than its buffer table says")
    buffers = parts[1:]
    if view.readonly:  # arrays must be writable, as with a plain pickle: copy once
        buffers = [memoryview(bytearray(b)) for b in buffers]
    return parts[0], buffers


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, values: Mapping[str, Any], buffers: list[memoryview] | None) -> None:
        super().__init__(file, buffers=buffers)
        self._values = values

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == _DEP_TAG:
            try:
                return self._values[pid[1]]
            except KeyError:
                raise pickle.UnpicklingError(f"the result of dependency {pid[1]} was not sent") from None
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def loads_call(
    payload: bytes | bytearray | memoryview, dependency_values: Mapping[str, Any] | None = None
) -> tuple[Any, tuple, dict]:
    """Unpickle ``(fn, args, kwargs)`` with dependency refs replaced by their values."""
    split = _split_oob(payload)
    data, buffers = split if split is not None else (payload, None)
    fn, args, kwargs = _Unpickler(io.BytesIO(data), dependency_values or {}, buffers).load()
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

"""``@jupyter_orch.remote(gpus=1, ...)``: a function that still runs locally when called,
and runs on workers with ``.submit(*args)`` (a future) or ``.map(iterable)`` (futures)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from .collect import FutureList
from .futures import Future

TASK_OPTIONS = frozenset(
    {
        "gpus",
        "cpus",
        "memory",
        "gpu_type",
        "labels",
        "image",
        "priority",
        "preemptible",
        "retries",
        "retry_backoff",
        "timeout",
        "env",
        "name",
    }
)


class RemoteFunction:
    def __init__(self, fn: Callable[..., Any], options: dict[str, Any], client: Any = None) -> None:
        unknown = sorted(set(options) - TASK_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown task option(s) {', '.join(unknown)}; known: {', '.join(sorted(TASK_OPTIONS))}"
            )
        self.fn = fn
        self.task_options = dict(options)
        self._client = client
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run here, now, like the plain function."""
        return self.fn(*args, **kwargs)

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        from .client import connect

        return connect()

    def submit(self, *args: Any, **kwargs: Any) -> Future:
        """Run on a worker; futures among the arguments are dependencies."""
        return self._connect().submit(self.fn, *args, **self.task_options, **kwargs)  # type: ignore[no-any-return]

    def map(self, *iterables: Iterable[Any]) -> FutureList:
        """One task per item (per tuple of items, with several iterables, as ``map`` does)."""
        client = self._connect()
        return FutureList(
            client.submit(self.fn, *args, **self.task_options) for args in zip(*iterables, strict=False)
        )

    def options(self, **options: Any) -> RemoteFunction:
        """The same function with some task options changed (``f.options(gpus=2).submit(x)``)."""
        return RemoteFunction(self.fn, {**self.task_options, **options}, self._client)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.task_options.items())
        return f"<jupyter_orch.remote {getattr(self.fn, '__qualname__', self.fn)}({opts})>"


def remote(fn: Callable[..., Any] | None = None, /, *, client: Any = None, **options: Any) -> Any:
    """``@remote`` or ``@remote(gpus=1, memory="16Gi", ...)`` (the options of ``submit``)."""
    if fn is not None:
        return RemoteFunction(fn, options, client)
    return lambda f: RemoteFunction(f, options, client)

"""Many futures at once: ``gather`` (results in order, with a progress bar),
``as_completed`` (futures as they finish) and :class:`FutureList` (what ``map`` returns:
a list that shows its progress when displayed)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator
from typing import Any

from .futures import Future
from .progress import ProgressBar


def as_completed(futures: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
    """Yield each future as it finishes (succeeded, failed or cancelled); ``TimeoutError``
    when ``timeout`` seconds pass first."""
    pending = list(dict.fromkeys(futures))
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    for fut in pending:
        fut.add_done_callback(finished.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    for _ in range(len(pending)):
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            yield finished.get(timeout=wait)
        except queue.Empty:
            left = sum(not f.done() for f in pending)
            raise TimeoutError(f"{left} of {len(pending)} tasks did not finish within {timeout} s") from None


def gather(
    futures: Iterable[Future],
    *,
    return_exceptions: bool = False,
    timeout: float | None = None,
    progress: bool | None = None,
) -> list[Any]:
    """The futures' results, in their order. The first failure raises (after every task
    has ended) unless ``return_exceptions``, which puts exceptions in its place instead.
    ``progress`` (default: in a notebook, or on a terminal) shows a bar while waiting."""
    futures = list(futures)
    bar = _bar(len(futures), progress)
    for fut in as_completed(futures, timeout):
        if bar is not None:
            bar.advance(failed=fut.exception() is not None)
    results: list[Any] = []
    for fut in futures:
        exc = fut.exception()
        if exc is not None and not return_exceptions:
            raise exc
        results.append(exc if exc is not None else fut.result())
    return results


def _bar(total: int, progress: bool | None) -> ProgressBar | None:
    if progress is False or total == 0:
        return None
    bar = ProgressBar(total)
    if progress is None and bar.widget is None and not _tty(bar):
        return None
    bar.show()
    return bar


def _tty(bar: ProgressBar) -> bool:
    return bool(getattr(bar._stream, "isatty", lambda: False)())


class FutureList(list):  # type: ignore[type-arg]
    """Futures from ``map``: a list, with ``results()`` and a live progress view when a
    notebook displays it."""

    def results(self, timeout: float | None = None, return_exceptions: bool = False) -> list[Any]:
        return gather(self, timeout=timeout, return_exceptions=return_exceptions)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bar = ProgressBar(len(self))
        for fut in self:
            fut.add_done_callback(lambda f: bar.advance(failed=f.exception() is not None))
        return bar._repr_mimebundle_(**kwargs)

"""Progress of many tasks: a bar in a notebook (the "progress" view of :mod:`.display`,
registered by the kernel side), a one-line text bar on a terminal (redrawn in place, like
tqdm), nothing when output goes to a file."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from .display import in_notebook, lookup

__all__ = ["ProgressBar", "in_notebook"]


class ProgressBar:
    """``done`` of ``total`` tasks, ``failed`` among them; thread-safe ``advance``."""

    def __init__(
        self, total: int, label: str = "tasks", widget: bool | None = None, stream: Any = None
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.label = label
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._stream = stream if stream is not None else sys.stderr
        self._last_text = 0.0
        self.widget: Any = None
        self._view: Any = None  # the notebook view, when one is registered and wanted
        factory = lookup("progress") if (widget if widget is not None else in_notebook()) else None
        if factory is not None:
            self._view = factory(self)
            self.widget = self._view.widget

    def summary(self) -> str:
        took = time.monotonic() - self._start
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} {self.label}{failed} ({took:.1f} s)"

    def advance(self, failed: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            self._draw(final=self.done >= self.total)

    def _draw(self, final: bool = False) -> None:
        if self._view is not None:
            self._view.draw(final)
            return
        isatty = getattr(self._stream, "isatty", lambda: False)()
        now = time.monotonic()
        if not isatty or (not final and now - self._last_text < 0.1):
            return
        self._last_text = now
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = f"\r[{'#' * filled}{' ' * (width - filled)}] {self.summary()}"
        self._stream.write(line + ("\n" if final else ""))
        self._stream.flush()

    def show(self) -> None:
        if self._view is not None:
            self._view.show()
        else:
            self._draw(final=self.done >= self.total)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {}) if self.widget is not None else {}
        bundle["text/plain"] = self.summary()
        return bundle

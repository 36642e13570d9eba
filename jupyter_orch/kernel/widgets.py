"""Live views of tasks in a notebook (ipywidgets): a status line that follows a task's
state, how long it has run and its latest output line, updated from a background thread
that follows the task's log stream. Tested through the widgets' model state."""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from ..client.futures import Future
from .metricplot import MetricPlot, warm_up
from .output import waiting_text

_COLOURS = {
    "pending": "var(--jp-warn-color1, #f57c00)",
    "scheduled": "var(--jp-warn-color1, #f57c00)",
    "running": "var(--jp-brand-color1, #1976d2)",
    "succeeded": "var(--jp-success-color1, #388e3c)",
    "failed": "var(--jp-error-color1, #d32f2f)",
    "cancelled": "var(--jp-layout-color4, #757575)",
}
_UPDATE_EVERY = 0.25  # seconds between redraws for output lines


class TaskStatusView:
    """One task's live status; ``widget`` is the status line (an ipywidgets ``HTML``),
    ``box`` what the cell shows: the line, and a live plot under it once the task reports
    metrics (:mod:`.metricplot`)."""

    def __init__(self, future: Future, follow: bool = True) -> None:
        import ipywidgets

        self.future = future
        self.state = "submitted"
        self.last_line = ""
        self.error = ""
        self.reason = ""  # why a pending task waits
        self._started: float | None = None
        self._ended: float | None = None
        self._drawn = 0.0
        self._lock = threading.Lock()
        self.widget = ipywidgets.HTML(value=self._html())
        self.box = ipywidgets.VBox([self.widget])
        self.image: Any = None  # the plot, once a metric arrives
        self.plot = MetricPlot(self._show_plot, title=f"task {future.id}")
        self.followed = threading.Event()  # set once the view has drawn the task's end
        if follow:
            warm_up()
            threading.Thread(target=self._follow, name=f"orch-view-{future.id}", daemon=True).start()

    def _follow(self) -> None:
        from ..client.logstream import LogFollow

        try:
            self.future.accepted()
            stream = LogFollow(
                self.future.client.api, self.future.id, on_state=self.set_task, on_metrics=self.plot.add
            )
            for line in stream:
                if line.get("stream") in ("stdout", "stderr"):
                    self.last_line = str(line.get("text", "")).rstrip("\r")
                    if time.monotonic() - self._drawn >= _UPDATE_EVERY:
                        self._draw()
                self.plot.maybe_draw()
        except Exception as exc:  # the view is a convenience: say why it stopped, never raise
            self.error = self.error or f"(live view stopped: {exc})"
        self.plot.finish()
        self._draw()
        self.followed.set()

    def _show_plot(self, png: bytes) -> None:
        import ipywidgets

        if self.image is None:
            self.image = ipywidgets.Image(value=png, format="png")
            self.box.children = (self.widget, self.image)
        else:
            self.image.value = png

    def set_task(self, task: dict[str, Any]) -> None:
        """Show ``task`` (a task view from the API or a ``done`` message)."""
        with self._lock:
            self.state = str(task.get("state") or self.state)
            self._started = task.get("started_at") or self._started
            self._ended = task.get("ended_at") or self._ended
            if task.get("error"):
                self.error = str(task["error"])
            self.reason = str(task.get("reason") or "") if self.state == "pending" else ""
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            self._drawn = time.monotonic()
            self.widget.value = self._html()

    def _html(self) -> str:
        colour = _COLOURS.get(self.state, "inherit")
        parts = [
            f'<span style="color:{colour};font-weight:bold">{html.escape(self.state)}</span>',
            f"<code>{html.escape(self.future.id)}</code>",
            html.escape(self.future.name or ""),
        ]
        if self._started:
            parts.append(f"{(self._ended or time.time()) - self._started:.1f} s")
        if self.error:
            parts.append(f'<span style="color:{_COLOURS["failed"]}">{html.escape(self.error)}</span>')
        elif self.reason:
            parts.append(html.escape(waiting_text(self.reason)))
        elif self.last_line:
            parts.append(f"<code>{html.escape(self.last_line[-200:])}</code>")
        return '<div class="jupyter-orch-status">' + " · ".join(p for p in parts if p) + "</div>"

    def text(self) -> str:
        """The plain-text form (outside a notebook)."""
        took = f" {(self._ended or time.time()) - self._started:.1f}s" if self._started else ""
        return f"task {self.future.id} {self.future.name or ''} {self.state}{took}".replace("  ", " ")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        return bundle

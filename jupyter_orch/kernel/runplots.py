"""Live metric plots under a workflow run's DAG (:class:`.dag.RunView`): one
:class:`.metricplot.MetricPlot` per step that reported with ``jupyter_orch.report``, titled
by the step's name and shown as an ipywidgets ``Image``, in the run's step order. A step that
reports nothing has no plot.

One plot per step, not one figure for the run: a pipeline's steps report different things
(rows read, a training loss, an evaluation's accuracy), so a shared figure would put unrelated
scales side by side and be laid out again whenever another step starts reporting; a step's own
plot reads as that step, and once the step ends its plot is never drawn again. The view's
plots share one redraw rate (:data:`RATE`), so a run costs the kernel no more than one cell's
plot; past :data:`MAX_PLOTS` steps (a sweep) the rest are named, not drawn.

Points come from the events socket's ``metrics`` events (the view opens it with
``metrics=1``) for the run's own tasks only, and from ``GET /tasks/{id}/metrics`` for what a
step reported before the view followed it (or the whole run, when it had ended already). Both
number points per attempt, so a point read both ways is drawn once.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..client.metrics import COLUMNS, PAGE
from .metricplot import MetricPlot

if TYPE_CHECKING:
    from ..client.http import HttpApi

MAX_PLOTS = 12  # steps drawn; the others that report are named under the plots
RATE = 10.0  # redraws a second, shared by a view's plots

Show = Callable[[list[Any]], None]


def started(steps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps that have run or run now (a cached or a waiting step has reported nothing)."""
    return [s for s in steps if s.get("task_id") and s.get("started_at") and not s.get("cached")]


class RunPlots:
    """The plots of one run's steps. ``show`` is called with the widgets to put under the DAG
    (in step order) whenever one is added. Fed from one thread (the view's follower)."""

    def __init__(self, api: HttpApi, show: Show) -> None:
        self._api = api
        self._show = show
        self.plots: dict[str, MetricPlot] = {}  # task id -> its step's plot
        self.skipped: dict[str, str] = {}  # task id -> step name: reported, not drawn (too many)
        self.problem = ""  # why stored points could not be read, if they could not
        self.live = 0  # points that came as events (the others were read back)
        self._tasks: dict[str, tuple[int, str]] = {}  # task id -> (step's place, step's name)
        self._images: dict[str, Any] = {}  # task id -> its plot's Image, once drawn
        self._after: dict[str, str] = {}  # task id -> "attempt:offset" of the last point read
        self._note: Any = None

    # -------------------------------------------------------------- the run's steps
    def steps(self, steps: Iterable[dict[str, Any]]) -> None:
        """The run's steps as now known: which tasks are this run's, and their names."""
        self._tasks = {
            str(s["task_id"]): (index, str(s.get("name") or s["task_id"]))
            for index, s in enumerate(steps)
            if s.get("task_id")
        }

    def name(self, task_id: str) -> str:
        return self._tasks.get(task_id, (0, task_id))[1]

    # -------------------------------------------------------------- points
    def on_event(self, event: dict[str, Any]) -> bool:
        """A ``metrics`` event: drawn if it is of one of the run's tasks (True)."""
        task_id = str(event.get("task_id"))
        if task_id not in self._tasks:
            return False
        attempt, offset, points = event.get("attempt"), event.get("offset"), event.get("points")
        if isinstance(attempt, int) and isinstance(offset, int) and isinstance(points, list):
            plot = self._plot(task_id)
            if plot is not None:
                plot.add(attempt, offset, points)
                self.live += len(points)
        return True

    def catch_up(self, steps: Iterable[dict[str, Any]]) -> None:
        """Read what ``steps`` reported that was not read yet (``GET /tasks/{id}/metrics``)."""
        for s in steps:
            task_id = str(s.get("task_id") or "")
            if task_id not in self._tasks or task_id in self.skipped:
                continue
            try:
                records = self._read(task_id)
            except Exception as exc:  # the plots are a convenience: say why, never raise
                self.problem = f"(metrics of step {self.name(task_id)} could not be read: {exc})"
                self._layout()
                continue
            if records:
                self._add_records(task_id, records)

    def _read(self, task_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = self._after.get(task_id)
        while True:
            page = self._api.get(f"/tasks/{task_id}/metrics", format="records", limit=PAGE, after=after)
            out.extend(page["records"])
            after = page.get("next")
            if not after:
                break
        if out:
            self._after[task_id] = f"{out[-1]['attempt']}:{out[-1]['offset']}"
        return out

    def _add_records(self, task_id: str, records: list[dict[str, Any]]) -> None:
        plot = self._plot(task_id)
        if plot is None:
            return
        start = 0
        for i in range(1, len(records) + 1):  # runs of consecutive points of one attempt
            if i < len(records) and (
                records[i]["attempt"] == records[i - 1]["attempt"]
                and records[i]["offset"] == records[i - 1]["offset"] + 1
            ):
                continue
            chunk = records[start:i]
            points = [
                [r["ts"], r["step"], r["group"], {k: v for k, v in r.items() if k not in COLUMNS}]
                for r in chunk
            ]
            plot.add(chunk[0]["attempt"], chunk[0]["offset"], points)
            start = i

    def _plot(self, task_id: str) -> MetricPlot | None:
        plot = self.plots.get(task_id)
        if plot is None and task_id not in self.skipped:
            if len(self.plots) >= MAX_PLOTS:
                self.skipped[task_id] = self.name(task_id)
                self._layout()
                return None

            def show(png: bytes, task_id: str = task_id) -> None:
                self._shown(task_id, png)

            plot = self.plots[task_id] = MetricPlot(show, title=self.name(task_id))
            for each in self.plots.values():  # one rate for the view, shared out
                each.max_rate = RATE / len(self.plots)
        return plot

    # -------------------------------------------------------------- drawing
    def due_in(self) -> float | None:
        """Seconds until a plot's waiting points are due to be drawn; None when none wait."""
        due = [d for d in (p.due_in() for p in self.plots.values()) if d is not None]
        return min(due) if due else None

    def tick(self) -> None:
        """Draw the plots whose points are due."""
        for plot in self.plots.values():
            plot.maybe_draw()

    def finish(self) -> None:
        """The last draw of each plot, with every point."""
        for plot in self.plots.values():
            plot.finish()

    def close(self) -> None:
        for widget in [*self._images.values(), self._note]:
            if widget is not None:
                widget.close()

    def images(self) -> dict[str, Any]:
        """Step name -> the ``Image`` its plot is drawn in, in the run's step order."""
        return {self.name(task_id): self._images[task_id] for task_id in self._order()}

    def _order(self) -> list[str]:
        return sorted(self._images, key=lambda t: self._tasks.get(t, (len(self._tasks), t)))

    def _shown(self, task_id: str, png: bytes) -> None:
        image = self._images.get(task_id)
        if image is not None:
            image.value = png
            return
        import ipywidgets

        self._images[task_id] = ipywidgets.Image(value=png, format="png")
        self._layout()

    def _layout(self) -> None:
        widgets = [self._images[t] for t in self._order()]
        words = []
        if self.skipped:
            names = ", ".join(sorted(self.skipped.values()))
            words.append(f"{len(self.skipped)} more step(s) reported metrics, not drawn here: {names}")
        if self.problem:
            words.append(self.problem)
        if words:
            import ipywidgets

            text = "<br>".join(html.escape(w) for w in words)
            if self._note is None:
                self._note = ipywidgets.HTML(value=text)
            else:
                self._note.value = text
            widgets.append(self._note)
        self._show(widgets)

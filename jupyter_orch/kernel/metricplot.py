"""A live plot of the metrics a task reports, in the cell that follows it: one panel per
metric name, one line per group (training, validation, ...) and per task when a workflow's
steps share the plot, x the reported step (or the point's number when none was given).

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global figure state in
the user's kernel) into a PNG, at most ``max_rate`` times a second and always once at the
end, so a task that reports a thousand points a second costs the kernel a few redraws. A
long series is cut down (LTTB, :func:`jupyter_orch.core.metrics.downsample`) as it grows,
so a redraw stays cheap however long the run. Where the PNG goes is the caller's: a cell's
display (updated in place) or an ipywidgets ``Image``.
"""

from __future__ import annotations

import base64
import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..core.metrics import downsample

KEEP = 2000  # points a line keeps once cut down
CUT_AT = 4000  # a line is cut down to KEEP when it reaches this many
MAX_PANELS = 12  # metric names drawn; the rest are named in the title
_GROUP_STYLES = ("-", "--", ":", "-.")

Show = Callable[[bytes], None]


class _Line:
    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x: list[float] = []
        self.y: list[float | None] = []

    def add(self, x: float, y: float | None) -> None:
        self.x.append(x)
        self.y.append(y)
        if len(self.x) >= CUT_AT:
            self.x, self.y = downsample(self.x, self.y, KEEP)


class MetricPlot:
    """Points in, PNGs out (through ``show``). Thread-safe: points may arrive on a follower
    thread while the kernel draws."""

    def __init__(self, show: Show, *, title: str = "", max_rate: float = 10.0) -> None:
        self._show = show
        self.title = title
        self._min_interval = 1.0 / max_rate
        self._interval = self._min_interval
        self._lines: dict[tuple[str, str, str], _Line] = {}  # (name, group, source) -> line
        self._names: list[str] = []
        self._next: dict[tuple[str, int], int] = {}  # (source, attempt) -> next offset expected
        self._lock = threading.Lock()
        self._drawn_at = -math.inf  # never: the first point draws at once (monotonic may be small)
        self._dirty = False
        self.draws = 0
        self.points = 0
        self._layout: tuple[Any, ...] | None = None  # what the kept figure shows
        self._canvas: Any = None
        self._axes: list[Any] = []
        self._artists: dict[tuple[str, str, str], Any] = {}

    # ------------------------------------------------------------------ points
    def add(self, attempt: int, offset: int, points: Sequence[Sequence[Any]], source: str = "") -> None:
        """Points ``offset, offset+1, ...`` of an attempt, as the server sends them; a point
        seen already (a resend) is skipped. Draws if the last draw is old enough."""
        with self._lock:
            seen = self._next.get((source, attempt), 0)
            for i, point in enumerate(points):
                if offset + i >= seen:  # not a resend of a point drawn already
                    self._add(source, offset + i, point)
            self._next[(source, attempt)] = max(seen, offset + len(points))
            self._dirty = True
        self.maybe_draw()

    def _add(self, source: str, offset: int, point: Sequence[Any]) -> None:
        try:
            _ts, step, group, values = point
        except (TypeError, ValueError):
            return
        x = float(offset if step is None else step)
        for name, value in dict(values).items():
            key = (str(name), str(group), source)
            line = self._lines.get(key)
            if line is None:
                line = self._lines[key] = _Line()
                if name not in self._names:
                    self._names.append(str(name))
            line.add(x, None if value is None else float(value))
        self.points += 1

    def data(self) -> dict[tuple[str, str, str], tuple[list[float], list[float | None]]]:
        """Every line as kept: ``(metric, group, source) -> (xs, ys)`` (copies)."""
        with self._lock:
            return {key: (list(line.x), list(line.y)) for key, line in self._lines.items()}

    # ------------------------------------------------------------------ drawing
    @property
    def max_rate(self) -> float:
        """Redraws a second at most (a view with several plots shares its rate out)."""
        return 1.0 / self._min_interval

    @max_rate.setter
    def max_rate(self, rate: float) -> None:
        self._min_interval = 1.0 / rate
        self._interval = max(self._interval, self._min_interval)

    def due_in(self) -> float | None:
        """Seconds until points not drawn yet are due to be (0: now); None when none wait."""
        if not self._dirty:
            return None
        return max(0.0, self._drawn_at + self._interval - time.monotonic())

    def maybe_draw(self) -> None:
        if self._dirty and time.monotonic() - self._drawn_at >= self._interval:
            self.draw()

    def finish(self) -> None:
        """The last draw, with every point (call when the task or run has ended)."""
        if self._dirty:
            self.draw()

    def draw(self) -> None:
        started = time.monotonic()
        with self._lock:  # a copy of the lines: points keep arriving while it renders
            self._dirty = False
            lines = {key: (list(line.x), list(line.y)) for key, line in self._lines.items()}
            names = list(self._names)
        png = self._render(lines, names)
        if png is None:
            return
        self._show(png)
        self.draws += 1
        self._drawn_at = time.monotonic()
        # a slow draw (a small kernel, many panels) spaces out the next ones
        self._interval = max(self._min_interval, 2 * (self._drawn_at - started))

    def _render(
        self, lines: dict[tuple[str, str, str], tuple[list[float], list[float | None]]], names: list[str]
    ) -> bytes | None:
        if not lines:
            return None
        groups = sorted({group for _, group, _ in lines})
        sources = sorted({source for _, _, source in lines})
        layout = (tuple(names[:MAX_PANELS]), tuple(groups), tuple(sources), tuple(lines))
        if layout != self._layout:  # new metrics, groups or tasks: lay the figure out again
            self._build(layout, names)
        for key, (xs, ys) in lines.items():
            artist = self._artists.get(key)
            if artist is not None:
                artist.set_data(xs, [math.nan if v is None else v for v in ys])
        for ax in self._axes:
            ax.relim()
            ax.autoscale_view()
        buf = io.BytesIO()
        self._canvas.print_png(buf)
        return buf.getvalue()

    def _build(self, layout: tuple[Any, ...], names: list[str]) -> None:
        """A figure with one panel per metric and one line per group and source, kept and
        redrawn with new data until the layout changes (a redraw then costs tens of ms)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        shown, groups, sources, keys = layout
        cols = min(len(shown), 3)
        rows = math.ceil(len(shown) / cols)
        fig = Figure(figsize=(3.6 * cols, 2.6 * rows), dpi=80)
        self._canvas = FigureCanvasAgg(fig)
        self._artists = {}
        self._axes = []
        for index, name in enumerate(shown):
            ax = fig.add_subplot(rows, cols, index + 1)
            ax.set_title(name, fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=8)
            self._axes.append(ax)
            labelled = False
            for key in keys:
                line_name, group, source = key
                if line_name != name:
                    continue
                style = _GROUP_STYLES[groups.index(group) % len(_GROUP_STYLES)]
                colour = f"C{(sources.index(source) if len(sources) > 1 else groups.index(group)) % 10}"
                label = " ".join(p for p in (source, group) if p)
                (self._artists[key],) = ax.plot([], [], style, color=colour, label=label, linewidth=1.2)
                labelled = labelled or bool(label)
            if labelled and (len(groups) > 1 or len(sources) > 1):
                ax.legend(fontsize=7)
        title = self.title
        if len(names) > MAX_PANELS:
            title = f"{title} (+{len(names) - MAX_PANELS} more: {', '.join(names[MAX_PANELS:])})"
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        self._layout = layout

    def summary(self) -> str:
        """The plot in words (a terminal's or a reader's view)."""
        parts = []
        for (name, group, source), line in self._lines.items():
            values = [v for v in line.y if v is not None]
            if values:
                who = " ".join(p for p in (source, group) if p)
                parts.append(f"{name} ({who}): last {values[-1]:.4g}")
        return "; ".join(parts)


_warmed = threading.Event()


def warm_up() -> None:
    """Load matplotlib and its fonts in the background, once per process, so a task's first
    point is drawn without that wait (a first draw costs ~0.5 s cold, ~20 ms warm)."""
    if _warmed.is_set():
        return
    _warmed.set()

    def warm() -> None:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(2, 2), dpi=40)
            ax = fig.add_subplot(1, 1, 1)
            ax.plot([0, 1], [0, 1])
            ax.set_title("warm")
            FigureCanvasAgg(fig).print_png(io.BytesIO())
        except Exception:  # a convenience: the first real draw pays instead
            pass

    threading.Thread(target=warm, name="orch-plot-warm-up", daemon=True).start()


def cell_display() -> Show:
    """A ``show`` that puts the PNG in the running cell, updated in place."""
    from IPython.display import display, update_display

    handle: dict[str, Any] = {}

    def show(png: bytes) -> None:
        bundle = {
            "image/png": base64.b64encode(png).decode("ascii"),
            "text/plain": "<jupyter-orch metrics plot>",
        }
        if "id" not in handle:
            handle["id"] = display(bundle, raw=True, display_id=True).display_id
        else:
            update_display(bundle, raw=True, display_id=handle["id"])

    return show

"""A matplotlib backend for workers (``MPLBACKEND=module://jupyter_orch.cells.mplbackend``):
draws with Agg and, on ``plt.show()``, sends each open figure back as a PNG display output
(a remote cell's figures appear in the notebook like inline ones)."""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg

from .display import flush_figures

FigureCanvas = FigureCanvasAgg


def show(*args: Any, **kwargs: Any) -> None:
    flush_figures()

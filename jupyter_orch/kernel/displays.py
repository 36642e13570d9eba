"""The notebook views of client objects, registered with the client's display registry
(:mod:`jupyter_orch.client.display`): a future as a live :class:`.widgets.TaskStatusView`,
a workflow run as a live DAG (:func:`.dag.show_run`), many tasks' progress as an ipywidgets
bar. ``install()`` registers them; ipywidgets is imported only when a view is drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client import display

if TYPE_CHECKING:
    from ..client.futures import Future
    from ..client.progress import ProgressBar
    from ..client.runs import RunHandle
    from .widgets import TaskStatusView

_installed = False


def install() -> None:
    """Register the kernel's views for futures, runs and progress (idempotent, cheap)."""
    global _installed
    if _installed:
        return
    display.register("future", future_view)
    display.register("run", run_view)
    display.register("progress", ProgressView)
    _installed = True


def future_view(future: Future) -> TaskStatusView:
    """A task's live status; a finished one is drawn from its last view, not followed."""
    from .widgets import TaskStatusView

    done = future.last_view
    if done is None:
        return TaskStatusView(future)
    view = TaskStatusView(future, follow=False)
    view.set_task(done)
    return view


def run_view(handle: RunHandle) -> Any:
    """Display ``handle``'s run as a live DAG in the running cell."""
    from .dag import show_run

    return show_run(handle)


class ProgressView:
    """A :class:`~jupyter_orch.client.progress.ProgressBar` as an ipywidgets bar with its
    summary beside it, coloured by the outcome when the last task ends."""

    def __init__(self, bar: ProgressBar) -> None:
        import ipywidgets

        self.bar = bar
        self._progress = ipywidgets.IntProgress(value=0, min=0, max=max(bar.total, 1), bar_style="info")
        self._text = ipywidgets.HTML(value=bar.summary())
        self.widget = ipywidgets.HBox([self._progress, self._text])

    def draw(self, final: bool = False) -> None:
        self._progress.value = self.bar.done
        if final:
            self._progress.bar_style = "danger" if self.bar.failed else "success"
        self._text.value = self.bar.summary()

    def show(self) -> None:
        from IPython.display import display as show

        show(self.widget)

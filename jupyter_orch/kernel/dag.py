"""A workflow run as a live DAG in a notebook: ``show_run(handle)`` displays a :class:`RunView`
(an ipywidgets ``VBox``: an ``HTML`` with a summary line, the steps drawn as SVG left to
right, coloured by state, and the failed steps' errors; under it a live metric plot for each
step that reports, :mod:`.runplots`), redrawn from a background thread that follows the
server's events until the run ends. The drawing is :mod:`.dagdraw` (pure)."""

from __future__ import annotations

import json
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .dagdraw import DRAW_EVERY, POLL_SLICE, STEP_FIELDS, render, text
from .metricplot import warm_up
from .runplots import RunPlots, started

if TYPE_CHECKING:
    from ..client.runs import RunHandle


# ---------------------------------------------------------------------------- the live view
class _Reconnect(Exception):
    pass


class RunView:
    """A run's live DAG; ``widget`` is the DAG's ipywidgets ``HTML``, ``box`` what the cell
    shows: the DAG, and under it the plots of the steps that report metrics (``plots``). A
    background thread follows the events WebSocket (falling back to long polls) until the run
    ends."""

    def __init__(self, handle: RunHandle, follow: bool = True) -> None:
        import ipywidgets

        self.handle = handle
        self.plots = RunPlots(handle._api, self._show_plots)
        self._set({"id": handle.id, **(handle._repr_json_() or {})})
        self.note = ""
        self.draws = 0
        self.followed_by = ""  # "events" or "polling": how the view learnt of the end
        self.streams = 0  # events streams opened (one more each time one dropped)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._dirty = False
        self._drawn = 0.0
        self.widget = ipywidgets.HTML(value=render(self.run, note=self.note))
        self.box = ipywidgets.VBox([self.widget])
        if follow:
            warm_up()
            threading.Thread(target=self._follow, name=f"orch-run-{handle.id}", daemon=True).start()
        else:
            self._done.set()

    # -------------------------------------------------------------- public
    @property
    def running(self) -> bool:
        return self.run.get("state") == "running"

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the view has stopped following (the run ended and was drawn)."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Stop following and close the widgets."""
        self._stop.set()
        self.plots.close()
        self.widget.close()
        self.box.close()

    def text(self) -> str:
        return text(self.run)

    __repr__ = text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        return bundle

    # -------------------------------------------------------------- following
    @property
    def _closed(self) -> bool:
        return self._stop.is_set() or getattr(self.widget, "comm", None) is None

    def _follow(self) -> None:
        try:
            for _ in range(3):  # a dropped stream (or one that fell behind) is re-opened
                if not self.running or self._closed:
                    break
                try:
                    self._follow_events()
                except _Reconnect:
                    continue
        except Exception as exc:  # the stream is a convenience: poll instead
            self.note = f"(live updates by polling: {exc})"
        try:
            while self.running and not self._closed:
                self._set(self.handle.wait(timeout=POLL_SLICE))
                self.followed_by = self.followed_by or "polling"
                self.plots.catch_up(s for s in self.run.get("steps") or [] if s.get("state") == "running")
                self._draw()
            if not self._closed:
                self._set(self.handle.status())
                steps = started(self.run.get("steps") or [])
                if self.followed_by == "events":  # every point came live: read only what may trail
                    steps = [s for s in steps if str(s.get("task_id")) in self.plots.plots]
                self.plots.catch_up(steps)  # an ended run's curves are read here, once
        except Exception as exc:  # say why it stopped, never raise
            self.note = f"(live view stopped: {exc})"
        finally:
            if not self._closed:
                self.plots.finish()
                self._draw()
            self._done.set()

    def _follow_events(self) -> None:
        import websocket

        api = self.handle._api
        ws = websocket.create_connection(
            api.ws_url("/events?types=task,run&metrics=1"),
            header=api.headers(),
            timeout=api.timeout,
            skip_utf8_validation=True,
            http_no_proxy=[api.host],
        )
        self.streams += 1
        try:
            ws.recv()  # hello: from here on no change is missed
            self._set(self.handle.status())
            self.plots.catch_up(started(self.run.get("steps") or []))  # what came before the hello
            self._draw()
            while self.running and not self._closed:
                ws.settimeout(self._wait())
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    raw = None
                except (websocket.WebSocketException, OSError):
                    raise _Reconnect() from None  # dropped: open it again
                if raw == "":
                    raise _Reconnect()
                if raw:
                    self._event(json.loads(raw))
                if self._dirty and time.monotonic() - self._drawn >= DRAW_EVERY:
                    self._draw()
                self.plots.tick()
            self.followed_by = "events"
        finally:
            ws.close(timeout=1)

    def _wait(self) -> float:
        """How long the next read may wait: until a redraw is due, or a second."""
        due = [self.plots.due_in(), self._drawn + DRAW_EVERY - time.monotonic() if self._dirty else None]
        waits = [d for d in due if d is not None]
        return max(0.01, min(waits)) if waits else 1.0

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "overflow":
            raise _Reconnect()
        if kind == "metrics":
            self.plots.on_event(event)  # of one of this run's tasks, or ignored
            return
        if kind == "run" and event["run"].get("id") == self.run["id"]:
            self.run.update({k: v for k, v in event["run"].items() if k != "steps"})
            self._dirty = True  # an ended run is read once more, steps and all, by _follow
        elif kind == "task":
            task = event["task"]
            step = (task.get("metadata") or {}).get("step") or {}
            if not isinstance(step, dict) or step.get("run") != self.run["id"]:
                return
            s = self._by_task.get(str(task.get("id")))
            if s is None:  # a task of this run the view does not know: read the run again
                self._set(self.handle.status())
            else:
                s.update({k: task.get(k) for k in STEP_FIELDS})
                s["cached"] = str(task.get("reason") or "").startswith("cached:")
            self._dirty = True

    def _set(self, view: dict[str, Any]) -> None:
        self.run = dict(view)
        self._by_task = {str(s.get("task_id")): s for s in self.run.get("steps") or []}
        self.plots.steps(self.run.get("steps") or [])
        self._dirty = True

    def _show_plots(self, plots: list[Any]) -> None:
        self.box.children = (self.widget, *plots)

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        self._dirty = False
        self.widget.value = render(self.run, note=self.note)
        self.draws += 1


_SHOWN: weakref.WeakKeyDictionary[RunHandle, tuple[int | None, RunView]] = weakref.WeakKeyDictionary()


def show_run(handle: RunHandle, follow: bool = True) -> RunView:
    """Display ``handle``'s run as a live DAG. A handle shown twice in one cell (``%orch
    workflow`` shows it, then IPython displays the handle it returns) is shown once."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    count = getattr(shell, "execution_count", None)
    seen = _SHOWN.get(handle)
    if seen is not None and count is not None and seen[0] == count:
        return seen[1]
    view = RunView(handle, follow=follow)
    _SHOWN[handle] = (count, view)
    display(view)
    return view

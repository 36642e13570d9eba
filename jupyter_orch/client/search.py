"""Hyperparameter searches from the client: ``client.search(fn, space, metric=...)`` sends
the function's pickled call once and the search's settings; the server runs the trials
(``fn(*args, **params)``) as tasks, stops the unpromising ones early (ASHA) and keeps the
search going across its restarts. The returned :class:`Search` waits for the end, reads
the best trial and the trials' table, and cancels."""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..serialization import dumps_call

if TYPE_CHECKING:
    from .http import HttpApi

WAIT_SLICE = 30.0  # seconds per long poll


def search_request(
    fn: Callable[..., Any],
    space: Mapping[str, Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    settings: Mapping[str, Any],
    task: Mapping[str, Any],
) -> dict[str, Any]:
    """The POST /searches body: the call pickled once (its parameters come per trial)."""
    if not callable(fn):
        raise TypeError(f"search needs a callable, not {type(fn).__name__}")
    payload, depends = dumps_call(fn, args, kwargs)
    if depends:
        raise TypeError("a search's arguments cannot be futures: pass their values")
    name = settings.get("name") or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "search")
    body = {k: v for k, v in settings.items() if k != "name"}
    return {
        "name": name,
        "space": dict(space),
        **body,
        "task": {k: v for k, v in task.items() if v is not None},
        "payload": base64.b64encode(payload).decode(),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


class Search:
    """One hyperparameter search on the server."""

    def __init__(self, api: HttpApi, view: dict[str, Any]) -> None:
        self._api = api
        self.id: str = view["id"]
        self.name: str = view.get("name", "")
        self._view = view

    # ------------------------------------------------------------------ reading
    @property
    def state(self) -> str:
        return str(self._view.get("state"))

    @property
    def view(self) -> dict[str, Any]:
        """The search as last read (config, space, counts, best, trials)."""
        return self._view

    def refresh(self) -> Search:
        """Read the search again from the server."""
        self._view = self._api.get(f"/searches/{self.id}")
        return self

    @property
    def best(self) -> dict[str, Any] | None:
        """The best trial so far: number, params, task_id, value (the best of its metric) and
        step; None before any trial reported the metric."""
        if self.state == "running":
            self.refresh()
        best = self._view.get("best")
        return dict(best) if best else None

    def trials(self) -> list[dict[str, Any]]:
        """A row per trial, best first: number, task_id, params, state, best, best_step,
        last, step, rung, reason (why ASHA stopped it)."""
        self.refresh()
        return [dict(t) for t in self._view.get("trials") or []]

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait for the search to end (``timeout`` seconds at most: then ``TimeoutError``)
        and return :attr:`best`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE if deadline is None else max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))
            self._view = self._api.get(f"/searches/{self.id}/wait", timeout=f"{left:.3f}")
            if self._view["state"] != "running":
                break
            if deadline is not None and time.monotonic() >= deadline:
                counts = self._view.get("counts") or {}
                raise TimeoutError(
                    f"search {self.id} is still running after {timeout} s "
                    f"({counts.get('running', 0)} trial(s) running, {counts.get('succeeded', 0)} done)"
                )
        best = self._view.get("best")
        return dict(best) if best else None

    def cancel(self) -> Search:
        """Cancel the search: its running trials are cancelled, no new one starts."""
        self._view = self._api.post(f"/searches/{self.id}/cancel")
        return self

    # ------------------------------------------------------------------ showing
    def _rows(self) -> list[dict[str, Any]]:
        return list(self._view.get("trials") or [])

    def __repr__(self) -> str:
        counts = self._view.get("counts") or {}
        config = self._view.get("config") or {}
        lines = [
            f"<Search {self.name} {self.id} {self.state}: {counts.get('total', '?')} trials, "
            f"{config.get('metric')} ({config.get('mode', 'min')})>"
        ]
        best = self._view.get("best")
        if best:
            lines.append(
                f"  best: #{best['number']} {best['params']} {_fmt(best['value'])} at step {best['step']}"
            )
        for row in self._rows()[:20]:
            lines.append(
                f"  #{row['number']:<4} {row['state']:<10} best={_fmt(row.get('best')):<10} "
                + " ".join(f"{k}={_fmt(v)}" for k, v in (row.get("params") or {}).items())
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        config = self._view.get("config") or {}
        metric = html.escape(str(config.get("metric")))
        rows = self._rows()
        names = list(self._view.get("space") or {}) or sorted(
            {k for r in rows for k in r.get("params") or {}}
        )
        head = "".join(f"<th>{html.escape(str(n))}</th>" for n in names)
        body = []
        for row in rows:
            params = row.get("params") or {}
            cells = "".join(f"<td>{html.escape(_fmt(params.get(n)))}</td>" for n in names)
            reason = html.escape(str(row.get("reason") or ""))
            body.append(
                f"<tr title='{reason}'><td>{row['number']}</td>{cells}<td>{html.escape(_fmt(row.get('best')))}</td>"
                f"<td>{html.escape(_fmt(row.get('best_step')))}</td><td>{html.escape(str(row['state']))}</td></tr>"
            )
        counts = self._view.get("counts") or {}
        summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "total")
        return (
            f"<div><b>search {html.escape(self.name)}</b> <code>{self.id}</code> {html.escape(self.state)}"
            f" ({html.escape(summary)}; {counts.get('total', '?')} in all), {metric} "
            f"{'lower' if config.get('mode', 'min') == 'min' else 'higher'} is better"
            f"<table><thead><tr><th>#</th>{head}<th>best {metric}</th><th>at step</th><th>state</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table></div>"
        )

    def _repr_json_(self) -> Any:
        return json.loads(json.dumps(self._view))


__all__ = ["Search", "search_request"]

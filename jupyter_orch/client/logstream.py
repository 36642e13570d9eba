"""Following a task's output as it is written (``/tasks/{id}/logs/follow``): the lines so
far, then live ones, until the task ends; and, for a caller that asks (``on_metrics``), the
metric points the task reports, those stored first, then live ones. Blocking, on the
calling thread, so a kernel's interrupt (SIGINT) stops it where it waits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import websocket

from ..core.errors import ERRORS_BY_CODE, OrchError
from .http import HttpApi


def plain_text(line: dict[str, Any]) -> str:
    """A log line as a terminal shows it: a display output by its text/plain form."""
    text = str(line.get("text", ""))
    if line.get("stream") == "display":
        try:
            data = json.loads(text).get("data") or {}
        except (ValueError, AttributeError):
            return text
        plain = data.get("text/plain")
        kinds = ", ".join(k for k in data if k != "text/plain")
        return str(plain) if plain and not kinds else f"{plain or ''} [display: {kinds}]".strip()
    return text


MetricsCallback = Callable[[int, int, list[list[Any]]], None]
"""``on_metrics(attempt, offset, points)``: ``points`` are ``[ts, step, group, {name: value}]``
(see :mod:`jupyter_orch.core.metrics`), numbered in the attempt from ``offset``."""


class LogFollow:
    """Iterate over a task's log lines (``{"ts", "stream", "text"}``); afterwards ``task``
    is the task as it ended.

    ``on_metrics(attempt, offset, points)``, when given, is called (on the iterating
    thread, between lines) with the metric points of the attempt followed: first those
    stored so far, then each batch as it comes; when a retry starts, with the new attempt's
    from offset 0. Points are never given twice, so ``offset`` is where the caller's series
    of that attempt stands."""

    def __init__(
        self,
        api: HttpApi,
        task_id: str,
        attempt: int | None = None,
        on_state: Callable[[dict[str, Any]], None] | None = None,
        on_metrics: MetricsCallback | None = None,
    ) -> None:
        self.task_id = task_id
        self.task: dict[str, Any] | None = None
        self._on_state = on_state  # called with the task at each change of state, and at the end
        self._on_metrics = on_metrics
        params = ([f"attempt={attempt}"] if attempt else []) + (["metrics=1"] if on_metrics else [])
        query = "?" + "&".join(params) if params else ""
        self._ws = websocket.create_connection(
            api.ws_url(f"/tasks/{task_id}/logs/follow") + query,
            header=api.headers(),
            timeout=api.timeout,
            skip_utf8_validation=True,
            http_no_proxy=[api.host],
        )
        self._ws.settimeout(None)  # a task may print nothing for hours

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            while True:
                raw = self._ws.recv()
                if not raw:
                    return
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "lines":
                    yield from msg["lines"]
                elif kind == "metrics":
                    if self._on_metrics is not None:
                        self._on_metrics(int(msg["attempt"]), int(msg["offset"]), list(msg["points"]))
                elif kind in ("state", "end"):
                    self.task = dict(msg["task"])
                    if self._on_state is not None:
                        self._on_state(self.task)
                    if kind == "end":
                        return
                elif kind == "error":
                    cls = ERRORS_BY_CODE.get(msg.get("error"), OrchError)
                    raise cls(msg.get("message") or "cannot follow the task's log")
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._ws.close(timeout=1)
        except Exception:
            pass

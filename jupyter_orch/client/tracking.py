"""The client's futures by task id: every live one (held weakly, so one id maps to one
future) and those still awaited (submitted or watched, not done). It is the session's
:class:`~.session.SessionListener`: what the server reports settles these futures."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from .futures import Future


class FutureTable:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known: weakref.WeakValueDictionary[str, Future] = weakref.WeakValueDictionary()
        self.awaited: dict[str, Future] = {}  # submitted or watched, not done yet

    def add(self, fut: Future) -> None:
        """A future just made: known, and awaited until the server reports its end."""
        with self.lock:
            self.known[fut.id] = fut
            self.awaited[fut.id] = fut

    def existing(self, task_id: str, make: Callable[[], Future]) -> tuple[Future, bool]:
        """The future known for ``task_id``, else ``make()`` added: (future, made)."""
        with self.lock:
            fut = self.known.get(task_id)
            if fut is not None:
                return fut, False
            fut = make()
            self.known[task_id] = fut
            self.awaited[task_id] = fut
            return fut, True

    def forget(self, task_id: str) -> None:
        with self.lock:
            self.known.pop(task_id, None)

    # ---------------------------------------------------------------- SessionListener
    def open_ids(self) -> list[str]:
        with self.lock:
            return list(self.awaited)

    def on_done(self, view: dict[str, Any], blob: bytes | None) -> None:
        with self.lock:
            fut = self.awaited.pop(view["id"], None) or self.known.get(view["id"])
        if fut is not None:
            fut.name = fut.name or view.get("name", "")
            fut._set_done(view, blob)

    def on_accepted(self, task_ids: list[str]) -> None:
        with self.lock:
            futures = [self.known.get(i) for i in task_ids]
        for fut in futures:
            if fut is not None:
                fut._accepted.set()

    def on_rejected(self, task_id: str | None, error: BaseException) -> None:
        with self.lock:
            fut = self.awaited.pop(task_id or "", None)
        if fut is not None:
            fut._set_done(None, None, error)

    def on_unknown(self, task_id: str | None, error: BaseException) -> None:
        """The server does not know a task we watch. Only a future it had accepted (or one
        made for an existing id) is answered by that: a watch sent on connect can overtake
        the submit of a future another thread is making, which the server then accepts."""
        with self.lock:
            fut = self.awaited.get(task_id or "")
            if fut is None or not fut._accepted.is_set():
                return
            self.awaited.pop(task_id or "", None)
        fut._set_done(None, None, error)

"""A watch that survives: list, then watch from the list's resourceVersion; when a stream
ends or drops, resume from the last version seen; when the API answers ``410 Gone`` (that
version is too old), list again and go on.

It runs in a thread (the official client blocks) and hands each event to the event loop.
After every list the consumer gets a ``SYNC`` with all current objects, so anything it
missed while the list was out of date (a pod deleted meanwhile) can be reconciled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import watch

from .client import ApiException, api_message

log = logging.getLogger("jupyter_orch.providers.kubernetes")

Lister = Callable[[], tuple[list[dict[str, Any]], str]]
Watcher = Callable[[str, int, watch.Watch], Iterator[dict[str, Any]]]
Handler = Callable[[str, Any], None]  # ("SYNC", [objects]) or (ADDED|MODIFIED|DELETED, object)


class ResumableWatch:
    def __init__(
        self,
        name: str,
        lister: Lister,
        watcher: Watcher,
        handler: Handler,
        loop: asyncio.AbstractEventLoop,
        *,
        timeout: int = 60,
        max_backoff: float = 10.0,
    ) -> None:
        self.name = name
        self._lister = lister
        self._watcher = watcher
        self._handler = handler
        self._loop = loop
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.resource_version = ""
        self.lists = 0  # how many times it listed (the first, and after each 410 Gone)
        self.resumes = 0  # how many times a stream was resumed from a resourceVersion
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._current: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"orch-watch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        current = self._current
        if current is not None:
            current.stop()
            resp = getattr(current, "_resp", None)
            if resp is not None:
                try:  # wake the reader blocked on the stream
                    resp.close()
                except Exception:  # already closed
                    pass

    def _deliver(self, kind: str, obj: Any) -> bool:
        if self._stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._handler, kind, obj)
        except RuntimeError:  # the loop is closed: the server is gone
            self._stop.set()
            return False
        return True

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    items, self.resource_version = self._lister()
                    self.lists += 1
                    if not self._deliver("SYNC", items):
                        return
                self._current = watch.Watch()
                for event in self._watcher(self.resource_version, self.timeout, self._current):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion")
                    if version:
                        self.resource_version = str(version)
                    if event.get("type") != "BOOKMARK" and not self._deliver(str(event.get("type")), obj):
                        return
                    delay = 0.1
                self.resumes += 1  # the stream ended (its timeout): go on from the last version
            except ApiException as exc:
                if exc.status == 410:
                    log.info(
                        "watch of %s: version %s is gone; listing again", self.name, self.resource_version
                    )
                    self.resource_version = ""
                    continue
                self._failed(exc, delay)
                delay = min(delay * 2, self.max_backoff)
            except Exception as exc:  # a dropped connection, a refused one, a bad answer
                if self._stop.is_set():
                    return
                self._failed(exc, delay)
                delay = min(delay * 2, self.max_backoff)
                self.resumes += 1

    def _failed(self, exc: BaseException, delay: float) -> None:
        self.failures += 1
        self.last_error = api_message(exc)
        level = logging.WARNING if self.failures % 10 == 1 else logging.DEBUG
        log.log(level, "watch of %s failed (%s); again in %.1f s", self.name, self.last_error, delay)
        self._stop.wait(delay)

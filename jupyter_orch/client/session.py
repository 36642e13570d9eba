"""The client's session WebSocket (``/orch/api/v1/session``): submits go out as frames,
results come back as ``done`` messages, and after a dropped connection (a server restart)
it reconnects, re-sends unacknowledged submits (ids make them idempotent) and re-watches
open futures.

Who does what: the thread that calls ``submit`` writes its frame itself, at once, while
few submit frames await their acknowledgement (a round trip costs no hand-over between
threads); in a burst, submits queue and leave together as one frame (up to
:data:`MAX_BATCH_TASKS`) after :data:`BATCH_DELAY`. One daemon thread, ``orch-session``,
connects, reads every frame, sends what queued, pings an idle connection and reconnects.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..core import protocol
from ..core.errors import ERRORS_BY_CODE, OrchError
from . import handoff
from .link import LinkError, Refused, SessionLink, drain

if TYPE_CHECKING:
    from .http import HttpApi

log = logging.getLogger("jupyter_orch.client")
MAX_BATCH_TASKS = 2000
MAX_BATCH_BYTES = 64 << 20
DIRECT_FRAMES = 8  # submit frames that may await their acknowledgement before submits queue
DIRECT_BYTES = 256 << 10  # a larger submit is written by the session thread: submit() returns at once
BATCH_DELAY = 0.001  # how long a queued submit waits for others to join its frame
PING_INTERVAL = 20.0  # an idle connection is pinged this often, and dropped after two silent intervals

Item = tuple[dict[str, Any], bytes | None]


class SessionListener(Protocol):
    """What the session tells its owner (the client's table of futures)."""

    def open_ids(self) -> list[str]:
        """The tasks still awaited: watched again after a reconnect."""
        ...

    def on_done(self, view: dict[str, Any], blob: bytes | None) -> None: ...

    def on_accepted(self, task_ids: list[str]) -> None: ...

    def on_rejected(self, task_id: str | None, error: BaseException) -> None: ...

    def on_unknown(self, task_id: str | None, error: BaseException) -> None: ...


class SessionChannel:
    def __init__(self, api: HttpApi, listener: SessionListener) -> None:
        self.api = api
        self.listener = listener
        # _lock guards the queue, the frames in flight and the current link; _wlock keeps
        # frames on the wire in the order of their request numbers (taken before _lock is left)
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        self._queue: collections.deque[Item] = collections.deque()
        self._queued_at: float | None = None  # when the queue last went from empty to not
        self._urgent = False  # a large submit waits in the queue: send it without delay
        self._inflight: dict[int, list[Item]] = {}
        self._req = 0
        self._link: SessionLink | None = None
        self._closed = False
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.handoff: dict[str, Any] | None = None  # the server's payload hand-off, if usable here
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="orch-session", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- from any thread
    def submit(self, spec: dict[str, Any], payload: bytes | None) -> None:
        if self.last_error is not None:  # the server refused our token: nothing will be sent
            self.listener.on_rejected(spec["id"], OrchError(self.last_error))
            return
        size = len(payload) if payload is not None else 0
        with self._lock:
            link = self._link
            if (
                link is not None
                and not self._queue
                and len(self._inflight) < DIRECT_FRAMES
                and size < DIRECT_BYTES
            ):
                frame = self._frame([(spec, payload)])
                self._wlock.acquire()
            else:
                self._queue.append((spec, payload))
                wake = self._queued_at is None or (size >= DIRECT_BYTES and not self._urgent)
                if self._queued_at is None:
                    self._queued_at = time.monotonic()
                self._urgent = self._urgent or size >= DIRECT_BYTES
                link = None
        if link is None:
            if wake:
                self._wake()
            return
        try:
            self._write(link, frame)
        finally:
            self._wlock.release()

    def watch(self, task_ids: list[str]) -> None:
        if not task_ids:
            return
        with self._lock:
            link = self._link
            if link is None:
                return  # every open future is watched when the connection is made
            self._wlock.acquire()
        try:
            self._write(link, json.dumps({"type": "watch", "ids": task_ids}))
        finally:
            self._wlock.release()

    def close(self) -> None:
        self._closed = True
        self._wake()
        self._thread.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()

    # ---------------------------------------------------------------- writing
    def _frame(self, items: list[Item]) -> str | bytes:
        """The submit frame for ``items``, recorded as in flight (under ``_lock``)."""
        self._req += 1
        self._inflight[self._req] = items
        blobs = [(f"payload:{spec['id']}", payload) for spec, payload in items if payload is not None]
        return protocol.encode(
            {"type": "submit", "req": self._req, "tasks": [spec for spec, _ in items]},
            blobs or [("none", b"")],
        )

    def _write(self, link: SessionLink, frame: str | bytes) -> None:
        """Write a frame (under ``_wlock``); a broken link is left to the reading thread,
        which reconnects and sends again what was not acknowledged."""
        try:
            link.send(frame)
        except LinkError:
            link.shutdown()

    def _flush(self, link: SessionLink) -> None:
        """Send everything queued, in frames of up to MAX_BATCH_TASKS / MAX_BATCH_BYTES."""
        while True:
            with self._lock:
                if self._link is not link or not self._queue:
                    return
                items: list[Item] = []
                size = 0
                while self._queue and len(items) < MAX_BATCH_TASKS and size < MAX_BATCH_BYTES:
                    item = self._queue.popleft()
                    items.append(item)
                    size += len(item[1] or b"")
                if not self._queue:
                    self._queued_at, self._urgent = None, False
                frame = self._frame(items)
                self._wlock.acquire()
            try:
                self._write(link, frame)
            finally:
                self._wlock.release()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (a full buffer) or closed

    # ---------------------------------------------------------------- the session thread
    def _run(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                link = self._connect()
            except Refused as exc:
                if exc.status in (401, 403):
                    self.last_error = f"the server refused this client's token (HTTP {exc.status})"
                    self._fail_everything(self.last_error)
                    return
                link = None
            except (*LinkError, protocol.ProtocolError):
                link = None
            if link is None:
                self._pause(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            try:
                self._serve(link)
            finally:
                with self._lock:
                    self._link = None
                    self.connected.clear()
                link.close()

    def _pause(self, seconds: float) -> None:
        """Sleep between connection attempts; close() ends it early."""
        select.select([self._wake_r], [], [], seconds)
        drain(self._wake_r)

    def _connect(self) -> SessionLink:
        api = self.api
        # batch=1: the server may send several messages in one frame
        link = SessionLink.open(
            api.ws_url(f"/session?batch={protocol.BATCH}"), api.headers(), api.timeout, api.host
        )
        try:
            while True:  # the server speaks first: hello (owner, payload hand-off)
                messages = link.read()
                if messages is None:
                    raise ConnectionError("the server closed the session")
                for msg in messages:
                    self._handle(msg)
                if any(msg.type == "hello" for msg in messages):
                    break
        except BaseException:
            link.close()
            raise
        with self._lock:
            # what was sent but not acknowledged goes again (idempotent), before what queued
            resend = [item for req in sorted(self._inflight) for item in self._inflight[req]]
            self._inflight.clear()
            self._queue.extendleft(reversed(resend))
            submitting = {spec["id"] for spec, _ in self._queue}
            self._link = link
            self.connected.set()
        self._flush(link)
        # the rest of the open futures are watched; those (re)submitted now need not be:
        # the server follows what it accepts on this session
        self.watch([i for i in self.listener.open_ids() if i not in submitting])
        return link

    def _serve(self, link: SessionLink) -> None:
        """Read frames and send what queues until the connection ends or close()."""
        heard = time.monotonic()
        pinged = False
        while not self._closed:
            now = time.monotonic()
            with self._lock:
                queued_at, urgent = self._queued_at, self._urgent
            if queued_at is not None and (urgent or now - queued_at >= BATCH_DELAY):
                self._flush(link)
                continue
            timeout = heard + PING_INTERVAL - now
            if queued_at is not None:
                timeout = min(timeout, queued_at + BATCH_DELAY - now)
            try:
                if not link.wait_readable(max(timeout, 0.0), self._wake_r):
                    if time.monotonic() - heard >= PING_INTERVAL:
                        if pinged:
                            log.warning("jupyter-orch: the server stopped answering; reconnecting")
                            return
                        link.ping()
                        pinged, heard = True, time.monotonic()
                    continue
                messages = link.read()
            except LinkError:
                return
            except protocol.ProtocolError as exc:
                log.warning("jupyter-orch: unreadable message from the server: %s", exc)
                continue
            if messages is None:
                return
            heard, pinged = time.monotonic(), False
            for msg in messages:
                self._handle(msg)

    def _handle(self, msg: protocol.Message) -> None:
        kind = msg.type
        if kind == "done":
            for view in msg.get("tasks") or [msg["task"]]:
                self.listener.on_done(view, msg.blobs.get(f"result:{view['id']}", msg.blobs.get("result")))
        elif kind == "accepted":
            with self._lock:
                self._inflight.pop(msg.get("req"), None)
            self.listener.on_accepted(list(msg.get("ids") or []))
        elif kind == "rejected":
            with self._lock:
                items = self._inflight.pop(msg.get("req"), [])
            cls = ERRORS_BY_CODE.get(msg.get("error"), OrchError)
            error = cls(msg.get("message") or "rejected by the server", field=msg.get("field"))
            for spec, _ in items:
                if spec.get("payload_file") and self.handoff is not None:
                    handoff.discard(self.handoff, spec["id"])
                self.listener.on_rejected(spec["id"], error)
        elif kind == "unknown":
            cls = ERRORS_BY_CODE.get(msg.get("error"), OrchError)
            self.listener.on_unknown(msg.get("id"), cls(msg.get("message") or "unknown task"))
        elif kind == "hello":
            self.handoff = handoff.usable(msg.get("handoff"))
        elif kind == "error":
            log.warning("jupyter-orch server: %s", msg.get("message"))

    def _fail_everything(self, message: str) -> None:
        error = OrchError(message)
        with self._lock:
            items = list(self._queue) + [i for batch in self._inflight.values() for i in batch]
            self._queue.clear()
            self._inflight.clear()
            self._queued_at, self._urgent = None, False
        for spec, _ in items:
            self.listener.on_rejected(spec["id"], error)

"""The client's session WebSocket (``/orch/api/v1/session``), run on a private asyncio
loop in a daemon thread: submits are batched into as few frames as possible, results come
back as ``done`` messages, and after a dropped connection (a server restart) it reconnects,
re-sends unacknowledged submits (ids make them idempotent) and re-watches open futures.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import threading
from typing import TYPE_CHECKING, Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .. import wire
from ..core import protocol
from ..core.errors import ERRORS_BY_CODE, OrchError
from . import handoff

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("jupyter_orch.client")
MAX_BATCH_TASKS = 2000
MAX_BATCH_BYTES = 64 << 20


class SessionChannel:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[dict[str, Any], bytes | None]] = collections.deque()
        self._flush_scheduled = False
        self._inflight: dict[int, list[tuple[dict[str, Any], bytes | None]]] = {}
        self._req = 0
        self._ws: WebSocketClientConnection | None = None
        self._closed = False
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.handoff: dict[str, Any] | None = None  # the server's payload hand-off, if usable here
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="orch-session", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    # ---------------------------------------------------------------- from any thread
    def submit(self, spec: dict[str, Any], payload: bytes | None) -> None:
        with self._lock:
            self._queue.append((spec, payload))
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._loop.call_soon_threadsafe(self._flush)

    def watch(self, task_ids: list[str]) -> None:
        self._loop.call_soon_threadsafe(self._send_watch, task_ids)

    def close(self) -> None:
        self._closed = True

        def _stop() -> None:
            if self._ws is not None:
                self._ws.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(_stop)
        self._thread.join(timeout=5)

    # ---------------------------------------------------------------- on the loop
    def _flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            if self._ws is None:
                return  # sent after (re)connecting
            items: list[tuple[dict[str, Any], bytes | None]] = []
            size = 0
            while self._queue and len(items) < MAX_BATCH_TASKS and size < MAX_BATCH_BYTES:
                item = self._queue.popleft()
                items.append(item)
                size += len(item[1] or b"")
            more = bool(self._queue)
        if items:
            self._send_batch(items)
        if more:
            with self._lock:
                self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _send_batch(self, items: list[tuple[dict[str, Any], bytes | None]]) -> None:
        self._req += 1
        self._inflight[self._req] = items
        blobs = [(f"payload:{spec['id']}", payload) for spec, payload in items if payload is not None]
        frame = protocol.encode(
            {"type": "submit", "req": self._req, "tasks": [spec for spec, _ in items]},
            blobs or [("none", b"")],
        )
        self._write(frame)

    def _send_watch(self, task_ids: list[str]) -> None:
        if task_ids and self._ws is not None:
            self._write(json.dumps({"type": "watch", "ids": task_ids}))

    def _write(self, frame: str | bytes) -> None:
        if self._ws is None:
            return
        try:
            wire.send(self._ws.protocol, frame)
        except WebSocketClosedError:
            pass

    def _on_ws_message(self, message: str | bytes | None, closed: asyncio.Event) -> None:
        """Each frame as tornado reads it (no queue between us and the socket)."""
        if message is None:
            closed.set()
            return
        try:
            for msg in protocol.decode_all(message):
                self._handle(msg)
        except protocol.ProtocolError as exc:
            log.warning("jupyter-orch: unreadable message from the server: %s", exc)

    async def _connect(self, closed: asyncio.Event) -> WebSocketClientConnection:
        api = self.client.api
        request = HTTPRequest(
            # batch=1: the server may send several messages in one frame
            api.ws_url(f"/session?batch={protocol.BATCH}"),
            headers=api.headers(),
            connect_timeout=10,
            request_timeout=30,
        )
        ws = await websocket_connect(
            request,
            max_message_size=2 << 30,
            ping_interval=20,
            on_message_callback=lambda m: self._on_ws_message(m, closed),
        )
        ws.protocol.set_nodelay(True)  # type: ignore[union-attr]  # a submit must not wait for Nagle
        return ws

    async def _run(self) -> None:
        delay = 0.1
        while not self._closed:
            closed = asyncio.Event()
            try:
                ws = await self._connect(closed)
            except HTTPClientError as exc:
                if exc.code in (401, 403):
                    self.last_error = f"the server refused this client's token (HTTP {exc.code})"
                    self._fail_everything(self.last_error)
                    return
                ws = None
            except OSError:
                ws = None
            if ws is None:
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            self._ws = ws
            self.connected.set()
            # after a reconnect: what was sent but not acknowledged goes again (idempotent)
            resend = [item for req in sorted(self._inflight) for item in self._inflight[req]]
            self._inflight.clear()
            with self._lock:
                self._queue.extendleft(reversed(resend))
                submitting = {spec["id"] for spec, _ in self._queue}
            self._flush()
            # the rest of the open futures are watched; those (re)submitted now need not be:
            # the server follows what it accepts on this session
            self._send_watch([i for i in self.client._open_ids() if i not in submitting])
            await closed.wait()
            self._ws = None
            self.connected.clear()

    def _handle(self, msg: protocol.Message) -> None:
        kind = msg.type
        if kind == "done":
            for view in msg.get("tasks") or [msg["task"]]:
                self.client._on_done(view, msg.blobs.get(f"result:{view['id']}", msg.blobs.get("result")))
        elif kind == "accepted":
            self._inflight.pop(msg.get("req"), None)
            self.client._on_accepted(list(msg.get("ids") or []))
        elif kind == "rejected":
            items = self._inflight.pop(msg.get("req"), [])
            cls = ERRORS_BY_CODE.get(msg.get("error"), OrchError)
            error = cls(msg.get("message") or "rejected by the server", field=msg.get("field"))
            for spec, _ in items:
                if spec.get("payload_file") and self.handoff is not None:
                    handoff.discard(self.handoff, spec["id"])
                self.client._on_rejected(spec["id"], error)
        elif kind == "unknown":
            cls = ERRORS_BY_CODE.get(msg.get("error"), OrchError)
            self.client._on_rejected(msg.get("id"), cls(msg.get("message") or "unknown task"))
        elif kind == "hello":
            self.handoff = handoff.usable(msg.get("handoff"))
        elif kind == "error":
            log.warning("jupyter-orch server: %s", msg.get("message"))

    def _fail_everything(self, message: str) -> None:
        error = OrchError(message)
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
        for spec, _ in queued + [i for items in self._inflight.values() for i in items]:
            self.client._on_rejected(spec["id"], error)
        self._inflight.clear()

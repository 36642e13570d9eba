"""``/workers/connect``: a worker's one WebSocket to the server (see ``core.protocol``).
The handler authenticates the worker's token before the upgrade, then is the engine's link
to that worker: it hands each frame read to the engine and writes what the engine sends
(batched once the worker's hello offers batches)."""

from __future__ import annotations

from typing import Any

from tornado import web
from tornado.websocket import WebSocketHandler

from ..core import protocol
from ..core.batching import Frame
from ..core.errors import Unauthorized
from .base import bearer_secret
from .socketwriter import SocketWriter
from .wsroute import WebSocketRoute


class WorkerConnectHandler(WebSocketRoute, WebSocketHandler):
    """``/workers/connect``: a worker's one connection (see ``core.protocol``)."""

    token: Any = None
    handle: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = SocketWriter(lambda: self.ws_connection)

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return int(self.orch.engine_config.max_payload_bytes) + (16 << 20)

    @property
    def ping_interval(self) -> float:  # type: ignore[override]
        return 10.0

    @property
    def ping_timeout(self) -> float:  # type: ignore[override]
        return 10.0

    def check_origin(self, origin: str) -> bool:
        return False  # workers never come from a browser

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Origin"):
            raise web.HTTPError(403, "workers do not connect from browsers")
        secret = bearer_secret(self)
        engine = await self.engine()
        token = await engine.find_token(secret) if secret else None
        if token is None or token.revoked or token.scope != "worker":
            why = (
                "no token"
                if not secret
                else ("a revoked token" if token and token.revoked else "a bad token")
            )
            self.log.warning("refused a worker connection from %s: %s", self.request.remote_ip, why)
            self.send_orch_error(Unauthorized(f"worker refused: {why}"))
            return
        self.check_handshake()
        self.token = token
        self._engine = engine
        await super().get(*args, **kwargs)  # returns when the connection has ended
        self.log_closed()

    def get_compression_options(self) -> None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small frames (assign, ack, cancel) must not wait for Nagle

    def send(self, frame: Frame, *, lazy: bool = False) -> None:
        self._writer.send(frame, lazy=lazy)

    def flush_frames(self) -> None:
        self._writer.flush()

    def close(self, code: int | None = None, reason: str | None = None) -> None:  # type: ignore[override]
        if isinstance(code, str):  # the engine's WorkerLink.close(reason)
            code, reason = 1000, code
        super().close(code, reason)

    def on_message(self, message: str | bytes) -> None:
        # synchronous: tornado reads the next frame at once instead of awaiting a task
        try:
            if self.handle is None:
                msg = protocol.decode(message)
                if msg.type != "hello":
                    raise protocol.ProtocolError("the first message must be hello")
                if msg.get("batch") == protocol.BATCH:
                    self._writer.start_batching()
                self.handle = self._engine.worker_hello(self.token, self, msg)
                return
            for msg in protocol.decode_all(message):
                self._engine.worker_message(self.handle, msg)
        except protocol.ProtocolError as exc:
            self.log.warning(
                "worker %s: %s; closing its connection", self.handle.name if self.handle else "?", exc
            )
            self.send(protocol.encode({"type": "error", "message": str(exc)}))
            self.close(1008, str(exc)[:120])

    def on_close(self) -> None:
        self._writer.discard()
        if self.handle is not None:
            self._engine.worker_disconnected(self.handle, self)

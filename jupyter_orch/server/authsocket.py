"""The base of the WebSockets a user opens (events, log follow, the client session): behind
the same authentication as the REST API (an orch token or the Jupyter login), query
arguments checked before the upgrade, JSON messages out."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .. import wire
from ..core.errors import Unauthorized
from .wsroute import WebSocketRoute


class AuthedWebSocket(WebSocketRoute, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A WebSocket behind the same authentication as the REST API."""

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            if await self.authenticate_orch_token():
                return
        except Unauthorized as exc:
            raise web.HTTPError(401, exc.message) from None
        await JupyterHandler.prepare(self, _redirect_to_login=False)  # type: ignore[call-arg]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "log in to Jupyter or send an orch token")
        self.check_handshake()
        self.read_arguments()
        self._engine = await self.engine()
        if self.orch.owner_from == "identity":
            self.identity  # noqa: B018  (learns the user's hub groups, as a REST request does)
        await self.check_access(*args, **kwargs)  # refused before the upgrade: a 403 or 404
        await super().get(*args, **kwargs)  # returns when the connection has ended
        self.log_closed()

    def read_arguments(self) -> None:
        """Check the query arguments before the upgrade (a bad one is a 400, not a closed
        socket)."""

    async def check_access(self, *args: Any, **kwargs: Any) -> None:
        """Raise :class:`~jupyter_orch.core.errors.OrchError` if the caller may not open this
        route (what it names is another user's): answered as HTTP, before the upgrade."""

    def get_compression_options(self) -> None:
        return None

    def send_json(self, data: Any) -> None:
        try:
            wire.send(self.ws_connection, json.dumps(data))
        except WebSocketClosedError:
            pass

"""The worker's WebSocket to the server: connect, authenticate, reconnect with backoff.

:class:`Connection` runs the session loop: connect with the worker token, send ``hello``,
wait for ``welcome``, hand every server message to the :class:`Session` (the agent), and
when the connection drops, reconnect with exponential backoff and jitter. It never ends a
running task: what the agent cannot send while disconnected, it buffers itself.

A refused token (HTTP 401/403 on the upgrade) or an ``error`` message from the server is
fatal (:class:`ServerRefused`); anything else (refused connection, 5xx, a dropped socket)
is retried.

With a ``server_file`` (the ``server.json`` a server writes into its data directory; local
workers get theirs), the URL is read again from it before each new connection: a server
restarted on another port (a crash, then a JupyterHub spawn on a new port) is followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .. import wire
from .._version import __version__
from ..core import protocol
from ..core.batching import FrameBatcher
from .aio import wait_event, wait_future

log = logging.getLogger("jupyter_orch.worker")

MAX_MESSAGE_SIZE = 1 << 30


class ServerRefused(Exception):
    """The server will not take this worker (bad token, fatal ``error`` message)."""


class Session(Protocol):
    """What the connection needs from the agent."""

    def hello(self) -> dict[str, Any]: ...

    def on_welcome(self, message: protocol.Message) -> None: ...

    def on_message(self, message: protocol.Message) -> None: ...

    def on_disconnected(self) -> None: ...


def connect_url(server: str) -> str:
    """``ws(s)://host[:port]/<base>/orch/api/v1/workers/connect`` from the server's URL."""
    parts = urlsplit(server.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"the server URL must look like http://host:port, not {server!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(protocol.CONNECT_PATH):
        path += protocol.CONNECT_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def http_url(server: str) -> str:
    """``http(s)://host[:port]/<base>`` of the server, as clients (and tasks) reach it."""
    parts = urlsplit(server.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/")
    if path.endswith(protocol.CONNECT_PATH):
        path = path[: -len(protocol.CONNECT_PATH)]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _server_message(exc: HTTPClientError) -> str:
    """The ``message`` of the server's JSON error body, else its text, else the reason."""
    body = b""
    if exc.response is not None and exc.response.body:
        body = exc.response.body
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    except ValueError:
        pass
    return text[:500] or str(exc.message or exc)


class Connection:
    """The session loop over one WebSocket at a time."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        max_backoff: float = 5.0,
        initial_backoff: float = 0.1,
        connect_timeout: float = 10.0,
        welcome_timeout: float = 30.0,
        server_file: str | None = None,
    ) -> None:
        self.server = server
        self.url = connect_url(server)
        self.server_file = server_file
        self.token = token
        self.max_backoff = max_backoff
        self.initial_backoff = initial_backoff
        self.connect_timeout = connect_timeout
        self.welcome_timeout = welcome_timeout
        self.connections = 0  # how many sessions got their welcome
        self._conn: WebSocketClientConnection | None = None
        self._batcher: FrameBatcher | None = None  # when the server's welcome offers batches
        self._stopping = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def send(
        self, header: dict[str, Any], blobs: Sequence[tuple[str, bytes]] | None = None, *, lazy: bool = False
    ) -> bool:
        """Queue a message on the live connection; False (nothing sent) when there is none.

        Messages sent in one turn of the loop leave together; a ``lazy`` one may wait a
        little to leave with the next (see :mod:`jupyter_orch.core.batching`)."""
        conn = self._conn
        if conn is None:
            return False
        frame = protocol.encode(header, blobs)
        if self._batcher is not None:
            self._batcher.send(frame, lazy=lazy)
            return True
        return _write(conn, frame)

    def flush(self) -> None:
        """Send what is queued now instead of at the end of this loop turn."""
        if self._batcher is not None:
            self._batcher.flush()

    def stop(self) -> None:
        """End the session loop (closes the connection)."""
        self._stopping.set()
        if self._conn is not None:
            self._conn.close(1000, "worker stopping")

    async def _connect(self, link: _Link) -> WebSocketClientConnection:
        request = HTTPRequest(
            self.url,
            headers={
                "Authorization": f"Bearer {self.token}",
                "User-Agent": f"jupyter-orch-worker/{__version__}",
            },
            connect_timeout=self.connect_timeout,
            request_timeout=self.connect_timeout,
        )
        try:
            conn = await websocket_connect(
                request,
                max_message_size=MAX_MESSAGE_SIZE,
                compression_options=None,
                ping_interval=20,
                ping_timeout=20,
                on_message_callback=link.on_frame,
            )
        except HTTPClientError as exc:
            if exc.code in (401, 403):
                raise ServerRefused(
                    f"the server refused this worker's token: {_server_message(exc)}"
                ) from None
            raise
        if conn.protocol is not None:  # small messages (started, log, finished) go out at once
            conn.protocol.set_nodelay(True)
        return conn

    def _follow_server_file(self) -> None:
        """Take the server's URL from ``server_file`` when it names another one (a missing
        or unreadable file changes nothing)."""
        if not self.server_file:
            return
        try:
            url = json.loads(Path(self.server_file).read_text())["url"]
            ws_url = connect_url(str(url))
        except (OSError, ValueError, KeyError, TypeError):
            return
        if ws_url != self.url:
            log.info("the server is now at %s (from %s)", url, self.server_file)
            self.server, self.url = str(url), ws_url

    async def _sleep(self, attempt: int) -> None:
        delay = min(self.max_backoff, self.initial_backoff * 2**attempt) * random.uniform(0.5, 1.0)
        await wait_event(self._stopping, delay)

    async def run(self, session: Session) -> None:
        """Connect and serve until :meth:`stop`; raises :class:`ServerRefused` when refused."""
        attempt = 0
        last_error = ""
        while not self._stopping.is_set():
            link = _Link()
            self._follow_server_file()
            try:
                conn = await self._connect(link)
            except ServerRefused:
                raise
            except Exception as exc:
                error = _describe(exc)
                if error != last_error:
                    if self.connections == 0 and isinstance(exc, OSError):
                        log.info("waiting for server at %s (%s)", self.server, error)
                    else:
                        log.warning("cannot connect to %s: %s; retrying", self.server, error)
                    last_error = error
                await self._sleep(attempt)
                attempt += 1
                continue
            last_error = ""
            if self._stopping.is_set():
                conn.close()
                break
            try:
                if await self._serve(conn, link, session):
                    attempt = 0
            finally:
                conn.close()
            if not self._stopping.is_set():
                await self._sleep(attempt)
                attempt += 1

    async def _serve(self, conn: WebSocketClientConnection, link: _Link, session: Session) -> bool:
        """One connection: hello, welcome, messages. True if it got as far as the welcome."""
        if not _write(conn, protocol.encode({**session.hello(), "batch": protocol.BATCH})):
            return False
        if not await wait_future(link.first, self.welcome_timeout):
            log.warning(
                "the server at %s sent no welcome in %g s; reconnecting", self.server, self.welcome_timeout
            )
            return False
        messages = link.first.result()
        if self._stopping.is_set():
            return False
        if messages is None:
            log.warning("the server at %s closed the connection after hello (%s)", self.server, _closed(conn))
            return False
        welcome = messages[0] if messages else None
        if welcome is not None and welcome.type == "error":
            raise ServerRefused(f"the server refused this worker: {welcome.get('message')}")
        if welcome is None or welcome.type != "welcome":
            log.warning("expected welcome from the server, got %r; reconnecting", welcome and welcome.type)
            return False
        self._conn = conn
        if welcome.get("batch") == protocol.BATCH:
            loop = asyncio.get_running_loop()
            self._batcher = FrameBatcher(lambda f: _write(conn, f), loop.call_soon, loop.call_later)
        self.connections += 1
        try:
            session.on_welcome(welcome)
            link.start(conn, session, messages[1:])
            await link.closed.wait()
            if link.refused is not None:
                raise ServerRefused(link.refused)
        finally:
            self._conn = None
            if self._batcher is not None:
                self._batcher.discard()
                self._batcher = None
            session.on_disconnected()
        if not self._stopping.is_set():
            log.warning("lost the connection to %s (%s); reconnecting", self.server, _closed(conn))
        return True


class _Link:
    """The server's frames on one connection, handled as tornado reads them: the first
    frame (the welcome) goes to ``first``; after :meth:`start` each message goes to the
    session at once (no queue between the socket and the agent)."""

    def __init__(self) -> None:
        self.first: asyncio.Future[list[protocol.Message] | None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self.refused: str | None = None
        self._conn: WebSocketClientConnection | None = None
        self._session: Session | None = None
        self._early: list[protocol.Message] = []  # arrived before the welcome was handled

    def on_frame(self, frame: str | bytes | None) -> None:
        if frame is None:
            self.closed.set()
            if not self.first.done():
                self.first.set_result(None)
            return
        messages = _decode(frame)
        if not self.first.done():
            self.first.set_result(messages)
        elif self._session is None:
            self._early += messages
        else:
            self._dispatch(messages)

    def start(self, conn: WebSocketClientConnection, session: Session, rest: list[protocol.Message]) -> None:
        self._conn, self._session = conn, session
        early, self._early = self._early, []
        self._dispatch(rest + early)

    def _dispatch(self, messages: list[protocol.Message]) -> None:
        assert self._session is not None
        for message in messages:
            if self.refused is not None:
                return
            if message.type == "error":
                self._refuse(f"the server refused this worker: {message.get('message')}")
                return
            try:
                self._session.on_message(message)
            except ServerRefused as exc:
                self._refuse(str(exc))
            except Exception:
                log.exception("could not handle the server's %r message", message.type)

    def _refuse(self, why: str) -> None:
        self.refused = why
        self.closed.set()
        if self._conn is not None:
            self._conn.close()


def _write(conn: WebSocketClientConnection, frame: str | bytes) -> bool:
    try:
        wire.send(conn.protocol, frame)
    except WebSocketClosedError:
        return False  # the read side notices and reconnects
    return True


def _decode(frame: str | bytes) -> list[protocol.Message]:
    try:
        return protocol.decode_all(frame)
    except protocol.ProtocolError as exc:
        log.warning("ignoring a malformed message from the server: %s", exc)
        return []


def _closed(conn: WebSocketClientConnection) -> str:
    if conn.close_code is None:
        return "connection dropped"
    return f"code {conn.close_code}{': ' + conn.close_reason if conn.close_reason else ''}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HTTPClientError):
        detail = _server_message(exc)
        if exc.code == 404:
            return "HTTP 404: no worker endpoint there; is the jupyter-orch server extension enabled?"
        return f"HTTP {exc.code}: {detail}"
    return str(exc) or type(exc).__name__

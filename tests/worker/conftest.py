"""Fixtures for the worker tests: a real executor slot, a test double of the server side of
the worker protocol (a small real tornado WebSocket server), and real workers against it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from jupyter_orch.core import protocol
from jupyter_orch.worker.agent import Worker, WorkerConfig
from jupyter_orch.worker.slots import Slot

TOKEN = "worker-secret"


@pytest_asyncio.fixture
async def slot() -> AsyncIterator[Slot]:
    s = Slot(0, worker_name="test-worker", kill_grace=1.0)
    s.prestart()
    try:
        yield s
    finally:
        await s.close(kill=True)


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition on state the test cannot otherwise await."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def until() -> Callable[..., Any]:
    """``await until(predicate)``: poll state the test cannot otherwise await."""
    return _until


class FakeConnection:
    """One worker connection as the test server sees it."""

    def __init__(self, handler: ConnectHandler, server: FakeServer) -> None:
        self.handler = handler
        self.server = server
        self.headers = dict(handler.request.headers)
        self.inbox: asyncio.Queue[protocol.Message] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.auto_ack = server.auto_ack

    def send(self, header: dict[str, Any], blobs: list[tuple[str, bytes]] | None = None) -> None:
        frame = protocol.encode(header, blobs)
        self.handler.write_message(frame, binary=isinstance(frame, bytes))

    async def recv(self, *types: str, timeout: float = 15.0) -> protocol.Message:
        """The next message of one of ``types`` (others are skipped), or of any type."""
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), timeout=timeout)
            if not types or msg.type in types:
                return msg

    def drop(self) -> None:
        """Close the TCP connection abruptly, without a WebSocket close frame."""
        assert self.handler.ws_connection is not None
        self.handler.ws_connection.stream.close()  # type: ignore[attr-defined]


class ConnectHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, server: FakeServer) -> None:
        self.server = server
        self.conn: FakeConnection | None = None

    async def prepare(self) -> None:
        await self.server.gate.wait()
        if self.request.headers.get("Authorization") != f"Bearer {self.server.token}":
            self.set_status(401)
            self.finish({"error": "unauthorized", "message": "invalid worker token"})

    def open(self) -> None:  # type: ignore[override]
        self.set_nodelay(True)
        self.conn = FakeConnection(self, self.server)
        self.server.connections.put_nowait(self.conn)

    def on_message(self, message: str | bytes) -> None:
        assert self.conn is not None
        msg = protocol.decode(message)
        if msg.type == "hello" and self.server.reply_to_hello is not None:
            self.conn.send(self.server.reply_to_hello)
        if msg.type == "finished" and self.conn.auto_ack:
            self.conn.send({"type": "ack", "task_id": msg["task_id"], "attempt": msg["attempt"]})
        self.conn.inbox.put_nowait(msg)

    def on_close(self) -> None:
        if self.conn is not None:
            self.conn.closed.set()


class FakeServer:
    """The server side of the worker protocol, enough to drive a real worker."""

    def __init__(self, token: str = TOKEN, heartbeat_interval: float = 0.2) -> None:
        self.token = token
        self.auto_ack = True
        self.reply_to_hello: dict[str, Any] | None = {
            "type": "welcome",
            "worker_id": None,
            "heartbeat_interval": heartbeat_interval,
            "server_version": "test",
        }
        self.connections: asyncio.Queue[FakeConnection] = asyncio.Queue()
        self.gate = asyncio.Event()  # cleared: new connections wait in the upgrade
        self.gate.set()
        self.port = 0
        self._http: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> None:
        app = tornado.web.Application(
            [(protocol.CONNECT_PATH, ConnectHandler, {"server": self})],
            websocket_max_message_size=1 << 30,
        )
        sockets = tornado.netutil.bind_sockets(port, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self._http = tornado.httpserver.HTTPServer(app)
        self._http.add_sockets(sockets)

    async def next_connection(self, timeout: float = 15.0) -> FakeConnection:
        return await asyncio.wait_for(self.connections.get(), timeout=timeout)

    async def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()


@pytest_asyncio.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    server.start()
    try:
        yield server
    finally:
        server.gate.set()
        await server.stop()


@pytest_asyncio.fixture
async def start_worker(fake_server: FakeServer) -> AsyncIterator[Callable[..., Any]]:
    """Start a real Worker (in this event loop) against the fake server."""
    running: list[tuple[Worker, asyncio.Task[int]]] = []

    def start(**options: Any) -> tuple[Worker, asyncio.Task[int]]:
        options.setdefault("server", fake_server.url)
        options.setdefault("token", fake_server.token)
        options.setdefault("max_backoff", 0.2)
        options.setdefault("kill_grace", 1.0)
        worker = Worker(WorkerConfig(**options))
        task = asyncio.ensure_future(worker.run())
        running.append((worker, task))
        return worker, task

    yield start
    for worker, task in running:
        if not task.done():
            worker.stop(force=True)
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
def server_class() -> type[FakeServer]:
    return FakeServer


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""A worker that a test drives by hand over the real WebSocket (``/workers/connect``): it
says hello, takes assignments, and sends what the test tells it to (``started``, ``log``,
``metrics``, ``finished``), so that the server's side of the worker protocol (resends,
gaps, bad input) is tested exactly. A thread reads what the server sends (answering its
pings) into a queue."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

import websocket

from jupyter_orch.core import protocol

from .orchserver import OrchServer


class FakeWorker:
    def __init__(
        self,
        server: OrchServer,
        token: str,
        *,
        worker_id: str | None = None,
        running: list[Any] | None = None,
    ) -> None:
        self.server = server
        self.token = token
        self.id = worker_id or f"fake-{uuid.uuid4().hex[:8]}"
        self.inbox: queue.Queue[protocol.Message | None] = queue.Queue()
        self._lock = threading.Lock()
        api = server.api(token)
        self.ws = websocket.create_connection(
            api.ws_url(protocol.CONNECT_PATH.removeprefix("/orch/api/v1")),
            header=[f"Authorization: Bearer {token}"],
            timeout=60,
            suppress_origin=True,
        )
        self.send(
            {
                "type": "hello",
                "worker_id": self.id,
                "name": self.id,
                "slots": 1,
                "cpus": 2,
                "provider": "static",
                "running": running or [],
            }
        )
        self.welcome = protocol.decode(self.ws.recv())
        assert self.welcome.type == "welcome", self.welcome.header
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                frame = self.ws.recv()
                if not frame:
                    break
                for msg in protocol.decode_all(frame):
                    self.inbox.put(msg)
        except Exception:
            pass
        self.inbox.put(None)

    def send(self, header: dict[str, Any], blobs: list[tuple[str, bytes]] | None = None) -> None:
        frame = protocol.encode(header, blobs)
        with self._lock:
            if isinstance(frame, bytes):
                self.ws.send_binary(frame)
            else:
                self.ws.send(frame)

    def next(self, kind: str, timeout: float = 30) -> protocol.Message:
        while True:
            msg = self.inbox.get(timeout=timeout)
            if msg is None:
                raise ConnectionError(f"the server closed the connection before a {kind!r} came")
            if msg.type == kind:
                return msg

    def take(self, timeout: float = 30) -> tuple[str, int]:
        """The next assignment, started: (task id, attempt)."""
        assign = self.next("assign", timeout)
        self.send({"type": "started", "task_id": assign["task_id"], "attempt": assign["attempt"], "pid": 1})
        return assign["task_id"], assign["attempt"]

    def metrics(self, task_id: str, attempt: int, offset: int, points: list[Any]) -> None:
        self.send(
            {"type": "metrics", "task_id": task_id, "attempt": attempt, "offset": offset, "points": points}
        )

    def log(self, task_id: str, attempt: int, offset: int, *texts: str) -> None:
        lines = [[1.0, "stdout", text] for text in texts]
        self.send({"type": "log", "task_id": task_id, "attempt": attempt, "offset": offset, "lines": lines})

    def finish(self, task_id: str, attempt: int, ok: bool = True, **fields: Any) -> None:
        header = {
            "type": "finished",
            "task_id": task_id,
            "attempt": attempt,
            "ok": ok,
            "exit_code": 0 if ok else 1,
        }
        if not ok:
            header.update(error="command exited with code 1", error_kind="exit_code")
        header.update(fields)
        self.send(header, [("result", b"")] if ok else None)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self._reader.join(5)


def events(server: OrchServer, token: str, query: str) -> websocket.WebSocket:
    """An events subscription (its hello read): ``/events?<query>`` as ``token``'s user."""
    ws = server.ws(f"/events?{query}", token=token)
    hello = json.loads(ws.recv())
    assert hello["type"] == "hello"
    return ws


def point(step: int | None, group: str = "training", **values: Any) -> list[Any]:
    """A metric point as a worker sends it (``values`` default: a falling ``loss``)."""
    return [1000.0 + (step or 0), step, group, values or {"loss": 1.0 / (1 + (step or 0))}]


def worker_server(root: Any, *args: str, env: dict[str, str] | None = None) -> tuple[OrchServer, str]:
    """A started server with no workers of its own (static provider), and a shared worker
    token for :class:`FakeWorker`; the caller cleans the server up."""
    server = OrchServer(root, workers=0, args=["--OrchApp.provider=static", *args], env=env)
    server.start()
    return server, str(server.api().post("/workers/tokens", {"name": "by-hand"})["token"])

"""Driving the engine on its own in tests: a real SQLite store with blob, log and metric
stores on disk, and workers reached through an in-memory ``WorkerLink`` the test reads."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_orch.core import protocol
from jupyter_orch.engine import Engine, EngineConfig
from jupyter_orch.store import FileBlobStore, FileLogStore, FileMetricStore, SqlStore


class Link:
    """A worker connection as the engine sees it; the test reads what was sent."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[protocol.Message] = asyncio.Queue()
        self.closed: str | None = None

    def send(self, frame: str | bytes, *, lazy: bool = False) -> None:
        self.sent.put_nowait(protocol.decode(frame))

    def flush_frames(self) -> None:
        pass  # every frame is taken as sent

    def close(self, reason: str) -> None:
        self.closed = reason

    async def next(self, kind: str) -> protocol.Message:
        while True:
            msg = await asyncio.wait_for(self.sent.get(), 10)
            if msg.type == kind:
                return msg


def make_engine(tmp_path: Any, provider: Any = None, **config: Any) -> Engine:
    store = SqlStore(f"sqlite:///{tmp_path / 'orch.sqlite'}")
    store.migrate()
    return Engine(
        store,
        FileBlobStore(str(tmp_path / "blobs")),
        FileLogStore(str(tmp_path / "logs")),
        EngineConfig(**config),
        provider=provider,
        metrics=FileMetricStore(str(tmp_path / "metrics")),
    )


def hello(worker_id: str, slots: int = 1, **extra: Any) -> protocol.Message:
    return protocol.decode(
        protocol.encode(
            {"type": "hello", "worker_id": worker_id, "name": worker_id, "slots": slots, "cpus": 4, **extra}
        )
    )

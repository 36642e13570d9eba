"""Writing frames on one WebSocket connection: each at once, or, once the peer has said it
reads batches, everything sent in one loop turn as one ``batch`` frame
(:class:`~jupyter_orch.core.batching.FrameBatcher`). The worker connection and the client
session both write through it; a frame for a connection that has closed is dropped (the
reading side notices the close and reacts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tornado.websocket import WebSocketClosedError

from .. import wire
from ..core.batching import Frame, FrameBatcher


class SocketWriter:
    """Frames out on the connection ``connection()`` returns (None once it has gone)."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection
        self._batcher: FrameBatcher | None = None

    @property
    def batching(self) -> bool:
        return self._batcher is not None

    def start_batching(self) -> None:
        """From now on, frames sent in one loop turn leave together (call inside the loop)."""
        loop = asyncio.get_running_loop()
        self._batcher = FrameBatcher(self.write, loop.call_soon, loop.call_later)

    def send(self, frame: Frame, *, lazy: bool = False) -> None:
        """Send a frame: now, or with the batch of this loop turn (``lazy``: with the next
        eager frame, or a little later)."""
        if self._batcher is not None:
            self._batcher.send(frame, lazy=lazy)
        else:
            self.write(frame)

    def write(self, frame: Frame) -> None:
        """Write a frame now, past any batch."""
        try:
            wire.send(self._connection(), frame)
        except WebSocketClosedError:
            pass

    def flush(self) -> None:
        """Write what is batched now, without waiting for the end of the loop turn."""
        if self._batcher is not None:
            self._batcher.flush()

    def discard(self) -> None:
        """Drop what is batched (the connection is gone)."""
        if self._batcher is not None:
            self._batcher.discard()

"""wire.send: frames written directly on a tornado WebSocket protocol, or through
write_message where that is not possible; a closed connection raises as tornado's does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tornado.websocket import WebSocketClosedError

from jupyter_orch import wire


class Direct:
    """Looks like tornado's WebSocketProtocol13 to wire.send."""

    def __init__(self) -> None:
        self.frames: list[tuple[bool, int, bytes]] = []
        self._message_bytes_out = 0
        self._compressor = None
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def _write_frame(self, fin: bool, opcode: int, data: bytes) -> asyncio.Future[None]:
        self.frames.append((fin, opcode, data))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class Compressing(Direct):
    def __init__(self) -> None:
        super().__init__()
        self._compressor = object()
        self.messages: list[Any] = []

    def write_message(self, message: Any, binary: bool = False) -> asyncio.Future[None]:
        self.messages.append((message, binary))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


@pytest.mark.asyncio
async def test_text_and_binary_frames_are_written_directly() -> None:
    p = Direct()
    wire.send(p, "héllo")
    wire.send(p, b"\x00\x01")
    assert p.frames == [(True, 0x1, "héllo".encode()), (True, 0x2, b"\x00\x01")]
    assert p._message_bytes_out == len("héllo".encode()) + 2


@pytest.mark.asyncio
async def test_a_compressing_connection_goes_through_write_message() -> None:
    p = Compressing()
    wire.send(p, b"data")
    assert p.messages == [(b"data", True)] and p.frames == []


@pytest.mark.asyncio
async def test_a_closed_connection_raises() -> None:
    p = Direct()
    p.closing = True
    with pytest.raises(WebSocketClosedError):
        wire.send(p, "x")
    with pytest.raises(WebSocketClosedError):
        wire.send(None, "x")

"""Writing WebSocket messages on tornado connections without a task per message.

tornado's ``write_message`` wraps every write in an ``asyncio`` task so that its errors
can be awaited; the server, the workers and the client send thousands of small frames a
second and never await them, so that task (and the loop turns it costs) is pure overhead.
:func:`send` writes the frame as ``write_message`` does, minus the wrapper, and falls back
to ``write_message`` itself on a connection it does not recognise (or that compresses).
"""

from __future__ import annotations

from asyncio import Future
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError


def send(protocol: Any, frame: str | bytes) -> None:
    """Write one text (``str``) or binary (``bytes``) message; raise
    :class:`WebSocketClosedError` when the connection is closed."""
    if protocol is None or protocol.is_closing():
        raise WebSocketClosedError()
    binary = isinstance(frame, bytes)
    write_frame = getattr(protocol, "_write_frame", None)
    if write_frame is None or getattr(protocol, "_compressor", None) is not None:
        protocol.write_message(frame, binary=binary).add_done_callback(_retrieve)
        return
    data = frame if binary else frame.encode()  # type: ignore[union-attr]
    protocol._message_bytes_out += len(data)
    try:
        fut = write_frame(True, 0x2 if binary else 0x1, data)
    except StreamClosedError:
        raise WebSocketClosedError() from None
    fut.add_done_callback(_retrieve)


def _retrieve(fut: Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # a closed stream: the reading side notices and reacts

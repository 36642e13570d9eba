"""The client's WebSocket link to the server's session endpoint: a blocking connection
(websocket-client) that any thread may write to and one thread at a time reads from.

It is the session's I/O seam: :class:`SessionLink` opens the connection, writes whole
frames (masked with tornado's C routine, handed to ``sendall`` in one piece: websocket-
client's own writer masks in Python and re-slices a partly written frame, which costs
tens of milliseconds per 10 MB), waits until a frame can be read (or the session wakes it)
and reads one, answering pings on the way.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct

import websocket
from tornado.util import _websocket_mask

from ..core import protocol

OP_TEXT = websocket.ABNF.OPCODE_TEXT
OP_BINARY = websocket.ABNF.OPCODE_BINARY
OP_CLOSE = websocket.ABNF.OPCODE_CLOSE

LinkError = (OSError, websocket.WebSocketException)
"""What reading or writing a broken link raises."""


class Refused(Exception):
    """The server answered the upgrade with an HTTP error (``status``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class SessionLink:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self._ws = ws
        self._sock: socket.socket = ws.sock

    @classmethod
    def open(cls, url: str, headers: dict[str, str], timeout: float, host: str) -> SessionLink:
        """Connect (raises :class:`Refused`, ``OSError`` or a websocket-client error).
        Proxies are not used for ``host``, as the client's HTTP requests use none."""
        try:
            ws = websocket.create_connection(
                url,
                timeout=timeout,
                header=headers,
                enable_multithread=True,  # writes from several threads are serialised
                skip_utf8_validation=True,
                sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # a submit must not wait for Nagle
                http_no_proxy=[host],
            )
        except websocket.WebSocketBadStatusException as exc:
            raise Refused(exc.status_code) from None
        return cls(ws)

    # ---------------------------------------------------------------- writing (any thread)
    def send(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            self._write(OP_TEXT, frame.encode())
        else:
            self._write(OP_BINARY, frame)

    def ping(self) -> None:
        self._write(websocket.ABNF.OPCODE_PING, b"")

    def _write(self, opcode: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = os.urandom(4)
        with self._ws.lock:
            if n < 1 << 16:
                self._sock.sendall(head + key + _websocket_mask(key, data))
            else:  # no copy of a large payload just to prepend a few bytes
                self._sock.sendall(head + key)
                self._sock.sendall(_websocket_mask(key, data))

    # ---------------------------------------------------------------- reading (one thread)
    def wait_readable(self, timeout: float | None, wake: socket.socket) -> bool:
        """True when a frame can be read now; False after ``timeout`` or when ``wake``
        became readable (its bytes are drained)."""
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True  # decrypted bytes waiting: select would not see them
        ready, _, _ = select.select([self._sock, wake], [], [], timeout)
        if wake in ready:
            drain(wake)
        return self._sock in ready

    def read(self) -> list[protocol.Message] | None:
        """The messages of the next data frame ([] after a control frame); None once the
        server has closed the connection. Raises ``ProtocolError`` on an unreadable frame."""
        opcode, frame = self._ws.recv_data_frame(control_frame=True)
        if opcode == OP_CLOSE:
            return None
        if opcode == OP_TEXT:
            return protocol.decode_all(frame.data.decode())
        if opcode == OP_BINARY:
            return protocol.decode_all(frame.data)
        return []

    # ---------------------------------------------------------------- ending
    def shutdown(self) -> None:
        """Break the connection from any thread: the reading thread sees it end."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._ws.close(timeout=1)
        except Exception:
            self._ws.shutdown()


def drain(wake: socket.socket) -> None:
    """Empty a non-blocking wake-up socket."""
    try:
        while wake.recv(4096):
            pass
    except (BlockingIOError, OSError):
        pass

"""The control channel between a worker slot and its executor process.

A Unix socketpair carries length-prefixed frames, separate from the executor's stdout and
stderr pipes so task output never mixes with control data::

    frame = u32 body length | u32 header length | body = header JSON, blob 0, blob 1 ...
    (big-endian; the body length counts the header JSON and the blobs)
    header["blobs"] = [[name, length], ...]

This module is imported by the executor at start-up, so it stays small and dependency-free.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger("jupyter_orch.worker")

_PREFIX = struct.Struct(">II")
_JOIN_BELOW = 1 << 20  # frames smaller than this are joined and written with one call
_CHUNK = 1 << 16
_VIEW_MIN = 1 << 20

Frame = tuple[dict[str, Any], dict[str, Any]]  # blobs: bytes, or memoryview when large


def pack(header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]] = ()) -> list[bytes]:
    """The parts of one frame, ready to be written in order."""
    head = dict(header)
    head["blobs"] = [[name, len(data)] for name, data in blobs]
    raw = json.dumps(head, separators=(",", ":")).encode()
    body_len = len(raw) + sum(len(data) for _, data in blobs)
    return [_PREFIX.pack(body_len, len(raw)), raw, *(bytes(data) for _, data in blobs)]


def _unpack(header_len: int, body: bytes | bytearray) -> Frame:
    view = memoryview(body)
    header = json.loads(bytes(view[:header_len]))
    blobs: dict[str, Any] = {}
    offset = header_len
    for name, length in header.pop("blobs", []):
        chunk = view[offset : offset + length]
        # a large blob stays a view of the frame (of writable memory when the frame is):
        # a 10 MB payload is not copied once more, and arrays unpickled over it are writable
        blobs[name] = chunk if length >= _VIEW_MIN else bytes(chunk)
        offset += length
    if offset != len(view):
        raise ValueError("control frame length does not match its blobs")
    return header, blobs


def _writable(header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """A frame's parts to write in order: one joined buffer when small (one system call),
    the parts themselves when large (no copy of the megabytes)."""
    parts = pack(header, blobs)
    return [b"".join(parts)] if sum(len(p) for p in parts) < _JOIN_BELOW else parts


def send(sock: socket.socket, header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]] = ()) -> None:
    """Blocking write of one frame (executor side)."""
    for part in _writable(header, blobs):
        sock.sendall(part)


class SocketReader:
    """Blocking reads of whole frames (executor side). Buffered, so a small frame costs one
    ``recv``; a large body is received straight into its own buffer, not copied again."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def _fill(self, n: int) -> bool:
        while len(self._buf) < n:
            chunk = self.sock.recv(_CHUNK)
            if not chunk:
                return False
            self._buf += chunk
        return True

    def recv(self) -> Frame | None:
        """The next frame; None at end of stream."""
        if not self._fill(_PREFIX.size):
            return None
        body_len, header_len = _PREFIX.unpack_from(self._buf)
        start = _PREFIX.size
        if len(self._buf) - start >= body_len or body_len < _CHUNK:
            if not self._fill(start + body_len):
                return None
            body = bytes(self._buf[start : start + body_len])
            del self._buf[: start + body_len]
            return _unpack(header_len, body)
        big = bytearray(body_len)
        have = len(self._buf) - start
        big[:have] = self._buf[start:]
        self._buf.clear()
        view = memoryview(big)
        while have < body_len:
            k = self.sock.recv_into(view[have:])
            if k == 0:
                return None
            have += k
        return _unpack(header_len, big)


class FrameChannel(asyncio.Protocol):
    """The worker's end of the control socket: frames are parsed as bytes arrive and handed
    to ``on_frame`` (``None`` once the stream ends or breaks); no task per frame."""

    def __init__(self, on_frame: Callable[[Frame | None], None]) -> None:
        self._on_frame = on_frame
        self._buf = bytearray()
        self._ended = False
        self.transport: asyncio.Transport | None = None
        # a large frame's body is received straight into its own buffer (no growing and
        # copying of megabytes): the buffer, the bytes in it so far, the header length
        self._big: bytearray | None = None
        self._have = 0
        self._big_header = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._big is not None:
            big = self._big
            take = min(len(data), len(big) - self._have)
            big[self._have : self._have + take] = data[:take]
            self._have += take
            if self._have < len(big):
                return
            self._big = None
            self._deliver(self._big_header, big)
            data = data[take:]
            if not data:
                return
        buf = self._buf
        buf += data
        while len(buf) >= _PREFIX.size and not self._ended:
            body_len, header_len = _PREFIX.unpack_from(buf)
            end = _PREFIX.size + body_len
            if len(buf) < end:
                if body_len >= _VIEW_MIN:  # the rest of a large body goes straight into place
                    self._big = bytearray(body_len)
                    self._have = len(buf) - _PREFIX.size
                    self._big[: self._have] = buf[_PREFIX.size :]
                    self._big_header = header_len
                    buf.clear()
                return
            body = bytes(buf[_PREFIX.size : end])
            del buf[:end]
            self._deliver(header_len, body)

    def _deliver(self, header_len: int, body: bytes | bytearray) -> None:
        if self._ended:
            return
        try:
            frame = _unpack(header_len, body)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("bad control frame from an executor: %s", exc)
            self._end()
            if self.transport is not None:
                self.transport.close()
            return
        self._on_frame(frame)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_frame(None)

    def send(self, header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]] = ()) -> bool:
        """Queue one frame; False when the channel is closed."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._ended:
            return False
        transport.writelines(_writable(header, blobs))
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

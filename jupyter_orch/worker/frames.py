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
import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any

_PREFIX = struct.Struct(">II")

Frame = tuple[dict[str, Any], dict[str, bytes]]


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
    blobs: dict[str, bytes] = {}
    offset = header_len
    for name, length in header.pop("blobs", []):
        blobs[name] = bytes(view[offset : offset + length])
        offset += length
    if offset != len(view):
        raise ValueError("control frame length does not match its blobs")
    return header, blobs


def send(sock: socket.socket, header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]] = ()) -> None:
    """Blocking write of one frame (executor side)."""
    for part in pack(header, blobs):
        sock.sendall(part)


def _recv_exactly(sock: socket.socket, n: int) -> bytearray | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return buf


def recv(sock: socket.socket) -> Frame | None:
    """Blocking read of one frame; None at end of stream (executor side)."""
    prefix = _recv_exactly(sock, _PREFIX.size)
    if prefix is None:
        return None
    body_len, header_len = _PREFIX.unpack(prefix)
    body = _recv_exactly(sock, body_len)
    if body is None:
        return None
    return _unpack(header_len, body)


async def read(reader: asyncio.StreamReader) -> Frame | None:
    """Read one frame; None at end of stream (worker side)."""
    try:
        prefix = await reader.readexactly(_PREFIX.size)
        body_len, header_len = _PREFIX.unpack(prefix)
        body = await reader.readexactly(body_len)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return _unpack(header_len, body)


async def write(
    writer: asyncio.StreamWriter, header: Mapping[str, Any], blobs: Sequence[tuple[str, bytes]] = ()
) -> None:
    """Write one frame and wait until the socket has taken it (worker side)."""
    writer.writelines(pack(header, blobs))
    await writer.drain()

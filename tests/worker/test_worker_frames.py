"""The executor control channel: frames survive any split of the byte stream, large bodies
arrive whole, the end of the stream (or a broken frame) is reported once."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from jupyter_orch.worker import frames


def test_socket_reader_reads_small_and_large_frames_then_the_end() -> None:
    a, b = socket.socketpair()
    big = bytes(range(256)) * 4096  # 1 MiB, more than one receive buffer
    parts = [
        *frames.pack({"op": "run", "n": 1}),
        *frames.pack({"op": "run", "n": 2}, [("payload", big), ("dep:x", b"d")]),
        *frames.pack({"op": "run", "n": 3}, [("payload", b"")]),
    ]
    writer = threading.Thread(target=lambda: (a.sendall(b"".join(parts)), a.close()))
    writer.start()
    reader = frames.SocketReader(b)
    first, second, third = reader.recv(), reader.recv(), reader.recv()
    writer.join()
    assert first == ({"op": "run", "n": 1}, {})
    assert second is not None and second[0]["n"] == 2
    assert second[1]["payload"] == big and second[1]["dep:x"] == b"d"
    assert third == ({"op": "run", "n": 3}, {"payload": b""})
    assert reader.recv() is None


@pytest.mark.asyncio
async def test_frame_channel_parses_any_split_and_reports_the_end_once() -> None:
    got: list[frames.Frame | None] = []
    channel = frames.FrameChannel(got.append)
    stream = b"".join(
        [
            *frames.pack({"op": "done", "ok": True}, [("result", b"r" * 70_000)]),
            *frames.pack({"op": "ready", "pid": 7}),
        ]
    )
    for i in range(0, len(stream), 997):  # arbitrary chunk boundaries
        channel.data_received(stream[i : i + 997])
    channel.eof_received()
    channel.connection_lost(None)
    assert got[0] == ({"op": "done", "ok": True}, {"result": b"r" * 70_000})
    assert got[1] == ({"op": "ready", "pid": 7}, {})
    assert got[2:] == [None]


@pytest.mark.asyncio
async def test_frame_channel_ends_at_a_broken_frame_and_sends_whole_frames() -> None:
    a, b = socket.socketpair()
    got: list[frames.Frame | None] = []
    ended = asyncio.Event()

    def on_frame(frame: frames.Frame | None) -> None:
        got.append(frame)
        ended.set()

    loop = asyncio.get_running_loop()
    transport, channel = await loop.create_unix_connection(lambda: frames.FrameChannel(on_frame), sock=a)
    assert channel.send({"op": "run"}, [("payload", b"p")])
    b.setblocking(True)
    assert frames.SocketReader(b).recv() == ({"op": "run"}, {"payload": b"p"})
    b.sendall(b"\x00\x00\x00\x02\x00\x00\x00\x02{]")  # header JSON that does not parse
    await asyncio.wait_for(ended.wait(), 10)
    assert got == [None]
    assert not channel.send({"op": "run"})  # nothing more goes out on an ended channel
    transport.close()
    b.close()


def test_a_large_frame_arriving_in_pieces_lands_in_its_own_buffer_and_the_next_follows() -> None:
    import random

    from jupyter_orch.worker.frames import FrameChannel, pack

    got = []
    channel = FrameChannel(got.append)
    big = bytes(random.Random(1).randbytes(3 << 20))
    wire = b"".join(pack({"op": "done", "ok": True}, [("result", big)]) + pack({"op": "ready"}))
    rng = random.Random(2)
    pos = 0
    while pos < len(wire):  # the kernel's read sizes vary; the last piece carries both frames' ends
        step = rng.randint(1, 300_000)
        channel.data_received(wire[pos : pos + step])
        pos += step
    assert [h["op"] for h, _ in got] == ["done", "ready"]
    result = got[0][1]["result"]
    assert bytes(result) == big and not memoryview(result).readonly  # a view of its own writable buffer

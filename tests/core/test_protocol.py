"""Worker protocol frames: text and binary round trips; malformed frames are ProtocolErrors."""

from __future__ import annotations

import json
import random
import struct

import pytest

from jupyter_orch.core.protocol import (
    CONNECT_PATH,
    ERROR_KINDS,
    SERVER_MESSAGES,
    WORKER_MESSAGES,
    Message,
    ProtocolError,
    decode,
    encode,
)


def binary(header: object, *blobs: bytes, header_bytes: bytes | None = None) -> bytes:
    raw = json.dumps(header).encode() if header_bytes is None else header_bytes
    return struct.pack(">I", len(raw)) + raw + b"".join(blobs)


# --------------------------------------------------------------------------- round trips
def test_text_frame_round_trip() -> None:
    header = {"type": "heartbeat", "metrics": {"cpu_percent": 12.5, "gpus": [{"index": 0}]}, "ü": "ß"}
    frame = encode(header)
    assert isinstance(frame, str)
    msg = decode(frame)
    assert msg.header == header
    assert msg.blobs == {}
    assert msg.type == "heartbeat"
    assert msg["metrics"]["cpu_percent"] == 12.5
    assert msg.get("missing") is None
    assert msg.get("missing", 3) == 3
    with pytest.raises(KeyError):
        msg["missing"]


def test_no_blobs_or_empty_blob_list_gives_a_text_frame() -> None:
    assert isinstance(encode({"type": "ack"}, []), str)
    assert isinstance(encode({"type": "ack"}, None), str)


def test_binary_frame_round_trip_with_several_blobs() -> None:
    header = {"type": "assign", "task_id": "t", "attempt": 2, "gpus": [0, 1]}
    blobs = [("payload", b"\x80\x05pickle\x00\xff"), ("dep:abc", b"result"), ("empty", b"")]
    frame = encode(header, blobs)
    assert isinstance(frame, bytes)
    msg = decode(frame)
    assert msg.header == header  # "blobs" is consumed, not left in the header
    assert msg.blobs == dict(blobs)
    assert list(msg.blobs) == ["payload", "dep:abc", "empty"]
    assert msg.type == "assign"


def test_binary_frame_layout() -> None:
    frame = encode({"type": "finished"}, [("result", b"abc")])
    assert isinstance(frame, bytes)
    (n,) = struct.unpack(">I", frame[:4])
    head = json.loads(frame[4 : 4 + n])
    assert head == {"type": "finished", "blobs": [["result", 3]]}
    assert frame[4 + n :] == b"abc"


def test_only_empty_blobs() -> None:
    frame = encode({"type": "finished", "ok": True}, [("result", b""), ("other", b"")])
    msg = decode(frame)
    assert msg.blobs == {"result": b"", "other": b""}
    assert msg.header == {"type": "finished", "ok": True}


def test_encode_does_not_change_the_header() -> None:
    header = {"type": "assign"}
    encode(header, [("payload", b"x")])
    assert header == {"type": "assign"}


def test_decode_accepts_bytes_like_blobs_and_frames() -> None:
    frame = encode({"type": "finished"}, [("result", bytearray(b"xyz")), ("m", memoryview(b"12"))])
    assert isinstance(frame, bytes)
    msg = decode(frame)
    assert msg.blobs == {"result": b"xyz", "m": b"12"}
    assert all(type(b) is bytes for b in msg.blobs.values())
    assert decode(bytearray(frame)).blobs == msg.blobs  # type: ignore[arg-type]


def test_random_round_trips() -> None:
    rng = random.Random(8)
    for _ in range(300):
        header = {"type": rng.choice(sorted(WORKER_MESSAGES | SERVER_MESSAGES)), "n": rng.randrange(10**6)}
        blobs = [(f"b{i}", rng.randbytes(rng.choice([0, 1, 7, 1000]))) for i in range(rng.randrange(0, 5))]
        msg = decode(encode(header, blobs))
        assert msg.header == header
        assert msg.blobs == dict(blobs)


def test_large_blob() -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB
    assert decode(encode({"type": "finished"}, [("result", data)])).blobs["result"] == data


def test_message_defaults() -> None:
    msg = Message({"type": "x"})
    assert msg.blobs == {}
    assert Message({}).type == "None"


# ------------------------------------------------------------------------- malformed
GOOD = encode({"type": "finished"}, [("result", b"abc"), ("other", b"de")])
assert isinstance(GOOD, bytes)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"", id="empty binary"),
        pytest.param(b"\x00\x00", id="truncated header length"),
        pytest.param(struct.pack(">I", 100) + b'{"type":"x"}', id="header runs past the end"),
        pytest.param(GOOD[:-1], id="last blob truncated"),
        pytest.param(GOOD[: len(GOOD) - 3], id="blob missing entirely"),
        pytest.param(GOOD + b"!", id="trailing bytes"),
        pytest.param(binary({"type": "x"}, b"extra"), id="bytes without blobs"),
        pytest.param(binary({"type": "x", "blobs": [["a", 5]]}, b"abc"), id="blob running past the end"),
        pytest.param(binary({"type": "x", "blobs": [["a", -1]]}), id="negative blob length"),
        pytest.param(binary({"type": "x", "blobs": [[1, 0]]}), id="non-string blob name"),
        pytest.param(binary({"type": "x", "blobs": [["a", "3"]]}, b"abc"), id="string blob length"),
        pytest.param(binary({"type": "x", "blobs": [["a", 1.5]]}, b"ab"), id="float blob length"),
        pytest.param(binary({"type": "x", "blobs": [["a", True]]}, b"a"), id="boolean blob length"),
        pytest.param(binary({"type": "x", "blobs": [["a"]]}), id="short blob entry"),
        pytest.param(binary({"type": "x", "blobs": [["a", 1, 2]]}, b"a"), id="long blob entry"),
        pytest.param(binary({"type": "x", "blobs": "ab"}), id="blobs not a list"),
        pytest.param(binary({"type": "x", "blobs": [5]}), id="blob entry not a pair"),
        pytest.param(binary({"type": "x", "blobs": None}), id="blobs null"),
        pytest.param(binary([1, 2]), id="binary header is an array"),
        pytest.param(binary(None, header_bytes=b"{not json"), id="binary header not json"),
        pytest.param(binary(None, header_bytes=b'{"type":"\xff"}'), id="binary header bad utf-8"),
        pytest.param(binary({"kind": "x"}), id="binary header missing type"),
        pytest.param("", id="empty text"),
        pytest.param("{not json", id="text not json"),
        pytest.param("[1, 2]", id="text array"),
        pytest.param('"hello"', id="text string"),
        pytest.param("null", id="text null"),
        pytest.param("42", id="text number"),
        pytest.param("{}", id="missing type"),
        pytest.param('{"type": null}', id="null type"),
        pytest.param('{"type": 5}', id="numeric type"),
        pytest.param('{"type": ["hello"]}', id="list type"),
        pytest.param('{"type": "x"} trailing', id="text trailing data"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="text nested too deep"),
        pytest.param(binary(None, header_bytes=b"[" * 100_000 + b"]" * 100_000), id="binary nested too deep"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(frame)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


def test_every_prefix_of_a_good_frame_is_refused() -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(ProtocolError):
            decode(GOOD[:cut])
    assert decode(GOOD).blobs == {"result": b"abc", "other": b"de"}


# ------------------------------------------------------------------------- vocabulary
def test_message_vocabulary() -> None:
    assert {"hello", "heartbeat", "started", "log", "metrics", "finished", "going"} == WORKER_MESSAGES
    assert {"welcome", "assign", "cancel", "release", "ack", "refuse", "shutdown", "error"} == SERVER_MESSAGES
    assert not WORKER_MESSAGES & SERVER_MESSAGES
    assert {"exception", "exit_code", "signal", "timeout", "cancelled", "executor_died"} <= ERROR_KINDS
    assert CONNECT_PATH == "/orch/api/v1/workers/connect"


# --------------------------------------------------------------------------- batches
def test_a_batch_carries_text_and_binary_frames_in_order() -> None:
    from jupyter_orch.core.protocol import decode_all, encode_batch

    frames = [
        encode({"type": "started", "task_id": "a", "attempt": 1}),
        encode({"type": "finished", "task_id": "a", "attempt": 1, "ok": True}, [("result", b"\x00r")]),
        encode({"type": "log", "task_id": "b", "attempt": 1, "lines": [[1.0, "stdout", "ü"]]}),
    ]
    messages = decode_all(encode_batch(frames))
    assert [m.type for m in messages] == ["started", "finished", "log"]
    assert messages[1].blobs == {"result": b"\x00r"}
    assert messages[2]["lines"] == [[1.0, "stdout", "ü"]]
    # a frame that is not a batch is one message
    assert [m.type for m in decode_all(frames[0])] == ["started"]


def test_malformed_batches_are_protocol_errors() -> None:
    from jupyter_orch.core.protocol import decode_all, encode_batch

    inner = encode_batch([encode({"type": "ack", "items": []})])
    with pytest.raises(ProtocolError, match="batch inside a batch"):
        decode_all(encode_batch([inner, encode({"type": "ack"})]))
    with pytest.raises(ProtocolError, match="bad frame name"):
        decode_all(binary({"type": "batch", "blobs": [["0x", 2]]}, b"{}"))
    with pytest.raises(ProtocolError, match="appears twice"):
        decode_all(binary({"type": "batch", "blobs": [["0t", 2], ["0t", 2]]}, b"{}", b"{}"))
    with pytest.raises(ProtocolError, match="unreadable"):
        decode_all(binary({"type": "batch", "blobs": [["0t", 2]]}, b"\xff\xfe"))

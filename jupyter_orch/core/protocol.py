"""The worker protocol: messages between the server and its workers over one WebSocket.

The same protocol serves local, static and Kubernetes workers. A message is either a
text frame holding a JSON object, or a binary frame carrying a JSON header plus blobs:

    binary frame = u32 big-endian header length | header JSON (utf-8) | blob 0 | blob 1 | ...
    header["blobs"] = [[name, length], ...]  (the blobs follow in that order)

Every message has a ``type``. Worker → server:

``hello``      first message after connecting (and after every reconnect)::
                 {type, worker_id, name, hostname, pid, version, python, cloudpickle,
                  slots, cpus, memory, gpus: [{index, uuid, model, memory}], labels, image,
                  provider, running: [{task_id, attempt}], queued: [{task_id, attempt}],
                  finished: [<finished message without blobs>, ...]}
               ``running``/``finished`` describe what happened while disconnected
               (``queued``: those of ``running`` sent ahead and not started yet); the
               blobs of buffered ``finished`` results are re-sent afterwards as normal
               ``finished`` messages, which the server acknowledges.
``heartbeat``  {type, metrics: {cpu_percent, memory_used, memory_total,
                 gpus: [{index, utilization, memory_used, memory_total}]}}
``started``    {type, task_id, attempt, pid}
``log``        {type, task_id, attempt, offset, lines: [[unix_ts, "stdout"|"stderr", text], ...]}
               ``offset`` is the index of the first line in the attempt's log; the server
               drops lines it already has and notes a gap when lines were lost.
``metrics``    {type, task_id, attempt, offset, points: [[ts, step, group, {name: value}], ...]}
               what the task reported with ``jupyter_orch.report`` (a point as
               :func:`jupyter_orch.core.metrics.make_point` makes it; step and values may
               be null). Numbered per attempt from 0 like log lines: ``offset`` is the
               index of the first point in the attempt's series; the server drops points
               it already has, drops malformed ones and warns of a gap.
``finished``   binary: {type, task_id, attempt, ok, exit_code, error, error_kind,
                 traceback, blobs: [["result", n]]}; ``ok`` true means the result blob is
                 the cloudpickled return value (function) or empty (shell, exit 0). When
                 ``ok`` is false the blob, if any, is the pickled exception.
               error_kind: "exception" | "exit_code" | "signal" | "timeout" | "cancelled"
                 | "executor_died" | "bad_payload" | "environment" | "worker_error"
                 | "not_started" (sent ahead, never started: placed again, no retry used)
                 | "preempted" (stopped for a preemption: killed after its grace, or
                 interrupted; queued again, no retry used)
               ``stopped`` (true, or absent): the task returned after
               ``should_preempt()`` told it to stop; its return is not its end
``going``      {type, reason}: the worker is being taken away (SIGTERM to a worker run
                 with ``--on-sigterm preempt``: a pod eviction, a spot node's notice); it
                 asks its tasks to stop, and the server records them as preempted

Server → worker:

``welcome``    {type, worker_id, heartbeat_interval, server_version,
                 log_offsets: [[task_id, attempt, offset], ...]}: for each attempt the
                 hello listed, how many log lines the server holds; the worker resends
                 the rest (lines lost in flight when the connection dropped).
                 ``metric_offsets: [[task_id, attempt, offset], ...]``: the same for
                 metric points (the worker resends the points from there).
``assign``     binary: {type, task_id, attempt, kind, command, env, timeout, gpus: [int],
                 owner, name, blobs: [["payload", n], ["dep:<task_id>", n], ...]}
               ``payload_file`` (instead of the payload blob): a path on the worker's
               own disk, for a large payload and a local worker that shares the server's.
               More assigns than slots may arrive (prefetch, for short GPU-less tasks): the
               worker queues them in order and starts each when a slot frees.
``cancel``     {type, task_id, attempt, reason, grace, preempt}: SIGTERM, SIGKILL after
                 ``grace`` s. ``preempt``: a preemption; a task that returns in time
                 reports its own outcome (``stopped``), any other ending is "preempted"
``release``    {type, task_id, attempt}: give back a task sent ahead if it has not started
               (another worker is free); the worker answers ``finished`` with error_kind
               ``not_started``, or nothing when the task has started already
``ack``        {type, task_id, attempt} or {type, items: [[task_id, attempt], ...]}: the
               server has stored these ``finished`` reports
``refuse``     {type, task_id, attempt, reason}: a report the server will not take
``shutdown``   {type, reason}: finish nothing new; exit when idle (provider release)
``error``      {type, message}: a fatal protocol or authentication problem

Either way:

``batch``      binary: {type, blobs: [["0t", n], ["1b", n], ...]}: several messages in one
               frame, in order; each blob is a whole frame (``t`` text, ``b`` binary).
               Sent only to a peer that announced ``"batch": 1`` (a worker in its hello,
               the server in its welcome, a client by ``?batch=1`` on the session URL);
               see :mod:`jupyter_orch.core.batching`.

Authentication: the WebSocket upgrade request carries ``Authorization: Bearer <token>``
with a worker token the server issued. The path is ``/orch/api/v1/workers/connect``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
CONNECT_PATH = "/orch/api/v1/workers/connect"

WORKER_MESSAGES = frozenset({"hello", "heartbeat", "started", "log", "metrics", "finished", "going"})
SERVER_MESSAGES = frozenset({"welcome", "assign", "cancel", "release", "ack", "refuse", "shutdown", "error"})
BATCH = 1  # the value of the "batch" capability in hello/welcome
ERROR_KINDS = frozenset(
    {
        "exception",
        "exit_code",
        "signal",
        "timeout",
        "cancelled",
        "executor_died",
        "bad_payload",
        "environment",
        "worker_error",
        "worker_lost",
        "dependency",
        "not_started",
    }
)

_HEADER_LEN = struct.Struct(">I")
LARGE_BLOB = 1 << 20  # decoded blobs this large are memoryviews (bytes-like), not copies
Buffer = bytes | memoryview  # a blob as decoded: a large one is a view of its frame


class ProtocolError(ValueError):
    """A frame that does not follow this protocol."""


@dataclass
class Message:
    header: dict[str, Any]
    blobs: dict[str, Buffer] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.header.get("type"))

    def __getitem__(self, key: str) -> Any:
        return self.header[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


def encode(header: Mapping[str, Any], blobs: Sequence[tuple[str, Buffer]] | None = None) -> str | bytes:
    """A text frame for a header alone, a binary frame when there are blobs."""
    if not blobs:
        return json.dumps(header, separators=(",", ":"))
    return encode_binary(header, blobs)


def encode_batch(frames: Sequence[str | bytes]) -> bytes:
    """One binary frame carrying several frames, in order (see ``batch`` above)."""
    blobs = [(f"{i}t", f.encode()) if isinstance(f, str) else (f"{i}b", f) for i, f in enumerate(frames)]
    return encode_binary({"type": "batch"}, blobs)


def encode_binary(header: Mapping[str, Any], blobs: Sequence[tuple[str, Buffer]]) -> bytes:
    head = dict(header)
    head["blobs"] = [[name, len(data)] for name, data in blobs]
    raw = json.dumps(head, separators=(",", ":")).encode()
    return b"".join([_HEADER_LEN.pack(len(raw)), raw, *(data for _, data in blobs)])  # bytes-like: one copy


def decode_all(frame: str | bytes) -> list[Message]:
    """The messages of a frame: one, or those of a ``batch`` in order."""
    msg = decode(frame)
    if msg.type != "batch":
        return [msg]
    out = []
    for name, inner in msg.blobs.items():
        if name.endswith("t"):
            try:
                text = bytes(inner).decode()
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"unreadable frame in batch: {exc}") from None
            out.append(decode(text))
        elif name.endswith("b"):
            out.append(decode(bytes(inner)))
        else:
            raise ProtocolError(f"bad frame name {name!r} in batch")
        if out[-1].type == "batch":
            raise ProtocolError("a batch inside a batch")
    return out


def decode(frame: str | bytes) -> Message:
    """Parse a frame; raise :class:`ProtocolError` on anything malformed."""
    try:
        if isinstance(frame, str):
            header = json.loads(frame)
            blobs: dict[str, bytes | memoryview] = {}
        else:
            view = memoryview(frame)
            if len(view) < _HEADER_LEN.size:
                raise ProtocolError("binary frame shorter than its header length")
            (n,) = _HEADER_LEN.unpack_from(view)
            end = _HEADER_LEN.size + n
            if end > len(view):
                raise ProtocolError("binary frame header runs past the frame")
            header = json.loads(bytes(view[_HEADER_LEN.size : end]))
            if not isinstance(header, dict):
                raise ProtocolError("a message must be a JSON object with a string 'type'")
            entries = header.pop("blobs", [])
            if not isinstance(entries, list):
                raise ProtocolError("bad blob list in frame header")
            blobs = {}
            offset = end
            for entry in entries:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise ProtocolError("bad blob entry in frame header")
                name, length = entry
                if not isinstance(name, str) or type(length) is not int or length < 0:
                    raise ProtocolError("bad blob entry in frame header")
                if offset + length > len(view):
                    raise ProtocolError(f"blob {name!r} runs past the frame")
                if name in blobs:
                    raise ProtocolError(f"blob {name!r} appears twice in the frame")
                # large blobs stay views of the frame: megabytes are not copied once more
                chunk = view[offset : offset + length]
                blobs[name] = chunk if length >= LARGE_BLOB else bytes(chunk)
                offset += length
            if offset != len(view):
                raise ProtocolError("trailing bytes after the last blob")
    except (UnicodeDecodeError, json.JSONDecodeError, struct.error, RecursionError) as exc:
        raise ProtocolError(f"unreadable frame: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string 'type'")
    return Message(header, blobs)

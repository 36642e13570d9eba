"""Blob and log storage on local disk, next to the database that indexes them.

Owns the bytes that are too big for the database: task payloads and results
(:class:`FileBlobStore`, behind the abstract :class:`BlobStore`) and the captured output
of every attempt (:class:`FileLogStore`, one JSON-lines file per task attempt).
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any


def _check_key(key: str) -> list[str]:
    """The path segments of a blob key; ValueError for anything that could leave the root."""
    if not isinstance(key, str) or not key:
        raise ValueError("a blob key must be a non-empty string")
    if "\\" in key or "\0" in key:
        raise ValueError(f"invalid blob key {key!r}: no backslashes or NUL characters")
    if key.startswith("/") or os.path.isabs(key) or (len(key) > 1 and key[1] == ":"):
        raise ValueError(f"invalid blob key {key!r}: it must be a relative path")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid blob key {key!r}: no empty, '.' or '..' segments")
    return parts


class BlobStore(ABC):
    """Bytes by key (``tasks/<id>/payload``, ``tasks/<id>/result``, ...)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> int:
        """Store ``data`` under ``key`` (replacing what was there) and return its size."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError when there are none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget ``key``; nothing happens when it is not there."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def url(self, key: str) -> str:
        """Where the blob lives, as a URL (``file://...`` for files)."""


class FileBlobStore(BlobStore):
    """Blobs as files under ``root``: key ``a/b/c`` is the file ``root/a/b/c``.

    Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a
    reader sees the old bytes or the new ones, never a part. With ``fsync=True`` each write
    is also flushed to the disk before it replaces the old one.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.fsync = fsync
        self._folders: set[str] = set()
        os.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileBlobStore({self.root!r})"

    def path(self, key: str) -> str:
        """The file of ``key`` (which need not exist)."""
        return os.path.join(self.root, *_check_key(key))

    def put(self, key: str, data: bytes) -> int:
        path = self.path(key)
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            if len(self._folders) > 10_000:
                self._folders.clear()
            self._folders.add(folder)
        # a temporary name unique to this process and thread: no O_EXCL dance needed
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{os.path.basename(path)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return len(data)

    def get(self, key: str) -> bytes:
        try:
            with open(self.path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        try:
            os.remove(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def url(self, key: str) -> str:
        return Path(self.path(key)).as_uri()


# --- logs ---------------------------------------------------------------------------------

_CHECKPOINT_EVERY = 1024  # lines between remembered byte offsets of a log


class _LogFile:
    """What the store knows of one log file: complete lines, bytes, an offset index."""

    __slots__ = ("checkpoints", "count", "handle", "path", "size")

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None
        self.count = 0  # complete lines
        self.size = 0  # bytes of the complete lines
        self.checkpoints = [0]  # checkpoints[i]: byte offset of line i * _CHECKPOINT_EVERY

    def scan(self) -> None:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a torn last write: not a line
                self.add(len(line))

    def add(self, nbytes: int) -> None:
        if self.count and self.count % _CHECKPOINT_EVERY == 0:
            self.checkpoints.append(self.size)
        self.count += 1
        self.size += nbytes

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _encode(ts: float, stream: str, text: str) -> bytes:
    record = [float(ts), str(stream), str(text)]
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them, escaped
        return (json.dumps(record) + "\n").encode("ascii")


def _decode(line: bytes) -> dict[str, Any]:
    try:
        ts, stream, text = json.loads(line)
        return {"ts": ts, "stream": stream, "text": text}
    except (ValueError, TypeError):
        return {"ts": 0.0, "stream": "stdout", "text": line.decode("utf-8", "replace").rstrip("\n")}


class FileLogStore:
    """Output lines of task attempts: ``root/<task_id>/<attempt>.jsonl``, one
    ``[ts, stream, text]`` JSON array per line. Offsets are line numbers from 0.

    Thread-safe. Append handles of recently written logs stay open (at most
    ``max_open``); every append is flushed, so readers see it at once.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_open: int = 32, max_known: int = 1024) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.max_open = max(1, max_open)
        self.max_known = max(self.max_open, max_known)
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[str, int], _LogFile] = OrderedDict()
        self._open: OrderedDict[tuple[str, int], _LogFile] = OrderedDict()
        os.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileLogStore({self.root!r})"

    def path(self, task_id: str, attempt: int) -> str:
        if (
            not isinstance(task_id, str)
            or not task_id
            or task_id in (".", "..")
            or any(c in task_id for c in "/\\\0")
        ):
            raise ValueError(f"invalid task id for a log: {task_id!r}")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"invalid attempt number: {attempt!r}")
        return os.path.join(self.root, task_id, f"{attempt}.jsonl")

    def _file(self, task_id: str, attempt: int) -> _LogFile:
        """The known state of a log (scanning it the first time); call with the lock held."""
        key = (task_id, attempt)
        log = self._files.get(key)
        if log is not None:
            self._files.move_to_end(key)
            return log
        log = _LogFile(self.path(task_id, attempt))
        log.scan()
        self._files[key] = log
        while len(self._files) > self.max_known:
            old_key, old = self._files.popitem(last=False)
            old.close()
            self._open.pop(old_key, None)
        return log

    def _handle(self, key: tuple[str, int], log: _LogFile) -> IO[bytes]:
        if log.handle is None:
            os.makedirs(os.path.dirname(log.path), exist_ok=True)
            if os.path.exists(log.path) and os.path.getsize(log.path) > log.size:
                os.truncate(log.path, log.size)  # drop a torn last line before appending
            log.handle = open(log.path, "ab")
        self._open[key] = log
        self._open.move_to_end(key)
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return log.handle

    def append(self, task_id: str, attempt: int, lines: Sequence[tuple[float, str, str]]) -> int:
        """Add ``(ts, stream, text)`` lines to a log; returns its number of lines after."""
        encoded = [_encode(ts, stream, text) for ts, stream, text in lines]
        with self._lock:
            log = self._file(task_id, attempt)
            if not encoded:
                return log.count
            handle = self._handle((task_id, attempt), log)
            handle.write(b"".join(encoded))
            handle.flush()
            for data in encoded:
                log.add(len(data))
            return log.count

    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Lines ``offset`` .. ``offset + limit`` as ``{"ts", "stream", "text"}`` dicts, and the
        offset to read from next. A negative offset counts from the end (``-100``: the last
        100 lines). A log that does not exist reads as empty."""
        with self._lock:
            log = self._file(task_id, attempt)
            count, size = log.count, log.size
            if offset < 0:
                offset = max(0, count + offset)
            if offset >= count or limit == 0:
                return [], offset
            start = log.checkpoints[offset // _CHECKPOINT_EVERY]
            skip = offset % _CHECKPOINT_EVERY
            path = log.path
        want = count - offset if limit is None else min(max(0, limit), count - offset)
        out: list[dict[str, Any]] = []
        with open(path, "rb") as f:
            f.seek(start)
            position = start
            while len(out) < want and position < size:
                line = f.readline()
                if not line:
                    break
                position += len(line)
                if skip:
                    skip -= 1
                    continue
                out.append(_decode(line))
        return out, offset + len(out)

    def count(self, task_id: str, attempt: int) -> int:
        """Number of lines in a log (0 when it does not exist)."""
        with self._lock:
            return self._file(task_id, attempt).count

    def close(self) -> None:
        """Close every open file; the store can still be used afterwards (it reopens)."""
        with self._lock:
            for log in self._files.values():
                log.close()
            self._open.clear()
            self._files.clear()

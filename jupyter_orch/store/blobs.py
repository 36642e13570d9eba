"""Blob and log storage on local disk, next to the database that indexes them.

Owns the bytes that are too big for the database: task payloads and results
(:class:`FileBlobStore`, behind the abstract :class:`BlobStore`) and the captured output
of every attempt (:class:`FileLogStore`, one JSON-lines file per task attempt, kept by
:class:`~.attemptfiles.AttemptFiles`).
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from .attemptfiles import AttemptFiles


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


class FileLogStore(AttemptFiles[tuple[float, str, str], dict[str, Any]]):
    """Output lines of task attempts: ``root/<task_id>/<attempt>.jsonl``, one
    ``[ts, stream, text]`` JSON array per line. Offsets are line numbers from 0.

    ``append(task_id, attempt, [(ts, stream, text), ...])`` returns the number of lines
    after; ``read`` gives ``{"ts", "stream", "text"}`` dicts. Thread-safe (see
    :class:`~.attemptfiles.AttemptFiles`).
    """

    what = "a log"

    def encode(self, record: tuple[float, str, str]) -> bytes:
        ts, stream, text = record
        return _encode(ts, stream, text)

    def decode(self, line: bytes) -> dict[str, Any]:
        return _decode(line)

"""One JSON-lines file per task attempt, the machinery the log and metric stores share.

Owns the files under ``root/<task_id>/<attempt>.jsonl``: task ids checked so that none can
leave the root, complete lines counted (a torn last write is not a line, and is cut off
before the next append), a byte offset remembered every ``_CHECKPOINT_EVERY`` lines so that
a read from an offset seeks instead of scanning, and append handles kept open for the
recently written files. A subclass says how one record becomes a line and back
(:meth:`AttemptFiles.encode`, :meth:`AttemptFiles.decode`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import IO, Any, Generic, TypeVar

_CHECKPOINT_EVERY = 1024  # lines between remembered byte offsets of a file
_ATTEMPT_FILE = re.compile(r"(0|[1-9][0-9]{0,17})\.jsonl")

R = TypeVar("R")  # a record as appended
D = TypeVar("D")  # a record as read


class _LineFile:
    """What the store knows of one file: complete lines, bytes, an offset index."""

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


class AttemptFiles(Generic[R, D]):
    """Records of task attempts, one JSON line each; offsets are line numbers from 0.

    Thread-safe. Append handles of recently written files stay open (at most
    ``max_open``); every append is flushed, so readers see it at once.
    """

    what = "a log"  # named in errors

    def __init__(self, root: str | os.PathLike[str], *, max_open: int = 32, max_known: int = 1024) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.max_open = max(1, max_open)
        self.max_known = max(self.max_open, max_known)
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[str, int], _LineFile] = OrderedDict()
        self._open: OrderedDict[tuple[str, int], _LineFile] = OrderedDict()
        os.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    # ------------------------------------------------------------------ the format
    def encode(self, record: R) -> bytes:
        """One record as one line, ending in a newline."""
        raise NotImplementedError

    def decode(self, line: bytes) -> D:
        """A line back as a record (a line that cannot be read still gives one)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ files
    def _folder(self, task_id: str) -> str:
        if (
            not isinstance(task_id, str)
            or not task_id
            or task_id in (".", "..")
            or any(c in task_id for c in "/\\\0")
        ):
            raise ValueError(f"invalid task id for {self.what}: {task_id!r}")
        return os.path.join(self.root, task_id)

    def path(self, task_id: str, attempt: int) -> str:
        folder = self._folder(task_id)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"invalid attempt number: {attempt!r}")
        return os.path.join(folder, f"{attempt}.jsonl")

    def _file(self, task_id: str, attempt: int) -> _LineFile:
        """The known state of a file (scanning it the first time); call with the lock held."""
        key = (task_id, attempt)
        known = self._files.get(key)
        if known is not None:
            self._files.move_to_end(key)
            return known
        known = _LineFile(self.path(task_id, attempt))
        known.scan()
        self._files[key] = known
        while len(self._files) > self.max_known:
            old_key, old = self._files.popitem(last=False)
            old.close()
            self._open.pop(old_key, None)
        return known

    def _handle(self, key: tuple[str, int], known: _LineFile) -> IO[bytes]:
        if known.handle is None:
            os.makedirs(os.path.dirname(known.path), exist_ok=True)
            if os.path.exists(known.path) and os.path.getsize(known.path) > known.size:
                os.truncate(known.path, known.size)  # drop a torn last line before appending
            known.handle = open(known.path, "ab")
        self._open[key] = known
        self._open.move_to_end(key)
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return known.handle

    # ------------------------------------------------------------------ records
    def append(self, task_id: str, attempt: int, records: Sequence[R]) -> int:
        """Add records to an attempt's file; returns its number of records after."""
        encoded = [self.encode(r) for r in records]
        with self._lock:
            known = self._file(task_id, attempt)
            if not encoded:
                return known.count
            handle = self._handle((task_id, attempt), known)
            handle.write(b"".join(encoded))
            handle.flush()
            for data in encoded:
                known.add(len(data))
            return known.count

    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[D], int]:
        """Records ``offset`` .. ``offset + limit``, and the offset to read from next. A
        negative offset counts from the end (``-100``: the last 100). A file that does not
        exist reads as empty."""
        with self._lock:
            known = self._file(task_id, attempt)
            count, size = known.count, known.size
            if offset < 0:
                offset = max(0, count + offset)
            if offset >= count or limit == 0:
                return [], offset
            start = known.checkpoints[offset // _CHECKPOINT_EVERY]
            skip = offset % _CHECKPOINT_EVERY
            path = known.path
        want = count - offset if limit is None else min(max(0, limit), count - offset)
        out: list[D] = []
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
                out.append(self.decode(line))
        return out, offset + len(out)

    def count(self, task_id: str, attempt: int) -> int:
        """Number of records of an attempt (0 when its file does not exist)."""
        with self._lock:
            return self._file(task_id, attempt).count

    def attempts(self, task_id: str) -> list[int]:
        """The attempts of a task that have a file, in order."""
        try:
            names = os.listdir(self._folder(task_id))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(n[:-6]) for n in names if _ATTEMPT_FILE.fullmatch(n))

    def close(self) -> None:
        """Close every open file; the store can still be used afterwards (it reopens)."""
        with self._lock:
            for known in self._files.values():
                known.close()
            self._open.clear()
            self._files.clear()


def json_line(record: Any) -> bytes:
    """A JSON line (UTF-8; lone surrogates kept, escaped)."""
    try:
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")

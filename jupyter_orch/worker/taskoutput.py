"""The executor's side of a task's output: stderr ordered with stdout, display outputs as
marked lines, and every buffer flushed before a task is reported done.

The worker reads these pipes back in :mod:`.output` (its ``STDERR_MARK`` and
``DISPLAY_MARK`` are repeated here, not imported: that module pulls asyncio into the
executor process, which should start fast).
"""

from __future__ import annotations

import ctypes
import io
import json
import re
import sys
from typing import Any

_PIECES = re.compile(r"[^\r\n]*(?:\r\n|[\r\n])|[^\r\n]+")  # lines with their ends, then a partial one
_STDERR_MARK = b"\x1e\x1f"
_DISPLAY_MARK = b"\x1e\x1d"


class OrderedStderr(io.TextIOBase):
    """A task's ``sys.stderr``: each piece of a line goes into the stdout pipe behind a
    marker, after whatever stdout holds, so the worker sees both streams in the order they
    were written. ``\\r``-ended pieces (progress bars) and flushed partial lines go at once."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._pending = ""
        self._continuing = False  # a flushed partial line is open: its rest needs no marker

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = self._pending + text
        cut = max(data.rfind("\n"), data.rfind("\r"))
        if cut < 0:
            self._pending = data
        else:
            self._pending = data[cut + 1 :]
            self._put(data[: cut + 1])
        return len(text)

    def _put(self, text: str) -> None:
        out = bytearray()
        for piece in _PIECES.findall(text):
            if not self._continuing:
                out += _STDERR_MARK
            out += piece.encode("utf-8", "backslashreplace")
            self._continuing = piece[-1] not in "\r\n"  # only the last piece can be partial
        self._out.flush()
        self._out.buffer.write(bytes(out))
        self._out.buffer.flush()

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._put(text)
        else:
            self._out.flush()


def show_display(bundle: dict[str, Any]) -> None:
    """A display output goes into the stdout pipe as one marked JSON line, so it keeps its
    place among the task's printed lines."""
    line = _DISPLAY_MARK + json.dumps(bundle, separators=(",", ":")).encode() + b"\n"
    sys.stderr.flush()
    sys.stdout.flush()
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


def flush_output() -> None:
    """Push every buffered byte of this task into the pipes before it is reported done."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    try:  # C-level stdio (printf in native extensions) is block-buffered on a pipe
        _libc().fflush(None)
    except Exception:
        pass


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None)
    return _LIBC

"""Reading an executor's stdout/stderr pipes (and its metrics pipe) into timestamped lines.

A line ends at ``\\n`` (not kept) or at a lone ``\\r`` (kept, so a viewer can overwrite the
line the way a terminal would: progress bars stay live). Undecodable bytes are replaced,
and a line longer than ``max_line`` characters is cut into pieces. The metrics pipe's lines
(stream ``metric``, one JSON point each) are read without the stdout pipe's marks.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import time
from collections.abc import Callable

STDERR_MARK = "\x1e\x1f"
"""Starts a task's stderr line inside its stdout pipe: the executor writes Python-level
stderr there so that lines of both streams arrive in the order they were written (two
pipes cannot tell which came first)."""

DISPLAY_MARK = "\x1e\x1d"
"""Starts a line of a task's stdout pipe that is a display output (a JSON MIME bundle,
``{"data", "metadata"}``): it becomes a ``display`` log line, in order with the rest."""
MAX_DISPLAY = 64 << 20  # a display line is never cut below this size (an image is one line)

Sink = Callable[[float, str, str], None]
"""``sink(unix_ts, "stdout" | "stderr" | "display" | "metric", text)``"""

_EOL = re.compile(r"\r\n|\n|\r")
_READ_SIZE = 1 << 16


class LineSplitter:
    """Cuts a stream of bytes into lines, handing each to ``emit(text)``."""

    def __init__(self, emit: Callable[[str], None], max_line: int = 1 << 16, marks: bool = True) -> None:
        self._emit = emit
        self._max_line = max_line
        self._max_display = MAX_DISPLAY if marks else max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, data: bytes) -> None:
        text = self._partial + self._decoder.decode(data)
        start = 0
        end = len(text)
        while True:
            m = _EOL.search(text, start)
            if m is None:
                break
            if m.group() == "\r":
                if m.end() == end:  # maybe the first half of "\r\n": wait for more
                    break
                self._line(text[start : m.end()])
            else:
                self._line(text[start : m.start()])
            start = m.end()
        rest = text[start:]
        while len(rest) > (self._max_display if rest.startswith(DISPLAY_MARK) else self._max_line):
            self._line(rest[: self._max_line])
            rest = rest[self._max_line :]
        self._partial = rest

    def flush(self) -> None:
        """Emit what is left of an unfinished line."""
        text = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if text:
            self._line(text)

    def _line(self, text: str) -> None:
        if text != "\r":
            self._emit(text)


class PipeReader:
    """Reads one pipe on the event loop; lines go to ``sink`` while one is set. With
    ``marks`` (the stdout pipe) a marked line is a stderr or display line."""

    def __init__(
        self,
        fd: int,
        stream: str,
        on_stray: Sink | None = None,
        *,
        max_line: int = 1 << 16,
        marks: bool = True,
    ) -> None:
        self.fd = fd
        self.stream = stream
        self.sink: Sink | None = None
        self._on_stray = on_stray
        self._marks = marks
        self._splitter = LineSplitter(self._emit, max_line, marks)
        self._loop = asyncio.get_running_loop()
        self._open = True
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    def _emit(self, text: str) -> None:
        sink = self.sink or self._on_stray
        if sink is None:
            return
        if not self._marks:
            sink(time.time(), self.stream, text)
            return
        if text.startswith(DISPLAY_MARK):
            sink(time.time(), "display", text[len(DISPLAY_MARK) :])
            return
        if STDERR_MARK not in text:
            sink(time.time(), self.stream, text)
            return
        first, *rest = text.split(STDERR_MARK)
        now = time.time()
        if first:  # an unfinished stdout line, cut short by a stderr line
            sink(now, self.stream, first)
        for part in rest:
            if part:
                sink(now, "stderr", part)

    def _on_readable(self) -> None:
        self._read(once=True)

    def _read(self, once: bool) -> None:
        while self._open:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._splitter.flush()
                self._stop_reading()
                return
            self._splitter.feed(data)
            if once:
                return

    def drain(self) -> None:
        """Read everything in the pipe now and finish the last partial line."""
        self._read(once=False)
        self._splitter.flush()

    def _stop_reading(self) -> None:
        if self._open:
            self._open = False
            self._loop.remove_reader(self.fd)

    def close(self) -> None:
        self._stop_reading()
        try:
            os.close(self.fd)
        except OSError:
            pass

"""A process's output for tests: read line by line as it comes, by a thread (so a chatty
process never blocks on a full pipe), kept, and waited on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class Output:
    def __init__(self, what: str) -> None:
        self.what = what  # "server", "worker", "hub": for the error message
        self.lines: list[str] = []
        self.closed = False
        self._generation = 0  # of the stream followed now
        self._cond = threading.Condition()

    def follow(
        self,
        stream: Iterable[str],
        on_line: Callable[[str], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        """Read ``stream`` (a process's stdout, text) until it ends, from a thread. A later
        call (the process started again) supersedes it: the earlier stream's lines are still
        kept, but its end no longer counts (children of a killed server may hold its pipe
        open for a while, and it must not end the new one's wait)."""
        with self._cond:
            self.closed = False
            self._generation += 1
            generation = self._generation
        threading.Thread(target=self._read, args=(stream, on_line, on_end, generation), daemon=True).start()

    def _read(
        self,
        stream: Iterable[str],
        on_line: Callable[[str], None] | None,
        on_end: Callable[[], None] | None,
        generation: int,
    ) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
                current = generation == self._generation
            if on_line is not None and current:
                on_line(line)
        with self._cond:
            if generation != self._generation:
                return
            self.closed = True
            self._cond.notify_all()
        if on_end is not None:
            on_end()

    def text(self, last: int = 200) -> str:
        with self._cond:
            return "\n".join(self.lines[-last:])

    def wait_for(self, text: str, timeout: float = 30, start: int = 0) -> str:
        """The first line from index ``start`` on that contains ``text``, once it is there;
        TimeoutError after ``timeout`` seconds, or at once when the output has ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise TimeoutError(
                        f"no {self.what} output line with {text!r}:\n" + "\n".join(self.lines[-60:])
                    )
                self._cond.wait(left)

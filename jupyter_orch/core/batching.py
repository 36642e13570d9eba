"""Coalescing of outgoing WebSocket frames: everything a connection sends during one turn
of the event loop leaves as one ``batch`` frame (see :func:`protocol.encode_batch`).

Each frame costs a fixed amount of work on both ends (framing, a system call, a read
callback, a loop iteration), so under load a handful of batch frames replace thousands of
small ones. A frame can also be sent *lazily*: it waits (up to ``lazy_delay`` seconds) for
the next eager frame and leaves with it. The engine uses that for messages nobody waits
on, such as acknowledgements and ``started`` notices, so a quick task costs fewer frames.

Order is kept: frames leave in the order they were given. Frames of ``direct_min`` bytes or
more are written on their own (after what is queued), so megabytes are never copied into
a batch. The class takes its scheduling functions as arguments and imports no event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import protocol

Frame = str | bytes


class FrameBatcher:
    def __init__(
        self,
        write: Callable[[Frame], Any],
        call_soon: Callable[[Callable[[], None]], Any],
        call_later: Callable[[float, Callable[[], None]], Any],
        *,
        lazy_delay: float = 0.02,
        direct_min: int = 64 << 10,
        max_frames: int = 2000,
    ) -> None:
        self._write = write
        self._call_soon = call_soon
        self._call_later = call_later
        self.lazy_delay = lazy_delay
        self.direct_min = direct_min
        self.max_frames = max_frames
        self._frames: list[Frame] = []
        self._soon = False  # a flush is scheduled for the end of this loop turn
        self._timer: Any = None  # a flush is scheduled for lazy frames
        self.frames_written = 0
        self.batches_written = 0

    def send(self, frame: Frame, *, lazy: bool = False) -> None:
        if len(frame) >= self.direct_min:
            self.flush()
            self._emit(frame)
            return
        self._frames.append(frame)
        if len(self._frames) >= self.max_frames:
            self.flush()
        elif not lazy:
            if not self._soon:
                self._soon = True
                self._call_soon(self._flush_soon)
        elif self._timer is None and not self._soon:
            self._timer = self._call_later(self.lazy_delay, self._flush_lazy)

    @property
    def pending(self) -> int:
        return len(self._frames)

    def _flush_soon(self) -> None:
        self._soon = False
        self.flush()

    def _flush_lazy(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write everything queued now (one frame, or a batch of them)."""
        self._cancel_timer()
        frames, self._frames = self._frames, []
        if not frames:
            return
        self._emit(frames[0] if len(frames) == 1 else protocol.encode_batch(frames))
        if len(frames) > 1:
            self.batches_written += 1

    def discard(self) -> None:
        """Drop what is queued (the connection is gone)."""
        self._cancel_timer()
        self._frames = []

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            cancel = getattr(self._timer, "cancel", None)
            if cancel is not None:
                cancel()
            self._timer = None

    def _emit(self, frame: Frame) -> None:
        self.frames_written += 1
        self._write(frame)

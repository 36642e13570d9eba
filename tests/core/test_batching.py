"""FrameBatcher: frames sent in one loop turn leave as one batch, in order; lazy frames wait
for the next eager one (or their timer); large frames are never copied into a batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_orch.core.batching import FrameBatcher
from jupyter_orch.core.protocol import decode_all, encode


class Loop:
    """Stands in for the event loop: the test runs what was scheduled, when it chooses."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []
        self.later: list[tuple[float, Callable[[], None], Timer]] = []

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.soon.append(fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer()
        self.later.append((delay, fn, timer))
        return timer

    def turn(self) -> None:
        ready, self.soon = self.soon, []
        for fn in ready:
            fn()

    def fire_timers(self) -> None:
        due, self.later = self.later, []
        for _, fn, timer in due:
            if not timer.cancelled:
                fn()


class Timer:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def make(**kw: Any) -> tuple[FrameBatcher, Loop, list[str | bytes]]:
    loop, written = Loop(), []
    return FrameBatcher(written.append, loop.call_soon, loop.call_later, **kw), loop, written


def types(frame: str | bytes) -> list[str]:
    return [m.type for m in decode_all(frame)]


def test_frames_of_one_turn_leave_as_one_batch_in_order() -> None:
    batcher, loop, written = make()
    for kind in ("assign", "cancel", "assign"):
        batcher.send(encode({"type": kind}))
    assert written == []  # nothing before the end of the turn
    loop.turn()
    assert len(written) == 1 and types(written[0]) == ["assign", "cancel", "assign"]
    batcher.send(encode({"type": "ack"}))
    loop.turn()
    assert written[1] == encode({"type": "ack"})  # a lone frame goes as itself, not a batch


def test_a_lazy_frame_waits_for_the_next_eager_one_or_its_timer() -> None:
    batcher, loop, written = make(lazy_delay=0.5)
    batcher.send(encode({"type": "ack"}), lazy=True)
    loop.turn()
    assert written == [] and [d for d, _, _ in loop.later] == [0.5]
    batcher.send(encode({"type": "assign"}))
    loop.turn()
    assert types(written[0]) == ["ack", "assign"]
    assert loop.later[0][2].cancelled  # the timer is no longer needed
    batcher.send(encode({"type": "ack"}), lazy=True)
    loop.fire_timers()
    assert types(written[1]) == ["ack"]


def test_large_frames_go_alone_after_what_is_queued() -> None:
    batcher, loop, written = make(direct_min=100)
    big = encode({"type": "assign"}, [("payload", b"x" * 200)])
    batcher.send(encode({"type": "cancel"}))
    batcher.send(big)
    assert types(written[0]) == ["cancel"] and written[1] is big
    loop.turn()
    assert len(written) == 2


def test_a_full_batch_is_written_at_once_and_discard_drops_the_rest() -> None:
    batcher, loop, written = make(max_frames=3)
    for _ in range(4):
        batcher.send(encode({"type": "ack"}))
    assert len(written) == 1 and len(types(written[0])) == 3
    assert batcher.pending == 1
    batcher.discard()
    loop.turn()
    assert len(written) == 1 and batcher.pending == 0

"""What the worker owes the server: task log lines, metric points and ``finished`` reports
until acked.

Log lines are batched (a ``log`` message every ~20 ms or 200 lines) and kept, up to a bound
per attempt, while the worker is disconnected; metric points likewise, in a channel of their
own (a ``metrics`` message every ~20 ms or 500 points, up to 100,000 kept per attempt). A
``finished`` report is sent after its task's last log lines and points and kept until the
server answers ``ack`` (or ``refuse``); after a reconnect the ``hello`` lists the kept
reports and :meth:`Outbox.resend` sends them again; the ``welcome``'s ``log_offsets`` and
``metric_offsets`` say how far the server got (:meth:`Outbox.rewind`).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from .connection import Connection
from .outcomes import Outcome

Key = tuple[str, int]

LOG_BATCH_LINES = 200
LOG_BATCH_SECONDS = 0.02
METRIC_BATCH_POINTS = 500
MAX_METRIC_POINTS = 100_000  # kept per attempt while disconnected


class _Logs:
    """The recent log lines (or metric points) of one attempt, each with its offset (its
    index in the attempt's log). Lines at or past ``sent`` have not reached the server yet;
    after a reconnect the server says how far it got and ``sent`` is rewound, so lost lines
    go again. At most ``limit`` lines are kept; the server notices a gap in the offsets and
    says so."""

    def __init__(self, limit: int) -> None:
        self.lines: collections.deque[tuple[int, list[Any]]] = collections.deque(maxlen=limit)
        self.next = 0  # offset of the next line
        self.sent = 0  # lines before this offset were sent

    def add(self, line: list[Any]) -> None:
        self.lines.append((self.next, line))
        self.next += 1

    @property
    def unsent(self) -> int:
        return self.next - max(self.sent, self.lines[0][0] if self.lines else self.next)

    def take(self, n: int) -> tuple[int, list[list[Any]]]:
        """Up to ``n`` unsent lines and the offset of the first."""
        first = self.lines[0][0] if self.lines else self.next
        start = max(self.sent, first)
        index = start - first
        batch = [self.lines[i][1] for i in range(index, min(index + n, len(self.lines)))]
        return start, batch


class Outbox:
    def __init__(
        self, connection: Connection, max_log_lines: int = 10_000, max_metric_points: int = MAX_METRIC_POINTS
    ) -> None:
        self.connection = connection
        self.max_log_lines = max_log_lines
        self.max_metric_points = max_metric_points
        self.reports: dict[Key, tuple[dict[str, Any], bytes]] = {}
        self._logs: dict[Key, _Logs] = {}
        self._metrics: dict[Key, _Logs] = {}
        self._timer: asyncio.TimerHandle | None = None

    def open(self, key: Key) -> None:
        """Start keeping the log lines and metric points of an attempt."""
        self._logs[key] = _Logs(self.max_log_lines)
        self._metrics[key] = _Logs(self.max_metric_points)

    def line(self, key: Key, ts: float, stream: str, text: str) -> None:
        logs = self._logs.get(key)
        if logs is None:
            return
        logs.add([ts, stream, text])
        if logs.unsent >= LOG_BATCH_LINES:
            self._flush(key)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LOG_BATCH_SECONDS, self.flush_all)

    def metric(self, key: Key, point: list[Any]) -> None:
        """A checked metric point of an attempt (numbered apart from its log lines)."""
        points = self._metrics.get(key)
        if points is None:
            return
        points.add(point)
        if points.unsent >= METRIC_BATCH_POINTS:
            self._flush_metrics(key)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LOG_BATCH_SECONDS, self.flush_all)

    def rewind(self, key: Key, offset: int, *, metrics: bool = False) -> None:
        """The server holds this attempt's lines (``metrics``: points) up to ``offset``:
        send from there on."""
        logs = (self._metrics if metrics else self._logs).get(key)
        if logs is not None and 0 <= offset <= logs.next:
            logs.sent = offset

    def flush_all(self) -> None:
        self._timer = None
        for key in list(self._logs):
            self._flush(key)

    def _flush(self, key: Key) -> None:
        """Send the attempt's unsent log lines and metric points."""
        self._flush_metrics(key)
        logs = self._logs.get(key)
        if logs is None or not self.connection.connected:
            return
        while logs.unsent > 0:
            offset, batch = logs.take(LOG_BATCH_LINES)
            message = {"type": "log", "task_id": key[0], "attempt": key[1], "offset": offset, "lines": batch}
            if not self.connection.send(message):
                return
            logs.sent = offset + len(batch)

    def _flush_metrics(self, key: Key) -> None:
        points = self._metrics.get(key)
        if points is None or not self.connection.connected:
            return
        while points.unsent > 0:
            offset, batch = points.take(METRIC_BATCH_POINTS)
            message = {
                "type": "metrics",
                "task_id": key[0],
                "attempt": key[1],
                "offset": offset,
                "points": batch,
            }
            if not self.connection.send(message):
                return
            points.sent = offset + len(batch)

    def finish(self, key: Key, outcome: Outcome, *, lazy: bool = False) -> None:
        """Keep the report and send it (after the attempt's last log lines and points) if connected;
        a ``lazy`` one may wait briefly to leave in one frame with the next."""
        header = {"type": "finished", "task_id": key[0], "attempt": key[1], **outcome.header()}
        self.reports[key] = (header, outcome.result)
        self._send_report(key, lazy=lazy)

    def _send_report(self, key: Key, *, lazy: bool = False) -> None:
        self._flush(key)
        header, result = self.reports[key]
        self.connection.send(header, [("result", result)], lazy=lazy)

    def resend(self, key: Key | None = None) -> None:
        """After a (re)connect: pending log lines and points, then every kept report (or just
        ``key``)."""
        if key is not None:
            self._send_report(key)
            return
        self.flush_all()
        for k in list(self.reports):
            self._send_report(k)

    def resolve(self, key: Key) -> bool:
        """The server acked or refused this report: forget it. False if it was not kept."""
        if self.reports.pop(key, None) is None:
            return False
        self._logs.pop(key, None)
        self._metrics.pop(key, None)
        return True

    def headers(self) -> list[dict[str, Any]]:
        """The kept reports without their blobs, for ``hello.finished``."""
        return [header for header, _ in self.reports.values()]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

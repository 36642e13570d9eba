"""What the worker owes the server: task log lines and ``finished`` reports until acked.

Log lines are batched (a message every ~20 ms or 200 lines) and kept, up to a bound per
attempt, while the worker is disconnected. A ``finished`` report is sent after its task's
last log lines and kept until the server answers ``ack`` (or ``refuse``); after a reconnect
the ``hello`` lists the kept reports and :meth:`Outbox.resend` sends them again.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from jupyter_orch.worker.connection import Connection
from jupyter_orch.worker.outcomes import Outcome

Key = tuple[str, int]

LOG_BATCH_LINES = 200
LOG_BATCH_SECONDS = 0.02


class _Logs:
    """The unsent log lines of one attempt (the oldest are dropped beyond ``limit``)."""

    def __init__(self, limit: int) -> None:
        self.lines: collections.deque[list[Any]] = collections.deque(maxlen=limit)
        self.dropped = 0

    def add(self, line: list[Any]) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(line)


class Outbox:
    def __init__(self, connection: Connection, max_log_lines: int = 10_000) -> None:
        self.connection = connection
        self.max_log_lines = max_log_lines
        self.reports: dict[Key, tuple[dict[str, Any], bytes]] = {}
        self._logs: dict[Key, _Logs] = {}
        self._timer: asyncio.TimerHandle | None = None

    def open(self, key: Key) -> None:
        """Start keeping the log lines of an attempt."""
        self._logs[key] = _Logs(self.max_log_lines)

    def line(self, key: Key, ts: float, stream: str, text: str) -> None:
        logs = self._logs.get(key)
        if logs is None:
            return
        logs.add([ts, stream, text])
        if len(logs.lines) >= LOG_BATCH_LINES:
            self._flush(key)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LOG_BATCH_SECONDS, self.flush_all)

    def flush_all(self) -> None:
        self._timer = None
        for key in list(self._logs):
            self._flush(key)

    def _flush(self, key: Key) -> None:
        logs = self._logs.get(key)
        if logs is None or not self.connection.connected:
            return
        while logs.lines:
            taken = [logs.lines.popleft() for _ in range(min(LOG_BATCH_LINES, len(logs.lines)))]
            batch = taken
            if logs.dropped:
                note = f"[jupyter-orch: {logs.dropped} earlier line(s) dropped while the worker was disconnected]"
                batch = [[taken[0][0], "stderr", note], *taken]
            message = {"type": "log", "task_id": key[0], "attempt": key[1], "lines": batch}
            if not self.connection.send(message):
                logs.lines.extendleft(reversed(taken))
                return
            logs.dropped = 0

    def finish(self, key: Key, outcome: Outcome) -> None:
        """Keep the report and send it (after the attempt's last log lines) if connected."""
        header = {"type": "finished", "task_id": key[0], "attempt": key[1], **outcome.header()}
        self.reports[key] = (header, outcome.result)
        self._send_report(key)

    def _send_report(self, key: Key) -> None:
        self._flush(key)
        header, result = self.reports[key]
        self.connection.send(header, [("result", result)])

    def resend(self, key: Key | None = None) -> None:
        """After a (re)connect: pending log lines, then every kept report (or just ``key``)."""
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
        return True

    def headers(self) -> list[dict[str, Any]]:
        """The kept reports without their blobs, for ``hello.finished``."""
        return [header for header, _ in self.reports.values()]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

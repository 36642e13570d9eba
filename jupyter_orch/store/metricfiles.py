"""Metric points of task attempts on local disk, next to their logs.

Owns ``root/<task_id>/<attempt>.jsonl``: one point ``[ts, step, group, {name: value}]``
(see :mod:`jupyter_orch.core.metrics`) per line, numbered per attempt from 0 like log
lines. The engine checks points before they are appended; a line that cannot be read
back (a damaged file) reads as an empty point, so the offsets of the others hold.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.metrics import DEFAULT_GROUP, Point
from .attemptfiles import AttemptFiles, json_line


class FileMetricStore(AttemptFiles[Point, Point]):
    """``append(task_id, attempt, points) -> count``, ``count``, ``read(task_id, attempt,
    offset=0, limit=None) -> (points, next offset)`` and ``attempts(task_id)``.
    Thread-safe; a torn last line (a crash mid-write) is not a point and is cut off before
    the next append."""

    what = "metrics"

    def encode(self, record: Point) -> bytes:
        ts, step, group, values = record
        return json_line([ts, step, group, values])

    def decode(self, line: bytes) -> Point:
        try:
            ts, step, group, values = json.loads(line)
            if isinstance(values, dict):
                return [ts, step, group, values]
        except (ValueError, TypeError):
            pass
        empty: dict[str, Any] = {}
        return [0.0, None, DEFAULT_GROUP, empty]

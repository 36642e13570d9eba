"""What users read of a task's metrics: series (each downsampled to at most
``max_points``, with its last, min and max) or flat records, a page at a time, and the
points of one attempt from an offset (for a live follower). Reads only, off the event loop
(the files are read and the series cut in the default executor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..core.metrics import MAX_POINTS_DEFAULT, Point, downsample, record, series
from ..core.records import TaskRow
from .ports import Metrics

READ_CHUNK = 4096  # points read from a file at a time
RECORDS_DEFAULT = 1000
RECORDS_LIMIT = 10_000


@dataclass(frozen=True)
class MetricQuery:
    """A read of a task's metrics, its parameters checked (see ``server/metricquery.py``)."""

    attempt: int | None = None  # None: every attempt
    group: str | None = None
    names: tuple[str, ...] = ()  # empty: every metric
    max_points: int = MAX_POINTS_DEFAULT
    per_attempt: bool = False
    records: bool = False  # flat records, a page at a time, instead of series
    limit: int = RECORDS_DEFAULT
    after: tuple[int, int] | None = None  # records after this (attempt, offset)


class MetricReads:
    def __init__(self, metrics: Metrics | None) -> None:
        self.store = metrics  # None: no metrics are kept; every read is empty

    async def points(self, task_id: str, attempt: int, offset: int = 0) -> tuple[list[Point], int]:
        """The points of an attempt from ``offset`` on, and the offset after them."""
        if self.store is None or attempt < 1:
            return [], offset
        return await asyncio.get_running_loop().run_in_executor(
            None, self.store.read, task_id, attempt, offset
        )

    async def answer(self, row: TaskRow, query: MetricQuery) -> dict[str, Any]:
        """The answer of ``GET /tasks/{id}/metrics`` for a task the caller may read."""
        run = self._records if query.records else self._series
        return await asyncio.get_running_loop().run_in_executor(None, run, row, query)

    # ------------------------------------------------------------------ in the executor
    def _attempts(self, row: TaskRow, query: MetricQuery) -> list[int]:
        if self.store is None:
            return []
        held = [a for a in self.store.attempts(row.id) if 1 <= a <= max(row.attempt, 1)]
        return [a for a in held if query.attempt is None or a == query.attempt]

    def _read_all(self, task_id: str, attempt: int, offset: int = 0) -> Iterator[tuple[int, Point]]:
        assert self.store is not None
        while True:
            chunk, after = self.store.read(task_id, attempt, offset, READ_CHUNK)
            if not chunk:
                return
            yield from enumerate(chunk, offset)
            offset = after

    def _series(self, row: TaskRow, query: MetricQuery) -> dict[str, Any]:
        attempts = self._attempts(row, query)
        triples = [(a, offset, point) for a in attempts for offset, point in self._read_all(row.id, a)]
        groups: dict[str, None] = {}
        names: dict[str, None] = {}
        for _, _, (_ts, _step, group, values) in triples:
            groups.setdefault(group)
            for name in values:
                names.setdefault(name)
        out = []
        for s in series(triples, names=query.names or None, group=query.group, per_attempt=query.per_attempt):
            summary = s.summary()  # of every point, not only those drawn
            xs, ys = downsample(s.x, s.y, query.max_points)
            out.append(
                {
                    "name": s.name,
                    "group": s.group,
                    "attempt": s.attempt,
                    "x": xs,
                    "y": ys,
                    "count": s.count,
                    "downsampled": len(xs) < s.count,
                    **summary,
                }
            )
        return {
            "task_id": row.id,
            "attempts": sorted({a for a, _, _ in triples}),
            "groups": list(groups),
            "names": list(names),
            "series": out,
        }

    def _records(self, row: TaskRow, query: MetricQuery) -> dict[str, Any]:
        after_attempt, after_offset = query.after or (0, -1)
        wanted = set(query.names)
        out: list[dict[str, Any]] = []
        for attempt in self._attempts(row, query):
            if attempt < after_attempt:
                continue
            start = after_offset + 1 if attempt == after_attempt else 0
            for offset, (ts, step, group, values) in self._read_all(row.id, attempt, start):
                if query.group is not None and group != query.group:
                    continue
                if wanted:
                    values = {k: v for k, v in values.items() if k in wanted}
                    if not values:
                        continue
                if len(out) == query.limit:  # one more there: the next page starts after the last
                    last = out[-1]
                    return {"records": out, "next": f"{last['attempt']}:{last['offset']}"}
                out.append(record(attempt, offset, [ts, step, group, values]))
        return {"records": out, "next": None}

"""``GET /timeline``: which task held which worker's GPUs (or slots) when, for the lab's GPU
timeline. The spans are the task attempts of a window of time, running ones included.

What a caller sees follows :mod:`.visibility`: the workers they may see; their own spans in
full; other users' spans on those workers as busy time only (no task id, name or owner), so
a team sees when a GPU was taken without learning by whom or for what; spans on workers
they may not see, not at all. Someone who reads everything sees it all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from ..core.access import Identity
from ..core.errors import SpecError
from ..core.records import TimelineSpan
from .base import OrchAPIHandler
from .visibility import worker_views
from .workers import task_owner

DEFAULT_WINDOW = 3600.0  # seconds before ``until`` when ``since`` is not given
MAX_WINDOW = 31 * 86400.0
MAX_SPANS = 20_000  # the latest by start; ``truncated`` says when there were more


def _time_arg(handler: OrchAPIHandler, name: str, default: float) -> float:
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 1e11:
        raise SpecError(f"query parameter {name} must be a time in seconds since the epoch", field=name)
    return value


def span_view(span: TimelineSpan, mine: bool) -> dict[str, Any]:
    return {
        "task_id": span.task_id if mine else None,
        "name": span.name if mine else None,
        "owner": span.owner if mine else None,
        "mine": mine,
        "attempt": span.attempt,
        "state": span.state,
        "worker_id": span.worker_id,
        "gpus": list(span.gpus),
        "started_at": span.started_at,
        "ended_at": span.ended_at,
    }


def timeline_view(
    identity: Identity,
    workers: list[dict[str, Any]],
    spans: Iterable[TimelineSpan],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The workers and spans ``identity`` may see (``workers``: as visible to them already).
    A span on a worker gone since is shown to its owner (and to who reads everything)."""
    visible = {w["id"] for w in workers}
    out_workers = [
        {
            "id": w["id"],
            "name": w.get("name") or w["id"],
            "state": w.get("state") or "connected",
            "slots": int(w.get("slots") or 0),
            "gpus": [{"index": g.get("index"), "name": g.get("name") or ""} for g in w.get("gpus") or ()],
        }
        for w in workers
    ]
    gone: dict[str, dict[str, Any]] = {}
    out_spans = []
    for span in spans:
        mine = identity.reads_all or span.owner == identity.name
        known = span.worker_id in visible
        if not known and not mine:
            continue
        if not known and span.worker_id is not None:
            gone.setdefault(
                span.worker_id,
                {"id": span.worker_id, "name": span.worker_id, "state": "gone", "slots": 0, "gpus": []},
            )
        out_spans.append(span_view(span, mine))
    return out_workers + list(gone.values()), out_spans


class TimelineHandler(OrchAPIHandler):
    async def get(self) -> None:
        now = time.time()
        until = _time_arg(self, "until", now)
        since = _time_arg(self, "since", until - DEFAULT_WINDOW)
        if since >= until:
            raise SpecError("since must be before until", field="since")
        if until - since > MAX_WINDOW:
            raise SpecError(f"the window may span {MAX_WINDOW / 86400:g} days at most", field="since")
        limit = self.int_arg("limit", MAX_SPANS, 1, MAX_SPANS)
        assert limit is not None
        engine = await self.engine()
        spans = await engine.reads.timeline(since, until, limit + 1)
        truncated = len(spans) > limit
        identity = self.identity
        workers = worker_views(engine.worker_list(), identity, task_owner(engine))
        out_workers, out_spans = timeline_view(identity, workers, spans[:limit])
        self.write_json(
            {
                "since": since,
                "until": until,
                "now": now,
                "workers": out_workers,
                "spans": out_spans,
                "truncated": truncated,
            }
        )

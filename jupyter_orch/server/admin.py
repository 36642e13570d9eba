"""REST handlers for people who look after the whole service: usage per user and group
over a period, and who holds what now against their quotas (the sidebar's admin view).
Reading them needs the right to read everyone's work (``custom:orch:read-all``, admins);
anyone else gets a 403."""

from __future__ import annotations

import re
import time

from ..core.errors import SpecError
from ..engine.holdings import holdings_view
from .base import OrchAPIHandler

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_PERIOD = 3660 * 86400.0  # ten years


def parse_period(text: str, name: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s`` or seconds, as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise SpecError(
            f"{name} must be a duration such as 7d, 12h, 30m or 3600 (seconds), not {text!r}", field=name
        )
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not 0 < seconds <= MAX_PERIOD:
        raise SpecError(f"{name} must be above 0 and at most ten years", field=name)
    return seconds


class UsageHandler(OrchAPIHandler):
    """``GET /admin/usage?since=7d``: GPU-hours and task-hours per user and group."""

    async def get(self) -> None:
        engine = await self.engine()
        self.identity.require_read_all("usage of every user")
        now = time.time()
        since = now - parse_period(self.get_query_argument("since", "7d") or "", "since")
        self.write_json(await engine.usage(since, now))


class HoldingsHandler(OrchAPIHandler):
    """``GET /admin/holdings``: per user and per group, the tasks placed and waiting and the
    GPUs held now, each against its quota (null: no limit)."""

    async def get(self) -> None:
        engine = await self.engine()
        self.identity.require_read_all("the holdings of every user")
        self.write_json(holdings_view(engine.state, time.time()))

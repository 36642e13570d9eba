"""What accepting tasks hands back before their commit (see :mod:`.submission`): the rows,
the new ones among them, and a future resolved once they are stored."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.records import TaskRow
from .caches import StoredPayload

Payloads = Mapping[str, bytes | StoredPayload]  # task id -> its payload, or where the client wrote it


@dataclass
class Accepted:
    rows: list[TaskRow]  # one per spec submitted (an existing row for a repeated id)
    fresh: list[TaskRow]  # the new ones
    stored: asyncio.Future[None]  # resolved once their commit is done (or failed)

"""Task payloads and results in memory: a byte cache bounded by size and count, and the
marker of a payload kept only in the blob store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..core.protocol import Buffer


@dataclass(frozen=True)
class StoredPayload:
    """A payload already in the blob store at the task's key (written by a client on the
    server's machine, see :mod:`.handoff`): nothing to write or keep in memory."""

    size: int


class BytesLRU:
    """Recent payloads/results in memory, bounded by total size and by count. Each entry
    counts ``OVERHEAD`` bytes besides its data (the key, the dict slot, the bytes object):
    a million tiny results cost memory although their data is a few bytes each (a server
    under load grew by that without bound)."""

    OVERHEAD = 200

    def __init__(self, capacity: int, max_items: int | None = None) -> None:
        self.capacity = capacity
        self.max_items = max_items
        self.size = 0
        self._items: OrderedDict[str, Buffer] = OrderedDict()

    def get(self, key: str) -> Buffer | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: Buffer) -> None:
        if len(data) + self.OVERHEAD > self.capacity:
            return
        self.pop(key)
        self._items[key] = data
        self.size += len(data) + self.OVERHEAD
        while self.size > self.capacity or (self.max_items is not None and len(self._items) > self.max_items):
            _, old = self._items.popitem(last=False)
            self.size -= len(old) + self.OVERHEAD

    def pop(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old) + self.OVERHEAD

    def __len__(self) -> int:
        return len(self._items)

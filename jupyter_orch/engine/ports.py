"""What the engine needs from the outside, as small interfaces (the store, the blob store,
the log store), its configuration, and the in-memory byte caches it keeps."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.records import AttemptRow, TaskRow, TokenRow


class Store(Protocol):
    """The store as the engine sees it (``jupyter_orch.store.SqlStore`` implements it)."""

    def apply(self, changes: Sequence[Any], *, wait: bool = True) -> None: ...
    def checkpoint(self) -> None: ...
    def load_active(self) -> list[TaskRow]: ...
    def next_seq(self) -> int: ...
    def max_task_id(self) -> str | None: ...
    def get_task(self, task_id: str) -> TaskRow | None: ...
    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]: ...
    def get_attempts(self, task_id: str) -> list[AttemptRow]: ...
    def not_started_counts(self, task_ids: Sequence[str]) -> dict[str, int]: ...
    def list_tasks(self, **filters: Any) -> list[TaskRow]: ...
    def count_by_state(self, owner: str | None = None) -> dict[str, int]: ...
    def create_token(
        self, name: str, *, scope: str = ..., owner: str = ..., provider: str = ...
    ) -> tuple[TokenRow, str]: ...
    def find_token(self, secret: str) -> TokenRow | None: ...
    def revoke_token(self, token_id: str) -> bool: ...
    def list_tokens(self, scope: str | None = None) -> list[TokenRow]: ...
    def get_blob(self, key: str) -> bytes: ...


class Blobs(Protocol):
    def put(self, key: str, data: bytes) -> int: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class Logs(Protocol):
    def append(self, task_id: str, attempt: int, lines: Sequence[tuple[float, str, str]]) -> int: ...
    def count(self, task_id: str, attempt: int) -> int: ...
    def read(
        self, task_id: str, attempt: int, offset: int = 0, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], int]: ...


@dataclass
class EngineConfig:
    policy: str = "binpack"
    max_payload_bytes: int = 512 * 2**20
    worker_grace: float = 60.0  # seconds a lost worker has to come back
    heartbeat_interval: float = 5.0
    cancel_grace: float = 5.0
    result_cache_bytes: int = 256 * 2**20
    finished_cache: int = 5_000  # finished task rows kept in memory for fast reads
    worker_idle_timeout: float = 600.0  # the provider hears of workers idle this long
    prefetch: int = 2  # short GPU-less tasks sent ahead per slot (0: never)
    inline_blob_limit: int = 64 * 2**10  # payloads/results up to this size live in the database
    file_handoff_min: int = 2**20  # local workers read payloads this large from the blob file
    prefetch_below: float = 0.1  # "short": a worker's average task run time under this (s)
    prefetch_quick: int = 16  # sent ahead per slot while its tasks average under ...
    prefetch_quick_below: float = 0.01  # ... this (s): reports and assigns then go in batches
    server_version: str = ""
    task_token_secret: bytes = b""  # signs the tokens tasks get (empty: tasks get none)


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
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
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

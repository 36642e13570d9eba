"""The engine's byte caches stay bounded however small their entries (a server under load
kept every tiny result it ever saw: 160,000 tasks in 5 minutes grew it by 45 MB)."""

from __future__ import annotations

from jupyter_orch.engine.caches import BytesLRU


def test_tiny_entries_are_bounded_by_count_and_by_their_overhead() -> None:
    cache = BytesLRU(1 << 20, max_items=100)
    for i in range(10_000):
        cache.put(f"task-{i}", b"x")
    assert len(cache) == 100
    assert cache.get("task-9999") == b"x" and cache.get("task-0") is None
    by_size = BytesLRU(100 * (BytesLRU.OVERHEAD + 1))
    for i in range(10_000):
        by_size.put(f"task-{i}", b"x")
    assert len(by_size) == 100  # each entry costs its overhead, not just its one byte
    assert by_size.size <= by_size.capacity


def test_large_entries_still_evict_by_size() -> None:
    cache = BytesLRU(10_000, max_items=1000)
    for i in range(10):
        cache.put(str(i), b"x" * 3000)
    assert len(cache) == 3 and cache.size <= 10_000
    cache.pop("9")
    assert len(cache) == 2 and cache.get("9") is None

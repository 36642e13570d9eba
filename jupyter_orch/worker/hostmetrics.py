"""This machine's CPUs and memory (psutil): what the worker offers and its live load."""

from __future__ import annotations

import os
from typing import Any

import psutil


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask), else all of them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def total_memory() -> int:
    return int(psutil.virtual_memory().total)


class HostMetrics:
    """CPU percentage since the previous sample, and memory in use."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement

    def sample(self) -> dict[str, Any]:
        mem = psutil.virtual_memory()
        return {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "memory_used": int(mem.total - mem.available),
            "memory_total": int(mem.total),
        }

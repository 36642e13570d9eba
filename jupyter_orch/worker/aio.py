"""Small asyncio helpers for waits with a timeout.

Not :func:`asyncio.wait_for`: before Python 3.12 it can swallow a cancellation that races
the awaited result, which would leave a stopping worker's loops running.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_future(fut: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait until ``fut`` is done or ``timeout`` passes (``fut`` is left alone); done?"""
    if fut.done():
        return True
    done, _ = await asyncio.wait([fut], timeout=None if timeout is None else max(timeout, 0.0))
    return bool(done)


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes; is it set?"""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        return await wait_future(waiter, timeout)
    finally:
        waiter.cancel()

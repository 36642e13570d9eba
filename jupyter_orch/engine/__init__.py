"""The engine: the asyncio component inside the server that owns every state transition.

It accepts tasks (committed before the API answers), runs the scheduler on every change,
sends assignments to workers, records results, retries, cancels and recovers after a
restart, publishing every change on the event bus.
"""

from .engine import Engine, EngineConfig

__all__ = ["Engine", "EngineConfig"]

"""The WebSocket routes, by the names the extension registers them under: a worker's
connection (:mod:`.workerconnect`), the events stream and a task's log follow
(:mod:`.feeds`), and the client session, the SDK's fast path for submitting and collecting
results (:mod:`.session`). Each lives in its own module; this one gathers them."""

from __future__ import annotations

from .authsocket import AuthedWebSocket
from .feeds import EventsHandler, LogFollowHandler
from .session import INLINE_RESULT_LIMIT, SessionHandler
from .workerconnect import WorkerConnectHandler

__all__ = [
    "INLINE_RESULT_LIMIT",
    "AuthedWebSocket",
    "EventsHandler",
    "LogFollowHandler",
    "SessionHandler",
    "WorkerConnectHandler",
]

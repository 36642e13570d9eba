"""The Python client (kernel or script): ``connect()``, ``Client``, futures, remote errors,
``remote`` functions, ``gather`` and ``as_completed``. It imports no notebook code: how its
objects look in a notebook is registered with :mod:`.display` by ``jupyter_orch.kernel``."""

from .client import Client, connect
from .collect import FutureList, as_completed, gather
from .futures import Future, RemoteError, RemoteTraceback, TaskCancelled, TaskFailed
from .remote import RemoteFunction, remote

__all__ = [
    "Client",
    "Future",
    "FutureList",
    "RemoteError",
    "RemoteFunction",
    "RemoteTraceback",
    "TaskCancelled",
    "TaskFailed",
    "as_completed",
    "connect",
    "gather",
    "remote",
]

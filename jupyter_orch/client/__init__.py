"""The Python client (kernel or script): ``connect()``, ``Client``, futures, remote errors."""

from .client import Client, connect
from .futures import Future, RemoteError, RemoteTraceback, TaskCancelled, TaskFailed

__all__ = ["Client", "Future", "RemoteError", "RemoteTraceback", "TaskCancelled", "TaskFailed", "connect"]

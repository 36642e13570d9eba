"""Task tokens: the credentials a running task gets so that ``jupyter_orch.connect()``
works inside it (nested tasks), scoped to the task's owner and valid only while the task
runs. Stateless: ``orch_task_<task id>_<HMAC of task id and owner>`` with the server's
secret, so a thousand tasks a second cost no token rows."""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "orch_task_"


def mint(secret: bytes, task_id: str, owner: str) -> str:
    return f"{PREFIX}{task_id}_{_signature(secret, task_id, owner)}"


def task_of(token: str) -> str | None:
    """The task id a token names, or None when it is not a task token."""
    if not token.startswith(PREFIX):
        return None
    task_id, sep, sig = token[len(PREFIX) :].partition("_")
    return task_id if sep and task_id and sig else None


def verify(secret: bytes, token: str, task_id: str, owner: str) -> bool:
    return hmac.compare_digest(token, mint(secret, task_id, owner))


def _signature(secret: bytes, task_id: str, owner: str) -> str:
    digest = hmac.new(secret, f"{task_id}\0{owner}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

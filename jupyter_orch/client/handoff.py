"""The client's side of the payload hand-off (see ``jupyter_orch.engine.handoff``): when the
server offers it and this process sees the server's disk (it reads back the server's
marker), a large payload is written straight into the blob store instead of being sent."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from ..core.ids import blob_key

log = logging.getLogger("jupyter_orch.client")


def usable(offer: Any) -> dict[str, Any] | None:
    """The offer from the session hello if this process can take it up, else None."""
    if not isinstance(offer, dict):
        return None
    root, marker, token = offer.get("root"), offer.get("marker"), offer.get("token")
    if not all(isinstance(v, str) and v for v in (root, marker, token)):
        return None
    try:
        with open(os.path.join(root, marker)) as f:  # type: ignore[arg-type]
            if f.read() != token:
                return None  # a folder of the same name, but not the server's disk
    except OSError:
        return None
    if not os.access(root, os.W_OK):  # type: ignore[arg-type]
        return None
    return offer


def place(offer: dict[str, Any], task_id: str, payload: bytes) -> bool:
    """Write ``payload`` where the server keeps the task's payload; False if that fails
    (the caller then sends it over the connection as usual)."""
    path = _path(offer, task_id)
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{threading.get_ident()}-{task_id}")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)  # the server sees all of it or nothing
    except OSError as exc:
        log.debug("payload hand-off failed (%s); sending it instead", exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def discard(offer: dict[str, Any], task_id: str) -> None:
    """Remove a placed payload (its task was rejected)."""
    try:
        os.unlink(_path(offer, task_id))
    except OSError:
        pass


def _path(offer: dict[str, Any], task_id: str) -> str:
    return os.path.join(offer["root"], *blob_key("payloads", task_id).split("/"))

"""Payload hand-off on one machine: a client that shares the server's disk writes a large
payload straight into the blob store (where the engine would have written it) and submits
the task without it, so megabytes cross no WebSocket and are not copied by the server.

The server's session ``hello`` offers the hand-off (:meth:`Handoff.info`): the blob
store's folder, a marker file whose content the client must read back (proof that it sees
the same disk, not a same-named folder elsewhere), and the size from which it pays off. A
submit that says ``payload_file`` is checked here: the file must be at the task's own key,
a regular file within the size limit.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from ..core.errors import SpecError, TooLarge
from ..core.ids import blob_key
from .caches import StoredPayload
from .config import EngineConfig
from .ports import Blobs

MARKER = ".orch-handoff"


class Handoff:
    """The hand-off offer (looked at once) and the check of a payload file a client wrote."""

    def __init__(self, blobs: Blobs, config: EngineConfig) -> None:
        self.blobs = blobs
        self.config = config
        self._looked = False  # the blob store is looked at once
        self._offer: dict[str, Any] | None = None

    def info(self) -> dict[str, Any] | None:
        """What the session hello offers a client for writing payloads itself, or None
        when the blob store is not a folder on this machine."""
        if not self._looked:
            root = getattr(self.blobs, "root", None)
            self._looked = True
            if isinstance(root, str) and hasattr(self.blobs, "path"):
                token = secrets.token_hex(16)
                try:
                    with open(os.path.join(root, MARKER), "w") as f:
                        f.write(token)
                except OSError:
                    return None
                self._offer = {
                    "root": root,
                    "marker": MARKER,
                    "token": token,
                    "min_size": self.config.file_handoff_min,
                }
        return self._offer

    def stored_payload(self, task_id: str) -> StoredPayload:
        """The payload a client wrote for ``task_id``; SpecError when it is not there."""
        if not self.info():
            raise SpecError("this server takes no payload files: send the payload", field="payload_file")
        path = self.blobs.path(blob_key("payloads", task_id))  # type: ignore[attr-defined]
        try:
            st = os.stat(path)
        except OSError:
            raise SpecError(
                f"the payload file of task {task_id} is missing ({path})", field="payload_file"
            ) from None
        if not os.path.isfile(path):
            raise SpecError(f"the payload file of task {task_id} is not a file", field="payload_file")
        if st.st_size > self.config.max_payload_bytes:
            raise TooLarge(
                f"payload of {st.st_size} bytes is over the limit of {self.config.max_payload_bytes}",
                field="payload",
            )
        return StoredPayload(st.st_size)

"""Where a task's payload, result or pickled error is written: small ones into the
database with the task's changes (``db:`` keys), larger ones to the blob store through
the journal (a blob that cannot be written fails its task). A succeeded task's payload
file goes once that is stored."""

from __future__ import annotations

import asyncio
import logging

from ..core.ids import blob_key
from ..core.protocol import Buffer
from ..core.records import InsertBlob, TaskRow
from .config import EngineConfig
from .journal import Journal
from .ports import Blobs

log = logging.getLogger("jupyter_orch.engine")


class BlobFiles:
    def __init__(self, journal: Journal, blobs: Blobs, config: EngineConfig) -> None:
        self.journal = journal
        self.blobs = blobs
        self.config = config

    def key(self, kind: str, task_id: str, size: int) -> str:
        """Small blobs go into the database (``db:`` keys), larger ones to the blob store."""
        key = blob_key(kind, task_id)
        return "db:" + key if size <= self.config.inline_blob_limit else key

    def put(self, key: str, data: Buffer, task_id: str, kind: str) -> None:
        if key.startswith("db:"):
            self.journal.add(InsertBlob(key, len(data), task_id, kind, data))
        else:
            self.journal.put_blob(key, data, unit=task_id)  # a blob that cannot be written fails its task

    def drop_payload_file(self, row: TaskRow) -> None:
        """A succeeded task is never run again (retry answers 409): once that is stored,
        its payload file goes, and with it megabytes of disk and page cache per task.
        Failed and cancelled tasks keep theirs for a retry; small payloads stay in the
        database."""
        key = row.payload_key
        if key is None or key.startswith("db:"):
            return

        def drop(failed: BaseException | None) -> None:
            if failed is None:
                asyncio.get_running_loop().run_in_executor(self.journal.thread, self._delete, key)

        self.journal.after_commit(drop)

    def _delete(self, key: str) -> None:
        try:
            self.blobs.delete(key)
        except OSError as exc:
            log.warning("could not delete %s: %s", key, exc)

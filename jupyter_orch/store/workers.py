"""The store's reads of the workers known (written in the engine's batches as
``UpsertWorker``, see :mod:`.writer`)."""

from __future__ import annotations

from sqlalchemy import select

from ..core.records import WorkerRow
from .convert import worker_from_row
from .database import Database
from .models import WORKERS


class WorkerTable:
    """Reads of the workers in ``db`` (written in the engine's batches as ``UpsertWorker``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list_workers(self) -> list[WorkerRow]:
        w = WORKERS
        with self.db.connect() as conn:
            return [worker_from_row(r._mapping) for r in conn.execute(select(w).order_by(w.c.name, w.c.id))]

    def get_worker(self, worker_id: str) -> WorkerRow | None:
        w = WORKERS
        with self.db.connect() as conn:
            row = conn.execute(select(w).where(w.c.id == worker_id)).first()
        return worker_from_row(row._mapping) if row is not None else None

"""The store's reads of workflow runs and their step cache (run and cache rows are written
in the engine's batches as ``SaveRun`` and ``SaveCacheEntry``, see :mod:`.writer`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..core.records import RunRow, SaveCacheEntry
from .convert import run_from_row
from .database import Database
from .models import RUNS, STEP_CACHE


class RunTables:
    """Reads of the runs and step-cache tables of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- runs ------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRow | None:
        with self.db.connect() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
        return run_from_row(row._mapping) if row is not None else None

    def list_runs(
        self,
        *,
        owner: str | None = None,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[RunRow]:
        """Runs newest first (ids sort by creation time)."""
        r = RUNS
        query = select(r).order_by(r.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(r.c.owner == owner)
        if states:
            query = query.where(r.c.state.in_(list(states)))
        if before:
            query = query.where(r.c.id < before)
        with self.db.connect() as conn:
            return [run_from_row(m._mapping) for m in conn.execute(query)]

    def load_active_runs(self) -> list[RunRow]:
        with self.db.connect() as conn:
            rows = conn.execute(select(RUNS).where(RUNS.c.state == "running").order_by(RUNS.c.id))
            return [run_from_row(m._mapping) for m in rows]

    # --- the step cache --------------------------------------------------------------------
    def get_cache_entry(self, key: str) -> SaveCacheEntry | None:
        c = STEP_CACHE
        with self.db.connect() as conn:
            row = conn.execute(select(c).where(c.c.key == key)).first()
        if row is None:
            return None
        m = row._mapping
        return SaveCacheEntry(m["key"], m["task_id"], m["result_key"], m["result_size"], m["created_at"])

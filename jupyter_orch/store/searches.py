"""The store's reads of hyperparameter searches (their rows are written in the engine's
batches as ``SaveSearch``, see :mod:`.writer`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ..core.records import SearchRow
from .convert import search_from_row
from .database import Database
from .models import SEARCHES


class SearchTable:
    """Reads of the searches table of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_search(self, search_id: str) -> SearchRow | None:
        with self.db.connect() as conn:
            row = conn.execute(select(SEARCHES).where(SEARCHES.c.id == search_id)).first()
        return search_from_row(row._mapping) if row is not None else None

    def list_searches(
        self, *, owner: str | None = None, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[SearchRow]:
        """Searches newest first (ids sort by creation time)."""
        s = SEARCHES
        query = select(s).order_by(s.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        if states:
            query = query.where(s.c.state.in_(list(states)))
        with self.db.connect() as conn:
            return [search_from_row(m._mapping) for m in conn.execute(query)]

    def load_active_searches(self) -> list[SearchRow]:
        with self.db.connect() as conn:
            rows = conn.execute(select(SEARCHES).where(SEARCHES.c.state == "running").order_by(SEARCHES.c.id))
            return [search_from_row(m._mapping) for m in rows]

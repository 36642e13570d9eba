"""The store's cron schedules of workflows, written directly (as tokens are) rather than in
the engine's batches."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update

from ..core.ids import new_id
from ..core.records import ScheduleRow
from .convert import schedule_from_row
from .database import Database
from .models import SCHEDULES


class ScheduleTable:
    """The schedules table of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_schedule(
        self, name: str, cron: str, workflow: dict[str, Any], params: dict[str, Any], *, owner: str = ""
    ) -> ScheduleRow:
        row = ScheduleRow(
            id=new_id(),
            name=name,
            cron=cron,
            owner=owner,
            workflow=workflow,
            params=params,
            created_at=time.time(),
        )
        values = {
            "id": row.id,
            "name": row.name,
            "owner": row.owner,
            "cron": row.cron,
            "workflow": row.workflow,
            "params": row.params,
            "created_at": row.created_at,
            "last_fired_at": None,
            "last_run_id": None,
        }
        with self.db.connect(write=True) as conn, conn.begin():
            conn.execute(insert(SCHEDULES), values)
        return row

    def list_schedules(self, owner: str | None = None) -> list[ScheduleRow]:
        s = SCHEDULES
        query = select(s).order_by(s.c.created_at, s.c.id)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        with self.db.connect() as conn:
            return [schedule_from_row(m._mapping) for m in conn.execute(query)]

    def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        s = SCHEDULES
        with self.db.connect() as conn:
            m = conn.execute(select(s).where(s.c.id == schedule_id)).first()
        return schedule_from_row(m._mapping) if m is not None else None

    def delete_schedule(self, schedule_id: str) -> bool:
        with self.db.connect(write=True) as conn, conn.begin():
            result = conn.execute(delete(SCHEDULES).where(SCHEDULES.c.id == schedule_id))
        return bool(result.rowcount)

    def mark_schedule_fired(self, schedule_id: str, fired_at: float, run_id: str | None) -> None:
        s = SCHEDULES
        with self.db.connect(write=True) as conn, conn.begin():
            conn.execute(
                update(s).where(s.c.id == schedule_id).values(last_fired_at=fired_at, last_run_id=run_id)
            )

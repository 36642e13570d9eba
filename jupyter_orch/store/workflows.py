"""The store's workflow tables: runs, the step cache and schedules (conversions and reads;
run and cache rows are written in the engine's batches, see :mod:`.repository`, schedules
directly, as tokens are)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from jupyter_orch.core.ids import new_id
from jupyter_orch.core.records import RunRow, SaveCacheEntry, ScheduleRow

from .models import RUNS, SCHEDULES, STEP_CACHE


def run_to_columns(row: RunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "state": row.state,
        "params": row.params,
        "steps": row.steps,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "ended_at": row.ended_at,
        "source": row.source,
        "run_dir": row.run_dir,
        "schedule_id": row.schedule_id,
    }


def run_from_row(m: Mapping[Any, Any]) -> RunRow:
    return RunRow(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        state=m["state"],
        params=dict(m["params"] or {}),
        steps=list(m["steps"] or []),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
        source=m["source"] or "",
        run_dir=m["run_dir"] or "",
        schedule_id=m["schedule_id"],
    )


def cache_to_columns(entry: SaveCacheEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "task_id": entry.task_id,
        "result_key": entry.result_key,
        "result_size": entry.result_size,
        "created_at": entry.created_at,
    }


def schedule_from_row(m: Mapping[Any, Any]) -> ScheduleRow:
    return ScheduleRow(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        cron=m["cron"],
        workflow=dict(m["workflow"] or {}),
        params=dict(m["params"] or {}),
        created_at=m["created_at"],
        last_fired_at=m["last_fired_at"],
        last_run_id=m["last_run_id"],
    )


class WorkflowTables:
    """Reads of runs and the cache, and schedules, for :class:`~.repository.SqlStore`."""

    def _connect(self, *, write: bool = False) -> Any:  # provided by SqlStore
        raise NotImplementedError

    # --- runs ------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRow | None:
        with self._connect() as conn:
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
        with self._connect() as conn:
            return [run_from_row(m._mapping) for m in conn.execute(query)]

    def load_active_runs(self) -> list[RunRow]:
        with self._connect() as conn:
            rows = conn.execute(select(RUNS).where(RUNS.c.state == "running").order_by(RUNS.c.id))
            return [run_from_row(m._mapping) for m in rows]

    # --- the step cache --------------------------------------------------------------------
    def get_cache_entry(self, key: str) -> SaveCacheEntry | None:
        c = STEP_CACHE
        with self._connect() as conn:
            m = conn.execute(select(c).where(c.c.key == key)).first()
        if m is None:
            return None
        m = m._mapping
        return SaveCacheEntry(m["key"], m["task_id"], m["result_key"], m["result_size"], m["created_at"])

    # --- schedules -------------------------------------------------------------------------
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
        with self._connect(write=True) as conn, conn.begin():
            conn.execute(insert(SCHEDULES), values)
        return row

    def list_schedules(self, owner: str | None = None) -> list[ScheduleRow]:
        s = SCHEDULES
        query = select(s).order_by(s.c.created_at, s.c.id)
        if owner is not None:
            query = query.where(s.c.owner == owner)
        with self._connect() as conn:
            return [schedule_from_row(m._mapping) for m in conn.execute(query)]

    def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        s = SCHEDULES
        with self._connect() as conn:
            m = conn.execute(select(s).where(s.c.id == schedule_id)).first()
        return schedule_from_row(m._mapping) if m is not None else None

    def delete_schedule(self, schedule_id: str) -> bool:
        with self._connect(write=True) as conn, conn.begin():
            result = conn.execute(delete(SCHEDULES).where(SCHEDULES.c.id == schedule_id))
        return bool(result.rowcount)

    def mark_schedule_fired(self, schedule_id: str, fired_at: float, run_id: str | None) -> None:
        s = SCHEDULES
        with self._connect(write=True) as conn, conn.begin():
            conn.execute(
                update(s).where(s.c.id == schedule_id).values(last_fired_at=fired_at, last_run_id=run_id)
            )

"""Row <-> record conversion: the one place that knows both the engine's records
(:mod:`jupyter_orch.core.records`) and the column layout of :mod:`.models`.

Records become plain dicts of column values (enums as their string values, tuples as
JSON lists) and rows (any mapping of column names) become records again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.records import (
    AttemptRow,
    InsertBlob,
    RunRow,
    SaveCacheEntry,
    ScheduleRow,
    SearchRow,
    TaskRow,
    TokenRow,
    WorkerRow,
)
from ..core.spec import TaskSpec
from ..core.states import AttemptState, TaskState
from .failures import storable_text


def _kind(value: str | None) -> str | None:
    """An error kind (a worker's word) as its column holds it: storable, 64 characters."""
    return None if value is None else storable_text(value[:64])


def spec_to_json(spec: TaskSpec) -> dict[str, Any]:
    data = spec.to_dict()
    # to_dict() renders memory as e.g. "976.6Ki", which is not exact; bytes are.
    data["resources"]["memory"] = spec.resources.memory
    return data


def task_to_columns(row: TaskRow) -> dict[str, Any]:
    spec = row.spec
    return {
        "seq": row.seq,
        "name": spec.name,
        "kind": spec.kind,
        "owner": spec.owner,
        "priority": spec.priority,
        "spec": spec_to_json(spec),
        "depends": list(spec.depends),
        "created_at": row.created_at,
        **task_to_update_columns(row),
    }


def task_to_update_columns(row: TaskRow) -> dict[str, Any]:
    """The columns a change of an existing task can touch (the spec never changes, and
    serialising it again for every state change is the costliest part of an update)."""
    spec = row.spec
    return {
        "id": spec.id,
        "state": TaskState(row.state).value,
        "attempt": row.attempt,
        "worker_id": row.worker_id,
        "gpus": list(row.gpus),
        "payload_key": row.payload_key,
        "payload_size": row.payload_size,
        "result_key": row.result_key,
        "result_size": row.result_size,
        "error": storable_text(row.error),  # what a worker or exception said: any text
        "error_kind": _kind(row.error_kind),
        "traceback": storable_text(row.traceback),
        "reason": storable_text(row.reason),
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "retry_at": row.retry_at,
    }


def task_from_row(m: Mapping[Any, Any]) -> TaskRow:
    return TaskRow(
        spec=TaskSpec.from_dict(m["spec"], owner=m["owner"], stored=True),
        state=TaskState(m["state"]),
        seq=m["seq"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        attempt=m["attempt"],
        worker_id=m["worker_id"],
        gpus=tuple(m["gpus"] or ()),
        payload_key=m["payload_key"],
        payload_size=m["payload_size"],
        result_key=m["result_key"],
        result_size=m["result_size"],
        error=m["error"],
        error_kind=m["error_kind"],
        traceback=m["traceback"],
        reason=m["reason"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        retry_at=m["retry_at"],
    )


def attempt_to_columns(row: AttemptRow) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "number": row.number,
        "state": AttemptState(row.state).value,
        "worker_id": row.worker_id,
        "gpus": list(row.gpus),
        "scheduled_at": row.scheduled_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "exit_code": row.exit_code,
        "error": storable_text(row.error),
        "error_kind": _kind(row.error_kind),
    }


def attempt_from_row(m: Mapping[Any, Any]) -> AttemptRow:
    return AttemptRow(
        task_id=m["task_id"],
        number=m["number"],
        state=AttemptState(m["state"]),
        worker_id=m["worker_id"],
        gpus=tuple(m["gpus"] or ()),
        scheduled_at=m["scheduled_at"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        exit_code=m["exit_code"],
        error=m["error"],
        error_kind=m["error_kind"],
    )


def worker_to_columns(row: WorkerRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "provider": row.provider,
        "token_id": row.token_id,
        "hostname": row.hostname,
        "state": row.state,
        "info": dict(row.info),
        "connected_at": row.connected_at,
        "last_seen": row.last_seen,
    }


def worker_from_row(m: Mapping[Any, Any]) -> WorkerRow:
    return WorkerRow(
        id=m["id"],
        name=m["name"],
        provider=m["provider"],
        token_id=m["token_id"],
        hostname=m["hostname"],
        state=m["state"],
        info=dict(m["info"] or {}),
        connected_at=m["connected_at"],
        last_seen=m["last_seen"],
    )


def token_from_row(m: Mapping[Any, Any]) -> TokenRow:
    return TokenRow(
        id=m["id"],
        name=m["name"],
        scope=m["scope"],
        owner=m["owner"],
        provider=m["provider"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        group=m.get("group_name") or "",
    )


def blob_to_columns(change: InsertBlob, now: float) -> dict[str, Any]:
    return {
        "key": change.key,
        "size": change.size,
        "task_id": change.task_id,
        "kind": change.kind,
        "created_at": now,
        "data": change.data,
    }


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


def search_to_columns(row: SearchRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "state": row.state,
        "request": row.request,
        "search_state": row.search_state,
        "payload_key": row.payload_key,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "ended_at": row.ended_at,
    }


def search_from_row(m: Mapping[Any, Any]) -> SearchRow:
    return SearchRow(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        state=m["state"],
        request=dict(m["request"] or {}),
        search_state=dict(m["search_state"] or {}),
        payload_key=m["payload_key"] or "",
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
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

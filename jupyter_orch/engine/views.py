"""How tasks and attempts look from the outside (REST, events, CLI): plain dicts."""

from __future__ import annotations

from typing import Any

from ..core.records import AttemptRow, RunRow, TaskRow


def task_view(row: TaskRow) -> dict[str, Any]:
    spec = row.spec
    end = row.ended_at
    duration = (end - row.started_at) if (end and row.started_at) else None
    return {
        "id": spec.id,
        "seq": row.seq,  # submit order: ?before=SEQ pages the task list
        "name": spec.display_name,
        "kind": spec.kind,
        "owner": spec.owner,
        "state": row.state.value,
        "priority": spec.priority,
        "preemptible": spec.preemptible,
        "resources": spec.resources.to_dict(),
        "image": spec.image,
        "retries": spec.retry.retries,
        "timeout": spec.timeout,
        "command": spec.command,
        "depends": list(spec.depends),
        "metadata": dict(spec.metadata),
        "attempt": row.attempt,
        "worker_id": row.worker_id,
        "gpus": list(row.gpus),
        "reason": row.reason,
        "error": row.error,
        "error_kind": row.error_kind,
        "traceback": row.traceback,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "duration": duration,
        "retry_at": row.retry_at,
        "payload_size": row.payload_size,
        "result_size": row.result_size,
        "has_result": row.result_key is not None,
        # the executed notebook of a notebook task (failed runs keep theirs too)
        "notebook_url": f"tasks/{spec.id}/notebook" if spec.kind == "notebook" and row.result_key else None,
    }


def outcome_view(row: TaskRow) -> dict[str, Any]:
    """The part of a finished task a client's future needs (sent for every task it ends)."""
    return {
        "id": row.spec.id,
        "name": row.spec.display_name,
        "state": row.state.value,
        "attempt": row.attempt,
        "error": row.error,
        "error_kind": row.error_kind,
        "traceback": row.traceback,
        "has_result": row.result_key is not None,
        "kind": row.spec.kind,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
    }


def attempt_view(row: AttemptRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "state": row.state.value,
        "worker_id": row.worker_id,
        "gpus": list(row.gpus),
        "scheduled_at": row.scheduled_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "exit_code": row.exit_code,
        "error": row.error,
        "error_kind": row.error_kind,
    }


def run_view(run: RunRow) -> dict[str, Any]:
    """A workflow run without its steps' states (events, lists)."""
    end = run.ended_at
    return {
        "id": run.id,
        "name": run.name,
        "owner": run.owner,
        "state": run.state,
        "params": dict(run.params),
        "source": run.source,
        "run_dir": run.run_dir,
        "schedule_id": run.schedule_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "ended_at": end,
        "duration": (end - run.created_at) if end else None,
        "step_count": len(run.steps),
    }


def step_view(step: dict[str, Any], row: TaskRow | None) -> dict[str, Any]:
    """One step of a run with its task's state (None: the task is not stored)."""
    view = {k: step.get(k) for k in ("name", "base", "kind", "target", "task_id", "depends", "cache")}
    view["search"] = bool(step.get("search"))  # a search step: its task waits for its search
    view["search_id"] = step.get("search_id")
    if row is None:
        return {**view, "state": "unknown", "cached": False}
    end = row.ended_at
    reason = row.reason
    return {
        **view,
        "state": row.state.value,
        "cached": bool(reason and reason.startswith("cached:")),
        "reason": reason,
        "error": row.error,
        "error_kind": row.error_kind,
        "attempt": row.attempt,
        "worker_id": row.worker_id,
        "started_at": row.started_at,
        "ended_at": end,
        "duration": (end - row.started_at) if (end and row.started_at) else None,
        "notebook_url": task_view(row)["notebook_url"],
    }

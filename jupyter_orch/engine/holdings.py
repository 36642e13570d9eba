"""Who holds what now, against their limits: the admin view's read of the engine's state.

Per user and per group: tasks placed on workers (scheduled or running: what the ``running``
quota counts), GPUs held (by model, and by each type a quota names), CPUs, tasks waiting
(what the ``queued`` quota counts), weight, recent use, and the quota in force (the
configuration's, with the hub's group properties over it). Counted as the scheduler
(:mod:`.dispatch`) and the submit check (:mod:`.submission`) count them, so what an admin
reads is what holds tasks back. A read of memory only: no I/O, no change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.fairshare import Held, Holdings, Quota, Shares
from ..core.states import TaskState
from .state import EngineState


def current_holdings(state: EngineState) -> Holdings:
    """What each user and group holds on the workers now (tasks placed, their GPUs and CPUs)."""
    holdings = Holdings()
    for worker in state.workers.values():
        models = {g.index: g.model or "" for g in worker.gpus}
        for slot in worker.running.values():
            row = state.tasks.get(slot.task_id)
            if row is not None:
                gpus = [models.get(i, "") for i in slot.gpus]
                holdings.add(row.owner, state.groups_of(row.owner), slot.resources.cpus, gpus)
    return holdings


def waiting_per_user(state: EngineState) -> dict[str, int]:
    """Tasks waiting (pending: queued, or waiting on dependencies or a retry), per owner."""
    waiting: Counter[str] = Counter()
    for row in state.tasks.values():
        if row.state == TaskState.PENDING:
            waiting[row.owner] += 1
    return dict(waiting)


def quota_view(quota: Quota | None) -> dict[str, Any]:
    """A quota as JSON: null where there is no limit."""
    if quota is None:
        return {"gpus": None, "gpu_types": {}, "running": None, "queued": None}
    return {
        "gpus": quota.gpus,
        "gpu_types": dict(sorted(quota.gpu_types.items())),
        "running": quota.running,
        "queued": quota.queued,
    }


def _use(held: Held | None, queued: int, quota: Quota | None) -> dict[str, Any]:
    held = held or Held()
    models = Counter(m or "GPU" for m in held.models)
    return {
        "running": held.tasks,
        "queued": queued,
        "gpus": held.gpus,
        "gpu_models": dict(sorted(models.items())),
        "gpu_types": {t: held.of_type(t) for t in sorted(quota.gpu_types)} if quota else {},
        "cpus": held.cpus,
        "limits": quota_view(quota),
    }


def holdings_view(state: EngineState, now: float) -> dict[str, Any]:
    """Every user with work (placed or waiting) and every group with a member who has work
    or with a quota of its own: what they hold now and their limits."""
    shares: Shares | None = state.config.shares
    holdings = current_holdings(state)
    waiting = waiting_per_user(state)
    users: list[dict[str, Any]] = []
    for owner in sorted(set(holdings.users) | set(waiting)):
        member_of = state.groups_of(owner)
        quota = shares.users.get(owner, shares.default) if shares else None
        users.append(
            {
                "user": owner,
                "groups": sorted(member_of),
                **_use(holdings.users.get(owner), waiting.get(owner, 0), quota),
                "weight": shares.weight(owner, member_of) if shares else 1.0,
                "recent_gpu_hours": state.usage.of(owner, now)[0] / 3600,
            }
        )
    names = set(holdings.groups) | {g for u in users for g in u["groups"]}
    names |= set(shares.groups) if shares else set()
    groups: list[dict[str, Any]] = []
    for name in sorted(names):
        members = sorted(u for u, g in state.user_groups.items() if name in g)
        quota = shares.groups.get(name) if shares else None
        groups.append(
            {
                "group": name,
                "members": members,
                **_use(holdings.groups.get(name), sum(waiting.get(u, 0) for u in members), quota),
                "weight": shares.group_weights.get(name, 1.0) if shares else 1.0,
            }
        )
    connected = [w for w in state.workers.values() if w.state == "connected"]
    return {
        "at": now,
        "fair_share": shares is not None,
        "capacity": {
            "workers": len(connected),
            "gpus": sum(len(w.gpus) for w in connected),
            "slots": sum(w.slots for w in connected),
        },
        "totals": {
            "running": sum(h.tasks for h in holdings.users.values()),
            "queued": sum(waiting.values()),
            "gpus": sum(h.gpus for h in holdings.users.values()),
        },
        "users": users,
        "groups": groups,
    }

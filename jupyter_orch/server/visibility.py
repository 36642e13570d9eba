"""What a caller may see of the things shared between users: workers and tokens.

A shared worker (the service's) is seen by everyone, but the ids of other users' tasks on
it are left out (its slots and GPUs show as busy, not by whom). A group's worker is seen
by the group's members, the same way. Another user's own worker is not seen at all, nor
another group's, nor another user's tokens. Someone with the right to read everything
(see :mod:`jupyter_orch.core.access`) sees it all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.access import Identity
from ..core.records import TokenRow


def worker_view(
    view: dict[str, Any], identity: Identity, task_owner: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """``view`` (a worker's) as ``identity`` may see it; None: not at all."""
    if identity.reads_all:
        return view
    owner, group = view.get("owner"), view.get("group")
    if (owner is not None and owner != identity.name) or (group is not None and group not in identity.groups):
        return None

    def mine(task_id: str | None) -> bool:
        return task_id is not None and task_owner(task_id) == identity.name

    return {
        **view,
        "running": [t for t in view.get("running") or () if mine(t)],
        "gpus": [
            {
                **g,
                "task_id": g.get("task_id") if mine(g.get("task_id")) else None,
                "busy": g.get("task_id") is not None,
            }
            for g in view.get("gpus") or ()
        ],
    }


def worker_views(
    views: list[dict[str, Any]], identity: Identity, task_owner: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    return [v for view in views if (v := worker_view(view, identity, task_owner)) is not None]


def token_visible(token: TokenRow, identity: Identity) -> bool:
    """A user sees (and may revoke) the tokens they issued; an admin, every token."""
    return identity.is_admin or (token.owner == identity.name and token.provider == "static")

"""``GET /tasks/{id}/checkpoints``: the checkpoints a task saved (through
``jupyter_orch.checkpoint.save``), read from their manifests where the server told the task
to keep them (``checkpoint_root``, or a workflow step's run directory)."""

from __future__ import annotations

import asyncio

from ..checkpoint import list_checkpoints
from ..core.checkpoints import task_dir
from ..core.errors import Unavailable
from .base import OrchAPIHandler


class CheckpointsHandler(OrchAPIHandler):
    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        row = await engine.get_row(task_id, self.identity.read_filter())
        root = engine.config.checkpoint_root
        if not root:
            self.write_json({"task_id": task_id, "url": None, "checkpoints": []})
            return
        spec = row.spec
        where = task_dir(root, spec.id, spec.env, step=isinstance(spec.metadata.get("step"), dict))
        try:  # a remote store (s3://...) may be slow or down: off the event loop
            found = await asyncio.to_thread(list_checkpoints, where)
        except (OSError, ImportError, ValueError) as exc:
            raise Unavailable(f"cannot read the checkpoints at {where}: {exc}") from None
        self.write_json({"task_id": task_id, "url": where, "checkpoints": [c.to_dict() for c in found]})

"""REST handlers for tasks: submit (the body read by :mod:`.submissions`), list, get,
cancel, retry, wait, result, logs, metrics (the query read by :mod:`.metricquery`), and a
notebook task's notebook and outputs."""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.errors import Conflict, NotFound, SpecError
from ..core.states import TaskState
from ..engine.views import task_view
from .base import OrchAPIHandler
from .metricquery import metric_query
from .submissions import is_batch, parse_submission  # parse_submission: still importable here


class TasksHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        states = [s for s in self.get_query_arguments("state") for s in s.split(",") if s]
        valid = {s.value for s in TaskState}
        for s in states:
            if s not in valid:
                raise SpecError(f"unknown state {s!r}; known: {', '.join(sorted(valid))}", field="state")
        tasks = await engine.list_tasks(
            owner=self.identity.listed_owner(self.get_query_argument("owner", None)),
            states=states or None,
            search=self.get_query_argument("q", None) or None,
            limit=self.int_arg("limit", 100, 1, 1000),
            before_seq=self.int_arg("before", None, 0),
        )
        self.write_json({"tasks": tasks})

    async def post(self) -> None:
        engine = await self.engine()
        body = self.json_body()
        specs, payloads = parse_submission(body, self.owner)
        rows = await engine.submit(specs, payloads)
        views = [task_view(r) for r in rows]
        self.write_json({"tasks": views} if is_batch(body) else views[0], status=201)


class TaskHandler(OrchAPIHandler):
    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.describe(task_id, self.identity.read_filter()))


class CancelHandler(OrchAPIHandler):
    async def post(self, task_id: str) -> None:
        engine = await self.engine()
        row = await engine.cancel(task_id, self.identity.change_filter())
        self.write_json(task_view(row))


class RetryHandler(OrchAPIHandler):
    async def post(self, task_id: str) -> None:
        engine = await self.engine()
        row = await engine.retry(task_id, self.identity.change_filter())
        self.write_json(task_view(row))


class WaitHandler(OrchAPIHandler):
    """Long poll: answers when the task ends or after ``timeout`` seconds."""

    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        timeout = self.float_arg("timeout", 30.0)
        row = await engine.wait(task_id, timeout, self.identity.read_filter())
        self.write_json(task_view(row))


RESULT_CHUNK = 4 << 20


class ResultHandler(OrchAPIHandler):
    """The pickled return value (``X-Orch-Result: value``) or, for a failed task, the pickled
    exception (``X-Orch-Result: error``). 409 while the task has not finished."""

    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        timeout = self.float_arg("wait", 0.0)
        row = await engine.get_row(task_id, self.identity.read_filter())
        if timeout and not engine.ended(row):
            row = await engine.wait(task_id, timeout, self.identity.read_filter())
        if not engine.ended(row):  # a result still being written counts as not there yet
            raise Conflict(f"task {task_id} is {row.state.value}; it has no result yet")
        if row.result_key is None:
            raise Conflict(
                f"task {task_id} {row.state.value} without a result" + (f": {row.error}" if row.error else "")
            )
        data = await engine.result_bytes(row)
        self.set_header("X-Orch-Result", "value" if row.state == TaskState.SUCCEEDED else "error")
        self.set_header("X-Orch-State", row.state.value)
        self.set_header("Content-Type", "application/octet-stream")  # sent with the first piece
        view = memoryview(data)
        self.set_header("Content-Length", str(view.nbytes))
        for start in range(0, view.nbytes, RESULT_CHUNK):  # large results stream out in pieces
            self.write(bytes(view[start : start + RESULT_CHUNK]))
            if view.nbytes > RESULT_CHUNK:
                await self.flush()
        self.finish(set_content_type="application/octet-stream")  # APIHandler would say JSON


class LogsHandler(OrchAPIHandler):
    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        row = await engine.get_row(task_id, self.identity.read_filter())
        attempt = self.int_arg("attempt", None, 1)
        if attempt is not None and attempt > row.attempt:  # no such attempt (yet): not a bad request
            raise NotFound(f"task {task_id} has {row.attempt} attempt(s), not {attempt}", field="attempt")
        lines, next_offset, number = await engine.read_logs(
            row, attempt, self.int_arg("offset", 0, 0) or 0, self.int_arg("limit", None, 1)
        )
        self.write_json(
            {
                "task_id": task_id,
                "attempt": number,
                "state": row.state.value,
                "lines": lines,
                "next_offset": next_offset,
            }
        )


class MetricsHandler(OrchAPIHandler):
    """What the task reported with ``jupyter_orch.report``: series (downsampled) or records."""

    async def get(self, task_id: str) -> None:
        engine = await self.engine()
        query = metric_query(self)
        row = await engine.get_row(task_id, self.identity.read_filter())
        if query.attempt is not None and query.attempt > row.attempt:
            raise NotFound(
                f"task {task_id} has {row.attempt} attempt(s), not {query.attempt}", field="attempt"
            )
        self.write_json(await engine.metric_reads.answer(row, query))


class NotebookHandler(OrchAPIHandler):
    """The executed notebook of a notebook task (``?download=1``: as a file to save)."""

    async def get(self, task_id: str) -> None:
        result = await _notebook_result(self, task_id)
        if self.get_query_argument("download", ""):
            name = os.path.basename(str(result.get("name") or task_id)).removesuffix(".ipynb")
            self.set_header("Content-Disposition", f'attachment; filename="{name}-{task_id}.ipynb"')
        self.finish(json.dumps(result["notebook"]), set_content_type="application/x-ipynb+json")


class OutputsHandler(OrchAPIHandler):
    """What a notebook task recorded with ``jupyter_orch.output(name, value)``."""

    async def get(self, task_id: str) -> None:
        result = await _notebook_result(self, task_id)
        self.write_json({"outputs": result.get("outputs") or {}})


async def _notebook_result(handler: OrchAPIHandler, task_id: str) -> dict[str, Any]:
    engine = await handler.engine()
    return await engine.notebook_result(task_id, handler.identity.read_filter())

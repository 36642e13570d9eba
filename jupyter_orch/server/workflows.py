"""REST handlers for workflow runs: submit, list, get (the DAG with states), cancel, retry,
and the run directory's files."""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import posixpath
from typing import Any

from ..core.errors import NotFound, SpecError
from ..core.ids import is_valid_id
from ..core.runs import RUN_STATES
from ..workflows.submission import plan_request
from .base import OrchAPIHandler
from .submissions import check_run_request  # check_run_request: still importable here


class WorkflowsHandler(OrchAPIHandler):
    async def get(self) -> None:
        engine = await self.engine()
        states = [s for s in self.get_query_arguments("state") for s in s.split(",") if s]
        for s in states:
            if s not in RUN_STATES:
                raise SpecError(f"unknown run state {s!r}; known: {', '.join(RUN_STATES)}", field="state")
        before = self.get_query_argument("before", None)
        if before is not None and not is_valid_id(before):
            raise SpecError("query parameter before must be a run id (26 characters)", field="before")
        runs = await engine.list_runs(
            owner=self.identity.listed_owner(self.get_query_argument("owner", None)),
            states=states or None,
            limit=self.int_arg("limit", 100, 1, 1000) or 100,
            before=before,
        )
        self.write_json({"runs": runs})

    async def post(self) -> None:
        engine = await self.engine()
        body = check_run_request(self.json_body(), shared=self.orch.owner_from == "identity")
        # checking and planning a large file takes seconds: not on the loop workers talk to
        plan = await asyncio.get_running_loop().run_in_executor(
            None, lambda: plan_request(body, owner=self.owner, prepare_dir=self.orch.run_files.prepare)
        )
        run = await engine.submit_run(plan)
        self.write_json(await engine.describe_run(run.id, self.owner), status=201)


class WorkflowHandler(OrchAPIHandler):
    async def get(self, run_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.describe_run(run_id, self.identity.read_filter()))


class WorkflowWaitHandler(OrchAPIHandler):
    """Long poll: answers (the run with its steps) when the run ends or after ``timeout``."""

    async def get(self, run_id: str) -> None:
        engine = await self.engine()
        await engine.wait_run(run_id, self.float_arg("timeout", 30.0), self.identity.read_filter())
        self.write_json(await engine.describe_run(run_id, self.identity.read_filter()))


class WorkflowCancelHandler(OrchAPIHandler):
    async def post(self, run_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.cancel_run(run_id, self.identity.change_filter()))


class WorkflowRetryHandler(OrchAPIHandler):
    async def post(self, run_id: str) -> None:
        engine = await self.engine()
        self.write_json(await engine.retry_run(run_id, self.identity.change_filter()))


class WorkflowFilesHandler(OrchAPIHandler):
    """The files in the run's directory (``ORCH_RUN_DIR``)."""

    async def get(self, run_id: str) -> None:
        engine = await self.engine()
        run = await engine.get_run(run_id, self.identity.read_filter())
        files = await self._in_thread(self.orch.run_files.list, run.id)
        self.write_json({"run_id": run.id, "run_dir": run.run_dir, "files": files})

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


class WorkflowFileHandler(WorkflowFilesHandler):
    async def get(self, run_id: str, path: str) -> None:  # type: ignore[override]
        engine = await self.engine()
        run = await engine.get_run(run_id, self.identity.read_filter())
        try:
            data = await self._in_thread(self.orch.run_files.read, run.id, path)
        except (NotADirectoryError, PermissionError):
            raise NotFound(f"run {run.id} has no file {path}") from None
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise SpecError(f"{path[:80]}... is too long a file name", field="path") from None
        kind, _ = mimetypes.guess_type(path)
        if self.get_query_argument("download", ""):
            name = posixpath.basename(path).replace('"', "")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        # served as what it is, but never rendered as a page of this origin
        self.set_header("Content-Type", kind or "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")
        self.finish(data)

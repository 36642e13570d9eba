"""The workflow commands of ``jupyter orch``: ``run`` a workflow file (and watch its steps),
list ``runs``, a run's DAG for ``status``, cancel and retry a run, and ``schedule`` a file on
a cron expression. Thin wrappers over the REST API; a file is checked here first (every
problem with its line and column, nothing sent when there is one)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..client.http import HttpApi
from ..core.errors import NotFound, OrchError
from . import render
from .commands import api_from, emit

RUN_EXIT = {"succeeded": 0, "failed": 1, "cancelled": 130}
RUNNING_DETAILS = 20  # running runs in `runs` whose steps are counted (one request each)


def parse_params(items: list[str], command: str) -> dict[str, Any]:
    """``-p name=value`` options: each value read as YAML (0.1, 3, true, [1, 2], text); the
    server types it as the param is declared (and refuses a wrong one, naming it)."""
    from ..client.notebooks import param_value

    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"jupyter orch {command}: -p takes NAME=VALUE, not {item!r}")
        params[key] = param_value(text)
    return params


def request_of(path: str, params: dict[str, Any], command: str) -> dict[str, Any]:
    """The run request for the file at ``path`` (``WorkflowFileInvalid`` lists its problems)."""
    from ..workflows.bundle import bundle

    try:
        return bundle(path, params)
    except OSError as exc:
        raise SystemExit(f"jupyter orch {command}: cannot read {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------- run and watch
def cmd_run(args: argparse.Namespace) -> int:
    body = request_of(args.file, parse_params(args.param, "run"), "run")
    api = api_from(args)
    if not args.wait:
        run = api.post("/workflows", body)
        print(json.dumps(run, indent=2) if args.json else run["id"])
        return 0
    ws = _subscribe(api)  # before the run exists: every change of its steps comes, in order
    try:
        run = api.post("/workflows", body)
        if not args.json:
            print(f"started run {run['id']} ({run['name']}): {len(run['steps'])} steps", file=sys.stderr)
        final = watch(api, ws, run, quiet=args.json, live=sys.stdout.isatty() and not args.json)
    finally:
        ws.close()
    if args.json:
        print(json.dumps(final, indent=2))
    return run_exit_status(final)


def run_exit_status(run: dict[str, Any]) -> int:
    for s in run["steps"]:
        if s["state"] in ("failed", "upstream_failed") and s.get("error"):
            print(f"step {s['name']} {s['state']}: {s['error']}", file=sys.stderr)
    if run["state"] != "succeeded":
        print(f"run {run['id']} ({run['name']}) {run['state']}", file=sys.stderr)
    return RUN_EXIT.get(run["state"], 1)


class _Steps:
    """The steps as last seen; rendered as a table each time a live display refreshes."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = {s["task_id"]: dict(s) for s in steps}

    def __rich__(self) -> Any:
        return render.steps_table(list(self.steps.values()))


def _subscribe(api: HttpApi) -> Any:
    ws = api.websocket("/events?types=task,run")  # no server: one clear line, not a traceback
    ws.recv()  # hello: subscribed
    return ws


def watch(
    api: HttpApi, ws: Any, run: dict[str, Any], *, quiet: bool = False, live: bool = False
) -> dict[str, Any]:
    """Follow a run just submitted (``ws`` subscribed to task and run events before it was)
    until it ends: a live table on a terminal, else one line per step state change. Returns
    the run as it ended."""
    unstarted = {"state": "pending", "attempt": 0, "reason": None, "error": None, "duration": None}
    view = _Steps([{**s, **unstarted, "cached": False} for s in run["steps"]])
    printed: dict[str, tuple[str, int]] = {}

    def lines() -> None:
        for s in view.steps.values():
            key = (s["state"], s.get("attempt") or 0)
            if printed.get(s["task_id"]) != key:
                printed[s["task_id"]] = key
                render.console().print(render.step_line(s), soft_wrap=True)

    show: Callable[[], None] = (lambda: None) if quiet or live else lines
    if live:
        from rich.live import Live

        with Live(view, console=render.console(), refresh_per_second=4):
            final = _follow_until_end(api, ws, run["id"], view, show)
    else:
        final = _follow_until_end(api, ws, run["id"], view, show)
    view.steps = {s["task_id"]: s for s in final["steps"]}
    show()  # what no event said before the run's end (a cancelled step that never ran, say)
    return final


def _follow_until_end(
    api: HttpApi, ws: Any, run_id: str, view: _Steps, show: Callable[[], None]
) -> dict[str, Any]:
    show()
    again = None
    try:
        while not _follow(again or ws, run_id, view, show):  # dropped for falling behind:
            if again is not None:  # subscribe again, re-read, go on
                again.close()
            again = _subscribe(api)
            fresh = api.get(f"/workflows/{run_id}")
            view.steps = {s["task_id"]: s for s in fresh["steps"]}
            show()
            if fresh["state"] != "running":
                break
    finally:
        if again is not None:
            again.close()
    return dict(api.get(f"/workflows/{run_id}"))


def _follow(ws: Any, run_id: str, view: _Steps, show: Callable[[], None]) -> bool:
    """Apply events until the run ends (True) or the server drops the stream (False)."""
    while True:
        raw = ws.recv()
        if not raw:
            raise OrchError("the server closed the events stream")
        msg = json.loads(raw)
        if msg["type"] == "task":
            task = msg["task"]
            step = view.steps.get(task["id"])
            if step is None:
                continue
            for key in ("state", "attempt", "reason", "error", "started_at", "ended_at", "duration"):
                step[key] = task.get(key)
            step["cached"] = bool(task.get("reason") and task["reason"].startswith("cached:"))
            show()
        elif msg["type"] == "run" and msg["run"]["id"] == run_id and msg["run"]["state"] != "running":
            return True
        elif msg["type"] == "overflow":
            return False


# ---------------------------------------------------------------------- runs, status, actions
def cmd_runs(args: argparse.Namespace) -> int:
    api = api_from(args)
    runs = api.get("/workflows", state=args.state, limit=args.limit)["runs"]
    for r in [r for r in runs if r["state"] == "running"][:RUNNING_DETAILS]:
        steps = api.get(f"/workflows/{r['id']}")["steps"]
        r["steps_done"] = sum(1 for s in steps if s["state"] in ("succeeded", "failed", "cancelled"))
    emit(args, runs, render.runs_table(runs) if runs else "no workflow runs yet")
    return 0


def find_run(api: HttpApi, run_id: str) -> dict[str, Any] | None:
    """The workflow run with this id, or None when it is no run (a task's id, say)."""
    try:
        return dict(api.get(f"/workflows/{run_id}"))
    except NotFound:
        return None


def run_action(api: HttpApi, run_id: str, action: str) -> dict[str, Any] | None:
    """``POST /workflows/{id}/cancel|retry``, or None when the id is no run's."""
    try:
        return dict(api.post(f"/workflows/{run_id}/{action}"))
    except NotFound as exc:
        if "no workflow run" in exc.message or exc.message in ("Not Found", "HTTP 404"):
            return None
        raise


# ---------------------------------------------------------------------- schedules
def cmd_schedule(args: argparse.Namespace) -> int:
    api = api_from(args)
    if args.action == "add":
        body = request_of(args.file, parse_params(args.param, "schedule add"), "schedule add")
        body["cron"] = args.cron
        if args.name:
            body["name"] = args.name
        made = api.post("/workflows/schedules", body)
        emit(
            args,
            made,
            f"schedule {made['id']} ({made['name']}): {made['cron']}, next run {render.when(made['next_at'])}",
        )
    elif args.action == "list":
        schedules = api.get("/workflows/schedules")["schedules"]
        emit(args, schedules, render.schedules_table(schedules) if schedules else "no schedules")
    else:
        gone = api.delete(f"/workflows/schedules/{args.id}")
        emit(args, gone, f"removed schedule {gone['id']} ({gone['name']})")
    return 0

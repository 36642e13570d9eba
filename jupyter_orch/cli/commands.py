"""The task and worker commands of ``jupyter orch``: thin wrappers over the REST API (the
workflow ones are in :mod:`.workflows`; ``status``, ``cancel`` and ``retry`` take a run's id
too)."""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import sys
from typing import Any

from ..client.http import HttpApi
from ..client.logstream import plain_text
from ..core.errors import OrchError
from ..core.ids import new_id
from ..core.resources import parse_labels
from ..core.spec import TaskSpec
from ..discovery import NoServer, locate
from ..serialization import call_by_reference, dumps_call, environment, loads_value
from . import render

EXIT_STATUS = {"succeeded": 0, "failed": 1, "upstream_failed": 1, "cancelled": 130}


def api_from(args: argparse.Namespace) -> HttpApi:
    try:
        found = locate(args.url, args.token)
    except NoServer as exc:
        raise SystemExit(f"jupyter orch {args.command}: {exc}") from None
    return HttpApi(found.url, found.token, origin=found.source)


def emit(args: argparse.Namespace, data: Any, human: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        render.console().print(human)


def _arg_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_submission(args: argparse.Namespace) -> dict[str, Any]:
    body = task_body(args)
    if args.shell:
        # one argument is a command line as typed; several are an argv, quoted as such
        command = args.shell[0] if len(args.shell) == 1 else shlex.join(args.shell)
        body.update(kind="shell", command=command)
    else:
        target = args.target
        if not target or ":" not in target:
            raise SystemExit("jupyter orch submit: give module:function [ARGS...] or -- SHELL COMMAND")
        payload, _ = dumps_call(call_by_reference, (target, *(_arg_value(a) for a in args.args)))
        body.update(
            kind="function",
            name=args.name or target,
            payload=base64.b64encode(payload).decode(),
            metadata={"function": target, "client_env": environment()},
        )
    return checked(body)


def checked(body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if v is not None}
    TaskSpec.from_dict({k: v for k, v in body.items() if k != "payload"})  # names the bad field, if any
    return body


def task_body(args: argparse.Namespace) -> dict[str, Any]:
    """The fields every kind of task takes from the command line's options."""
    resources: dict[str, Any] = {"cpus": args.cpus, "gpus": args.gpus}
    if args.memory:
        resources["memory"] = args.memory
    if args.gpu_type:
        resources["gpu_type"] = args.gpu_type
    if args.label:
        resources["labels"] = parse_labels(args.label, "--label")
    body: dict[str, Any] = {
        "id": new_id(),
        "resources": resources,
        "priority": args.priority,
        "preemptible": bool(getattr(args, "preemptible", False)),
        "retries": args.retries,
        "name": args.name,
        "image": args.image,
        "timeout": args.timeout,
    }
    if args.env:
        body["env"] = dict(e.split("=", 1) for e in args.env)
    return body


def cmd_submit(args: argparse.Namespace) -> int:
    api = api_from(args)
    task = api.post("/tasks", build_submission(args))
    if not args.wait:
        if args.json:
            print(json.dumps(task, indent=2))
        else:
            print(task["id"])
        return 0
    if not args.json:
        print(f"submitted {task['id']} ({task['name']})", file=sys.stderr)
    final = follow(api, task["id"], quiet=args.json)
    if args.json:
        print(json.dumps(final, indent=2))
    elif final["state"] == "succeeded" and final.get("has_result"):
        data, _ = api.request("GET", f"/tasks/{task['id']}/result", raw=True)
        print(repr(loads_value(data)))  # the user asked for this task's value
    return exit_status(api, final)


def cmd_submit_notebook(args: argparse.Namespace) -> int:
    import os

    from ..client import notebooks

    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"jupyter orch submit-notebook: -p takes NAME=VALUE, not {item!r}")
        params[key] = notebooks.param_value(text)
    body = task_body(args)
    body.update(
        kind="notebook",
        name=args.name or os.path.basename(args.path),
        payload=base64.b64encode(notebooks.payload(args.path, params, args.kernel)).decode(),
        metadata={"notebook": os.path.abspath(args.path), "parameters": params},
    )
    body = checked(body)
    api = api_from(args)
    task = api.post("/tasks", body)
    if not args.wait:
        print(json.dumps(task, indent=2) if args.json else task["id"])
        return 0
    if not args.json:
        print(f"submitted {task['id']} ({task['name']})", file=sys.stderr)
    final = follow(api, task["id"], quiet=args.json)
    if final.get("notebook_url") and args.output:
        data, _ = api.request("GET", f"/tasks/{task['id']}/notebook", raw=True)
        with open(args.output, "wb") as f:
            f.write(data)
        print(f"executed notebook: {args.output}", file=sys.stderr)
    if final["state"] == "succeeded":
        outputs = api.get(f"/tasks/{task['id']}/outputs")["outputs"]
        print(json.dumps(final if args.json else outputs, indent=2 if args.json else None))
    return exit_status(api, final)


def exit_status(api: HttpApi, task: dict[str, Any]) -> int:
    status = EXIT_STATUS.get(task["state"], 1)
    if task["state"] == "failed":
        print(f"task {task['id']} failed: {task.get('error')}", file=sys.stderr)
        if task.get("traceback"):
            print(task["traceback"].rstrip(), file=sys.stderr)
        detail = api.get(f"/tasks/{task['id']}")
        attempts = detail.get("attempts") or []
        code = attempts[-1].get("exit_code") if attempts else None
        if task.get("kind") == "shell" and isinstance(code, int) and 0 < code < 256:
            status = code
    elif task["state"] != "succeeded":
        print(f"task {task['id']} {task['state']}: {task.get('error') or ''}", file=sys.stderr)
    return status


def follow(api: HttpApi, task_id: str, attempt: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Print the task's log as it grows; return the task once it has ended."""
    ws = api.websocket(
        f"/tasks/{task_id}/logs/follow" + (f"?attempt={attempt}" if attempt else ""), timeout=None
    )
    try:
        while True:
            raw = ws.recv()
            if not raw:
                break
            msg = json.loads(raw)
            if msg["type"] == "lines" and not quiet:
                for line in msg["lines"]:
                    out = sys.stderr if line["stream"] == "stderr" else sys.stdout
                    text = plain_text(line)
                    out.write(text if text.endswith("\n") else text + "\n")
                    out.flush()
            elif msg["type"] == "end":
                return dict(msg["task"])
            elif msg["type"] == "error":
                raise OrchError(msg.get("message", "error"))
    finally:
        ws.close()
    return dict(api.get(f"/tasks/{task_id}"))


def cmd_status(args: argparse.Namespace) -> int:
    api = api_from(args)
    if args.id:
        from .workflows import find_run

        run = find_run(api, args.id)
        if run is not None:
            emit(args, run, render.run_tree(run))
            return 0
        task = api.get(f"/tasks/{args.id}")
        emit(args, task, render.task_detail(task))
        return 0
    tasks = api.get("/tasks", state=args.state, limit=args.limit, q=args.q)["tasks"]
    names = {w["id"]: w["name"] for w in api.get("/workers")["workers"]} if tasks and not args.json else {}
    emit(args, tasks, render.tasks_table(tasks, names) if tasks else "no tasks yet")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    api = api_from(args)
    if args.follow:
        final = follow(api, args.id, args.attempt)
        return EXIT_STATUS.get(final["state"], 1)
    data = api.get(f"/tasks/{args.id}/logs", attempt=args.attempt)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for line in data["lines"]:
        out = sys.stderr if line["stream"] == "stderr" else sys.stdout
        text = plain_text(line)
        out.write(text if text.endswith("\n") else text + "\n")
    if not data["lines"]:
        print(f"(no output yet; task is {data['state']})", file=sys.stderr)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from .workflows import run_action

    api = api_from(args)
    run = run_action(api, args.id, "cancel")
    if run is not None:
        emit(args, run, f"cancelled run {run['id']} ({run['name']})")
        return 0
    task = api.post(f"/tasks/{args.id}/cancel")
    emit(args, task, f"cancelled {task['id']} ({task['name']})")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from .workflows import run_action

    api = api_from(args)
    run = run_action(api, args.id, "retry")
    if run is not None:
        again = sum(1 for s in run["steps"] if s["state"] not in ("succeeded", "failed", "cancelled"))
        emit(args, run, f"retrying run {run['id']} ({run['name']}): {again} step(s) to run again")
        return 0
    task = api.post(f"/tasks/{args.id}/retry")
    emit(args, task, f"retrying {task['id']} ({task['name']}): {task['state']}")
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    data = api_from(args).get("/workers")
    workers = data["workers"]
    cluster = render.cluster_table(data.get("provider") or {})  # the cluster's free GPUs, if any
    if not workers and not args.json:
        hint = (data.get("provider") or {}).get("hint") or "workers start with the server (provider local)"
        render.console().print(f"no workers connected. {hint}")
    else:
        emit(args, data, render.workers_table(workers))
    if cluster is not None and not args.json:
        render.console().print(cluster)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check workflow files without a server: 0 when all are valid, 1 otherwise."""
    from ..workflows.loader import WorkflowFileInvalid, load

    status = 0
    for path in args.files:
        try:
            workflow, _ = load(path)
        except OSError as exc:
            print(f"{path}: cannot read it: {exc.strerror or exc}", file=sys.stderr)
            status = 1
            continue
        except WorkflowFileInvalid as exc:
            for problem in exc.problems:
                print(problem.format(path), file=sys.stderr)
            print(f"{path}: {len(exc.problems)} problem(s); nothing would run", file=sys.stderr)
            status = 1
            continue
        bases = {s.base for s in workflow.steps}
        fanned = f" ({len(workflow.steps)} after matrix fan-out)" if len(workflow.steps) != len(bases) else ""
        print(f"{path}: workflow {workflow.name!r} is valid: {len(bases)} steps{fanned}, params: "
              + (", ".join(f"{p.name} ({p.type})" for p in workflow.params.values()) or "none"))  # fmt: skip
    return status


def cmd_token(args: argparse.Namespace) -> int:
    api = api_from(args)
    if args.action == "create":
        if not args.name:
            raise SystemExit("jupyter orch token create NAME")
        token = api.post("/workers/tokens", {"name": args.name})
        emit(
            args,
            token,
            f"worker token {token['id']} ({token['name']}):\n{token['token']}\n"
            "start a worker with: jupyter orch worker --server URL --token <that token>",
        )
    elif args.action == "list":
        tokens = api.get("/workers/tokens")["tokens"]
        lines = [
            f"{t['id']}  {t['name']:<20} {t['provider']:<8} {'revoked' if t['revoked_at'] else 'active'}"
            for t in tokens
        ]
        emit(args, tokens, "\n".join(lines) or "no worker tokens")
    else:
        if not args.name:
            raise SystemExit("jupyter orch token revoke TOKEN_ID")
        api.delete(f"/workers/tokens/{args.name}")
        emit(args, {"revoked": args.name}, f"revoked {args.name}")
    return 0

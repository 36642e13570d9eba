"""``jupyter orch``: the entry point and its argument parser."""

from __future__ import annotations

import argparse
import logging
import sys

from ..core.errors import OrchError
from . import admin as admin_commands
from . import commands, searches, workflows
from . import db as db_commands
from . import metrics as metric_commands


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="server URL (default: JUPYTER_ORCH_URL or the running server)")
    p.add_argument("--token", help="API token (default: JUPYTER_ORCH_TOKEN or the running server's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _task_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--cpus", type=float, default=1)
    p.add_argument("--memory")
    p.add_argument("--gpu-type")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--image")
    p.add_argument("--name")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--preemptible", action="store_true",
                   help="may be evicted for a task of higher priority (it resumes from its checkpoint)")  # fmt: skip
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--timeout", type=float)
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--wait", action="store_true", help="follow the output and exit with the task's status")


def _param_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", action="append", default=[], metavar="K=V",
                   help="a workflow param (YAML value: 0.1, 3, true, [1, 2], text)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter orch", description="Jupyter-native orchestration of ML work on GPUs"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="run the API service and scheduler (a Jupyter server with only this extension)",
        add_help=False,
    )
    worker = sub.add_parser("worker", help="run a worker that connects to a server")
    from ..worker.cli import add_arguments

    add_arguments(worker)

    submit = sub.add_parser("submit", help="submit module:function [ARGS] or -- SHELL COMMAND")
    _common(submit)
    submit.add_argument("target", nargs="?", help="module:function to call on a worker")
    submit.add_argument("args", nargs="*", help="arguments (JSON values, else strings)")
    _task_options(submit)
    submit.set_defaults(func=commands.cmd_submit, shell=None)

    notebook = sub.add_parser("submit-notebook", help="run a notebook on a worker with papermill parameters")
    _common(notebook)
    notebook.add_argument("path", help="the .ipynb to run (it is sent; the worker need not see it)")
    notebook.add_argument("-p", "--param", action="append", default=[], metavar="K=V",
                          help="a parameter (YAML value: 0.1, 3, true, [1, 2], text)")  # fmt: skip
    notebook.add_argument("--kernel", help="kernel name (default: the notebook's)")
    notebook.add_argument("--output", help="with --wait: save the executed notebook here")
    _task_options(notebook)
    notebook.set_defaults(func=commands.cmd_submit_notebook)

    run = sub.add_parser("run", help="run a workflow file (steps as tasks with dependencies)")
    _common(run)
    run.add_argument("file", metavar="FILE", help="the workflow file (YAML or JSON); its notebooks are sent")
    _param_option(run)
    run.add_argument("--wait", action="store_true",
                     help="show the steps until the run ends; exit 0 succeeded, 1 failed, 130 cancelled")  # fmt: skip
    run.set_defaults(func=workflows.cmd_run)

    runs = sub.add_parser("runs", help="recent workflow runs")
    _common(runs)
    runs.add_argument("--state", help="only these states (comma-separated: running, succeeded, ...)")
    runs.add_argument("--limit", type=int, default=50)
    runs.set_defaults(func=workflows.cmd_runs)

    searches.add_parser(sub, _common)

    schedule = sub.add_parser(
        "schedule", help="workflows run on a cron expression: add FILE | list | remove ID"
    )
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="run a workflow file on a cron expression")
    _common(add)
    add.add_argument("file", metavar="FILE")
    add.add_argument("--cron", required=True, metavar="EXPR", help="e.g. '0 3 * * *' (03:00 every day, UTC)")
    add.add_argument("--name", help="default: the workflow's name")
    _param_option(add)
    listing = actions.add_parser("list", help="the schedules, their next and last runs")
    _common(listing)
    remove = actions.add_parser("remove", help="remove a schedule (its runs stay)")
    _common(remove)
    remove.add_argument("id", metavar="ID")
    schedule.set_defaults(func=workflows.cmd_schedule)

    status = sub.add_parser("status", help="recent tasks, or one task with its attempts, or a run's DAG")
    _common(status)
    status.add_argument("id", nargs="?")
    status.add_argument("--state", help="only these states (comma-separated)")
    status.add_argument("-q", help="search names and ids")
    status.add_argument("--limit", type=int, default=50)
    status.set_defaults(func=commands.cmd_status)

    logs = sub.add_parser("logs", help="a task's output")
    _common(logs)
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the task ends")
    logs.add_argument("--attempt", type=int)
    logs.set_defaults(func=commands.cmd_logs)
    metric_commands.add_parser(sub, _common)

    for name, func, text in (
        ("cancel", commands.cmd_cancel, "cancel a task or a workflow run"),
        ("retry", commands.cmd_retry, "run a failed or cancelled task again (or a run's failed steps)"),
    ):
        p = sub.add_parser(name, help=text)
        _common(p)
        p.add_argument("id")
        p.set_defaults(func=func)

    workers = sub.add_parser("workers", help="workers, their slots and GPUs")
    _common(workers)
    workers.set_defaults(func=commands.cmd_workers)

    from .report import HELP as report_help  # run by main() before this parser is built

    sub.add_parser("report", help=report_help, add_help=False)

    validate = sub.add_parser("validate", help="check workflow files; every problem with its line and column")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=commands.cmd_validate)

    admin = sub.add_parser("admin", help="for those who look after a shared server")
    admin_actions = admin.add_subparsers(dest="action", metavar="ACTION", required=True)
    usage = admin_actions.add_parser("usage", help="GPU-hours per user and group")
    _common(usage)
    usage.add_argument("--since", default="7d", help="how far back: 7d, 12h, 30m or seconds (default 7d)")
    usage.set_defaults(func=admin_commands.cmd_usage)

    db = sub.add_parser("db", help="the database's schema: upgrade (Alembic migrations) | current")
    db_commands.add_arguments(db)

    token = sub.add_parser("token", help="worker tokens: create NAME | list | revoke ID")
    _common(token)
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("name", nargs="?")
    token.set_defaults(func=commands.cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from .serve import main as serve

        return serve(argv[1:])
    if argv and argv[0] == "report":  # from inside tasks, often: no parser, no logging set-up
        from .report import main as report

        return report(argv[1:])
    shell: list[str] | None = None
    if argv and argv[0] == "submit" and "--" in argv:
        cut = argv.index("--")
        argv, shell = argv[:cut], argv[cut + 1 :]
        if not shell:
            print("jupyter orch submit: nothing after --", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "worker":
        from ..worker.cli import run

        return run(args)
    if shell is not None:
        args.shell = shell
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except OrchError as exc:
        if exc.details:  # a workflow file's problems: each with its line and column
            for line in exc.details:
                print(line, file=sys.stderr)
            print(
                f"jupyter orch {args.command}: {len(exc.details)} problem(s) in the workflow; nothing was submitted",
                file=sys.stderr,
            )
            return 1
        where = f" ({exc.field})" if exc.field else ""
        print(f"jupyter orch {args.command}: {exc.message}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

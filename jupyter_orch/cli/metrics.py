"""``jupyter orch metrics TASK_ID``: what a task reported with ``jupyter_orch.report``, as a
table of its series (name, group, attempt, points, last, min, max) or, with ``--records``,
every report (a table, or JSON lines with ``--json``); ``jupyter orch checkpoints TASK_ID``:
the checkpoints it saved (``jupyter_orch.checkpoint.save``)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from rich.table import Table

from ..client.metrics import COLUMNS, fetch_records
from . import render
from .commands import api_from


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "metrics", help="what a task reported with jupyter_orch.report (--records: every report)"
    )
    common(p)
    p.add_argument("id")
    p.add_argument("--attempt", type=int, help="only this attempt (default: every attempt)")
    p.add_argument("--group", help="only this group (training, validation, ...)")
    p.add_argument("--name", action="append", default=[], dest="names", metavar="NAME",
                   help="only this metric (repeat for more)")  # fmt: skip
    p.add_argument("--records", action="store_true", help="every report instead of the series")
    p.set_defaults(func=cmd_metrics)
    c = sub.add_parser("checkpoints", help="the checkpoints a task saved (jupyter_orch.checkpoint.save)")
    common(c)
    c.add_argument("id")
    c.set_defaults(func=cmd_checkpoints)


def number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def series_table(series: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "GROUP", "ATTEMPT", "POINTS", "LAST", "MIN", "MAX"):
        table.add_column(col, overflow="fold", justify="right" if col not in ("NAME", "GROUP") else "left")
    for s in series:
        table.add_row(
            s["name"],
            s["group"],
            "all" if s["attempt"] is None else str(s["attempt"]),
            str(s["count"]),
            number(s["last"]),
            number(s["min"]),
            number(s["max"]),
        )
    return table


def records_table(records: list[dict[str, Any]]) -> Table:
    names: dict[str, None] = {}
    for rec in records:
        for key in rec:
            if key not in COLUMNS:
                names.setdefault(key)
    table = Table(box=None, header_style="bold")
    for col in ("ATTEMPT", "OFFSET", "TIME", "STEP", "GROUP", *names):
        table.add_column(col, overflow="fold")
    for rec in records:
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec["ts"]))
        table.add_row(
            str(rec["attempt"]),
            str(rec["offset"]),
            clock,
            number(rec["step"]),
            rec["group"],
            *("" if name not in rec else number(rec[name]) for name in names),
        )
    return table


def cmd_metrics(args: argparse.Namespace) -> int:
    api = api_from(args)
    where = {"attempt": args.attempt, "group": args.group}
    if args.records:
        records = fetch_records(api, args.id, names=args.names, **where)
        if args.json:
            for rec in records:
                print(json.dumps(rec))
        elif records:
            render.console().print(records_table(records))
        else:
            render.console().print(_nothing(args))
        return 0
    query: dict[str, Any] = {"name": args.names or None, "per_attempt": "true", **where}
    if not args.json:
        query["max_points"] = 2  # the table shows counts and summaries, not the curves
    data = api.get(f"/tasks/{args.id}/metrics", **query)
    if args.json:
        print(json.dumps(data, indent=2))
    elif data["series"]:
        render.console().print(series_table(data["series"]))
    else:
        render.console().print(_nothing(args))
    return 0


def _nothing(args: argparse.Namespace) -> str:
    asked = args.attempt is not None or args.group or args.names
    return f"task {args.id} has reported no metrics" + (" of those asked for" if asked else " (yet)")


def cmd_checkpoints(args: argparse.Namespace) -> int:
    data = api_from(args).get(f"/tasks/{args.id}/checkpoints")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    found = data["checkpoints"]
    if not found:
        render.console().print(
            f"task {args.id} has saved no checkpoints" + (f" (in {data['url']})" if data["url"] else "")
        )
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("ID", "ATTEMPT", "STEP", "SIZE", "SAVED", "METADATA"):
        table.add_column(col, overflow="fold")
    for c in found:
        table.add_row(
            c["id"],
            str(c["attempt"]),
            number(c["step"]),
            render.size(c["size"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c["created"])),
            json.dumps(c["metadata"]) if c["metadata"] else "",
        )
    render.console().print(table)
    render.console().print(f"in {data['url']}")
    return 0

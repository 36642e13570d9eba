"""``jupyter orch searches [ID]``: the caller's hyperparameter searches as a table, or one
search's trials (parameters, best value of the metric, state, why ASHA stopped it), best
first."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import render
from .commands import api_from, emit


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def searches_table(searches: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("ID", "NAME", "STATE", "METRIC", "TRIALS", "BEST", "CREATED"):
        table.add_column(col, overflow="fold", no_wrap=col in ("ID", "STATE"))
    for s in searches:
        counts = s.get("counts") or {}
        config = s.get("config") or {}
        done = sum(counts.get(k, 0) for k in ("succeeded", "failed", "cancelled", "stopped"))
        best = s.get("best")
        table.add_row(
            s["id"],
            s["name"],
            render.state(s["state"]),
            f"{config.get('metric')} ({config.get('mode', 'min')})",
            f"{done}/{counts.get('total', '?')}"
            + (f", {counts['running']} running" if counts.get("running") else ""),
            f"#{best['number']} {_num(best['value'])}" if best else "-",
            render.ago(s.get("created_at")),
        )
    return table


def trials_table(search: dict[str, Any]) -> Group:
    config = search.get("config") or {}
    metric = str(config.get("metric"))
    names = list(search.get("space") or {})
    table = Table(box=None, header_style="bold")
    for col in ("#", *names, f"BEST {metric.upper()}", "STEP", "STATE", "TASK", "WHY"):
        table.add_column(col, overflow="fold", no_wrap=col in ("#", "STATE", "TASK"))
    for t in search.get("trials") or []:
        params = t.get("params") or {}
        table.add_row(
            str(t["number"]),
            *(_num(params.get(n)) for n in names),
            _num(t.get("best")),
            _num(t.get("best_step")),
            render.state(t["state"]),
            t.get("task_id") or "-",
            t.get("reason") or "",
        )
    best = search.get("best")
    head = Text.from_markup(
        f"[bold]{search['name']}[/] {search['id']} {render.state(search['state'])}: {metric} "
        f"({'lower' if config.get('mode', 'min') == 'min' else 'higher'} is better)"
        + (f", best #{best['number']} {_num(best['value'])} at step {_num(best['step'])}" if best else "")
        + (f"\n[red]{search['error']}[/]" if search.get("error") else "")
    )
    return Group(head, table)


def cmd_searches(args: argparse.Namespace) -> int:
    api = api_from(args)
    if args.id:
        search = api.get(f"/searches/{args.id}")
        emit(args, search, trials_table(search))
        return 0
    searches = api.get("/searches", limit=args.limit)["searches"]
    emit(args, searches, searches_table(searches) if searches else "no searches yet")
    return 0


def add_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("searches", help="hyperparameter searches, or one search's trials (best first)")
    common(p)
    p.add_argument("id", nargs="?", metavar="ID", help="a search's id: its trials")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_searches)

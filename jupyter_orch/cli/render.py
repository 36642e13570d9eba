"""Human output for the CLI: rich tables of tasks and workers, durations, sizes."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

STATE_STYLE = {
    "pending": "yellow",
    "scheduled": "cyan",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "upstream_failed": "red",
}


def size(nbytes: int) -> str:
    if not nbytes:
        return "-"
    value = float(nbytes)
    for unit in ("B", "Ki", "Mi", "Gi", "Ti"):
        if value < 1024 or unit == "Ti":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    return str(nbytes)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def ago(ts: float | None) -> str:
    return "-" if not ts else duration(time.time() - ts) + " ago"


def resources(r: dict[str, Any]) -> str:
    parts = [f"{r.get('cpus', 1):g}cpu"]
    if r.get("memory"):
        parts.append(str(r["memory"]))
    if r.get("gpus"):
        parts.append(f"{r['gpus']}gpu" + (f"({r['gpu_type']})" if r.get("gpu_type") else ""))
    return " ".join(parts)


def state(s: str) -> str:
    return f"[{STATE_STYLE.get(s, 'white')}]{s}[/]"


def tasks_table(tasks: list[dict[str, Any]], worker_names: dict[str, str] | None = None) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("ID", "NAME", "STATE", "OWNER", "RESOURCES", "WORKER", "DURATION", "CREATED"):
        table.add_column(col, overflow="fold", no_wrap=col in ("ID", "STATE"))
    for t in tasks:
        dur = t.get("duration")
        if dur is None and t.get("started_at") and t["state"] == "running":
            dur = time.time() - t["started_at"]
        table.add_row(
            t["id"],
            t["name"],
            state(t["state"]),
            t["owner"],
            resources(t["resources"]),
            (worker_names or {}).get(t.get("worker_id") or "", t.get("worker_id") or "-"),
            duration(dur),
            ago(t.get("created_at")),
        )
    return table


def task_detail(t: dict[str, Any]) -> Tree:
    tree = Tree(f"[bold]{t['name']}[/] {t['id']}  {state(t['state'])}")
    tree.add(f"kind {t['kind']}, owner {t['owner']}, {resources(t['resources'])}, priority {t['priority']}")
    if t.get("command"):
        tree.add(f"command: {t['command']}")
    if t.get("reason"):
        tree.add(f"[yellow]{t['reason']}[/]")
    if t.get("error"):
        tree.add(f"[red]error ({t.get('error_kind')}): {t['error']}[/]")
    if t.get("depends"):
        tree.add("depends on " + ", ".join(t["depends"]))
    attempts = tree.add(f"attempts ({len(t.get('attempts') or [])})")
    for a in t.get("attempts") or []:
        end = a.get("ended_at")
        took = (end - a["started_at"]) if end and a.get("started_at") else None
        line = f"#{a['number']} {state(a['state'])} on {a.get('worker_id') or '-'} {duration(took)}"
        if a.get("exit_code") is not None:
            line += f" exit {a['exit_code']}"
        if a.get("error"):
            line += f" [red]{a['error']}[/]"
        attempts.add(line)
    return tree


def workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "STATE", "PROVIDER", "SLOTS", "CPUS", "MEMORY", "GPUS", "LABELS", "LOAD"):
        table.add_column(col, overflow="fold")
    for w in workers:
        gpus = []
        for g in w.get("gpus") or []:
            use = f" {g['utilization']:.0f}%" if g.get("utilization") is not None else ""
            held = f" <{g['task_id'][-6:]}>" if g.get("task_id") else ""
            gpus.append(f"{g['index']}:{g.get('model') or 'gpu'}{use}{held}")
        m = w.get("metrics") or {}
        load = f"cpu {m['cpu_percent']:.0f}%" if m.get("cpu_percent") is not None else "-"
        table.add_row(
            w["name"],
            state(w["state"]) if w["state"] != "connected" else "[green]connected[/]",
            w.get("provider", ""),
            f"{w['slots_used']}/{w['slots']}",
            f"{w['cpus']:g}",
            size(w.get("memory") or 0),
            "\n".join(gpus) or "-",
            ",".join(f"{k}={v}" for k, v in (w.get("labels") or {}).items()) or "-",
            load,
        )
    return table


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)

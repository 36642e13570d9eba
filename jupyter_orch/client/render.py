"""Human output of API views, for the CLI and the ``%orch`` magics: rich tables of tasks,
workers, workflow runs and schedules, a run's DAG as a tree, durations, sizes.
(``jupyter_orch.cli.render`` re-exports it.)"""

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


def cluster_table(provider: dict[str, Any]) -> Table | str | None:
    """A provider's cluster GPUs per node (the kubernetes provider), or why they are not known."""
    cluster = provider.get("cluster")
    if not isinstance(cluster, dict):
        return None
    if cluster.get("error"):
        return f"cluster GPUs unknown: {cluster['error']}"
    nodes = cluster.get("nodes") or []
    if not nodes:
        return f"no node of the cluster offers {cluster.get('gpu_resource') or 'GPUs'}"
    table = Table(box=None, header_style="bold", title=f"cluster GPUs ({cluster.get('gpu_resource')})")
    for col in ("NODE", "GPU TYPE", "FREE", "REQUESTED", "ALLOCATABLE"):
        table.add_column(col, overflow="fold")
    for n in nodes:
        free = str(n["free"]) if n.get("schedulable", True) else "0 (cordoned or not ready)"
        table.add_row(n["name"], n.get("gpu_type") or "-", free, str(n["requested"]), str(n["allocatable"]))
    return table


def when(ts: float | None) -> str:
    """A moment as local date and time, with how far it is from now."""
    if not ts:
        return "-"
    delta = ts - time.time()
    rel = f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"
    return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(ts))} ({rel})"


def _running_for(item: dict[str, Any]) -> float | None:
    dur = item.get("duration")
    if dur is None and item.get("started_at") and item.get("state") == "running":
        dur = time.time() - item["started_at"]
    return dur


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("ID", "NAME", "STATE", "STEPS", "DURATION", "CREATED"):
        table.add_column(col, overflow="fold", no_wrap=col in ("ID", "STATE"))
    for r in runs:
        done = r.get("steps_done")
        total = r.get("step_count", 0)
        dur = r.get("duration")
        if dur is None and r["state"] == "running" and r.get("created_at"):
            dur = time.time() - r["created_at"]
        table.add_row(
            r["id"],
            r["name"] + (" [dim](scheduled)[/]" if r.get("schedule_id") else ""),
            state(r["state"]),
            f"{done}/{total}" if done is not None else str(total),
            duration(dur),
            ago(r.get("created_at")),
        )
    return table


def step_line(s: dict[str, Any]) -> str:
    """One step: name, state, how long, which attempt, cached, and why (errors in red)."""
    parts = [f"[bold]{s['name']}[/]", state(s["state"])]
    if s.get("cached"):
        parts.append("[green]cached[/]")
    dur = _running_for(s)
    if dur is not None:
        parts.append(duration(dur))
    if (s.get("attempt") or 0) > 1:
        parts.append(f"attempt {s['attempt']}")
    if s.get("error"):
        parts.append(f"[red]{s['error']}[/]")
    elif s.get("reason") and not s.get("cached") and s["state"] not in ("succeeded", "running"):
        parts.append(f"[yellow]{s['reason']}[/]")
    return "  ".join(parts)


def run_tree(run: dict[str, Any]) -> Tree:
    """The run's DAG: each step under the first step it depends on (its other parents said)."""
    head = f"[bold]{run['name']}[/] {run['id']}  {state(run['state'])}"
    took = run.get("duration")
    tree = Tree(head + (f"  {duration(took)}" if took is not None else ""))
    steps = run.get("steps") or []
    names = {s["name"] for s in steps}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for s in steps:
        parents = [d for d in s.get("depends") or [] if d in names]
        if parents:
            children.setdefault(parents[0], []).append(s)
        else:
            roots.append(s)

    def add(node: Tree, s: dict[str, Any]) -> None:
        parents = [d for d in s.get("depends") or [] if d in names]
        also = f"  [dim](also after {', '.join(parents[1:])})[/]" if len(parents) > 1 else ""
        branch = node.add(step_line(s) + also)
        for child in children.get(s["name"], []):
            add(branch, child)

    for s in roots:
        add(tree, s)
    return tree


def steps_table(steps: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("STEP", "STATE", "DURATION", "ATTEMPT", "REASON / ERROR"):
        table.add_column(col, overflow="fold", no_wrap=col in ("STEP", "STATE"))
    for s in steps:
        why = f"[red]{s['error']}[/]" if s.get("error") else (s.get("reason") or "")
        table.add_row(
            s["name"],
            state(s["state"]) + (" [green](cached)[/]" if s.get("cached") else ""),
            duration(_running_for(s)),
            str(s.get("attempt") or "-"),
            why,
        )
    return table


def schedules_table(schedules: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("ID", "NAME", "CRON", "NEXT", "LAST FIRED", "LAST RUN"):
        table.add_column(col, overflow="fold", no_wrap=col in ("ID", "CRON"))
    for s in schedules:
        last = s.get("last_run_id") or "-"
        if s.get("last_error"):
            last += f"\n[red]{s['last_error']}[/]"
        table.add_row(
            s["id"], s["name"], s["cron"], when(s.get("next_at")), when(s.get("last_fired_at")), last
        )
    return table


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)

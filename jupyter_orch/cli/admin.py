"""``jupyter orch admin ...``: what those who look after a shared server read (needs the
JupyterHub scope ``custom:orch:read-all``, or an admin's)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from rich.table import Table

from . import render
from .commands import api_from, emit


def usage_tables(data: dict[str, Any]) -> list[Table]:
    """GPU-hours per user, then per group, largest first."""
    users = Table(box=None, header_style="bold", title=_period(data), title_justify="left")
    for col, justify in (
        ("USER", "left"),
        ("GROUPS", "left"),
        ("GPU-HOURS", "right"),
        ("TASK-HOURS", "right"),
        ("ATTEMPTS", "right"),
    ):
        users.add_column(col, justify=justify)  # type: ignore[arg-type]
    for u in sorted(data["users"], key=lambda u: (-u["gpu_hours"], u["user"])):
        users.add_row(
            u["user"],
            ",".join(u["groups"]) or "-",
            f"{u['gpu_hours']:.2f}",
            f"{u['task_hours']:.2f}",
            str(u["attempts"]),
        )
    tables = [users]
    if data["groups"]:
        groups = Table(box=None, header_style="bold")
        for col, justify in (
            ("GROUP", "left"),
            ("USERS", "right"),
            ("GPU-HOURS", "right"),
            ("TASK-HOURS", "right"),
        ):
            groups.add_column(col, justify=justify)  # type: ignore[arg-type]
        for g in sorted(data["groups"], key=lambda g: (-g["gpu_hours"], g["group"])):
            groups.add_row(g["group"], str(g["users"]), f"{g['gpu_hours']:.2f}", f"{g['task_hours']:.2f}")
        tables.append(groups)
    return tables


def _period(data: dict[str, Any]) -> str:
    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    return f"usage from {when(data['since'])} to {when(data['until'])}"


def cmd_usage(args: argparse.Namespace) -> int:
    data = api_from(args).get("/admin/usage", since=args.since)
    if args.json:
        emit(args, data, None)
    elif not data["users"]:
        render.console().print(f"{_period(data)}: no task ran")
    else:
        for table in usage_tables(data):
            render.console().print(table)
    return 0

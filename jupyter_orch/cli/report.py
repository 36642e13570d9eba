"""``jupyter orch report [--step N] [--group G] NAME=VALUE ...``: a metric report from a shell
task (or any process inside a task), as ``jupyter_orch.report(...)`` makes one in Python.

It needs no server: the point goes down the task's metrics pipe
(:mod:`jupyter_orch.worker.metricspipe`). Exit codes: 0 sent; 2 a bad argument (the
message names it); 1 not inside a task. Kept light: ``jupyter orch`` runs it before
building its own parser.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..core.errors import SpecError
from ..core.metrics import DEFAULT_GROUP, make_point

PROG = "jupyter orch report"
HELP = "record metrics of the running task (from a shell task): --step 10 loss=0.3 acc=0.9"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--step", type=int, help="the step (a whole number >= 0; default: the report's number)")
    p.add_argument("--group", help=f"the metrics' group, e.g. validation (default: {DEFAULT_GROUP})")
    p.add_argument("metrics", nargs="+", metavar="NAME=VALUE", help="a metric and its value (a number)")


def parse_metric(text: str) -> tuple[str, int | float]:
    """``NAME=VALUE`` with a number as value (an int when it is written as one); ValueError
    naming the argument otherwise."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ValueError(f"{text!r} is not NAME=VALUE")
    try:
        return name, int(raw)
    except ValueError:
        pass
    try:
        return name, float(raw)
    except ValueError:
        raise ValueError(f"{text!r}: the value of {name!r} must be a number, not {raw!r}") from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)  # a bad --step: exit 2, naming it
    metrics: dict[str, int | float] = {}
    try:
        for text in args.metrics:
            name, value = parse_metric(text)
            metrics[name] = value
        point = make_point(time.time(), args.step, args.group, metrics)
    except (ValueError, SpecError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from ..metrics_report import NotInTask, send_point

    try:
        send_point(point)
    except NotInTask as exc:
        print(f"{PROG}: {exc}; metrics are only recorded in a task a worker runs", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: could not send the report to the worker: {exc}", file=sys.stderr)
        return 1
    return 0

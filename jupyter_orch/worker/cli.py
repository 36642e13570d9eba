"""``jupyter orch worker``: the command line of a worker (flags, environment, signals).

``add_arguments``/``run`` plug into the ``jupyter orch`` command; ``python -m
jupyter_orch.worker`` runs :func:`main`. :func:`worker_command` is the argv a provider uses
to start a worker process (give it the token in ``JUPYTER_ORCH_TOKEN``, not on the argv).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ..core.errors import SpecError
from ..core.resources import parse_labels, parse_memory
from .agent import Worker, WorkerConfig
from .connection import connect_url

log = logging.getLogger("jupyter_orch.worker")


class UsageError(ValueError):
    """A bad flag: reported as one line, exit code 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--server", metavar="URL", help="the Jupyter server running jupyter-orch (env JUPYTER_ORCH_URL)")
    add("--token", metavar="TOKEN", help="this worker's token (env JUPYTER_ORCH_TOKEN)")
    add("--slots", type=int, default=1, metavar="N", help="tasks run at the same time (default 1)")
    add("--cpus", type=float, metavar="N", help="CPUs offered (default: all this process may use)")
    add("--memory", metavar="SIZE", help="memory offered, e.g. 8Gi (default: total RAM)")
    add(
        "--gpus",
        metavar="LIST",
        help="offer only these GPU indices, e.g. 0,1; 'none' for no GPUs (default: all)",
    )
    add(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label tasks can ask for (repeatable)",
    )
    add("--name", help="a readable name (default: hostname-pid)")
    add("--worker-id", metavar="ID", help="a stable id (env JUPYTER_ORCH_WORKER_ID; default: a new one)")
    add("--image", help="the container image this worker runs in (env JUPYTER_ORCH_IMAGE)")
    add("--provider", help="which provider started this worker (env JUPYTER_ORCH_PROVIDER; default static)")
    add(
        "--heartbeat",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="heartbeat interval when the server sets none",
    )
    add(
        "--kill-grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="SIGTERM to SIGKILL on timeout/cancel",
    )
    add(
        "--on-sigterm",
        choices=("drain", "preempt"),
        default="drain",
        help="drain: finish running tasks, then exit; preempt (a pod's eviction or a spot node's "
        "notice): tasks checkpoint and stop within --preempt-grace and resume elsewhere",
    )
    add(
        "--preempt-grace",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="with --on-sigterm preempt: the tasks' time to stop (keep it under the pod's "
        "terminationGracePeriodSeconds)",
    )
    add("--max-backoff", type=float, default=5.0, metavar="SECONDS", help="longest wait between reconnects")
    add(
        "--orphan-timeout",
        type=float,
        metavar="SECONDS",
        help="stop, killing running tasks, once no server has been connected for this long after "
        "the process that started this worker exited (default: retry for ever)",
    )
    add(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="with --orphan-timeout: the process whose exit starts the count (default: the parent)",
    )
    add(
        "--server-file",
        metavar="PATH",
        help="a server's server.json: its URL is read again from it before each reconnect",
    )
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _gpus(value: str | None) -> tuple[list[int] | None, bool]:
    if value is None:
        return None, True
    if value.strip().lower() in ("", "none"):
        return [], False
    try:
        return [int(part) for part in value.split(",") if part.strip()], True
    except ValueError:
        raise UsageError(f"--gpus must be GPU indices like 0,1 (or 'none'), not {value!r}") from None


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    server = args.server or os.environ.get("JUPYTER_ORCH_URL")
    token = args.token or os.environ.get("JUPYTER_ORCH_TOKEN")
    if not server:
        raise UsageError("--server is required (or set JUPYTER_ORCH_URL)")
    if not token:
        raise UsageError("--token is required (or set JUPYTER_ORCH_TOKEN)")
    try:
        connect_url(server)
    except ValueError as exc:
        raise UsageError(f"--server: {exc}") from None
    if args.slots < 1:
        raise UsageError(f"--slots must be at least 1, not {args.slots}")
    for flag, value in (("--heartbeat", args.heartbeat), ("--max-backoff", args.max_backoff)):
        if value <= 0:
            raise UsageError(f"{flag} must be a positive number of seconds")
    if args.orphan_timeout is not None and args.orphan_timeout <= 0:
        raise UsageError("--orphan-timeout must be a positive number of seconds")
    if args.preempt_grace < 0:
        raise UsageError("--preempt-grace must be a number of seconds >= 0")
    if args.kill_grace < 0:
        raise UsageError("--kill-grace must be a number of seconds >= 0")
    if args.cpus is not None and args.cpus <= 0:
        raise UsageError("--cpus must be positive")
    try:
        memory = parse_memory(args.memory, "--memory") if args.memory is not None else None
        labels = parse_labels(args.label, "--label")
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    gpus, discover = _gpus(args.gpus)
    cpus = args.cpus
    return WorkerConfig(
        server=server,
        token=token,
        slots=args.slots,
        cpus=int(cpus) if cpus is not None and cpus == int(cpus) else cpus,
        memory=memory,
        gpus=gpus,
        discover_gpus=discover,
        labels=labels,
        name=args.name,
        worker_id=args.worker_id,
        image=args.image,
        provider=args.provider,
        heartbeat_interval=args.heartbeat,
        kill_grace=args.kill_grace,
        max_backoff=args.max_backoff,
        orphan_timeout=args.orphan_timeout,
        parent_pid=args.parent_pid,
        server_file=args.server_file,
        on_sigterm=args.on_sigterm,
        preempt_grace=args.preempt_grace,
    )


def worker_command(
    server: str,
    *,
    slots: int = 1,
    cpus: float | None = None,
    memory: str | None = None,
    gpus: Sequence[int] | None = None,
    labels: dict[str, str] | None = None,
    name: str | None = None,
    worker_id: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The argv that starts a worker process; put the token in ``JUPYTER_ORCH_TOKEN``."""
    argv = [python, "-m", "jupyter_orch.worker", "--server", server, "--slots", str(slots)]
    if cpus is not None:
        argv += ["--cpus", f"{cpus:g}"]
    if memory is not None:
        argv += ["--memory", str(memory)]
    if gpus is not None:
        argv += ["--gpus", ",".join(str(i) for i in gpus) or "none"]
    for key, value in (labels or {}).items():
        argv += ["--label", f"{key}={value}"]
    if name:
        argv += ["--name", name]
    if worker_id:
        argv += ["--worker-id", worker_id]
    return argv


def _setup_logging(level: str) -> None:
    logger = logging.getLogger("jupyter_orch")
    logger.setLevel(level)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


async def serve(config: WorkerConfig) -> int:
    """Run a worker until it stops, with SIGTERM/SIGINT as graceful stop (twice: kill tasks)."""
    worker = Worker(config)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(sig: signal.Signals) -> None:
        if worker._stopping:
            worker.stop(force=True)
        elif sig == signal.SIGTERM and config.on_sigterm == "preempt":
            worker.preempt_all("its worker was told to stop (SIGTERM: a pod eviction or a node going away)")
        else:
            worker.stop(f"{sig.name}; send it again to kill running tasks")

    for sig in signals:
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        return await worker.run()
    finally:
        for sig in signals:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except UsageError as exc:
        print(f"jupyter orch worker: error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(args.log_level)
    return asyncio.run(serve(config))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyter orch worker", description="Run tasks for a jupyter-orch server."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))

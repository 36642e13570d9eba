"""The engine alone, without network, processes or a browser: one shell task at a time
submitted to an ``Engine`` over a real SQLite store, its worker an in-memory link
(``tests/support/enginelink.py``) that reports it started and finished, the caller's
``wait`` returning. Prints CPU and wall time per round trip.

    /tmp/benchvenv/bin/python benchmarks/bench_engine.py [N] [--tree PATH]

``--tree`` times another checkout of the code (``git worktree add /tmp/before <rev>``), so
two versions can be run in turns on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("n", nargs="?", type=int, default=2000)
parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = parser.parse_args()
sys.path[:0] = [args.tree, os.path.join(args.tree, "tests")]

from jupyter_orch.core import protocol  # noqa: E402
from jupyter_orch.core.records import TokenRow  # noqa: E402
from jupyter_orch.core.spec import TaskSpec  # noqa: E402

from support.enginelink import Link, hello, make_engine  # noqa: E402


async def main(n: int) -> None:
    engine = make_engine(pathlib.Path(tempfile.mkdtemp()))
    await engine.start()
    link = Link()
    worker = engine.worker_hello(TokenRow(id="t" * 26, name="t", scope="worker"), link, hello("w1", slots=4))

    async def one() -> None:
        spec = TaskSpec.from_dict({"kind": "shell", "command": "true"}, owner="ann")
        [row] = await engine.submit([spec], {})
        await link.next("assign")
        for report in ({"type": "started"}, {"type": "finished", "ok": True}):
            engine.worker_message(worker, protocol.Message({**report, "task_id": row.id, "attempt": 1}))
        await engine.wait(row.id, 5)

    for _ in range(200):  # warm up
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await one()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{args.tree}: {cpu / n * 1e6:.1f} us CPU, {wall / n * 1e6:.1f} us wall per round trip (n={n})")
    await engine.stop()


asyncio.run(main(args.n))

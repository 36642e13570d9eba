"""What the chaos tests count on besides the server's word: task bodies that record on disk
every attempt that starts and every one that runs to completion.

Each body appends ``"<task id> <attempt>"`` (from ``JUPYTER_ORCH_TASK_ID`` and
``JUPYTER_ORCH_ATTEMPT``, set by the worker) to ``starts.log`` first and to ``done.log``
last. The appends are single small ``O_APPEND`` writes, so concurrent tasks never mix
lines. A task that ran to completion twice shows up twice in ``done.log``, whatever the
server says.
"""

from __future__ import annotations

import collections
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cloudpickle
import pytest

# the function tasks below travel by value: workers cannot import the tests
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def recorded_call(folder: str, value: int, gate: str = "", ticks: int = 0, tick: float = 0.0) -> int:
    """A function task: records its start, prints ``ticks`` lines ``tick`` seconds apart,
    waits for ``gate`` (a file) if given, records its completion, returns ``value ** 2``."""
    import os
    import time

    key = f"{os.environ['JUPYTER_ORCH_TASK_ID']} {os.environ['JUPYTER_ORCH_ATTEMPT']}\n"
    with open(os.path.join(folder, "starts.log"), "a") as f:
        f.write(key)
    print(f"fn {value} started", flush=True)
    for i in range(1, ticks + 1):
        time.sleep(tick)
        print(f"tick {i}", flush=True)
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    with open(os.path.join(folder, "done.log"), "a") as f:
        f.write(key)
    return value * value


class Ledger:
    """The bodies' own record in one folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.starts_file = folder / "starts.log"
        self.done_file = folder / "done.log"

    def shell(self, index: int, gate: Path | None = None, ticks: int = 0, tick: float = 0.0) -> str:
        """A shell task's command line with the same behaviour as :func:`recorded_call`."""
        lines = [
            'M="$JUPYTER_ORCH_TASK_ID $JUPYTER_ORCH_ATTEMPT"',
            f'echo "$M" >> {shlex.quote(str(self.starts_file))}',
            f"echo sh {index} started",
        ]
        if ticks:
            lines.append(f"for i in $(seq 1 {ticks}); do sleep {tick}; echo tick $i; done")
        if gate is not None:
            lines.append(f"while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.05; done")
        lines.append(f'echo "$M" >> {shlex.quote(str(self.done_file))}')
        return "set -e; " + "; ".join(lines)

    def call(self, value: int, gate: Path | None = None, ticks: int = 0, tick: float = 0.0) -> tuple:
        """``client.submit(*ledger.call(...))``: a function task that records itself."""
        return (recorded_call, str(self.folder), value, str(gate) if gate else "", ticks, tick)

    @staticmethod
    def _read(path: Path) -> list[tuple[str, int]]:
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            task_id, attempt = line.split()
            out.append((task_id, int(attempt)))
        return out

    def starts(self) -> list[tuple[str, int]]:
        return self._read(self.starts_file)

    def completions(self) -> list[tuple[str, int]]:
        return self._read(self.done_file)

    def completed_ids(self) -> collections.Counter[str]:
        return collections.Counter(task_id for task_id, _ in self.completions())

    def wait_completed(self, ids: Iterable[str], timeout: float = 60) -> None:
        """Block until every task in ``ids`` has recorded its completion (read from disk:
        while the server is down or cut off there is nothing else to follow)."""
        wanted = set(ids)
        wait_until(lambda: wanted <= set(self.completed_ids()), timeout, f"{len(wanted)} tasks to complete")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll state the test cannot otherwise follow (files written by tasks)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    folder = tmp_path / "ledger"
    os.makedirs(folder, exist_ok=True)
    return Ledger(folder)

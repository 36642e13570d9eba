"""Metrics a task reports (``jupyter_orch.report``, ``jupyter orch report``), from the task
through the executor's metrics pipe and the worker's outbox to ``metrics`` messages: real
executors, real workers, the test double of the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import nbformat
import pytest

import jupyter_orch
from jupyter_orch import serialization
from jupyter_orch.notebooks.outputs import METRIC_MIME
from jupyter_orch.notebooks.runner import intercept_metrics
from jupyter_orch.worker.slots import Slot, TaskRequest

cloudpickle.register_pickle_by_value(sys.modules[__name__])

BIN = os.path.dirname(sys.executable)  # `jupyter` and `jupyter-orch` of this environment


def assign(task_id: str, fn: Any, *args: Any, attempt: int = 1) -> tuple[dict[str, Any], list[Any]]:
    payload, _ = serialization.dumps_call(fn, args)
    header = {"type": "assign", "task_id": task_id, "attempt": attempt, "kind": "function", "env": {}}
    return header, [("payload", payload)]


async def collect(conn: Any) -> tuple[list[Any], list[list[Any]], Any]:
    """Every ``metrics`` point (checking the offsets follow on) and log line of one task, up
    to its ``finished`` report."""
    points: list[Any] = []
    lines: list[list[Any]] = []
    while True:
        msg = await conn.recv("metrics", "log", "finished")
        if msg.type == "finished":
            return points, lines, msg
        if msg.type == "log":
            lines += msg["lines"]
            continue
        assert msg["offset"] == len(points), "metrics arrive in order, numbered from 0"
        assert len(msg["points"]) <= 500
        points += msg["points"]


# ---------------------------------------------------------------- over the protocol


@pytest.mark.asyncio
async def test_function_task_reports_reach_the_server_in_their_own_messages(
    fake_server: Any, start_worker: Any
) -> None:
    def train() -> str:
        print("epoch")
        jupyter_orch.report(step=0, loss=0.5, acc=0.1)
        jupyter_orch.report(step=1, group="validation", loss=float("nan"))
        jupyter_orch.report(loss=2**60, n=3)
        print("done")
        return "trained"

    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    before = time.time()
    conn.send(*assign("fit", train))
    points, lines, done = await collect(conn)
    assert serialization.loads_value(done.blobs["result"]) == "trained"
    assert [p[1:] for p in points] == [
        [0, "training", {"loss": 0.5, "acc": 0.1}],
        [1, "validation", {"loss": None}],  # NaN: a gap
        [None, "training", {"loss": float(2**60), "n": 3}],
    ]
    assert all(before - 1 < p[0] < time.time() + 1 for p in points)
    # the log has the printed lines and nothing else
    assert [line[1:] for line in lines] == [["stdout", "epoch"], ["stdout", "done"]]


@pytest.mark.asyncio
async def test_reports_made_just_before_return_are_all_sent_before_finished(
    fake_server: Any, start_worker: Any
) -> None:
    def burst(n: int) -> int:
        for i in range(n):  # more than a pipe holds: the task waits for the worker to read
            jupyter_orch.report(step=i, value=i * 0.5, label_length=len("x" * 10))
        return n

    def threads(k: int, n: int) -> int:
        def work(t: int) -> None:
            for i in range(n):
                jupyter_orch.report(step=i, group=f"thread-{t}", **{f"m{j}": float(j) for j in range(20)})

        pool = [threading.Thread(target=work, args=(t,)) for t in range(k)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return k * n

    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("burst", burst, 3000))
    points, lines, done = await collect(conn)
    assert done["ok"] and [p[1] for p in points] == list(range(3000))
    assert points[-1][3] == {"value": 1499.5, "label_length": 10}
    assert lines == []

    # lines written by concurrent threads never interleave: none is malformed
    conn.send(*assign("threads", threads, 8, 300))
    points, lines, done = await collect(conn)
    assert done["ok"] and len(points) == 2400 and lines == []
    for t in range(8):
        assert [p[1] for p in points if p[2] == f"thread-{t}"] == list(range(300))


@pytest.mark.asyncio
async def test_shell_task_reports_with_the_cli(fake_server: Any, start_worker: Any) -> None:
    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    command = (
        "jupyter orch report --step 1 --group validation loss=0.25 acc=1 && echo reported; "
        "jupyter-orch report --step 2 loss=nan; "
        f"{sys.executable} -c 'import jupyter_orch; jupyter_orch.report(step=3, py=1)'; "
        "jupyter-orch report --step 4 last=4"  # the command's last word: not lost
    )
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    conn.send(
        {"type": "assign", "task_id": "sh", "attempt": 1, "kind": "shell", "command": command, "env": env}
    )
    points, lines, done = await collect(conn)
    assert done["ok"], (done["error"], lines)
    assert [p[1:] for p in points] == [
        [1, "validation", {"loss": 0.25, "acc": 1}],
        [2, "training", {"loss": None}],
        [3, "training", {"py": 1}],
        [4, "training", {"last": 4}],
    ]
    assert [line[1:] for line in lines] == [["stdout", "reported"]]


@pytest.mark.asyncio
async def test_malformed_metric_lines_are_dropped_with_one_note(fake_server: Any, start_worker: Any) -> None:
    def scribble() -> None:
        fd = int(os.environ["JUPYTER_ORCH_METRICS_FD"])
        jupyter_orch.report(step=0, good=1)
        os.write(fd, b"not json\n")
        os.write(fd, b'[1.0, -1, "training", {"a": 1}]\n')  # a negative step
        os.write(fd, b'[1.0, 2, "training", {"a": "text"}]\n')
        jupyter_orch.report(step=1, good=2)
        os.write(fd, b"[1.0, 3")  # cut short by the end of the task

    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("bad", scribble))
    points, lines, done = await collect(conn)
    assert done["ok"]
    assert [p[1:] for p in points] == [[0, "training", {"good": 1}], [1, "training", {"good": 2}]]
    assert [line[1:] for line in lines] == [
        ["stderr", "[jupyter-orch] 4 malformed metric report(s) were dropped (the first: 'not json')"]
    ]

    conn.send(*assign("fine", jupyter_orch.report, 5))  # report(step=5) alone: a bad call
    points, lines, done = await collect(conn)
    assert not done["ok"] and points == [] and lines == []
    assert "SpecError: report at least one metric" in done["error"]


@pytest.mark.asyncio
async def test_points_the_server_lost_are_sent_again_from_its_offset(
    fake_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    go = tmp_path / "go"

    def reporter(path: str) -> str:
        jupyter_orch.report(step=0, a=0)
        jupyter_orch.report(step=1, a=1)
        while not os.path.exists(path):
            time.sleep(0.01)
        jupyter_orch.report(step=2, a=2)
        return "done"

    start_worker()
    conn1 = await fake_server.next_connection()
    await conn1.recv("hello")
    conn1.send(*assign("lossy", reporter, str(go)))
    seen: list[Any] = []
    while len(seen) < 2:
        msg = await conn1.recv("metrics")
        assert msg["offset"] == len(seen)
        seen += msg["points"]
    # the server kept only the first point (the second was lost in flight): it says so
    fake_server.reply_to_hello = {
        **fake_server.reply_to_hello,  # type: ignore[dict-item]
        "log_offsets": [["lossy", 1, 0]],
        "metric_offsets": [["lossy", 1, 1]],
    }
    conn1.drop()
    conn2 = await fake_server.next_connection()
    await conn2.recv("hello")
    msg = await conn2.recv("metrics")
    assert msg["offset"] == 1 and [p[3] for p in msg["points"]] == [{"a": 1}]
    go.touch()
    msg = await conn2.recv("metrics")
    assert msg["offset"] == 2 and [p[3] for p in msg["points"]] == [{"a": 2}]
    done = await conn2.recv("finished")
    assert serialization.loads_value(done.blobs["result"]) == "done"


# ---------------------------------------------------------------- in an executor slot


class Sink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, ts: float, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def of(self, stream: str) -> list[str]:
        return [text for s, text in self.lines if s == stream]


NOTEBOOK_CELLS = [
    "import jupyter_orch\nprint('hello')\nfor i in range(3):\n    jupyter_orch.report(step=i, group='validation', acc=i / 10)",
    "jupyter_orch.output('best', 0.2)",
    # a child of the kernel, which holds no descriptor of the pipe: it reaches it too
    "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-c', 'import jupyter_orch; jupyter_orch.report(step=9, child=1)'], check=True);",
]


@pytest.mark.asyncio
async def test_notebook_reports_leave_the_notebook_for_the_metrics_pipe(slot: Slot) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    payload = json.dumps({"notebook": nb}).encode()
    sink = Sink()
    out = await slot.run(TaskRequest("nb", 1, "notebook", blobs={"payload": payload}), sink)
    assert out.ok, out.error
    points = [json.loads(text) for text in sink.of("metric")]
    assert [p[1:] for p in points] == [
        [0, "validation", {"acc": 0.0}],
        [1, "validation", {"acc": 0.1}],
        [2, "validation", {"acc": 0.2}],
        [9, "training", {"child": 1}],
    ]
    executed = json.loads(out.result)
    outputs = [o for cell in executed["notebook"]["cells"] for o in cell["outputs"]]
    assert not any(METRIC_MIME in (o.get("data") or {}) for o in outputs)
    assert [o.get("text") for o in executed["notebook"]["cells"][0]["outputs"]] == ["hello\n"]
    assert executed["outputs"] == {"best": 0.2}
    # the task's log: what the cells printed and the runner's progress, no metric
    assert sink.of("stdout") == ["hello"] and sink.of("stderr") == [
        f"[jupyter-orch] cell {i} of 3" for i in (1, 2, 3)
    ]


def test_the_runner_hands_metric_displays_over_and_keeps_the_rest() -> None:
    kept: list[tuple[Any, ...]] = []
    sent: list[Any] = []

    def output(outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        kept.append((msg["msg_type"], cell_index))
        return "kept"

    def fails(point: Any) -> None:
        raise OSError("the worker is gone")

    hook = intercept_metrics(output, sent.append)
    point = [1.0, 2, "training", {"loss": 0.5}]
    metric = {"msg_type": "display_data", "content": {"data": {METRIC_MIME: point}, "metadata": {}}}
    other = {"msg_type": "display_data", "content": {"data": {"text/plain": "x"}, "metadata": {}}}
    stream = {"msg_type": "stream", "content": {"name": "stdout", "text": "x"}}
    assert hook([], metric, None, 0) is None
    assert hook([], other, None, 1) == "kept" and hook([], stream, None, 2) == "kept"
    assert sent == [point] and kept == [("display_data", 1), ("stream", 2)]
    assert intercept_metrics(output, fails)([], metric, None, 3) is None  # dropped, not raised


# ---------------------------------------------------------------- outside a task


def test_report_outside_a_task_checks_then_warns_once() -> None:
    script = """
import warnings, jupyter_orch
from jupyter_orch.core.errors import SpecError
warnings.simplefilter("always")
for bad, field in (({"loss": "x"}, "loss"), ({"step": -1, "a": 1}, "step"), ({}, "metrics"),
                   ({"step": True, "a": 1}, "step"), ({"group": "a b", "a": 1}, "group"), ({"ts": 1}, "name")):
    try:
        jupyter_orch.report(**bad)
    except SpecError as exc:
        print("refused", exc.field, exc.message)
    else:
        print("accepted", bad)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for i in range(3):
        jupyter_orch.report(step=i, loss=0.5)
print("warnings", len(caught), caught[0].category.__name__, caught[0].filename)
print(caught[0].message)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    said = run.stdout.splitlines()
    assert [line.split()[:2] for line in said[:6]] == [
        ["refused", "loss"],
        ["refused", "step"],
        ["refused", "metrics"],
        ["refused", "step"],
        ["refused", "group"],
        ["refused", "name"],
    ]
    assert "metric 'loss' must be a number, not str" in said[0]
    assert said[6] == "warnings 1 RuntimeWarning <string>"  # once, at the caller's line
    assert "only recorded inside a jupyter-orch task" in said[7]


def test_report_in_a_process_without_the_pipe_is_not_written_elsewhere(tmp_path: Path) -> None:
    """A process that inherited the variables but not the pipe never writes to whatever file
    has that descriptor number: with no path to reopen, the report is dropped (a warning)."""
    script = f"""
import os, warnings, jupyter_orch
fd = os.open({str(tmp_path / "victim")!r}, os.O_WRONLY | os.O_CREAT)
os.environ["JUPYTER_ORCH_METRICS_FD"] = str(fd)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    jupyter_orch.report(step=1, loss=0.5)
print(len(caught))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1"]
    assert (tmp_path / "victim").read_bytes() == b""


def test_a_report_the_worker_no_longer_reads_is_dropped_not_raised() -> None:
    script = """
import os, warnings, jupyter_orch
r, w = os.pipe()
os.close(r)  # the worker is gone
os.environ["JUPYTER_ORCH_METRICS_FD"] = str(w)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for i in range(3):
        jupyter_orch.report(step=i, loss=0.5)
print(len(caught), caught[0].message)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("1 jupyter_orch.report(): the worker no longer reads this task's metrics")

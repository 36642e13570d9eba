"""The worker agent against a test double of the server (a real tornado WebSocket server)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import psutil
import pytest

from jupyter_orch import __version__, serialization
from jupyter_orch.core.ids import is_valid_id
from jupyter_orch.worker.agent import Worker, WorkerConfig

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.asyncio


def assign(task_id: str, fn: Any, *args: Any, attempt: int = 1, **fields: Any) -> tuple[dict[str, Any], list]:
    payload, _ = serialization.dumps_call(fn, args)
    header = {"type": "assign", "task_id": task_id, "attempt": attempt, "kind": "function", "env": {}}
    header.update(fields)
    return header, [("payload", payload)]


async def test_hello_run_heartbeat_and_shutdown(fake_server: Any, start_worker: Any) -> None:
    worker, run = start_worker(slots=2, labels={"zone": "eu", "disk": "ssd"}, name="w-test", cpus=3)
    conn = await fake_server.next_connection()
    assert conn.headers["Authorization"] == f"Bearer {fake_server.token}"
    hello = await conn.recv("hello")
    assert hello["name"] == "w-test" and is_valid_id(hello["worker_id"])
    assert hello["slots"] == 2 and hello["cpus"] == 3
    assert hello["memory"] > 0 and hello["gpus"] == []
    assert hello["labels"] == {"zone": "eu", "disk": "ssd"}
    assert hello["version"] == __version__ and hello["python"] == serialization.environment()["python"]
    assert hello["cloudpickle"] == cloudpickle.__version__
    assert hello["pid"] == os.getpid() and hello["provider"] == "static"
    assert hello["running"] == [] and hello["finished"] == []

    def work(n: int) -> int:
        for i in range(n):
            print(f"line {i}")
        print("oops", file=sys.stderr)
        return n * 2

    conn.send(*assign("task-a", work, 300))
    started = await conn.recv("started")
    assert started["task_id"] == "task-a" and started["attempt"] == 1 and started["pid"] > 0
    lines: list[list[Any]] = []
    while True:
        msg = await conn.recv("log", "finished")
        if msg.type == "finished":
            break
        assert msg["task_id"] == "task-a" and len(msg["lines"]) <= 200
        lines.extend(msg["lines"])
    assert [text for _, stream, text in lines if stream == "stdout"] == [f"line {i}" for i in range(300)]
    assert [text for _, stream, text in lines if stream == "stderr"] == ["oops"]
    assert all(isinstance(ts, float) and abs(ts - time.time()) < 60 for ts, _, _ in lines)
    assert msg["ok"] is True and msg["error_kind"] is None
    assert serialization.loads_value(msg.blobs["result"]) == 600

    beat = await conn.recv("heartbeat")
    metrics = beat["metrics"]
    assert metrics["memory_total"] >= metrics["memory_used"] > 0
    assert 0 <= metrics["cpu_percent"] and metrics["gpus"] == []

    conn.send({"type": "assign", "task_id": "nb", "attempt": 1, "kind": "notebook"})  # no payload
    nb = await conn.recv("finished")
    assert nb["ok"] is False and nb["error_kind"] == "bad_payload"
    assert "the notebook task's payload is unreadable" in nb["error"]

    await until_acked(worker)
    conn.send({"type": "shutdown", "reason": "idle"})
    assert await asyncio.wait_for(run, timeout=10) == 0


async def until_acked(worker: Worker) -> None:
    for _ in range(500):
        if not worker.outbox.reports:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("reports not acknowledged")


async def test_cancel_and_timeout_over_the_protocol(fake_server: Any, start_worker: Any) -> None:
    worker, run = start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("slow", time.sleep, 30))
    await conn.recv("started")
    conn.send({"type": "cancel", "task_id": "unknown", "attempt": 1, "reason": "x", "grace": 1})
    conn.send({"type": "cancel", "task_id": "slow", "attempt": 1, "reason": "user request", "grace": 1})
    done = await conn.recv("finished")
    assert done["task_id"] == "slow" and done["error_kind"] == "cancelled"
    assert done["error"] == "cancelled: user request"

    conn.send(*assign("late", time.sleep, 30, timeout=0.2))
    done = await conn.recv("finished")
    assert done["error_kind"] == "timeout" and done["error"] == "timed out after 0.2 s"

    header = {"type": "assign", "task_id": "sh", "attempt": 2, "kind": "shell", "command": "echo $X; exit 4"}
    conn.send({**header, "env": {"X": "from-env"}})
    log = await conn.recv("log")
    assert log["attempt"] == 2 and [line[1:] for line in log["lines"]] == [["stdout", "from-env"]]
    done = await conn.recv("finished")
    assert done["error_kind"] == "exit_code" and done["exit_code"] == 4
    assert done.blobs["result"] == b""


async def test_reconnect_keeps_the_task_and_delivers_its_result(
    fake_server: Any, start_worker: Any, tmp_path: Path, until: Any
) -> None:
    go = tmp_path / "go"

    def wait_for_file(path: str) -> str:
        print("before", flush=True)
        while not os.path.exists(path):
            time.sleep(0.01)
        print("after")
        return "result!"

    worker, run = start_worker()
    conn1 = await fake_server.next_connection()
    hello1 = await conn1.recv("hello")
    conn1.send(*assign("long", wait_for_file, str(go)))
    await conn1.recv("started")
    log = await conn1.recv("log")
    assert log["lines"][0][2] == "before"

    # 1. the connection drops while the task runs: the worker comes back and says so
    conn1.drop()
    conn2 = await fake_server.next_connection()
    hello2 = await conn2.recv("hello")
    assert hello2["worker_id"] == hello1["worker_id"]
    assert hello2["running"] == [{"task_id": "long", "attempt": 1}] and hello2["finished"] == []

    # 2. the task ends while the worker is disconnected: log and result are kept
    fake_server.gate.clear()
    conn2.drop()
    go.touch()
    await until(lambda: ("long", 1) in worker.outbox.reports)
    fake_server.auto_ack = False
    fake_server.gate.set()
    conn3 = await fake_server.next_connection()
    hello3 = await conn3.recv("hello")
    assert hello3["running"] == []
    [report] = hello3["finished"]
    assert report["task_id"] == "long" and report["ok"] is True and "blobs" not in report
    log = await conn3.recv("log", "finished")
    assert log.type == "log" and [line[2] for line in log["lines"]] == ["after"]
    done = await conn3.recv("finished")
    assert serialization.loads_value(done.blobs["result"]) == "result!"

    # 3. not acknowledged: sent again after the next reconnect, until the server acks
    conn3.drop()
    conn4 = await fake_server.next_connection()
    conn4.auto_ack = True
    hello4 = await conn4.recv("hello")
    assert [r["task_id"] for r in hello4["finished"]] == ["long"]
    done = await conn4.recv("finished")
    assert serialization.loads_value(done.blobs["result"]) == "result!"
    await until_acked(worker)
    assert not run.done()


async def test_refuse_drops_the_report(fake_server: Any, start_worker: Any, caplog: Any) -> None:
    fake_server.auto_ack = False
    worker, run = start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("r", abs, -1))
    done = await conn.recv("finished")
    with caplog.at_level(logging.WARNING, logger="jupyter_orch.worker"):
        conn.send({"type": "refuse", "task_id": "r", "attempt": 1, "reason": "not yours"})
        await until_acked(worker)
    assert done["ok"] and "refused the report of task r attempt 1: not yours" in caplog.text


async def test_error_message_stops_the_worker_with_code_2(
    fake_server: Any, start_worker: Any, caplog: Any
) -> None:
    fake_server.reply_to_hello = {"type": "error", "message": "this worker id is already connected"}
    with caplog.at_level(logging.ERROR, logger="jupyter_orch.worker"):
        worker, run = start_worker()
        assert await asyncio.wait_for(run, timeout=10) == 2
    assert "the server refused this worker: this worker id is already connected" in caplog.text


async def test_waits_for_a_server_that_is_not_there_yet(
    free_port: int, server_class: Any, caplog: Any
) -> None:
    server = server_class()
    worker = Worker(WorkerConfig(server=f"http://127.0.0.1:{free_port}", token=server.token, max_backoff=0.1))
    with caplog.at_level(logging.INFO, logger="jupyter_orch.worker"):
        run = asyncio.ensure_future(worker.run())
        try:
            for _ in range(200):
                if "waiting for server" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # several failed attempts, one message
            server.start(free_port)
            conn = await server.next_connection()
            assert (await conn.recv("hello"))["type"] == "hello"
        finally:
            worker.stop(force=True)
            await asyncio.wait_for(run, timeout=10)
            await server.stop()
    assert caplog.text.count("waiting for server at") == 1


async def test_unauthorized_worker_process_exits_with_code_2(fake_server: Any) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupyter_orch.worker", "--server", fake_server.url, "--token", "wrong",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert "the server refused this worker's token: invalid worker token" in err.decode()


async def test_second_stop_kills_running_tasks(fake_server: Any, start_worker: Any, until: Any) -> None:
    worker, run = start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("stuck", time.sleep, 60))
    pid = (await conn.recv("started"))["pid"]
    worker.stop("first signal")
    assert not run.done()
    worker.stop(force=True)
    assert await asyncio.wait_for(run, timeout=10) == 1
    await until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")


async def test_lines_the_server_lost_are_sent_again(
    fake_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    go = tmp_path / "go"

    def two_lines(path: str) -> str:
        print("one", flush=True)
        print("two", flush=True)
        while not os.path.exists(path):
            time.sleep(0.01)
        print("three")
        return "done"

    worker, run = start_worker()
    conn1 = await fake_server.next_connection()
    await conn1.recv("hello")
    conn1.send(*assign("lossy", two_lines, str(go)))
    seen: list[tuple[int, str]] = []
    while len(seen) < 2:
        log = await conn1.recv("log")
        seen += [(log["offset"] + i, line[2]) for i, line in enumerate(log["lines"])]
    assert seen == [(0, "one"), (1, "two")]
    # the server kept only the first line (the second was lost in flight): it says so
    fake_server.reply_to_hello = {**fake_server.reply_to_hello, "log_offsets": [["lossy", 1, 1]]}
    conn1.drop()
    conn2 = await fake_server.next_connection()
    await conn2.recv("hello")
    log = await conn2.recv("log")
    assert log["offset"] == 1 and [line[2] for line in log["lines"]] == ["two"]
    go.touch()
    log = await conn2.recv("log")
    assert log["offset"] == 2 and [line[2] for line in log["lines"]] == ["three"]
    done = await conn2.recv("finished")
    assert serialization.loads_value(done.blobs["result"]) == "done"
    assert not run.done()


async def test_tasks_sent_ahead_wait_for_a_slot_in_order(
    fake_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    go = tmp_path / "go"

    def gated(path: str, value: int) -> int:
        while not os.path.exists(path):
            time.sleep(0.01)
        return value

    worker, run = start_worker()  # one slot
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("first", gated, str(go), 1))
    conn.send(*assign("second", int, "2"))
    started = await conn.recv("started")
    assert started["task_id"] == "first"
    hello_running = worker.hello()["running"]
    assert [r["task_id"] for r in hello_running] == ["first", "second"]  # the queued one is held too
    go.touch()
    done = [await conn.recv("finished") for _ in range(2)]
    assert [d["task_id"] for d in done] == ["first", "second"]
    assert [serialization.loads_value(d.blobs["result"]) for d in done] == [1, 2]
    assert not run.done()

"""A preemption as the worker sees it: ``cancel`` with ``preempt``, ``should_preempt()`` in
the task, the task's own report marked ``stopped``, a kill after the grace, and SIGTERM to
a worker run with ``on_sigterm="preempt"`` (a pod eviction, a spot node's notice)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import cloudpickle
import pytest

import jupyter_orch
from jupyter_orch import serialization

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def assign(task_id: str, fn: Any, *args: Any, attempt: int = 1) -> tuple[dict[str, Any], list[Any]]:
    payload, _ = serialization.dumps_call(fn, args)
    header = {"type": "assign", "task_id": task_id, "attempt": attempt, "kind": "function", "env": {}}
    return header, [("payload", payload)]


def polite() -> dict[str, Any]:
    """Polls should_preempt(); returns when asked, with how far it got and its pid."""
    print("polling", flush=True)
    for step in range(100_000):
        if jupyter_orch.should_preempt():
            return {"step": step, "pid": os.getpid()}
        time.sleep(0.01)
    return {"step": -1}


def oblivious() -> None:
    print("working", flush=True)
    time.sleep(600)


def pid() -> int:
    return os.getpid()


async def started(conn: Any, text: str) -> None:
    while True:
        msg = await conn.recv("log")
        if any(text in line[2] for line in msg["lines"]):
            return


@pytest.mark.asyncio
async def test_a_polling_task_returns_when_asked_and_its_report_says_it_stopped(
    fake_server: Any, start_worker: Any
) -> None:
    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("t1", polite))
    await started(conn, "polling")
    conn.send(
        {
            "type": "cancel",
            "task_id": "t1",
            "attempt": 1,
            "reason": "preempted for X",
            "grace": 30,
            "preempt": True,
        }
    )
    done = await conn.recv("finished")
    assert done["ok"] is True and done["stopped"] is True
    out = serialization.loads_value(done.blobs["result"])
    assert out["step"] > 0
    # the executor stayed warm: the next task runs in the same process, and is not "stopped"
    conn.send(*assign("t2", pid))
    nxt = await conn.recv("finished")
    assert serialization.loads_value(nxt.blobs["result"]) == out["pid"] and "stopped" not in nxt.header


@pytest.mark.asyncio
async def test_a_task_that_does_not_poll_is_interrupted_and_reported_preempted(
    fake_server: Any, start_worker: Any
) -> None:
    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("t1", oblivious))
    await started(conn, "working")
    conn.send(
        {"type": "cancel", "task_id": "t1", "attempt": 1, "reason": "preempted", "grace": 30, "preempt": True}
    )
    done = await conn.recv("finished")
    assert (done["ok"], done["error_kind"], done["error"]) == (False, "preempted", "stopped when asked")


@pytest.mark.asyncio
async def test_a_task_that_ignores_the_signal_is_killed_after_the_grace(
    fake_server: Any, start_worker: Any
) -> None:
    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    header = {"type": "assign", "task_id": "t1", "attempt": 1, "kind": "shell", "env": {},
              "command": "trap '' TERM; echo stubborn; sleep 600"}  # fmt: skip
    conn.send(header, [("none", b"")])
    await started(conn, "stubborn")
    conn.send(
        {
            "type": "cancel",
            "task_id": "t1",
            "attempt": 1,
            "reason": "preempted",
            "grace": 0.5,
            "preempt": True,
        }
    )
    done = await conn.recv("finished")
    assert done["error_kind"] == "preempted"
    assert done["error"] == "killed: it did not stop within its 0.5 s grace"


@pytest.mark.asyncio
async def test_sigterm_with_on_sigterm_preempt_says_going_and_stops_the_tasks(
    fake_server: Any, start_worker: Any
) -> None:
    worker, run = start_worker(on_sigterm="preempt", preempt_grace=30)
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    conn.send(*assign("t1", polite))
    await started(conn, "polling")
    worker.preempt_all("its pod is evicted")  # what serve() does on SIGTERM in this mode
    going = await conn.recv("going")
    assert going["reason"] == "its pod is evicted"
    done = await conn.recv("finished")
    assert done["ok"] is True and done["stopped"] is True
    conn.send({"type": "ack", "task_id": "t1", "attempt": 1})
    assert await run == 0  # it exits once its report is acknowledged


@pytest.mark.asyncio
async def test_should_preempt_is_false_outside_a_task() -> None:
    assert jupyter_orch.should_preempt() is False


@pytest.mark.asyncio
async def test_a_shell_task_trap_has_the_grace_to_save(
    fake_server: Any, start_worker: Any, tmp_path: Any
) -> None:
    start_worker()
    conn = await fake_server.next_connection()
    await conn.recv("hello")
    saved = tmp_path / "saved"
    command = (
        f"trap 'sleep 0.3; echo step > {saved}; exit 0' TERM; echo training; while true; do sleep 0.05; done"
    )
    conn.send({"type": "assign", "task_id": "t1", "attempt": 1, "kind": "shell", "env": {}, "command": command},
              [("none", b"")])  # fmt: skip
    await started(conn, "training")
    conn.send(
        {"type": "cancel", "task_id": "t1", "attempt": 1, "reason": "preempted", "grace": 30, "preempt": True}
    )
    done = await conn.recv("finished")
    assert (done["error_kind"], done["error"]) == ("preempted", "stopped when asked")
    assert saved.read_text() == "step\n"  # the trap ran to its end: nothing was killed

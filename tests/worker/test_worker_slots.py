"""The executor process, driven for real through a worker slot."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from typing import Any

import cloudpickle
import psutil
import pytest

from jupyter_orch import serialization
from jupyter_orch.serialization import DependencyRef
from jupyter_orch.worker.slots import Slot, TaskRequest

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.asyncio


class Lines:
    """A sink that records (stream, text) and lets a test await a line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    def __call__(self, ts: float, stream: str, text: str) -> None:
        assert abs(ts - time.time()) < 60
        self.lines.append((stream, text))
        for wanted, fut in self._waiters:
            if wanted == text and not fut.done():
                fut.set_result(None)

    def of(self, stream: str) -> list[str]:
        return [text for s, text in self.lines if s == stream]

    async def wait_for(self, text: str, timeout: float = 10.0) -> None:
        if any(t == text for _, t in self.lines):
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((text, fut))
        await asyncio.wait_for(fut, timeout)


def function_task(fn: Any, *args: Any, deps: dict[str, Any] | None = None, **fields: Any) -> TaskRequest:
    payload, _ = serialization.dumps_call(fn, args)
    blobs = {"payload": payload}
    for task_id, value in (deps or {}).items():
        blobs[f"dep:{task_id}"] = serialization.dumps_value(value)
    return TaskRequest(task_id="t1", attempt=1, kind="function", blobs=blobs, **fields)


def shell_task(command: str, **fields: Any) -> TaskRequest:
    return TaskRequest(task_id="t1", attempt=1, kind="shell", command=command, **fields)


async def test_function_result_round_trip_and_started_pid(slot: Slot) -> None:
    pids: list[int] = []
    out = await slot.run(function_task(lambda a, b: {"sum": a + b}, 2, 3), Lines(), pids.append)
    assert out.ok and out.error is None
    assert serialization.loads_value(out.result) == {"sum": 5}
    assert pids == [slot.pid]


async def test_dependency_values_replace_refs(slot: Slot) -> None:
    def add(x: int, y: list[int]) -> int:
        return x + sum(y)

    payload, deps = serialization.dumps_call(add, (DependencyRef("a"), DependencyRef("b")))
    assert deps == ["a", "b"]
    blobs = {
        "payload": payload,
        "dep:a": serialization.dumps_value(10),
        "dep:b": serialization.dumps_value([1, 2]),
    }
    out = await slot.run(TaskRequest("t2", 1, "function", blobs=blobs), Lines())
    assert out.ok, out.error
    assert serialization.loads_value(out.result) == 13


async def test_exception_carries_type_and_user_traceback(slot: Slot) -> None:
    def inner(x: int) -> None:
        raise ValueError(f"bad value {x}")

    def outer() -> None:
        inner(7)

    out = await slot.run(function_task(outer), Lines())
    assert not out.ok
    assert out.error_kind == "exception"
    assert out.error == "ValueError: bad value 7"
    assert out.traceback is not None
    assert out.traceback.startswith("Traceback (most recent call last):")
    assert "in outer" in out.traceback and "in inner" in out.traceback
    assert "executor.py" not in out.traceback
    assert out.traceback.rstrip().endswith("ValueError: bad value 7")
    exc = serialization.loads_value(out.result)
    assert type(exc) is ValueError and str(exc) == "bad value 7"


async def test_stdout_stderr_in_order_fd_level_and_before_result(slot: Slot) -> None:
    def chatty() -> str:
        for i in range(50):
            print(f"out {i}")
            print(f"err {i}", file=sys.stderr)
        os.write(1, b"fd one\n")
        os.write(2, b"fd two\n")
        print("tail without newline", end="")
        return "done"

    lines = Lines()
    out = await slot.run(function_task(chatty), lines)
    # the sink has every line by the time the result is returned
    assert out.ok and serialization.loads_value(out.result) == "done"
    assert lines.of("stdout") == [f"out {i}" for i in range(50)] + ["fd one", "tail without newline"]
    assert lines.of("stderr") == [f"err {i}" for i in range(50)] + ["fd two"]


async def test_shell_output_and_exit_code(slot: Slot) -> None:
    lines = Lines()
    out = await slot.run(shell_task("echo one; echo two >&2; printf 'a\\rb\\n'; exit 3"), lines)
    assert not out.ok
    assert out.error_kind == "exit_code" and out.exit_code == 3
    assert out.error == "command exited with code 3"
    assert lines.of("stdout") == ["one", "a\r", "b"]
    assert lines.of("stderr") == ["two"]

    ok = await slot.run(shell_task("pwd"), lines := Lines())
    assert ok.ok and ok.exit_code == 0 and ok.result == b""
    assert lines.of("stdout") == [os.getcwd()]


async def test_env_for_function_and_shell_is_scoped_to_the_task(slot: Slot) -> None:
    out = await slot.run(function_task(lambda: os.environ.get("ORCH_T")), Lines(), None)
    assert serialization.loads_value(out.result) is None
    task = function_task(lambda: os.environ["ORCH_T"], env={"ORCH_T": "fn-value"})
    out = await slot.run(task, Lines())
    assert serialization.loads_value(out.result) == "fn-value"

    def leak() -> None:
        os.environ["ORCH_LEAK"] = "x"
        os.chdir("/")

    await slot.run(function_task(leak), Lines())
    out = await slot.run(
        function_task(lambda: (os.environ.get("ORCH_T"), "ORCH_LEAK" in os.environ, os.getcwd())), Lines()
    )
    assert serialization.loads_value(out.result) == (None, False, os.getcwd())

    lines = Lines()
    out = await slot.run(shell_task('echo "$ORCH_T"', env={"ORCH_T": "shell-value"}), lines)
    assert out.ok and lines.of("stdout") == ["shell-value"]


async def test_executor_is_reused_then_restarted_after_death(slot: Slot) -> None:
    pids: list[int] = []
    await slot.run(function_task(os.getpid), Lines(), pids.append)
    out = await slot.run(function_task(os.getpid), Lines(), pids.append)
    assert pids[0] == pids[1] == serialization.loads_value(out.result)

    died = await slot.run(function_task(os._exit, 3), Lines())
    assert died.error_kind == "executor_died" and died.exit_code == 3
    assert died.error == "the task's process exited with code 3 before finishing"

    out = await slot.run(function_task(os.getpid), Lines(), pids.append)
    assert out.ok and pids[-1] != pids[0]


async def test_segfault_is_reported_as_a_signal(slot: Slot) -> None:
    lines = Lines()
    out = await slot.run(function_task(ctypes.string_at, 0), lines)
    assert not out.ok and out.error_kind == "signal" and out.exit_code == -signal.SIGSEGV
    assert out.error == "the task's process was killed by SIGSEGV (segmentation fault)"
    assert any("Segmentation fault" in text for text in lines.of("stderr"))  # faulthandler's stack
    after = await slot.run(function_task(lambda: 1), Lines())
    assert after.ok


async def test_self_sigkill_mentions_the_oom_killer(slot: Slot) -> None:
    out = await slot.run(function_task(lambda: os.kill(os.getpid(), signal.SIGKILL)), Lines())
    assert out.error_kind == "signal"
    assert (
        out.error
        == "the task's process was killed by SIGKILL (often the out-of-memory killer; check the task's memory)"
    )


async def test_timeout_terminates_the_process_group(slot: Slot) -> None:
    started = time.monotonic()
    out = await slot.run(function_task(time.sleep, 30, timeout=0.3), Lines())
    assert out.error_kind == "timeout" and out.error == "timed out after 0.3 s"
    assert time.monotonic() - started < 5
    assert (await slot.run(function_task(lambda: "alive"), Lines())).ok


async def test_cancel_shell_kills_its_children(slot: Slot, until: Any) -> None:
    lines = Lines()
    run = asyncio.ensure_future(slot.run(shell_task("sleep 30 & echo $!; echo ready; wait"), lines))
    await lines.wait_for("ready")
    sleeper = int(lines.of("stdout")[0])
    started = time.monotonic()
    slot.cancel("user asked")
    out = await run
    assert out.error_kind == "cancelled" and out.error == "cancelled: user asked"
    assert time.monotonic() - started < 2
    await until(lambda: not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == "zombie")


async def test_cancel_escalates_to_sigkill_when_sigterm_is_ignored(slot: Slot) -> None:
    def stubborn() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM")
        time.sleep(30)

    lines = Lines()
    run = asyncio.ensure_future(slot.run(function_task(stubborn), lines))
    await lines.wait_for("ignoring SIGTERM")
    started = time.monotonic()
    slot.cancel("", grace=0.5)
    out = await run
    elapsed = time.monotonic() - started
    assert out.error_kind == "cancelled" and out.error == "cancelled"
    assert 0.5 <= elapsed < 3


async def test_corrupt_payload_fails_the_task_not_the_executor(slot: Slot) -> None:
    pid_before = (await slot.run(function_task(os.getpid), Lines())).result
    out = await slot.run(TaskRequest("t", 1, "function", blobs={"payload": b"not a pickle"}), Lines())
    assert out.error_kind == "bad_payload"
    assert out.error.startswith("the task's payload could not be unpickled: ")
    good, _ = serialization.dumps_call(len, ("abc",))
    out = await slot.run(TaskRequest("t", 1, "function", blobs={"payload": good[: len(good) // 2]}), Lines())
    assert out.error_kind == "bad_payload"
    assert (await slot.run(function_task(os.getpid), Lines())).result == pid_before


async def test_missing_module_is_an_environment_error(slot: Slot, tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "orch_only_on_client.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import orch_only_on_client  # type: ignore[import-not-found]

    try:
        payload, _ = serialization.dumps_call(orch_only_on_client.f)
    finally:
        del sys.modules["orch_only_on_client"]
    out = await slot.run(TaskRequest("t", 1, "function", blobs={"payload": payload}), Lines())
    assert out.error_kind == "environment"
    python = serialization.environment()["python"]
    assert out.error == (
        f"module 'orch_only_on_client' is not installed on worker test-worker (Python {python}): "
        "install it there (pip install orch_only_on_client) or use an image that has it"
    )
    # a patch release apart is fine: the error is still the missing module
    ours = serialization.environment()
    near = {"python": ours["python"].rsplit(".", 1)[0] + ".99", "cloudpickle": ours["cloudpickle"]}
    out = await slot.run(
        TaskRequest("t", 1, "function", blobs={"payload": payload}, client_env=near), Lines()
    )
    assert out.error.startswith("module 'orch_only_on_client' is not installed")


async def test_a_python_or_cloudpickle_version_apart_is_refused_in_one_sentence(slot: Slot) -> None:
    payload, _ = serialization.dumps_call(len, ("abc",))
    ours = serialization.environment()
    py = ours["python"]
    out = await slot.run(
        TaskRequest("t", 1, "function", blobs={"payload": payload}, client_env={**ours, "python": "3.99.1"}),
        Lines(),
    )
    assert out.error_kind == "environment"
    assert out.error == (
        f"the task was pickled with Python 3.99.1, but worker test-worker runs Python {py}: use an image "
        f"(or worker) with Python 3.99, or submit from a kernel with Python {'.'.join(py.split('.')[:2])}"
    )
    out = await slot.run(
        TaskRequest("t", 1, "cell", blobs={"payload": payload}, client_env={**ours, "cloudpickle": "0.1.0"}),
        Lines(),
    )
    assert out.error_kind == "environment"
    assert out.error.startswith("the task was pickled with cloudpickle 0.1.0, but worker test-worker has")
    assert "pip install cloudpickle==0.1.0" in out.error


async def test_unsupported_kind_and_missing_command(slot: Slot) -> None:
    out = await slot.run(TaskRequest("t", 1, "mystery"), Lines())
    assert out.error_kind == "worker_error"
    out = await slot.run(TaskRequest("t", 1, "shell", command=""), Lines())
    assert out.error_kind == "bad_payload"


async def test_cuda_visible_devices_per_task() -> None:
    gpu_box = Slot(
        0,
        worker_name="w",
        has_gpus=True,
        env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
    )
    cpu_box = Slot(
        1,
        worker_name="w",
        has_gpus=False,
        env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
    )
    try:
        visible = lambda: (os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid())  # noqa: E731
        one = serialization.loads_value(
            (await gpu_box.run(function_task(visible, gpus=[1, 3]), Lines())).result
        )
        none = serialization.loads_value((await gpu_box.run(function_task(visible), Lines())).result)
        assert one[0] == "1,3" and none[0] == ""
        assert one[1] != none[1]  # a different CUDA_VISIBLE_DEVICES needs a fresh executor
        inherited = serialization.loads_value((await cpu_box.run(function_task(visible), Lines())).result)
        assert inherited[0] is None
    finally:
        await gpu_box.close()
        await cpu_box.close()


async def test_an_executor_that_cannot_start_is_a_worker_error() -> None:
    broken = Slot(0, worker_name="w", python="/bin/false")
    try:
        out = await broken.run(function_task(len, "x"), Lines())
        assert out.error_kind == "worker_error"
        assert out.error.startswith("worker w could not start a process: the executor process did not start")
    finally:
        await broken.close()


async def test_an_executor_that_dies_between_tasks_is_not_blamed_on_the_next(slot: Slot, until: Any) -> None:
    first = serialization.loads_value((await slot.run(function_task(os.getpid), Lines())).result)
    os.kill(first, signal.SIGKILL)
    await until(lambda: slot.pid is None)
    out = await slot.run(function_task(os.getpid), Lines())
    assert out.ok and serialization.loads_value(out.result) != first


async def test_tasks_see_their_id_but_not_the_worker_token() -> None:
    slot = Slot(0, worker_name="w", env={"PATH": os.environ["PATH"], "JUPYTER_ORCH_TOKEN": "worker-secret"})
    try:
        names = ("JUPYTER_ORCH_TOKEN", "JUPYTER_ORCH_TASK_ID", "JUPYTER_ORCH_ATTEMPT")
        task = function_task(lambda: [os.environ.get(n) for n in names])
        task.task_id, task.attempt = "abc", 2
        out = await slot.run(task, Lines())
        assert serialization.loads_value(out.result) == [None, "abc", "2"]
        lines = Lines()
        await slot.run(shell_task('echo "${JUPYTER_ORCH_TOKEN:-none} $JUPYTER_ORCH_TASK_ID"'), lines)
        assert lines.of("stdout") == ["none t1"]
    finally:
        await slot.close()


async def test_begin_hands_a_task_to_the_warm_executor_at_once(slot: Slot) -> None:
    assert (await slot.run(function_task(lambda: "warm"), Lines())).ok  # the executor is up
    pids: list[int] = []
    first = function_task(os.getpid)
    assert slot.begin(first, Lines(), pids.append)  # sent before any await
    assert pids and slot.busy
    out = await slot.run(first, Lines())
    assert out.ok and serialization.loads_value(out.result) == pids[0]
    # a cancel between begin() and run() is not lost
    second = function_task(time.sleep, 30)
    assert slot.begin(second, Lines())
    slot.cancel("changed my mind")
    started = time.monotonic()
    out = await slot.run(second, Lines())
    assert out.error_kind == "cancelled" and time.monotonic() - started < 5
    # no warm executor for these GPUs: begin() declines and run() does it all
    assert not slot.begin(function_task(lambda: 1, gpus=[3]), Lines())

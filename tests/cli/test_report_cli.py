"""``jupyter orch report [--step N] [--group G] NAME=VALUE ...``: a metric report from a shell,
written to the task's metrics pipe (here a real pipe the test holds), with no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
    env.update(extra)
    return env


def report(
    *args: str, fd: int | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = clean_env(**({"JUPYTER_ORCH_METRICS_FD": str(fd)} if fd is not None else {}))
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        pass_fds=(fd,) if fd is not None else (),
        timeout=60,
    )


@pytest.fixture
def pipe() -> Any:
    r, w = os.pipe()
    os.set_blocking(r, False)

    def lines() -> list[Any]:
        data = b""
        try:
            while chunk := os.read(r, 1 << 16):
                data += chunk
        except BlockingIOError:
            pass
        assert data.endswith(b"\n") or not data
        return [json.loads(line) for line in data.splitlines()]

    yield w, lines
    os.close(r)
    os.close(w)


def test_a_report_is_one_json_line_on_the_pipe(pipe: Any) -> None:
    fd, lines = pipe
    before = time.time()
    done = report("--step", "10", "--group", "validation", "loss=0.25", "acc=1", "gap=nan", "big=1e3", fd=fd)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    [point] = lines()
    ts, *rest = point
    assert before - 1 < ts < time.time() + 1
    assert rest == [10, "validation", {"loss": 0.25, "acc": 1, "gap": None, "big": 1000.0}]

    assert report("loss=-3", fd=fd).returncode == 0  # no step, the default group
    [point] = lines()
    assert point[1:] == [None, "training", {"loss": -3}]


@pytest.mark.parametrize(
    "args, said",
    [
        (["loss=abc"], "'loss=abc': the value of 'loss' must be a number, not 'abc'"),
        (["loss"], "'loss' is not NAME=VALUE"),
        (["=1"], "'=1' is not NAME=VALUE"),
        (["--step", "x", "a=1"], "argument --step: invalid int value: 'x'"),
        (["--step", "-1", "a=1"], "step must be a whole number >= 0, not -1"),
        (["--group", "has space", "a=1"], "group must be a name of letters"),
        (["step=1"], "'step' cannot name a metric"),
        ([], "the following arguments are required: NAME=VALUE"),
    ],
)
def test_a_bad_argument_exits_2_naming_it(pipe: Any, args: list[str], said: str) -> None:
    fd, lines = pipe
    done = report(*args, fd=fd)
    assert done.returncode == 2, done
    assert said in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("jupyter orch report: error:")
    assert lines() == []  # nothing sent


def test_outside_a_task_exits_1_in_one_sentence(tmp_path: Any) -> None:
    done = report("loss=1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "jupyter orch report: not inside a jupyter-orch task (JUPYTER_ORCH_METRICS_FD is not set); "
        "metrics are only recorded in a task a worker runs"
    )
    # a descriptor number that is not a pipe in this process (not inherited): not written to
    victim = tmp_path / "victim"
    with open(victim, "wb") as f:
        done = subprocess.run(
            [sys.executable, "-m", "jupyter_orch", "report", "loss=1"],
            capture_output=True,
            text=True,
            env=clean_env(JUPYTER_ORCH_METRICS_FD=str(f.fileno())),
            pass_fds=(f.fileno(),),
            timeout=60,
        )
    assert done.returncode == 1 and "is not the task's metrics pipe" in done.stderr
    assert victim.read_bytes() == b""


def test_report_is_listed_by_jupyter_orch_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "report" in done.stdout
    assert "record metrics of the running task" in done.stdout
    usage = report("--help")
    assert usage.returncode == 0 and "NAME=VALUE" in usage.stdout and "--step" in usage.stdout

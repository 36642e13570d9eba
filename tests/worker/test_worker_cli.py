"""``jupyter orch worker`` / ``python -m jupyter_orch.worker``: flags, environment, signals."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from jupyter_orch import serialization
from jupyter_orch.worker import cli
from jupyter_orch.worker.connection import connect_url

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_missing_server_or_token_is_one_line_naming_the_flag(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("JUPYTER_ORCH_URL", raising=False)
    monkeypatch.delenv("JUPYTER_ORCH_TOKEN", raising=False)
    assert cli.run(parse("--token", "t")) == 2
    assert (
        capsys.readouterr().err
        == "jupyter orch worker: error: --server is required (or set JUPYTER_ORCH_URL)\n"
    )
    assert cli.run(parse("--server", "http://h:1")) == 2
    assert "--token is required (or set JUPYTER_ORCH_TOKEN)" in capsys.readouterr().err
    assert cli.run(parse("--server", "http://h:1", "--token", "t", "--label", "novalue")) == 2
    assert "--label entries must look like 'key=value'" in capsys.readouterr().err


def test_flags_and_environment_make_the_config(monkeypatch: Any) -> None:
    monkeypatch.setenv("JUPYTER_ORCH_URL", "https://hub.example/user/ann/")
    monkeypatch.setenv("JUPYTER_ORCH_TOKEN", "from-env")
    config = cli.config_from_args(
        parse(
            "--slots",
            "3",
            "--cpus",
            "4",
            "--memory",
            "8Gi",
            "--gpus",
            "0,2",
            "--label",
            "a=b",
            "--label",
            "c=d",
        )
    )
    assert (config.server, config.token, config.slots, config.cpus) == (
        "https://hub.example/user/ann/",
        "from-env",
        3,
        4,
    )
    assert config.memory == 8 * 2**30 and config.gpus == [0, 2] and config.labels == {"a": "b", "c": "d"}
    assert cli.config_from_args(parse("--gpus", "none")).discover_gpus is False


def test_connect_url_keeps_the_base_path() -> None:
    assert connect_url("http://localhost:8888") == "ws://localhost:8888/orch/api/v1/workers/connect"
    assert (
        connect_url("https://hub.example/user/ann/")
        == "wss://hub.example/user/ann/orch/api/v1/workers/connect"
    )
    assert connect_url("ws://h/orch/api/v1/workers/connect") == "ws://h/orch/api/v1/workers/connect"
    with pytest.raises(ValueError):
        connect_url("localhost:8888")


def test_worker_command_round_trips_through_the_parser() -> None:
    argv = cli.worker_command(
        "http://127.0.0.1:9", slots=2, memory="1Gi", gpus=[1], labels={"k": "v"}, name="n"
    )
    assert argv[:3] == [sys.executable, "-m", "jupyter_orch.worker"]
    config = cli.config_from_args(parse(*argv[3:], "--token", "t"))
    assert (config.slots, config.memory, config.gpus, config.labels, config.name) == (
        2,
        2**30,
        [1],
        {"k": "v"},
        "n",
    )


@pytest.mark.asyncio
async def test_sigterm_finishes_the_running_task_then_exits(fake_server: Any, tmp_path: Path) -> None:
    go = tmp_path / "go"

    def wait_for_file(path: str) -> str:
        import os
        import time

        print("waiting", flush=True)
        while not os.path.exists(path):
            time.sleep(0.01)
        return "finished after SIGTERM"

    proc = await asyncio.create_subprocess_exec(
        *cli.worker_command(fake_server.url, name="sig"), "--token", fake_server.token,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    err: list[str] = []

    async def stderr_until(text: str) -> None:
        while not any(text in line for line in err):
            line = await asyncio.wait_for(proc.stderr.readline(), timeout=15)  # type: ignore[union-attr]
            assert line, f"worker exited before logging {text!r}: {err}"
            err.append(line.decode())

    try:
        conn = await fake_server.next_connection()
        assert (await conn.recv("hello"))["name"] == "sig"
        payload, _ = serialization.dumps_call(wait_for_file, (str(go),))
        conn.send(
            {"type": "assign", "task_id": "t", "attempt": 1, "kind": "function"}, [("payload", payload)]
        )
        await conn.recv("log")
        proc.send_signal(signal.SIGTERM)
        await stderr_until(
            "stopping (SIGTERM; send it again to kill running tasks): waiting for 1 running task(s)"
        )
        conn.send({"type": "assign", "task_id": "u", "attempt": 1, "kind": "shell", "command": "true"})
        refused = await conn.recv("finished")
        assert refused["task_id"] == "u" and refused["error"] == "worker sig is shutting down"
        go.touch()
        done = await conn.recv("finished")
        assert serialization.loads_value(done.blobs["result"]) == "finished after SIGTERM"
        await stderr_until("worker sig stopped")
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

"""``jupyter orch metrics`` as a user types it, against a real server (the points sent by a
worker driven by hand, ``support/fakeworker.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from support.fakeworker import FakeWorker, point, worker_server
from support.orchserver import OrchServer


def orch_cli(server: OrchServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JUPYTER_ORCH_URL=server.url, JUPYTER_ORCH_TOKEN=server.token, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrchServer, str]]:
    """A server and a task of two attempts that reported metrics."""
    server, token = worker_server(tmp_path_factory.mktemp("cli-metrics"))
    worker = FakeWorker(server, token)
    try:
        api = server.api()
        task_id = api.post(
            "/tasks", {"kind": "shell", "command": "true", "retries": 1, "retry_backoff": 0.01}
        )["id"]
        worker.take()
        worker.metrics(
            task_id, 1, 0, [point(0, loss=4.0), point(1, loss=2.5), point(1, "validation", acc=0.25)]
        )
        worker.finish(task_id, 1, ok=False)
        worker.take()
        worker.metrics(task_id, 2, 0, [point(0, loss=1.5), point(1, loss=0.125)])
        worker.finish(task_id, 2)
        assert api.get(f"/tasks/{task_id}/wait", timeout=30)["state"] == "succeeded"
        yield server, task_id
    finally:
        worker.close()
        server.cleanup()


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_series_table(reported: tuple[OrchServer, str]) -> None:
    server, task_id = reported
    out = orch_cli(server, "metrics", task_id)
    assert out.returncode == 0, out.stderr
    table = rows(out.stdout)
    assert table[0] == ["NAME", "GROUP", "ATTEMPT", "POINTS", "LAST", "MIN", "MAX"]
    assert table[1:] == [
        ["loss", "training", "1", "2", "2.5", "2.5", "4"],
        ["acc", "validation", "1", "1", "0.25", "0.25", "0.25"],
        ["loss", "training", "2", "2", "0.125", "0.125", "1.5"],
    ]
    only = rows(orch_cli(server, "metrics", task_id, "--attempt", "2", "--name", "loss").stdout)
    assert only[1:] == [["loss", "training", "2", "2", "0.125", "0.125", "1.5"]]
    assert rows(orch_cli(server, "metrics", task_id, "--group", "validation").stdout)[1][0] == "acc"
    data = json.loads(orch_cli(server, "metrics", task_id, "--json").stdout)
    assert data["names"] == ["loss", "acc"] and data["series"][0]["y"] == [4.0, 2.5]


def test_records_as_a_table_and_as_json_lines(reported: tuple[OrchServer, str]) -> None:
    server, task_id = reported
    out = orch_cli(server, "metrics", task_id, "--records")
    assert out.returncode == 0, out.stderr
    table = rows(out.stdout)
    assert table[0] == ["ATTEMPT", "OFFSET", "TIME", "STEP", "GROUP", "loss", "acc"]
    assert len(table) == 6
    assert table[3][:2] == ["1", "2"] and table[3][-2:] == ["validation", "0.25"]
    lines = orch_cli(server, "metrics", task_id, "--records", "--json", "--attempt", "2").stdout.splitlines()
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert records == [
        {"attempt": 2, "offset": 0, "ts": 1000.0, "step": 0, "group": "training", "loss": 1.5},
        {"attempt": 2, "offset": 1, "ts": 1001.0, "step": 1, "group": "training", "loss": 0.125},
    ]


def test_nothing_reported_and_bad_input(reported: tuple[OrchServer, str]) -> None:
    server, task_id = reported
    none = orch_cli(server, "metrics", task_id, "--group", "nothing")
    assert none.returncode == 0 and "reported no metrics" in none.stdout
    bad = orch_cli(server, "metrics", task_id, "--name", "ts")
    assert bad.returncode == 1 and "(name)" in bad.stderr and "column of every record" in bad.stderr
    missing = orch_cli(server, "metrics", "0123456789abcdefghjkmnpqrs")
    assert missing.returncode == 1 and "no task" in missing.stderr

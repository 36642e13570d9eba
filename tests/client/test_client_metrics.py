"""The SDK's side of task metrics against a real server (points sent by a worker driven by
hand, ``support/fakeworker.py``): ``Future.metrics()`` and ``Client.metrics()`` as records
(every page) or a DataFrame, and ``LogFollow``'s ``on_metrics`` callback."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from jupyter_orch.client.logstream import LogFollow

from support.fakeworker import FakeWorker, point, worker_server
from support.orchserver import OrchServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrchServer, str]]:
    server, token = worker_server(tmp_path_factory.mktemp("client-metrics"))
    try:
        yield server, token
    finally:
        server.cleanup()


@pytest.fixture
def worker(served: tuple[OrchServer, str]) -> Iterator[FakeWorker]:
    fake = FakeWorker(*served)
    yield fake
    fake.close()


def test_future_metrics_as_records_and_as_a_dataframe(
    served: tuple[OrchServer, str], worker: FakeWorker
) -> None:
    server, _ = served
    client = server.client()
    fut = client.submit_shell("true", retries=1, retry_backoff=0.01)
    assert worker.take() == (fut.id, 1)
    worker.metrics(fut.id, 1, 0, [point(0, loss=2.0), point(1, "validation", acc=0.5)])
    worker.finish(fut.id, 1, ok=False)
    assert worker.take() == (fut.id, 2)
    # a second attempt longer than a page: every page is fetched
    worker.metrics(fut.id, 2, 0, [point(i, loss=i / 12_000) for i in range(6000)])
    worker.metrics(fut.id, 2, 6000, [point(i, loss=i / 12_000) for i in range(6000, 12_000)])
    worker.metrics(fut.id, 2, 12_000, [[5.0, None, "training", {"loss": None, "lr": 0.1}]])
    worker.finish(fut.id, 2)
    assert fut.result(timeout=30) is None

    records = fut.metrics()
    assert len(records) == 2 + 12_001
    assert records[:2] == [
        {"attempt": 1, "offset": 0, "ts": 1000.0, "step": 0, "group": "training", "loss": 2.0},
        {"attempt": 1, "offset": 1, "ts": 1001.0, "step": 1, "group": "validation", "acc": 0.5},
    ]
    assert [r["offset"] for r in records[2:]] == list(range(12_001))
    assert fut.metrics(attempt=1, group="validation") == [records[1]]
    assert fut.metrics(names="acc") == [records[1]]
    assert len(fut.metrics(names=["acc", "lr"])) == 2
    assert client.metrics(fut.id, attempt=1) == records[:2]

    frame = fut.metrics(frame=True, attempt=2)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 12_001
    assert list(frame.columns) == ["attempt", "offset", "ts", "step", "group", "loss", "lr"]
    assert frame["loss"].iloc[6000] == 0.5 and pd.isna(frame["loss"].iloc[-1])  # a NaN reported
    assert pd.isna(frame["step"].iloc[-1]) and frame["step"].iloc[3] == 3
    assert str(frame["ts"].dt.tz) == "UTC"
    empty = client.metrics(fut.id, frame=True, group="nothing")
    assert list(empty.columns) == ["attempt", "offset", "ts", "step", "group"] and empty.empty


def test_a_frame_without_pandas_says_what_to_install(
    served: tuple[OrchServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    client = server.client()
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    task_id = server.api().post("/tasks", {"kind": "shell", "command": "true"})["id"]
    assert client.metrics(task_id) == []
    with pytest.raises(ImportError, match="pip install pandas"):
        client.metrics(task_id, frame=True)
    client.cancel(task_id)  # it never runs: the next test's worker takes its own


def test_log_follow_calls_on_metrics_with_stored_then_live_points(
    served: tuple[OrchServer, str], worker: FakeWorker
) -> None:
    server, _ = served
    task_id = server.api().post("/tasks", {"kind": "shell", "command": "true"})["id"]
    assert worker.take() == (task_id, 1)
    worker.metrics(task_id, 1, 0, [point(0), point(1)])
    worker.log(task_id, 1, 0, "stored")
    got: list[tuple[int, int, list[Any]]] = []
    lines: list[str] = []
    arrived = threading.Event()

    def on_metrics(attempt: int, offset: int, points: list[Any]) -> None:
        got.append((attempt, offset, points))
        arrived.set()

    server.wait_log(task_id, "stored")
    follow = LogFollow(server.api(), task_id, on_metrics=on_metrics)
    reader = threading.Thread(target=lambda: lines.extend(line["text"] for line in follow))
    reader.start()
    assert arrived.wait(30)
    arrived.clear()
    worker.metrics(task_id, 1, 2, [point(2)])
    assert arrived.wait(30)
    worker.log(task_id, 1, 1, "live")
    worker.finish(task_id, 1)
    reader.join(30)
    assert got == [(1, 0, [point(0), point(1)]), (1, 2, [point(2)])]
    assert lines == ["stored", "live"] and follow.task is not None and follow.task["state"] == "succeeded"
    # without the callback the socket is asked for no metrics
    plain = LogFollow(server.api(), task_id)
    assert [line["text"] for line in plain] == ["stored", "live"]

"""Metric points workers report (``metrics`` messages), on the engine alone: kept once,
numbered per attempt, resent after a reconnect from the welcome's ``metric_offsets``,
malformed ones dropped, a gap warned of, a bad disk survived; and read back as series and
records (:class:`jupyter_orch.engine.metricreads.MetricReads`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core import protocol
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.engine import Engine
from jupyter_orch.engine.metricreads import MetricQuery

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")


@pytest_asyncio.fixture
async def engine(tmp_path: Any):
    e = make_engine(tmp_path, worker_grace=0.5)
    await e.start()
    yield e
    await e.stop()


def msg(**header: Any) -> protocol.Message:
    return protocol.Message(header)


def point(step: int | None, group: str = "training", **values: Any) -> list[Any]:
    return [1000.0 + (step or 0), step, group, values or {"loss": 1.0 / (1 + (step or 0))}]


async def running_task(engine: Engine, link: Link, worker_id: str = "w1", **fields: Any) -> tuple[Any, Any]:
    worker = engine.worker_hello(TOKEN, link, hello(worker_id))
    spec = TaskSpec.from_dict({"kind": "shell", "command": "true", **fields}, owner="ann")
    [row] = await engine.submit([spec], {})
    await link.next("assign")
    engine.worker_message(worker, msg(type="started", task_id=row.id, attempt=1))
    return worker, row


def send(engine: Engine, worker: Any, row: Any, offset: int, points: list[Any], attempt: int = 1) -> None:
    engine.worker_message(
        worker, msg(type="metrics", task_id=row.id, attempt=attempt, offset=offset, points=points)
    )


@pytest.mark.asyncio
async def test_points_are_kept_published_and_read_back(engine: Engine) -> None:
    link = Link()
    worker, row = await running_task(engine, link)
    sub = engine.bus.subscribe(lambda e: e["type"] == "metrics")
    send(engine, worker, row, 0, [point(0), point(1, "validation", acc=0.5)])
    event = await sub.get()
    assert event is not None
    assert {k: event[k] for k in ("task_id", "attempt", "owner", "offset")} == {
        "task_id": row.id,
        "attempt": 1,
        "owner": "ann",
        "offset": 0,
    }
    assert event["points"] == [point(0), point(1, "validation", acc=0.5)]
    stored, after = await engine.metric_reads.points(row.id, 1)
    assert stored == [point(0), point(1, "validation", acc=0.5)] and after == 2
    sub.close()


@pytest.mark.asyncio
async def test_a_resend_after_a_reconnect_is_kept_once(engine: Engine) -> None:
    link = Link()
    worker, row = await running_task(engine, link)
    send(engine, worker, row, 0, [point(0), point(1), point(2)])
    engine.worker_disconnected(worker, link)
    link2 = Link()
    worker = engine.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": row.id, "attempt": 1}]))
    welcome = await link2.next("welcome")
    assert welcome["metric_offsets"] == [[row.id, 1, 3]]
    send(engine, worker, row, 1, [point(1), point(2), point(3), point(4)])  # from an older offset
    stored, _ = await engine.metric_reads.points(row.id, 1)
    assert [p[1] for p in stored] == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_offsets_after_a_server_restart_come_from_the_store(tmp_path: Any) -> None:
    first = make_engine(tmp_path, worker_grace=30)
    await first.start()
    link = Link()
    worker, row = await running_task(first, link)
    send(first, worker, row, 0, [point(i) for i in range(5)])
    await first.stop()
    second = make_engine(tmp_path, worker_grace=30)
    await second.start()
    try:
        link2 = Link()
        second.worker_hello(TOKEN, link2, hello("w1", running=[{"task_id": row.id, "attempt": 1}]))
        welcome = await link2.next("welcome")
        assert welcome["metric_offsets"] == [[row.id, 1, 5]]
        assert welcome["log_offsets"] == [[row.id, 1, 0]]
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_a_gap_is_warned_of_and_malformed_points_are_dropped(engine: Engine, caplog: Any) -> None:
    link = Link()
    worker, row = await running_task(engine, link)
    with caplog.at_level(logging.WARNING, logger="jupyter_orch.engine"):
        send(engine, worker, row, 0, [point(0), point(1)])
        send(engine, worker, row, 5, [point(5)])  # 3 points lost while the worker was away
        bad = [
            "not a point",
            [1.0, -1, "training", {"loss": 1}],  # a negative step
            [1.0, 2, "bad group!", {"loss": 1}],
            [1.0, 3, "training", {}],  # no metric
            [1.0, 3, "training", {"ts": 1}],  # a reserved name
            [1.0, 3, "training", {"loss": "high"}],  # not a number
            [True, 3, "training", {"loss": 1}],
            point(6),
        ]
        send(engine, worker, row, 6, bad)
    stored, _ = await engine.metric_reads.points(row.id, 1)
    assert [p[1] for p in stored] == [0, 1, 5, 6]
    text = caplog.text
    assert "3 metric point(s) of task" in text and "were lost" in text
    assert "dropped 7 malformed metric point(s)" in text


@pytest.mark.asyncio
async def test_points_of_an_attempt_the_worker_does_not_hold_are_ignored(engine: Engine) -> None:
    link = Link()
    _, row = await running_task(engine, link)
    other = engine.worker_hello(TOKEN, Link(), hello("w2"))
    send(engine, other, row, 0, [point(0)])
    worker = engine.workers["w1"]
    send(engine, worker, row, 0, [point(0)], attempt=2)  # not its attempt
    assert await engine.metric_reads.points(row.id, 1) == ([], 0)
    assert await engine.metric_reads.points(row.id, 2) == ([], 0)


@pytest.mark.asyncio
async def test_a_disk_that_cannot_take_points_leaves_the_worker_connected(
    engine: Engine, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = Link()
    worker, row = await running_task(engine, link)

    def full(*args: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.metrics, "append", full)
    sub = engine.bus.subscribe(lambda e: e["type"] == "metrics")
    with caplog.at_level(logging.WARNING, logger="jupyter_orch.engine"):
        send(engine, worker, row, 0, [point(0)])
        send(engine, worker, row, 1, [point(1)])
    first, second = await sub.get(), await sub.get()
    assert first is not None and second is not None
    assert (first["offset"], second["offset"]) == (0, 1)  # live readers still get them, in order
    assert caplog.text.count("could not write the metrics") == 1
    assert link.closed is None and worker.state == "connected"
    sub.close()


@pytest.mark.asyncio
async def test_series_and_records_of_every_attempt(engine: Engine) -> None:
    link = Link()
    worker, row = await running_task(engine, link, retries=1, retry_backoff=0.01)
    send(engine, worker, row, 0, [point(0, loss=3.0), point(1, "validation", acc=0.5), point(2, loss=1.0)])
    engine.worker_message(
        worker,
        msg(type="finished", task_id=row.id, attempt=1, ok=False, error="boom", error_kind="exit_code"),
    )
    again = await link.next("assign")
    assert again["attempt"] == 2
    send(engine, worker, row, 0, [point(None, loss=2.0), point(None, loss=None)], attempt=2)

    merged = await engine.metric_reads.answer(row, MetricQuery())
    assert merged["attempts"] == [1, 2]
    assert merged["groups"] == ["training", "validation"] and merged["names"] == ["loss", "acc"]
    loss = merged["series"][0]
    assert (loss["name"], loss["group"], loss["attempt"]) == ("loss", "training", None)
    # a point without a step has its offset as x; a NaN (None) is a gap
    assert loss["x"] == [0, 2, 0, 1] and loss["y"] == [3.0, 1.0, 2.0, None]
    assert (loss["count"], loss["downsampled"], loss["last"], loss["min"], loss["max"]) == (
        4,
        False,
        None,
        1.0,
        3.0,
    )

    split = await engine.metric_reads.answer(row, MetricQuery(per_attempt=True, names=("loss",)))
    assert [(s["attempt"], s["y"]) for s in split["series"]] == [(1, [3.0, 1.0]), (2, [2.0, None])]
    assert (await engine.metric_reads.answer(row, MetricQuery(group="validation")))["series"][0][
        "name"
    ] == "acc"
    assert (await engine.metric_reads.answer(row, MetricQuery(attempt=2)))["attempts"] == [2]

    page = await engine.metric_reads.answer(row, MetricQuery(records=True, limit=2))
    assert [(r["attempt"], r["offset"]) for r in page["records"]] == [(1, 0), (1, 1)]
    assert page["next"] == "1:1"
    rest = await engine.metric_reads.answer(row, MetricQuery(records=True, limit=2, after=(1, 1)))
    assert [(r["attempt"], r["offset"], r.get("loss")) for r in rest["records"]] == [(1, 2, 1.0), (2, 0, 2.0)]
    last = await engine.metric_reads.answer(row, MetricQuery(records=True, limit=2, after=(2, 0)))
    assert [r["offset"] for r in last["records"]] == [1] and last["next"] is None
    only = await engine.metric_reads.answer(row, MetricQuery(records=True, names=("acc",)))
    assert only["records"] == [
        {"attempt": 1, "offset": 1, "ts": 1001.0, "step": 1, "group": "validation", "acc": 0.5}
    ]
